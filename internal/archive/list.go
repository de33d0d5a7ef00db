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
	// Counted, when set, gives the total in place of CountWhere.
	Counted *StatusCount
}

// StatusCount is a total read from the per-status counts (migration
// 0003) rather than counted row by row: the records of a function (of one
// user, when User is set) whose status is one of Statuses (none: any),
// less those whose UIDs are in Exclude (still objects, which the facade
// counts itself).
type StatusCount struct {
	Namespace, FunctionID string
	User                  *string
	Statuses              []string
	Exclude               []string
}

// sql is the statement of c's total, and its arguments.
func (c *StatusCount) sql() (string, []any) {
	args := []any{c.Namespace, c.FunctionID}
	where := "namespace = $1 AND function_id = $2"
	if c.User != nil {
		args = append(args, *c.User)
		where += fmt.Sprintf(" AND user_id = $%d", len(args))
	}
	if len(c.Statuses) > 0 {
		args = append(args, c.Statuses)
		where += fmt.Sprintf(" AND status = ANY($%d::text[])", len(args))
	}
	counted := "SELECT coalesce(sum(n), 0)::bigint FROM execution_counts WHERE " + where
	if len(c.Exclude) == 0 {
		return counted, args
	}
	args = append(args, c.Exclude)
	return fmt.Sprintf("SELECT (%s) - (SELECT count(*) FROM executions WHERE uid = ANY($%d::uuid[]) AND %s)", counted, len(args), where), args
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
	switch {
	case countLimit > 0 && q.Counted != nil:
		sql, args := q.Counted.sql()
		batch.Queue(sql, args...)
	case countLimit > 0:
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
	var n int64
	if countLimit > 0 {
		if err := results.QueryRow().Scan(&n); err != nil {
			return nil, 0, fmt.Errorf("counting in the archive: %w", err)
		}
	}
	return execs, int(min(n, int64(countLimit))), results.Close()
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
