package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kfn-dev/kfn/controllers"
	"github.com/kfn-dev/kfn/internal/archive"
)

// archiveDSNEnv holds the archive's connection string when no file does.
const archiveDSNEnv = "KFN_ARCHIVE_DSN"

// archiveOptions configure the execution archive (docs/archive.md). It is
// off unless a connection string is given: kfn then works as without it.
type archiveOptions struct {
	dsnFile  string
	keepLive time.Duration
	poolSize int
	// explicit are the --archive-* flags given, which need an archive.
	explicit []string
}

// bindArchiveFlags binds the operator's archive flags.
func bindArchiveFlags(fs *flag.FlagSet, o *archiveOptions) {
	bindArchiveConnectionFlags(fs, o)
	fs.DurationVar(&o.keepLive, "archive-keep-live", time.Hour, "with the archive: how long a finished execution stays an object once archived, so kubectl still shows recent runs")
}

// bindArchiveConnectionFlags binds how to reach the archive, which the
// operator and the facade share.
func bindArchiveConnectionFlags(fs *flag.FlagSet, o *archiveOptions) {
	fs.StringVar(&o.dsnFile, "archive-dsn-file", "", "file holding the connection string (libpq key=value or postgres:// URL, TLS settings included) of the PostgreSQL execution archive; or set "+
		archiveDSNEnv+" (neither: no archive)")
	fs.IntVar(&o.poolSize, "archive-pool-size", 4, "with the archive: the most connections kfn opens to PostgreSQL")
}

// noteExplicitArchiveFlags records which --archive-* flags were given.
func noteExplicitArchiveFlags(fs *flag.FlagSet, o *archiveOptions) {
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "archive-") && f.Name != "archive-dsn-file" {
			o.explicit = append(o.explicit, "--"+f.Name)
		}
	})
}

// dsn is the connection string, "" when the archive is off.
func (o archiveOptions) dsn() (string, error) {
	env := strings.TrimSpace(os.Getenv(archiveDSNEnv))
	if o.dsnFile == "" {
		return env, nil
	}
	if env != "" {
		return "", fmt.Errorf("the archive's connection string is in both --archive-dsn-file and %s: set one", archiveDSNEnv)
	}
	raw, err := os.ReadFile(o.dsnFile)
	if err != nil {
		return "", fmt.Errorf("--archive-dsn-file: %w", err)
	}
	dsn := strings.TrimSpace(string(raw))
	if dsn == "" {
		return "", fmt.Errorf("--archive-dsn-file %s is empty", o.dsnFile)
	}
	return dsn, nil
}

// openArchive opens the archive, or returns nil when it is off. A database
// that cannot be reached yet is not fatal: executions still run, and
// finished ones stay objects until it can be.
func openArchive(ctx context.Context, o archiveOptions) (*archive.Store, error) {
	if o.keepLive < 0 {
		return nil, fmt.Errorf("--archive-keep-live must not be negative, not %s", o.keepLive)
	}
	dsn, err := o.dsn()
	if err != nil || dsn == "" {
		if err == nil && len(o.explicit) > 0 {
			err = fmt.Errorf("the archive is off (neither --archive-dsn-file nor %s is set), so %s cannot apply", archiveDSNEnv, strings.Join(o.explicit, ", "))
		}
		return nil, err
	}
	store, err := archive.Open(ctx, dsn, o.poolSize)
	if err != nil {
		return nil, err
	}
	migrateCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := store.Migrate(migrateCtx); err != nil {
		if archive.IsRefused(err) { // a wrong password, schema or grant: say so now
			store.Close()
			return nil, err
		}
		ctrl.Log.Error(err, "the archive cannot be reached yet; finished executions stay objects until it can")
	}
	return store, nil
}

// archiveRetentionEvery is how often the leader deletes expired archived
// records: often enough that a pass has little to do, and each is cheap
// (an index range on the finish time).
const archiveRetentionEvery = 10 * time.Minute

// setUpArchive adds the controller that moves finished Executions into
// the archive, and the archive's retention by age (--execution-retention).
func setUpArchive(mgr ctrl.Manager, o managerOptions, store *archive.Store) error {
	if err := (&controllers.ArchiveReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Archive:   store,
		KeepLive:  o.archive.keepLive,
		Clock:     clock.RealClock{},
		// One per connection: each reconcile holds one while it writes.
		Workers: o.archive.poolSize,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return mgr.Add(&archive.Retention{
		Store: store, Age: o.retention, Every: archiveRetentionEvery,
		Batch: archive.DefaultRetentionBatch, Clock: clock.RealClock{},
	})
}
