package apiserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// The facade decides whether a create may go on before it reads the body:
// a request it refuses is answered while the client still owes all but
// the first KiB of a declared 10 MiB body.
func TestRefusedBodiesAreNotRead(t *testing.T) {
	p := newProject(t)
	open := p.function(t, "open", nil)
	closed := p.function(t, "closed", func(f *fnv1.Function) { f.Spec.Execute = []string{"users"} })
	off := p.function(t, "off", disabled)
	readOnly := "r-" + p.key
	addKey(t, p.name, readOnly, "execution.read")
	const tenMiB = 10 << 20

	for _, c := range []struct {
		name string
		a    api
		fn   string
		size int
		code int
		typ  string
	}{
		{"a guest the function does not allow", p.guest(), closed, tenMiB, 401, errUserUnauthorized},
		{"a missing function", p.guest(), "missing", tenMiB, 404, errFunctionNotFound},
		{"a disabled function", p.guest(), off, tenMiB, 404, errFunctionNotFound},
		{"a disabled function, 1.0", p.api().with(func(a *api) { a.format = "1.0.0" }), off, tenMiB, 404, errFunctionNotFound},
		{"an unknown API key", api{project: p.name, key: "wrong"}, open, tenMiB, 401, errUserUnauthorized},
		{"a key without execution.write", api{project: p.name, key: readOnly}, open, tenMiB, 401, errUnauthorizedScope},
		{"an invalid JWT", api{project: p.name, jwt: "nope"}, open, tenMiB, 401, errJWTInvalid},
		{"no project", api{}, open, tenMiB, 400, errProjectUnknown},
		{"a body over the limit", p.api(), open, maxRequestBody + 1, 400, errArgumentInvalid},
	} {
		r := sendHead(t, c.a, c.fn, c.size)
		if r.code != c.code || r.str("type") != c.typ {
			t.Errorf("%s: want %d %s while the body is unsent, got %d %s", c.name, c.code, c.typ, r.code, r.raw)
		}
	}

	// A full body budget refuses the request unread too, with Retry-After.
	free := facade.bodies.size - facade.bodies.inUse()
	if !facade.bodies.take(free) {
		t.Fatal("could not fill the body budget")
	}
	r := sendHead(t, p.guest(), open, tenMiB)
	// Small bodies are not counted: large ones cannot crowd them out.
	small := p.guest().create(t, open, map[string]any{"async": true, "body": strings.Repeat("s", smallBody-100)})
	facade.bodies.give(free)
	expectError(t, r, 429, errRateLimit)
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", r.header)
	}
	expectCode(t, small, 202)
	// Headers are bounded too.
	huge := p.guest().with(func(a *api) { a.headers = map[string]string{"X-Padding": strings.Repeat("p", 100<<10)} })
	expectCode(t, huge.create(t, open, nil), http.StatusRequestHeaderFieldsTooLarge)
	if n := facade.bodies.inUse(); n != 0 {
		t.Fatalf("%d bytes of the body budget still reserved", n)
	}
}

// sendHead sends a create request that declares a body of size bytes but
// sends only its first KiB, and returns the answer, read while the rest is
// still owed; then it hangs up.
func sendHead(t *testing.T, a api, fn string, size int) response {
	t.Helper()
	u, err := url.Parse(facadeURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := http.Header{}
	a.setHeaders(h)
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST /v1/functions/%s/executions HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", fn, u.Host, size)
	_ = h.Write(&req)
	req.WriteString("\r\n{\"body\":\"" + strings.Repeat("x", 1014))
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Without an answer, the facade waits for the body until its read
	// timeout: the test fails first.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	return readResponse(res)
}

// Twenty guests send a 10 MiB body each at once, half to a function they
// may not run: the facade refuses those unread, holds at most its body
// budget of the others (refusing the rest with 429), stays up, and its
// live heap grows by a bounded amount, not by twenty bodies and copies.
func TestLargeBodiesInFlightAreBounded(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	open := p.function(t, "open", nil)
	closed := p.function(t, "closed", func(f *fnv1.Function) { f.Spec.Execute = []string{"users"} })
	payload, err := json.Marshal(map[string]any{"body": strings.Repeat("0123456789abcdef", maxBody/16), "async": true})
	g.Expect(err).NotTo(gomega.HaveOccurred())

	stop := sampleHeap()
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := []string{closed, open}[i%2]
			req, _ := http.NewRequest(http.MethodPost, facadeURL+"/v1/functions/"+fn+"/executions", bytes.NewReader(payload))
			p.guest().setHeaders(req.Header)
			if res, err := http.DefaultClient.Do(req); err == nil {
				codes[i] = readResponse(res).code
			}
		}()
	}
	wg.Wait()
	grown := stop()

	accepted := 0
	for i, code := range codes {
		switch {
		case i%2 == 0:
			g.Expect(code).To(gomega.Equal(401), "request %d, to %s", i, closed)
		case code == 202:
			accepted++
		default:
			g.Expect(code).To(gomega.Equal(429), "request %d, to %s", i, open)
		}
	}
	g.Expect(accepted).To(gomega.BeNumerically(">=", 1))
	t.Logf("%d of %d accepted; the live heap grew by %d MiB at most (%d MiB of bodies allowed at once)",
		accepted, n/2, grown>>20, facade.bodies.size>>20)
	// Before the budget, and with bodies read before the caller was
	// checked, the same twenty requests grew the live heap by about 420 MiB
	// here. Now: at most the budget's bodies, the part of each being sent
	// as a Secret, and the operator's reads of those Secrets (in this
	// process too) — well under twenty bodies' 200 MiB.
	g.Expect(grown).To(gomega.BeNumerically("<", uint64(2*facade.bodies.size)), "live heap growth")
	g.Expect(facade.bodies.inUse()).To(gomega.BeZero())
	expectCode(t, api{}.do(t, http.MethodGet, "/v1/health", nil), 200)

	// An accepted body reaches its Execution whole, in Secrets.
	ids := p.api().list(t, open, nil, nil).ids()
	g.Expect(ids).To(gomega.HaveLen(accepted))
	e := &fnv1.Execution{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.name, Name: ids[0]}, e)).To(gomega.Succeed())
	g.Expect(e.Spec.BodySecrets).To(gomega.HaveLen((maxBody + fnv1.MaxBodySecretBytes - 1) / fnv1.MaxBodySecretBytes))
}

// sampleHeap samples the live heap (collected before each sample: what a
// container's memory limit must hold when, as kfn does, GOMEMLIMIT makes
// the collector run before the limit) until stop, which returns its
// largest growth over the start.
func sampleHeap() func() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak - base
	}
}
