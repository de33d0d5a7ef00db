package controllers

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Runtime is one entry of the runtime catalog: an image and the command the
// function's entrypoint is appended to.
type Runtime struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command,omitempty"`
	// Runner is the absolute path of the kfn binary inside Image. An image
	// that has it needs no init container to bring the runner in, which
	// saves most of an execution's start-up.
	Runner string `json:"runner,omitempty"`
}

// RuntimeCatalog maps runtime names to runtimes; the operator is configured
// with it so platform teams decide which images functions may use by name.
type RuntimeCatalog map[string]Runtime

// LoadRuntimeCatalog reads a catalog file of the form
//
//	runtimes:
//	- name: node-20
//	  image: node:20-alpine
//	  command: [node]
func LoadRuntimeCatalog(path string) (RuntimeCatalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file struct {
		Runtimes []Runtime `json:"runtimes"`
	}
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		return nil, fmt.Errorf("runtime catalog %s: %w", path, err)
	}
	catalog := RuntimeCatalog{}
	for _, r := range file.Runtimes {
		if r.Name == "" || r.Image == "" {
			return nil, fmt.Errorf("runtime catalog %s: every runtime needs a name and an image", path)
		}
		if r.Runner != "" && !filepath.IsAbs(r.Runner) {
			return nil, fmt.Errorf("runtime catalog %s: runtime %q: runner must be an absolute path", path, r.Name)
		}
		if _, dup := catalog[r.Name]; dup {
			return nil, fmt.Errorf("runtime catalog %s: runtime %q listed twice", path, r.Name)
		}
		catalog[r.Name] = r
	}
	return catalog, nil
}
