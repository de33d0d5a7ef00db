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

// List reads the records of q, in its order, with their outputs.
func (s *Store) List(ctx context.Context, q ListQuery) ([]*fnv1.Execution, error) {
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	args := append(q.Args[:len(q.Args):len(q.Args)], q.Limit)
	rows, err := s.pool.Query(ctx, fmt.Sprintf("SELECT %s FROM executions WHERE %s ORDER BY %s LIMIT $%d",
		columns, q.Where, q.OrderBy, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("listing the archive: %w", err)
	}
	execs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*fnv1.Execution, error) {
		r, err := scanRow(row)
		if err != nil {
			return nil, err
		}
		return r.execution()
	})
	if err != nil {
		return nil, fmt.Errorf("listing the archive: %w", err)
	}
	return execs, nil
}

// Count counts the records of q's CountWhere, up to limit.
func (s *Store) Count(ctx context.Context, q ListQuery, limit int) (int, error) {
	if err := s.Migrate(ctx); err != nil {
		return 0, err
	}
	args := append(q.Args[:q.CountArgs:q.CountArgs], limit)
	var n int
	err := s.pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM executions WHERE %s LIMIT $%d) AS page",
		q.CountWhere, len(args)), args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting in the archive: %w", err)
	}
	return n, nil
}
