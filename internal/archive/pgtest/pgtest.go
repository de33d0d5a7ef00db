// Package pgtest runs a throwaway PostgreSQL server for tests: initdb in a
// temporary folder, the server listening on a unix socket only (no port to
// collide with other test runs), stopped and removed when the test ends.
// StartTCP also listens on one address, for clients elsewhere (the local
// cluster's pods in the end-to-end tests).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
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

// StartForCluster starts a server that the local cluster's pods reach: on
// the address of the cluster's bridge (their gateway to the node), open to
// the bridge's network, with a role and a database kfn. It returns the
// server and the DSN of role kfn there, for the pods and for this machine.
func StartForCluster(tb testing.TB, bridge string) (*Server, string) {
	tb.Helper()
	gateway, network, err := bridgeAddress(bridge)
	if err != nil {
		tb.Fatal(err)
	}
	free, err := net.Listen("tcp", net.JoinHostPort(gateway.String(), "0"))
	if err != nil {
		tb.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	_ = free.Close()
	s := StartTCP(tb, TCP{Addr: gateway, Port: port, Allow: network})

	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	password := hex.EncodeToString(secret) // nothing to quote
	conn, err := s.Connect(context.Background(), "postgres")
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{"CREATE ROLE kfn LOGIN PASSWORD '" + password + "'", "CREATE DATABASE kfn OWNER kfn"} {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
	return s, fmt.Sprintf("host=%s port=%d user=kfn password=%s dbname=kfn sslmode=disable", gateway, port, password)
}

// bridgeAddress is the bridge's IPv4 address and network.
func bridgeAddress(name string) (net.IP, *net.IPNet, error) {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("the cluster bridge %s: %w", name, err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("the cluster bridge %s: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP, &net.IPNet{IP: n.IP.Mask(n.Mask), Mask: n.Mask}, nil
		}
	}
	return nil, nil, fmt.Errorf("the cluster bridge %s has no IPv4 address", name)
}

// Connect opens a superuser connection to database through the unix socket.
func (s *Server) Connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.DSN())
	if err != nil {
		return nil, err
	}
	cfg.Database = database
	return pgx.ConnectConfig(ctx, cfg)
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
		"--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := s.allowTCP(); err != nil {
		tb.Fatal(err)
	}
	s.Restart()
	return s
}

// allowTCP replaces initdb's pg_hba.conf (which also lets loopback
// clients in): the socket for anyone, TCP for password roles from the
// allowed network only.
func (s *Server) allowTCP() error {
	if s.tcp == nil {
		return nil
	}
	hba := fmt.Sprintf("local all all trust\nhost all all %s scram-sha-256\n", s.tcp.Allow)
	// O_TRUNC keeps the owner initdb gave the file.
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "pg_hba.conf"), os.O_TRUNC|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(hba)
	if cerr := f.Close(); err == nil {
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
