package main

// The runtime images: an interpreter of this machine with the shared
// libraries it loads, the static kfn runner and the runtime's wrapper from
// internal/runtimes, laid out as internal/runtimes/runtimes.json says. The
// interpreter comes from this machine's Debian packages (Node.js 20 from the
// machine image's nodejs, Python 3.11 from python3.11), so no registry is
// needed.

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// runtimeManifest is internal/runtimes/runtimes.json.
type runtimeManifest struct {
	Runner   string `json:"runner"`
	Runtimes []struct {
		Name    string   `json:"name"`
		Image   string   `json:"image"`
		Command []string `json:"command"`
		Wrapper struct {
			Source string `json:"source"`
			Path   string `json:"path"`
		} `json:"wrapper"`
		DefaultEntrypoint string `json:"defaultEntrypoint"`
	} `json:"runtimes"`
}

// runtimeBuild is one runtime image to build.
type runtimeBuild struct {
	name, ref string
	image     func() (v1.Image, error)
}

// runtimeBuilds returns the runtime images of the manifest in dir whose
// interpreter is given: interpreters maps a runtime name to its binary.
func runtimeBuilds(dir, kfnBin, caCerts string, interpreters map[string]string) ([]runtimeBuild, error) {
	data, err := os.ReadFile(filepath.Join(dir, "runtimes.json"))
	if err != nil {
		return nil, err
	}
	var m runtimeManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s/runtimes.json: %w", dir, err)
	}
	var builds []runtimeBuild
	for _, rt := range m.Runtimes {
		interp := interpreters[rt.Name]
		if interp == "" {
			continue
		}
		if kfnBin == "" {
			return nil, fmt.Errorf("runtime %s: the kfn binary (-kfn) is needed", rt.Name)
		}
		interpreter := nodeFiles
		if strings.HasPrefix(rt.Name, "python") {
			interpreter = pythonFiles
		}
		wrapperSource := filepath.Join(dir, filepath.FromSlash(rt.Wrapper.Source))
		entrypoint := append([]string{m.Runner, "run", "--"}, rt.Command...)
		builds = append(builds, runtimeBuild{name: rt.Name, ref: rt.Image, image: func() (v1.Image, error) {
			base, env, err := interpreter(interp)
			if err != nil {
				return nil, err
			}
			if ca, err := os.ReadFile(caCerts); err == nil {
				for _, e := range withParents(file("/etc/ssl/certs/ca-certificates.crt", 0o644, ca)) {
					base.put(e)
				}
				env = append(env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
			}
			wrapper, err := os.ReadFile(wrapperSource)
			if err != nil {
				return nil, err
			}
			runner, err := os.ReadFile(kfnBin)
			if err != nil {
				return nil, err
			}
			return layeredImage([][]entry{
				base.list(),
				withParents(file(rt.Wrapper.Path, 0o644, wrapper)),
				withParents(file(m.Runner, 0o755, runner)),
			}, v1.Config{
				Entrypoint: entrypoint,
				Cmd:        []string{rt.DefaultEntrypoint},
				User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
				WorkingDir: "/kfn/code",
				Env:        append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}, env...),
			})
		}})
	}
	return builds, nil
}

// withParents is e with the folders above it.
func withParents(e entry) []entry {
	out := []entry{e}
	for p := path.Dir(e.path); p != "/"; p = path.Dir(p) {
		out = append(out, dir(p, 0o755))
	}
	return out
}

// runtimeBase is the skeleton of a runtime image: the base files, a merged
// /usr like Debian's, and the pod's folders (the code and the IO files, for
// running the image outside Kubernetes too).
func runtimeBase() *tree {
	t := newTree()
	for _, e := range baseFiles() {
		t.put(e)
	}
	io := dir("/kfn/io", 0o755)
	io.uid, io.gid = nonRoot, nonRoot
	for _, e := range []entry{
		dir("/usr", 0o755), dir("/usr/bin", 0o755), dir("/usr/lib", 0o755), dir("/usr/local", 0o755),
		dir("/usr/local/bin", 0o755), symlink("/bin", "usr/bin"), symlink("/lib", "usr/lib"),
		dir("/kfn", 0o755), dir("/kfn/code", 0o755), io,
	} {
		t.put(e)
	}
	return t
}

// nodeFiles is node and the libraries it loads.
func nodeFiles(node string) (*tree, []string, error) {
	t := runtimeBase()
	if err := t.addELF(node); err != nil {
		return nil, nil, err
	}
	if real := t.resolved[node]; real != "/usr/bin/node" {
		t.put(symlink("/usr/bin/node", real))
	}
	return t, nil, nil
}

// pythonFiles is python3.X, its standard library without what a function
// never uses (tests, IDLE, tkinter, ensurepip, lib2to3, the build config,
// Debian's bytecode), the libraries its extension modules load, and bytecode
// compiled here by the same interpreter: unchecked-hash .pyc files, which
// do not depend on file times and are never rewritten, so the image is
// reproducible and a function does not compile the standard library at
// every start (the root file system is read-only).
func pythonFiles(python string) (*tree, []string, error) {
	t := runtimeBase()
	if err := t.addELF(python); err != nil {
		return nil, nil, err
	}
	version := strings.TrimPrefix(filepath.Base(python), "python") // 3.11
	if !strings.Contains(version, ".") {
		return nil, nil, fmt.Errorf("%s: want a versioned interpreter such as /usr/bin/python3.11", python)
	}
	for _, name := range []string{"python3", "python"} {
		t.put(symlink("/usr/bin/"+name, "python"+version))
	}
	stdlib := filepath.Join(filepath.Dir(filepath.Dir(python)), "lib", "python"+version)
	pruned := map[string]bool{
		"__pycache__": true, "test": true, "tests": true, "idle_test": true, "idlelib": true, "tkinter": true,
		"turtledemo": true, "ensurepip": true, "lib2to3": true, "pydoc_data": true,
		"config-" + version + "-" + multiarch(): true,
		// Debian's hook for its crash reporter, which is not in the image.
		"sitecustomize.py": true,
	}
	extensions, sources, err := t.addStdlib(stdlib, pruned)
	if err != nil {
		return nil, nil, err
	}
	if err := t.addBytecode(python, sources); err != nil {
		return nil, nil, err
	}
	for _, ext := range extensions {
		// An extension whose libraries this machine lacks is left out, as
		// Python leaves out a module it could not build.
		trial := t.clone()
		if err := trial.addELF(ext); err != nil {
			fmt.Fprintf(os.Stderr, "images: notice: %s left out: %v\n", ext, err)
			continue
		}
		t = trial
	}
	return t, []string{"PYTHONDONTWRITEBYTECODE=1"}, nil
}

// addStdlib adds the files of the standard library folder stdlib but the
// pruned names, Debian's bytecode and CPython's own test modules, except the
// extension modules, which it returns with the Python sources it added.
func (t *tree) addStdlib(stdlib string, pruned map[string]bool) (extensions, sources []string, err error) {
	err = filepath.WalkDir(stdlib, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != stdlib && (pruned[name] || strings.HasSuffix(name, ".pyc")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(name, ".so") {
			// Test modules of CPython itself.
			if strings.HasPrefix(name, "_test") || strings.HasPrefix(name, "_xx") || strings.HasPrefix(name, "xx") || strings.HasPrefix(name, "_ctypes_test") {
				return nil
			}
			extensions = append(extensions, p)
			return nil
		}
		if strings.HasSuffix(name, ".py") && d.Type().IsRegular() {
			sources = append(sources, p)
		}
		return t.add(p)
	})
	return extensions, sources, err
}

// compileScript compiles the sources named on stdin into the folder argv[1],
// each at the path of its cache file, as unchecked-hash .pyc files.
const compileScript = `import importlib.util, os, py_compile, sys
out = sys.argv[1]
for src in sys.stdin.read().splitlines():
    if not src:
        continue
    cfile = out + importlib.util.cache_from_source(src)
    try:
        py_compile.compile(src, cfile=cfile, dfile=src, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError as e:
        print("images: notice: no bytecode for %s: %s" % (src, e.msg.strip()), file=sys.stderr)
`

// addBytecode adds the bytecode of sources, compiled by python.
func (t *tree) addBytecode(python string, sources []string) error {
	out, err := os.MkdirTemp("", "kfn-pyc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	cmd := exec.Command(python, "-I", "-c", compileScript, out)
	cmd.Stdin = strings.NewReader(strings.Join(sources, "\n"))
	cmd.Stderr = os.Stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SOURCE_DATE_EPOCH=0"}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("compiling the standard library: %w", err)
	}
	return filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		inImage := "/" + filepath.ToSlash(strings.TrimPrefix(p, out+string(filepath.Separator)))
		t.put(dir(path.Dir(inImage), 0o755))
		t.put(file(inImage, 0o644, data))
		return nil
	})
}

// tree is a set of image entries copied from this machine's file system,
// keeping its symlinks so the libraries' names resolve as they do here.
type tree struct {
	entries  map[string]entry
	resolved map[string]string // a host path added → the file it resolves to
}

func newTree() *tree {
	return &tree{entries: map[string]entry{}, resolved: map[string]string{}}
}

func (t *tree) clone() *tree {
	c := newTree()
	for k, v := range t.entries {
		c.entries[k] = v
	}
	for k, v := range t.resolved {
		c.resolved[k] = v
	}
	return c
}

func (t *tree) put(e entry) {
	t.entries[path.Clean(e.path)] = e
}

// list returns the entries in a fixed order (layer sorts them anyway).
func (t *tree) list() []entry {
	out := make([]entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// add copies the host file p, with every symlink on the way to it.
func (t *tree) add(p string) error {
	_, err := t.addResolving(p, 0)
	return err
}

func (t *tree) addResolving(p string, depth int) (string, error) {
	if depth > 40 {
		return "", fmt.Errorf("%s: too many symlinks", p)
	}
	p = path.Clean(p)
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			t.put(symlink(next, target))
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			real, err := t.addResolving(path.Join(append([]string{target}, parts[i+1:]...)...), depth+1)
			if err == nil {
				t.resolved[p] = real
			}
			return real, err
		case i < len(parts)-1:
			if _, ok := t.entries[next]; !ok {
				t.put(dir(next, 0o755))
			}
			cur = next
		case fi.IsDir():
			t.put(dir(next, 0o755))
		default:
			data, err := os.ReadFile(next)
			if err != nil {
				return "", err
			}
			t.put(file(next, int64(fi.Mode().Perm()), data))
		}
	}
	t.resolved[p] = p
	return p, nil
}

// addELF adds the ELF file p, its program interpreter and, recursively, the
// shared libraries it needs, found as the dynamic loader finds them.
func (t *tree) addELF(p string) error {
	return t.addELFSeen(p, map[string]bool{})
}

func (t *tree) addELFSeen(p string, seen map[string]bool) error {
	real, err := t.addResolving(p, 0)
	if err != nil {
		return err
	}
	if seen[real] {
		return nil
	}
	seen[real] = true
	f, err := elf.Open(real)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := t.addELFSeen(string(bytes.TrimRight(b, "\x00")), seen); err != nil {
			return err
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				dirs = append(dirs, strings.ReplaceAll(d, "$ORIGIN", path.Dir(real)))
			}
		}
	}
	triplet := multiarch()
	dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet, "/lib", "/usr/lib", "/lib64", "/usr/lib64")
	for _, lib := range libs {
		found := ""
		for _, d := range dirs {
			candidate := path.Join(d, lib)
			if sameMachine(candidate, f) {
				found = candidate
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, which is not on this machine", p, lib)
		}
		if err := t.addELFSeen(found, seen); err != nil {
			return err
		}
	}
	return nil
}

// sameMachine reports whether p is an ELF file for the machine of f.
func sameMachine(p string, f *elf.File) bool {
	g, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer g.Close()
	return g.Machine == f.Machine && g.Class == f.Class
}

// multiarch is Debian's name for this architecture's library folder.
func multiarch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64-linux-gnu"
	case "riscv64":
		return "riscv64-linux-gnu"
	default:
		return "x86_64-linux-gnu"
	}
}

// layeredImage stacks one layer per entry list on an empty image, from the
// one least likely to change, and sets the config.
func layeredImage(layers [][]entry, cfg v1.Config) (v1.Image, error) {
	img := empty.Image
	for _, entries := range layers {
		l, err := layer(entries)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, err
		}
	}
	return withConfig(img, cfg)
}
