/*
Copyright 2026 The kfn Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

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
)

// maxStatusCodeFileBytes is more than any valid status code file needs.
const maxStatusCodeFileBytes = 64

// ioFiles are the files through which the user's code gets the request body
// and gives the response.
type ioFiles struct {
	dir, request, response, statusCode string
}

func newIOFiles(dir string) ioFiles {
	return ioFiles{
		dir:        dir,
		request:    filepath.Join(dir, "request"),
		response:   filepath.Join(dir, "response"),
		statusCode: filepath.Join(dir, "status-code"),
	}
}

// env returns the variables that tell the user's code where the files are.
func (f ioFiles) env() []string {
	return []string{
		"KFN_REQUEST_FILE=" + f.request,
		"KFN_RESPONSE_FILE=" + f.response,
		"KFN_STATUS_CODE_FILE=" + f.statusCode,
	}
}

// prepare writes the request body and returns it opened for reading, to be
// the child's stdin. It removes the outputs of an earlier run of the
// container, which would otherwise be taken for this run's.
func (f ioFiles) prepare(body string) (*os.File, error) {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{f.response, f.statusCode} {
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
// MaxOutputBytes so that truncation can be detected. No file is an empty
// response.
func (f ioFiles) readResponse() ([]byte, error) {
	data, err := readAtMost(f.response, MaxOutputBytes+1)
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

func readAtMost(name string, n int64) ([]byte, error) {
	file, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return io.ReadAll(io.LimitReader(file, n))
}
