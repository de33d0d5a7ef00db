package pgtest

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Over TCP only password roles from the allowed network get in; the
// superuser, who has no password, only through the unix socket.
func TestStartTCPLetsInPasswordRolesFromTheAllowedNetworkOnly(t *testing.T) {
	ctx := context.Background()
	loopback := net.ParseIP("127.0.0.1")
	for _, tc := range []struct {
		allow string
		in    bool
	}{{"127.0.0.0/8", true}, {"10.255.255.0/24", false}} {
		_, allow, _ := net.ParseCIDR(tc.allow)
		s := StartTCP(t, TCP{Addr: loopback, Port: freePort(t, loopback), Allow: allow})
		conn, err := s.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD 'secret'"); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close(ctx)
		tcp := fmt.Sprintf("host=127.0.0.1 port=%d dbname=postgres sslmode=disable", s.tcp.Port)
		err = ping(ctx, tcp+" user=app password=secret")
		if tc.in && err != nil {
			t.Errorf("allowing %s: the password role was refused: %v", tc.allow, err)
		}
		if !tc.in && err == nil {
			t.Errorf("allowing %s: a client from 127.0.0.1 got in", tc.allow)
		}
		if err := ping(ctx, tcp+" user=postgres"); err == nil {
			t.Errorf("allowing %s: the superuser got in over TCP without a password", tc.allow)
		}
	}
}

func ping(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func freePort(t *testing.T, ip net.IP) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
