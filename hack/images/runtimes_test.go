package main

// TestRuntimeImages builds the runtime images and runs a function in each
// one as a function pod would: the image's entrypoint (the kfn runner, the
// interpreter and the wrapper) as uid 65532 in the image's file system, here
// a chroot into the unpacked layers. It needs root (for chroot) and the
// interpreters; the kfn binary is $KFN_BIN, or is built from the repository.
//
//	cd hack/images && sudo go test -run TestRuntimeImages -v .

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestRuntimeImages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot into the images")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kfn := os.Getenv("KFN_BIN")
	if kfn == "" {
		kfn = filepath.Join(t.TempDir(), "kfn")
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", kfn, ".")
		build.Dir, build.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building kfn (or set KFN_BIN): %v\n%s", err, out)
		}
	}

	cases := []struct {
		runtime, interpreter string
		entry                string // empty: the image's default
		files                map[string]string
		contract             string
		want                 map[string]any
		stdout               string
	}{{
		runtime: "node-20", interpreter: "/usr/bin/node",
		files: map[string]string{
			"index.js": `const greet = require('greeter');
module.exports = async ({ req, res, log }) => {
  log('running as', process.getuid(), 'héllo ✓');
  return res.json({ greeting: greet(req.bodyText), uid: process.getuid(), cwd: process.cwd(),
    tls: require('tls').rootCertificates.length > 0, intl: new Intl.NumberFormat('de-DE').format(1234.5) });
};`,
			"node_modules/greeter/package.json": `{"name": "greeter", "main": "index.js"}`,
			"node_modules/greeter/index.js":     "module.exports = (n) => `Hello, ${n}!`;\n",
		},
		want:   map[string]any{"greeting": "Hello, kfn!", "uid": 65532, "cwd": "/kfn/code", "tls": true, "intl": "1.234,5"},
		stdout: "running as 65532 héllo ✓\n",
	}, {
		runtime: "node-20", interpreter: "/usr/bin/node", contract: "v2", entry: "index.mjs",
		files: map[string]string{"index.mjs": `export default async (req, res) => res.json({ payload: req.payload, id: req.variables.APPWRITE_FUNCTION_ID });`},
		want:  map[string]any{"payload": "kfn", "id": "hello"},
	}, {
		runtime: "python-3.11", interpreter: "/usr/bin/python3.11",
		files: map[string]string{
			"main.py": `import asyncio, hashlib, json, os, sqlite3, ssl, zlib, decimal, ctypes, uuid, lzma, bz2
from mylib import shout

async def main(context):
    context.log('running as', os.getuid(), 'héllo ✓')
    return context.res.json({'greeting': shout(context.req.body_text), 'uid': os.getuid(), 'cwd': os.getcwd(),
        'sha': hashlib.sha256(b'kfn').hexdigest()[:8], 'ssl': ssl.create_default_context().cert_store_stats()['x509_ca'] > 0,
        'sqlite': sqlite3.connect(':memory:').execute('select 1+1').fetchone()[0]})
`,
			"mylib/__init__.py": "def shout(s):\n    return 'HELLO, ' + s.upper() + '!'\n",
		},
		stdout: "running as 65532 héllo ✓\n",
		want:   map[string]any{"greeting": "HELLO, KFN!", "uid": 65532, "cwd": "/kfn/code", "sha": fmt.Sprintf("%x", sha256.Sum256([]byte("kfn")))[:8], "ssl": true, "sqlite": 2},
	}, {
		runtime: "python-3.11", interpreter: "/usr/bin/python3.11", contract: "v2",
		files: map[string]string{"main.py": "def main(req, res):\n    return res.json({'payload': req.payload, 'id': req.variables['APPWRITE_FUNCTION_ID']})\n"},
		want:  map[string]any{"payload": "kfn", "id": "hello"},
	}}

	images := map[string]v1.Image{}
	for _, tc := range cases {
		name := tc.runtime + "/" + tc.contract
		if tc.contract == "" {
			name += "default"
		}
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(tc.interpreter); err != nil {
				t.Skipf("no %s on this machine", tc.interpreter)
			}
			img := images[tc.runtime]
			if img == nil {
				builds, err := runtimeBuilds(filepath.Join(repo, "internal", "runtimes"), kfn, "/etc/ssl/certs/ca-certificates.crt",
					map[string]string{tc.runtime: tc.interpreter})
				if err != nil || len(builds) != 1 {
					t.Fatalf("runtimeBuilds: %v (%d builds)", err, len(builds))
				}
				if img, err = builds[0].image(); err != nil {
					t.Fatal(err)
				}
				images[tc.runtime] = img
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			unpack(t, img, root)
			for name, content := range tc.files {
				p := filepath.Join(root, "kfn", "code", name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			args := cf.Config.Cmd
			if tc.entry != "" {
				args = []string{tc.entry}
			}
			cmd := exec.Command(cf.Config.Entrypoint[0], append(cf.Config.Entrypoint[1:], args...)...)
			cmd.Path = cf.Config.Entrypoint[0] // inside the chroot
			cmd.Dir = cf.Config.WorkingDir
			cmd.Env = append(cf.Config.Env, "KFN_IO_DIR=/kfn/io", "KFN_TERMINATION_MESSAGE_PATH=/tmp/termination-log",
				"KFN_TIMEOUT=20", "APPWRITE_FUNCTION_ID=hello", "APPWRITE_FUNCTION_DATA=kfn", "KFN_REQUEST_HEADERS={}")
			if tc.contract != "" {
				cmd.Env = append(cmd.Env, "KFN_FUNCTION_CONTRACT="+tc.contract)
			}
			if cf.Config.User != "65532:65532" {
				t.Errorf("user = %q, want 65532:65532", cf.Config.User)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
			out, err := cmd.Output()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			var res struct {
				ExitCode, StatusCode     int
				Response, Stdout, Stderr string
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
				t.Fatalf("no result line: %v\n%s", err, out)
			}
			if res.ExitCode != 0 || res.StatusCode != 200 {
				t.Fatalf("exit %d, status %d\nstdout: %s\nstderr: %s", res.ExitCode, res.StatusCode, res.Stdout, res.Stderr)
			}
			if tc.stdout != "" && res.Stdout != tc.stdout {
				t.Errorf("stdout = %q, want %q", res.Stdout, tc.stdout)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(res.Response), &got); err != nil {
				t.Fatalf("response %q: %v", res.Response, err)
			}
			for k, v := range tc.want {
				w, _ := json.Marshal(v)
				g, _ := json.Marshal(got[k])
				if string(w) != string(g) {
					t.Errorf("response.%s = %s, want %s (response %s, stderr %q)", k, g, w, res.Response, res.Stderr)
				}
			}
		})
	}
}

// unpack writes the image's file system to root.
func unpack(t *testing.T, img v1.Image, root string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode).Perm())
			if err == nil {
				err = os.Chmod(p, os.FileMode(h.Mode&0o7777)|sticky(h.Mode))
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm()); err == nil {
				_, err = io.Copy(f, tr)
				f.Close()
			}
		}
		if err == nil {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func sticky(mode int64) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
