// Package pgtest runs a throwaway PostgreSQL server for tests: initdb in a
// temporary folder, the server listening on a unix socket only (no port to
// collide with other test runs), stopped and removed when the test ends.
// StartTCP also listens on one address, for clients elsewhere (the local
// cluster's pods in the end-to-end tests).
package pgtest

import (
	"fmt"
	"net"
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
	tcp   *TCP
}

// TCP is where StartTCP's server listens besides its unix socket, and whom
// it lets in there: users with a password, from the Allow network only.
type TCP struct {
	Addr  net.IP
	Port  int
	Allow *net.IPNet
}

// Start initdb's a cluster and starts it; the test is skipped, saying why,
// when PostgreSQL is not installed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, nil)
}

// StartTCP is Start with the server also listening on tcp.Addr:tcp.Port.
// Only roles with a password may connect there (scram-sha-256); the
// superuser has none, so create one (see DSN for the unix socket).
func StartTCP(tb testing.TB, tcp TCP) *Server {
	tb.Helper()
	if tcp.Addr == nil || tcp.Allow == nil || tcp.Port < 1 || tcp.Port > 65535 {
		tb.Fatalf("pgtest: TCP needs an address, a port in 1-65535 and an allowed network: %+v", tcp)
	}
	return start(tb, &tcp)
}

func start(tb testing.TB, tcp *TCP) *Server {
	tb.Helper()
	bin, err := findBinaries()
	if err != nil {
		tb.Skipf("PostgreSQL is not installed (%v): install the postgresql package (Debian) to run the archive tests", err)
	}
	s := &Server{tb: tb, bin: bin, tcp: tcp}
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
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := s.allowTCP(); err != nil {
		tb.Fatal(err)
	}
	s.Restart()
	return s
}

// allowTCP lets password users in from the allowed network.
func (s *Server) allowTCP() error {
	if s.tcp == nil {
		return nil
	}
	hba, err := os.OpenFile(filepath.Join(s.dataDir(), "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(hba, "host all all %s scram-sha-256\n", s.tcp.Allow)
	if cerr := hba.Close(); err == nil {
		err = cerr
	}
	return err
}

// DSN is how to reach the server: its unix socket, as the superuser.
func (s *Server) DSN() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.dir, s.port())
}

func (s *Server) port() int {
	if s.tcp != nil {
		return s.tcp.Port
	}
	return 5432
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
	listen := ""
	if s.tcp != nil {
		listen = s.tcp.Addr.String()
	}
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses='%s' -c fsync=off", s.dir, s.port(), listen)
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
