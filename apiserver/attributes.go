package apiserver

import (
	"fmt"
	"time"
)

// attrType is how queries compare an attribute.
type attrType int

const (
	notQueryable attrType = iota
	attrString
	attrInteger
	attrFloat
	attrDatetime
)

func (t attrType) String() string {
	return [...]string{"none", "string", "integer", "double", "datetime"}[t]
}

// span is the response formats from since up to, not including, until;
// a zero since has no start and a zero until no end.
type span struct{ since, until version }

func from(v version) span   { return span{since: v} }
func before(v version) span { return span{until: v} }

// nowhere is no format (they start at 1.0): an attribute queries may use
// that no model shows.
var nowhere = before(v1_0)

func (s span) has(f format) bool {
	return !f.v.less(s.since) && (s.until == version{} || f.v.less(s.until))
}

// attribute is one attribute of the Appwrite Execution model.
type attribute struct {
	name  string
	model span // the formats whose Execution model has it
	query span // the formats whose queries may filter and order by it
	typ   attrType
	// value is what queries compare and, unless json is set, what the
	// model shows.
	value func(r record, f format) any
	json  func(r record, f format) any
}

// attributes is the Execution model of every response format, in
// Appwrite's field order: what each format shows, queries and orders by.
var attributes = []attribute{
	{name: "$id", typ: attrString, value: func(r record, _ format) any { return r.ID }},
	{name: "$createdAt", typ: attrDatetime, value: func(r record, _ format) any { return r.CreatedAt },
		json: func(r record, _ format) any { return appwriteTime(r.CreatedAt) }},
	{name: "$updatedAt", typ: attrDatetime, value: func(r record, _ format) any { return r.UpdatedAt },
		json: func(r record, _ format) any { return appwriteTime(r.UpdatedAt) }},
	// Appwrite 1.9 filters and orders by $sequence, its insertion counter,
	// without showing it. kfn has none: the creation time in microseconds
	// (facade-made IDs carry them) orders and compares the same way.
	{name: "$sequence", model: nowhere, query: from(v1_9), typ: attrInteger, value: func(r record, _ format) any {
		return float64(r.CreatedAt.UnixMicro())
	}},
	{name: "$permissions", value: func(r record, _ format) any { return r.Permissions }},
	{name: "functionId", value: func(r record, _ format) any { return r.FunctionID }},
	// kfn has no deployments: the ID is the Function's metadata.generation
	// when the execution was created.
	{name: "deploymentId", model: from(v1_8), query: from(v1_6), typ: attrString, value: func(r record, _ format) any { return r.DeploymentID }},
	{name: "trigger", typ: attrString, value: func(r record, _ format) any { return r.Trigger }},
	{name: "status", typ: attrString, value: func(r record, f format) any { return r.reportedStatus(f) }},
	{name: "statusCode", model: before(v1_4), query: before(v1_4), typ: attrInteger, value: statusCodeValue, json: statusCodeJSON},
	{name: "response", model: before(v1_4), value: func(r record, _ format) any { return r.Response }},
	{name: "stdout", model: before(v1_4), value: func(r record, _ format) any { return r.Stdout }},
	{name: "stderr", model: before(v1_4), value: func(r record, _ format) any { return r.Stderr }},
	{name: "requestMethod", model: from(v1_4), query: from(v1_6), typ: attrString, value: func(r record, _ format) any { return r.Method }},
	{name: "requestPath", model: from(v1_4), query: from(v1_6), typ: attrString, value: func(r record, _ format) any { return r.Path }},
	{name: "requestHeaders", model: from(v1_4), value: func(r record, f format) any { return r.requestHeaders(f) }},
	{name: "responseStatusCode", model: from(v1_4), query: from(v1_4), typ: attrInteger, value: statusCodeValue, json: statusCodeJSON},
	{name: "responseBody", model: from(v1_4), value: func(r record, _ format) any { return r.responseBody() }},
	{name: "responseHeaders", model: from(v1_4), value: func(r record, _ format) any { return r.responseHeaders() }},
	{name: "logs", model: from(v1_4), value: func(r record, _ format) any { return r.Stdout }},
	{name: "errors", model: from(v1_4), value: func(r record, _ format) any { return r.Stderr }},
	{name: "duration", typ: attrFloat, value: func(r record, _ format) any { return r.Duration }},
	{name: "scheduledAt", model: from(v1_6), value: func(r record, _ format) any {
		if r.ScheduledAt == nil {
			return nil
		}
		return appwriteTime(*r.ScheduledAt)
	}},
}

// Queries compare numbers as JSON has them; the model shows an integer.
func statusCodeValue(r record, _ format) any { return float64(r.StatusCode) }
func statusCodeJSON(r record, _ format) any  { return r.StatusCode }

var attributesByName = func() map[string]*attribute {
	m := make(map[string]*attribute, len(attributes))
	for i := range attributes {
		m[attributes[i].name] = &attributes[i]
	}
	return m
}()

// queryAttribute is the attribute name, if queries of format f may use it.
func queryAttribute(name string, f format) (*attribute, bool) {
	a, ok := attributesByName[name]
	if !ok || a.typ == notQueryable || !a.query.has(f) {
		return nil, false
	}
	return a, true
}

// shown is the attribute's value in the model of format f.
func (a *attribute) shown(r record, f format) any {
	if a.json != nil {
		return a.json(r, f)
	}
	return a.value(r, f)
}

// attr is the value a query sees for an attribute.
func (r record) attr(name string, f format) any {
	if a, ok := attributesByName[name]; ok {
		return a.value(r, f)
	}
	return nil
}

// datetimeLayouts are the datetimes queries and scheduledAt accept: ISO
// 8601 as the SDKs send it, with or without fractional seconds and zone
// (UTC when it has none).
var datetimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000-07:00",
	"2006-01-02T15:04:05.000",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

func parseDatetime(s string) (time.Time, error) {
	for _, l := range datetimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a datetime: %q", s)
}

// appwriteTime is Appwrite's datetime form, e.g. 2020-10-15T06:38:00.000+00:00.
func appwriteTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000-07:00")
}
