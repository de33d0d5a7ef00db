package runtimes_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfn-dev/kfn/internal/runtimes"
)

// TestManifest checks runtimes.json, and that each runtime's Dockerfile
// (hack/runtimes/<name>/Dockerfile, for clusters that pull from a registry)
// lays its image out as the manifest says, as hack/images does.
func TestManifest(t *testing.T) {
	m, err := runtimes.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(m.Runner) || strings.HasPrefix(m.Runner, "/kfn/") {
		t.Errorf("runner %q: want an absolute path outside /kfn, where the pod mounts its own volumes", m.Runner)
	}
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
			data, err := os.ReadFile(filepath.Join("..", "..", "hack", "runtimes", rt.Name, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			entrypoint, _ := json.Marshal(append([]string{m.Runner, "run", "--"}, rt.Command...))
			cmd, _ := json.Marshal([]string{rt.DefaultEntrypoint})
			for _, line := range []string{
				"COPY --from=build /kfn " + m.Runner,
				"COPY internal/runtimes/" + rt.Wrapper.Source + " " + rt.Wrapper.Path,
				"USER 65532:65532",
				"WORKDIR /kfn/code",
				"ENTRYPOINT " + strings.ReplaceAll(string(entrypoint), `","`, `", "`),
				"CMD " + string(cmd),
			} {
				if !strings.Contains(string(data), "\n"+line+"\n") {
					t.Errorf("hack/runtimes/%s/Dockerfile lacks the line %q", rt.Name, line)
				}
			}
		})
	}
}
