package archive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// upsert writes a row, replacing the one of the same UID: writing a record
// twice (a retried reconcile, a second replica) stores it once.
var upsert = func() string {
	names := strings.Split(columns, ",")
	params, sets := make([]string, len(names)), make([]string, len(names))
	for i, name := range names {
		name = strings.TrimSpace(name)
		params[i], sets[i] = fmt.Sprintf("$%d", i+1), name+" = EXCLUDED."+name
	}
	return "INSERT INTO executions (" + columns + ") VALUES (" + strings.Join(params, ", ") +
		") ON CONFLICT (uid) DO UPDATE SET " + strings.Join(sets, ", ")
}()

// Put archives finished Executions, which must have their outputs (not a
// stripped cached copy), in one transaction: when it returns nil every
// record is committed, and the objects may go.
func (s *Store) Put(ctx context.Context, execs ...*fnv1.Execution) error {
	rows := make([]row, 0, len(execs))
	for _, e := range execs {
		r, err := toRow(e)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil
	}
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for i := range rows {
			batch.Queue(upsert, rows[i].values()...)
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return fmt.Errorf("archiving %d executions: %w", len(rows), err)
	}
	return nil
}

// Has reports whether the Execution of this UID is archived.
func (s *Store) Has(ctx context.Context, uid types.UID) (bool, error) {
	if err := s.Migrate(ctx); err != nil {
		return false, err
	}
	var found bool
	err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM executions WHERE uid = $1)", string(uid)).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("reading the archive: %w", err)
	}
	return found, nil
}

// Get reads one archived Execution of a function, with its outputs, or
// ErrNotFound. Should an ID have been used twice (an object deleted and
// created again), the newest record is the one.
func (s *Store) Get(ctx context.Context, namespace, functionID, id string) (*fnv1.Execution, error) {
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	r, err := scanRow(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM executions
		WHERE namespace = $1 AND id = $2 AND function_id = $3 ORDER BY created_at DESC LIMIT 1`,
		namespace, id, functionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading the archive: %w", err)
	}
	return r.execution()
}

// scanRow reads a row of all the columns, in their order.
func scanRow(src pgx.Row) (row, error) {
	var r row
	var uid string
	err := src.Scan(&uid, &r.namespace, &r.functionID, &r.id, &r.createdAt, &r.updatedAt, &r.finished,
		&r.deploymentID, &r.trigger, &r.status, &r.statusCode, &r.duration, &r.method, &r.path, &r.scheduledAt,
		&r.userID, &r.response, &r.logs, &r.errors, &r.responseHeaders, &r.object)
	r.uid = types.UID(uid)
	return r, err
}

// Delete deletes a function's archived record, reporting whether there
// was one.
func (s *Store) Delete(ctx context.Context, namespace, functionID, id string) (bool, error) {
	if err := s.Migrate(ctx); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM executions WHERE namespace = $1 AND id = $2 AND function_id = $3", namespace, id, functionID)
	if err != nil {
		return false, fmt.Errorf("deleting from the archive: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// DeleteFinishedBefore deletes the records that finished before cutoff,
// batch rows per statement so no statement holds locks or builds WAL for
// long, and says how many went.
func (s *Store) DeleteFinishedBefore(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("the retention batch must be at least 1 row, not %d", batch)
	}
	if err := s.Migrate(ctx); err != nil {
		return 0, err
	}
	var deleted int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM executions WHERE uid IN
			(SELECT uid FROM executions WHERE finished_at < $1 LIMIT $2)`, cutoff, batch)
		if err != nil {
			return deleted, fmt.Errorf("deleting archived executions that finished before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		deleted += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return deleted, nil
		}
	}
}
