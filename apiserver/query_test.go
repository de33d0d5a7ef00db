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
	for _, in := range []string{``, `[]`, `{}`, `{"method":1}`, `{"method":"equal","attribute":2}`, `{"method":"equal","values":{}}`,
		`{"method":"equal","values":[{}]}`, `{"method":"limit"} {}`, `{"method":"and","values":[1]}`,
		`{"method":"and","values":[{"method":"and","values":[{"method":"and","values":[{"method":"and","values":[]}]}]}]}`} {
		if q, err := ParseJSONQuery(in); err == nil {
			t.Errorf("%s: parsed as %#v", in, q)
		}
	}
}

func TestFormatParsing(t *testing.T) {
	for in, want := range map[string]string{"": "1.9.6", "1.0.0": "1.0.0", "0.15.0": "1.0.0", "1.4": "1.4.0", "1.6.0-rc1": "1.6.0", "2.3.0": "1.9.6", "junk": "1.9.6", "1.9.5": "1.9.5"} {
		if got := parseFormat(in).name; got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
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
	} {
		f.Add(seed)
	}
	now := time.Unix(1700000000, 0)
	recs := []record{
		{ID: "a1", CreatedAt: now, UpdatedAt: now, Status: "completed", StatusCode: 200, Trigger: "http", Duration: 0.5, Method: "POST", Path: "/"},
		{ID: "abc", CreatedAt: now.Add(time.Second), UpdatedAt: now, Status: "failed", StatusCode: 404, Trigger: "http", Duration: 1, Method: "GET", Path: "/x"},
	}
	formats := []format{parseFormat("1.0.0"), parseFormat("1.4.0"), parseFormat("1.5.0"), parseFormat("1.6.0"), parseFormat("")}
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
