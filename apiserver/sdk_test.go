package apiserver

import (
	"context"
	"testing"
	"time"

	"github.com/kfn-dev/kfn/test/sdk"
)

// TestOfficialSDKs runs test/sdk/sdk-test.cjs: the official Appwrite SDKs
// from npm, unmodified, against the facade on its loopback port. It needs
// node and npm, and fails without them rather than skipping.
func TestOfficialSDKs(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "sdk", nil)
	alice, bob := p.user(t, "alice"), p.user(t, "bob")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := sdk.Run(ctx, sdk.Env{
		Endpoint: facadeURL + "/v1", Project: p.name, Function: fn,
		APIKey: p.key, JWT: alice.jwt, JWTRate: bob.jwt, RateLimit: testRateLimit,
	})
	t.Logf("SDK tests:\n%s", out)
	if err != nil {
		t.Fatalf("the SDK tests failed: %v", err)
	}
}
