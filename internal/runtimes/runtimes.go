// Package runtimes holds the language runtimes that run unmodified Appwrite
// functions under the kfn runner: a wrapper per language that implements
// Appwrite's function API (the 1.0 req/res contract "v2" and the 1.4+
// context contract "v4") on top of kfn's file/env contract
// (docs/runtime-contract.md), and the manifest that says how each runtime
// image is laid out.
//
// The wrappers and the manifest are embedded here so the tests use the very
// bytes that hack/images puts in the images (it reads the same files from
// this folder); docs/runtimes.md describes the runtimes for function authors.
package runtimes

import (
	"embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/kfn-dev/kfn/internal/contract"
)

// Environment variables the wrappers read besides kfn's file/env contract.
const (
	// EnvContract selects the Appwrite contract: ContractV2 or ContractV4
	// (the default when unset or empty; "v3" and "v5" mean v4 too).
	EnvContract = contract.EnvFunctionContract
	// EnvFunctionVariables lists, comma-separated, the names of the
	// function's own variables, which the v2 contract hands the code in
	// req.variables next to the APPWRITE_FUNCTION_* values. Unset, the
	// wrappers take every variable that is not a well-known system one.
	EnvFunctionVariables = contract.EnvFunctionVariables
)

// The Appwrite contracts a wrapper implements.
const (
	// ContractV2 is Appwrite 1.0–1.3 (open-runtimes v2): the code exports
	// a function of (req, res) and answers with res.send or res.json.
	ContractV2 = "v2"
	// ContractV4 is Appwrite 1.4+ (open-runtimes v3/v4): the code exports a
	// function of a context {req, res, log, error} and returns a response.
	ContractV4 = "v4"
	// DefaultContract is the contract of a function that names none.
	DefaultContract = ContractV4
)

// Runtime is one runtime image: the interpreter, the kfn runner at Runner
// and the wrapper at Wrapper.Path.
type Runtime struct {
	// Name is the runtime's name in the operator's runtime catalog.
	Name string `json:"name"`
	// Image is the reference hack/build-images.sh builds the image as.
	Image string `json:"image"`
	// Command runs the wrapper; the function's entrypoint is appended.
	Command []string `json:"command"`
	// Wrapper is the wrapper's source in this package and its path in the
	// image.
	Wrapper File `json:"wrapper"`
	// DefaultEntrypoint is the entrypoint when none is given, as in Appwrite.
	DefaultEntrypoint string `json:"defaultEntrypoint"`
}

// File is a file of this package and where it goes in an image.
type File struct {
	Source string `json:"source"`
	Path   string `json:"path"`
}

// Manifest is runtimes.json.
type Manifest struct {
	// Runner is where every runtime image has the static kfn binary, so
	// that a function pod needs no init container to get it.
	Runner   string    `json:"runner"`
	Runtimes []Runtime `json:"runtimes"`
}

//go:embed runtimes.json node/kfn-node.mjs python/kfn_python.py
var files embed.FS

var manifest = sync.OnceValues(func() (Manifest, error) {
	var m Manifest
	data, err := files.ReadFile("runtimes.json")
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	return m, err
})

// Load returns the manifest.
func Load() (Manifest, error) {
	m, err := manifest()
	if err != nil {
		return Manifest{}, fmt.Errorf("runtimes.json: %w", err)
	}
	return m, nil
}

// Get returns the runtime named name.
func (m Manifest) Get(name string) (Runtime, bool) {
	for _, r := range m.Runtimes {
		if r.Name == name {
			return r, true
		}
	}
	return Runtime{}, false
}

// Source returns the content of a file of this package, such as a
// wrapper's Source.
func Source(name string) ([]byte, error) {
	return files.ReadFile(name)
}
