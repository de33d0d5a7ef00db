package apiserver

import (
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// 200 synchronous creates at once: each caller gets its finished record
// (201) or a 429 with Retry-After before anything is created; no more
// wait at once than the facade's cap (the default); and once they are
// answered the waits are given back and the heap is back near where it
// was.
func TestConcurrentSyncCallersGetARecordOr429(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	// The function's limit does not bind: the facade's cap is what is shown.
	// Response format 1.0 bounds a sync wait by the function's timeout (plus
	// a grace), not by the suite's 3 s sync timeout, which a loaded machine
	// may take to run 64 executions.
	fn := p.function(t, "busy", func(f *fnv1.Function) { f.Spec.MaxConcurrency, f.Spec.Timeout = 500, 60 })
	caller := p.api().with(func(a *api) { a.format = "1.0.0" })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const n = 200
	answers := make([]response, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = caller.create(t, fn, map[string]any{"data": "sleep:300"})
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	records, refused := 0, 0
	for i, r := range answers {
		switch r.code {
		case http.StatusCreated:
			records++
			g.Expect(r.str("status")).To(gomega.Equal("completed"), "caller %d: %s", i, r.raw)
		case http.StatusTooManyRequests:
			refused++
			expectError(t, r, 429, errRateLimit)
			g.Expect(r.str("message")).To(gomega.ContainSubstring("Too many synchronous executions are waiting"))
			g.Expect(r.header.Get("Retry-After")).NotTo(gomega.BeEmpty())
		default:
			t.Fatalf("caller %d answered %d: %s", i, r.code, r.raw)
		}
	}
	t.Logf("%d records, %d refused in %s (cap %d waiters)", records, refused, elapsed.Round(time.Millisecond), facade.opts.MaxSyncWaiters)
	g.Expect(refused).To(gomega.BeNumerically(">", 0), "200 callers at once are more than the cap")
	g.Expect(records).To(gomega.BeNumerically(">=", facade.opts.MaxSyncWaiters))
	g.Expect(facade.syncWaiters.inUse()).To(gomega.BeZero(), "waits not given back")

	// A refused caller left nothing behind.
	var execs fnv1.ExecutionList
	g.Expect(k8s.List(bg, &execs, client.InNamespace(p.name))).To(gomega.Succeed())
	g.Expect(execs.Items).To(gomega.HaveLen(records))

	// The heap settles back near its baseline (one process holds the
	// operator, the cache and the facade here, so the bound is generous).
	g.Eventually(func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}, 30*time.Second, time.Second).Should(gomega.BeNumerically("<", before.HeapInuse+64<<20))
}
