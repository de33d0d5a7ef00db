package apiserver

import (
	"container/heap"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	defaultLimit = 25
	// maxTotal caps the count of a list, as Appwrite's APP_LIMIT_COUNT does.
	maxTotal = 5000
)

// listPlan is a parsed and validated list request.
type listPlan struct {
	f          format
	filters    []Query
	orders     []Query
	limit      int
	offset     int
	cursor     *Query
	search     []string
	countTotal bool
}

// queryParams collects the queries parameter in every form the SDKs send:
// queries[]=…, queries[0]=…, or queries=… (repeated), in index order.
func queryParams(values url.Values) []string {
	type indexed struct {
		i int
		v []string
	}
	var parts []indexed
	for key, vs := range values {
		switch {
		case key == "queries" || key == "queries[]":
			parts = append(parts, indexed{-1, vs})
		case strings.HasPrefix(key, "queries[") && strings.HasSuffix(key, "]"):
			n, err := strconv.Atoi(key[len("queries[") : len(key)-1])
			if err != nil || n < 0 {
				continue
			}
			parts = append(parts, indexed{n, vs})
		}
	}
	sort.SliceStable(parts, func(a, b int) bool { return parts[a].i < parts[b].i })
	var out []string
	for _, p := range parts {
		out = append(out, p.v...)
	}
	return out
}

// planList validates the list parameters for a format.
func planList(f format, values url.Values) (listPlan, *apiError) {
	p := listPlan{f: f, limit: defaultLimit, countTotal: true}
	syn := syntaxFor(f)
	queries, aerr := syn.readAll(queryParams(values))
	if aerr != nil {
		return p, aerr
	}
	p.add(queries)
	if search, ok := values["search"]; ok && syn.search && len(search) > 0 {
		if len(search[0]) > maxSearch {
			return p, invalidParam("search", fmt.Sprintf("Value must be a valid string and no longer than %d chars", maxSearch))
		}
		p.search = strings.Fields(search[0])
	}
	if total, ok := values["total"]; ok && syn.total && len(total) > 0 {
		switch strings.ToLower(total[0]) {
		case "true", "1":
		case "false", "0":
			p.countTotal = false
		default:
			return p, invalidParam("total", "Value must be a valid boolean")
		}
	}
	return p, nil
}

// readAll parses and validates the queries parameter, in order.
func (s querySyntax) readAll(raw []string) ([]Query, *apiError) {
	tooLong := func() *apiError {
		return invalidParam("queries", fmt.Sprintf("Value must a valid array no longer than %d items and Value must be a valid string and no longer than %d chars", maxQueries, maxQueryLength))
	}
	if len(raw) > maxQueries {
		return nil, tooLong()
	}
	queries := make([]Query, 0, len(raw))
	for _, str := range raw {
		if len(str) > maxQueryLength {
			return nil, tooLong()
		}
		q, aerr := s.read(str)
		if aerr != nil {
			return nil, aerr
		}
		queries = append(queries, q)
	}
	return queries, nil
}

// read parses and validates one query. Whatever is wrong with it, parse
// or validation, Appwrite's parameter validator answers
// general_argument_invalid, worded as the format's Appwrite does.
func (s querySyntax) read(raw string) (Query, *apiError) {
	q, err := s.parse(raw)
	if err == nil {
		err = s.validate(q, false)
	}
	if err != nil {
		return q, invalidParam("queries", s.describe(raw, err))
	}
	return q, nil
}

// add sorts valid queries into the plan. Only the first limit, offset
// and cursor count, as in Appwrite.
func (p *listPlan) add(queries []Query) {
	seenLimit, seenOffset := false, false
	for _, q := range queries {
		switch q.Method {
		case qLimit:
			if !seenLimit {
				p.limit, _ = integer(q.Values)
				seenLimit = true
			}
		case qOffset:
			if !seenOffset {
				p.offset, _ = integer(q.Values)
				seenOffset = true
			}
		case qCursorAfter, qCursorBefore:
			if p.cursor == nil {
				q := q
				p.cursor = &q
			}
		case qOrderAsc, qOrderDesc:
			p.orders = append(p.orders, q)
		default:
			p.filters = append(p.filters, q)
		}
	}
}

// run applies the plan to the records all yields, in any order: those the
// caller may see. cursor finds the cursor's record among them. It keeps
// only offset+limit records, whatever their number: a list that must look
// at every execution costs time, not memory, in proportion to them.
func (p listPlan) run(all iter.Seq[record], cursor func(id string) (record, bool)) (int, []record, *apiError) {
	sel := selection{p: p, keep: p.offset + p.limit}
	if p.cursor != nil {
		id := p.cursor.Values[0].(string)
		cur, ok := cursor(id)
		if !ok {
			return 0, nil, cursorNotFound(id)
		}
		sel.cur, sel.back = &cur, p.cursor.Method == qCursorBefore
	}
	matched := 0
	for r := range all {
		if p.matchesSearch(r) && p.matchesAll(r, p.filters) {
			matched++
			sel.offer(r)
		}
	}
	total := 0
	if p.countTotal {
		total = min(matched, maxTotal)
	}
	return total, sel.page(), nil
}

func cursorNotFound(id string) *apiError {
	return newErrorf(errCursorNotFound, "Execution '%s' for the 'cursor' value not found.", id)
}

// selection keeps the first keep records beyond the cursor in walk order:
// the plan's order, or its reverse when walking back from a cursorBefore.
// It is a heap whose root is the last record kept.
type selection struct {
	p    listPlan
	cur  *record
	back bool
	keep int
	recs []record
}

// order compares records in walk order.
func (s *selection) order(a, b record) int {
	if s.back {
		return s.p.compare(b, a)
	}
	return s.p.compare(a, b)
}

func (s *selection) before(a, b record) bool { return s.order(a, b) < 0 }

func (s *selection) Len() int           { return len(s.recs) }
func (s *selection) Less(i, j int) bool { return s.before(s.recs[j], s.recs[i]) }
func (s *selection) Swap(i, j int)      { s.recs[i], s.recs[j] = s.recs[j], s.recs[i] }
func (s *selection) Push(x any)         { s.recs = append(s.recs, x.(record)) }
func (s *selection) Pop() any {
	last := s.recs[len(s.recs)-1]
	s.recs = s.recs[:len(s.recs)-1]
	return last
}

// offer keeps r if it lies beyond the cursor and among the first keep.
func (s *selection) offer(r record) {
	switch {
	case s.cur != nil && !s.before(*s.cur, r):
		// At or before the cursor: not on this page.
	case len(s.recs) < s.keep:
		heap.Push(s, r)
	case s.keep > 0 && s.before(r, s.recs[0]):
		s.recs[0] = r
		heap.Fix(s, 0)
	}
}

// page is the plan's window of what was kept, in the plan's order.
func (s *selection) page() []record {
	slices.SortFunc(s.recs, s.order)
	page := window(s.recs, s.p.offset, s.p.limit)
	if s.back {
		// Walked back from the cursor: restore the order.
		slices.Reverse(page)
	}
	return page
}

func window(rs []record, offset, limit int) []record {
	if offset >= len(rs) {
		return []record{}
	}
	rs = rs[offset:]
	if limit < len(rs) {
		rs = rs[:limit]
	}
	return rs
}

// compare orders records by the order queries, then oldest first with the
// ID as tie-breaker: Appwrite's default (insertion) order.
func (p listPlan) compare(a, b record) int {
	for _, o := range p.orders {
		c := 0
		if o.Attribute == "" {
			c = defaultOrder(a, b)
		} else {
			c = compareValues(a.attr(o.Attribute, p.f), b.attr(o.Attribute, p.f))
		}
		if o.Method == qOrderDesc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return defaultOrder(a, b)
}

func defaultOrder(a, b record) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// matchesSearch is Appwrite's full-text search over "<functionId> <executionId>":
// any search word that starts a word of it matches.
func (p listPlan) matchesSearch(r record) bool {
	if len(p.search) == 0 {
		return true
	}
	for _, w := range p.search {
		w = strings.ToLower(strings.Trim(w, `"'+-*~<>()@`))
		if w == "" {
			continue
		}
		if strings.HasPrefix(strings.ToLower(r.FunctionID), w) || strings.HasPrefix(strings.ToLower(r.ID), w) {
			return true
		}
	}
	return false
}

func (p listPlan) matchesAll(r record, qs []Query) bool {
	for _, q := range qs {
		if !p.matches(r, q) {
			return false
		}
	}
	return true
}

func (p listPlan) matches(r record, q Query) bool {
	if positive, ok := negations[q.Method]; ok {
		q.Method = positive
		return !p.matches(r, q)
	}
	switch q.Method {
	case qAnd:
		return p.matchesAll(r, q.Queries)
	case qOr:
		return slices.ContainsFunc(q.Queries, func(sub Query) bool { return p.matches(r, sub) })
	case qExists:
		// Its values name queryable attributes (validateExists), and
		// every execution has them all.
		return true
	}
	v := r.attr(q.Attribute, p.f)
	switch q.Method {
	case qIsNull:
		return v == nil
	case qIsNotNull:
		return v != nil
	}
	if test, ok := stringTests[q.Method]; ok {
		s, _ := v.(string)
		return slices.ContainsFunc(q.Values, func(w any) bool { return test(s, w.(string)) })
	}
	want := q.Values
	if a, ok := attributesByName[q.Attribute]; ok && a.typ == attrDatetime {
		want = make([]any, len(q.Values))
		for i, w := range q.Values {
			want[i] = datetimeValue(w)
		}
	}
	if q.Method == qBetween {
		return compareValues(v, want[0]) >= 0 && compareValues(v, want[1]) <= 0
	}
	holds, ok := comparisons[q.Method]
	return ok && slices.ContainsFunc(want, func(w any) bool { return holds(compareValues(v, w)) })
}

// negations are the filters that hold where another does not: notEqual
// where no value is equal, notContains where none is contained, and so on.
var negations = map[string]string{
	qNotEqual: qEqual, qNotContains: qContains, qNotStartsWith: qStartsWith, qNotEndsWith: qEndsWith,
	qNotBetween: qBetween, qNotExists: qExists,
}

// stringTests are the filters that test a string attribute against any
// of their values (contains as Appwrite's LIKE '%value%').
var stringTests = map[string]func(s, value string) bool{
	qContains: strings.Contains, qStartsWith: strings.HasPrefix, qEndsWith: strings.HasSuffix,
}

// comparisons are the filters that hold when the attribute compares so
// with any of the query's values.
var comparisons = map[string]func(c int) bool{
	qEqual:            func(c int) bool { return c == 0 },
	qLessThan:         func(c int) bool { return c < 0 },
	qLessThanEqual:    func(c int) bool { return c <= 0 },
	qGreaterThan:      func(c int) bool { return c > 0 },
	qGreaterThanEqual: func(c int) bool { return c >= 0 },
}

// datetimeValue turns a datetime string into a time for comparisons.
func datetimeValue(v any) any {
	if s, ok := v.(string); ok {
		if t, err := parseDatetime(s); err == nil {
			return t
		}
	}
	return v
}

// compareValues compares values of one attribute; values of different
// kinds never compare equal.
func compareValues(a, b any) int {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
		if y, ok := b.(time.Time); ok {
			return strings.Compare(x, y.String())
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	}
	return strings.Compare(fmt.Sprintf("%T", a), fmt.Sprintf("%T", b)) | 1
}
