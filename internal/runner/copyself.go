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
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CopySelf implements `kfn copy-self DEST`: it copies the running executable
// to dest, mode 0755, creating parent directories. The copy is written to a
// temporary file that is then renamed, so that dest is never seen half
// written.
func CopySelf(dest string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the running executable: %w", err)
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()

	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	if err := writeExecutable(tmp, src); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// writeExecutable fills and closes tmp.
func writeExecutable(tmp *os.File, src io.Reader) error {
	_, err := io.Copy(tmp, src)
	if err == nil {
		// Chmod, not the create mode, so that the umask does not apply.
		err = tmp.Chmod(0o755)
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	return err
}
