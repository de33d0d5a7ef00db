package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/controllers"
	"github.com/kfn-dev/kfn/internal/kube"
)

func TestHealthRoutesCORSAndProjects(t *testing.T) {
	p := newProject(t)
	before := testutil.ToFloat64(requestsTotal.WithLabelValues("GET", "unmatched", "404", errRouteNotFound))
	expectCode(t, api{}.do(t, http.MethodGet, "/v1/health", nil), 200)
	expectError(t, api{}.do(t, http.MethodGet, "/v1/nope", nil), 404, errRouteNotFound)
	if got := testutil.ToFloat64(requestsTotal.WithLabelValues("GET", "unmatched", "404", errRouteNotFound)); got != before+1 {
		t.Fatalf("kfn_apiserver_requests_total did not count the request: %v -> %v", before, got)
	}
	if testutil.CollectAndCount(requestDuration) == 0 {
		t.Fatal("kfn_apiserver_request_duration_seconds is empty")
	}
	expectError(t, p.api().do(t, http.MethodPut, "/v1/functions/f/executions", nil), 404, errRouteNotFound)

	pre := api{headers: map[string]string{"Origin": "http://app.test", "Access-Control-Request-Headers": "x-appwrite-project,x-sdk-version"}}.
		do(t, http.MethodOptions, "/v1/functions/f/executions", nil)
	expectCode(t, pre, 204)
	if pre.header.Get("Access-Control-Allow-Origin") != "http://app.test" || pre.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "X-SDK-Version") ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "X-Appwrite-JWT") {
		t.Fatalf("CORS headers: %v", pre.header)
	}

	expectError(t, api{}.list(t, "f", nil, nil), 400, errProjectUnknown)
	expectError(t, api{project: "no-such-namespace"}.list(t, "f", nil, nil), 404, errProjectNotFound)
	plain := "plain-" + strings.ToLower(p.name)
	gomega.NewWithT(t).Expect(k8s.Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plain}})).To(gomega.Succeed())
	expectError(t, api{project: plain}.list(t, "f", nil, nil), 404, errProjectNotFound)
}

func TestCreateSyncAndFormats(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "hello", nil)

	// 1.0.0: data in, statusCode/response/stdout/stderr out.
	r := p.api().with(func(a *api) { a.format = "1.0.0" }).create(t, fn, map[string]any{"data": "world"})
	expectCode(t, r, 201)
	want10 := []string{"$id", "$createdAt", "$updatedAt", "$permissions", "functionId", "trigger", "status", "statusCode", "response", "stdout", "stderr", "duration"}
	if got := keys(r.body); !slices.Equal(got, sorted(want10)) {
		t.Fatalf("1.0.0 fields: %v", got)
	}
	if r.str("status") != "completed" || r.num("statusCode") != 200 || r.str("response") != "echo:world" ||
		r.str("stdout") != "log:world" || r.str("stderr") != "warn:world" || r.num("duration") <= 0 ||
		r.str("functionId") != fn || r.str("trigger") != "http" || len(r.body["$permissions"].([]any)) != 0 {
		t.Fatalf("1.0.0 record: %s", r.raw)
	}
	if len(r.str("$id")) != 20 || !strings.HasSuffix(r.str("$createdAt"), "+00:00") {
		t.Fatalf("id or time: %s", r.raw)
	}
	e := &fnv1.Execution{}
	gomega.NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: r.str("$id")}, e)).To(gomega.Succeed())
	if e.Spec.Data != "world" || e.Spec.Body != "" || e.Spec.FunctionName != fn || e.Spec.Trigger != fnv1.TriggerHTTP {
		t.Fatalf("execution spec: %+v", e.Spec)
	}

	// 1.4+: body, method, path and headers in; the new names out.
	for _, f := range []string{"1.4.0", "1.5.0", "1.6.0", "1.8.0", ""} {
		r := p.api().with(func(a *api) { a.format = f }).create(t, fn, map[string]any{
			"body": "json", "method": "PUT", "path": "/a?b=1", "headers": map[string]any{"content-type": "text/plain", "x-custom": "v"},
		})
		expectCode(t, r, 201)
		if r.str("responseBody") != "echo:json" || r.num("responseStatusCode") != 200 || r.str("logs") != "log:json" ||
			r.str("errors") != "warn:json" || r.str("requestMethod") != "PUT" || r.str("requestPath") != "/a?b=1" {
			t.Fatalf("%s record: %s", f, r.raw)
		}
		// (1.9 adds the caller's IP: TestClientIPRequestHeader.)
		if hs := r.body["requestHeaders"].([]any); len(hs) != map[bool]int{false: 1, true: 2}[f == ""] || hs[0].(map[string]any)["name"] != "content-type" {
			t.Fatalf("%s requestHeaders keep only allow-listed ones: %v", f, hs)
		}
		for _, old := range []string{"statusCode", "response", "stdout", "stderr"} {
			if _, ok := r.body[old]; ok {
				t.Fatalf("%s has %s: %s", f, old, r.raw)
			}
		}
		_, scheduled := r.body["scheduledAt"]
		_, deployment := r.body["deploymentId"]
		if scheduled != (f == "1.6.0" || f == "1.8.0" || f == "") || deployment != (f == "1.8.0" || f == "") {
			t.Fatalf("%s scheduledAt/deploymentId: %s", f, r.raw)
		}
	}
	// The record of a failed function.
	r = p.api().with(func(a *api) { a.format = "1.0.0" }).create(t, fn, map[string]any{"data": "fail"})
	expectCode(t, r, 201)
	if r.str("status") != "failed" || r.num("statusCode") != 500 || r.str("stderr") != "boom" {
		t.Fatalf("failed record: %s", r.raw)
	}
}

func TestFourHundredsPerFormat(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "teapot", nil)
	r := p.api().create(t, fn, map[string]any{"body": "status:418"})
	expectCode(t, r, 201)
	id := r.str("$id")
	for f, want := range map[string]string{"1.0.0": "completed", "1.4.0": "failed", "1.5.0": "failed", "1.6.0": "completed", "": "completed"} {
		if got := p.api().with(func(a *api) { a.format = f }).get(t, fn, id).str("status"); got != want {
			t.Errorf("format %q: status %s, want %s", f, got, want)
		}
	}
}

func TestCreateAsync(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "later", nil)
	for _, f := range []string{"1.0.0", ""} {
		a := p.api().with(func(a *api) { a.format = f })
		r := a.create(t, fn, map[string]any{"data": "sleep:300", "body": "sleep:300", "async": true})
		expectCode(t, r, 202)
		code, body, logs := "statusCode", "response", "stdout"
		if f == "" {
			code, body, logs = "responseStatusCode", "responseBody", "logs"
		}
		if r.str("status") != "waiting" || r.num(code) != 0 || r.str(body) != "" || r.str(logs) != "" || r.num("duration") != 0 {
			t.Fatalf("async record: %s", r.raw)
		}
		// Readable at once, and completed later.
		expectCode(t, a.get(t, fn, r.str("$id")), 200)
		p.waitStatus(t, fn, r.str("$id"), "completed")
	}
}

func TestCreateValidation(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "strict", nil)
	v10 := p.api().with(func(a *api) { a.format = "1.0.0" })
	v16 := p.api().with(func(a *api) { a.format = "1.6.0" })
	v18 := p.api().with(func(a *api) { a.format = "1.8.0" })

	expectError(t, v10.create(t, fn, `{"data": "x"`), 400, errArgumentInvalid)
	expectError(t, v10.create(t, fn, `[1,2]`), 400, errArgumentInvalid)
	expectError(t, v10.create(t, fn, map[string]any{"data": strings.Repeat("é", maxData+1)}), 400, errArgumentInvalid)
	expectCode(t, v10.create(t, fn, map[string]any{"data": strings.Repeat("é", maxData), "async": true}), 202)
	expectError(t, v10.create(t, fn, map[string]any{"data": 5}), 400, errArgumentInvalid)
	expectError(t, v10.create(t, fn, map[string]any{"async": "true"}), 400, errArgumentInvalid)
	expectError(t, p.api().with(func(a *api) { a.format = "1.5.0" }).create(t, fn, map[string]any{"async": 1}), 400, errArgumentInvalid)
	expectCode(t, v16.create(t, fn, map[string]any{"async": "true"}), 202)
	expectCode(t, v10.create(t, fn, nil), 201) // no body at all: defaults

	expectError(t, v16.create(t, fn, map[string]any{"method": "TRACE"}), 400, errArgumentInvalid)
	expectError(t, v16.create(t, fn, map[string]any{"method": "HEAD"}), 400, errArgumentInvalid)
	expectCode(t, v18.create(t, fn, map[string]any{"method": "HEAD"}), 201)
	expectError(t, v16.create(t, fn, map[string]any{"path": strings.Repeat("p", maxPath+1)}), 400, errArgumentInvalid)
	expectError(t, v16.create(t, fn, map[string]any{"body": strings.Repeat("b", maxBody+1)}), 400, errArgumentInvalid)
	expectError(t, v16.create(t, fn, map[string]any{"headers": map[string]any{"x-appwrite-user-id": "me"}}), 400, errArgumentInvalid)
	expectError(t, v16.create(t, fn, map[string]any{"headers": map[string]any{"bad key": "v"}}), 400, errArgumentInvalid)
	many := map[string]any{}
	for i := 0; i <= maxHeaders; i++ {
		many[fmt.Sprintf("h%d", i)] = "v"
	}
	expectError(t, v16.create(t, fn, map[string]any{"headers": many}), 400, errArgumentInvalid)
	expectError(t, v16.create(t, fn, map[string]any{"headers": map[string]any{"big": strings.Repeat("v", maxHeadersSize)}}), 400, errArgumentInvalid)
	expectError(t, v16.create(t, fn, map[string]any{"headers": 3}), 400, errArgumentInvalid)
	r := v16.create(t, fn, map[string]any{"headers": `{"content-type":"text/plain"}`})
	expectCode(t, r, 201)
	// 1.4/1.5 drop x-appwrite-* headers instead of rejecting them.
	r = p.api().with(func(a *api) { a.format = "1.4.0" }).create(t, fn, map[string]any{"headers": map[string]any{"X-Appwrite-Trigger": "event", "Content-Type": "a/b"}})
	expectCode(t, r, 201)
	e := &fnv1.Execution{}
	gomega.NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: r.str("$id")}, e)).To(gomega.Succeed())
	if len(e.Spec.Headers) != 2 || e.Spec.Headers["content-type"] != "a/b" || e.Spec.Headers[clientIPHeader] != "127.0.0.1" {
		t.Fatalf("headers: %v", e.Spec.Headers)
	}
	expectError(t, v16.create(t, fn, map[string]any{"scheduledAt": "2030-01-01T00:00:00.000+00:00"}), 400, errBadRequest)
	expectError(t, v16.create(t, fn, map[string]any{"scheduledAt": "yesterday", "async": true}), 400, errBadRequest)
	soon := time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339)
	expectError(t, v16.create(t, fn, map[string]any{"scheduledAt": soon, "async": true}), 400, errBadRequest)
}

// A delayed execution (1.6+): 202, status scheduled, trigger schedule, and
// the Execution carries the minute it is due.
func TestScheduledExecution(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "later", nil)
	// Appwrite schedules at minute precision and refuses seconds.
	expectError(t, p.api().create(t, fn, map[string]any{"scheduledAt": "2030-01-01T10:20:30.000+00:00", "async": true}), 400, errBadRequest)
	r := p.api().create(t, fn, map[string]any{"scheduledAt": "2030-01-01T10:20:00.000+00:00", "async": true})
	expectCode(t, r, 202)
	g.Expect(r.str("status")).To(gomega.Equal("scheduled"))
	g.Expect(r.str("trigger")).To(gomega.Equal("schedule"))
	g.Expect(r.str("scheduledAt")).To(gomega.Equal("2030-01-01T10:20:00.000+00:00"))

	e := &fnv1.Execution{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: r.str("$id")}, e)).To(gomega.Succeed())
	g.Expect(e.Spec.ScheduledAt.Time).To(gomega.BeTemporally("==", time.Date(2030, 1, 1, 10, 20, 0, 0, time.UTC)))
	g.Expect(e.Spec.Async).To(gomega.BeTrue())
	g.Eventually(func() string { return p.api().get(t, fn, e.Name).str("status") }, eventually, 50*time.Millisecond).Should(gomega.Equal("scheduled"))
}

func TestFunctionNotFound(t *testing.T) {
	p := newProject(t)
	off := p.function(t, "off", disabled)
	// (API keys of 1.4+ may run a disabled function: TestDisabledFunction.)
	for _, a := range []api{p.guest(), p.api().with(func(a *api) { a.format = "1.0.0" })} {
		expectError(t, a.create(t, "missing", nil), 404, errFunctionNotFound)
		expectError(t, a.create(t, off, nil), 404, errFunctionNotFound)
	}
	expectError(t, p.api().list(t, "missing", nil, nil), 404, errFunctionNotFound)
	expectError(t, p.api().get(t, "missing", "abc"), 404, errFunctionNotFound)
	expectCode(t, p.api().list(t, off, nil, nil), 200)
	expectError(t, p.api().get(t, off, "nope"), 404, errExecutionNotFound)
	expectError(t, p.api().get(t, off, "Not_A..Name"), 404, errExecutionNotFound)
}

func TestSyncTimeout(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "slow", func(f *fnv1.Function) { f.Spec.Timeout = 1 })
	start := time.Now()
	expectError(t, p.api().with(func(a *api) { a.format = "1.6.0" }).create(t, fn, map[string]any{"body": "hang"}), 408, errSyncTimeout)
	if d := time.Since(start); d < testSyncTimeout || d > testSyncTimeout+5*time.Second {
		t.Fatalf("1.6 sync timeout after %s, want about %s", d, testSyncTimeout)
	}
	// 1.4/1.5: a failed record, as Appwrite's executor timeout gives.
	r := p.api().with(func(a *api) { a.format = "1.4.0" }).create(t, fn, map[string]any{"body": "hang"})
	expectCode(t, r, 201)
	if r.str("status") != "failed" || r.num("responseStatusCode") != 500 || !strings.Contains(r.str("errors"), "timed out") {
		t.Fatalf("1.4 timed out record: %s", r.raw)
	}
	// The Execution itself goes on.
	if s := p.api().get(t, fn, r.str("$id")).str("status"); s != "processing" && s != "waiting" {
		t.Fatalf("the execution behind a timed-out wait is %s", s)
	}
	// 1.0: bounded by the function timeout plus the grace.
	start = time.Now()
	r = p.api().with(func(a *api) { a.format = "1.0.0" }).create(t, fn, map[string]any{"data": "hang"})
	expectCode(t, r, 201)
	if r.str("status") != "failed" || r.num("statusCode") != 500 {
		t.Fatalf("1.0 timed out record: %s", r.raw)
	}
	if d := time.Since(start); d < time.Second+testSyncGrace || d > testSyncTimeout {
		t.Fatalf("1.0 sync wait %s, want about %s", d, time.Second+testSyncGrace)
	}
	// A sync execution slower than the informer's first events still returns final.
	r = p.api().create(t, fn, map[string]any{"body": "sleep:500"})
	expectCode(t, r, 201)
	if r.str("status") != "completed" || r.num("duration") < 0.5 {
		t.Fatalf("sleeping execution: %s", r.raw)
	}
}

func TestPermissions(t *testing.T) {
	p := newProject(t)
	anyone := p.function(t, "anyone", nil)
	users := p.function(t, "users", func(f *fnv1.Function) { f.Spec.Execute = []string{"users"} })
	alicesOnly := p.function(t, "alice", func(f *fnv1.Function) { f.Spec.Execute = []string{"user:alice"} })
	keysOnly := p.function(t, "keys", func(f *fnv1.Function) { f.Spec.Execute = nil })
	alice, bob, guest := p.user(t, "alice"), p.user(t, "bob"), p.guest()

	// Guests may create (when allowed) but not read.
	r := guest.create(t, anyone, map[string]any{"body": "g"})
	expectCode(t, r, 201)
	if r.str("logs") != "" || r.str("errors") != "" || r.str("responseBody") != "echo:g" || len(r.body["$permissions"].([]any)) != 0 {
		t.Fatalf("guest record: %s", r.raw)
	}
	guestID := r.str("$id")
	r = guest.list(t, anyone, nil, nil)
	expectError(t, r, 401, errUnauthorizedScope)
	if want := "User (role: guests) missing scope (execution.read)"; r.str("message") != want {
		t.Errorf("guest scope message %q, want Appwrite's %q", r.str("message"), want)
	}
	expectError(t, guest.get(t, anyone, guestID), 401, errUnauthorizedScope)
	// HEAD is GET without a body, scopes included.
	if r := guest.do(t, http.MethodHead, "/v1/functions/"+anyone+"/executions", nil); r.code != 401 || len(r.raw) != 0 {
		t.Errorf("guest HEAD: %d %q, want 401 without a body", r.code, r.raw)
	}
	if r := p.api().do(t, http.MethodHead, "/v1/functions/"+anyone+"/executions", nil); r.code != 200 || len(r.raw) != 0 {
		t.Errorf("key HEAD: %d %q, want 200 without a body", r.code, r.raw)
	}
	expectError(t, guest.create(t, users, nil), 401, errUserUnauthorized)
	expectError(t, guest.create(t, keysOnly, nil), 401, errUserUnauthorized)

	// Users: execute roles, own executions only, logs blanked.
	r = alice.create(t, users, map[string]any{"body": "a"})
	expectCode(t, r, 201)
	aliceID := r.str("$id")
	if perms := r.body["$permissions"].([]any); len(perms) != 1 || perms[0] != `read("user:alice")` || r.str("logs") != "" || r.str("responseBody") != "echo:a user:alice" {
		t.Fatalf("alice's record: %s", r.raw)
	}
	expectCode(t, alice.create(t, alicesOnly, nil), 201)
	expectError(t, bob.create(t, alicesOnly, nil), 401, errUserUnauthorized)
	expectError(t, alice.create(t, keysOnly, nil), 401, errUserUnauthorized)
	expectCode(t, alice.get(t, users, aliceID), 200)
	expectError(t, bob.get(t, users, aliceID), 404, errExecutionNotFound)
	expectError(t, alice.get(t, anyone, aliceID), 404, errExecutionNotFound) // wrong function
	if l := alice.list(t, users, nil, nil); l.num("total") != 1 || l.ids()[0] != aliceID {
		t.Fatalf("alice's list: %s", l.raw)
	}
	if l := bob.list(t, users, nil, nil); l.code != 200 || l.num("total") != 0 {
		t.Fatalf("bob's list: %s", l.raw)
	}
	// The caller's identity reaches the Execution; the JWT only through a Secret.
	e := &fnv1.Execution{}
	g := gomega.NewWithT(t)
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: aliceID}, e)).To(gomega.Succeed())
	g.Expect(e.Spec.UserID).To(gomega.Equal("alice"))
	g.Expect(e.Spec.JWTSecretName).NotTo(gomega.BeEmpty())
	// The token lives no longer than the run: the Secret goes once the record is written.
	g.Eventually(func() error {
		return k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: e.Spec.JWTSecretName}, &corev1.Secret{})
	}, eventually, 50*time.Millisecond).Should(gomega.Satisfy(apierrors.IsNotFound), "the JWT secret is deleted after the run")

	// API keys: everything, with logs; scopes decide.
	r = p.api().get(t, users, aliceID)
	if r.code != 200 || r.str("logs") != "log:a" || r.str("errors") != "warn:a" {
		t.Fatalf("API key read: %s", r.raw)
	}
	expectCode(t, p.api().create(t, keysOnly, nil), 201)
	writeOnly, readOnly, none := "w-"+p.key, "r-"+p.key, "n-"+p.key
	addKey(t, p.name, writeOnly, "execution.write")
	addKey(t, p.name, readOnly, "executions.read")
	addKey(t, p.name, none, "functions.read")
	expectCode(t, api{project: p.name, key: writeOnly}.create(t, anyone, nil), 201)
	r = api{project: p.name, key: writeOnly}.list(t, anyone, nil, nil)
	expectError(t, r, 401, errUnauthorizedScope)
	if !strings.HasPrefix(r.str("message"), "app."+p.name+"@service.") || !strings.HasSuffix(r.str("message"), " (role: applications) missing scope (execution.read)") {
		t.Errorf("key scope message %q, want Appwrite's app.<project>@service.<host> (role: applications) …", r.str("message"))
	}
	expectCode(t, api{project: p.name, key: readOnly}.list(t, anyone, nil, nil), 200)
	expectError(t, api{project: p.name, key: readOnly}.create(t, anyone, nil), 401, errUnauthorizedScope)
	expectError(t, api{project: p.name, key: none}.get(t, anyone, guestID), 401, errUnauthorizedScope)
	expectError(t, api{project: p.name, key: "wrong"}.list(t, anyone, nil, nil), 401, errUserUnauthorized)
	// A key of another project is not a key here.
	other := newProject(t)
	expectError(t, api{project: p.name, key: other.key}.list(t, anyone, nil, nil), 401, errUserUnauthorized)

	// Bad JWTs.
	expectError(t, api{project: p.name, jwt: "not-a-jwt"}.list(t, anyone, nil, nil), 401, errJWTInvalid)
	expectError(t, other.user(t, "alice").with(func(a *api) { a.project = p.name }).list(t, anyone, nil, nil), 401, errJWTInvalid)
	old, _ := MintJWT(p.jwtKey, "alice", "s", time.Now().Add(-20*time.Minute), time.Hour)
	expectError(t, api{project: p.name, jwt: old}.list(t, anyone, nil, nil), 401, errJWTInvalid)
	none256 := jwt.NewWithClaims(jwt.SigningMethodHS512, Claims{UserID: "alice", RegisteredClaims: jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(time.Now())}})
	tok, _ := none256.SignedString(p.jwtKey)
	expectError(t, api{project: p.name, jwt: tok}.list(t, anyone, nil, nil), 401, errJWTInvalid)
}

func TestRateLimit(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "limited", nil)
	v10 := p.guest().with(func(a *api) { a.format = "1.0.0" })
	for i := 0; i < testRateLimit; i++ {
		r := v10.create(t, fn, map[string]any{"async": true})
		expectCode(t, r, 202)
		if r.header.Get("X-RateLimit-Limit") != fmt.Sprint(testRateLimit) || r.header.Get("X-RateLimit-Remaining") != fmt.Sprint(testRateLimit-1-i) ||
			r.header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("rate limit headers: %v", r.header)
		}
	}
	r := v10.create(t, fn, map[string]any{"async": true})
	expectError(t, r, 429, errRateLimit)
	if r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("headers on 429: %v", r.header)
	}
	// Per user: alice has her own budget; 1.4+ and API keys are not limited.
	expectCode(t, p.user(t, "alice").with(func(a *api) { a.format = "1.0.0" }).create(t, fn, map[string]any{"async": true}), 202)
	r = p.guest().with(func(a *api) { a.format = "1.4.0" }).create(t, fn, map[string]any{"async": true})
	expectCode(t, r, 202)
	if r.header.Get("X-RateLimit-Limit") != "" {
		t.Fatalf("1.4 is not rate limited: %v", r.header)
	}
	expectCode(t, p.api().with(func(a *api) { a.format = "1.0.0" }).create(t, fn, map[string]any{"async": true}), 202)
}

func TestDelete(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "gone", nil)
	del := func(a api, id string) response {
		return a.do(t, http.MethodDelete, "/v1/functions/"+fn+"/executions/"+id, nil)
	}
	done := p.api().create(t, fn, map[string]any{"body": "x"}).str("$id")
	expectError(t, del(p.api().with(func(a *api) { a.format = "1.0.0" }), done), 404, errRouteNotFound)
	expectError(t, del(p.api().with(func(a *api) { a.format = "1.5.0" }), done), 404, errRouteNotFound)
	alices := p.user(t, "alice").create(t, fn, map[string]any{"body": "x"}).str("$id")
	expectError(t, del(p.user(t, "alice"), alices), 401, errUserUnauthorized)
	expectError(t, del(p.guest(), done), 404, errExecutionNotFound)
	readOnly := "r-" + p.key
	addKey(t, p.name, readOnly, "execution.read")
	expectError(t, del(api{project: p.name, key: readOnly}, done), 401, errUnauthorizedScope)
	running := p.api().create(t, fn, map[string]any{"body": "hang", "async": true}).str("$id")
	expectError(t, del(p.api(), running), 400, errExecutionRunning)
	r := del(p.api().with(func(a *api) { a.format = "1.6.0" }), done)
	expectCode(t, r, 204)
	if r.raw != "" {
		t.Fatalf("204 with a body: %q", r.raw)
	}
	gomega.NewWithT(t).Eventually(func() int { return p.api().get(t, fn, done).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(404))
	expectError(t, del(p.api(), "missing"), 404, errExecutionNotFound)
}

func TestListQueriesAndPagination(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "many", nil)
	other := p.function(t, "other", nil)
	payloads := []string{"a", "b", "status:404", "fail", "sleep:400", "c"}
	var ids []string
	for _, pl := range payloads {
		r := p.api().create(t, fn, map[string]any{"body": pl})
		expectCode(t, r, 201)
		ids = append(ids, r.str("$id"))
	}
	otherID := p.api().create(t, other, nil).str("$id")

	v10 := p.api().with(func(a *api) { a.format = "1.0.0" })
	v14 := p.api().with(func(a *api) { a.format = "1.4.0" })
	v16 := p.api().with(func(a *api) { a.format = "1.6.0" })
	v18 := p.api().with(func(a *api) { a.format = "1.8.0" })
	list := func(a api, qs ...string) response {
		t.Helper()
		r := a.list(t, fn, qs, nil)
		expectCode(t, r, 200)
		return r
	}
	expectIDs := func(r response, want ...string) {
		t.Helper()
		if !slices.Equal(r.ids(), want) {
			t.Fatalf("ids %v, want %v (%s)", r.ids(), want, r.raw)
		}
	}

	// Default: oldest first, all of this function only, total of matches.
	r := list(v10)
	expectIDs(r, ids...)
	if r.num("total") != 6 {
		t.Fatalf("total: %s", r.raw)
	}
	// 1.0 string syntax.
	expectIDs(list(v10, `equal("status", ["failed"])`), ids[3])
	expectIDs(list(v10, `equal("status", "failed")`), ids[3])
	expectIDs(list(v10, `equal('statusCode', [404, 500])`), ids[2], ids[3])
	expectIDs(list(v10, `notEqual("status", ["completed"])`), ids[3])
	expectIDs(list(v10, `greaterThan("duration", 0.3)`), ids[4])
	expectIDs(list(v10, `lessThan("statusCode", 300)`, `lessThanEqual("duration", 0.2)`), ids[0], ids[1], ids[5])
	expectIDs(list(v10, `greaterThanEqual("statusCode", 404)`, `orderDesc("statusCode")`), ids[3], ids[2])
	expectIDs(list(v10, `equal("$id", ["`+ids[1]+`"])`), ids[1])
	expectIDs(list(v10, `equal("trigger", ["http"])`, `limit(2)`, `offset(1)`), ids[1], ids[2])
	expectIDs(list(v10, `orderDesc("$createdAt")`, `limit(3)`), ids[5], ids[4], ids[3])
	expectIDs(list(v10, `orderAsc("")`, `limit(1)`), ids[0])
	expectIDs(list(v10, `limit(0)`))
	expectIDs(list(v10, `greaterThan("$createdAt", "2000-01-01T00:00:00.000+00:00")`, `limit(1)`), ids[0])
	if r := list(v10, `limit(1)`); r.num("total") != 6 || len(r.ids()) != 1 {
		t.Fatalf("total ignores limit: %s", r.raw)
	}
	// 1.4: 4xx is failed; isNull/between/startsWith/endsWith.
	expectIDs(list(v14, `equal("status", ["failed"])`), ids[2], ids[3])
	expectIDs(list(v14, `between("responseStatusCode", 400, 499)`), ids[2])
	expectIDs(list(v14, `startsWith("$id", "`+ids[0]+`")`), ids[0])
	expectIDs(list(v14, `endsWith("$id", "`+ids[5][10:]+`")`), ids[5])
	expectIDs(list(v14, `isNotNull("status")`, `limit(1)`), ids[0])
	expectIDs(list(v14, `isNull("status")`))
	// 1.5+ JSON syntax, and/or.
	expectIDs(list(v16, `{"method":"equal","attribute":"status","values":["completed"]}`), ids[0], ids[1], ids[2], ids[4], ids[5])
	expectIDs(list(v16, `{"method":"or","values":[{"method":"equal","attribute":"responseStatusCode","values":[404]},{"method":"equal","attribute":"responseStatusCode","values":[500]}]}`), ids[2], ids[3])
	expectIDs(list(v16, `{"method":"and","values":[{"method":"equal","attribute":"status","values":["completed"]},{"method":"greaterThan","attribute":"duration","values":[0.3]}]}`), ids[4])
	expectIDs(list(v16, `{"method":"equal","attribute":"requestMethod","values":["POST"]}`, `{"method":"limit","values":[1]}`), ids[0])
	expectIDs(list(v16, `{"method":"orderDesc","attribute":"$createdAt"}`, `{"method":"limit","values":[2]}`, `{"method":"offset","values":[1]}`), ids[4], ids[3])
	if r := v18.list(t, fn, nil, url.Values{"total": {"false"}}); r.num("total") != 0 || len(r.ids()) != 6 {
		t.Fatalf("total=false: %s", r.raw)
	}
	// Indexed keys (the web SDK's queries[0]=…) keep their order.
	r = v10.do(t, http.MethodGet, "/v1/functions/"+fn+"/executions?queries%5B1%5D=limit%282%29&queries%5B0%5D=orderDesc%28%22%24createdAt%22%29", nil)
	expectIDs(r, ids[5], ids[4])

	// Search: function and execution IDs; gone from 1.7.
	search := func(a api, term string) response { return a.list(t, fn, nil, url.Values{"search": {term}}) }
	expectIDs(search(v10, ids[2]), ids[2])
	expectIDs(search(v10, "many"), ids...)
	expectIDs(search(v10, ids[2][:15]+" nothing"), ids[2])
	expectIDs(search(v16, "other"))
	expectIDs(search(p.api(), "other"), ids...)
	expectError(t, search(v10, strings.Repeat("s", maxSearch+1)), 400, errArgumentInvalid)

	// Cursors: pages of two forwards, then back.
	page1 := list(v10, `limit(2)`)
	expectIDs(page1, ids[0], ids[1])
	page2 := list(v10, `limit(2)`, `cursorAfter("`+ids[1]+`")`)
	expectIDs(page2, ids[2], ids[3])
	expectIDs(list(v10, `limit(2)`, `cursorAfter("`+ids[3]+`")`), ids[4], ids[5])
	expectIDs(list(v10, `limit(2)`, `cursorAfter("`+ids[5]+`")`))
	expectIDs(list(v10, `limit(2)`, `cursorBefore("`+ids[2]+`")`), ids[0], ids[1])
	expectIDs(list(v10, `limit(2)`, `cursorBefore("`+ids[5]+`")`), ids[3], ids[4])
	expectIDs(list(v16, `{"method":"cursorAfter","values":["`+ids[3]+`"]}`, `{"method":"orderDesc","attribute":"$createdAt"}`), ids[2], ids[1], ids[0])
	expectIDs(list(v16, `{"method":"cursorAfter","values":["`+ids[0]+`"]}`, `{"method":"equal","attribute":"status","values":["completed"]}`, `{"method":"limit","values":[2]}`), ids[1], ids[2])
	expectError(t, v10.list(t, fn, []string{`cursorAfter("nope")`}, nil), 400, errCursorNotFound)
	expectError(t, v10.list(t, fn, []string{`cursorAfter("` + otherID + `")`}, nil), 400, errCursorNotFound)

	// Bad queries name the problem.
	bad := []struct {
		a       api
		query   string
		typ     string
		message string
	}{
		{v10, `contains("status", ["x"])`, errArgumentInvalid, "Invalid `queries` param: Query method not valid: contains"},
		{v10, `isNull("status")`, errArgumentInvalid, "Query method not valid: isNull"},
		{v10, `equal("responseStatusCode", [200])`, errArgumentInvalid, "Attribute not found in schema: responseStatusCode"},
		{v10, `equal("statusCode", ["200"])`, errArgumentInvalid, "Query type does not match expected: integer"},
		{v10, `equal("status", [1])`, errArgumentInvalid, "Query type does not match expected: string"},
		{v10, `equal("$createdAt", ["yesterday"])`, errArgumentInvalid, "Query type does not match expected: datetime"},
		{v10, `limit(101)`, errArgumentInvalid, "Invalid limit"},
		{v10, `limit(-1)`, errArgumentInvalid, "Invalid limit"},
		{v10, `offset(5001)`, errArgumentInvalid, "Invalid offset"},
		{v10, `cursorAfter("bad id!")`, errArgumentInvalid, "Invalid cursor"},
		{v10, `search("status", "x")`, errArgumentInvalid, "requires a fulltext index"},
		{v10, `equal("status" ["x"])`, errArgumentInvalid, "Invalid `queries` param: Invalid query: equal(\"status\" [\"x\"])"},
		{v10, `equal("status", [x])`, errArgumentInvalid, "Invalid query"},
		{v10, `{"method":"limit","values":[1]}`, errArgumentInvalid, "Invalid query"},
		{v14, `equal("status", [`, errArgumentInvalid, "Invalid `queries` param: Invalid query: equal(\"status\", ["},
		{v14, `contains("status", ["x"])`, errArgumentInvalid, "Query method not valid: contains"},
		{v14, `limit(0)`, errArgumentInvalid, "Invalid limit"},
		{v14, `between("duration", 1)`, errArgumentInvalid, "Between queries require exactly two values"},
		{v16, `equal("status", ["x"])`, errArgumentInvalid, "Invalid `queries` param: Invalid query: Invalid query: Syntax error"},
		{v16, `{"method":"equal","attribute":"statusCode","values":[200]}`, errArgumentInvalid, "Attribute not found in schema: statusCode"},
		{v16, `{"method":"select","values":["status"]}`, errArgumentInvalid, "Invalid `queries` param: Invalid query method: select"},
		{v16, `{"method":"contains","attribute":"duration","values":[1]}`, errArgumentInvalid, "because it is not an array or string."},
		{v18, `{"method":"notContains","attribute":"status","values":["x"]}`, errArgumentInvalid, "Invalid query: Invalid query method: notContains"},
		{v16, `{"method":"or","values":[{"method":"limit","values":[1]},{"method":"equal","attribute":"status","values":["x"]}]}`, errArgumentInvalid, "can only contain filter queries"},
		{v16, `{"method":"equal","attribute":"status","values":[` + strings.Repeat(`"x",`, maxQueryValues) + `"x"]}`, errArgumentInvalid, "greater than 100 values"},
		{p.api(), `{"method":"equal","attribute":"status","values":[` + strings.Repeat(`"x",`, maxQueryValues19) + `"x"]}`, errArgumentInvalid, "greater than 500 values: status"},
		{v16, `{"method":"orderAsc","attribute":"nope"}`, errArgumentInvalid, "Attribute not found in schema: nope"},
	}
	for _, b := range bad {
		r := b.a.list(t, fn, []string{b.query}, nil)
		expectError(t, r, 400, b.typ)
		if !strings.Contains(r.str("message"), b.message) {
			t.Errorf("%s: message %q does not name %q", b.query, r.str("message"), b.message)
		}
		if r.str("version") != "1.9.6" {
			t.Errorf("%s: version %q, want the server's 1.9.6 whatever the format", b.query, r.str("version"))
		}
	}
	tooMany := make([]string, maxQueries+1)
	for i := range tooMany {
		tooMany[i] = `limit(1)`
	}
	expectError(t, v10.list(t, fn, tooMany, nil), 400, errArgumentInvalid)
	expectError(t, v10.list(t, fn, []string{`equal("status", ["` + strings.Repeat("x", maxQueryLength) + `"])`}, nil), 400, errArgumentInvalid)
}

// The filters newer formats take, each from its version: contains from
// 1.5, the negations, exists/notExists, $sequence and 500 values per
// filter from 1.9; select never (Appwrite does not allow it on executions).
func TestListQueriesPerVersion(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "filters", nil)
	var ids []string
	for _, pl := range []string{"a", "status:404", "fail", "sleep:300"} {
		r := p.api().create(t, fn, map[string]any{"body": pl})
		expectCode(t, r, 201)
		ids = append(ids, r.str("$id"))
	}
	newest, v16, v18 := p.api(), p.api().with(func(a *api) { a.format = "1.6.0" }), p.api().with(func(a *api) { a.format = "1.8.0" })
	expectIDs := func(a api, want []string, qs ...string) {
		t.Helper()
		r := a.list(t, fn, qs, nil)
		expectCode(t, r, 200)
		if !slices.Equal(r.ids(), want) {
			t.Fatalf("%v: ids %v, want %v (%s)", qs, r.ids(), want, r.raw)
		}
	}
	all := ids
	expectIDs(v16, []string{ids[2]}, `{"method":"contains","attribute":"status","values":["fail"]}`)
	expectIDs(newest, []string{ids[1]}, `{"method":"contains","attribute":"$id","values":["`+ids[1][13:]+`"]}`)
	expectIDs(newest, []string{ids[2]}, `{"method":"notContains","attribute":"status","values":["complete"]}`)
	expectIDs(newest, all[1:], `{"method":"notStartsWith","attribute":"$id","values":["`+ids[0]+`"]}`)
	expectIDs(newest, all[:3], `{"method":"notEndsWith","attribute":"$id","values":["`+ids[3][10:]+`"]}`)
	expectIDs(newest, []string{ids[2]}, `{"method":"notBetween","attribute":"responseStatusCode","values":[200,404]}`)
	expectIDs(newest, []string{ids[1]}, `{"method":"between","attribute":"responseStatusCode","values":[400,499]}`)
	expectIDs(newest, []string{ids[3]}, `{"method":"startsWith","attribute":"$id","values":["`+ids[3]+`"]}`, `{"method":"endsWith","attribute":"$id","values":["`+ids[3][12:]+`"]}`)
	expectIDs(newest, all, `{"method":"isNotNull","attribute":"status"}`)
	expectIDs(newest, nil, `{"method":"isNull","attribute":"status"}`)
	expectIDs(newest, all, `{"method":"exists","values":["status","responseStatusCode"]}`)
	expectIDs(newest, nil, `{"method":"notExists","values":["status"]}`)
	expectIDs(newest, []string{ids[3], ids[2]}, `{"method":"orderDesc","attribute":"$sequence"}`, `{"method":"limit","values":[2]}`)
	expectIDs(newest, all, `{"method":"greaterThan","attribute":"$sequence","values":[0]}`)
	expectIDs(newest, nil, `{"method":"equal","attribute":"status","values":[`+strings.Repeat(`"x",`, maxQueryValues19-1)+`"x"]}`)
	for _, b := range []struct {
		a       api
		query   string
		message string
	}{
		{v18, `{"method":"exists","values":["status"]}`, "Invalid `queries` param: Invalid query: Invalid query method: exists"},
		{v18, `{"method":"orderDesc","attribute":"$sequence"}`, "Invalid `queries` param: Invalid query: Attribute not found in schema: $sequence"},
		{newest, `{"method":"select","values":["status"]}`, "Invalid `queries` param: Invalid query method: select"},
		{newest, `{"method":"notSearch","attribute":"status","values":["x"]}`, "requires a fulltext index"},
		{newest, `{"method":"contains","attribute":"duration","values":[1]}`, "because it is not an array, string, or object."},
		{newest, `{"method":"exists","values":["logs"]}`, "Attribute not found in schema: logs"},
	} {
		r := b.a.list(t, fn, []string{b.query}, nil)
		expectError(t, r, 400, errArgumentInvalid)
		if !strings.Contains(r.str("message"), b.message) {
			t.Errorf("%s: message %q does not name %q", b.query, r.str("message"), b.message)
		}
	}
}

// Deleting a scheduled execution (1.6+) cancels it: 204, the Execution is
// gone (its request Secrets, which it owns, with it), and the operator,
// even once it is due, has nothing to run.
func TestDeleteScheduledExecution(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "cancelled", nil)
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Minute)
	body := strings.Repeat("b", 150<<10) // over what spec.body holds: a body Secret
	r := p.api().create(t, fn, map[string]any{"body": body, "async": true, "scheduledAt": due.Format(time.RFC3339)})
	expectCode(t, r, 202)
	id := r.str("$id")
	e := &fnv1.Execution{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: id}, e)).To(gomega.Succeed())
	g.Expect(e.Spec.BodySecrets).To(gomega.HaveLen(1))
	p.waitStatus(t, fn, id, "scheduled")

	del := p.api().do(t, http.MethodDelete, "/v1/functions/"+fn+"/executions/"+id, nil)
	expectCode(t, del, 204)
	g.Expect(apierrors.IsNotFound(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: id}, &fnv1.Execution{}))).To(gomega.BeTrue())
	body0 := &corev1.Secret{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: e.Spec.BodySecrets[0]}, body0)).To(gomega.Succeed())
	g.Expect(body0.OwnerReferences).To(gomega.ContainElement(gomega.HaveField("UID", e.UID)), "garbage collection deletes the body Secret with it")
	g.Eventually(func() int { return p.api().get(t, fn, id).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(404))

	// The operator's reconcile, with its clock past the due time, runs nothing.
	late := &controllers.ExecutionReconciler{Client: k8s, APIReader: k8s, Scheme: k8s.Scheme(),
		Clock: clocktesting.NewFakePassiveClock(due.Add(time.Minute))}
	_, err := late.Reconcile(bg, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: p.name, Name: id}})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Consistently(func() []batchv1.Job {
		jobs := &batchv1.JobList{}
		g.Expect(k8s.List(bg, jobs, client.InNamespace(p.name), client.MatchingLabels{kube.LabelExecution: id})).To(gomega.Succeed())
		return jobs.Items
	}, 2*time.Second, 100*time.Millisecond).Should(gomega.BeEmpty(), "no Job for a cancelled execution")

}

// A scheduled execution is cancellable until shortly before it is due.
func TestNotDue(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	for _, c := range []struct {
		status fnv1.ExecutionPhase
		at     *metav1.Time
		job    string
		want   bool
	}{
		{fnv1.PhaseScheduled, at(time.Hour), "", true},
		{"", at(time.Hour), "", true}, // not reconciled yet
		{fnv1.PhaseScheduled, at(dueMargin / 2), "", false},
		{fnv1.PhaseScheduled, at(-time.Second), "", false},
		{fnv1.PhaseScheduled, at(time.Hour), "job", false},
		{fnv1.PhaseWaiting, at(time.Hour), "", false},
		{"", nil, "", false},
	} {
		e := &fnv1.Execution{Spec: fnv1.ExecutionSpec{ScheduledAt: c.at}, Status: fnv1.ExecutionStatus{Status: c.status, JobName: c.job}}
		if got := notDue(e, now); got != c.want {
			t.Errorf("%+v: %v, want %v", c, got, c.want)
		}
	}
}

func TestPanicsAnswerUnknown(t *testing.T) {
	s := &Server{opts: DefaultOptions(), log: facade.log}
	e, err := s.newEngine()
	if err != nil {
		t.Fatal(err)
	}
	e.GET("/v1/panic", func(c *ginContext) { panic("boom") })
	w := serve(e, http.MethodGet, "/v1/panic")
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"type":"general_unknown"`) {
		t.Fatalf("panic answered %d %s", w.Code, w.Body.String())
	}
}

// A synchronous answer carries every response header; the stored record
// only the allow-listed ones, as in Appwrite 1.4+.
func TestResponseHeaders(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "headers", nil)
	r := p.api().create(t, fn, map[string]any{"body": "headers"})
	expectCode(t, r, 201)
	all := []any{
		map[string]any{"name": "content-type", "value": "application/json"},
		map[string]any{"name": "x-trace-id", "value": "abc"},
	}
	g.Expect(r.body["responseHeaders"]).To(gomega.Equal(all))
	got := p.api().get(t, fn, r.str("$id"))
	g.Expect(got.body["responseHeaders"]).To(gomega.Equal(all[:1]))
}

// A finished record whose outputs the facade's cache leaves out (over
// kube.MaxCachedOutputBytes) is answered whole: by the synchronous create,
// get, and lists, indexed or not, in every format.
func TestLargeOutputsAreReadLive(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "loud", nil)
	want := strings.Repeat("x", 4096)
	r := p.api().create(t, fn, map[string]any{"body": "stdout:4096"})
	expectCode(t, r, 201)
	g.Expect(r.str("logs")).To(gomega.Equal(want), "the synchronous answer")
	id := r.str("$id")
	g.Expect(p.api().create(t, fn, map[string]any{"body": "small"}).code).To(gomega.Equal(201))
	cached, ok := facade.index.Get(p.name, id)
	g.Expect(ok).To(gomega.BeTrue())
	g.Expect(kube.IsStripped(cached)).To(gomega.BeTrue(), "the facade's cache keeps it without its outputs")
	g.Expect(cached.Status.Stdout).To(gomega.BeEmpty())

	g.Expect(p.api().get(t, fn, id).str("logs")).To(gomega.Equal(want), "get")
	v10 := p.api().with(func(a *api) { a.format = "1.0.0" })
	g.Expect(v10.get(t, fn, id).str("stdout")).To(gomega.Equal(want), "get, 1.0")
	for _, queries := range [][]string{
		nil,
		{`{"method":"equal","attribute":"status","values":["completed"]}`, `{"method":"orderDesc","attribute":"$createdAt"}`},
		{`{"method":"greaterThan","attribute":"responseStatusCode","values":[0]}`}, // read by the attribute table
	} {
		l := p.api().list(t, fn, queries, nil)
		expectCode(t, l, 200)
		g.Expect(l.executions()).To(gomega.HaveLen(2))
		for _, e := range l.executions() {
			if e["$id"] == id {
				g.Expect(e["logs"]).To(gomega.Equal(want), "list %v", queries)
			}
		}
	}
}

// A body over what an Execution holds travels in Secrets the Execution
// owns, up to Appwrite's 10 MiB.
func TestLargeBodyTravelsInSecrets(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "big", nil)
	body := strings.Repeat("0123456789", 250_000) // 2.5 MB: three Secrets
	r := p.api().create(t, fn, map[string]any{"body": body, "async": true})
	expectCode(t, r, 202)

	e := &fnv1.Execution{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: r.str("$id")}, e)).To(gomega.Succeed())
	g.Expect(e.Spec.Body).To(gomega.BeEmpty())
	g.Expect(e.Spec.BodySecrets).To(gomega.HaveLen(3))
	var joined strings.Builder
	for _, name := range e.Spec.BodySecrets {
		secret := &corev1.Secret{}
		g.Eventually(func() []metav1.OwnerReference {
			g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: name}, secret)).To(gomega.Succeed())
			return secret.OwnerReferences
		}, eventually, 50*time.Millisecond).Should(gomega.ContainElement(gomega.HaveField("UID", e.UID)), "the Execution adopts %s", name)
		joined.Write(secret.Data["body"])
	}
	g.Expect(joined.String()).To(gomega.Equal(body))
}
