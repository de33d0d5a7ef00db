package apiserver

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/execindex"
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
	// DeploymentID is the Function's generation the execution was
	// created at ("" for executions the facade did not create).
	DeploymentID string
	Trigger      string
	Status       string
	StatusCode   int
	Response     string
	Stdout       string
	Stderr       string
	Duration     float64
	Method       string
	Path         string
	Headers      []header
	ScheduledAt  *time.Time
	// ResponseHeaders are all the function set.
	ResponseHeaders []header
	// SyncAnswer marks the answer of a synchronous create, which shows what
	// Appwrite answers without storing: every response header (a record
	// keeps the allow-listed ones) and, from 1.4, the response body.
	SyncAnswer bool
	// src is the Execution read: a list that orders summaries renders its
	// page from it.
	src *fnv1.Execution
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// requestHeaderAllowList are the request headers an Appwrite execution
// record keeps (FUNCTION_ALLOWLIST_HEADERS_REQUEST); 1.9 adds
// clientIPHeader.
var requestHeaderAllowList = map[string]bool{"content-type": true, "agent": true, "content-length": true, "host": true}

// clientIPHeader is the request header holding the caller's IP, which the
// facade sets on every Execution it creates (Appwrite 1.6+ passes it to
// the function; 1.9 records keep it).
const clientIPHeader = "x-appwrite-client-ip"

// responseHeaderAllowList are the response headers it keeps
// (FUNCTION_ALLOWLIST_HEADERS_RESPONSE).
var responseHeaderAllowList = map[string]bool{"content-type": true, "content-length": true}

// summarize reads what queries filter, order and search by, without the
// outputs and headers: a list that must look at every execution allocates
// little for each.
func summarize(e *fnv1.Execution) record {
	r := record{
		ID:           e.Name,
		CreatedAt:    execindex.CreatedAt(e),
		FunctionID:   e.Spec.FunctionName,
		DeploymentID: e.Annotations[AnnotationFunctionGeneration],
		Trigger:      string(e.Spec.Trigger),
		Status:       string(e.Status.Status),
		StatusCode:   int(e.Status.StatusCode),
		Duration:     e.Status.Duration,
		Method:       e.Method(),
		Path:         e.Path(),
		src:          e,
	}
	switch {
	case e.Status.CompletionTime != nil:
		r.UpdatedAt = e.Status.CompletionTime.Time
	case e.Status.StartTime != nil:
		r.UpdatedAt = e.Status.StartTime.Time
	default:
		r.UpdatedAt = r.CreatedAt
	}
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
	return r
}

// toRecord reads an Execution of fn, which must have its outputs (not a
// stripped cached copy), with fn's Appwrite ID. showLogs is false for
// callers other than API keys: Appwrite blanks stdout/stderr (logs/errors)
// for them.
func toRecord(e *fnv1.Execution, fn *fnv1.Function, showLogs bool) record {
	r := summarize(e)
	r.FunctionID = functionAppwriteID(fn)
	r.Permissions, r.Headers, r.Response = []string{}, []header{}, e.Status.Response
	if showLogs {
		r.Stdout, r.Stderr = e.Status.Stdout, e.Status.Stderr
	}
	if e.Spec.UserID != "" {
		r.Permissions = []string{`read("user:` + e.Spec.UserID + `")`}
	}
	for k, v := range e.Spec.Headers {
		if k := strings.ToLower(k); requestHeaderAllowList[k] || k == clientIPHeader {
			r.Headers = append(r.Headers, header{k, v})
		}
	}
	sort.Slice(r.Headers, func(i, j int) bool { return r.Headers[i].Name < r.Headers[j].Name })
	for k, v := range e.Status.ResponseHeaders {
		r.ResponseHeaders = append(r.ResponseHeaders, header{k, v})
	}
	sort.Slice(r.ResponseHeaders, func(i, j int) bool { return r.ResponseHeaders[i].Name < r.ResponseHeaders[j].Name })
	return r
}

func (r record) responseHeaders() []header {
	shown := []header{}
	for _, h := range r.ResponseHeaders {
		if r.SyncAnswer || responseHeaderAllowList[h.Name] {
			shown = append(shown, h)
		}
	}
	return shown
}

// requestHeaders are the request headers format f's record keeps: the
// client IP from 1.9.
func (r record) requestHeaders(f format) []header {
	if f.atLeast(v1_9) {
		return r.Headers
	}
	shown := make([]header, 0, len(r.Headers))
	for _, h := range r.Headers {
		if h.Name != clientIPHeader {
			shown = append(shown, h)
		}
	}
	return shown
}

// responseBody is the body formats 1.4+ show: Appwrite stores none, so
// only a synchronous create's answer has it.
func (r record) responseBody() string {
	if r.SyncAnswer {
		return r.Response
	}
	return ""
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

// MarshalJSON writes the object itself: encoding/json would marshal each
// value by reflection and compact every nested object's output again,
// most of what a list request costs.
func (o object) MarshalJSON() ([]byte, error) { return o.appendJSON(make([]byte, 0, 1024)) }

func (o object) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, kv := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONString(b, kv.key), ':')
		var err error
		if b, err = appendJSONValue(b, kv.value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONValue writes the values the models hold; any other kind as
// encoding/json does.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case object:
		return v.appendJSON(b)
	case []object:
		return appendJSONArray(b, v, func(b []byte, o object) ([]byte, error) { return o.appendJSON(b) })
	case []string:
		return appendJSONArray(b, v, func(b []byte, s string) ([]byte, error) { return appendJSONString(b, s), nil })
	case []rawJSON:
		return appendJSONArray(b, v, func(b []byte, raw rawJSON) ([]byte, error) { return append(b, raw...), nil })
	case []header:
		return appendJSONArray(b, v, func(b []byte, h header) ([]byte, error) {
			b = append(appendJSONString(append(b, `{"name":`...), h.Name), `,"value":`...)
			return append(appendJSONString(b, h.Value), '}'), nil
		})
	}
	raw, err := json.Marshal(v)
	return append(b, raw...), err
}

func appendJSONArray[T any](b []byte, items []T, each func([]byte, T) ([]byte, error)) ([]byte, error) {
	b = append(b, '[')
	for i, item := range items {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = each(b, item); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendJSONString writes s as encoding/json does, escapes included (<,
// > and & too, U+2028 and U+2029, invalid UTF-8 as U+FFFD): outputs are
// often multi-line, and encoding/json costs an allocation per string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		size := 1
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < utf8.RuneSelf {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
				break
			}
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			default:
				b = append(b, s[i:i+size]...)
			}
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
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

// renderList is the ExecutionList model: total, then the executions,
// each rendered in the request's format.
func renderList(total int, items []rawJSON) object {
	var o object
	o.add("total", total)
	o.add("executions", items)
	return o
}
