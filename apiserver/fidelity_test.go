package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// appwriteJWT signs a token as Appwrite's account.createJWT() does:
// userId, sessionId and exp, no iat unless given.
func appwriteJWT(t *testing.T, key []byte, userID string, exp time.Time, iat *time.Time) string {
	t.Helper()
	claims := jwt.MapClaims{"userId": userID, "sessionId": "s-" + userID, "exp": exp.Unix()}
	if iat != nil {
		claims["iat"] = iat.Unix()
	}
	return mustSign(t, jwt.SigningMethodHS256, key, claims)
}

func TestVerifyAppwriteJWT(t *testing.T) {
	key, now := []byte("openssl-key-v1"), time.Now()
	ago := now.Add(-time.Minute)
	longAgo := now.Add(-59 * time.Minute)
	for name, c := range map[string]struct {
		token string
		ok    bool
	}{
		"1.0 token, 900 s, no iat":    {appwriteJWT(t, key, "alice", now.Add(900*time.Second), nil), true},
		"newer token, 3600 s":         {appwriteJWT(t, key, "alice", now.Add(3600*time.Second), nil), true},
		"with iat":                    {appwriteJWT(t, key, "alice", ago.Add(time.Hour), &ago), true},
		"expired within the leeway":   {appwriteJWT(t, key, "alice", now.Add(-5*time.Second), nil), true},
		"expired":                     {appwriteJWT(t, key, "alice", now.Add(-time.Minute), nil), false},
		"lives over an hour from now": {appwriteJWT(t, key, "alice", now.Add(2*time.Hour), nil), false},
		"lives over an hour from iat": {appwriteJWT(t, key, "alice", now.Add(10*time.Minute), &longAgo), false},
		"another key":                 {appwriteJWT(t, []byte("other"), "alice", now.Add(time.Minute), nil), false},
		"no userId":                   {appwriteJWT(t, key, "", now.Add(time.Minute), nil), false},
		"no exp":                      {mustSign(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"userId": "alice", "sessionId": "s"}), false},
		"HS512":                       {mustSign(t, jwt.SigningMethodHS512, key, jwt.MapClaims{"userId": "alice", "exp": now.Add(time.Minute).Unix()}), false},
	} {
		claims, err := VerifyAppwriteJWT(c.token, key, now)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok %v", name, err, c.ok)
		}
		if err == nil && (claims.UserID != "alice" || claims.SessionID != "s-alice") {
			t.Errorf("%s: claims %+v", name, claims)
		}
	}
	// kfn's own tokens keep their rules: iat required.
	if _, err := VerifyJWT(appwriteJWT(t, key, "alice", now.Add(time.Minute), nil), key, now); err == nil {
		t.Error("VerifyJWT accepted a token without iat")
	}
}

func mustSign(t *testing.T, m jwt.SigningMethod, key []byte, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A project holding the Appwrite server's key accepts the tokens
// account.createJWT() issues, and kfn's own still.
func TestAppwriteIssuedJWT(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "jwt", nil)
	awKey := []byte("appwrite-openssl-key-v1")
	token := appwriteJWT(t, awKey, "alice", time.Now().Add(15*time.Minute), nil)
	expectError(t, api{project: p.name, jwt: token}.list(t, fn, nil, nil), 401, errJWTInvalid)

	secret := &corev1.Secret{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: JWTSecretName}, secret)).To(gomega.Succeed())
	secret.Data[JWTAppwriteKey] = awKey
	g.Expect(k8s.Update(bg, secret)).To(gomega.Succeed())
	aw := api{project: p.name, jwt: token}
	g.Eventually(func() int { return aw.list(t, fn, nil, nil).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(200))
	r := aw.create(t, fn, map[string]any{"body": "hi"})
	expectCode(t, r, 201)
	g.Expect(r.str("responseBody")).To(gomega.Equal("echo:hi user:alice"))
	expectCode(t, p.user(t, "bob").list(t, fn, nil, nil), 200)
	tooLong := appwriteJWT(t, awKey, "alice", time.Now().Add(2*time.Hour), nil)
	expectError(t, api{project: p.name, jwt: tooLong}.list(t, fn, nil, nil), 401, errJWTInvalid)
	expired := appwriteJWT(t, awKey, "alice", time.Now().Add(-time.Minute), nil)
	expectError(t, api{project: p.name, jwt: expired}.list(t, fn, nil, nil), 401, errJWTInvalid)
}

// withReady sets a Function's Ready condition as the operator would.
func withReady(gen, observed int64, status metav1.ConditionStatus, reason string) *fnv1.Function {
	fn := &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: fnv1.FunctionSpec{Runtime: "cobol-85"}}
	fn.Status.ObservedGeneration = observed
	meta.SetStatusCondition(&fn.Status.Conditions, metav1.Condition{Type: fnv1.FunctionReady, Status: status, Reason: reason, ObservedGeneration: observed})
	return fn
}

func TestUnrunnable(t *testing.T) {
	for _, c := range []struct {
		fn   *fnv1.Function
		want string
	}{
		{withReady(2, 2, metav1.ConditionFalse, fnv1.ReasonRuntimeUnknown), errRuntimeUnsupported},
		{withReady(2, 2, metav1.ConditionFalse, fnv1.ReasonNoCommand), errDeploymentNotFound},
		{withReady(2, 2, metav1.ConditionFalse, fnv1.ReasonCodeNotFound), errDeploymentNotFound},
		{withReady(2, 2, metav1.ConditionFalse, fnv1.ReasonCodeSyncFailed), errBuildNotReady},
		{withReady(2, 2, metav1.ConditionFalse, fnv1.ReasonInvalidSchedule), ""},
		{withReady(2, 2, metav1.ConditionFalse, fnv1.ReasonDisabled), ""},
		{withReady(2, 2, metav1.ConditionTrue, fnv1.ReasonReady), ""},
		// Not judged yet for the current generation: not refused.
		{withReady(3, 2, metav1.ConditionFalse, fnv1.ReasonRuntimeUnknown), ""},
		{&fnv1.Function{ObjectMeta: metav1.ObjectMeta{Generation: 1}}, ""},
	} {
		got := ""
		if aerr := unrunnable(c.fn); aerr != nil {
			got = aerr.Type
			if aerr.Code != errorTypes[aerr.Type].code {
				t.Errorf("%s: code %d", got, aerr.Code)
			}
		}
		if got != c.want {
			t.Errorf("%v: %q, want %q", c.fn.Status.Conditions, got, c.want)
		}
	}
	if m := unrunnable(withReady(1, 1, metav1.ConditionFalse, fnv1.ReasonRuntimeUnknown)).Message; m != `Runtime "cobol-85" is not supported` {
		t.Errorf("message %q", m)
	}
}

// A function the operator judged unable to run is refused before anything
// is stored, in every format.
func TestUnrunnableFunctionRefused(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "cobol", func(f *fnv1.Function) { f.Spec.Image, f.Spec.Runtime, f.Spec.Execute = "", "cobol-85", nil })
	// Wait until the facade's own cache has the operator's judgement.
	g.Eventually(func() string {
		f := &fnv1.Function{}
		_ = facade.reader.Get(bg, types.NamespacedName{Namespace: p.name, Name: fn}, f)
		if c := meta.FindStatusCondition(f.Status.Conditions, fnv1.FunctionReady); c != nil && c.ObservedGeneration == f.Generation {
			return c.Reason
		}
		return ""
	}, eventually, 50*time.Millisecond).Should(gomega.Equal(fnv1.ReasonRuntimeUnknown))
	for _, f := range []string{"1.0.0", "1.4.0", ""} {
		a := p.api().with(func(a *api) { a.format = f })
		expectError(t, a.create(t, fn, map[string]any{"async": true}), 404, errRuntimeUnsupported)
		expectError(t, a.create(t, fn, nil), 404, errRuntimeUnsupported)
		// Before the execute roles, as in Appwrite.
		expectError(t, p.guest().with(func(a *api) { a.format = f }).create(t, fn, nil), 404, errRuntimeUnsupported)
	}
	list := &fnv1.ExecutionList{}
	g.Expect(k8s.List(bg, list, client.InNamespace(p.name))).To(gomega.Succeed())
	g.Expect(list.Items).To(gomega.BeEmpty())
}

// Disabled functions, as Appwrite: 1.0–1.3 refuse every create and show
// executions; 1.4+ let API keys create (the Execution is marked for the
// operator), list and get, and are function_not_found to anyone else.
func TestDisabledFunction(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "on", nil)
	done := p.api().create(t, fn, map[string]any{"async": true}).str("$id")
	p.waitStatus(t, fn, done, "completed")
	f := &fnv1.Function{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: fn}, f)).To(gomega.Succeed())
	f.Spec.Enabled = ptr.To(false)
	g.Expect(k8s.Update(bg, f)).To(gomega.Succeed())
	v10, alice := p.api().with(func(a *api) { a.format = "1.0.0" }), p.user(t, "alice")
	g.Eventually(func() int { return v10.create(t, fn, nil).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(404))

	expectError(t, v10.create(t, fn, nil), 404, errFunctionNotFound)
	expectCode(t, alice.with(func(a *api) { a.format = "1.0.0" }).list(t, fn, nil, nil), 200)
	expectCode(t, v10.get(t, fn, done), 200)
	for _, f := range []string{"1.4.0", ""} {
		u := alice.with(func(a *api) { a.format = f })
		expectError(t, u.create(t, fn, nil), 404, errFunctionNotFound)
		expectError(t, u.list(t, fn, nil, nil), 404, errFunctionNotFound)
		expectError(t, u.get(t, fn, done), 404, errFunctionNotFound)
		expectError(t, p.guest().with(func(a *api) { a.format = f }).create(t, fn, nil), 404, errFunctionNotFound)
		k := p.api().with(func(a *api) { a.format = f })
		expectCode(t, k.list(t, fn, nil, nil), 200)
		expectCode(t, k.get(t, fn, done), 200)
		r := k.create(t, fn, map[string]any{"async": true})
		expectCode(t, r, 202)
		e := &fnv1.Execution{}
		g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: r.str("$id")}, e)).To(gomega.Succeed())
		g.Expect(e.Annotations).To(gomega.HaveKeyWithValue(fnv1.AnnotationAllowDisabled, "true"))
	}
	e := &fnv1.Execution{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: done}, e)).To(gomega.Succeed())
	g.Expect(e.Annotations).NotTo(gomega.HaveKey(fnv1.AnnotationAllowDisabled))
}

// deploymentId is the Function's generation at creation, and filters.
func TestDeploymentIDIsGeneration(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "gen", nil)
	first := p.api().create(t, fn, map[string]any{"async": true})
	expectCode(t, first, 202)
	g.Expect(first.str("deploymentId")).To(gomega.Equal("1"))
	f := &fnv1.Function{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: fn}, f)).To(gomega.Succeed())
	f.Spec.Timeout = 3
	g.Expect(k8s.Update(bg, f)).To(gomega.Succeed())
	gen := strconv.FormatInt(f.Generation, 10)
	var second response
	g.Eventually(func() string {
		second = p.api().create(t, fn, map[string]any{"async": true})
		return second.str("deploymentId")
	}, eventually, 50*time.Millisecond).Should(gomega.Equal(gen))
	// (Creates the cache answered before it saw the update have "1".)
	for _, c := range []struct{ value, want string }{{"1", first.str("$id")}, {gen, second.str("$id")}} {
		q := `{"method":"equal","attribute":"deploymentId","values":["` + c.value + `"]}`
		r := p.api().list(t, fn, []string{q}, nil)
		g.Expect(r.ids()).To(gomega.ContainElement(c.want))
		for _, e := range r.executions() {
			g.Expect(e["deploymentId"]).To(gomega.Equal(c.value))
		}
	}
	// 1.6/1.7 filter on it without showing it.
	v16 := p.api().with(func(a *api) { a.format = "1.6.0" })
	ids := v16.list(t, fn, []string{`{"method":"equal","attribute":"deploymentId","values":["1"]}`}, nil).ids()
	g.Expect(ids).To(gomega.ContainElement(first.str("$id")))
	g.Expect(ids).NotTo(gomega.ContainElement(second.str("$id")))
}

// The sync create answer names its execution in x-appwrite-execution-id
// (1.6+); 0.x formats are refused.
func TestSyncHeaderAndLegacyFormat(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "hdr", nil)
	for f, want := range map[string]bool{"1.0.0": false, "1.5.0": false, "1.6.0": true, "": true} {
		r := p.api().with(func(a *api) { a.format = f }).create(t, fn, nil)
		expectCode(t, r, http.StatusCreated)
		if got := r.header.Get("X-Appwrite-Execution-Id"); (got != "") != want || (want && got != r.str("$id")) {
			t.Errorf("%q: x-appwrite-execution-id %q for %s", f, got, r.str("$id"))
		}
	}
	if r := p.api().create(t, fn, map[string]any{"async": true}); r.header.Get("X-Appwrite-Execution-Id") != "" {
		t.Errorf("async create has x-appwrite-execution-id")
	}
	for _, f := range []string{"0.15.0", "0.13.0"} {
		a := p.api().with(func(a *api) { a.format = f })
		expectError(t, a.create(t, fn, nil), 400, errArgumentInvalid)
		expectError(t, a.list(t, fn, nil, nil), 400, errArgumentInvalid)
	}
}

// Appwrite 1.4+ stores no response body: only the synchronous create's
// answer shows responseBody; 1.0–1.3 records keep their response.
func TestResponseBodyOnlyFromSyncCreate(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "body", nil)
	for _, f := range []string{"1.4.0", "1.6.0", ""} {
		a := p.api().with(func(a *api) { a.format = f })
		r := a.create(t, fn, map[string]any{"body": "b"})
		expectCode(t, r, 201)
		if r.str("responseBody") != "echo:b" {
			t.Fatalf("%q: sync answer %s", f, r.raw)
		}
		got := a.get(t, fn, r.str("$id"))
		if v, ok := got.body["responseBody"]; !ok || v != "" {
			t.Errorf("%q: get shows responseBody %v", f, v)
		}
		list := a.list(t, fn, []string{`{"method":"equal","attribute":"$id","values":["` + r.str("$id") + `"]}`}, nil)
		if f == "1.4.0" {
			list = a.list(t, fn, []string{`equal("$id", ["` + r.str("$id") + `"])`}, nil)
		}
		if items := list.executions(); len(items) != 1 || items[0]["responseBody"] != "" {
			t.Errorf("%q: list %s", f, list.raw)
		}
		if got := p.api().with(func(a *api) { a.format = "1.0.0" }).get(t, fn, r.str("$id")); got.str("response") != "echo:b" {
			t.Errorf("1.0.0 get: %s", got.raw)
		}
	}
}

// Every Execution the facade creates carries the caller's IP, as seen
// through the trusted proxies, in x-appwrite-client-ip; 1.9 records show
// it among their request headers, older ones keep Appwrite's first list.
func TestClientIPRequestHeader(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "ip", nil)
	a := p.api().with(func(a *api) { a.headers = map[string]string{"X-Forwarded-For": "203.0.113.7"} })
	r := a.create(t, fn, map[string]any{"headers": map[string]string{"content-type": "text/plain", "x-other": "1"}})
	expectCode(t, r, 201)
	headers := func(r response) map[string]string {
		out := map[string]string{}
		items, _ := r.body["requestHeaders"].([]any)
		for _, h := range items {
			m := h.(map[string]any)
			out[m["name"].(string)] = m["value"].(string)
		}
		return out
	}
	g.Expect(headers(r)).To(gomega.Equal(map[string]string{"content-type": "text/plain", clientIPHeader: "203.0.113.7"}))
	v18 := headers(p.api().with(func(a *api) { a.format = "1.8.0" }).get(t, fn, r.str("$id")))
	g.Expect(v18).To(gomega.Equal(map[string]string{"content-type": "text/plain"}))
	e := &fnv1.Execution{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: r.str("$id")}, e)).To(gomega.Succeed())
	g.Expect(e.Spec.Headers).To(gomega.HaveKeyWithValue(clientIPHeader, "203.0.113.7"))
	// A 1.0 create carries it too (the function sees it), and a caller
	// cannot set it.
	old := p.api().with(func(a *api) { a.format = "1.4.0" }).create(t, fn, map[string]any{"headers": map[string]string{clientIPHeader: "1.2.3.4"}})
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: old.str("$id")}, e)).To(gomega.Succeed())
	g.Expect(e.Spec.Headers).To(gomega.Equal(map[string]string{clientIPHeader: "127.0.0.1"}))
	expectError(t, p.api().create(t, fn, map[string]any{"headers": map[string]string{clientIPHeader: "1.2.3.4"}}), 400, errArgumentInvalid)
	// The most headers a caller may send, and the client IP, fit the CRD.
	most := map[string]string{}
	for i := range maxHeaders {
		most[fmt.Sprintf("h%d", i)] = "v"
	}
	expectCode(t, p.api().create(t, fn, map[string]any{"headers": most, "async": true}), 202)
}

// labelObject sets a label on a namespace or a Function (a merge patch:
// the operator may be writing the Function).
func labelObject(t *testing.T, obj client.Object, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	gomega.NewWithT(t).Expect(k8s.Patch(bg, obj, client.RawPatch(types.MergePatchType, []byte(patch)))).To(gomega.Succeed())
}

// Appwrite IDs that are no Kubernetes names reach their project and
// function through the ID labels, and answers show them; the object names
// still work. An ID two objects claim, or a label that is no Appwrite ID,
// is refused clearly.
func TestAppwriteIDs(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "my-func", nil)
	projectID, functionID := "MyProject_"+p.name[2:], "My_Func.1"
	labelObject(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.name}}, kube.LabelProjectID, projectID)
	labelObject(t, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: fn, Namespace: p.name}}, kube.LabelFunctionID, functionID)
	byID := api{project: projectID, key: p.key}
	var r response
	g.Eventually(func() int { r = byID.create(t, functionID, map[string]any{"body": "id"}); return r.code }, eventually, 50*time.Millisecond).Should(gomega.Equal(201))
	g.Expect(r.str("functionId")).To(gomega.Equal(functionID))
	g.Expect(r.str("responseBody")).To(gomega.Equal("echo:id"))
	id := r.str("$id")
	g.Expect(byID.get(t, functionID, id).str("functionId")).To(gomega.Equal(functionID))
	g.Expect(byID.list(t, functionID, nil, nil).ids()).To(gomega.ContainElement(id))
	// The names still work, and answer the Appwrite IDs; search finds the ID.
	g.Expect(p.api().get(t, fn, id).str("functionId")).To(gomega.Equal(functionID))
	v10 := byID.with(func(a *api) { a.format = "1.0.0" })
	g.Expect(v10.list(t, functionID, nil, url.Values{"search": {"my_func"}}).ids()).To(gomega.ContainElement(id))
	// A scope error names the project by its ID.
	addKey(t, p.name, "read-only-"+p.key, "execution.read")
	g.Eventually(func() string {
		return api{project: projectID, key: "read-only-" + p.key}.create(t, functionID, nil).str("message")
	}, eventually, 50*time.Millisecond).Should(gomega.HavePrefix("app." + projectID + "@service."))

	// Two Functions claiming one ID.
	twin := p.function(t, "twin", nil)
	labelObject(t, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: twin, Namespace: p.name}}, kube.LabelFunctionID, functionID)
	g.Eventually(func() int { return byID.get(t, functionID, id).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(500))
	r = byID.create(t, functionID, nil)
	expectError(t, r, 500, errServerError)
	g.Expect(r.str("message")).To(gomega.And(gomega.ContainSubstring("my-func, twin"), gomega.ContainSubstring(kube.LabelFunctionID)))
	// A label that is no Appwrite ID (valid as a label value).
	long := strings.Repeat("x", 40)
	labelObject(t, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: twin, Namespace: p.name}}, kube.LabelFunctionID, long)
	g.Eventually(func() int { return p.api().get(t, twin, id).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(500))
	expectError(t, p.api().list(t, long, nil, nil), 500, errServerError)
	expectCode(t, byID.get(t, functionID, id), 200)

	// Two namespaces claiming one project ID.
	q := newProject(t)
	labelObject(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: q.name}}, kube.LabelProjectID, projectID)
	g.Eventually(func() int { return byID.get(t, functionID, id).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(500))
	r = byID.get(t, functionID, id)
	expectError(t, r, 500, errServerError)
	g.Expect(r.str("message")).To(gomega.ContainSubstring(kube.LabelProjectID))
	expectCode(t, p.api().get(t, fn, id), 200)
}
