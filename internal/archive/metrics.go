package archive

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The archive's size, served with controller-runtime's metrics on /metrics;
// Refresh sets them (the retention pass does, each period).
var (
	archivedRows = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kfn_archive_rows",
		Help: "Execution records in the archive, at the last retention pass.",
	})
	archivedBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kfn_archive_bytes",
		Help: "Bytes the archive's executions table takes on disk, with its indexes and TOAST data, at the last retention pass.",
	})
)

func init() {
	metrics.Registry.MustRegister(archivedRows, archivedBytes)
}

// Refresh counts the rows and measures the table, for the gauges.
func (s *Store) Refresh(ctx context.Context) error {
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	var rows, bytes int64
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM executions), pg_total_relation_size('executions')`).Scan(&rows, &bytes)
	if err != nil {
		return fmt.Errorf("measuring the archive: %w", err)
	}
	archivedRows.Set(float64(rows))
	archivedBytes.Set(float64(bytes))
	return nil
}
