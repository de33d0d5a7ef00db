// Command images builds the container images of the local cluster without a
// registry or a container engine: each image is assembled from files on this
// machine with go-containerregistry and written as an OCI archive (a tar of
// an OCI image layout) that `ctr images import` accepts.
//
//	kfn.dev/pause:3.10    the pod sandbox image (a static Go program)
//	kfn.dev/busybox:test  Debian's busybox-static with its applet links
//	kfn.dev/kfn:dev       the static kfn binary
//	kfn.dev/node-20:dev, kfn.dev/python-3.11:dev
//	                      the runtimes of internal/runtimes/runtimes.json: an
//	                      interpreter of this machine with its libraries, the
//	                      kfn binary and the runtime's wrapper (runtimes.go)
//
// Builds are reproducible (fixed timestamps), so an unchanged input gives the
// same image digest; a tarball whose digest file already matches is not
// written again. For every image it prints "<name> <digest> <tarball>".
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	pauseRef   = "kfn.dev/pause:3.10"
	busyboxRef = "kfn.dev/busybox:test"
	kfnRef     = "kfn.dev/kfn:dev"

	nonRoot = 65532 // the conventional "nonroot" user of distroless images
)

// epoch is the timestamp of every file and image, for reproducible digests.
var epoch = time.Unix(0, 0).UTC()

func main() {
	log.SetFlags(0)
	log.SetPrefix("images: ")
	out := flag.String("out", "", "folder for the <image>.tar and <image>.digest files (required)")
	pause := flag.String("pause", "", "static pause binary; empty skips the pause image")
	busybox := flag.String("busybox", "", "static busybox binary (Debian: /bin/busybox from busybox-static); empty skips the busybox image")
	kfn := flag.String("kfn", "", "static kfn binary; empty skips the kfn image")
	withKfnImage := flag.Bool("kfn-image", true, "build the kfn image from -kfn (false: -kfn is only for the runtime images)")
	caCerts := flag.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the kfn and runtime images if it exists")
	runtimesDir := flag.String("runtimes", "", "the internal/runtimes folder: runtimes.json and the wrappers (needed by -node and -python)")
	node := flag.String("node", "", "node binary for the node-20 runtime image (the machine's nodejs: /usr/bin/node); empty skips it")
	python := flag.String("python", "", "versioned python binary for the python-3.11 runtime image (Debian's python3.11: /usr/bin/python3.11); empty skips it")
	flag.Parse()
	if *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	type build struct {
		file, ref, input string
		image            func(string) (v1.Image, error)
	}
	kfnImageInput := *kfn
	if !*withKfnImage {
		kfnImageInput = ""
	}
	builds := []build{
		{"pause", pauseRef, *pause, pauseImage},
		{"busybox", busyboxRef, *busybox, busyboxImage},
		{"kfn", kfnRef, kfnImageInput, func(bin string) (v1.Image, error) { return kfnImage(bin, *caCerts) }},
	}
	if *runtimesDir != "" {
		rts, err := runtimeBuilds(*runtimesDir, *kfn, *caCerts, map[string]string{"node-20": *node, "python-3.11": *python})
		if err != nil {
			log.Fatal(err)
		}
		for _, rt := range rts {
			builds = append(builds, build{rt.name, rt.ref, rt.name, func(string) (v1.Image, error) { return rt.image() }})
		}
	} else if *node != "" || *python != "" {
		log.Fatal("-node and -python need -runtimes")
	}
	for _, b := range builds {
		if b.input == "" {
			continue
		}
		img, err := b.image(b.input)
		if err != nil {
			log.Fatalf("%s: %v", b.ref, err)
		}
		tarPath, err := write(img, b.ref, filepath.Join(*out, b.file))
		if err != nil {
			log.Fatalf("%s: %v", b.ref, err)
		}
		d, _ := img.Digest()
		fmt.Printf("%s %s %s\n", b.ref, d, tarPath)
	}
}

// write saves img as base.tar with the tag ref, unless base.digest already
// names the same image digest and base.tar exists.
func write(img v1.Image, ref, base string) (string, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	tarPath, digestPath := base+".tar", base+".digest"
	if old, err := os.ReadFile(digestPath); err == nil && strings.TrimSpace(string(old)) == d.String() {
		if _, err := os.Stat(tarPath); err == nil {
			return tarPath, nil
		}
	}
	tmp := tarPath + ".tmp"
	if err := writeOCIArchive(tmp, tag, img); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, tarPath); err != nil {
		return "", err
	}
	return tarPath, os.WriteFile(digestPath, []byte(d.String()+"\n"), 0o644)
}

// writeOCIArchive writes img, named tag, as an OCI image layout packed in a tar.
func writeOCIArchive(path string, tag name.Tag, img v1.Image) error {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	// containerd names the imported image after io.containerd.image.name.
	if err := l.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          tag.Name(),
		"org.opencontainers.image.ref.name": tag.Name(),
	})); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: epoch, Typeflag: tar.TypeReg}
		if d.IsDir() {
			hdr.Name, hdr.Mode, hdr.Typeflag = hdr.Name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// entry is one file system object of a layer.
type entry struct {
	path     string // absolute, inside the image
	mode     int64  // permission bits (and sticky bit)
	uid, gid int
	dir      bool
	link     string // symlink target
	data     []byte // regular file content
}

func dir(p string, mode int64) entry            { return entry{path: p, mode: mode, dir: true} }
func symlink(p, target string) entry            { return entry{path: p, mode: 0o777, link: target} }
func file(p string, mode int64, b []byte) entry { return entry{path: p, mode: mode, data: b} }

// layer builds an uncompressed tar of entries (parents first, sorted) and
// wraps it as a layer; go-containerregistry compresses it deterministically.
func layer(entries []entry) (v1.Layer, error) {
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, e := range entries {
		p := strings.TrimPrefix(path.Clean(e.path), "/")
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		h := &tar.Header{Name: p, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// image puts one layer on an empty image and sets its config.
func image(entries []entry, cfg v1.Config) (v1.Image, error) {
	return layeredImage([][]entry{entries}, cfg)
}

// withConfig sets the platform, the fixed creation time and cfg.
func withConfig(img v1.Image, cfg v1.Config) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// baseFiles is the skeleton every image shares: a world-writable /tmp and
// passwd/group entries for root, nobody and the nonroot user, so images run
// as any of them.
func baseFiles() []entry {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", nonRoot)
	home := dir("/home/nonroot", 0o755)
	home.uid, home.gid = nonRoot, nonRoot
	return []entry{
		dir("/etc", 0o755), dir("/tmp", 0o1777), dir("/root", 0o700), dir("/home", 0o755), home,
		file("/etc/passwd", 0o644, []byte(passwd)),
		file("/etc/group", 0o644, []byte(group)),
	}
}

func pauseImage(bin string) (v1.Image, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return image([]entry{file("/pause", 0o755, b)}, v1.Config{
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
	})
}

func busyboxImage(bin string) (v1.Image, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	// --list-full prints every applet with its usual folder (bin/sh,
	// usr/bin/nc, sbin/ip, ...).
	list, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	entries := append(baseFiles(),
		dir("/bin", 0o755), dir("/sbin", 0o755), dir("/usr", 0o755),
		dir("/usr/bin", 0o755), dir("/usr/sbin", 0o755), dir("/var", 0o755),
		file("/bin/busybox", 0o755, b))
	for _, applet := range strings.Fields(string(list)) {
		p := "/" + strings.TrimPrefix(applet, "/")
		if p == "/bin/busybox" {
			continue
		}
		entries = append(entries, dir(path.Dir(p), 0o755), symlink(p, "/bin/busybox"))
	}
	return image(entries, v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	})
}

func kfnImage(bin, caCerts string) (v1.Image, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	entries := append(baseFiles(), file("/kfn", 0o755, b))
	if ca, err := os.ReadFile(caCerts); err == nil {
		entries = append(entries, dir("/etc/ssl", 0o755), dir("/etc/ssl/certs", 0o755),
			file("/etc/ssl/certs/ca-certificates.crt", 0o644, ca))
	}
	return image(entries, v1.Config{
		Entrypoint: []string{"/kfn"},
		User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		Env:        []string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		WorkingDir: "/",
	})
}
