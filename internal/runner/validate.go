package runner

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kfn-dev/kfn/internal/contract"
)

// Validate reports whether r is a result this runner can have written, so
// that whoever records it stores nothing else: not a damaged or forged
// message, nor one an API server would refuse.
func (r *Result) Validate() error {
	return errors.Join(r.validateOutcome(), r.validateOutputs(), validateHeaders(r.ResponseHeaders))
}

// validateOutcome checks the codes and times against the contract: only a
// process that exited 0 chooses its status code.
func (r *Result) validateOutcome() error {
	switch {
	case r.Version != ResultVersion:
		return fmt.Errorf("version %d, want %d", r.Version, ResultVersion)
	case r.InLog:
		return errors.New("a header, not a full result")
	case r.StatusCode < 100 || r.StatusCode > 599:
		return fmt.Errorf("status code %d is not from 100 to 599", r.StatusCode)
	case r.ExitCode < 0 || r.ExitCode > 255:
		return fmt.Errorf("exit code %d is not from 0 to 255", r.ExitCode)
	case r.ExitCode != 0 && r.StatusCode != http.StatusInternalServerError:
		return fmt.Errorf("status code %d with exit code %d: a failed process answers 500", r.StatusCode, r.ExitCode)
	case r.TimedOut && r.ExitCode != exitTimedOut:
		return fmt.Errorf("timed out with exit code %d, want %d", r.ExitCode, exitTimedOut)
	case !(r.Duration >= 0) || r.FinishedAt.Before(r.StartedAt):
		return fmt.Errorf("duration %v from %v to %v", r.Duration, r.StartedAt, r.FinishedAt)
	}
	return nil
}

func (r *Result) validateOutputs() error {
	for _, out := range []struct{ name, text string }{
		{contract.OutputResponse, r.Response}, {contract.OutputStdout, r.Stdout}, {contract.OutputStderr, r.Stderr},
	} {
		if len(out.text) > contract.MaxOutputBytes || !utf8.ValidString(out.text) {
			return fmt.Errorf("%s is over %d bytes or not valid UTF-8", out.name, contract.MaxOutputBytes)
		}
	}
	names := []string{contract.OutputResponse, contract.OutputStdout, contract.OutputStderr}
	for i, name := range r.Truncated {
		if !slices.Contains(names, name) || slices.Contains(r.Truncated[:i], name) {
			return fmt.Errorf("truncated names %q", r.Truncated)
		}
	}
	return nil
}

// validateHeaders checks the headers as the runner reads them from the
// headers file, within its limits.
func validateHeaders(headers map[string]string) error {
	if len(headers) > contract.MaxResponseHeaders {
		return fmt.Errorf("%d response headers, over %d", len(headers), contract.MaxResponseHeaders)
	}
	size := 0
	for name, value := range headers {
		if !contract.ValidHeaderName(name) || name != strings.ToLower(name) || !contract.ValidHeaderValue(value) {
			return fmt.Errorf("invalid response header %q: %q", name, value)
		}
		size += len(name) + len(value)
	}
	if size > contract.MaxResponseHeadersFileBytes {
		return fmt.Errorf("response headers of %d bytes, over %d", size, contract.MaxResponseHeadersFileBytes)
	}
	return nil
}
