package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

const (
	// annotationEventDepth counts the events that led to an Execution.
	annotationEventDepth = "functions.kfn.dev/event-depth"
	// annotationEventDataDropped lists the top-level fields left out of
	// spec.eventData to fit it in its 64 KiB.
	annotationEventDataDropped = "functions.kfn.dev/event-data-dropped"

	// maxEventDepth stops chains of functions triggering each other through
	// their executions' events (A on B's executions, B on A's): an
	// execution that deep triggers nothing.
	maxEventDepth = 5

	// DefaultEventReplayWindow: after a restart the operator sees every
	// object again, as if created; only those created this recently (and
	// after the function) count as created, so a restart neither replays
	// old creations nor loses those made while it was briefly down.
	DefaultEventReplayWindow = 10 * time.Minute
)

// eventFiring is one event for one function: the work item of the event
// controller. Each is retried until its Execution exists.
type eventFiring struct {
	Namespace string
	Function  string
	// Execution is the deterministic name of the Execution to create.
	Execution string
	Event     string
	Data      string
	Dropped   string
	Depth     int
}

// EventReconciler turns changes of Functions, Executions and the
// configured Kubernetes resources into Appwrite-style events, and each
// event a function subscribes to into an Execution with trigger "event".
type EventReconciler struct {
	client.Client
	// APIReader reads an Execution whose cached copy was trimmed (see
	// payloadSource), so an event's payload is the whole record.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	Clock     clock.PassiveClock
	// Resources are the Kubernetes resources whose changes are events, as
	// <resource>.<namespace>.<name>.<action>. The operator needs get, list
	// and watch on them, granted separately.
	Resources []schema.GroupVersionResource
	// ReplayWindow: see DefaultEventReplayWindow.
	ReplayWindow time.Duration
}

// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile creates the Execution of one event firing.
func (r *EventReconciler) Reconcile(ctx context.Context, f eventFiring) (ctrl.Result, error) {
	fn := &fnv1.Function{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: f.Function}, fn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if fn.DeletionTimestamp != nil || !fn.IsEnabled() {
		return ctrl.Result{}, nil
	}
	exec := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{
			Name:        f.Execution,
			Namespace:   f.Namespace,
			Annotations: map[string]string{annotationEventDepth: strconv.Itoa(f.Depth)},
		},
		Spec: fnv1.ExecutionSpec{
			FunctionName: fn.Name, Trigger: fnv1.TriggerEvent, Async: true,
			Event: f.Event, EventData: f.Data,
		},
	}
	if f.Dropped != "" {
		exec.Annotations[annotationEventDataDropped] = f.Dropped
	}
	if err := controllerutil.SetOwnerReference(fn, exec, r.Scheme); err != nil {
		return ctrl.Result{}, err
	}
	err := r.Create(ctx, exec)
	if apierrors.IsAlreadyExists(err) {
		log.FromContext(ctx).V(1).Info("event already delivered", "event", f.Event, "execution", f.Execution)
		return ctrl.Result{}, nil
	}
	if err != nil {
		r.Recorder.Eventf(fn, nil, corev1.EventTypeWarning, "EventFailed", "Event", "creating execution %s for event %s: %v", f.Execution, f.Event, err)
		return ctrl.Result{}, err
	}
	triggerFirings.WithLabelValues(string(fnv1.TriggerEvent), firingFired).Inc()
	r.Recorder.Eventf(fn, exec, corev1.EventTypeNormal, "EventTriggered", "Event", "created execution %s for event %s", exec.Name, f.Event)
	return ctrl.Result{}, nil
}

// describeFunc names the event of an action on an object; ok is false
// when the change is no event.
type describeFunc func(action string, obj, old client.Object) (ev eventSegments, ownFunction string, ok bool)

func describeFunction(action string, obj, old client.Object) (eventSegments, string, bool) {
	if action == "update" && obj.GetGeneration() == old.GetGeneration() {
		return nil, "", false // status or metadata only
	}
	return eventSegments{"functions", obj.GetName(), action}, "", true
}

func describeExecution(action string, obj, old client.Object) (eventSegments, string, bool) {
	exec := obj.(*fnv1.Execution)
	switch action {
	case "delete":
		return nil, "", false // Appwrite has no execution delete event
	case "update":
		if exec.Status.Status == old.(*fnv1.Execution).Status.Status {
			return nil, "", false // an update is a change of status
		}
	}
	return eventSegments{"functions", exec.Spec.FunctionName, "executions", exec.Name, action}, exec.Spec.FunctionName, true
}

func describeResource(resource string) describeFunc {
	return func(action string, obj, old client.Object) (eventSegments, string, bool) {
		if action == "update" && obj.GetGeneration() != 0 && obj.GetGeneration() == old.GetGeneration() {
			return nil, "", false // objects with a spec: status or metadata only
		}
		return eventSegments{resource, obj.GetNamespace(), obj.GetName(), action}, "", true
	}
}

// firings lists the executions an event causes: one per function in the
// object's namespace that is enabled, subscribes to the event, is not the
// function whose execution the event is about, and (for creations) existed
// when the object was created.
func (r *EventReconciler) firings(ctx context.Context, describe describeFunc, action string, obj, old client.Object) []eventFiring {
	if obj.GetNamespace() == "" {
		return nil
	}
	ev, own, ok := describe(action, obj, old)
	if !ok {
		return nil
	}
	var fns fnv1.FunctionList
	// Runs for every change of every watched object: the Functions are only
	// read, so the cache's objects are not copied.
	if err := r.List(ctx, &fns, client.InNamespace(obj.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "listing functions for an event", "event", ev.String())
		return nil
	}
	var out []eventFiring
	var data string
	var dropped []string
	for i := range fns.Items {
		fn := &fns.Items[i]
		if fn.Name == own || fn.DeletionTimestamp != nil || !fn.IsEnabled() || !matchesAny(fn.Spec.Events, ev) {
			continue
		}
		if action == "create" && obj.GetCreationTimestamp().Time.Before(fn.CreationTimestamp.Time) {
			continue
		}
		depth := eventDepth(obj) + 1
		if depth > maxEventDepth {
			triggerFirings.WithLabelValues(string(fnv1.TriggerEvent), firingDropped).Inc()
			r.Recorder.Eventf(fn, nil, corev1.EventTypeWarning, "EventDropped", "Event",
				"event %s not delivered: it comes from a chain of %d event-triggered executions", ev.String(), depth-1)
			continue
		}
		if data == "" {
			data, dropped = eventData(r.payloadSource(ctx, obj), r.Scheme)
		}
		out = append(out, eventFiring{
			Namespace: fn.Namespace, Function: fn.Name, Execution: eventExecutionName(fn.Name, obj, action),
			Event: ev.String(), Data: data, Dropped: strings.Join(dropped, ","), Depth: depth,
		})
	}
	return out
}

// payloadSource is the object an event's payload is made of. The cache
// keeps finished Executions trimmed (no request, and no outputs when they
// are large: kube.CacheOptions), so those are read from the API server;
// only for events some function subscribes to, so the reads follow the
// deliveries, not the stored history. When the read fails, the payload is
// the cached copy.
func (r *EventReconciler) payloadSource(ctx context.Context, obj client.Object) client.Object {
	exec, ok := obj.(*fnv1.Execution)
	if !ok || r.APIReader == nil || (!exec.Status.Status.IsFinished() && !kube.IsStripped(exec)) {
		return obj
	}
	live := &fnv1.Execution{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(exec), live); err != nil {
		log.FromContext(ctx).Error(err, "reading the execution for an event's payload; the payload lacks its request and large outputs", "execution", exec.Name)
		return obj
	}
	return live
}

// handler turns informer notifications into firings.
func (r *EventReconciler) handler(describe describeFunc) handler.TypedEventHandler[client.Object, eventFiring] {
	add := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[eventFiring], action string, obj, old client.Object) {
		for _, f := range r.firings(ctx, describe, action, obj, old) {
			q.Add(f)
		}
	}
	return handler.TypedFuncs[client.Object, eventFiring]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[eventFiring]) {
			if e.IsInInitialList && r.Clock.Since(e.Object.GetCreationTimestamp().Time) > r.replayWindow() {
				return // seen again after a restart, created long ago
			}
			add(ctx, q, "create", e.Object, nil)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[eventFiring]) {
			if e.ObjectNew.GetResourceVersion() == e.ObjectOld.GetResourceVersion() {
				return // a resync, no change
			}
			add(ctx, q, "update", e.ObjectNew, e.ObjectOld)
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[eventFiring]) {
			add(ctx, q, "delete", e.Object, nil)
		},
	}
}

func (r *EventReconciler) replayWindow() time.Duration {
	if r.ReplayWindow > 0 {
		return r.ReplayWindow
	}
	return DefaultEventReplayWindow
}

// SetupWithManager watches Functions, Executions and the configured
// resources (namespaced ones only: events reach functions in the object's
// namespace).
func (r *EventReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := builder.TypedControllerManagedBy[eventFiring](mgr).Named("events").
		WatchesRawSource(source.TypedKind[client.Object, eventFiring](mgr.GetCache(), &fnv1.Function{}, r.handler(describeFunction))).
		WatchesRawSource(source.TypedKind[client.Object, eventFiring](mgr.GetCache(), &fnv1.Execution{}, r.handler(describeExecution)))
	for _, gvr := range r.Resources {
		gvk, err := mgr.GetRESTMapper().KindFor(gvr)
		if err != nil {
			return fmt.Errorf("watch resource %s: %w", gvr, err)
		}
		mapping, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("watch resource %s: %w", gvr, err)
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			return fmt.Errorf("watch resource %s is cluster-scoped: events only reach functions in the object's namespace", gvr)
		}
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gvk)
		b = b.WatchesRawSource(source.TypedKind[client.Object, eventFiring](mgr.GetCache(), obj, r.handler(describeResource(gvr.Resource))))
	}
	return b.Complete(r)
}
