// Package runner is the in-pod side of an execution: `kfn run` runs the
// user's command, captures what it produces and reports a Result to the
// controller through the container's termination message and log, so that no
// network path between the pod and the controller is needed.
//
// The contract with function authors is described in docs/runtime-contract.md.
package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kfn-dev/kfn/internal/contract"
)

// ResultVersion is the version of the Result encoding written by this runner.
const ResultVersion = 1

// Result is what the runner reports about one run of the user's code.
type Result struct {
	Version    int       `json:"v"`          // always ResultVersion (1)
	ExitCode   int       `json:"exitCode"`   // the user's process exit code; 124 on timeout; 127 if the command could not be started
	StatusCode int       `json:"statusCode"` // HTTP status of the function's response
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Duration   float64   `json:"duration"` // seconds, float, measured by the runner around the user's process
	TimedOut   bool      `json:"timedOut,omitempty"`
	Response   string    `json:"response"`
	Stdout     string    `json:"stdout"`
	Stderr     string    `json:"stderr"`
	// Truncated names the outputs (contract.OutputResponse, …) the runner
	// cut to contract.MaxOutputBytes, so the record can say so.
	Truncated []string `json:"truncated,omitempty"`
	// ResponseHeaders are the headers the function set on its response,
	// names lower-cased.
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`
	// InLog is true in a termination message that carries only the header
	// because the whole result did not fit: read it from the container log.
	InLog bool `json:"inLog,omitempty"`
	// LogLineBytes and LogLineSHA256 (hex), in such a header, identify the
	// exact line the runner wrote to the log: the only line to accept, as
	// the log is not the runner's alone to write.
	LogLineBytes  int    `json:"logLineBytes,omitempty"`
	LogLineSHA256 string `json:"logLineSHA256,omitempty"`
}

// Failed reports whether the execution failed: Appwrite 1.0 semantics, statusCode >= 500.
func (r *Result) Failed() bool {
	return r.StatusCode >= http.StatusInternalServerError
}

// setOutputs sets the response, stdout and stderr with notes appended, each
// within contract.MaxOutputBytes, and names those that had to be cut.
func (r *Result) setOutputs(response []byte, stdout, stderr *tailBuffer, notes []string) {
	var cut [3]bool
	r.Response, cut[0] = keepHead(response)
	r.Stdout, cut[1] = keepTail(stdout.Bytes(), stdout.Truncated(), stdoutTruncatedPrefix)
	r.Stderr, cut[2] = keepTail(appendLines(stderr.Bytes(), notes...), stderr.Truncated(), stderrTruncatedPrefix)
	for i, name := range []string{contract.OutputResponse, contract.OutputStdout, contract.OutputStderr} {
		if cut[i] {
			r.Truncated = append(r.Truncated, name)
		}
	}
}

// header returns the result without its bulky fields, marked as to be read
// from the log, where line is its encoding.
func (r Result) header(line []byte) Result {
	r.Response, r.Stdout, r.Stderr, r.ResponseHeaders = "", "", "", nil
	r.InLog = true
	sum := sha256.Sum256(line)
	r.LogLineBytes, r.LogLineSHA256 = len(line), hex.EncodeToString(sum[:])
	return r
}

// encode returns r as one line of JSON, without the trailing newline.
func encode(r *Result) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Escaping <, > and & only makes the result bigger: it is never embedded in HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Encode returns what the runner reports for r: its line in the container
// log (without the newlines around it) and its termination message.
func Encode(r *Result) (line, message []byte, err error) {
	if line, err = fitLine(r); err != nil {
		return nil, nil, err
	}
	message, err = terminationMessage(r, line)
	return line, message, err
}

// fitLine encodes r, first cutting its largest output in half (the
// response keeps its start, the logs their end) until the line is at most
// contract.MaxResultLineBytes.
func fitLine(r *Result) ([]byte, error) {
	for {
		line, err := encode(r)
		if err != nil || len(line) <= contract.MaxResultLineBytes {
			return line, err
		}
		r.halveLargestOutput()
	}
}

func (r *Result) halveLargestOutput() {
	outputs := []struct {
		text         *string
		name, prefix string
	}{
		{&r.Response, contract.OutputResponse, ""},
		{&r.Stdout, contract.OutputStdout, stdoutTruncatedPrefix},
		{&r.Stderr, contract.OutputStderr, stderrTruncatedPrefix},
	}
	largest := outputs[0]
	for _, o := range outputs[1:] {
		if len(*o.text) > len(*largest.text) {
			largest = o
		}
	}
	text := *largest.text
	if largest.prefix == "" {
		end := len(text) / 2
		for end > 0 && !utf8.RuneStart(text[end]) {
			end--
		}
		*largest.text = text[:end]
	} else {
		text = strings.TrimPrefix(text, largest.prefix)
		start := len(text) - len(text)/2
		for start < len(text) && !utf8.RuneStart(text[start]) {
			start++
		}
		*largest.text = largest.prefix + text[start:]
	}
	if !slices.Contains(r.Truncated, largest.name) {
		r.Truncated = append(r.Truncated, largest.name)
	}
}

// terminationMessage returns what fits in the termination message: the whole
// encoded result if possible, its header otherwise.
func terminationMessage(r *Result, encoded []byte) ([]byte, error) {
	if len(encoded) <= contract.MaxTerminationMessageBytes {
		return encoded, nil
	}
	h := r.header(encoded)
	return encode(&h)
}

// ParseTerminationMessage decodes a termination message written by the runner.
func ParseTerminationMessage(msg string) (*Result, error) {
	return decode([]byte(strings.TrimSpace(msg)))
}

// ParseLog returns the result that header, the termination message, says
// is in the runner's container log: the line of exactly
// header.LogLineBytes bytes whose SHA-256 is header.LogLineSHA256. Any other
// line is ignored, as the log may hold lines the runner did not write.
func ParseLog(log []byte, header *Result) (*Result, error) {
	want, err := hex.DecodeString(header.LogLineSHA256)
	if !header.InLog || header.LogLineBytes <= 0 || err != nil || len(want) != sha256.Size {
		return nil, errors.New("the termination message does not identify a result line")
	}
	lines := bytes.Split(log, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		if len(line) != header.LogLineBytes {
			continue
		}
		if sum := sha256.Sum256(line); bytes.Equal(sum[:], want) {
			return decode(line)
		}
	}
	return nil, fmt.Errorf("no line of %d bytes with SHA-256 %s in the %d bytes read from the log",
		header.LogLineBytes, header.LogLineSHA256, len(log))
}

func decode(data []byte) (*Result, error) {
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding runner result: %w", err)
	}
	if r.Version != ResultVersion {
		return nil, fmt.Errorf("unsupported runner result version %d (want %d)", r.Version, ResultVersion)
	}
	return &r, nil
}
