package archive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
	"github.com/kfn-dev/kfn/internal/kube"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// TestStore runs against one real PostgreSQL server; each subtest has its
// own database.
func TestStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	server := pgtest.Start(t)
	dbs := 0
	newDB := func(t *testing.T) string {
		dbs++
		name := fmt.Sprintf("test%d", dbs)
		admin, err := pgx.Connect(context.Background(), server.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		return strings.Replace(server.DSN(), "dbname=postgres", "dbname="+name, 1)
	}
	t.Run("migrations", func(t *testing.T) { testMigrations(t, newDB(t)) })
	t.Run("put and get", func(t *testing.T) { testPutGet(t, open(t, newDB(t))) })
	t.Run("list", func(t *testing.T) { testList(t, open(t, newDB(t))) })
	t.Run("counts under concurrent writers", func(t *testing.T) { testCountsUnderConcurrentWriters(t, open(t, newDB(t))) })
	t.Run("bad records", func(t *testing.T) { testBadRecords(t, open(t, newDB(t))) })
	t.Run("retention", func(t *testing.T) { testDeleteFinishedBefore(t, open(t, newDB(t))) })
	t.Run("metrics", func(t *testing.T) { testRefresh(t, open(t, newDB(t))) })
	t.Run("retention runnable", func(t *testing.T) { testRetention(t, open(t, newDB(t))) })
	t.Run("delete races archiving", func(t *testing.T) { testDeleteRacesPut(t, open(t, newDB(t))) })
	// Last: it stops the server.
	t.Run("outage", func(t *testing.T) { testOutage(t, server, open(t, newDB(t))) })
}

func open(t *testing.T, dsn string) *Store {
	s, err := Open(context.Background(), dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Replicas starting together apply each migration once, and a schema newer
// than this kfn is refused.
func testMigrations(t *testing.T, dsn string) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = open(t, dsn).Migrate(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, _ := loadMigrations(migrations)
	s := open(t, dsn)
	var applied int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(all) {
		t.Fatalf("%d migrations recorded, want %d", applied, len(all))
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if err := open(t, dsn).Migrate(ctx); !IsRefused(err) || !strings.Contains(err.Error(), "newer than this kfn knows") {
		t.Fatalf("migrating a newer schema: %v, want a refusal", err)
	}
}

func TestLoadMigrationsRefusesBadFiles(t *testing.T) {
	for name, files := range map[string]fstest.MapFS{
		"no version": {"migrations/executions.sql": {}},
		"zero":       {"migrations/0000_x.sql": {}},
		"duplicate":  {"migrations/0001_a.sql": {}, "migrations/1_b.sql": {}},
		"none":       {},
	} {
		if _, err := loadMigrations(files); err == nil {
			t.Errorf("%s: loaded, want an error", name)
		}
	}
	got, err := loadMigrations(fstest.MapFS{"migrations/10_b.sql": {}, "migrations/2_a.sql": {}})
	if err != nil || got[0].version != 2 || got[1].version != 10 {
		t.Fatalf("got %+v, %v: want versions 2, 10 in order", got, err)
	}
}

func TestOpenRefusesBadSettings(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		size int
	}{{"", 4}, {"host=/tmp", 0}, {"postgres://a:b@host:notaport/db", 4}} {
		if s, err := Open(context.Background(), c.dsn, c.size); err == nil {
			s.Close()
			t.Errorf("Open(%q, %d) succeeded, want an error", c.dsn, c.size)
		}
	}
}

func finished(ns, fn, name string, done time.Time) *fnv1.Execution {
	created := metav1.NewTime(done.Add(-time.Second))
	completed := metav1.NewTime(done)
	return &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012x", done.UnixNano()%1e12+int64(len(name)))),
			CreationTimestamp: created, Annotations: map[string]string{kube.AnnotationFunctionGeneration: "3"},
		},
		Spec: fnv1.ExecutionSpec{FunctionName: fn, Trigger: fnv1.TriggerHTTP, Method: "GET", Path: "/x?y=1", UserID: "user1",
			Headers: map[string]string{"content-type": "text/plain"}},
		Status: fnv1.ExecutionStatus{Status: fnv1.PhaseCompleted, StatusCode: 200, Duration: 0.25,
			Response: "hello", Stdout: "out", Stderr: "err", ResponseHeaders: map[string]string{"content-type": "text/plain"},
			StartTime: &created, CompletionTime: &completed, Reason: fnv1.ReasonCompleted},
	}
}

func testPutGet(t *testing.T, s *Store) {
	ctx := context.Background()
	e := finished("p1", "fn", "exec1", t0)
	// What a request controls goes in as parameters: quotes are data.
	e.Spec.Path = "/'; DROP TABLE executions; --"
	other := finished("p1", "fn", "exec2", t0.Add(time.Second))
	other.Status.ResponseHeaders = nil
	if err := s.Put(ctx, e, other); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, e); err != nil { // again: still one row
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "p1", "fn", "exec1")
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got, e) {
		t.Fatalf("archived:\n%+v\nwant:\n%+v", got, e)
	}
	if got, err := s.Get(ctx, "p1", "fn", "exec2"); err != nil || got.Status.ResponseHeaders != nil {
		t.Fatalf("got %+v, %v: want exec2 without response headers", got, err)
	}
	for _, key := range [][3]string{{"p1", "other-fn", "exec1"}, {"p2", "fn", "exec1"}, {"p1", "fn", "x' OR '1'='1"}} {
		if _, err := s.Get(ctx, key[0], key[1], key[2]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get%v: %v, want ErrNotFound", key, err)
		}
	}
	var rows int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM executions").Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("%d rows (%v), want 2", rows, err)
	}
	if has, err := s.Has(ctx, e.UID); err != nil || !has {
		t.Fatalf("Has(archived) = %v, %v", has, err)
	}
	for i, want := range []bool{true, false} {
		if found, err := s.Delete(ctx, "p1", "fn", "exec2"); err != nil || found != want {
			t.Fatalf("Delete %d = %v, %v; want %v", i+1, found, err, want)
		}
	}
	if _, err := s.Get(ctx, "p1", "fn", "exec2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	// A deleted record is not archived again, nor is the object whose UID
	// a delete named before it was archived.
	notYet := finished("p1", "fn", "not-yet-archived", t0)
	if _, err := s.Delete(ctx, "p1", "fn", notYet.Name, notYet.UID); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, other, notYet, finished("p1", "fn", "exec3", t0)); err != nil {
		t.Fatal(err)
	}
	for uid, want := range map[types.UID]bool{other.UID: false, notYet.UID: false, finished("p1", "fn", "exec3", t0).UID: true} {
		if has, err := s.Has(ctx, uid); err != nil || has != want {
			t.Fatalf("Has(%s) after deletes = %v, %v; want %v", uid, has, err, want)
		}
	}
	// Retention forgets the deletions with the records.
	if _, err := s.DeleteFinishedBefore(ctx, time.Now().Add(time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	var tombstones int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM deleted_executions").Scan(&tombstones); err != nil || tombstones != 0 {
		t.Fatalf("%d deletions remembered (%v) after the retention", tombstones, err)
	}
	if has, err := s.Has(ctx, "00000000-0000-4000-8000-000000000000"); err != nil || has {
		t.Fatalf("Has(unknown) = %v, %v", has, err)
	}
	checkCounts(t, s)
}

// List reads a page and its count in one call, and a page listed again
// (from the kept objects) is the same records, whatever a caller did to
// the first one.
func testList(t *testing.T, s *Store) {
	ctx := context.Background()
	var want []*fnv1.Execution
	for i := range 5 {
		e := finished("p1", "fn", fmt.Sprintf("exec%d", i), t0.Add(time.Duration(i)*time.Second))
		e.Status.Stdout = fmt.Sprintf("out %d", i)
		want = append(want, e)
	}
	want[3].Status.Status, want[3].Status.StatusCode = fnv1.PhaseFailed, 500
	if err := s.Put(ctx, want...); err != nil {
		t.Fatal(err)
	}
	// The facade's form: the page's condition is the count's and a cursor.
	q := ListQuery{Where: "namespace = $1 AND function_id = $2 AND status <> $3 AND created_at < $4",
		CountWhere: "namespace = $1 AND function_id = $2 AND status <> $3", CountArgs: 3,
		OrderBy: "created_at DESC, id DESC", Args: []any{"p1", "fn", "failed", t0.Add(3 * time.Second)}, Limit: 2}
	for round := range 2 {
		page, total, err := s.List(ctx, q, 10)
		if err != nil {
			t.Fatal(err)
		}
		if total != 4 || len(page) != 2 {
			t.Fatalf("round %d: total %d, %d records; want 4 and 2", round, total, len(page))
		}
		for i, got := range page {
			if w := want[2-i]; !equality.Semantic.DeepEqual(got, w) {
				t.Fatalf("round %d, record %d:\n%+v\nwant:\n%+v", round, i, got, w)
			}
			got.Status.Stdout, got.Labels = "changed by a caller", map[string]string{"x": "y"}
		}
	}
	if page, total, err := s.List(ctx, q, 0); err != nil || total != 0 || len(page) != 2 {
		t.Fatalf("without a count: total %d, %d records, %v", total, len(page), err)
	}
	// The same total from the per-status counts, less a record still an
	// object; and for one user; and capped.
	alice := "alice"
	for _, c := range []struct {
		counted *StatusCount
		limit   int
		want    int
	}{
		{&StatusCount{Namespace: "p1", FunctionID: "fn", Statuses: []string{"completed"}}, 10, 4},
		{&StatusCount{Namespace: "p1", FunctionID: "fn", Statuses: []string{"completed"}, Exclude: []string{string(want[0].UID)}}, 10, 3},
		{&StatusCount{Namespace: "p1", FunctionID: "fn"}, 10, 5},
		{&StatusCount{Namespace: "p1", FunctionID: "fn"}, 2, 2},
		{&StatusCount{Namespace: "p1", FunctionID: "fn", User: &alice}, 10, 0},
		{&StatusCount{Namespace: "p1", FunctionID: "fn", Statuses: []string{"failed", "completed"}, User: &want[0].Spec.UserID}, 10, 5},
	} {
		q.Counted = c.counted
		if _, total, err := s.List(ctx, q, c.limit); err != nil || total != c.want {
			t.Errorf("%+v (limit %d): total %d, %v; want %d", *c.counted, c.limit, total, err, c.want)
		}
	}
	checkCounts(t, s)
}

// checkCounts fails unless the per-status counts are those of the rows.
func checkCounts(t *testing.T, s *Store) {
	t.Helper()
	const diff = `SELECT count(*) FROM (
		(SELECT namespace, function_id, user_id, status, n FROM execution_counts WHERE n <> 0
		 EXCEPT SELECT namespace, function_id, user_id, status, count(*) FROM executions GROUP BY 1, 2, 3, 4)
		UNION ALL
		(SELECT namespace, function_id, user_id, status, count(*) FROM executions GROUP BY 1, 2, 3, 4
		 EXCEPT SELECT namespace, function_id, user_id, status, n FROM execution_counts WHERE n <> 0)) AS d`
	var wrong int
	if err := s.pool.QueryRow(context.Background(), diff).Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("%d per-status counts differ from the rows (%v)", wrong, err)
	}
}

// A record that is not whole is refused before anything is written.
func testBadRecords(t *testing.T, s *Store) {
	ctx := context.Background()
	running := finished("p1", "fn", "running", t0)
	running.Status.Status = fnv1.PhaseProcessing
	stripped := finished("p1", "fn", "stripped", t0)
	stripped.Annotations[kube.AnnotationStripped] = "true"
	noUID := finished("p1", "fn", "nouid", t0)
	noUID.UID = ""
	good := finished("p1", "fn", "good", t0)
	for _, bad := range []*fnv1.Execution{running, stripped, noUID} {
		if err := s.Put(ctx, good, bad); err == nil {
			t.Errorf("Put(%s) succeeded, want an error", bad.Name)
		}
	}
	if has, err := s.Has(ctx, good.UID); err != nil || has {
		t.Fatalf("Has(good) = %v, %v: a refused batch wrote it", has, err)
	}
}

// Exactly the records that finished before the cutoff go, across batches.
func testDeleteFinishedBefore(t *testing.T, s *Store) {
	ctx := context.Background()
	cutoff := t0
	var execs []*fnv1.Execution
	for i := -5; i <= 3; i++ { // 5 before the cutoff, one at it, 3 after
		execs = append(execs, finished("p1", "fn", fmt.Sprintf("e%d", i+5), cutoff.Add(time.Duration(i)*time.Millisecond)))
	}
	if err := s.Put(ctx, execs...); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.DeleteFinishedBefore(ctx, cutoff, 2)
	if err != nil || deleted != 5 {
		t.Fatalf("deleted %d (%v), want 5", deleted, err)
	}
	for i, e := range execs {
		has, err := s.Has(ctx, e.UID)
		if err != nil || has != (i >= 5) {
			t.Errorf("%s (finished %s): archived %v (%v)", e.Name, e.Status.CompletionTime.Sub(cutoff), has, err)
		}
	}
	if _, err := s.DeleteFinishedBefore(ctx, cutoff, 0); err == nil {
		t.Error("a batch of 0 was accepted")
	}
	checkCounts(t, s)
}

func testRefresh(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.Put(ctx, finished("p1", "fn", "a", t0), finished("p1", "fn", "b", t0.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rows := testutil.ToFloat64(archivedRows); rows != 2 {
		t.Errorf("kfn_archive_rows = %v, want 2", rows)
	}
	if bytes := testutil.ToFloat64(archivedBytes); bytes <= 0 {
		t.Errorf("kfn_archive_bytes = %v, want > 0", bytes)
	}
}

// The archive going down fails calls; back, the same Store works again.
func testOutage(t *testing.T, server *pgtest.Server, s *Store) {
	ctx := context.Background()
	if err := s.Put(ctx, finished("p1", "fn", "before", t0)); err != nil {
		t.Fatal(err)
	}
	server.Stop()
	during := finished("p1", "fn", "during", t0.Add(time.Second))
	if err := s.Put(ctx, during); err == nil {
		t.Fatal("Put succeeded with the archive down")
	}
	server.Restart()
	if err := s.Put(ctx, during); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"before", "during"} {
		if _, err := s.Get(ctx, "p1", "fn", id); err != nil {
			t.Errorf("Get(%s): %v", id, err)
		}
	}
}

// The leader's periodic pass deletes exactly the records past the
// retention, at start and then every period, and counts what is left.
func testRetention(t *testing.T, s *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const age = 14 * 24 * time.Hour
	clk := clocktesting.NewFakeClock(t0)
	expired := finished("p1", "fn", "expired", t0.Add(-age-time.Millisecond))
	boundary := finished("p1", "fn", "boundary", t0.Add(-age)) // exactly 14 days: not past them
	recent := finished("p1", "fn", "recent", t0.Add(-time.Hour))
	if err := s.Put(ctx, expired, boundary, recent); err != nil {
		t.Fatal(err)
	}
	r := &Retention{Store: s, Age: age, Every: time.Hour, Batch: 2, Clock: clk}
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	archived := func() []string {
		var names []string
		for _, e := range []*fnv1.Execution{expired, boundary, recent} {
			if has, err := s.Has(ctx, e.UID); err != nil {
				t.Fatal(err)
			} else if has {
				names = append(names, e.Name)
			}
		}
		return names
	}
	waitFor(t, "the first pass", func() bool { return len(archived()) == 2 })
	if got := archived(); got[0] != "boundary" || got[1] != "recent" {
		t.Fatalf("archived %v after the first pass, want [boundary recent]", got)
	}
	waitFor(t, "the gauges", func() bool { return testutil.ToFloat64(archivedRows) == 2 })

	// An hour on, the boundary record is past the retention; the recent one is not.
	waitFor(t, "the ticker", clk.HasWaiters)
	clk.Step(time.Hour)
	waitFor(t, "the second pass", func() bool { return len(archived()) == 1 })
	if got := archived(); got[0] != "recent" {
		t.Fatalf("archived %v after the second pass, want [recent]", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for a generous while: it is a bound on "stuck", not
// a timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
	}
}

// A client's delete and the operator's archiving of the same record, at
// the same time, whichever goes first: the record ends deleted.
func testDeleteRacesPut(t *testing.T, s *Store) {
	ctx := context.Background()
	for i := range 100 {
		e := finished("p1", "fn", fmt.Sprintf("race%d", i), t0.Add(time.Duration(i)*time.Second))
		var wg sync.WaitGroup
		var putErr, delErr error
		wg.Go(func() { putErr = s.Put(ctx, e) })
		wg.Go(func() { _, delErr = s.Delete(ctx, "p1", "fn", e.Name, e.UID) })
		wg.Wait()
		if putErr != nil || delErr != nil {
			t.Fatal(putErr, delErr)
		}
		if has, err := s.Has(ctx, e.UID); err != nil || has {
			t.Fatalf("round %d: the deleted record is archived (%v)", i, err)
		}
	}
	checkCounts(t, s)
}

// Writers of one function's records (several statuses and users in each
// batch, some written twice) and retention passes at the same time: none
// fails (the counters are locked in one order) and the counts stay exact.
func testCountsUnderConcurrentWriters(t *testing.T, s *Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 6 {
		wg.Go(func() {
			for round := range 10 {
				var batch []*fnv1.Execution
				for i := range 20 {
					n := (w*10+round)*20 + i
					e := finished("p1", "fn", fmt.Sprintf("w%d", n), t0.Add(time.Duration(n)*time.Second))
					e.UID = types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", n))
					e.Spec.UserID = []string{"", "alice", "bob"}[n%3]
					if n%4 == 0 {
						e.Status.Status = fnv1.PhaseFailed
					}
					batch = append(batch, e)
				}
				// Rewrite part of the previous round too, as a retried archive would.
				if err := s.Put(ctx, batch...); err != nil {
					errs <- err
					return
				}
				if err := s.Put(ctx, batch[:5]...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if _, err := s.DeleteFinishedBefore(ctx, t0.Add(time.Duration(i*60)*time.Second), 7); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkCounts(t, s)
}
