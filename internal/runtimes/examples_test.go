package runtimes_test

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestExamples runs the code of every Function in examples/ with the
// Execution next to it, as the operator would run it: the inline files
// mounted like a Secret volume, the function's variables and the request in
// the environment, the contract from the Function.
func TestExamples(t *testing.T) {
	want := map[string][]check{
		"node-v4-hello": {ok(200), response(`{"message":"Hello, kfn!"}`), stdout("greeting kfn in en\n"), stderr(""),
			headers(map[string]string{"content-type": "application/json; charset=utf-8", "x-greeted": "kfn"})},
		"node-v2-hello": {ok(200), response(`{"message":"Hello, kfn!","functionId":"node-v2-hello"}`),
			stdout("payload: {\"name\":\"kfn\"}\n"), stderr("")},
		"python-v4-hello": {ok(200), response(`{"message":"Hello, kfn!"}`), stdout("greeting kfn in en\n"), stderr("")},
		"python-v2-hello": {ok(200), response(`{"message":"Hello, kfn!","functionId":"python-v2-hello"}`),
			stdout("payload: {'name': 'kfn'}\n"), stderr("")},
		"node-deps": {ok(200), response(`{"slug":"hello-appwrite-on-kubernetes"}`),
			stdout("slug of \"Héllo, Appwrite on Kubernetes!\": hello-appwrite-on-kubernetes\n")},
		"python-deps": {ok(200), response(`{"slug":"hello-appwrite-on-kubernetes","banner":"== hello-appwrite-on-kubernetes =="}`),
			stdout("slug of 'Héllo, Appwrite on Kubernetes!': hello-appwrite-on-kubernetes\n")},
	}
	dirs, err := filepath.Glob("../../examples/*/function.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, fnFile := range dirs {
		name := filepath.Base(filepath.Dir(fnFile))
		t.Run(name, func(t *testing.T) {
			checks, ok := want[name]
			if !ok {
				t.Fatalf("examples/%s has no expected result in TestExamples", name)
			}
			var fn struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
				Spec struct {
					Runtime    string `json:"runtime"`
					Contract   string `json:"contract"`
					Entrypoint string `json:"entrypoint"`
					Code       struct {
						Inline map[string]string `json:"inline"`
					} `json:"code"`
					Variables []struct {
						Name  string `json:"name"`
						Value string `json:"value"`
					} `json:"variables"`
				} `json:"spec"`
			}
			var ex struct {
				Spec struct {
					FunctionName string            `json:"functionName"`
					Data         string            `json:"data"`
					Body         string            `json:"body"`
					Method       string            `json:"method"`
					Path         string            `json:"path"`
					Headers      map[string]string `json:"headers"`
				} `json:"spec"`
			}
			readYAML(t, fnFile, &fn)
			readYAML(t, filepath.Join(filepath.Dir(fnFile), "execution.yaml"), &ex)
			if ex.Spec.FunctionName != fn.Metadata.Name {
				t.Fatalf("the execution runs %q, not the example's function %q", ex.Spec.FunctionName, fn.Metadata.Name)
			}
			rt := hostRuntime(t, fn.Spec.Runtime)
			env := map[string]string{"APPWRITE_FUNCTION_ID": fn.Metadata.Name, "APPWRITE_FUNCTION_NAME": fn.Metadata.Name}
			names := ""
			for _, v := range fn.Spec.Variables {
				env[v.Name] = v.Value
				if names != "" {
					names += ","
				}
				names += v.Name
			}
			env["KFN_FUNCTION_VARIABLES"] = names
			data := ex.Spec.Data
			if data == "" {
				data = ex.Spec.Body
			}
			r := rt.run(t, execution{
				contract: fn.Spec.Contract, entry: fn.Spec.Entrypoint, files: fn.Spec.Code.Inline, secretVolume: true,
				data: data, method: ex.Spec.Method, path: ex.Spec.Path, headers: ex.Spec.Headers, env: env,
			})
			for _, c := range checks {
				c(t, r)
			}
		})
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
