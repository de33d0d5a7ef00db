package runtimes_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kfn-dev/kfn/internal/runner"
	"github.com/kfn-dev/kfn/internal/runtimes"
)

// The tests run every wrapper on this host through the real runner, with no
// cluster: `kfn run -- <interpreter> <wrapper> <entrypoint>` in a code
// directory, the request and the function's variables in the environment the
// operator gives a function pod, and the result read from the last line of
// the runner's stdout.
//
// The runner is this test binary itself (TestMain below calls
// internal/runner's Main, which is `kfn run`), or, with KFN_BIN set, a kfn
// binary: KFN_BIN=/tmp/kfn go test ./internal/runtimes.

// asRunner makes the test binary act as `kfn run`.
const asRunner = "KFN_RUNTIMES_TEST_AS_RUNNER"

func TestMain(m *testing.M) {
	if os.Getenv(asRunner) == "1" {
		os.Exit(runner.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runtime is a runtime of the manifest with an interpreter of this host.
type runtime struct {
	runtimes.Runtime
	interpreter string // absolute path
}

var interpreters sync.Map // command name → absolute path, or "" when missing

// hostRuntime returns the runtime named name, or skips the test when this
// host has no interpreter for it.
func hostRuntime(t *testing.T, name string) runtime {
	t.Helper()
	m, err := runtimes.Load()
	if err != nil {
		t.Fatal(err)
	}
	rt, ok := m.Get(name)
	if !ok {
		t.Fatalf("no runtime %q in runtimes.json", name)
	}
	command := rt.Command[0]
	v, ok := interpreters.Load(command)
	if !ok {
		v = findInterpreter(command)
		interpreters.Store(command, v)
	}
	if v.(string) == "" {
		t.Skipf("%s is not installed: runtime %s not tested", command, name)
	}
	return runtime{Runtime: rt, interpreter: v.(string)}
}

// findInterpreter returns the real executable of command: shims such as
// pyenv's depend on a HOME the tests replace.
func findInterpreter(command string) string {
	path, err := exec.LookPath(command)
	if err != nil {
		return ""
	}
	if strings.HasPrefix(command, "python") {
		out, err := exec.Command(path, "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	return path
}

// execution is one run of a function.
type execution struct {
	contract string            // KFN_FUNCTION_CONTRACT; empty leaves it unset
	entry    string            // the entrypoint, relative to the code directory
	files    map[string]string // the code directory
	// secretVolume lays the code out as the kubelet mounts a Secret or
	// ConfigMap: the files in a timestamped folder, reached through the
	// ..data symlink and a symlink per top-level name.
	secretVolume bool
	data         string // the request body
	// bodyParts deliver the body as the parts of a large one
	// (KFN_REQUEST_BODY_DIR) instead of APPWRITE_FUNCTION_DATA.
	bodyParts []string
	method    string
	path      string
	headers   map[string]string
	env       map[string]string // the function's variables, and overrides
	timeout   int               // seconds; 0 means 30
}

// result is the runner's result line.
type result struct {
	ExitCode        int               `json:"exitCode"`
	StatusCode      int               `json:"statusCode"`
	TimedOut        bool              `json:"timedOut"`
	Response        string            `json:"response"`
	Stdout          string            `json:"stdout"`
	Stderr          string            `json:"stderr"`
	ResponseHeaders map[string]string `json:"responseHeaders"`
}

func (r result) String() string {
	b, _ := json.MarshalIndent(r, "", "  ")
	return string(b)
}

// run runs e with the runtime's wrapper, as the operator runs it in a pod.
func (rt runtime) run(t *testing.T, e execution) result {
	t.Helper()
	tmp := t.TempDir()
	wrapperSource, err := runtimes.Source(rt.Wrapper.Source)
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(tmp, "runtime", filepath.Base(rt.Wrapper.Path))
	writeFile(t, wrapper, string(wrapperSource))
	code := filepath.Join(tmp, "code")
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	files := code
	if e.secretVolume {
		files = filepath.Join(code, "..2026_01_02_03_04_05.000000001")
		symlink(t, filepath.Base(files), filepath.Join(code, "..data"))
	}
	top := map[string]bool{}
	for name, content := range e.files {
		writeFile(t, filepath.Join(files, name), content)
		top[strings.SplitN(name, "/", 2)[0]] = true
	}
	if e.secretVolume {
		for name := range top {
			symlink(t, filepath.Join("..data", name), filepath.Join(code, name))
		}
	}

	headers := "{}"
	if e.headers != nil {
		b, _ := json.Marshal(e.headers)
		headers = string(b)
	}
	method, path := e.method, e.path
	if method == "" {
		method = "POST"
	}
	if path == "" {
		path = "/"
	}
	timeout := e.timeout
	if timeout == 0 {
		timeout = 30
	}
	// The environment of a function pod (controllers/job.go executionEnv).
	env := map[string]string{
		"PATH":                           os.Getenv("PATH"),
		"HOME":                           tmp,
		"KFN_IO_DIR":                     filepath.Join(tmp, "io"),
		"KFN_TERMINATION_MESSAGE_PATH":   filepath.Join(tmp, "termination-log"),
		"KFN_TIMEOUT":                    strconv.Itoa(timeout),
		"APPWRITE_FUNCTION_ID":           "hello",
		"APPWRITE_FUNCTION_NAME":         "hello",
		"APPWRITE_FUNCTION_EXECUTION_ID": "hello-1",
		"APPWRITE_FUNCTION_TRIGGER":      "http",
		"APPWRITE_FUNCTION_RUNTIME_NAME": rt.Name,
		"APPWRITE_FUNCTION_DATA":         e.data,
		"APPWRITE_FUNCTION_EVENT":        "",
		"APPWRITE_FUNCTION_EVENT_DATA":   "",
		"APPWRITE_FUNCTION_USER_ID":      "",
		"APPWRITE_FUNCTION_PROJECT_ID":   "demo",
		"KFN_REQUEST_METHOD":             method,
		"KFN_REQUEST_PATH":               path,
		"KFN_REQUEST_HEADERS":            headers,
	}
	if e.bodyParts != nil {
		dir := filepath.Join(tmp, "request-body")
		for i, part := range e.bodyParts {
			writeFile(t, filepath.Join(dir, fmt.Sprintf("%03d", i)), part)
		}
		env["KFN_REQUEST_BODY_DIR"] = dir
		env["APPWRITE_FUNCTION_DATA"] = ""
	}
	if e.contract != "" {
		env[runtimes.EnvContract] = e.contract
	}
	for k, v := range e.env {
		env[k] = v
	}

	command := []string{"run", "--", rt.interpreter}
	for _, arg := range rt.Command[1:] {
		if arg == rt.Wrapper.Path { // the wrapper's path in the image → here
			arg = wrapper
		}
		command = append(command, arg)
	}
	if e.entry != "" {
		command = append(command, e.entry)
	}
	var cmd *exec.Cmd
	if bin := os.Getenv("KFN_BIN"); bin != "" {
		cmd = exec.Command(bin, command...)
	} else {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(self, command[1:]...) // Main takes the arguments after "run"
		env[asRunner] = "1"
	}
	cmd.Dir = code
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // the exit code is the function's: checked in the result
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("no result line from the runner: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return res
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// Checks on a result; each reports what it expected and the whole result.

type check func(t *testing.T, r result)

// equal checks that a field of the result, got, is want.
func equal[T comparable](field string, got func(result) T, want T) check {
	return func(t *testing.T, r result) {
		t.Helper()
		if v := got(r); v != want {
			t.Errorf("%s = %#v, want %#v\n%s", field, v, want, r)
		}
	}
}

// contains checks that a text field of the result, got, holds every part.
func contains(field string, got func(result) string, parts []string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(got(r), p) {
				t.Errorf("%s lacks %q\n%s", field, p, r)
			}
		}
	}
}

func status(code int) check {
	return equal("statusCode", func(r result) int { return r.StatusCode }, code)
}

func exitCode(code int) check {
	return equal("exitCode", func(r result) int { return r.ExitCode }, code)
}

func response(body string) check {
	return equal("response", func(r result) string { return r.Response }, body)
}

// responseJSON checks that the response is JSON holding at least want's
// fields with their values.
func responseJSON(want map[string]any) check {
	return func(t *testing.T, r result) {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal([]byte(r.Response), &got); err != nil {
			t.Fatalf("response is not a JSON object: %v\n%s", err, r)
		}
		for k, v := range want {
			wantJSON, _ := json.Marshal(v)
			gotJSON, _ := json.Marshal(got[k])
			if string(wantJSON) != string(gotJSON) {
				t.Errorf("response.%s = %s, want %s\n%s", k, gotJSON, wantJSON, r)
			}
		}
	}
}

func headers(want map[string]string) check {
	return func(t *testing.T, r result) {
		t.Helper()
		if len(r.ResponseHeaders) != len(want) {
			t.Errorf("responseHeaders = %v, want %v\n%s", r.ResponseHeaders, want, r)
			return
		}
		for k, v := range want {
			if got, ok := r.ResponseHeaders[k]; !ok || got != v {
				t.Errorf("responseHeaders[%q] = %q, want %q\n%s", k, got, v, r)
			}
		}
	}
}

func getStdout(r result) string { return r.Stdout }
func getStderr(r result) string { return r.Stderr }

func stdout(want string) check        { return equal("stdout", getStdout, want) }
func stderr(want string) check        { return equal("stderr", getStderr, want) }
func stdoutHas(parts ...string) check { return contains("stdout", getStdout, parts) }
func stderrHas(parts ...string) check { return contains("stderr", getStderr, parts) }

func timedOut() check {
	return func(t *testing.T, r result) {
		t.Helper()
		if !r.TimedOut {
			t.Errorf("not timed out\n%s", r)
		}
	}
}

// ok is a successful run with exit code 0.
func ok(code int) check {
	return func(t *testing.T, r result) {
		t.Helper()
		exitCode(0)(t, r)
		status(code)(t, r)
	}
}

// failed is a function failure: exit code 1, status 500, no response body.
func failed() check {
	return func(t *testing.T, r result) {
		t.Helper()
		exitCode(1)(t, r)
		status(500)(t, r)
		response("")(t, r)
	}
}

type testCase struct {
	name   string
	exec   execution
	checks []check
}

// runCases runs every case with the runtime, in parallel.
func runCases(t *testing.T, runtimeName string, cases []testCase) {
	rt := hostRuntime(t, runtimeName)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rt.run(t, tc.exec)
			for _, c := range tc.checks {
				c(t, r)
			}
		})
	}
}
