package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// annotationScheduledTime marks an Execution a schedule tick created, with
// the tick's time (RFC 3339); the concurrency policy looks at those.
const annotationScheduledTime = "functions.kfn.dev/scheduled-time"

// Trigger outcomes, the "result" label of kfn_trigger_firings_total.
const (
	firingFired    = "fired"
	firingSkipped  = "skipped"
	firingReplaced = "replaced"
	firingMissed   = "missed"
	firingDropped  = "dropped"
)

var triggerFirings = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kfn_trigger_firings_total",
	Help: "Schedule ticks and events by outcome: fired (an Execution was created), skipped (concurrency policy Forbid), " +
		"replaced (Replace deleted an unfinished execution), missed (ticks that never ran), dropped (events not delivered).",
}, []string{"trigger", "result"})

func init() {
	metrics.Registry.MustRegister(triggerFirings)
}

// ScheduleReconciler creates an Execution for each tick of a Function's
// cron schedule and keeps status.schedulePrevious and scheduleNext.
type ScheduleReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder recorder.EventRecorder
	Clock    clock.PassiveClock
}

// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs the due tick, if any, and requeues for the next one.
func (r *ScheduleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	fn := &fnv1.Function{}
	if err := r.Get(ctx, req.NamespacedName, fn); err != nil || fn.DeletionTimestamp != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	status := fn.Status.DeepCopy()
	status.ScheduleNext = nil
	if fn.Spec.Schedule == "" {
		status.SchedulePrevious = nil
		return ctrl.Result{}, r.writeStatus(ctx, fn, status)
	}
	sched, err := parseSchedule(fn.Spec.Schedule, fn.Spec.TimeZone)
	if err != nil || !fn.IsEnabled() || fn.IsSuspended() {
		// The Function controller reports an invalid schedule in the Ready
		// condition; a disabled or suspended schedule simply has no next tick.
		return ctrl.Result{}, r.writeStatus(ctx, fn, status)
	}

	now := r.Clock.Now()
	last := fn.CreationTimestamp.Time
	if status.SchedulePrevious != nil {
		last = status.SchedulePrevious.Time
	}
	plan := planTicks(sched, last, now, fn.Spec.StartingDeadlineSeconds)
	if plan.Missed > 0 {
		triggerFirings.WithLabelValues(string(fnv1.TriggerSchedule), firingMissed).Add(float64(plan.Missed))
		more := ""
		if plan.Missed >= maxCountedTicks {
			more = " or more"
		}
		r.Recorder.Eventf(fn, nil, corev1.EventTypeWarning, "MissedSchedule", "Schedule",
			"%d%s schedule ticks since %s were missed; only the latest runs, if within the starting deadline", plan.Missed, more, last.UTC().Format(time.RFC3339))
	}
	if !plan.TooLate.IsZero() {
		r.Recorder.Eventf(fn, nil, corev1.EventTypeWarning, "MissedSchedule", "Schedule",
			"the tick at %s is past the starting deadline of %ds: not run", plan.TooLate.UTC().Format(time.RFC3339), *fn.Spec.StartingDeadlineSeconds)
		status.SchedulePrevious = ptr.To(metav1.NewTime(plan.TooLate))
	}
	if !plan.Run.IsZero() {
		if err := r.runTick(ctx, fn, plan.Run); err != nil {
			return ctrl.Result{}, err
		}
		status.SchedulePrevious = ptr.To(metav1.NewTime(plan.Run))
	}
	if !plan.Next.IsZero() {
		status.ScheduleNext = ptr.To(metav1.NewTime(plan.Next))
	}
	if err := r.writeStatus(ctx, fn, status); err != nil {
		return ctrl.Result{}, err
	}
	if plan.Next.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: max(plan.Next.Sub(now), time.Millisecond)}, nil
}

// runTick applies the concurrency policy and creates the tick's Execution.
func (r *ScheduleReconciler) runTick(ctx context.Context, fn *fnv1.Function, tick time.Time) error {
	name := tickName(fn.Name, tick)
	active, err := r.unfinishedScheduled(ctx, fn, name)
	if err != nil {
		return err
	}
	at := tick.UTC().Format(time.RFC3339)
	if len(active) > 0 {
		switch fn.Spec.ConcurrencyPolicy {
		case fnv1.ForbidConcurrent:
			triggerFirings.WithLabelValues(string(fnv1.TriggerSchedule), firingSkipped).Inc()
			r.Recorder.Eventf(fn, nil, corev1.EventTypeNormal, "SkippedSchedule", "Schedule",
				"tick at %s skipped: execution %s is unfinished and the concurrency policy is Forbid", at, active[0].Name)
			return nil
		case fnv1.ReplaceConcurrent:
			for _, e := range active {
				err := r.Delete(ctx, e, client.Preconditions{UID: &e.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
				if client.IgnoreNotFound(err) != nil {
					return fmt.Errorf("replacing execution %s: %w", e.Name, err)
				}
				triggerFirings.WithLabelValues(string(fnv1.TriggerSchedule), firingReplaced).Inc()
				r.Recorder.Eventf(fn, e, corev1.EventTypeNormal, "ReplacedExecution", "Schedule",
					"deleted unfinished execution %s for the tick at %s (concurrency policy Replace)", e.Name, at)
			}
		}
	}

	exec := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   fn.Namespace,
			Annotations: map[string]string{annotationScheduledTime: at},
		},
		Spec: fnv1.ExecutionSpec{FunctionName: fn.Name, Trigger: fnv1.TriggerSchedule, Async: true},
	}
	if err := controllerutil.SetOwnerReference(fn, exec, r.Scheme); err != nil {
		return err
	}
	err = r.Create(ctx, exec)
	if apierrors.IsAlreadyExists(err) {
		// Another replica, or this one before a restart, ran the tick.
		log.FromContext(ctx).V(1).Info("tick already ran", "tick", at, "execution", name)
		return nil
	}
	if err != nil {
		r.Recorder.Eventf(fn, nil, corev1.EventTypeWarning, "ScheduleFailed", "Schedule", "creating execution %s for the tick at %s: %v", name, at, err)
		return err
	}
	triggerFirings.WithLabelValues(string(fnv1.TriggerSchedule), firingFired).Inc()
	r.Recorder.Eventf(fn, exec, corev1.EventTypeNormal, "Scheduled", "Schedule", "created execution %s for the tick at %s", name, at)
	return nil
}

// unfinishedScheduled lists the Function's unfinished executions created by
// earlier ticks. They point into the cache (no copy is made on every tick):
// read them, delete them, never change them.
func (r *ScheduleReconciler) unfinishedScheduled(ctx context.Context, fn *fnv1.Function, current string) ([]*fnv1.Execution, error) {
	var execs fnv1.ExecutionList
	if err := r.List(ctx, &execs, client.InNamespace(fn.Namespace),
		client.MatchingFields{kube.UnfinishedExecutionFunctionField: fn.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var active []*fnv1.Execution
	for i := range execs.Items {
		e := &execs.Items[i]
		if _, scheduled := e.Annotations[annotationScheduledTime]; scheduled && e.Name != current &&
			e.DeletionTimestamp == nil && !e.Status.Status.IsFinished() {
			active = append(active, e)
		}
	}
	return active, nil
}

func (r *ScheduleReconciler) writeStatus(ctx context.Context, fn *fnv1.Function, status *fnv1.FunctionStatus) error {
	_, err := patchFunctionStatus(ctx, r.Client, fn, *status)
	return err
}

// SetupWithManager wires the controller to Functions.
func (r *ScheduleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fnv1.Function{}).
		Named("schedule").
		Complete(r)
}
