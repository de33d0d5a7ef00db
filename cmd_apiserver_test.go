package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kfn-dev/kfn/apiserver"
)

// `kfn jwt` mints the membership claims its flags name, and refuses bad ones.
func TestJWTMembershipFlags(t *testing.T) {
	key := filepath.Join(t.TempDir(), "jwt.key")
	if err := os.WriteFile(key, []byte("signing-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := runJWT([]string{"--key-file", key, "--user", "alice", "--team", "Ops=admin,dev", "--team", "t2",
		"--membership", "m1", "--label", "vip", "--verified"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	claims, err := apiserver.VerifyJWT(strings.TrimSpace(out.String()), []byte("signing-key"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(claims.Teams["Ops"], []string{"admin", "dev"}) || len(claims.Teams) != 2 ||
		!slices.Equal(claims.Memberships, []string{"m1"}) || !slices.Equal(claims.Labels, []string{"vip"}) || !*claims.Verified {
		t.Fatalf("claims %+v", claims)
	}
	for _, bad := range [][]string{{"--verified", "--unverified"}, {"--team", "-x"}, {"--label", "a_b"}} {
		errs.Reset()
		if code := runJWT(append([]string{"--key-file", key, "--user", "alice"}, bad...), &out, &errs); code == 0 || errs.Len() == 0 {
			t.Errorf("%v: exit %d, %q", bad, code, errs.String())
		}
	}
}
