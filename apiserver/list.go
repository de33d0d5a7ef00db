package apiserver

import (
	"fmt"
	"net/url"
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
	raw := queryParams(values)
	if len(raw) > maxQueries {
		return p, invalidParam("queries", fmt.Sprintf("Value must a valid array no longer than %d items and Value must be a valid string and no longer than %d chars", maxQueries, maxQueryLength))
	}
	seenLimit, seenOffset := false, false
	for _, s := range raw {
		if len(s) > maxQueryLength {
			return p, invalidParam("queries", fmt.Sprintf("Value must a valid array no longer than %d items and Value must be a valid string and no longer than %d chars", maxQueries, maxQueryLength))
		}
		q, err := syn.parse(s)
		if err != nil {
			if !f.atLeast(v1_4) {
				return p, invalidParam("queries", err.Error())
			}
			return p, newError(errQueryInvalid, "%s", err.Error())
		}
		if err := syn.validate(q, false); err != nil {
			if ae, ok := err.(*apiError); ok {
				return p, ae
			}
			if f.atLeast(v1_5) {
				return p, invalidParam("queries", "Invalid query: "+err.Error())
			}
			return p, invalidParam("queries", err.Error())
		}
		// Only the first limit, offset and cursor count, as in Appwrite.
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
			return 0, nil, newError(errCursorNotFound, "Execution '%s' for the 'cursor' value not found.", id)
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
		for _, sub := range q.Queries {
			if p.matches(r, sub) {
				return true
			}
		}
		return false
	}
	v := r.attr(q.Attribute, p.f)
	queryValue := func(v any) any { return v }
	if q.Attribute == "$createdAt" || q.Attribute == "$updatedAt" {
		queryValue = datetimeValue
	}
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
	case qBetween:
		return compareValues(v, queryValue(q.Values[0])) >= 0 && compareValues(v, queryValue(q.Values[1])) <= 0
	case qNotEqual:
		for _, want := range q.Values {
			if compareValues(v, queryValue(want)) == 0 {
				return false
			}
		}
		return true
	}
	for _, want := range q.Values {
		c := compareValues(v, queryValue(want))
		switch q.Method {
		case qEqual:
			if c == 0 {
				return true
			}
		case qLessThan:
			if c < 0 {
				return true
			}
		case qLessThanEqual:
			if c <= 0 {
				return true
			}
		case qGreaterThan:
			if c > 0 {
				return true
			}
		case qGreaterThanEqual:
			if c >= 0 {
				return true
			}
		}
	}
	return false
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

// attr is the value a query sees for an attribute.
func (r record) attr(name string, f format) any {
	switch name {
	case "$id":
		return r.ID
	case "$createdAt":
		return r.CreatedAt
	case "$updatedAt":
		return r.UpdatedAt
	case "trigger":
		return r.Trigger
	case "status":
		return r.reportedStatus(f)
	case "statusCode", "responseStatusCode":
		return float64(r.StatusCode)
	case "duration":
		return r.Duration
	case "requestMethod":
		return r.Method
	case "requestPath":
		return r.Path
	case "deploymentId":
		return ""
	}
	return nil
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

var datetimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000-07:00",
	"2006-01-02T15:04:05.000",
	"2006-01-02T15:04:05",
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
