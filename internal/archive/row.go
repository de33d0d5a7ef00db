package archive

import (
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/execindex"
	"github.com/kfn-dev/kfn/internal/kube"
)

// columns are the executions table's, in the order row.values gives them.
const columns = `uid, namespace, function_id, id, created_at, updated_at, finished_at, deployment_id,
	trigger, status, response_status_code, duration, request_method, request_path, scheduled_at,
	user_id, response_body, logs, errors, response_headers, object`

const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// row is one Execution as the table stores it.
type row struct {
	uid                            types.UID
	namespace, functionID, id      string
	createdAt, updatedAt, finished time.Time
	deploymentID, trigger, status  string
	statusCode                     int32
	duration                       float64
	method, path                   string
	scheduledAt                    *time.Time
	userID                         string
	response, logs, errors         string
	responseHeaders                map[string]string
	object                         []byte
}

// toRow reads a finished Execution, which must have its outputs.
func toRow(e *fnv1.Execution) (row, error) {
	if !e.Status.Status.IsFinished() {
		return row{}, fmt.Errorf("execution %s/%s is %q, not finished: only finished records are archived", e.Namespace, e.Name, e.Status.Status)
	}
	if kube.IsStripped(e) {
		return row{}, fmt.Errorf("execution %s/%s is a cached copy without its outputs: read it from the API server", e.Namespace, e.Name)
	}
	if e.UID == "" {
		return row{}, fmt.Errorf("execution %s/%s has no UID: only stored objects are archived", e.Namespace, e.Name)
	}
	r := row{
		uid: e.UID, namespace: e.Namespace, functionID: e.Spec.FunctionName, id: e.Name,
		createdAt: execindex.CreatedAt(e), finished: e.CreationTimestamp.Time,
		deploymentID: e.Annotations[kube.AnnotationFunctionGeneration],
		trigger:      string(e.Spec.Trigger), status: string(e.Status.Status),
		statusCode: e.Status.StatusCode, duration: e.Status.Duration,
		method: e.Method(), path: e.Path(), userID: e.Spec.UserID,
		response: e.Status.Response, logs: e.Status.Stdout, errors: e.Status.Stderr,
		responseHeaders: e.Status.ResponseHeaders,
	}
	if r.trigger == "" {
		r.trigger = string(fnv1.TriggerHTTP)
	}
	if e.Status.CompletionTime != nil {
		r.finished = e.Status.CompletionTime.Time
	}
	// As the facade shows it: the last time the record changed, in the
	// seconds the stored object keeps, so that filters and orders on the
	// column agree with the object read back.
	switch {
	case e.Status.CompletionTime != nil:
		r.updatedAt = e.Status.CompletionTime.Rfc3339Copy().Time
	case e.Status.StartTime != nil:
		r.updatedAt = e.Status.StartTime.Rfc3339Copy().Time
	default:
		r.updatedAt = r.createdAt
	}
	if e.Spec.ScheduledAt != nil {
		r.scheduledAt = &e.Spec.ScheduledAt.Time
	}
	if r.responseHeaders == nil {
		r.responseHeaders = map[string]string{}
	}
	// The outputs have their columns: the object keeps the rest, once. An
	// Appwrite record has no request body (and the operator's cache drops
	// it from finished records), nor does it need kubectl's bookkeeping.
	rest := e.DeepCopy()
	rest.ManagedFields = nil
	delete(rest.Annotations, lastAppliedAnnotation)
	rest.Spec.Body, rest.Spec.Data, rest.Spec.EventData = "", "", ""
	rest.Status.Response, rest.Status.Stdout, rest.Status.Stderr, rest.Status.ResponseHeaders = "", "", "", nil
	var err error
	r.object, err = json.Marshal(rest)
	return r, err
}

func (r *row) values() []any {
	return []any{string(r.uid), r.namespace, r.functionID, r.id, r.createdAt, r.updatedAt, r.finished, r.deploymentID,
		r.trigger, r.status, r.statusCode, r.duration, r.method, r.path, r.scheduledAt,
		r.userID, r.response, r.logs, r.errors, r.responseHeaders, r.object}
}

// execution is the archived Execution, outputs put back.
func (r *row) execution() (*fnv1.Execution, error) {
	e := &fnv1.Execution{}
	if err := json.Unmarshal(r.object, e); err != nil {
		return nil, fmt.Errorf("archived execution %s/%s: %w", r.namespace, r.id, err)
	}
	r.putOutputs(e)
	return e, nil
}

// putOutputs puts the row's outputs, which have their own columns, into e.
func (r *row) putOutputs(e *fnv1.Execution) {
	e.Status.Response, e.Status.Stdout, e.Status.Stderr = r.response, r.logs, r.errors
	if len(r.responseHeaders) > 0 {
		e.Status.ResponseHeaders = r.responseHeaders
	}
}
