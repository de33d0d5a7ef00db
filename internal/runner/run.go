package runner

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kfn-dev/kfn/internal/contract"
)

const (
	// exitTimedOut and exitCannotStart follow timeout(1) and the shell.
	exitTimedOut    = 124
	exitCannotStart = 127
	// exitUsage is the runner's own exit code when it is misconfigured and
	// runs nothing. exitNoReport is its exit code when it could not write
	// its result: a message the user's code left in the file then does not
	// match the container's exit code, so the operator does not take it
	// for the runner's (unless it claims exit code 2, hence a failure).
	exitUsage    = 2
	exitNoReport = 2
)

const usage = `usage: kfn run [--timeout DURATION] -- command [args...]

Runs command, then prints its result as one line of JSON on stdout and writes
it to the termination message file.

  --timeout DURATION  stop the command after DURATION, e.g. 30s (default:
                      $KFN_TIMEOUT seconds; 0 or unset: no timeout)

Environment: KFN_TIMEOUT, KFN_IO_DIR (default /kfn/io),
KFN_TERMINATION_MESSAGE_PATH (default /dev/termination-log).
`

// config is what `kfn run` is asked to do.
type config struct {
	command                []string
	timeout                time.Duration // 0: none
	ioDir                  string
	terminationMessagePath string
}

// Main implements `kfn run [flags] -- command [args...]`; args are the
// arguments after "run". It returns the process exit code: the user's
// ExitCode, or 2 if the runner is misconfigured and runs nothing.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "kfn run: %v\n\n%s", err, usage)
		return exitUsage
	}

	// Catch termination before anything else, so that a pod deleted at any
	// moment still reports a result.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	res := execute(cfg, signals)
	if err := report(res, cfg.terminationMessagePath, stdout); err != nil {
		fmt.Fprintf(stderr, "kfn run: reporting the result: %v\n", err)
		return exitNoReport
	}
	return res.ExitCode
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	cfg := config{
		ioDir:                  getenv(contract.EnvIODir),
		terminationMessagePath: getenv(contract.EnvTerminationMessagePath),
	}
	if cfg.ioDir == "" {
		cfg.ioDir = contract.IODir
	}
	if cfg.terminationMessagePath == "" {
		cfg.terminationMessagePath = contract.DefaultTerminationMessagePath
	}
	envTimeout, err := parseSeconds(getenv(contract.EnvTimeout))
	if err != nil {
		return cfg, fmt.Errorf("invalid %s: %w", contract.EnvTimeout, err)
	}

	flags := flag.NewFlagSet("kfn run", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // Main prints errors and usage itself
	flags.DurationVar(&cfg.timeout, "timeout", envTimeout, "")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	cfg.command = flags.Args()
	if len(cfg.command) == 0 {
		return cfg, errors.New("no command given")
	}
	if cfg.timeout < 0 {
		return cfg, fmt.Errorf("negative timeout %v", cfg.timeout)
	}
	// The user's code may change directory: give it absolute paths.
	if cfg.ioDir, err = filepath.Abs(cfg.ioDir); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parseSeconds parses a whole number of seconds; empty means 0.
func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a whole number of seconds", s)
	}
	return time.Duration(n) * time.Second, nil
}

// execute runs the user's command and returns its result; it never fails,
// as every failure is something to report.
func execute(cfg config, signals <-chan os.Signal) *Result {
	files := newIOFiles(cfg.ioDir)
	body, err := requestBody()
	if err != nil {
		return cannotStart(err)
	}
	stdin, err := files.prepare(body)
	if err != nil {
		return cannotStart(fmt.Errorf("preparing %s: %w", cfg.ioDir, err))
	}
	defer stdin.Close()

	if err := protect(); err != nil {
		return cannotStart(err)
	}
	env := append(os.Environ(), files.env()...)
	started := time.Now()
	c, err := startChild(cfg.command, env, stdin)
	if err != nil {
		return cannotStart(err)
	}
	end := c.wait(cfg.timeout, signals)
	finished := time.Now()
	stdout, stderr := c.output()

	res := &Result{
		Version:    ResultVersion,
		StatusCode: http.StatusInternalServerError,
		StartedAt:  started.UTC(),
		FinishedAt: finished.UTC(),
		Duration:   finished.Sub(started).Seconds(),
		TimedOut:   end.timedOut,
	}
	exit, note := outcome(end, cfg.timeout)
	res.ExitCode = exit
	var notes []string
	if note != "" {
		notes = append(notes, note)
	}
	response, fileNotes := readAnswer(res, files)
	if end.survivors > 0 {
		// They may still change the outputs or the termination message.
		res.StatusCode = http.StatusInternalServerError
		fileNotes = append(fileNotes, fmt.Sprintf("kfn: %d processes of the function could not be killed.", end.survivors))
	}
	res.setOutputs(response, stdout, stderr, append(notes, fileNotes...))
	return res
}

// readAnswer reads the response body, and sets the response headers and
// status code the user's code chose; the notes explain what could not be
// read, for stderr.
func readAnswer(res *Result, files ioFiles) (response []byte, notes []string) {
	response, responseErr := files.readResponse()
	if responseErr != nil {
		notes = append(notes, responseErr.Error())
	}
	if headers, err := files.readResponseHeaders(); err != nil {
		notes = append(notes, err.Error())
	} else {
		res.ResponseHeaders = headers
	}
	// Only a successful process with an intact response gets to choose its
	// status code.
	if res.ExitCode == 0 && responseErr == nil {
		if code, err := files.readStatusCode(); err != nil {
			notes = append(notes, err.Error())
		} else {
			res.StatusCode = code
		}
	}
	return response, notes
}

// outcome returns the exit code to report for how the child ended, and the
// line to append to its stderr to explain it, if any.
func outcome(end ending, timeout time.Duration) (exitCode int, note string) {
	switch {
	case end.timedOut:
		return exitTimedOut, fmt.Sprintf("Execution timed out after %ss.",
			strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	case end.signal != 0:
		return 128 + int(end.signal), fmt.Sprintf("Execution was terminated by signal %s.", signalName(end.signal))
	case end.state == nil:
		return 1, fmt.Sprintf("kfn: waiting for the command: %v", end.waitErr)
	}
	return exitCodeOf(end.state), ""
}

// cannotStart returns the result of a command that could not be started.
func cannotStart(err error) *Result {
	now := time.Now().UTC()
	res := &Result{
		Version:    ResultVersion,
		ExitCode:   exitCannotStart,
		StatusCode: http.StatusInternalServerError,
		StartedAt:  now,
		FinishedAt: now,
	}
	res.setOutputs(nil, &tailBuffer{}, &tailBuffer{}, []string{fmt.Sprintf("kfn: cannot start the command: %v", err)})
	return res
}

// report writes the result as one line on log (the container log), then
// writes the termination message.
func report(res *Result, terminationMessagePath string, log io.Writer) error {
	line, msg, err := Encode(res)
	if err != nil {
		return err
	}
	// On a line of its own even if something ran into the log before it.
	_, logErr := log.Write(append(append([]byte{'\n'}, line...), '\n'))
	return errors.Join(logErr, writeTerminationMessage(terminationMessagePath, msg))
}

// writeTerminationMessage replaces whatever the user's code wrote to the
// file (it can open it too) with msg, or leaves it empty: never a mix.
func writeTerminationMessage(path string, msg []byte) error {
	// Not through a symlink: the message would land elsewhere, leaving the
	// file to the code.
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	if _, err = file.Write(msg); err != nil {
		err = errors.Join(err, file.Truncate(0))
	}
	return errors.Join(err, file.Close())
}
