package archive

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// DefaultRetentionBatch is how many rows one retention statement deletes:
// enough to keep up with a busy archive, few enough that no statement
// holds its locks or writes WAL for long.
const DefaultRetentionBatch = 10000

// Retention deletes archived records that finished more than Age ago,
// every Every, and refreshes the size gauges. It is a manager Runnable
// that runs on the leader only, so replicas do not delete the same rows.
type Retention struct {
	Store *Store
	// Age is the retention (--execution-retention); 0 keeps every record.
	Age   time.Duration
	Every time.Duration
	Batch int
	Clock clock.WithTicker
}

// NeedLeaderElection: only the leader prunes.
func (r *Retention) NeedLeaderElection() bool { return true }

// Start runs a pass at once, then every period, until ctx ends. A failed
// pass (the archive down) is logged and the next period tries again.
func (r *Retention) Start(ctx context.Context) error {
	if r.Every <= 0 {
		return fmt.Errorf("the archive's retention period must be positive, not %s", r.Every)
	}
	logger := log.FromContext(ctx).WithName("archive-retention")
	ticker := r.Clock.NewTicker(r.Every)
	defer ticker.Stop()
	for {
		if err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "archive retention pass failed; the next period tries again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// Pass deletes the expired records and measures what is left.
func (r *Retention) Pass(ctx context.Context) error {
	if r.Age > 0 {
		deleted, err := r.Store.DeleteFinishedBefore(ctx, r.Clock.Now().Add(-r.Age), r.Batch)
		if deleted > 0 {
			log.FromContext(ctx).Info("deleted expired archived executions", "count", deleted, "retention", r.Age)
		}
		if err != nil {
			return err
		}
	}
	return r.Store.Refresh(ctx)
}
