package apiserver

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// record is an Execution read the way the Appwrite model sees it, before
// a response format picks and names its fields. All translation between
// Execution objects and Appwrite executions goes through record and the
// attributes table (attributes.go).
type record struct {
	ID          string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Permissions []string
	FunctionID  string
	Trigger     string
	Status      string
	StatusCode  int
	Response    string
	Stdout      string
	Stderr      string
	Duration    float64
	Method      string
	Path        string
	Headers     []header
	ScheduledAt *time.Time
	// ResponseHeaders are all the function set; AllResponseHeaders shows
	// them all (a synchronous create) instead of the allow-listed ones an
	// Appwrite record keeps.
	ResponseHeaders    []header
	AllResponseHeaders bool
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// requestHeaderAllowList are the request headers an Appwrite execution
// record keeps (FUNCTION_ALLOWLIST_HEADERS_REQUEST).
var requestHeaderAllowList = map[string]bool{"content-type": true, "agent": true, "content-length": true, "host": true}

// responseHeaderAllowList are the response headers it keeps
// (FUNCTION_ALLOWLIST_HEADERS_RESPONSE).
var responseHeaderAllowList = map[string]bool{"content-type": true, "content-length": true}

// toRecord reads an Execution. showLogs is false for callers other than
// API keys: Appwrite blanks stdout/stderr (logs/errors) for them.
func toRecord(e *fnv1.Execution, showLogs bool) record {
	r := record{
		ID:          e.Name,
		Permissions: []string{},
		FunctionID:  e.Spec.FunctionName,
		Trigger:     string(e.Spec.Trigger),
		Status:      string(e.Status.Status),
		StatusCode:  int(e.Status.StatusCode),
		Response:    e.Status.Response,
		Duration:    e.Status.Duration,
		Method:      e.Method(),
		Path:        e.Path(),
		Headers:     []header{},
	}
	r.CreatedAt, r.UpdatedAt = times(e)
	if r.Trigger == "" {
		r.Trigger = string(fnv1.TriggerHTTP)
	}
	if e.Spec.ScheduledAt != nil {
		r.ScheduledAt = &e.Spec.ScheduledAt.Time
	}
	if r.Status == "" {
		// Not reconciled yet: what the controller is about to say.
		r.Status = string(fnv1.PhaseWaiting)
		if r.ScheduledAt != nil {
			r.Status = string(fnv1.PhaseScheduled)
		}
	}
	if showLogs {
		r.Stdout, r.Stderr = e.Status.Stdout, e.Status.Stderr
	}
	if e.Spec.UserID != "" {
		r.Permissions = []string{`read("user:` + e.Spec.UserID + `")`}
	}
	for k, v := range e.Spec.Headers {
		if requestHeaderAllowList[strings.ToLower(k)] {
			r.Headers = append(r.Headers, header{strings.ToLower(k), v})
		}
	}
	sort.Slice(r.Headers, func(i, j int) bool { return r.Headers[i].Name < r.Headers[j].Name })
	for k, v := range e.Status.ResponseHeaders {
		r.ResponseHeaders = append(r.ResponseHeaders, header{k, v})
	}
	sort.Slice(r.ResponseHeaders, func(i, j int) bool { return r.ResponseHeaders[i].Name < r.ResponseHeaders[j].Name })
	return r
}

// times are an Execution's creation and last update: when it finished,
// else started, else was created.
func times(e *fnv1.Execution) (created, updated time.Time) {
	created = e.CreationTimestamp.Time
	if t, ok := idTime(e.Name); ok && t.Unix() == created.Unix() {
		// The API server keeps whole seconds; a facade-made ID has the
		// microseconds, which order executions created in one second.
		created = t
	}
	switch {
	case e.Status.CompletionTime != nil:
		return created, e.Status.CompletionTime.Time
	case e.Status.StartTime != nil:
		return created, e.Status.StartTime.Time
	}
	return created, created
}

func (r record) responseHeaders() []header {
	shown := []header{}
	for _, h := range r.ResponseHeaders {
		if r.AllResponseHeaders || responseHeaderAllowList[h.Name] {
			shown = append(shown, h)
		}
	}
	return shown
}

// idTime reads the creation time in an ID made by NewID.
func idTime(id string) (time.Time, bool) {
	if len(id) != 20 {
		return time.Time{}, false
	}
	sec, err1 := strconv.ParseInt(id[:8], 16, 64)
	usec, err2 := strconv.ParseInt(id[8:13], 16, 64)
	if err1 != nil || err2 != nil || usec >= 1e6 {
		return time.Time{}, false
	}
	return time.Unix(sec, usec*1000).UTC(), true
}

// reportedStatus is the status a format shows: before 1.6 a 4xx response
// is a failure (Appwrite 1.4/1.5 and response filter V18); 1.0–1.3 fail
// only on 5xx, like 1.6+.
func (r record) reportedStatus(f format) string {
	if r.Status == string(fnv1.PhaseCompleted) && r.StatusCode >= 400 && r.StatusCode < 500 &&
		f.atLeast(v1_4) && !f.atLeast(v1_6) {
		return string(fnv1.PhaseFailed)
	}
	return r.Status
}

// object is a JSON object that keeps its keys in order.
type object []struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(kv.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o *object) add(key string, value any) {
	*o = append(*o, struct {
		key   string
		value any
	}{key, value})
}

// render is the Execution model of format f.
func (r record) render(f format) object {
	o := make(object, 0, len(attributes))
	for i := range attributes {
		if a := &attributes[i]; a.model.has(f) {
			o.add(a.name, a.shown(r, f))
		}
	}
	return o
}

// renderList is the ExecutionList model: total, then the executions.
func renderList(total int, recs []record, f format) object {
	items := make([]object, 0, len(recs))
	for _, r := range recs {
		items = append(items, r.render(f))
	}
	var o object
	o.add("total", total)
	o.add("executions", items)
	return o
}
