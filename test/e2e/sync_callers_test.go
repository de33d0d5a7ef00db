//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// TestConcurrentSyncCallers: 200 synchronous creates at once through the
// cluster's facade. Every caller gets its finished record (201) or the
// facade's 429 before anything is created (at most --max-sync-waiters
// wait at once); a refused caller leaves no Execution; no kfn component
// restarts; and the facade's heap comes back near where it was.
func TestConcurrentSyncCallers(t *testing.T) {
	g := NewWithT(t)
	p := newProject(t)
	// The function's own limit does not bind; the namespace cap of the e2e
	// install (20) does, so the waits are long. Response format 1.0 bounds
	// a sync wait by the function's timeout, not by the 30 s sync timeout.
	createFunction(t, p.namespace, "busy", fnv1.FunctionSpec{
		Image: busybox, Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: 120, MaxConcurrency: 500,
		Code: &fnv1.CodeSource{Inline: map[string]string{"main.sh": `printf '%s' "$APPWRITE_FUNCTION_EXECUTION_ID" > "$KFN_RESPONSE_FILE"`}},
	})
	base := facadeEndpoint(t)
	restartsBefore := kfnPods(t)
	heapBefore := facadeHeap(t)

	const callers = 200
	type answer struct {
		code int
		rec  map[string]any
		err  error
	}
	answers := make([]answer, callers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			a := &answers[i]
			a.code, a.rec, a.err = facadeDoFormat(http.MethodPost, base+"/v1/functions/busy/executions", p, "1.0.0",
				map[string]any{"async": false, "data": strconv.Itoa(i)})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	records, refused := 0, 0
	for i, a := range answers {
		g.Expect(a.err).NotTo(HaveOccurred(), "caller %d", i)
		switch a.code {
		case http.StatusCreated:
			records++
			g.Expect(a.rec).To(HaveKeyWithValue("status", "completed"), "caller %d", i)
			g.Expect(a.rec["response"]).To(Equal(a.rec["$id"]), "caller %d got its own execution's answer", i)
		case http.StatusTooManyRequests:
			refused++
			g.Expect(a.rec).To(HaveKeyWithValue("type", "general_rate_limit_exceeded"), "caller %d", i)
			g.Expect(a.rec["message"]).To(ContainSubstring("Too many synchronous executions are waiting"), "caller %d", i)
		default:
			t.Fatalf("caller %d answered %d: %v", i, a.code, a.rec)
		}
	}
	t.Logf("200 concurrent sync callers: %d records, %d refused (429), all answered in %s", records, refused, elapsed.Round(100*time.Millisecond))
	g.Expect(records + refused).To(Equal(callers))
	g.Expect(records).To(BeNumerically(">", 0))
	g.Expect(refused).To(BeNumerically(">", 0), "200 callers at once are more than the facade lets wait")

	var execs fnv1.ExecutionList
	g.Expect(k8s.List(bg, &execs, client.InNamespace(p.namespace))).To(Succeed())
	g.Expect(execs.Items).To(HaveLen(records), "a refused caller leaves no Execution")
	g.Expect(kfnPods(t)).To(Equal(restartsBefore), "no kfn container restarted")
	// Generous: only a leak (waiters, bodies, answers held) would stay above it.
	g.Eventually(func() float64 { return facadeHeap(t) }, 2*time.Minute, 5*time.Second).
		Should(BeNumerically("<", heapBefore+64<<20), "the facade's heap settles back near its %.0f MiB baseline", heapBefore/(1<<20))
}

// facadeHeap sums go_memstats_heap_inuse_bytes over the facade's pods,
// read from their metrics endpoints (the node routes to pod IPs).
func facadeHeap(t *testing.T) float64 {
	t.Helper()
	pods := &corev1.PodList{}
	NewWithT(t).Expect(k8s.List(bg, pods, client.InNamespace(releaseNamespace),
		client.MatchingLabels{"app.kubernetes.io/component": "apiserver"})).To(Succeed())
	var total float64
	for _, pod := range pods.Items {
		if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
			continue
		}
		v, err := metricOf("http://"+pod.Status.PodIP+":8080/metrics", "go_memstats_heap_inuse_bytes")
		NewWithT(t).Expect(err).NotTo(HaveOccurred(), "metrics of %s", pod.Name)
		total += v
	}
	return total
}

// metricOf reads one unlabelled metric from a Prometheus text endpoint.
func metricOf(url, name string) (float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		if value, ok := strings.CutPrefix(lines.Text(), name+" "); ok {
			return strconv.ParseFloat(value, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s (%v)", name, url, lines.Err())
}
