//go:build bench

package archive

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/bench/internal/kbench"
	"github.com/kfn-dev/kfn/bench/internal/latency"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
)

var (
	burst    = flag.Int("burst", 200, "executions of the archiving burst (the scale issue's B2)")
	keepLive = flag.Duration("keep-live", 30*time.Second, "the operator's archive.keepLive during the burst")
)

// TestArchiveKeepsUpWithABurst runs the scale issue's B2 burst (async
// executions of the node-20 no-op, created at once through the facade)
// with the archive on, and follows, every quarter second, how many have
// finished, how many are archived and how many are still objects: the
// archive keeps up when the rows follow the finished runs closely, and
// etcd holds only the live and keep-live records when the objects go once
// their keep-live is over. It fails only if a record is lost.
func TestArchiveKeepsUpWithABurst(t *testing.T) {
	ctx := context.Background()
	env, err := kbench.NewEnv(100, 200)
	if err != nil {
		t.Fatal(err)
	}
	pg, dsn := pgtest.StartForCluster(t, bridge())
	run := fmt.Sprintf("archive-burst-%d", time.Now().Unix())
	p, err := env.NewProject(ctx, "bench-archive-burst-", run)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.DeleteNamespaces(context.Background(), run, 2*time.Minute) })
	fn := latency.NodeFunction(p.Namespace, "burst", 120)
	fn.Spec.MaxConcurrency = 1000
	if err := env.Client.Create(ctx, fn); err != nil {
		t.Fatal(err)
	}
	if err := latency.WaitReady(ctx, env.Client, fn); err != nil {
		t.Fatal(err)
	}
	enableArchive(t, env, dsn, "--set", "archive.keepLive="+keepLive.String())
	facade, err := env.DiscoverFacade(ctx, kfnNamespace, "kfn-apiserver", 32)
	if err != nil {
		t.Fatal(err)
	}
	defer facade.Close()
	conn, err := pg.Connect(ctx, "kfn")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	start := time.Now()
	var created atomic.Int64
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range 32 {
		wg.Go(func() {
			for range next {
				code, body, err := facade.Do(ctx, http.MethodPost, "/functions/burst/executions", p, []byte(`{"body":"","async":true}`), nil)
				if err != nil || code != http.StatusAccepted {
					t.Errorf("POST: %d %.200s %v", code, body, err)
					continue
				}
				created.Add(1)
			}
		})
	}
	for range *burst {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	if int(created.Load()) != *burst {
		t.Fatalf("%d of %d executions created", created.Load(), *burst)
	}

	// Follow until every record is archived and no object is left, or
	// the keep-live plus three minutes have passed.
	var (
		allFinished, allArchived, objectsGone time.Duration
		maxBacklog, finished, archived, objs  int
	)
	deadline := start.Add(*keepLive + 5*time.Minute)
	for time.Now().Before(deadline) {
		var list fnv1.ExecutionList
		if err := env.Client.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
			t.Fatal(err)
		}
		objs = len(list.Items)
		live := 0
		for _, e := range list.Items {
			if !e.Status.Status.IsFinished() {
				live++
			}
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM executions WHERE namespace = $1", p.Namespace).Scan(&archived); err != nil {
			t.Fatal(err)
		}
		// A finished record is an object or a row, or both.
		finished = *burst - live
		maxBacklog = max(maxBacklog, finished-archived)
		at := time.Since(start)
		if finished == *burst && allFinished == 0 {
			allFinished = at
		}
		if archived == *burst && allArchived == 0 {
			allArchived = at
		}
		if objs == 0 && objectsGone == 0 {
			objectsGone = at
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Printf("\n| burst of %d, keep-live %s | seconds after the burst's creates began |\n|---|---|\n", *burst, *keepLive)
	fmt.Printf("| all finished | %.1f s (%.2f runs/s) |\n", allFinished.Seconds(), float64(*burst)/allFinished.Seconds())
	fmt.Printf("| all archived | %.1f s (%.2f rows/s); at most %d finished records not yet archived at once |\n", allArchived.Seconds(), float64(*burst)/allArchived.Seconds(), maxBacklog)
	fmt.Printf("| no object left (etcd holds only live and keep-live records) | %.1f s: %.1f s after the last run finished (each object goes its keep-live after its own run) |\n",
		objectsGone.Seconds(), (objectsGone - allFinished).Seconds())
	fmt.Printf("at the end: %d rows, %d objects, load average %s\n", archived, objs, kbench.LoadAverage())
	if archived != *burst || allArchived == 0 {
		t.Fatalf("%d of %d records archived", archived, *burst)
	}
	if objectsGone == 0 {
		t.Errorf("%d objects left %s after the burst (keep-live %s)", objs, time.Since(start).Round(time.Second), *keepLive)
	}
}
