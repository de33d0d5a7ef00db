package apiserver

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
)

// BenchmarkArchiveList measures a list of one function with 100 000
// archived records (a tenth failed) through the facade's archive path,
// as B3 lists: a status filter and limit(25) with the total, the default
// order, and a page deep behind a cursor. pgtest's server: fsync off, on
// the shared cores; one client.
func BenchmarkArchiveList(b *testing.B) {
	ctx := context.Background()
	pg := pgtest.Start(b)
	store, err := archive.Open(ctx, pg.DSN(), 4)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	const n = 100000
	base := time.Unix(1_700_000_000, 0)
	for i := 0; i < n; i += 1000 {
		batch := make([]*fnv1.Execution, 1000)
		for j := range batch {
			at := metav1.NewTime(base.Add(time.Duration(i+j) * time.Second))
			status := fnv1.PhaseCompleted
			if (i+j)%10 == 0 {
				status = fnv1.PhaseFailed
			}
			batch[j] = &fnv1.Execution{
				ObjectMeta: metav1.ObjectMeta{Namespace: offlineProject, Name: fmt.Sprintf("e%07d", i+j),
					UID: types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i+j)), CreationTimestamp: at},
				Spec:   fnv1.ExecutionSpec{FunctionName: "fn"},
				Status: fnv1.ExecutionStatus{Status: status, StatusCode: 200, CompletionTime: &at, Stdout: "a line"},
			}
		}
		if err := store.Put(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE executions"); err != nil { // as autovacuum would
		b.Fatal(err)
	}
	_ = conn.Close(ctx)
	s := offlineFacade(b, Options{Archive: store}, nil)
	r := request{format: parseFormat(""), project: offlineProject, caller: caller{kind: apiKey}, functionID: "fn"}
	for name, queries := range map[string][]string{
		"equal(status,failed)+limit(25)": {`{"method":"equal","attribute":"status","values":["failed"]}`, `{"method":"limit","values":[25]}`},
		"limit(25)":                      {`{"method":"limit","values":[25]}`},
		"orderDesc+cursorAfter+limit(25)": {`{"method":"orderDesc","attribute":"$createdAt"}`,
			`{"method":"cursorAfter","values":["e0050000"]}`, `{"method":"limit","values":[25]}`},
	} {
		p, aerr := planList(r.format, url.Values{"queries[]": queries})
		if aerr != nil {
			b.Fatal(aerr)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, page, aerr := s.listWithArchive(ctx, r, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn"}}, p); aerr != nil || len(page) != 25 {
					b.Fatalf("%d records, %v", len(page), aerr)
				}
			}
		})
	}
}
