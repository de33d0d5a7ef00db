// Package sdk runs sdk-test.cjs, the official Appwrite SDKs from npm,
// unmodified, against a kfn REST facade. The facade's integration tests
// run it on envtest and the end-to-end tests against the facade in the
// cluster.
package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Dir is this folder: the script, its package.json and package-lock.json.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Env is what the script needs to know about the facade under test.
type Env struct {
	Endpoint  string // the facade's base URL, ending in /v1
	Project   string // a project namespace
	Function  string // a Function anyone may execute; see sdk-test.cjs for how it must answer
	APIKey    string // an API key with execution.read and execution.write
	JWT       string // user alice's JWT
	JWTRate   string // user bob's JWT, spent on the rate limit
	RateLimit int    // the facade's create limit per period for formats < 1.4
	// Optional checks, skipped when empty: the project's and the
	// function's Appwrite IDs (their ID labels), and a Function only the
	// role team:Ops/admin may execute with the JWT of such a member.
	IDProject, IDFunction   string
	TeamFunction, JWTTeamOp string
}

// Run installs the locked SDK versions (once per package-lock.json) and runs
// the script. It needs node and npm and fails without them.
func Run(ctx context.Context, e Env) ([]byte, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not installed: the SDK tests need Node.js 20 and npm")
	}
	if err := install(); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, "sdk-test.cjs")
	cmd.Dir = Dir()
	cmd.Env = append(os.Environ(),
		"KFN_ENDPOINT="+e.Endpoint, "KFN_PROJECT="+e.Project, "KFN_FUNCTION="+e.Function,
		"KFN_API_KEY="+e.APIKey, "KFN_JWT="+e.JWT, "KFN_JWT_RATE="+e.JWTRate,
		fmt.Sprintf("KFN_RATE_LIMIT=%d", e.RateLimit),
		"KFN_ID_PROJECT="+e.IDProject, "KFN_ID_FUNCTION="+e.IDFunction,
		"KFN_TEAM_FUNCTION="+e.TeamFunction, "KFN_JWT_TEAM="+e.JWTTeamOp)
	return cmd.CombinedOutput()
}

// install runs `npm ci` unless node_modules already holds this lock file's packages.
func install() error {
	dir := Dir()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lock)
	want := []byte(hex.EncodeToString(sum[:]))
	stamp := filepath.Join(dir, "node_modules", ".kfn-lock-sha256")
	if got, err := os.ReadFile(stamp); err == nil && bytes.Equal(got, want) {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm is not installed: the SDK tests need Node.js 20 and npm")
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci: %w\n%s", err, out)
	}
	return os.WriteFile(stamp, want, 0o644)
}
