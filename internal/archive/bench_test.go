package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
)

// benchRecords is how many records one function has while get is measured.
const benchRecords = 100000

// BenchmarkArchive measures, on a real PostgreSQL (pgtest's: fsync off,
// so commits are cheaper than on a durable server): the upsert of one
// record, as the operator makes per execution, and a get by ID among
// benchRecords records of one function; it reports the bytes per row.
func BenchmarkArchive(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.Start(b).DSN(), 4)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	for i := 0; i < benchRecords; i += 1000 {
		batch := make([]*fnv1.Execution, 1000)
		for j := range batch {
			batch[j] = benchRecord(i + j)
		}
		if err := s.Put(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	// What autovacuum does soon after a bulk load: without statistics the
	// planner's generic plan for a prepared get may scan the table.
	if _, err := s.pool.Exec(ctx, "ANALYZE executions"); err != nil {
		b.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d records in %s (batches of 1000): %.0f bytes per row with indexes",
		benchRecords, time.Since(start).Round(time.Millisecond), testutil.ToFloat64(archivedBytes)/testutil.ToFloat64(archivedRows))
	b.Run("put one", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := s.Put(ctx, benchRecord(benchRecords+i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("get among %d", benchRecords), func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Get(ctx, "bench", "fn", fmt.Sprintf("exec%07d", rand.IntN(benchRecords))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchRecord(i int) *fnv1.Execution {
	e := finished("bench", "fn", fmt.Sprintf("exec%07d", i), t0.Add(time.Duration(i)*time.Second))
	e.UID = types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
	return e
}
