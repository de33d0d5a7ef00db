package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

var bg = context.Background()

const eventually = 20 * time.Second

// api is one client of the facade: a project, a format and credentials.
type api struct {
	project string
	format  string // X-Appwrite-Response-Format; "" for none
	key     string
	jwt     string
	headers map[string]string
}

func (a api) with(f func(*api)) api { f(&a); return a }

type response struct {
	code   int
	header http.Header
	raw    string
	body   map[string]any
}

func (r response) str(k string) string  { s, _ := r.body[k].(string); return s }
func (r response) num(k string) float64 { n, _ := r.body[k].(float64); return n }

func (r response) executions() []map[string]any {
	items, _ := r.body["executions"].([]any)
	out := make([]map[string]any, 0, len(items))
	for _, i := range items {
		out = append(out, i.(map[string]any))
	}
	return out
}

func (r response) ids() []string {
	var ids []string
	for _, e := range r.executions() {
		ids = append(ids, e["$id"].(string))
	}
	return ids
}

// do sends a request; body is JSON-encoded unless it is a string.
func (a api) do(t *testing.T, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, facadeURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	a.setHeaders(req.Header)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readResponse(res)
}

// setHeaders sets the client's headers on a request.
func (a api) setHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	if a.project != "" {
		h.Set("X-Appwrite-Project", a.project)
	}
	if a.format != "" {
		h.Set("X-Appwrite-Response-Format", a.format)
	}
	if a.key != "" {
		h.Set("X-Appwrite-Key", a.key)
	}
	if a.jwt != "" {
		h.Set("X-Appwrite-JWT", a.jwt)
	}
	for k, v := range a.headers {
		h.Set(k, v)
	}
}

func readResponse(res *http.Response) response {
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{code: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (a api) create(t *testing.T, fn string, body any) response {
	t.Helper()
	return a.do(t, http.MethodPost, "/v1/functions/"+fn+"/executions", body)
}

func (a api) get(t *testing.T, fn, id string) response {
	t.Helper()
	return a.do(t, http.MethodGet, "/v1/functions/"+fn+"/executions/"+id, nil)
}

// list sends queries as queries[]=… (node-appwrite 8 style) plus extra params.
func (a api) list(t *testing.T, fn string, queries []string, extra url.Values) response {
	t.Helper()
	v := url.Values{}
	for _, q := range queries {
		v.Add("queries[]", q)
	}
	for k, vs := range extra {
		v[k] = vs
	}
	path := "/v1/functions/" + fn + "/executions"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	return a.do(t, http.MethodGet, path, nil)
}

// expectError checks an Appwrite error answer.
func expectError(t *testing.T, r response, code int, typ string) {
	t.Helper()
	if r.code != code || r.str("type") != typ || int(r.num("code")) != code || r.str("message") == "" || r.str("version") == "" {
		t.Fatalf("want %d %s, got %d %s", code, typ, r.code, r.raw)
	}
}

func expectCode(t *testing.T, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want HTTP %d, got %d %s", code, r.code, r.raw)
	}
}

// project is a namespace opted in as a project, with an API key holding
// every scope and a JWT signing key.
type project struct {
	name   string
	key    string
	jwtKey []byte
}

func newProject(t *testing.T) project {
	t.Helper()
	if facade == nil {
		t.Skip("the integration tests do not run while fuzzing")
	}
	g := gomega.NewWithT(t)
	p := project{name: "p-" + rand.String(8), key: "key-" + rand.String(24), jwtKey: []byte(rand.String(32))}
	g.Expect(k8s.Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{kube.LabelProject: "true"}}})).To(gomega.Succeed())
	g.Expect(k8s.Create(bg, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: p.name}})).To(gomega.Succeed())
	addKey(t, p.name, p.key, "execution.read, execution.write functions.read functions.write")
	g.Expect(k8s.Create(bg, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: JWTSecretName, Namespace: p.name},
		Data:       map[string][]byte{JWTSecretKey: p.jwtKey},
	})).To(gomega.Succeed())
	// Wait until the facade's caches see the project, its key and JWT key.
	g.Eventually(func() int {
		return p.api().list(t, "none", nil, nil).code
	}, eventually, 50*time.Millisecond).Should(gomega.Equal(404))
	g.Eventually(func() int {
		return p.user(t, "probe").list(t, "none", nil, nil).code
	}, eventually, 50*time.Millisecond).Should(gomega.Equal(404))
	return p
}

// addKey stores an API key the way an administrator does: hashed, in the
// project's kfn-api-keys Secret.
func addKey(t *testing.T, ns, key, scopes string) {
	t.Helper()
	g := gomega.NewWithT(t)
	data := APIKeyData("key-"+rand.String(6), key, scopes)
	secret := &corev1.Secret{}
	err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: APIKeysSecretName}, secret)
	if apierrors.IsNotFound(err) {
		g.Expect(k8s.Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: APIKeysSecretName, Namespace: ns}, Data: data})).To(gomega.Succeed())
	} else {
		g.Expect(err).NotTo(gomega.HaveOccurred())
		maps.Copy(secret.Data, data)
		g.Expect(k8s.Update(bg, secret)).To(gomega.Succeed())
	}
	// The facade reads keys again once testCredentialsTTL has passed.
	waitKey(t, ns, key)
}

// api is the project's API key client (newest format).
func (p project) api() api { return api{project: p.name, key: p.key} }

func (p project) guest() api { return api{project: p.name} }

func (p project) user(t *testing.T, id string) api {
	t.Helper()
	token, err := MintJWT(p.jwtKey, id, "session-"+id, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return api{project: p.name, jwt: token}
}

// function creates a Function anyone may execute, unless mutate says otherwise.
func (p project) function(t *testing.T, name string, mutate func(*fnv1.Function)) string {
	t.Helper()
	fn := &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.name},
		Spec: fnv1.FunctionSpec{
			Image: "busybox:test", Command: []string{"sh", "-c", "true"}, Timeout: 2,
			Execute: []string{"any"},
		},
	}
	if mutate != nil {
		mutate(fn)
	}
	g := gomega.NewWithT(t)
	g.Expect(k8s.Create(bg, fn)).To(gomega.Succeed())
	g.Eventually(func() int {
		return p.api().list(t, name, nil, nil).code
	}, eventually, 50*time.Millisecond).Should(gomega.Equal(200))
	return name
}

func disabled(fn *fnv1.Function) { fn.Spec.Enabled = ptr.To(false) }

// waitStatus waits until the API key client reads the execution in status.
func (p project) waitStatus(t *testing.T, fn, id, status string) response {
	t.Helper()
	var r response
	gomega.NewWithT(t).Eventually(func() string {
		r = p.api().get(t, fn, id)
		return r.str("status")
	}, eventually, 50*time.Millisecond).Should(gomega.Equal(status), "execution %s", id)
	return r
}

// waitKey waits until the facade knows an API key.
func waitKey(t *testing.T, ns, key string) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func() string {
		return api{project: ns, key: key}.list(t, "none", nil, nil).str("type")
	}, eventually, 50*time.Millisecond).ShouldNot(gomega.Equal(errUserUnauthorized))
}
