package apiserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// sdkDir holds the SDK test script and its package-lock.json.
var sdkDir = filepath.Join("..", "test", "sdk")

// TestOfficialSDKs runs test/sdk/sdk-test.cjs: the official Appwrite SDKs
// from npm, unmodified, against the facade on its loopback port. It needs
// node and npm, and fails without them rather than skipping.
func TestOfficialSDKs(t *testing.T) {
	p := newProject(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: the SDK tests need Node.js 20 and npm")
	}
	npmCI(t)
	fn := p.function(t, "sdk", nil)
	alice, bob := p.user(t, "alice"), p.user(t, "bob")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "sdk-test.cjs")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(),
		"KFN_ENDPOINT="+facadeURL+"/v1", "KFN_PROJECT="+p.name, "KFN_FUNCTION="+fn,
		"KFN_API_KEY="+p.key, "KFN_JWT="+alice.jwt, "KFN_JWT_RATE="+bob.jwt,
		fmt.Sprintf("KFN_RATE_LIMIT=%d", testRateLimit))
	out, err := cmd.CombinedOutput()
	t.Logf("SDK tests:\n%s", out)
	if err != nil {
		t.Fatalf("the SDK tests failed: %v", err)
	}
}

// npmCI installs the locked SDK versions into test/sdk/node_modules once
// per package-lock.json.
func npmCI(t *testing.T) {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(sdkDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := []byte(hex.EncodeToString(sum[:]))
	stamp := filepath.Join(sdkDir, "node_modules", ".kfn-lock-sha256")
	if got, err := os.ReadFile(stamp); err == nil && bytes.Equal(got, want) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm is not installed: the SDK tests need Node.js 20 and npm")
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = sdkDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	if err := os.WriteFile(stamp, want, 0o644); err != nil {
		t.Fatal(err)
	}
}
