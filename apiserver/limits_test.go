package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// offlineJWTKey signs the offline project's user tokens.
var offlineJWTKey = []byte("offline-jwt-signing-key-of-32-by")

// offlineFacade is a facade on a fake client (no cluster) whose project
// offlineProject has an API key offlineKey with every scope, a JWT key,
// and the functions "fn" (no execute roles), "open" (anyone) and "users".
func offlineFacade(tb testing.TB, o Options, funcs *interceptor.Funcs) *Server {
	tb.Helper()
	fn := func(name string, execute ...string) *fnv1.Function {
		return &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: offlineProject, UID: k8stypes.UID("uid-" + name)},
			Spec: fnv1.FunctionSpec{Image: "busybox:test", Execute: execute}}
	}
	b := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: offlineProject, Labels: map[string]string{kube.LabelProject: "true"}}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: APIKeysSecretName, Namespace: offlineProject},
			Data:       APIKeyData("bench", offlineKey, scopeExecutionRead, scopeExecutionWrite),
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: JWTSecretName, Namespace: offlineProject},
			Data:       map[string][]byte{JWTSecretKey: offlineJWTKey},
		},
		fn("fn"), fn("open", "any"), fn("users", "users"),
	).WithIndex(&corev1.Namespace{}, indexProjectID, labelIndex(kube.LabelProjectID)).
		WithIndex(&fnv1.Function{}, indexFunctionID, labelIndex(kube.LabelFunctionID))
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	c := b.Build()
	o.CacheWait = time.Millisecond // no informer tells the fake's creates
	s := newServer(o.withDefaults(), c, c, c, c)
	var err error
	if s.engine, err = s.newEngine(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// offlineCall is one request to an offline facade.
type offlineCall struct {
	ip, format, key, user string
	fn                    string
	body                  string
}

func (s *Server) call(t *testing.T, c offlineCall) *httptest.ResponseRecorder {
	t.Helper()
	fn := c.fn
	if fn == "" {
		fn = "missing"
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/functions/"+fn+"/executions", strings.NewReader(c.body))
	req.RemoteAddr = c.ip + ":4242"
	if c.format != "" {
		req.Header.Set("X-Appwrite-Response-Format", c.format)
	}
	return s.serveOffline(t, req, c.key, c.user)
}

// serveOffline answers req in the offline project, as the API key key or
// the user user (a token of the project's JWT key), or else a guest.
func (s *Server) serveOffline(t *testing.T, req *http.Request, key, user string) *httptest.ResponseRecorder {
	t.Helper()
	req.Header.Set("X-Appwrite-Project", offlineProject)
	if key != "" {
		req.Header.Set("X-Appwrite-Key", key)
	}
	if user != "" {
		token, err := MintJWT(offlineJWTKey, user, "s", time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Appwrite-JWT", token)
	}
	w := httptest.NewRecorder()
	s.engine.ServeHTTP(w, req)
	return w
}

// expectLimited sends calls until the first is refused: n get through
// (to a missing function: 404), the next is 429 general_rate_limit_exceeded
// with Retry-After and without Appwrite's X-RateLimit-* headers.
func (s *Server) expectLimited(t *testing.T, n int, c offlineCall) {
	t.Helper()
	for i := range n {
		if w := s.call(t, c); w.Code != http.StatusNotFound {
			t.Fatalf("%+v: call %d answered %d %s, want 404", c, i+1, w.Code, w.Body)
		}
	}
	w := s.call(t, c)
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), `"type":"general_rate_limit_exceeded"`) ||
		w.Header().Get("Retry-After") == "" || w.Header().Get("X-RateLimit-Limit") != "" {
		t.Fatalf("%+v: call %d answered %d %v %s, want 429 with Retry-After", c, n+1, w.Code, w.Header(), w.Body)
	}
}

// The protective limits hold in every response format, the newest (no
// header) included: per client IP for guests and users, per user across
// IPs, per API key (not per IP) for keys; 0 disables each.
func TestProtectiveLimitsInEveryFormat(t *testing.T) {
	s := offlineFacade(t, Options{IPLimit: 3, UserLimit: 2, KeyLimit: 4}, nil)
	s.expectLimited(t, 3, offlineCall{ip: "192.0.2.1"})
	s.expectLimited(t, 0, offlineCall{ip: "192.0.2.1", format: "1.4.0"})
	s.expectLimited(t, 0, offlineCall{ip: "192.0.2.1", format: "1.0.0"})
	s.expectLimited(t, 3, offlineCall{ip: "192.0.2.2", format: "1.6.0"})

	// alice: her second call passes, her third is over her own limit.
	s.expectLimited(t, 2, offlineCall{ip: "192.0.2.3", user: "alice"})
	s.expectLimited(t, 0, offlineCall{ip: "192.0.2.4", user: "alice"})
	// bob from alice's IP: its 3 calls are spent (the 4th counted too).
	s.expectLimited(t, 0, offlineCall{ip: "192.0.2.3", user: "bob"})

	// An API key is limited per key only, from an IP long refused.
	s.expectLimited(t, 4, offlineCall{ip: "192.0.2.1", key: offlineKey})

	off := offlineFacade(t, Options{}, nil)
	for range 20 {
		for _, c := range []offlineCall{{ip: "192.0.2.1"}, {ip: "192.0.2.1", user: "alice"}, {ip: "192.0.2.1", key: offlineKey}} {
			if w := off.call(t, c); w.Code != http.StatusNotFound {
				t.Fatalf("disabled limits: %+v answered %d %s", c, w.Code, w.Body)
			}
		}
	}
}

// Appwrite 1.0's limit stays as it was, before the protective one: formats
// before 1.4 only, X-RateLimit-* headers, API keys exempt.
func TestAppwriteLimitBeforeProtective(t *testing.T) {
	s := offlineFacade(t, Options{RateLimit: 2, RatePeriod: time.Minute, IPLimit: 100}, nil)
	for i := range 2 {
		w := s.call(t, offlineCall{ip: "192.0.2.9", format: "1.0.0"})
		if w.Code != 404 || w.Header().Get("X-RateLimit-Remaining") != fmt.Sprint(1-i) {
			t.Fatalf("call %d: %d %v", i, w.Code, w.Header())
		}
	}
	if w := s.call(t, offlineCall{ip: "192.0.2.9", format: "1.0.0"}); w.Code != 429 || w.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("over Appwrite's limit: %d %v", w.Code, w.Header())
	}
	for _, c := range []offlineCall{{ip: "192.0.2.9"}, {ip: "192.0.2.9", format: "1.0.0", key: offlineKey}} {
		if w := s.call(t, c); w.Code != 404 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("%+v: %d %v", c, w.Code, w.Header())
		}
	}
}

func TestBodyBudget(t *testing.T) {
	b := newBudget(10)
	if !b.take(6) || !b.take(4) || b.take(1) || b.inUse() != 10 {
		t.Fatalf("budget of 10: %d in use", b.inUse())
	}
	b.give(4)
	if b.take(5) || !b.take(0) || !b.take(4) {
		t.Fatal("budget after giving 4 back")
	}
	if o := (Options{MaxBodyMemory: 1}).withDefaults(); o.MaxBodyMemory != maxRequestBody {
		t.Fatalf("a budget under one largest body: %d", o.MaxBodyMemory)
	}
}

// objectMembers splits an object as json.Unmarshal into a map of raw
// messages does.
func TestObjectMembersAsEncodingJSON(t *testing.T) {
	for _, in := range objectSeeds {
		checkObjectMembers(t, []byte(in))
	}
}

var objectSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a" : "x" , "b":[1,{"c":"]}"}],"d":null}`, `{"a":1,"a":2}`,
	`{"body":"\"quoted\" \\ \u00e9 \ud83d\ude00","async":true,"headers":{"x":"}"}}`,
	"{\n\t\"a\"\r\n:\n-1.5e3\t,\"b\":false}", `{"\u0062ody":"x","":""}`, `{"a":[[[]]],"b":{"c":{"d":[]}}}`,
	`{"a":"tail\\"}`, `{"a":"` + "\xff\xfe" + `"}`,
}

func FuzzObjectMembers(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if json.Valid(raw) && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			checkObjectMembers(t, bytes.TrimSpace(raw))
		}
	})
}

func checkObjectMembers(t *testing.T, raw []byte) {
	t.Helper()
	want := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	got, err := objectMembers(raw)
	if err != nil || len(got) != len(want) {
		t.Fatalf("%s: members %q (%v), want %q", raw, got, err, want)
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("%s: %q is %q, want %q", raw, k, got[k], v)
		}
	}
}

// A large body is not copied on its way from the request to the Secrets:
// the parameter and the Secret parts are slices of the bytes read.
func TestBodyIsNotCopied(t *testing.T) {
	body := strings.Repeat("0123456789", 300_000)
	raw := []byte(`{"async":true, "body":"` + body + `"}`)
	p, aerr := parseCreate(raw, parseFormat(""), time.Now())
	if aerr != nil {
		t.Fatal(aerr)
	}
	at := bytes.Index(raw, []byte(body))
	if string(p.body) != body || &p.body[0] != &raw[at] {
		t.Fatal("the body parameter is a copy")
	}
	fn := &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn", Namespace: offlineProject, UID: "fn-uid"}}
	_, secrets, err := newExecution(kube.NewScheme(), offlineProject, "id", fn, p, caller{kind: guest})
	if err != nil || len(secrets) != 4 || &secrets[1].value[0] != &raw[at+fnv1.MaxBodySecretBytes] {
		t.Fatalf("body parts are copies (%v)", err)
	}
	// Escaped strings are decoded, as encoding/json does.
	p, _ = parseCreate([]byte(`{"body":"a\nb\u00e9"}`), parseFormat(""), time.Now())
	if string(p.body) != "a\nbé" {
		t.Fatalf("escaped body: %q", p.body)
	}
}

// The facade makes the Execution owned by its Function, as the operator's
// ownByFunction would (so the operator has no patch to make), and its
// request Secrets owned by the Execution and labelled for it.
func TestCreatedObjectsAreOwnedAndLabelled(t *testing.T) {
	g := gomega.NewWithT(t)
	s := offlineFacade(t, Options{}, nil)
	body := strings.Repeat("b", 2*fnv1.MaxBodySecretBytes)
	w := s.call(t, offlineCall{fn: "users", user: "alice", body: `{"async":true,"body":"` + body + `"}`})
	g.Expect(w.Code).To(gomega.Equal(202), w.Body.String())
	var rec map[string]any
	g.Expect(json.Unmarshal(w.Body.Bytes(), &rec)).To(gomega.Succeed())

	exec := &fnv1.Execution{}
	g.Expect(s.writer.Get(bg, client.ObjectKey{Namespace: offlineProject, Name: rec["$id"].(string)}, exec)).To(gomega.Succeed())
	fn := &fnv1.Function{}
	g.Expect(s.writer.Get(bg, client.ObjectKey{Namespace: offlineProject, Name: "users"}, fn)).To(gomega.Succeed())
	want := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Namespace: offlineProject}}
	g.Expect(controllerutil.SetOwnerReference(fn, want, s.writer.Scheme())).To(gomega.Succeed())
	g.Expect(exec.OwnerReferences).To(gomega.Equal(want.OwnerReferences))
	g.Expect(exec.OwnerReferences[0].Controller).To(gomega.BeNil())

	names := append([]string{exec.Spec.JWTSecretName}, exec.Spec.BodySecrets...)
	g.Expect(names).To(gomega.HaveLen(3))
	for _, name := range names {
		secret := &corev1.Secret{}
		g.Expect(s.writer.Get(bg, client.ObjectKey{Namespace: offlineProject, Name: name}, secret)).To(gomega.Succeed())
		g.Expect(secret.Labels).To(gomega.Equal(map[string]string{kube.LabelManagedBy: kube.ManagedBy, kube.LabelExecution: exec.Name}))
		owned, err := controllerutil.HasOwnerReference(secret.OwnerReferences, exec, s.writer.Scheme())
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(owned).To(gomega.BeTrue(), "secret %s is owned by its execution", name)
		g.Expect(secret.OwnerReferences[0].UID).To(gomega.Equal(exec.UID))
	}
}

// When a request Secret cannot be made, the Execution is deleted (and
// garbage collection takes the Secrets it owns); the facade never deletes
// a Secret itself.
func TestFailedSecretDeletesTheExecution(t *testing.T) {
	g := gomega.NewWithT(t)
	secrets := 0
	s := offlineFacade(t, Options{}, &interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				if secrets++; secrets == 2 {
					return errors.New("etcd is full")
				}
			}
			return c.Create(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				t.Errorf("the facade deleted secret %s", obj.GetName())
			}
			return c.Delete(ctx, obj, opts...)
		},
	})
	w := s.call(t, offlineCall{fn: "users", user: "alice", body: `{"body":"` + strings.Repeat("b", fnv1.MaxBodySecretBytes+1) + `"}`})
	g.Expect(w.Code).To(gomega.Equal(500), w.Body.String())
	var execs fnv1.ExecutionList
	g.Expect(s.writer.List(bg, &execs)).To(gomega.Succeed())
	g.Expect(execs.Items).To(gomega.BeEmpty())
}

// API keys live in one Secret per project, by name; a hash is matched
// whatever its case and spacing, scopes split on commas and spaces.
func TestMatchAPIKey(t *testing.T) {
	data := APIKeyData("ci", "secret-1", "execution.read", "execution.write")
	data["deploy.hash"] = []byte(" " + strings.ToUpper(HashAPIKey("secret-2")) + "\n")
	data["deploy.scopes"] = []byte("execution.write,functions.read")
	data["orphan.scopes"] = []byte("execution.read")
	data[".hash"] = []byte(HashAPIKey(""))
	for key, want := range map[string]string{"secret-1": "ci", "secret-2": "deploy", "": "", "nope": ""} {
		name, scopes, ok := matchAPIKey(data, key)
		if name != want || ok != (want != "") {
			t.Fatalf("key %q: %q %v, want %q", key, name, ok, want)
		}
		if want == "deploy" && (!scopes["execution.write"] || !scopes["functions.read"] || len(scopes) != 2) {
			t.Fatalf("deploy's scopes: %v", scopes)
		}
	}
}

// A connection is bounded: headers in 10 s and 64 KiB, the request in the
// read timeout, and the answer in the longest synchronous wait of any
// format (Appwrite 1.0's: the largest function timeout plus the grace)
// after the request was read.
func TestHTTPServerBounds(t *testing.T) {
	s := &Server{opts: Options{SyncTimeout: 30 * time.Second, SyncGrace: 30 * time.Second}.withDefaults()}
	srv := s.httpServer()
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != time.Minute || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes != 64<<10 {
		t.Fatalf("read bounds: %+v", srv)
	}
	if longest := srv.ReadTimeout + maxFunctionTimeout + s.opts.SyncGrace; srv.WriteTimeout <= longest {
		t.Fatalf("write timeout %s cuts a synchronous answer short (%s)", srv.WriteTimeout, longest)
	}
}
