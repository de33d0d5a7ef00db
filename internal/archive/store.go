package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
// record is committed, and the objects may go. A record a client deleted
// (Delete) is not written back.
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
	// In the order the counters' triggers lock their rows.
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.functionID, b.functionID),
			cmp.Compare(a.userID, b.userID), cmp.Compare(a.status, b.status))
	})
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	uids := make([]string, len(rows))
	for i := range rows {
		uids[i] = string(rows[i].uid)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUIDs(ctx, tx, uids); err != nil {
			return err
		}
		deleted, err := deletedAmong(ctx, tx, uids)
		if err != nil {
			return err
		}
		batch := &pgx.Batch{}
		for i := range rows {
			if !deleted[string(rows[i].uid)] {
				batch.Queue(upsert, rows[i].values()...)
			}
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

// Delete deletes a function's archived record, and keeps it from being
// archived again: also the Executions of the given UIDs (the object a
// client deletes may not be archived yet). It reports whether a row went.
func (s *Store) Delete(ctx context.Context, namespace, functionID, id string, uids ...types.UID) (bool, error) {
	if err := s.Migrate(ctx); err != nil {
		return false, err
	}
	var deleted int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT uid::text FROM executions WHERE namespace = $1 AND id = $2 AND function_id = $3", namespace, id, functionID)
		if err != nil {
			return err
		}
		all, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, uid := range uids {
			all = append(all, string(uid))
		}
		if err := lockUIDs(ctx, tx, all); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO deleted_executions (uid) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING", all); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM executions WHERE uid = ANY($1::uuid[])", all)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("deleting from the archive: %w", err)
	}
	return deleted > 0, nil
}

// uidLockClass keeps the per-UID advisory locks apart from other users of
// advisory locks ("kfn" and 1).
const uidLockClass = 0x6b666e01

// lockUIDs takes a transaction lock per UID, in one order so that two
// transactions never wait on each other in a cycle.
func lockUIDs(ctx context.Context, tx pgx.Tx, uids []string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(u::text))
		FROM (SELECT DISTINCT unnest($2::uuid[]) AS u ORDER BY 1) AS sorted`, int32(uidLockClass), uids)
	return err
}

// deletedAmong are the UIDs a client deleted.
func deletedAmong(ctx context.Context, tx pgx.Tx, uids []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, "SELECT uid::text FROM deleted_executions WHERE uid = ANY($1::uuid[])", uids)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	deleted := make(map[string]bool, len(found))
	for _, uid := range found {
		deleted[uid] = true
	}
	return deleted, err
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
			break
		}
	}
	// A deleted record's UID need not be kept longer than the record.
	if _, err := s.pool.Exec(ctx, "DELETE FROM deleted_executions WHERE deleted_at < $1", cutoff); err != nil {
		return deleted, fmt.Errorf("forgetting deleted executions older than %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return deleted, nil
}
