package archive

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// ListQuery is a list of archived records as the facade plans it
// (apiserver/listsql.go). Where, CountWhere and OrderBy are SQL over the
// executions table's columns, made only of fixed text: every value from
// a request is in Args, referenced as $1, $2...
type ListQuery struct {
	// Where selects the page's records (the cursor included); CountWhere
	// the records the total counts, with the first CountArgs of Args.
	Where, CountWhere string
	CountArgs         int
	OrderBy           string
	Args              []any
	// Limit is how many records the page needs at most.
	Limit int
}

// decodedEntries bounds the objects List keeps decoded: a page's few
// kilobytes each, so a few MiB whatever the archive holds.
const decodedEntries = 2048

// List reads the records of q, in its order, with their outputs, and
// with countLimit > 0 also counts the records of q's CountWhere, up to
// countLimit: one round trip for both.
//
// An archived record never changes, yet the same pages are listed again
// and again (a console polling the newest runs): decoding each row's
// object was a quarter of the facade's CPU per list in the archive's
// bench, so the decoded objects of listed rows are kept, by UID.
func (s *Store) List(ctx context.Context, q ListQuery, countLimit int) ([]*fnv1.Execution, int, error) {
	if err := s.Migrate(ctx); err != nil {
		return nil, 0, err
	}
	batch := &pgx.Batch{}
	args := append(q.Args[:len(q.Args):len(q.Args)], q.Limit)
	batch.Queue(fmt.Sprintf("SELECT %s FROM executions WHERE %s ORDER BY %s LIMIT $%d", columns, q.Where, q.OrderBy, len(args)), args...)
	if countLimit > 0 {
		countArgs := append(q.Args[:q.CountArgs:q.CountArgs], countLimit)
		batch.Queue(fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM executions WHERE %s LIMIT $%d) AS page", q.CountWhere, len(countArgs)), countArgs...)
	}
	results := s.pool.SendBatch(ctx, batch)
	defer results.Close()
	rows, err := results.Query()
	if err != nil {
		return nil, 0, fmt.Errorf("listing the archive: %w", err)
	}
	execs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*fnv1.Execution, error) {
		r, err := scanRow(row)
		if err != nil {
			return nil, err
		}
		return s.decode(&r)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing the archive: %w", err)
	}
	var n int
	if countLimit > 0 {
		if err := results.QueryRow().Scan(&n); err != nil {
			return nil, 0, fmt.Errorf("counting in the archive: %w", err)
		}
	}
	return execs, n, results.Close()
}

// decode is r.execution(), from the kept object when there is one.
func (s *Store) decode(r *row) (*fnv1.Execution, error) {
	if kept, ok := s.decoded.Get(r.uid); ok {
		e := kept.(*fnv1.Execution).DeepCopy()
		r.putOutputs(e)
		return e, nil
	}
	e, err := r.execution()
	if err != nil {
		return nil, err
	}
	kept := e.DeepCopy()
	kept.Status.Response, kept.Status.Stdout, kept.Status.Stderr, kept.Status.ResponseHeaders = "", "", "", nil
	s.decoded.Add(r.uid, kept)
	return e, nil
}
