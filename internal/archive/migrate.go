package archive

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, applied in order: NNNN_what.sql.
// A released file never changes; a change of schema is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key under which replicas migrate
// ("kfn-arch" in ASCII): one at a time, the others wait, then see the
// versions it applied and apply nothing.
const migrationLock = 0x6b666e2d61726368

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded files, ordered by version.
func loadMigrations(files fs.FS) ([]migration, error) {
	names, err := fs.Glob(files, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var all []migration
	for _, name := range names {
		base := path.Base(name)
		digits, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(digits)
		if !ok || err != nil || version < 1 {
			return nil, fmt.Errorf("migration %s: the name must be a version number >= 1, _, and a description", base)
		}
		sql, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, err
		}
		all = append(all, migration{version: version, name: base, sql: string(sql)})
	}
	slices.SortFunc(all, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(all); i++ {
		if all[i-1].version == all[i].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", all[i-1].name, all[i].name)
		}
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no migrations")
	}
	return all, nil
}

// migrate applies the migrations the database lacks, all in one
// transaction under an advisory lock: two replicas starting together
// never both apply one, and a failed migration leaves no half schema.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	all, err := loadMigrations(migrations)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return err
		}
		if latest := all[len(all)-1].version; current > latest {
			return fmt.Errorf("%w (version %d, this kfn knows %d)", errSchemaTooNew, current, latest)
		}
		for _, m := range all {
			if m.version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrating the archive's schema: %w", err)
	}
	return nil
}
