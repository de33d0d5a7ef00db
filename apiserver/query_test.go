package apiserver

import (
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLegacyQuery(t *testing.T) {
	cases := map[string]Query{
		`equal("status", ["completed"])`:       {Method: "equal", Attribute: "status", Values: []any{"completed"}},
		`equal('trigger', 'http')`:             {Method: "equal", Attribute: "trigger", Values: []any{"http"}},
		`equal("a", ["x\"y", 'it\'s', 1.5])`:   {Method: "equal", Attribute: "a", Values: []any{`x"y`, "it's", 1.5}},
		`limit(25)`:                            {Method: "limit", Values: []any{25.0}},
		`cursorAfter("abc")`:                   {Method: "cursorAfter", Values: []any{"abc"}},
		`orderAsc("")`:                         {Method: "orderAsc", Attribute: "", Values: []any{}},
		`between("duration", 1, 2)`:            {Method: "between", Attribute: "duration", Values: []any{1.0, 2.0}},
		`isNull("status")`:                     {Method: "isNull", Attribute: "status", Values: []any{}},
		`equal("x", [true, false, null])`:      {Method: "equal", Attribute: "x", Values: []any{true, false, nil}},
		` equal ( "status" , [ "a" , "b" ] ) `: {Method: "equal", Attribute: "status", Values: []any{"a", "b"}},
	}
	for in, want := range cases {
		got, err := ParseLegacyQuery(strings.TrimSpace(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, %v; want %#v", in, got, err, want)
		}
	}
	for _, in := range []string{``, `equal`, `equal(`, `(x)`, `a.b("x")`, `equal("x", [[1]])`, `equal("x", "y"`, `equal("x" "y")`, `equal(x)`, `equal(1, 2)`, `equal("x", NaN)`} {
		if q, err := ParseLegacyQuery(in); err == nil {
			t.Errorf("%s: parsed as %#v", in, q)
		}
	}
}

func TestParseJSONQuery(t *testing.T) {
	q, err := ParseJSONQuery(`{"method":"or","values":[{"method":"equal","attribute":"status","values":["a"]},{"method":"isNull","attribute":"x"}]}`)
	want := Query{Method: "or", Queries: []Query{{Method: "equal", Attribute: "status", Values: []any{"a"}}, {Method: "isNull", Attribute: "x", Values: []any{}}}}
	if err != nil || !reflect.DeepEqual(q, want) {
		t.Fatalf("got %#v, %v", q, err)
	}
	// Missing or null fields read as empty, as utopia-php/database reads them.
	if q, err := ParseJSONQuery(`{"attribute":null}`); err != nil || !reflect.DeepEqual(q, Query{Values: []any{}}) {
		t.Errorf("{}: %#v, %v", q, err)
	}
	for in, msg := range map[string]string{
		``:                                 "Invalid query: Syntax error",
		`{"method":"limit"} {}`:            "Invalid query: Syntax error",
		`5`:                                "Invalid query. Must be an array, got integer",
		`"equal"`:                          "Invalid query. Must be an array, got string",
		`{"method":1}`:                     "Invalid query method. Must be a string, got integer",
		`{"method":"equal","attribute":2}`: "Invalid query attribute. Must be a string, got integer",
		`{"method":"equal","values":"x"}`:  "Invalid query values. Must be an array, got string",
		`{"method":"equal","values":{}}`:   "Invalid query values. Must be an array, got object",
		`{"method":"equal","values":[{}]}`: "Invalid query values. Values must be strings, numbers, booleans or null",
		`{"method":"and","values":[1]}`:    "Invalid query. Must be an array, got integer",
		`{"method":"and","values":[{"method":"and","values":[{"method":"and","values":[{"method":"and","values":[]}]}]}]}`: "Invalid query. Queries may nest at most 3 levels",
	} {
		if q, err := ParseJSONQuery(in); err == nil || err.Error() != msg {
			t.Errorf("%s: parsed as %#v, %v; want %q", in, q, err, msg)
		}
	}
}

// Each version words a refused query as its Appwrite does, always as
// general_argument_invalid "Invalid `queries` param: …": 1.0–1.4 with
// Appwrite's own Queries validator, 1.5+ with utopia-php/database's.
func TestQueryMessagesPerVersion(t *testing.T) {
	values := func(n int) string { return `[` + strings.Repeat(`"x",`, n-1) + `"x"]` }
	for _, c := range []struct{ format, query, message string }{
		{"1.0.0", `equal("status" ["x"])`, `Invalid query: equal("status" ["x"])`},
		{"1.0.0", `contains("status", ["x"])`, "Query method not valid: contains"},
		{"1.0.0", `select(["status"])`, "Query method not valid: select"},
		{"1.0.0", `equal("statusCode", ["200"])`, "Query not valid: Query type does not match expected: integer"},
		{"1.0.0", `equal("status", ` + values(101) + `)`, "Query not valid: Query on attribute has greater than 100 values: status"},
		{"1.0.0", `limit(101)`, "Query not valid: Invalid limit: Value must be a valid range between 0 and 100"},
		{"1.4.0", `equal("status", [`, `Invalid query: equal("status", [`},
		{"1.4.0", `contains("status", ["x"])`, "Query method not valid: contains"},
		{"1.4.0", `startsWith("duration", 1)`, `Query not valid: Cannot query startsWith on attribute "duration" because it is not a string.`},
		{"1.6.0", `equal("status", ["x"])`, "Invalid query: Invalid query: Syntax error"},
		{"1.6.0", `{"method":"nope"}`, "Invalid query: Invalid query method: nope"},
		{"1.6.0", `{"method":"select","values":["status"]}`, "Invalid query method: select"},
		{"1.6.0", `{"method":"contains","attribute":"duration","values":[1]}`, `Invalid query: Cannot query contains on attribute "duration" because it is not an array or string.`},
		{"1.6.0", `{"method":"contains","attribute":"status"}`, "Invalid query: Contains queries require at least one value."},
		{"1.8.0", `{"method":"notContains","attribute":"status","values":["x"]}`, "Invalid query: Invalid query method: notContains"},
		{"1.8.0", `{"method":"exists","values":["status"]}`, "Invalid query: Invalid query method: exists"},
		{"1.8.0", `{"method":"orderAsc","attribute":"$sequence"}`, "Invalid query: Attribute not found in schema: $sequence"},
		{"1.8.0", `{"method":"equal","attribute":"status","values":` + values(101) + `}`, "Invalid query: Query on attribute has greater than 100 values: status"},
		{"", `{"method":"equal","attribute":"status","values":` + values(501) + `}`, "Invalid query: Query on attribute has greater than 500 values: status"},
		{"", `{"method":"notContains","attribute":"responseStatusCode","values":[4]}`, `Invalid query: Cannot query notContains on attribute "responseStatusCode" because it is not an array, string, or object.`},
		{"", `{"method":"notSearch","attribute":"status","values":["x"]}`, `Invalid query: Searching by attribute "status" requires a fulltext index.`},
		{"", `{"method":"notBetween","attribute":"duration","values":[1]}`, "Invalid query: NotBetween queries require exactly two values."},
		{"", `{"method":"notStartsWith","attribute":"duration","values":[1]}`, `Invalid query: Cannot query notStartsWith on attribute "duration" because it is not a string.`},
		{"", `{"method":"exists","values":["status","nope"]}`, "Invalid query: Attribute not found in schema: nope"},
		{"", `{"method":"notExists"}`, "Invalid query: NotExists queries require at least one value."},
		{"", `{"method":"select","values":["status"]}`, "Invalid query method: select"},
		{"", `{"method":"or","values":[{"method":"limit","values":[1]},{"method":"equal","attribute":"status","values":["x"]}]}`, "Invalid query: Or queries can only contain filter queries"},
		{"", `{"method":"and","values":[{"method":"equal","attribute":"status","values":["x"]}]}`, "Invalid query: And queries require at least two queries"},
		{"", `{"method":"or","values":[{"method":"nope"},{"method":"equal","attribute":"status","values":["x"]}]}`, "Invalid query: Invalid query method: nope"},
	} {
		_, aerr := planList(parseFormat(c.format), url.Values{"queries[]": {c.query}})
		want := "Invalid `queries` param: " + c.message
		if aerr == nil || aerr.Type != errArgumentInvalid || aerr.Code != 400 || aerr.Message != want {
			t.Errorf("%q %s:\n got %v\nwant %s", c.format, c.query, aerr, want)
		}
	}
	// What each version takes.
	for _, c := range []struct{ format, query string }{
		{"1.6.0", `{"method":"contains","attribute":"status","values":["x"]}`},
		{"", `{"method":"equal","attribute":"status","values":` + values(500) + `}`},
		{"", `{"method":"exists","values":["status","$sequence"]}`},
		{"", `{"method":"orderDesc","attribute":"$sequence"}`},
		{"", `{"method":"lessThan","attribute":"$sequence","values":[1700000000000000]}`},
	} {
		if _, aerr := planList(parseFormat(c.format), url.Values{"queries[]": {c.query}}); aerr != nil {
			t.Errorf("%q %s: %v", c.format, c.query, aerr)
		}
	}
}

// The new filters read each execution as Appwrite's SQL does: contains is
// LIKE '%value%' (any value), each not* the negation of its filter.
func TestNewFilters(t *testing.T) {
	now := time.Unix(1700000000, 0)
	recs := []record{
		{ID: "a1", CreatedAt: now, Status: "completed", StatusCode: 200, Trigger: "http", Duration: 0.5, Method: "POST", Path: "/x/y"},
		{ID: "b2", CreatedAt: now.Add(time.Microsecond), Status: "failed", StatusCode: 404, Trigger: "schedule", Duration: 1, Method: "GET", Path: "/"},
		{ID: "c3", CreatedAt: now.Add(time.Second), Status: "completed", StatusCode: 500, Trigger: "event", Duration: 2, Method: "PUT", Path: "/y"},
	}
	f := parseFormat("")
	for q, want := range map[string][]string{
		`{"method":"contains","attribute":"requestPath","values":["y","nothing"]}`:                                                                            {"a1", "c3"},
		`{"method":"notContains","attribute":"requestPath","values":["x","nothing"]}`:                                                                         {"b2", "c3"},
		`{"method":"startsWith","attribute":"trigger","values":["sch"]}`:                                                                                      {"b2"},
		`{"method":"notStartsWith","attribute":"trigger","values":["sch"]}`:                                                                                   {"a1", "c3"},
		`{"method":"endsWith","attribute":"status","values":["ed"]}`:                                                                                          {"a1", "b2", "c3"},
		`{"method":"notEndsWith","attribute":"$id","values":["2"]}`:                                                                                           {"a1", "c3"},
		`{"method":"between","attribute":"duration","values":[0.5,1]}`:                                                                                        {"a1", "b2"},
		`{"method":"notBetween","attribute":"responseStatusCode","values":[200,404]}`:                                                                         {"c3"},
		`{"method":"notEqual","attribute":"status","values":["completed"]}`:                                                                                   {"b2"},
		`{"method":"exists","values":["status","deploymentId"]}`:                                                                                              {"a1", "b2", "c3"},
		`{"method":"notExists","values":["status"]}`:                                                                                                          {},
		`{"method":"isNull","attribute":"requestMethod"}`:                                                                                                     {},
		`{"method":"isNotNull","attribute":"requestMethod"}`:                                                                                                  {"a1", "b2", "c3"},
		`{"method":"greaterThan","attribute":"$sequence","values":[1700000000000000]}`:                                                                        {"b2", "c3"},
		`{"method":"or","values":[{"method":"notContains","attribute":"status","values":["complete"]},{"method":"equal","attribute":"$id","values":["c3"]}]}`: {"b2", "c3"},
	} {
		p, aerr := planList(f, url.Values{"queries[]": {q}})
		if aerr != nil {
			t.Fatalf("%s: %v", q, aerr)
		}
		_, page, _ := runRecords(p, recs)
		if got := ids(page); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	p, _ := planList(f, url.Values{"queries[]": {`{"method":"orderDesc","attribute":"$sequence"}`}})
	if _, page, _ := runRecords(p, recs); !slices.Equal(ids(page), []string{"c3", "b2", "a1"}) {
		t.Errorf("orderDesc($sequence): %v", ids(page))
	}
}

func TestFormatParsing(t *testing.T) {
	for in, want := range map[string]string{"": "1.9.6", "1.0.0": "1.0.0", "0.15.0": "1.0.0", "1.4": "1.4.0", "1.6.0-rc1": "1.6.0", "2.3.0": "1.9.6", "junk": "1.9.6", "1.9.5": "1.9.5"} {
		if got := parseFormat(in); got.name != want || got.legacy != (in == "0.15.0") {
			t.Errorf("%q: %s (legacy %v), want %s", in, got.name, got.legacy, want)
		}
	}
}

func TestTotalIsCapped(t *testing.T) {
	recs := make([]record, maxTotal+10)
	base := time.Unix(1700000000, 0)
	for i := range recs {
		recs[i] = record{ID: NewID(), CreatedAt: base.Add(time.Duration(i) * time.Millisecond), Status: "completed"}
	}
	p, err := planList(parseFormat("1.0.0"), url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	total, page, aerr := runRecords(p, recs)
	if aerr != nil || total != maxTotal || len(page) != defaultLimit {
		t.Fatalf("total %d, page %d, %v", total, len(page), aerr)
	}
}

// FuzzQuery feeds arbitrary query strings through both parsers, the
// validators of every format and the evaluator: no input may panic, and
// an accepted query must evaluate.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{
		`equal("status", ["completed"])`, `limit(25)`, `offset(1)`, `cursorAfter("abc")`, `orderDesc("$createdAt")`,
		`between("duration", 0.1, 2)`, `startsWith("$id", "6b")`, `equal("x", [true, null, -1e3])`, `equal('a', 'it\'s')`,
		`{"method":"equal","attribute":"status","values":["completed"]}`, `{"method":"limit","values":[5]}`,
		`{"method":"or","values":[{"method":"equal","attribute":"responseStatusCode","values":[404]},{"method":"isNull","attribute":"status"}]}`,
		`{"method":"cursorBefore","values":["abc"]}`, `{"method":"orderAsc"}`,
		`{"method":"notContains","attribute":"status","values":["x"]}`, `{"method":"exists","values":["status"]}`,
		`{"method":"notBetween","attribute":"$sequence","values":[1,2]}`,
	} {
		f.Add(seed)
	}
	now := time.Unix(1700000000, 0)
	recs := []record{
		{ID: "a1", CreatedAt: now, UpdatedAt: now, Status: "completed", StatusCode: 200, Trigger: "http", Duration: 0.5, Method: "POST", Path: "/"},
		{ID: "abc", CreatedAt: now.Add(time.Second), UpdatedAt: now, Status: "failed", StatusCode: 404, Trigger: "http", Duration: 1, Method: "GET", Path: "/x"},
	}
	formats := []format{parseFormat("1.0.0"), parseFormat("1.4.0"), parseFormat("1.5.0"), parseFormat("1.6.0"), parseFormat("1.8.0"), parseFormat("")}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseLegacyQuery(s)
		_, _ = ParseJSONQuery(s)
		for _, fm := range formats {
			p, err := planList(fm, url.Values{"queries[]": {s}, "search": {s}})
			if err != nil {
				if err.Code != 400 || err.Type == "" {
					t.Fatalf("%q: bad error %+v", s, err)
				}
				continue
			}
			if _, _, aerr := runRecords(p, recs); aerr != nil && aerr.Type != errCursorNotFound {
				t.Fatalf("%q: accepted but failed: %+v", s, aerr)
			}
		}
	})
}

// runRecords runs a plan on records, as a list does on those the caller
// may see.
func runRecords(p listPlan, recs []record) (int, []record, *apiError) {
	return p.run(slices.Values(recs), func(id string) (record, bool) {
		i := slices.IndexFunc(recs, func(r record) bool { return r.ID == id })
		if i < 0 {
			return record{}, false
		}
		return recs[i], true
	})
}
