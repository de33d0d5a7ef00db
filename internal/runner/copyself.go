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
