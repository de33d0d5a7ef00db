package apiserver

import (
	"fmt"
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

// read parses and validates one query, and words a problem as the
// format's Appwrite does.
func (s querySyntax) read(raw string) (Query, *apiError) {
	q, err := s.parse(raw)
	if err != nil {
		if !s.format.atLeast(v1_4) {
			return q, invalidParam("queries", err.Error())
		}
		return q, newErrorf(errQueryInvalid, "%s", err.Error())
	}
	if err := s.validate(q, false); err != nil {
		if ae, ok := err.(*apiError); ok {
			return q, ae
		}
		if s.format.atLeast(v1_5) {
			return q, invalidParam("queries", "Invalid query: "+err.Error())
		}
		return q, invalidParam("queries", err.Error())
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

// run applies the plan to the records the caller may see.
func (p listPlan) run(visible []record) (int, []record, *apiError) {
	matched := make([]record, 0, len(visible))
	for _, r := range visible {
		if p.matchesSearch(r) && p.matchesAll(r, p.filters) {
			matched = append(matched, r)
		}
	}
	sort.SliceStable(matched, func(i, j int) bool { return p.compare(matched[i], matched[j]) < 0 })

	total := 0
	if p.countTotal {
		total = min(len(matched), maxTotal)
	}

	page := matched
	if p.cursor != nil {
		id := p.cursor.Values[0].(string)
		var cur *record
		for i := range visible {
			if visible[i].ID == id {
				cur = &visible[i]
				break
			}
		}
		if cur == nil {
			return 0, nil, newErrorf(errCursorNotFound, "Execution '%s' for the 'cursor' value not found.", id)
		}
		page = nil
		if p.cursor.Method == qCursorAfter {
			for _, r := range matched {
				if p.compare(r, *cur) > 0 {
					page = append(page, r)
				}
			}
		} else {
			// Before the cursor: walk back from it, then restore the order.
			for i := len(matched) - 1; i >= 0; i-- {
				if p.compare(matched[i], *cur) < 0 {
					page = append(page, matched[i])
				}
			}
			page = window(page, p.offset, p.limit)
			for i, j := 0, len(page)-1; i < j; i, j = i+1, j-1 {
				page[i], page[j] = page[j], page[i]
			}
			return total, page, nil
		}
	}
	return total, window(page, p.offset, p.limit), nil
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
	switch q.Method {
	case qAnd:
		return p.matchesAll(r, q.Queries)
	case qOr:
		return slices.ContainsFunc(q.Queries, func(sub Query) bool { return p.matches(r, sub) })
	}
	v := r.attr(q.Attribute, p.f)
	switch q.Method {
	case qIsNull:
		return v == nil
	case qIsNotNull:
		return v != nil
	case qStartsWith:
		s, _ := v.(string)
		return strings.HasPrefix(s, q.Values[0].(string))
	case qEndsWith:
		s, _ := v.(string)
		return strings.HasSuffix(s, q.Values[0].(string))
	}
	want := q.Values
	if a, ok := attributesByName[q.Attribute]; ok && a.typ == attrDatetime {
		want = make([]any, len(q.Values))
		for i, w := range q.Values {
			want[i] = datetimeValue(w)
		}
	}
	switch q.Method {
	case qBetween:
		return compareValues(v, want[0]) >= 0 && compareValues(v, want[1]) <= 0
	case qNotEqual:
		return !slices.ContainsFunc(want, func(w any) bool { return compareValues(v, w) == 0 })
	}
	holds, ok := comparisons[q.Method]
	return ok && slices.ContainsFunc(want, func(w any) bool { return holds(compareValues(v, w)) })
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
