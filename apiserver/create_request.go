package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kfn-dev/kfn/internal/contract"
)

// Request limits of create execution.
const (
	maxData        = 8192     // 1.0–1.3 data, in characters
	maxBody        = 10 << 20 // Appwrite 1.6+; over fnv1.MaxBodyBytes it travels in body Secrets
	maxPath        = 2048
	maxHeaders     = 100
	maxHeadersSize = 16384
	maxRequestBody = 11 << 20 // a little above Appwrite's 10 MiB body limit
	// smallBody is the largest request body the body budget does not
	// count: one whose payload fits in the Execution (fnv1.MaxBodyBytes),
	// with room for the other parameters.
	smallBody = 128 << 10
)

// createParams are the parameters of a create execution request,
// validated for its format. Method and path stay empty when not given:
// the Execution defaults them.
type createParams struct {
	data string
	// body is a slice of the request's bytes, not a copy, when the JSON
	// string needs no unescaping (see params.bytes).
	body        []byte
	async       bool
	path        string
	method      string
	headers     map[string]string
	scheduledAt *time.Time
}

// parseCreate validates the create execution parameters of a format.
func parseCreate(raw []byte, f format, now time.Time) (createParams, *apiError) {
	var p createParams
	in, aerr := readParams(raw)
	if aerr != nil {
		return p, aerr
	}
	if p.async, aerr = in.async(f); aerr != nil {
		return p, aerr
	}
	if !f.atLeast(v1_4) {
		p.data, aerr = in.str("data", maxData, "chars")
		return p, aerr
	}
	if p.body, aerr = in.bytes("body", maxBody); aerr != nil {
		return p, aerr
	}
	if p.path, aerr = in.str("path", maxPath, "chars"); aerr != nil {
		return p, aerr
	}
	if p.method, aerr = in.method(f); aerr != nil {
		return p, aerr
	}
	if v, ok := in.get("headers"); ok {
		if p.headers, aerr = parseHeaders(v, f); aerr != nil {
			return p, aerr
		}
	}
	if f.atLeast(v1_6) {
		p.scheduledAt, aerr = in.scheduledAt(p.async, now)
	}
	return p, aerr
}

// params is a create request's JSON body, by parameter.
type params map[string]json.RawMessage

// readBody reads a create request's body: into one buffer of its declared
// size, or, of unknown size, up to the limit.
func readBody(body io.Reader, size int64) ([]byte, *apiError) {
	if body == nil || size == 0 {
		return nil, nil
	}
	if size > 0 {
		raw := make([]byte, size)
		if _, err := io.ReadFull(body, raw); err != nil {
			return nil, newErrorf(errArgumentInvalid, "Could not read the request body: %v", err)
		}
		return raw, nil
	}
	// One byte over the limit tells a body that is too large.
	raw, err := io.ReadAll(io.LimitReader(body, maxRequestBody+1))
	if err != nil {
		return nil, newErrorf(errArgumentInvalid, "Could not read the request body: %v", err)
	}
	if len(raw) > maxRequestBody {
		return nil, tooLarge()
	}
	return raw, nil
}

func tooLarge() *apiError {
	return newErrorf(errArgumentInvalid, "Request body is larger than %d bytes.", maxRequestBody)
}

// readParams splits a JSON object body into its parameters, each a slice
// of raw: a 10 MiB body is not copied.
func readParams(raw []byte) (params, *apiError) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return params{}, nil
	}
	if !json.Valid(t) || t[0] != '{' {
		// encoding/json names the problem; a map type of its own would
		// name itself in the message.
		err := json.Unmarshal(t, &map[string]json.RawMessage{})
		return nil, newErrorf(errArgumentInvalid, "Invalid JSON body: %v", err)
	}
	in, err := objectMembers(t)
	if err != nil {
		return nil, newErrorf(errArgumentInvalid, "Invalid JSON body: %v", err)
	}
	return in, nil
}

// get returns a parameter; null counts as absent.
func (in params) get(name string) (json.RawMessage, bool) {
	v, ok := in[name]
	if !ok || bytes.Equal(v, []byte("null")) {
		return nil, false
	}
	return v, true
}

// str reads a string parameter of at most max characters ("chars") or bytes.
func (in params) str(name string, max int, unit string) (string, *apiError) {
	v, ok := in.get(name)
	if !ok {
		return "", nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		n := len(s)
		if unit == "chars" {
			n = utf8.RuneCountInString(s)
		}
		if n <= max {
			return s, nil
		}
	}
	return "", invalidParam(name, fmt.Sprintf("Value must be a valid string and no longer than %d %s", max, unit))
}

// bytes reads a string parameter of at most max bytes: a slice of the
// request when the string has no escapes and is valid UTF-8 (what
// encoding/json would return unchanged), else its decoded copy.
func (in params) bytes(name string, max int) ([]byte, *apiError) {
	v, ok := in.get(name)
	if !ok {
		return nil, nil
	}
	if len(v) >= 2 && v[0] == '"' {
		var s string
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			if len(inner) <= max {
				return inner, nil
			}
		} else if json.Unmarshal(v, &s) == nil && len(s) <= max {
			return []byte(s), nil
		}
	}
	return nil, invalidParam(name, fmt.Sprintf("Value must be a valid string and no longer than %d bytes", max))
}

// async is a strict JSON boolean before 1.6, then also "true"/"1"/….
func (in params) async(f format) (bool, *apiError) {
	v, ok := in.get("async")
	if !ok {
		return false, nil
	}
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b, nil
	}
	if parsed, ok := looseBool(v); ok && f.atLeast(v1_6) {
		return parsed, nil
	}
	return false, invalidParam("async", "Value must be a valid boolean")
}

func (in params) method(f format) (string, *apiError) {
	v, ok := in.get("method")
	if !ok {
		return "", nil
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	if f.atLeast(v1_8) {
		methods = append(methods, "HEAD")
	}
	var m string
	if json.Unmarshal(v, &m) != nil || !slices.Contains(methods, m) {
		return "", invalidParam("method", fmt.Sprintf("Value must be one of (%s)", strings.Join(methods, ", ")))
	}
	return m, nil
}

// scheduledAt reads the time of a delayed execution (1.6+), which must
// be asynchronous, at least a minute away and of minute precision
// (Appwrite's DatetimeValidator with PRECISION_MINUTES refuses seconds).
func (in params) scheduledAt(async bool, now time.Time) (*time.Time, *apiError) {
	v, ok := in.get("scheduledAt")
	if !ok || bytes.Equal(v, []byte(`""`)) {
		return nil, nil
	}
	if !async {
		return nil, newErrorf(errBadRequest, "Scheduled executions must run asynchronously. Set scheduledAt to a future date, or set async to true.")
	}
	at, ok := parseScheduledAt(v)
	if !ok || at.Before(now.Add(time.Minute)) || !at.Equal(at.Truncate(time.Minute)) {
		return nil, newErrorf(errBadRequest, "Execution schedule must be a valid date, and at least 1 minute from now")
	}
	return &at, nil
}

// parseScheduledAt reads a datetime as the SDKs send it, with or without
// fractional seconds and zone (UTC when it has none).
func parseScheduledAt(v json.RawMessage) (time.Time, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return time.Time{}, false
	}
	t, err := parseDatetime(s)
	return t.UTC(), err == nil
}

func looseBool(v json.RawMessage) (bool, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		var n json.Number
		if json.Unmarshal(v, &n) != nil {
			return false, false
		}
		s = n.String()
	}
	switch strings.ToLower(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

const headersMessage = `Invalid headers: Alphanumeric characters or hyphens only, cannot start with "x-appwrite", maximum 100 keys, and total size 16384.`

// parseHeaders reads the headers parameter: a JSON object (or, from 1.6,
// a JSON string holding one), validated like Appwrite's Headers validator.
func parseHeaders(v json.RawMessage, f format) (map[string]string, *apiError) {
	var obj map[string]any
	if json.Unmarshal(v, &obj) != nil {
		var s string
		if !f.atLeast(v1_6) || json.Unmarshal(v, &s) != nil || len(s) > 65535 || json.Unmarshal([]byte(s), &obj) != nil {
			return nil, invalidParam("headers", "Value must be a valid object.")
		}
	}
	out := make(map[string]string, len(obj))
	size := 0
	for k, val := range obj {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-appwrite-") {
			if f.atLeast(v1_6) {
				return nil, invalidParam("headers", headersMessage)
			}
			continue // the server sets these; a caller cannot override them
		}
		if f.atLeast(v1_6) && !contract.ValidHeaderName(k) {
			return nil, invalidParam("headers", headersMessage)
		}
		sv := headerValue(val)
		size += len(k) + len(sv)
		out[lk] = sv
	}
	if len(out) > maxHeaders || size >= maxHeadersSize {
		return nil, invalidParam("headers", headersMessage)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// headerValue is a header's value as a string: null is empty, and other
// JSON values keep their JSON text.
func headerValue(val any) string {
	switch x := val.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	b, _ := json.Marshal(val)
	return string(b)
}
