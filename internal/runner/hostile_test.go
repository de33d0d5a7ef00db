package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kfn-dev/kfn/internal/contract"
)

// The user's code runs as the same user as the runner and may try to forge
// the result the runner reports. These tests play such code.

// forged is the result hostile code would like recorded.
const forged = `{"v":1,"exitCode":0,"statusCode":200,"startedAt":"2026-01-02T03:04:05Z","finishedAt":"2026-01-02T03:04:06Z","duration":1,"response":"FORGED","stdout":"","stderr":""}`

func TestHostileFunctionGetsItsTrueResult(t *testing.T) {
	t.Setenv("FORGED", forged+strings.Repeat(" ", 3000))
	// It writes the termination message first; leaves a process outside
	// its group and without a parent that overwrites the message and the
	// response once the runner is done; ignores SIGTERM; then fails.
	r := runMain(t, sh(`
		printf '%s' "$FORGED" > "$KFN_TERMINATION_MESSAGE_PATH"
		( setsid sh -c 'echo $$; trap "" TERM; sleep 0.5
			printf "%s" "$FORGED" > "$KFN_TERMINATION_MESSAGE_PATH"; echo FORGED > "$KFN_RESPONSE_FILE"' & )
		trap '' TERM
		printf 'the true response' > "$KFN_RESPONSE_FILE"
		sleep 0.1
		exit 3`)...)
	checkStatus(t, r.result, 3, 500)
	if r.result.Response != "the true response" || r.termination.Response != "the true response" {
		t.Errorf("response %q in the log, %q in the termination message", r.result.Response, r.termination.Response)
	}
	checkAllGone(t, r.result.Stdout)
	time.Sleep(time.Second) // when the escaped process would have written
	msg, err := os.ReadFile(os.Getenv("KFN_TERMINATION_MESSAGE_PATH"))
	if err != nil || !bytes.Equal(msg, r.rawMessage) {
		t.Errorf("termination message changed after the runner wrote it: %.200q, %v", msg, err)
	}
}

func TestRunnerIsProtectedFromItsChild(t *testing.T) {
	runMain(t, sh(`true`)...)
	dumpable, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil || dumpable != 0 {
		t.Errorf("PR_GET_DUMPABLE = %d, %v: the child could open /proc/<runner>/fd and mem", dumpable, err)
	}
	var subreaper int32
	err = unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&subreaper)), 0, 0, 0)
	if err != nil || subreaper != 1 {
		t.Errorf("PR_GET_CHILD_SUBREAPER = %d, %v: orphans would escape to init", subreaper, err)
	}
}

func TestTimeoutCannotBeEscaped(t *testing.T) {
	// Ignoring SIGTERM, forking, setsid and double forks out of the group.
	r := runMain(t, sh(`trap '' TERM
		for i in 1 2 3; do ( setsid sh -c 'trap "" TERM; echo $$; exec sleep 30' & ); done
		sh -c 'trap "" TERM; echo $$; exec sleep 30' &
		setsid sh -c 'trap "" TERM; echo $$; exec sleep 30' &
		sleep 30`, "--timeout", "300ms")...)
	checkTimedOut(t, r, "Execution timed out after 0.3s.")
	if max := 300*time.Millisecond + killGrace + 1500*time.Millisecond; r.elapsed > max {
		t.Errorf("took %v, want at most %v", r.elapsed, max)
	}
	if n := strings.Count(r.result.Stdout, "\n"); n != 5 {
		t.Fatalf("stdout %q: want 5 pids", r.result.Stdout)
	}
	checkAllGone(t, r.result.Stdout)
}

// checkAllGone checks that every process whose pid is a line of stdout is gone.
func checkAllGone(t *testing.T, stdout string) {
	t.Helper()
	for _, line := range strings.Fields(stdout) {
		if _, err := strconv.Atoi(line); err == nil {
			checkGone(t, line)
		}
	}
}

func TestAnswerFilesMustBeRegularFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		script, note string
		status       int
		response     int // bytes
	}{
		"symlinked response": {`ln -s /proc/self/environ "$KFN_RESPONSE_FILE"`, "symbolic link", 500, 0},
		"FIFO response":      {`mkfifo "$KFN_RESPONSE_FILE"`, "not a regular file", 500, 0},
		"directory response": {`mkdir "$KFN_RESPONSE_FILE"`, "not a regular file", 500, 0},
		"FIFO status code":   {`mkfifo "$KFN_STATUS_CODE_FILE"`, "not a regular file", 500, 0},
		"symlinked status":   {`echo 201 > "$KFN_IO_DIR/mine"; ln -s "$KFN_IO_DIR/mine" "$KFN_STATUS_CODE_FILE"`, "symbolic link", 500, 0},
		"FIFO headers":       {`mkfifo "$KFN_RESPONSE_HEADERS_FILE"`, "not a regular file", 200, 0},
		// NUL bytes take six in JSON: the first MaxOutputBytes of them are
		// halved to fit the result line.
		"huge sparse response": {`truncate -s 100G "$KFN_RESPONSE_FILE"`, "", 200, contract.MaxOutputBytes / 2},
	} {
		t.Run(name, func(t *testing.T) {
			r := runMain(t, sh(tc.script, "--timeout", "10s")...)
			if r.elapsed > 5*time.Second {
				t.Errorf("took %v", r.elapsed)
			}
			checkStatus(t, r.result, 0, tc.status)
			if !strings.Contains(r.result.Stderr, tc.note) || len(r.result.Response) != tc.response {
				t.Errorf("stderr %q, response of %d bytes; want a note %q and %d bytes", r.result.Stderr, len(r.result.Response), tc.note, tc.response)
			}
		})
	}
}

func TestTerminationMessageIsNotWrittenThroughASymlink(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "elsewhere"), filepath.Join(dir, "termination-log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KFN_IO_DIR", filepath.Join(dir, "io"))
	t.Setenv("KFN_TERMINATION_MESSAGE_PATH", link)
	var stdout, stderr bytes.Buffer
	if code := Main(sh("true"), &stdout, &stderr); code != exitNoReport {
		t.Errorf("Main returned %d, want %d: the container's exit code must not vouch for what the file holds", code, exitNoReport)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) || !strings.Contains(stderr.String(), "reporting the result") {
		t.Errorf("the message went through the link (%v), stderr %q", err, stderr.String())
	}
}

func TestWorstCaseResultFitsTheReadLimit(t *testing.T) {
	control := strings.Repeat("\x01", contract.MaxOutputBytes) // \u0001: 6 bytes each
	headers := map[string]string{}
	for i := range contract.MaxResponseHeaders {
		headers[fmt.Sprintf("h%02d", i)] = strings.Repeat(`"`, contract.MaxResponseHeadersFileBytes/contract.MaxResponseHeaders-3)
	}
	res := &Result{Version: ResultVersion, ExitCode: 124, StatusCode: 500, Duration: 1e9, TimedOut: true,
		Response: control, Stdout: control, Stderr: control, ResponseHeaders: headers,
		Truncated: []string{contract.OutputResponse, contract.OutputStdout, contract.OutputStderr}}
	line, msg, err := Encode(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(line) > contract.MaxResultLineBytes {
		t.Errorf("a result line of %d bytes, over the operator's read limit of %d", len(line), contract.MaxResultLineBytes)
	}
	if len(msg) > contract.MaxTerminationMessageBytes {
		t.Errorf("a header of %d bytes", len(msg))
	}
	if res.Response == "" || !strings.HasPrefix(res.Stdout, stdoutTruncatedPrefix+"\x01") || !strings.HasPrefix(res.Stderr, stderrTruncatedPrefix+"\x01") {
		t.Errorf("the outputs were not cut to fit but dropped: %d, %d, %d bytes", len(res.Response), len(res.Stdout), len(res.Stderr))
	}
	if err := res.Validate(); err != nil {
		t.Errorf("the cut result is invalid: %v", err)
	}
}

func TestParseLogAcceptsOnlyTheLineTheHeaderVouchesFor(t *testing.T) {
	real := &Result{Version: ResultVersion, ExitCode: 3, StatusCode: 500, Stdout: strings.Repeat("x", 5000)}
	line, _ := encode(real)
	header := real.header(line)
	fake := strings.Replace(string(line), `"exitCode":3,"statusCode":500`, `"exitCode":0,"statusCode":200`, 1)
	sameSize := strings.Replace(string(line), `"exitCode":3,`, `"exitCode":0,`, 1)
	junk := strings.Repeat(strings.Repeat("j", 1000)+"\n", 20_000) // 20 MB of padding
	for name, tc := range map[string]struct {
		log string
		ok  bool
	}{
		"the runner's line":          {"\n" + string(line) + "\n", true},
		"fake lines around it":       {fake + "\n" + string(line) + "\n" + fake + "\n{\"v\":1,", true},
		"padding before it":          {junk + string(line) + "\n", true},
		"a same-sized fake":          {"\n" + sameSize + "\n", false},
		"only a fake":                {fake + "\n", false},
		"glued to a partial line":    {`{"v":1,"partial` + string(line) + "\n", false},
		"cut short by a read limit":  {"\n" + string(line[:len(line)-1]), false},
		"fake and a partial line":    {fake + "\n" + `{"v":1,"partial`, false},
		"nothing":                    {"", false},
		"the line with a CR":         {string(line) + "\r\n", false},
		"the line twice, one forged": {fake + "\n" + string(line) + "\n", true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLog([]byte(tc.log), &header)
			if tc.ok != (err == nil) || tc.ok && !reflect.DeepEqual(got, real) {
				t.Errorf("ParseLog = %+v, %v; want the runner's result: %v", got, err, tc.ok)
			}
		})
	}
	for name, h := range map[string]Result{
		"no digest":    {Version: ResultVersion, InLog: true, LogLineBytes: len(line)},
		"no length":    {Version: ResultVersion, InLog: true, LogLineSHA256: header.LogLineSHA256},
		"not inLog":    {Version: ResultVersion, LogLineBytes: len(line), LogLineSHA256: header.LogLineSHA256},
		"short digest": {Version: ResultVersion, InLog: true, LogLineBytes: len(line), LogLineSHA256: "abcd"},
	} {
		if _, err := ParseLog(line, &h); err == nil {
			t.Errorf("%s: ParseLog accepted a header that vouches for no line", name)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := func() *Result {
		start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		return &Result{Version: ResultVersion, StatusCode: 200, StartedAt: start, FinishedAt: start.Add(time.Second), Duration: 1,
			Response: "ok", ResponseHeaders: map[string]string{"content-type": "text/html"}}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("a valid result: %v", err)
	}
	tooMany := map[string]string{}
	for i := range contract.MaxResponseHeaders + 1 {
		tooMany[fmt.Sprintf("h%d", i)] = "v"
	}
	for name, mutate := range map[string]func(*Result){
		"version 2":              func(r *Result) { r.Version = 2 },
		"a header":               func(r *Result) { r.InLog = true },
		"status 99":              func(r *Result) { r.StatusCode = 99 },
		"status 600":             func(r *Result) { r.StatusCode = 600 },
		"200 after exit 1":       func(r *Result) { r.ExitCode = 1 },
		"exit 256":               func(r *Result) { r.ExitCode, r.StatusCode = 256, 500 },
		"negative exit":          func(r *Result) { r.ExitCode, r.StatusCode = -1, 500 },
		"timed out with exit 0":  func(r *Result) { r.TimedOut, r.StatusCode = true, 500 },
		"negative duration":      func(r *Result) { r.Duration = -1 },
		"finished before start":  func(r *Result) { r.FinishedAt = r.StartedAt.Add(-time.Second) },
		"huge response":          func(r *Result) { r.Response = strings.Repeat("r", contract.MaxOutputBytes+1) },
		"invalid UTF-8":          func(r *Result) { r.Stdout = "a\xffb" },
		"unknown truncated":      func(r *Result) { r.Truncated = []string{"spec"} },
		"truncated twice":        func(r *Result) { r.Truncated = []string{"stdout", "stdout"} },
		"101 headers":            func(r *Result) { r.ResponseHeaders = tooMany },
		"upper-case header":      func(r *Result) { r.ResponseHeaders = map[string]string{"Content-Type": "x"} },
		"header name with colon": func(r *Result) { r.ResponseHeaders = map[string]string{"a:b": "x"} },
		"header CRLF":            func(r *Result) { r.ResponseHeaders = map[string]string{"a": "x\r\nset-cookie: y"} },
		"headers too big": func(r *Result) {
			r.ResponseHeaders = map[string]string{"a": strings.Repeat("v", contract.MaxResponseHeadersFileBytes)}
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := valid()
			mutate(r)
			if err := r.Validate(); err == nil {
				t.Errorf("Validate accepted %+v", r)
			}
		})
	}
}

// TestHostileFunctionAsPID1 runs the runner as it runs in a pod: PID 1 of
// its own PID namespace, as an unprivileged user without capabilities, with
// the function as the same user. The function tries to write a forged
// result and a partial line into the runner's log through /proc/1/fd/1,
// and to write the termination message after the runner.
func TestHostileFunctionAsPID1(t *testing.T) {
	dir, cmd := pid1Command(t, sh(`
		if { printf '%s\n{"v":1,"partial' "$FORGED" > /proc/1/fd/1; } 2> /dev/null; then echo LOG-WRITTEN; else echo LOG-DENIED; fi
		if cat /proc/1/environ > /dev/null 2>&1; then echo ENVIRON-READ; else echo ENVIRON-DENIED; fi
		( setsid sh -c 'trap "" TERM; sleep 0.3; printf "%s" "$FORGED" > "$KFN_TERMINATION_MESSAGE_PATH"' & )
		head -c 20000 /dev/zero | tr '\0' x >&2
		printf 'the true response' > "$KFN_RESPONSE_FILE"
		exit 3`)...)
	cmd.Env = append(cmd.Env, "FORGED="+forged)
	// The container log, as a file the function's user could open: only
	// the runner being non-dumpable keeps it out of /proc/1/fd/1.
	logFile, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		defer logFile.Close()
		err = logFile.Chown(65532, 65532)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logFile
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Fatalf("the runner as PID 1: %v, want exit code 3", err)
	}
	msg, err1 := os.ReadFile(filepath.Join(dir, "termination-log"))
	raw, err2 := os.ReadFile(logFile.Name())
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	log := bytes.NewBuffer(raw)
	header, err := ParseTerminationMessage(string(msg))
	if err != nil || !header.InLog {
		t.Fatalf("termination message %q: %v; want a header", msg, err)
	}
	res, err := ParseLog(log.Bytes(), header)
	if err != nil {
		t.Fatalf("ParseLog: %v", err)
	}
	checkStatus(t, res, 3, 500)
	if res.Response != "the true response" || res.Stdout != "LOG-DENIED\nENVIRON-DENIED\n" || len(res.Stderr) != 20000 {
		t.Errorf("response %q, stdout %q, %d bytes of stderr: want the true ones", res.Response, res.Stdout, len(res.Stderr))
	}
	if strings.Contains(log.String(), "FORGED") {
		t.Errorf("the function wrote into the runner's log: %.300q", log.String())
	}
}

// pid1Command returns the command that runs `kfn run args` as PID 1 of a
// new PID namespace, as uid and gid 65532 without capabilities, and the
// directory of its I/O files and termination message. It skips the test
// where that cannot be arranged (not root, no unshare or setpriv).
func pid1Command(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a PID namespace and drop to another user")
	}
	for _, tool := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create a PID namespace: %v: %s", err, out)
	}
	dir := t.TempDir()
	bin, ioDir, msg := filepath.Join(dir, "kfn.test"), filepath.Join(dir, "io"), filepath.Join(dir, "termination-log")
	// In that order: Join takes its arguments as they are evaluated.
	if err := errors.Join(CopySelf(bin), os.Mkdir(ioDir, 0o755), os.WriteFile(msg, nil, 0o644),
		os.Chown(ioDir, 65532, 65532), os.Chown(msg, 65532, 65532),
		os.Chmod(dir, 0o755), os.Chmod(filepath.Dir(dir), 0o755)); err != nil {
		t.Fatal(err)
	}
	encoded, _ := json.Marshal(args)
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		"setpriv", "--reuid=65532", "--regid=65532", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--",
		bin, "-test.run=^TestRunnerHelper$")
	cmd.Env = append(os.Environ(), "KFN_TEST_RUNNER_ARGS="+string(encoded), "HOME=/tmp",
		"KFN_IO_DIR="+ioDir, "KFN_TERMINATION_MESSAGE_PATH="+msg)
	cmd.Stderr = os.Stderr
	return dir, cmd
}

// TestRunnerHelper is `kfn run` in a process of its own, for pid1Command.
func TestRunnerHelper(t *testing.T) {
	encoded := os.Getenv("KFN_TEST_RUNNER_ARGS")
	if encoded == "" {
		t.Skip("runs only as the helper process of another test")
	}
	var args []string
	if err := json.Unmarshal([]byte(encoded), &args); err != nil {
		t.Fatal(err)
	}
	os.Exit(Main(args, os.Stdout, os.Stderr))
}
