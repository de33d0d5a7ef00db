package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kfn-dev/kfn/internal/contract"
)

// maxStatusCodeFileBytes is more than any valid status code file needs.
const maxStatusCodeFileBytes = 64

// ioFiles are the files through which the user's code gets the request body
// and gives the response.
type ioFiles struct {
	dir, request, response, statusCode, responseHeaders string
}

func newIOFiles(dir string) ioFiles {
	return ioFiles{
		dir:             dir,
		request:         filepath.Join(dir, contract.RequestFile),
		response:        filepath.Join(dir, contract.ResponseFile),
		statusCode:      filepath.Join(dir, contract.StatusCodeFile),
		responseHeaders: filepath.Join(dir, contract.ResponseHeadersFile),
	}
}

// env returns the variables that tell the user's code where the files are.
func (f ioFiles) env() []string {
	return []string{
		contract.EnvRequestFile + "=" + f.request,
		contract.EnvResponseFile + "=" + f.response,
		contract.EnvStatusCodeFile + "=" + f.statusCode,
		contract.EnvResponseHeadersFile + "=" + f.responseHeaders,
	}
}

// prepare writes the request body and returns it opened for reading, to be
// the child's stdin. It removes the outputs of an earlier run of the
// container, which would otherwise be taken for this run's.
func (f ioFiles) prepare(body string) (*os.File, error) {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{f.response, f.statusCode, f.responseHeaders} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.WriteFile(f.request, []byte(body), 0o644); err != nil {
		return nil, err
	}
	return os.Open(f.request)
}

// readResponse returns the response body, at most one byte more than
// contract.MaxOutputBytes so that truncation can be detected. No file is an empty
// response.
func (f ioFiles) readResponse() ([]byte, error) {
	data, err := readAtMost(f.response, contract.MaxOutputBytes+1)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kfn: cannot read the response: %w", err)
	}
	return data, nil
}

// readStatusCode returns the status code the user's code chose, 200 if it
// chose none.
func (f ioFiles) readStatusCode() (int, error) {
	data, err := readAtMost(f.statusCode, maxStatusCodeFileBytes+1)
	if errors.Is(err, fs.ErrNotExist) {
		return http.StatusOK, nil
	}
	if err != nil {
		return 0, fmt.Errorf("kfn: cannot read the status code: %w", err)
	}
	text := strings.TrimSpace(string(data))
	code, err := strconv.Atoi(text)
	if err != nil || code < 100 || code > 599 || len(data) > maxStatusCodeFileBytes {
		return 0, fmt.Errorf("kfn: invalid status code %.*q in %s: want an integer from 100 to 599",
			maxStatusCodeFileBytes, text, f.statusCode)
	}
	return code, nil
}

// readResponseHeaders returns the headers the user's code set, one
// "Name: value" line each; names are lower-cased and a repeated name keeps
// its last value. No file is no headers; an invalid file sets none.
func (f ioFiles) readResponseHeaders() (map[string]string, error) {
	data, err := readAtMost(f.responseHeaders, contract.MaxResponseHeadersFileBytes+1)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kfn: cannot read the response headers: %w", err)
	}
	if len(data) > contract.MaxResponseHeadersFileBytes {
		return nil, fmt.Errorf("kfn: %s is over %d bytes: no response headers were set", f.responseHeaders, contract.MaxResponseHeadersFileBytes)
	}
	headers := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		if !ok || !contract.ValidHeaderName(name) || !contract.ValidHeaderValue(value) {
			return nil, fmt.Errorf("kfn: line %d of %s is not \"Name: value\" (value in UTF-8 without control characters): no response headers were set", i+1, f.responseHeaders)
		}
		headers[strings.ToLower(name)] = value
	}
	if len(headers) > contract.MaxResponseHeaders {
		return nil, fmt.Errorf("kfn: %s sets %d headers, over %d: no response headers were set", f.responseHeaders, len(headers), contract.MaxResponseHeaders)
	}
	return headers, nil
}

// requestBody is APPWRITE_FUNCTION_DATA or, for a body too large for an
// environment variable, the parts in KFN_REQUEST_BODY_DIR joined in name
// order (the controller projects them there as 000, 001, …).
func requestBody() (string, error) {
	dir := os.Getenv(contract.EnvRequestBodyDir)
	if dir == "" {
		return os.Getenv(contract.EnvData), nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("kfn: reading the request body: %w", err)
	}
	var body strings.Builder
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") { // a projected volume's own links
			continue
		}
		part, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", fmt.Errorf("kfn: reading the request body: %w", err)
		}
		body.Write(part)
	}
	return body.String(), nil
}

// readAtMost reads at most n bytes of the regular file name. The user's code
// made the file: it may be a symlink to what only the runner may open (its
// own /proc/self/*), or a FIFO or device that would block or never end.
func readAtMost(name string, n int64) ([]byte, error) {
	file, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link, not a regular file", name)
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if info, err := file.Stat(); err != nil || !info.Mode().IsRegular() {
		return nil, errors.Join(err, fmt.Errorf("%s is not a regular file", name))
	}
	return io.ReadAll(io.LimitReader(file, n))
}
