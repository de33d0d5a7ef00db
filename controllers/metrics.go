package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// Execution metrics, served with controller-runtime's on /metrics. Labels
// stay low-cardinality: no function or execution names.
var (
	executionsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kfn_executions_finished_total",
		Help: "Executions that reached completed or failed, by status and reason.",
	}, []string{"status", "reason"})

	executionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kfn_execution_duration_seconds",
		Help:    "Run time of the function's process, as the runner measured it.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 18),
	}, []string{"status"})
)

func init() {
	metrics.Registry.MustRegister(executionsFinished, executionDuration)
}

func observeFinished(st *fnv1.ExecutionStatus) {
	executionsFinished.WithLabelValues(string(st.Status), st.Reason).Inc()
	if st.ExitCode != nil {
		executionDuration.WithLabelValues(string(st.Status)).Observe(st.Duration)
	}
}
