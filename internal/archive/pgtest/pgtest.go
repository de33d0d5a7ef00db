// Package pgtest runs a throwaway PostgreSQL server for tests: initdb in a
// temporary folder, the server listening on a unix socket only (no port to
// collide with other test runs), stopped and removed when the test ends.
package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Server is one PostgreSQL cluster in a temporary folder.
type Server struct {
	tb  testing.TB
	bin string // the folder of initdb, pg_ctl and postgres
	dir string
	// owner is the user postgres runs as: it refuses to run as root.
	owner *user.User
}

// Start initdb's a cluster and starts it; the test is skipped, saying why,
// when PostgreSQL is not installed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := findBinaries()
	if err != nil {
		tb.Skipf("PostgreSQL is not installed (%v): install the postgresql package (Debian) to run the archive tests", err)
	}
	s := &Server{tb: tb, bin: bin}
	if os.Geteuid() == 0 {
		if s.owner, err = serverUser(); err != nil {
			tb.Fatal(err)
		}
	}
	if s.dir, err = os.MkdirTemp("", "kfn-pg-"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.pgctl("stop", "-m", "immediate") // already stopped is fine
		_ = os.RemoveAll(s.dir)
	})
	if err := s.chown(); err != nil {
		tb.Fatal(err)
	}
	if out, err := s.command(filepath.Join(bin, "initdb"), "-D", s.dataDir(), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	s.Restart()
	return s
}

// DSN is how to reach the server: its unix socket, as the superuser.
func (s *Server) DSN() string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", s.dir)
}

// Stop stops the server at once, as a crash or an outage would.
func (s *Server) Stop() {
	s.tb.Helper()
	if out, err := s.pgctl("stop", "-m", "immediate"); err != nil {
		s.tb.Fatalf("stopping postgres: %v\n%s", err, out)
	}
}

// Restart starts the server (again), waiting until it accepts connections.
func (s *Server) Restart() {
	s.tb.Helper()
	// fsync off: a throwaway server needs no durability, tests need speed.
	opts := fmt.Sprintf("-k %s -p 5432 -c listen_addresses='' -c fsync=off", s.dir)
	if out, err := s.pgctl("start", "-w", "-l", filepath.Join(s.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.tb.Fatalf("starting postgres: %v\n%s\n%s", err, out, log)
	}
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

func (s *Server) pgctl(args ...string) ([]byte, error) {
	args = append([]string{"-D", s.dataDir()}, args...)
	return s.command(filepath.Join(s.bin, "pg_ctl"), args...).CombinedOutput()
}

// command runs a PostgreSQL program as the server's owner.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	if s.owner == nil {
		return exec.Command(name, args...)
	}
	return exec.Command("runuser", append([]string{"-u", s.owner.Username, "--", name}, args...)...)
}

func (s *Server) chown() error {
	if s.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(s.owner.Uid)
	gid, _ := strconv.Atoi(s.owner.Gid)
	return os.Chown(s.dir, uid, gid)
}

// serverUser is who runs postgres for root: the Debian package's postgres
// user, else nobody.
func serverUser() (*user.User, error) {
	for _, name := range []string{"postgres", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return u, nil
		}
	}
	return nil, fmt.Errorf("running as root, and there is neither a postgres nor a nobody user to run postgres as")
}

// findBinaries finds initdb on the PATH or where Debian installs it.
func findBinaries() (string, error) {
	candidates := []string{}
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, p)
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	for i := len(versions) - 1; i >= 0; i-- { // the newest first
		candidates = append(candidates, versions[i])
	}
	for _, c := range candidates {
		if real, err := filepath.EvalSymlinks(c); err == nil {
			dir := filepath.Dir(real)
			if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
				return dir, nil
			}
		}
	}
	return "", fmt.Errorf("no initdb with pg_ctl beside it on the PATH or in /usr/lib/postgresql/*/bin")
}
