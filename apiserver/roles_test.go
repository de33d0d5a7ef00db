package apiserver

import (
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"k8s.io/utils/ptr"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

func TestUserRoles(t *testing.T) {
	m := Membership{
		Teams:       map[string][]string{"Team_1": {"owner", "dev"}, "t2": nil},
		Memberships: []string{"m1"},
		Labels:      []string{"vip"},
		Verified:    ptr.To(true),
	}
	got := userRoles("alice", m)
	want := []string{"any", "users", "user:alice", "users/verified", "user:alice/verified",
		"team:Team_1", "team:Team_1/owner", "team:Team_1/dev", "team:t2", "member:m1", "label:vip"}
	if !slices.Equal(got, want) {
		t.Errorf("roles\n got %v\nwant %v", got, want)
	}
	if got := userRoles("bob", Membership{Verified: ptr.To(false)}); !slices.Contains(got, "users/unverified") || !slices.Contains(got, "user:bob/unverified") {
		t.Errorf("unverified roles: %v", got)
	}
	// Unknown verification: neither form.
	for _, r := range userRoles("carol", Membership{}) {
		if r != "any" && r != "users" && r != "user:carol" {
			t.Errorf("role %q without membership claims", r)
		}
	}
}

// Bad membership claims are refused when minted and when verified.
func TestMembershipClaimsValidated(t *testing.T) {
	key, now := []byte("k"), time.Now()
	for name, m := range map[string]Membership{
		"team ID":       {Teams: map[string][]string{"-bad": nil}},
		"team role":     {Teams: map[string][]string{"t": {"a b"}}},
		"membership ID": {Memberships: []string{""}},
		"label":         {Labels: []string{"no_underscores"}},
		"too many":      {Labels: slices.Repeat([]string{"a"}, maxMembershipItems+1)},
	} {
		if _, err := MintUserJWT(key, "alice", "s", m, now, 0); err == nil {
			t.Errorf("%s: minted", name)
		}
		token := mustSign(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"userId": "alice", "iat": now.Unix(), "teams": m.Teams, "memberships": m.Memberships, "labels": m.Labels})
		if _, err := VerifyJWT(token, key, now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	m := Membership{Teams: map[string][]string{"t": {"owner"}}, Memberships: []string{"m"}, Labels: []string{"vip"}, Verified: ptr.To(false)}
	token, err := MintUserJWT(key, "alice", "s", m, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := VerifyJWT(token, key, now)
	if err != nil || !slices.Equal(claims.Teams["t"], []string{"owner"}) || claims.Memberships[0] != "m" || claims.Labels[0] != "vip" || *claims.Verified {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	// An Appwrite-issued token's membership claims are not kfn's to trust.
	aw := mustSign(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"userId": "alice", "exp": now.Add(time.Minute).Unix(), "teams": map[string]any{"t": []string{"owner"}}, "emailVerification": true})
	if claims, err := VerifyAppwriteJWT(aw, key, now); err != nil || claims.Teams != nil || claims.Verified != nil {
		t.Fatalf("Appwrite token claims %+v, %v", claims, err)
	}
}

// Every role form Appwrite accepts in execute, matched from the claims of
// kfn-minted tokens; Appwrite-issued tokens carry only user roles.
func TestExecuteRoles(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "teams", func(f *fnv1.Function) {
		f.Spec.Execute = []string{"team:Ops/admin", "member:M_1", "users/verified", "label:vip", "user:bob/unverified"}
	})
	for _, c := range []struct {
		name string
		m    Membership
		user string
		code int
	}{
		{"team role", Membership{Teams: map[string][]string{"Ops": {"admin"}}}, "u1", 201},
		{"team without the role", Membership{Teams: map[string][]string{"Ops": {"viewer"}}}, "u2", 401},
		{"membership", Membership{Memberships: []string{"M_1"}}, "u3", 201},
		{"verified", Membership{Verified: ptr.To(true)}, "u4", 201},
		{"unverified", Membership{Verified: ptr.To(false)}, "u5", 401},
		{"user unverified", Membership{Verified: ptr.To(false)}, "bob", 201},
		{"label", Membership{Labels: []string{"vip"}}, "u6", 201},
		{"no membership", Membership{}, "u7", 401},
	} {
		token, err := MintUserJWT(p.jwtKey, c.user, "s", c.m, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		r := api{project: p.name, jwt: token}.create(t, fn, map[string]any{"body": "x"})
		if r.code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, r.code, r.raw, c.code)
		}
		if c.code == 401 {
			expectError(t, r, 401, errUserUnauthorized)
		}
	}
}
