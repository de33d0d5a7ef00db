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

	"github.com/jackc/pgx/v5"
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
	createBurst(ctx, t, facade, p)
	f := follow(ctx, t, env, conn, p.Namespace, start)
	fmt.Printf("\n| burst of %d, keep-live %s | seconds after the burst's creates began |\n|---|---|\n", *burst, *keepLive)
	fmt.Printf("| all finished | %.1f s (%.2f runs/s) |\n", f.allFinished.Seconds(), float64(*burst)/f.allFinished.Seconds())
	fmt.Printf("| all archived | %.1f s (%.2f rows/s); at most %d finished records not yet archived at once |\n",
		f.allArchived.Seconds(), float64(*burst)/f.allArchived.Seconds(), f.maxBacklog)
	fmt.Printf("| no object left (etcd holds only live and keep-live records) | %.1f s: %.1f s after the last run finished (each object goes its keep-live after its own run) |\n",
		f.objectsGone.Seconds(), (f.objectsGone - f.allFinished).Seconds())
	fmt.Printf("at the end: %d rows, %d objects, load average %s\n", f.archived, f.objects, kbench.LoadAverage())
	if f.archived != *burst || f.allArchived == 0 {
		t.Fatalf("%d of %d records archived", f.archived, *burst)
	}
	if f.objectsGone == 0 {
		t.Errorf("%d objects left %s after the burst (keep-live %s)", f.objects, time.Since(start).Round(time.Second), *keepLive)
	}
}

// createBurst creates the burst's async executions from 32 clients.
func createBurst(ctx context.Context, t *testing.T, facade *kbench.Facade, p *kbench.Project) {
	t.Helper()
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
}

// followed is what follow saw: when (since the start) every run had
// finished, every record was archived and no object was left; the most
// finished records not yet archived at once; the last counts.
type followed struct {
	allFinished, allArchived, objectsGone time.Duration
	maxBacklog, archived, objects         int
}

// follow counts, every quarter second, the namespace's finished runs (a
// finished record is an object or a row, or both), its archived rows and
// its objects, until no object is left or the keep-live plus five minutes
// have passed.
func follow(ctx context.Context, t *testing.T, env *kbench.Env, conn *pgx.Conn, ns string, start time.Time) followed {
	t.Helper()
	var f followed
	for deadline := start.Add(*keepLive + 5*time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var list fnv1.ExecutionList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		f.objects = len(list.Items)
		live := 0
		for _, e := range list.Items {
			if !e.Status.Status.IsFinished() {
				live++
			}
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM executions WHERE namespace = $1", ns).Scan(&f.archived); err != nil {
			t.Fatal(err)
		}
		finished := *burst - live
		f.maxBacklog = max(f.maxBacklog, finished-f.archived)
		at := time.Since(start)
		if finished == *burst && f.allFinished == 0 {
			f.allFinished = at
		}
		if f.archived == *burst && f.allArchived == 0 {
			f.allArchived = at
		}
		if f.objects == 0 {
			f.objectsGone = at
			break
		}
	}
	return f
}
