package apiserver

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestOriginAllowed(t *testing.T) {
	r := &http.Request{Host: "fn.example.net:8090"}
	const rules = "https://app.example.com, *.example.org http://dev.test:3000"
	for origin, want := range map[string]bool{
		"http://localhost:5173":     true, // Appwrite's console platform
		"https://fn.example.net":    true, // the server's own host
		"https://app.example.com":   true,
		"http://app.example.com":    false, // scheme
		"https://APP.example.com":   true,
		"https://a.b.example.org":   true,
		"http://x.example.org:8080": true,  // a hostname rule takes any scheme and port
		"https://example.org":       false, // the wildcard is for subdomains
		"http://dev.test:3000":      true,
		"http://dev.test:3001":      false,
		"https://evil.example":      false,
	} {
		u, _ := url.Parse(origin)
		got, err := originAllowed(u, r, rules)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", origin, got, err, want)
		}
	}
	u, _ := url.Parse("https://anything.example")
	if ok, err := originAllowed(u, r, "*"); !ok || err != nil {
		t.Errorf("*: %v %v", ok, err)
	}
	for _, bad := range []string{"https://", "app.test:3000", "https://a/b", "*.", "a_b.example"} {
		if _, err := parseAllowedOrigins(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Browser writes from an origin the project does not allow are refused,
// as Appwrite refuses them (403 general_unknown_origin), unless they carry
// an API key; reads are answered without CORS headers, so the page cannot
// read them; preflights allow the origin, as they name no project.
func TestUnknownOrigin(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	fn := p.function(t, "web", nil)
	from := func(a api, origin string) api {
		return a.with(func(a *api) { a.headers = map[string]string{"Origin": origin} })
	}
	evil := "https://evil.example"
	r := from(p.guest(), evil).create(t, fn, nil)
	expectError(t, r, 403, errUnknownOrigin)
	g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(gomega.BeEmpty())
	expectError(t, from(p.user(t, "alice"), evil).create(t, fn, nil), 403, errUnknownOrigin)
	expectCode(t, from(p.api(), evil).create(t, fn, nil), 201)
	r = from(p.user(t, "alice"), evil).list(t, fn, nil, nil)
	expectCode(t, r, 200)
	g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(gomega.BeEmpty())
	pre := from(api{}, evil).do(t, http.MethodOptions, "/v1/functions/"+fn+"/executions", nil)
	expectCode(t, pre, 204)
	g.Expect(pre.header.Get("Access-Control-Allow-Origin")).To(gomega.Equal(evil))
	// What Appwrite always allows: localhost, its own host, no host at all.
	for _, origin := range []string{"http://localhost:3000", facadeURL, "null"} {
		r := from(p.guest(), origin).create(t, fn, nil)
		expectCode(t, r, 201)
		if origin != "null" {
			g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(gomega.Equal(origin))
		}
	}
	// The Referer stands for a missing Origin.
	referer := p.guest().with(func(a *api) { a.headers = map[string]string{"Referer": evil + "/page"} })
	expectError(t, referer.create(t, fn, nil), 403, errUnknownOrigin)

	annotate(t, p.name, "https://app.example.com,*.example.org")
	g.Eventually(func() int { return from(p.guest(), "https://app.example.com").create(t, fn, nil).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(201))
	r = from(p.guest(), "https://a.example.org").create(t, fn, nil)
	expectCode(t, r, 201)
	g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(gomega.Equal("https://a.example.org"))
	expectError(t, from(p.guest(), "http://app.example.com").create(t, fn, nil), 403, errUnknownOrigin)
	expectError(t, from(p.guest(), "https://example.org").create(t, fn, nil), 403, errUnknownOrigin)

	annotate(t, p.name, "https://")
	g.Eventually(func() int { return from(p.guest(), evil).create(t, fn, nil).code }, eventually, 50*time.Millisecond).Should(gomega.Equal(500))
	expectError(t, from(p.guest(), evil).create(t, fn, nil), 500, errServerError)
}

// annotate sets a project's allowed origins.
func annotate(t *testing.T, project, origins string) {
	t.Helper()
	g := gomega.NewWithT(t)
	ns := &corev1.Namespace{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Name: project}, ns)).To(gomega.Succeed())
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	ns.Annotations[AnnotationAllowedOrigins] = origins
	g.Expect(k8s.Update(bg, ns)).To(gomega.Succeed())
}
