package runner

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kfn-dev/kfn/internal/contract"
)

// run is one run of Main and everything it reported.
type run struct {
	exit        int
	log         []byte  // Main's stdout
	result      *Result // decoded from log
	termination *Result // decoded from the termination message
	rawMessage  []byte  // the termination message
	stderr      string  // Main's own stderr
	elapsed     time.Duration
}

// runMain runs Main with args in a fresh I/O directory and decodes what it
// reports.
func runMain(t *testing.T, args ...string) run {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("KFN_IO_DIR", filepath.Join(dir, "io"))
	t.Setenv("KFN_TERMINATION_MESSAGE_PATH", filepath.Join(dir, "termination-log"))

	var stdout, stderr bytes.Buffer
	began := time.Now()
	exit := Main(args, &stdout, &stderr)
	r := run{exit: exit, log: stdout.Bytes(), stderr: stderr.String(), elapsed: time.Since(began)}

	line, ok := bytes.CutPrefix(r.log, []byte("\n"))
	if n := bytes.Count(line, []byte("\n")); !ok || n != 1 || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("log %.200q: want exactly one JSON line, after a newline; runner stderr: %s", r.log, r.stderr)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	var err error
	if r.result, err = decode(line); err != nil {
		t.Fatalf("decoding the log: %v", err)
	}
	if err := r.result.Validate(); err != nil {
		t.Errorf("the runner reported an invalid result: %v", err)
	}
	if r.rawMessage, err = os.ReadFile(filepath.Join(dir, "termination-log")); err != nil {
		t.Fatal(err)
	}
	if len(r.rawMessage) > contract.MaxTerminationMessageBytes {
		t.Errorf("termination message is %d bytes, want at most %d", len(r.rawMessage), contract.MaxTerminationMessageBytes)
	}
	if r.termination, err = ParseTerminationMessage(string(r.rawMessage)); err != nil {
		t.Fatalf("ParseTerminationMessage: %v", err)
	}
	if r.termination.InLog {
		if got, err := ParseLog(r.log, r.termination); err != nil || !reflect.DeepEqual(got, r.result) {
			t.Errorf("ParseLog with the termination message: %+v, %v; want the logged result", got, err)
		}
	}
	if r.exit != r.result.ExitCode {
		t.Errorf("Main returned %d, want the result's ExitCode %d", r.exit, r.result.ExitCode)
	}
	return r
}

// sh returns the arguments of `kfn run` that run script with /bin/sh.
func sh(script string, flags ...string) []string {
	return append(flags, "--", "/bin/sh", "-c", script)
}

func checkStatus(t *testing.T, res *Result, exitCode, statusCode int) {
	t.Helper()
	if res.ExitCode != exitCode || res.StatusCode != statusCode {
		t.Errorf("exit code %d, status %d; want %d, %d (stderr: %q)",
			res.ExitCode, res.StatusCode, exitCode, statusCode, res.Stderr)
	}
	if want := statusCode >= 500; res.Failed() != want {
		t.Errorf("Failed() = %v, want %v", res.Failed(), want)
	}
}

func TestResponseAndStatusCode(t *testing.T) {
	r := runMain(t, sh(`printf '{"ok":true}' > "$KFN_RESPONSE_FILE"; echo 201 > "$KFN_STATUS_CODE_FILE"`)...)
	res := r.result
	checkStatus(t, res, 0, 201)
	if res.Version != ResultVersion || res.Response != `{"ok":true}` || res.TimedOut || res.InLog {
		t.Errorf("unexpected result %+v", res)
	}
	if res.Duration <= 0 || res.FinishedAt.Before(res.StartedAt) {
		t.Errorf("duration %v from %v to %v", res.Duration, res.StartedAt, res.FinishedAt)
	}
}

func TestSuccessWithoutResponse(t *testing.T) {
	res := runMain(t, sh(`true`)...).result
	checkStatus(t, res, 0, 200)
	if res.Response != "" || res.Stdout != "" || res.Stderr != "" {
		t.Errorf("unexpected output in %+v", res)
	}
}

func TestStdoutAndStderrAreSeparate(t *testing.T) {
	res := runMain(t, sh(`echo out1; echo err1 >&2; echo out2`)...).result
	if res.Stdout != "out1\nout2\n" || res.Stderr != "err1\n" {
		t.Errorf("stdout %q, stderr %q", res.Stdout, res.Stderr)
	}
}

func TestNonZeroExitFails(t *testing.T) {
	r := runMain(t, sh(`echo 200 > "$KFN_STATUS_CODE_FILE"; printf partial > "$KFN_RESPONSE_FILE"; exit 3`)...)
	checkStatus(t, r.result, 3, 500)
	if r.result.Response != "partial" {
		t.Errorf("response %q, want the one written before failing", r.result.Response)
	}
}

func TestKilledBySignal(t *testing.T) {
	res := runMain(t, sh(`kill -KILL $$`)...).result
	checkStatus(t, res, 128+int(syscall.SIGKILL), 500)
}

func TestRequestBodyOnStdinAndFile(t *testing.T) {
	body := "héllo\nworld\n"
	t.Setenv("APPWRITE_FUNCTION_DATA", body)
	res := runMain(t, sh(`cat; cat "$KFN_REQUEST_FILE" >&2; test "$KFN_REQUEST_FILE" = "$KFN_IO_DIR/request"`)...).result
	checkStatus(t, res, 0, 200)
	if res.Stdout != body || res.Stderr != body {
		t.Errorf("stdin gave %q, request file gave %q; want %q", res.Stdout, res.Stderr, body)
	}
}

func TestStatusCodeFile(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    int
	}{
		{" 404 \n", 404},
		{"599", 599},
		{"100", 100},
		{"abc", 500},
		{"600", 500},
		{"99", 500},
		{"", 500},
		{"200 OK", 500},
	} {
		t.Run(strconv.Quote(tc.content), func(t *testing.T) {
			t.Setenv("STATUS", tc.content)
			res := runMain(t, sh(`printf %s "$STATUS" > "$KFN_STATUS_CODE_FILE"`)...).result
			checkStatus(t, res, 0, tc.want)
			invalid := strings.Contains(res.Stderr, "invalid status code")
			if invalid != (tc.want == 500) {
				t.Errorf("stderr %q: want a message if and only if the code is invalid", res.Stderr)
			}
		})
	}
}

func TestResponseHeadersFile(t *testing.T) {
	r := runMain(t, sh(`printf 'Content-Type: application/json\r\nX-Trace-Id:  abc \n\nx-trace-id: def\n' > "$KFN_RESPONSE_HEADERS_FILE"`)...)
	want := map[string]string{"content-type": "application/json", "x-trace-id": "def"}
	if got := r.result.ResponseHeaders; !reflect.DeepEqual(got, want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	if !reflect.DeepEqual(r.termination.ResponseHeaders, want) {
		t.Errorf("a small result keeps its headers in the termination message: %v", r.termination.ResponseHeaders)
	}

	for name, content := range map[string]string{
		"no colon":     "just text\n",
		"bad name":     "bad name: v\n",
		"leading dash": "-x: v\n",
		"too many": strings.Repeat("h: v\n", 1) + func() string {
			var b strings.Builder
			for i := 0; i <= contract.MaxResponseHeaders; i++ {
				fmt.Fprintf(&b, "h%d: v\n", i)
			}
			return b.String()
		}(),
		"too big":           "h: " + strings.Repeat("v", contract.MaxResponseHeadersFileBytes) + "\n",
		"control character": "h: a\x01b\n",
		"invalid UTF-8":     "h: a\xffb\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("HEADERS", content)
			res := runMain(t, sh(`printf %s "$HEADERS" > "$KFN_RESPONSE_HEADERS_FILE"`)...).result
			checkStatus(t, res, 0, 200)
			if res.ResponseHeaders != nil || !strings.Contains(res.Stderr, "no response headers were set") {
				t.Errorf("headers %v, stderr %q: want none and a message", res.ResponseHeaders, res.Stderr)
			}
		})
	}
}

func TestLargeBodyFromParts(t *testing.T) {
	parts := t.TempDir()
	// What a projected volume holds besides the files: its own dot links.
	if err := os.Mkdir(filepath.Join(parts, "..data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"000": "first-", "001": "second-", "002": "third"} {
		if err := os.WriteFile(filepath.Join(parts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KFN_REQUEST_BODY_DIR", parts)
	t.Setenv("APPWRITE_FUNCTION_DATA", "")
	res := runMain(t, sh(`cat "$KFN_REQUEST_FILE"; echo; cat`)...).result
	if res.Stdout != "first-second-third\nfirst-second-third" {
		t.Errorf("stdout %q: want the parts joined, from the file and on stdin", res.Stdout)
	}
}

func TestTimeout(t *testing.T) {
	r := runMain(t, sh(`echo started; sleep 5`, "--timeout", "300ms")...)
	checkTimedOut(t, r, "Execution timed out after 0.3s.")
	if r.result.Stdout != "started\n" {
		t.Errorf("stdout %q, want the output from before the timeout", r.result.Stdout)
	}
}

func TestTimeoutFromEnvironment(t *testing.T) {
	t.Setenv("KFN_TIMEOUT", "1")
	checkTimedOut(t, runMain(t, sh(`sleep 5`)...), "Execution timed out after 1s.")
}

func TestTimeoutKillsChildIgnoringSIGTERM(t *testing.T) {
	// Ignored signals stay ignored across exec, so sleep ignores SIGTERM too.
	r := runMain(t, sh(`trap '' TERM; sleep 30`, "--timeout", "300ms")...)
	checkTimedOut(t, r, "Execution timed out after 0.3s.")
	if r.elapsed < killGrace {
		t.Errorf("returned after %v, before the SIGTERM grace of %v", r.elapsed, killGrace)
	}
}

func TestTimeoutKillsGrandchildren(t *testing.T) {
	r := runMain(t, sh(`sleep 100 & echo $!; wait`, "--timeout", "300ms")...)
	checkTimedOut(t, r, "Execution timed out after 0.3s.")
	checkGone(t, r.result.Stdout)
}

func TestLeftoverProcessesAreKilled(t *testing.T) {
	// The background sleep keeps stdout open: the runner must not wait for it.
	r := runMain(t, sh(`sleep 100 & echo $!`)...)
	checkStatus(t, r.result, 0, 200)
	if r.elapsed > 4*time.Second {
		t.Errorf("took %v", r.elapsed)
	}
	checkGone(t, r.result.Stdout)
}

func checkTimedOut(t *testing.T, r run, message string) {
	t.Helper()
	checkStatus(t, r.result, 124, 500)
	if !r.result.TimedOut || !strings.HasSuffix(r.result.Stderr, message+"\n") {
		t.Errorf("TimedOut %v, stderr %q; want true and a line %q", r.result.TimedOut, r.result.Stderr, message)
	}
	if r.elapsed > 4*time.Second {
		t.Errorf("took %v, the child was not stopped", r.elapsed)
	}
}

// checkGone checks that the process whose pid is printed in stdout is gone
// (or a zombie, if no one reaps orphans where the tests run).
func checkGone(t *testing.T, stdout string) {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && isZombie(stat) {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("process %d is still running", pid)
}

// isZombie reads the state in /proc/PID/stat: "pid (comm) S ...".
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && bytes.HasPrefix(stat[i+1:], []byte(" Z"))
}

func TestRunnerSignalIsForwarded(t *testing.T) {
	// The child signals the runner itself, as the kubelet does on pod deletion.
	r := runMain(t, sh(`kill -TERM $PPID; sleep 5`)...)
	checkStatus(t, r.result, 128+int(syscall.SIGTERM), 500)
	if !strings.HasSuffix(r.result.Stderr, "Execution was terminated by signal SIGTERM.\n") {
		t.Errorf("stderr %q", r.result.Stderr)
	}
	if r.elapsed > 4*time.Second {
		t.Errorf("took %v, the signal was not forwarded", r.elapsed)
	}
}

func TestOutputsAreTruncatedKeepingTheTail(t *testing.T) {
	r := runMain(t, sh(`head -c 1500000 /dev/zero | tr '\0' a; echo END
		head -c 1500000 /dev/zero | tr '\0' b >&2; echo END >&2`)...)
	for _, out := range []struct{ name, text, prefix, fill string }{
		{"stdout", r.result.Stdout, stdoutTruncatedPrefix, "a"},
		{"stderr", r.result.Stderr, stderrTruncatedPrefix, "b"},
	} {
		if len(out.text) != contract.MaxOutputBytes {
			t.Errorf("%s is %d bytes, want %d", out.name, len(out.text), contract.MaxOutputBytes)
		}
		kept, ok := strings.CutPrefix(out.text, out.prefix)
		if !ok {
			t.Errorf("%s starts with %.80q, want the truncation prefix", out.name, out.text)
		}
		if strings.Trim(strings.TrimSuffix(kept, "END\n"), out.fill) != "" || !strings.HasSuffix(kept, "END\n") {
			t.Errorf("%s does not keep the tail of the output", out.name)
		}
	}
	if want := []string{"stdout", "stderr"}; !reflect.DeepEqual(r.result.Truncated, want) {
		t.Errorf("truncated %q, want %q", r.result.Truncated, want)
	}
}

func TestResponseIsTruncatedKeepingTheHead(t *testing.T) {
	res := runMain(t, sh(`{ printf START; head -c 1500000 /dev/zero | tr '\0' x; } > "$KFN_RESPONSE_FILE"`)...).result
	if len(res.Response) != contract.MaxOutputBytes || !strings.HasPrefix(res.Response, "START") {
		t.Errorf("response is %d bytes starting with %.10q, want %d starting with START",
			len(res.Response), res.Response, contract.MaxOutputBytes)
	}
	if want := []string{"response"}; !reflect.DeepEqual(res.Truncated, want) {
		t.Errorf("truncated %q, want %q", res.Truncated, want)
	}
	checkStatus(t, res, 0, 200)
}

func TestInvalidUTF8IsReplaced(t *testing.T) {
	res := runMain(t, sh(`printf 'a\377b'; printf 'c\377d' >&2; printf 'e\377f' > "$KFN_RESPONSE_FILE"`)...).result
	if res.Stdout != "a\uFFFDb" || res.Stderr != "c\uFFFDd" || res.Response != "e\uFFFDf" {
		t.Errorf("stdout %q, stderr %q, response %q", res.Stdout, res.Stderr, res.Response)
	}
}

func TestLargeResultIsInTheLog(t *testing.T) {
	r := runMain(t, sh(`head -c 10000 /dev/zero | tr '\0' x; echo 503 > "$KFN_STATUS_CODE_FILE"`)...)
	if len(r.result.Stdout) != 10000 {
		t.Errorf("log has %d bytes of stdout, want 10000", len(r.result.Stdout))
	}
	if len(r.log) <= contract.MaxTerminationMessageBytes {
		t.Fatalf("log of %d bytes: the test needs a result bigger than a termination message", len(r.log))
	}
	want := r.result.header(bytes.Trim(r.log, "\n"))
	if !reflect.DeepEqual(*r.termination, want) {
		t.Errorf("termination message %+v, want the header %+v", *r.termination, want)
	}
	if !r.termination.InLog || !r.termination.Failed() {
		t.Errorf("termination message %s: want inLog and the failed status", r.rawMessage)
	}
}

func TestSmallResultIsInTheTerminationMessage(t *testing.T) {
	r := runMain(t, sh(`echo hello; echo oops >&2; printf body > "$KFN_RESPONSE_FILE"`)...)
	if r.termination.InLog || !reflect.DeepEqual(r.termination, r.result) {
		t.Errorf("termination message %+v, want the full result %+v", r.termination, r.result)
	}
	if r.termination.Stdout != "hello\n" || r.termination.Stderr != "oops\n" || r.termination.Response != "body" {
		t.Errorf("termination message %s misses outputs", r.rawMessage)
	}
}

func TestCommandCannotStart(t *testing.T) {
	notExecutable := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, command := range []string{"kfn-no-such-command", "/no/such/command", notExecutable} {
		t.Run(command, func(t *testing.T) {
			res := runMain(t, "--", command, "arg").result
			checkStatus(t, res, 127, 500)
			if !strings.Contains(res.Stderr, "cannot start") || !strings.Contains(res.Stderr, filepath.Base(command)) {
				t.Errorf("stderr %q does not explain the failure", res.Stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"no command":       {"--timeout", "1s"},
		"bad timeout":      sh("true", "--timeout", "soon"),
		"negative timeout": sh("true", "--timeout", "-1s"),
		"unknown flag":     sh("true", "--verbose"),
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("Main returned %d, want %d", code, exitUsage)
			}
			if stdout.Len() != 0 || !strings.Contains(stderr.String(), "usage:") {
				t.Errorf("stdout %q, stderr %q; want only usage on stderr", stdout.String(), stderr.String())
			}
		})
	}
	t.Run("bad KFN_TIMEOUT", func(t *testing.T) {
		t.Setenv("KFN_TIMEOUT", "1.5")
		if code := Main(sh("true"), &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
			t.Errorf("Main returned %d, want %d", code, exitUsage)
		}
	})
}

func TestCopySelf(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "kfn", "bin", "kfn")
	// Twice: the second copy replaces the first.
	for range 2 {
		if err := CopySelf(dest); err != nil {
			t.Fatal(err)
		}
	}
	info, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode() != 0o755 {
		t.Errorf("mode %v, want 0755", info.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 1 {
		t.Errorf("%d files next to the copy, want no temporary file left", len(entries))
	}
	// The copy is this test binary: running no test proves it runs.
	if out, err := exec.Command(dest, "-test.run=^$").CombinedOutput(); err != nil {
		t.Errorf("running the copy: %v: %s", err, out)
	}
}

func TestTailBuffer(t *testing.T) {
	var all []byte
	tb := tailBuffer{limit: 10}
	for i, n := range []int{3, 0, 7, 4, 15, 1, 9, 10, 2} {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, n)
		tb.Write(chunk)
		all = append(all, chunk...)
		want := all[max(0, len(all)-10):]
		if got := tb.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("after %d writes: %q, want %q", i+1, got, want)
		}
		if tb.Truncated() != (len(all) > 10) {
			t.Fatalf("after %d writes: Truncated() = %v with %d bytes written", i+1, tb.Truncated(), len(all))
		}
	}
}

func TestTruncationCutsOnRuneBoundaries(t *testing.T) {
	// Starts in the middle of a rune, as a kept tail can.
	raw := []byte(strings.Repeat("é", contract.MaxOutputBytes/2))[1:]
	tail, _ := keepTail(raw, true, stdoutTruncatedPrefix)
	if !utf8.ValidString(tail) || len(tail) > contract.MaxOutputBytes || strings.ContainsRune(tail, utf8.RuneError) {
		t.Errorf("tail of %d bytes, valid %v", len(tail), utf8.ValidString(tail))
	}
	head, _ := keepHead([]byte(strings.Repeat("é", contract.MaxOutputBytes)))
	if !utf8.ValidString(head) || len(head) != contract.MaxOutputBytes {
		t.Errorf("head of %d bytes, valid %v", len(head), utf8.ValidString(head))
	}
	// Replacing invalid bytes makes text longer: it must still fit.
	grown, _ := keepTail(bytes.Repeat([]byte("a\xff"), contract.MaxOutputBytes/2), false, stderrTruncatedPrefix)
	if !utf8.ValidString(grown) || len(grown) > contract.MaxOutputBytes || !strings.HasPrefix(grown, stderrTruncatedPrefix) {
		t.Errorf("grown text of %d bytes, valid %v", len(grown), utf8.ValidString(grown))
	}
}
