package runtimes_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kfn-dev/kfn/internal/runtimes"
)

// TestManifest checks runtimes.json, and that the Dockerfile (for clusters
// that pull from a registry) lays each runtime's image out as the manifest
// says, as hack/images does: a stage named as the runtime holds the wrapper,
// and the stage runtime, FROM the one --build-arg RUNTIME names, the runner.
func TestManifest(t *testing.T) {
	m, err := runtimes.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(m.Runner) || strings.HasPrefix(m.Runner, "/kfn/") {
		t.Errorf("runner %q: want an absolute path outside /kfn, where the pod mounts its own volumes", m.Runner)
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerStages(string(data))
	if _, ok := m.Get(stages[""].arg("RUNTIME")); !ok {
		t.Errorf("Dockerfile: ARG RUNTIME=%q before the first FROM: want a runtime of runtimes.json", stages[""].arg("RUNTIME"))
	}
	stages["runtime"].require(t, "runtime", "FROM ${RUNTIME} AS runtime",
		"COPY --from=build /kfn "+m.Runner, "USER 65532:65532", "WORKDIR /kfn/code")
	for _, rt := range m.Runtimes {
		t.Run(rt.Name, func(t *testing.T) {
			if rt.Image == "" || len(rt.Command) < 2 || rt.DefaultEntrypoint == "" {
				t.Fatalf("incomplete runtime: %+v", rt)
			}
			if rt.Command[len(rt.Command)-1] != rt.Wrapper.Path || strings.HasPrefix(rt.Wrapper.Path, "/kfn/") {
				t.Errorf("command %q must end with the wrapper %q, outside /kfn", rt.Command, rt.Wrapper.Path)
			}
			if _, err := runtimes.Source(rt.Wrapper.Source); err != nil {
				t.Errorf("wrapper: %v", err)
			}
			entrypoint, _ := json.Marshal(append([]string{m.Runner, "run", "--"}, rt.Command...))
			cmd, _ := json.Marshal([]string{rt.DefaultEntrypoint})
			stages[rt.Name].require(t, rt.Name,
				"COPY internal/runtimes/"+rt.Wrapper.Source+" "+rt.Wrapper.Path,
				"ENTRYPOINT "+strings.ReplaceAll(string(entrypoint), `","`, `", "`),
				"CMD "+string(cmd))
		})
	}
}

// dockerStage is the instructions of a Dockerfile stage, one a line.
type dockerStage []string

// dockerStages splits a Dockerfile into its stages by name; "" is what
// comes before the first FROM.
func dockerStages(dockerfile string) map[string]dockerStage {
	stages := map[string]dockerStage{}
	name := ""
	for _, line := range strings.Split(dockerfile, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if words := strings.Fields(line); words[0] == "FROM" {
			name = words[len(words)-1]
		}
		stages[name] = append(stages[name], line)
	}
	return stages
}

// arg returns the default value of the stage's ARG name.
func (s dockerStage) arg(name string) string {
	for _, line := range s {
		if v, ok := strings.CutPrefix(line, "ARG "+name+"="); ok {
			return v
		}
	}
	return ""
}

// require reports each line the stage lacks.
func (s dockerStage) require(t *testing.T, name string, lines ...string) {
	t.Helper()
	for _, line := range lines {
		if !slices.Contains(s, line) {
			t.Errorf("the Dockerfile's stage %s lacks the line %q", name, line)
		}
	}
}
