// Package archive keeps finished Execution records in PostgreSQL, so a
// cluster's history is bounded by the database, not by etcd and the
// informers' memory (docs/archive.md). The operator writes each finished
// record here before it deletes the object; retention deletes rows by age.
package archive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/utils/lru"
)

// ErrNotFound: the archive has no such record.
var ErrNotFound = errors.New("execution not in the archive")

// errSchemaTooNew: a newer kfn migrated the database.
var errSchemaTooNew = errors.New("the archive's schema is newer than this kfn knows: run a newer kfn")

// IsRefused tells an error the database answered (bad credentials, a
// missing grant, a schema from a newer kfn), which waiting will not cure,
// from one of reaching it.
func IsRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) || errors.Is(err, errSchemaTooNew)
}

const defaultConnectTimeout = 10 * time.Second

// Store is the archive: a pool of connections to one PostgreSQL database.
// It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// decoded keeps the listed records' objects without their outputs
	// (see List).
	decoded *lru.Cache

	// migrateMu serialises this process's migration attempts; migrated
	// is set once the schema is current, so later calls cost nothing.
	migrateMu sync.Mutex
	migrated  bool
}

// Open prepares a pool of at most poolSize connections to the database of
// dsn (a libpq connection string or URL: host, TLS, credentials). It does
// not connect: the database may be down when kfn starts, and every call
// that needs it connects, migrating the schema first if it has not yet.
func Open(ctx context.Context, dsn string, poolSize int) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("the archive's connection string is empty")
	}
	if poolSize < 1 {
		return nil, fmt.Errorf("the archive's pool size must be at least 1, not %d", poolSize)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the DSN with its password masked.
		return nil, fmt.Errorf("the archive's connection string: %w", err)
	}
	cfg.MaxConns = int32(min(poolSize, 1<<20))
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A database that does not answer fails the call rather than
		// holding a reconcile worker (the DSN's connect_timeout overrides).
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("the archive's connection pool: %w", err)
	}
	return &Store{pool: pool, decoded: lru.New(decodedEntries)}, nil
}

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Migrate brings the schema up to date (see migrate.go); it returns at
// once when this Store has done so before.
func (s *Store) Migrate(ctx context.Context) error {
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	if s.migrated {
		return nil
	}
	if err := migrate(ctx, s.pool); err != nil {
		return err
	}
	s.migrated = true
	return nil
}
