package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Query is one Appwrite query, whichever syntax it came in.
type Query struct {
	Method    string
	Attribute string
	Values    []any   // string, float64, bool or nil
	Queries   []Query // the operands of and/or
}

// Query methods.
const (
	qEqual            = "equal"
	qNotEqual         = "notEqual"
	qLessThan         = "lessThan"
	qLessThanEqual    = "lessThanEqual"
	qGreaterThan      = "greaterThan"
	qGreaterThanEqual = "greaterThanEqual"
	qSearch           = "search"
	qNotSearch        = "notSearch"
	qIsNull           = "isNull"
	qIsNotNull        = "isNotNull"
	qBetween          = "between"
	qNotBetween       = "notBetween"
	qStartsWith       = "startsWith"
	qNotStartsWith    = "notStartsWith"
	qEndsWith         = "endsWith"
	qNotEndsWith      = "notEndsWith"
	qContains         = "contains"
	qNotContains      = "notContains"
	qExists           = "exists"
	qNotExists        = "notExists"
	qSelect           = "select"
	qOrderAsc         = "orderAsc"
	qOrderDesc        = "orderDesc"
	qLimit            = "limit"
	qOffset           = "offset"
	qCursorAfter      = "cursorAfter"
	qCursorBefore     = "cursorBefore"
	qAnd              = "and"
	qOr               = "or"
)

// Limits on the queries parameter (APP_LIMIT_ARRAY_PARAMS_SIZE,
// APP_LIMIT_ARRAY_ELEMENT_SIZE) and on values per filter (100, and
// APP_DATABASE_QUERY_MAX_VALUES from 1.9).
const (
	maxQueries       = 100
	maxQueryLength   = 4096
	maxQueryValues   = 100
	maxQueryValues19 = 500
	maxSearch        = 256
	maxNesting       = 3
)

// errSyntax is a query that could not be parsed at all.
type errSyntax struct{ msg string }

func (e errSyntax) Error() string { return e.msg }

// errMethod is a query whose method the format does not take.
type errMethod struct{ method string }

func (e errMethod) Error() string { return "Query method not valid: " + e.method }

// ParseLegacyQuery parses the Appwrite 1.0–1.4 string syntax:
// method("attribute", [values]) with double- or single-quoted strings,
// numbers, true/false/null and arrays.
func ParseLegacyQuery(s string) (Query, error) {
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return Query{}, errSyntax{fmt.Sprintf("Invalid query: %s", s)}
	}
	method := strings.TrimSpace(s[:open])
	for _, r := range method {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return Query{}, errSyntax{fmt.Sprintf("Invalid query method: %s", method)}
		}
	}
	p := &legacyParser{s: s[open+1 : len(s)-1]}
	var params []any
	p.skipSpace()
	if !p.done() {
		for {
			v, err := p.value(0)
			if err != nil {
				return Query{}, errSyntax{fmt.Sprintf("Invalid query: %s: %v", s, err)}
			}
			params = append(params, v)
			p.skipSpace()
			if p.done() {
				break
			}
			if !p.eat(',') {
				return Query{}, errSyntax{fmt.Sprintf("Invalid query: %s: expected ',' at offset %d", s, open+1+p.i)}
			}
		}
	}
	return legacyToQuery(method, params)
}

// legacyToQuery gives positional parameters their meaning per method.
func legacyToQuery(method string, params []any) (Query, error) {
	q := Query{Method: method}
	switch method {
	case qLimit, qOffset, qCursorAfter, qCursorBefore, qSelect:
		q.Values = flatten(params)
		return q, nil
	}
	if len(params) > 0 {
		attr, ok := params[0].(string)
		if !ok {
			return Query{}, errSyntax{fmt.Sprintf("Invalid query: the attribute of %s must be a string", method)}
		}
		q.Attribute = attr
		q.Values = flatten(params[1:])
	}
	return q, nil
}

// flatten turns equal("a", ["x", "y"]) and equal("a", "x") alike into values.
func flatten(params []any) []any {
	out := []any{}
	for _, p := range params {
		if arr, ok := p.([]any); ok {
			out = append(out, arr...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

type legacyParser struct {
	s string
	i int
}

func (p *legacyParser) done() bool { return p.i >= len(p.s) }

func (p *legacyParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *legacyParser) eat(c byte) bool {
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *legacyParser) value(depth int) (any, error) {
	p.skipSpace()
	if p.done() {
		return nil, fmt.Errorf("missing value")
	}
	switch c := p.s[p.i]; {
	case c == '"' || c == '\'':
		return p.str(c)
	case c == '[':
		if depth > 0 {
			return nil, fmt.Errorf("nested arrays are not allowed")
		}
		p.i++
		arr := []any{}
		p.skipSpace()
		if p.eat(']') {
			return arr, nil
		}
		for {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
			if p.eat(']') {
				return arr, nil
			}
			if !p.eat(',') {
				return nil, fmt.Errorf("expected ',' or ']' at offset %d", p.i)
			}
		}
	default:
		start := p.i
		for p.i < len(p.s) && !strings.ContainsRune(",] \t\r\n", rune(p.s[p.i])) {
			p.i++
		}
		word := p.s[start:p.i]
		switch word {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		f, err := strconv.ParseFloat(word, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("unquoted value %q is not a number, true, false or null", word)
		}
		return f, nil
	}
}

func (p *legacyParser) str(quote byte) (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == quote:
			p.i++
			return b.String(), nil
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", fmt.Errorf("unterminated string")
}

// ParseJSONQuery parses the Appwrite 1.5+ syntax:
// {"method":"equal","attribute":"status","values":["completed"]}. Its
// messages are utopia-php/database's Query::parse ones; the method is
// checked with the format's validation (validate).
func ParseJSONQuery(s string) (Query, error) {
	var raw any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return Query{}, errSyntax{"Invalid query: Syntax error"}
	}
	return jsonToQuery(raw, 0)
}

func jsonToQuery(raw any, depth int) (Query, error) {
	obj, ok := raw.(map[string]any)
	if _, list := raw.([]any); list {
		obj, ok = map[string]any{}, true // PHP reads a JSON list as an array too: one with no method
	}
	if !ok {
		return Query{}, errSyntax{"Invalid query. Must be an array, got " + phpType(raw)}
	}
	var q Query
	for _, field := range []struct {
		key  string
		into *string
	}{{"method", &q.Method}, {"attribute", &q.Attribute}} {
		switch v := obj[field.key].(type) {
		case nil: // absent or null reads as ""
		case string:
			*field.into = v
		default:
			return Query{}, errSyntax{fmt.Sprintf("Invalid query %s. Must be a string, got %s", field.key, phpType(v))}
		}
	}
	vals := []any{}
	switch v := obj["values"].(type) {
	case nil:
	case []any:
		vals = v
	default:
		return Query{}, errSyntax{"Invalid query values. Must be an array, got " + phpType(v)}
	}
	if q.Method == qAnd || q.Method == qOr {
		if depth >= maxNesting {
			return Query{}, errSyntax{fmt.Sprintf("Invalid query. Queries may nest at most %d levels", maxNesting)}
		}
		for _, v := range vals {
			sub, err := jsonToQuery(v, depth+1)
			if err != nil {
				return Query{}, err
			}
			q.Queries = append(q.Queries, sub)
		}
		return q, nil
	}
	for _, v := range vals {
		switch v.(type) {
		case string, float64, bool, nil:
		default:
			return Query{}, errSyntax{"Invalid query values. Values must be strings, numbers, booleans or null"}
		}
	}
	q.Values = vals
	return q, nil
}

// phpType is PHP's gettype of a decoded JSON value, as Appwrite's
// messages name it.
func phpType(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "double"
	case map[string]any:
		return "object" // PHP would take it as an array; kfn does not guess an order for its values
	}
	return "array"
}

// querySyntax is what one response format allows in queries.
type querySyntax struct {
	format    format // the attributes table says what it may query
	json      bool   // 1.5+: JSON queries; before: the string syntax
	methods   map[string]bool
	limitMin  int
	limitMax  int  // -1: no maximum
	offsetMax int  // -1: no maximum
	maxValues int  // values per filter
	search    bool // the search parameter is honoured (removed in 1.7)
	total     bool // the total parameter exists (1.8+)
}

func set(items ...string) map[string]bool {
	m := map[string]bool{}
	for _, i := range items {
		m[i] = true
	}
	return m
}

// The methods each version's executions validator takes. select parses
// in every version but is never one of them (isSelectQueryAllowed is
// false for executions).
var (
	methods10 = set(qEqual, qNotEqual, qLessThan, qLessThanEqual, qGreaterThan, qGreaterThanEqual,
		qSearch, qOrderAsc, qOrderDesc, qLimit, qOffset, qCursorAfter, qCursorBefore)
	methods14 = union(methods10, set(qIsNull, qIsNotNull, qBetween, qStartsWith, qEndsWith))
	// 1.5 validates with utopia-php/database, which takes contains.
	methods15 = union(methods14, set(qAnd, qOr, qContains))
	methods19 = union(methods15, set(qNotContains, qNotSearch, qNotBetween, qNotStartsWith, qNotEndsWith, qExists, qNotExists))
)

func union(a, b map[string]bool) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// syntaxFor is the query language of a response format.
func syntaxFor(f format) querySyntax {
	s := querySyntax{format: f, json: f.atLeast(v1_5), methods: methods15, limitMin: 1, limitMax: -1, offsetMax: -1,
		maxValues: maxQueryValues, search: !f.atLeast(v1_7), total: f.atLeast(v1_8)}
	switch {
	case !f.atLeast(v1_4):
		s.methods, s.limitMin, s.limitMax, s.offsetMax = methods10, 0, 100, 5000
	case !f.atLeast(v1_5):
		s.methods = methods14
	case f.atLeast(v1_9):
		s.methods, s.maxValues = methods19, maxQueryValues19
	}
	return s
}

// parse reads one query string in the format's syntax.
func (s querySyntax) parse(raw string) (Query, error) {
	if s.json {
		return ParseJSONQuery(raw)
	}
	return ParseLegacyQuery(raw)
}

// describe words a problem with the query raw as the format's Appwrite
// does, for the "Invalid `queries` param: …" message: 1.0–1.4 validate
// with Appwrite's own Queries validator, 1.5+ with utopia-php/database's,
// whose parser already refuses a method it does not know.
func (s querySyntax) describe(raw string, err error) string {
	var syntax errSyntax
	var method errMethod
	switch {
	case errors.As(err, &syntax) && !s.json:
		return "Invalid query: " + raw
	case errors.As(err, &syntax):
		return "Invalid query: " + syntax.msg
	case errors.As(err, &method) && !s.json:
		return "Query method not valid: " + method.method
	case errors.As(err, &method) && method.method == qSelect:
		return "Invalid query method: " + method.method
	case errors.As(err, &method):
		return "Invalid query: Invalid query method: " + method.method
	case !s.json:
		return "Query not valid: " + err.Error()
	}
	return "Invalid query: " + err.Error()
}

// validate checks a query against the format's methods and attributes; the
// message names the problem, as Appwrite's validators do.
func (s querySyntax) validate(q Query, nested bool) error {
	if !s.methods[q.Method] {
		return errMethod{q.Method}
	}
	switch q.Method {
	case qLimit:
		n, ok := integer(q.Values)
		if !ok || n < s.limitMin || (s.limitMax >= 0 && n > s.limitMax) {
			if s.limitMax < 0 {
				return fmt.Errorf("Invalid limit: Value must be a valid range between %d and %s", s.limitMin, "9,223,372,036,854,775,807")
			}
			return fmt.Errorf("Invalid limit: Value must be a valid range between %d and %d", s.limitMin, s.limitMax)
		}
	case qOffset:
		n, ok := integer(q.Values)
		if !ok || n < 0 || (s.offsetMax >= 0 && n > s.offsetMax) {
			if s.offsetMax < 0 {
				return fmt.Errorf("Invalid offset: Value must be a valid range between 0 and %s", "9,223,372,036,854,775,807")
			}
			return fmt.Errorf("Invalid offset: Value must be a valid range between 0 and %s", "5,000")
		}
	case qCursorAfter, qCursorBefore:
		if len(q.Values) != 1 {
			return fmt.Errorf("Invalid cursor: Cursor must contain exactly one value")
		}
		id, ok := q.Values[0].(string)
		if !ok || !ValidUID(id) {
			return fmt.Errorf("Invalid cursor: Cursor must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can't start with a special char")
		}
	case qOrderAsc, qOrderDesc:
		if q.Attribute == "" && !s.json {
			return nil // orderAsc("") is the default order
		}
		if _, ok := queryAttribute(q.Attribute, s.format); !ok {
			return fmt.Errorf("Attribute not found in schema: %s", q.Attribute)
		}
	case qAnd, qOr:
		return s.validateLogical(q)
	default:
		return s.validateFilter(q)
	}
	if nested {
		return fmt.Errorf("%s queries can only contain filter queries", ucfirst(q.Method))
	}
	return nil
}

// validateLogical checks and/or: at least two operands, filters only.
func (s querySyntax) validateLogical(q Query) error {
	for _, sub := range q.Queries {
		if !isFilter(sub.Method) {
			return fmt.Errorf("%s queries can only contain filter queries", ucfirst(q.Method))
		}
	}
	if len(q.Queries) < 2 {
		return fmt.Errorf("%s queries require at least two queries", ucfirst(q.Method))
	}
	for _, sub := range q.Queries {
		if err := s.validate(sub, true); err != nil {
			return err
		}
	}
	return nil
}

// validateFilter checks a filter in utopia-php/database's order: the
// attribute, the number of values, their types, then whether the method
// applies to the attribute's type.
func (s querySyntax) validateFilter(q Query) error {
	if q.Method == qExists || q.Method == qNotExists {
		return s.validateExists(q)
	}
	a, ok := queryAttribute(q.Attribute, s.format)
	if !ok {
		return fmt.Errorf("Attribute not found in schema: %s", q.Attribute)
	}
	if len(q.Values) > s.maxValues {
		return fmt.Errorf("Query on attribute has greater than %d values: %s", s.maxValues, q.Attribute)
	}
	if err := arity(q); err != nil {
		return err
	}
	for _, v := range q.Values {
		if !typeMatches(a.typ, v) {
			return fmt.Errorf("Query type does not match expected: %s", a.typ)
		}
	}
	return s.methodFits(q, a.typ)
}

// arity checks how many values a filter has.
func arity(q Query) error {
	n := len(q.Values)
	switch q.Method {
	case qIsNull, qIsNotNull:
		if n != 0 {
			return fmt.Errorf("%s queries do not take values", ucfirst(q.Method))
		}
	case qBetween, qNotBetween:
		if n != 2 {
			return fmt.Errorf("%s queries require exactly two values.", ucfirst(q.Method))
		}
	case qSearch, qNotSearch, qStartsWith, qNotStartsWith, qEndsWith, qNotEndsWith:
		if n != 1 {
			return fmt.Errorf("%s queries require exactly one value.", ucfirst(q.Method))
		}
	default:
		if n == 0 {
			return fmt.Errorf("%s queries require at least one value.", ucfirst(q.Method))
		}
	}
	return nil
}

// methodFits refuses a filter its attribute's type does not allow.
func (s querySyntax) methodFits(q Query, t attrType) error {
	switch q.Method {
	case qSearch, qNotSearch:
		// Appwrite's executions have no fulltext index on their attributes.
		return fmt.Errorf("Searching by attribute \"%s\" requires a fulltext index.", q.Attribute)
	case qContains, qNotContains:
		if t != attrString {
			kinds := "an array or string"
			if s.format.atLeast(v1_9) {
				kinds = "an array, string, or object"
			}
			return fmt.Errorf("Cannot query %s on attribute \"%s\" because it is not %s.", q.Method, q.Attribute, kinds)
		}
	case qStartsWith, qNotStartsWith, qEndsWith, qNotEndsWith:
		if t != attrString {
			return fmt.Errorf("Cannot query %s on attribute \"%s\" because it is not a string.", q.Method, q.Attribute)
		}
	}
	return nil
}

// validateExists checks exists/notExists (1.9): their values name
// attributes, which must be ones the format queries.
func (s querySyntax) validateExists(q Query) error {
	if len(q.Values) == 0 {
		return fmt.Errorf("%s queries require at least one value.", ucfirst(q.Method))
	}
	for _, v := range q.Values {
		name, _ := v.(string)
		if _, ok := queryAttribute(name, s.format); !ok {
			return fmt.Errorf("Attribute not found in schema: %s", name)
		}
	}
	return nil
}

// ucfirst is PHP's, as the validators' messages name methods.
func ucfirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func isFilter(method string) bool {
	switch method {
	case qOrderAsc, qOrderDesc, qLimit, qOffset, qCursorAfter, qCursorBefore:
		return false
	}
	return true
}

func typeMatches(t attrType, v any) bool {
	switch t {
	case attrString:
		_, ok := v.(string)
		return ok
	case attrInteger:
		f, ok := v.(float64)
		return ok && f == math.Trunc(f) && math.Abs(f) < 1<<53
	case attrFloat:
		_, ok := v.(float64)
		return ok
	case attrDatetime:
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := parseDatetime(s)
		return err == nil
	}
	return false
}

func integer(values []any) (int, bool) {
	if len(values) != 1 {
		return 0, false
	}
	f, ok := values[0].(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int(f), true
}

// ValidUID is Appwrite's UID validator: up to 36 chars of a-z, A-Z, 0-9,
// period, hyphen and underscore, not starting with a special char.
func ValidUID(id string) bool {
	if id == "" || len(id) > 36 || !utf8.ValidString(id) {
		return false
	}
	for i, r := range id {
		alnum := r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if !alnum && !(i > 0 && (r == '.' || r == '-' || r == '_')) {
			return false
		}
	}
	return true
}
