package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive"
	"github.com/kfn-dev/kfn/internal/execindex"
)

// The archive answers a list with the same plan as the objects: each
// filter, search, order and cursor below is the SQL form of its in-memory
// rule in list.go, over the columns of internal/archive's executions
// table. Every value from the request is a parameter; only fixed column
// expressions and operators are written into the SQL.

// sqlPlan builds one statement's WHERE and ORDER BY and their arguments.
type sqlPlan struct {
	p    listPlan
	args []any
}

func (b *sqlPlan) arg(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args))
}

// sqlAttribute is the column expression of a queryable attribute, and the
// kind of Go value record.attr gives for it (string, float64, time.Time).
func sqlAttribute(name string, f format) (expr string, kind any) {
	switch name {
	case "$id":
		return `id COLLATE "C"`, ""
	case "$createdAt":
		return "created_at", time.Time{}
	case "$updatedAt":
		return "updated_at", time.Time{}
	case "$sequence":
		return "(extract(epoch FROM created_at) * 1000000)::float8", 0.0
	case "functionId":
		return `function_id COLLATE "C"`, ""
	case "deploymentId":
		return `deployment_id COLLATE "C"`, ""
	case "trigger":
		return `trigger COLLATE "C"`, ""
	case "status":
		if f.atLeast(v1_4) && !f.atLeast(v1_6) { // record.reportedStatus
			return `(CASE WHEN status = 'completed' AND response_status_code BETWEEN 400 AND 499 THEN 'failed' ELSE status END) COLLATE "C"`, ""
		}
		return `status COLLATE "C"`, ""
	case "statusCode", "responseStatusCode":
		return "response_status_code::float8", 0.0
	case "requestMethod":
		return `request_method COLLATE "C"`, ""
	case "requestPath":
		return `request_path COLLATE "C"`, ""
	case "duration":
		return "duration", 0.0
	}
	return "", nil
}

// sameKind tells whether compareValues compares a and b as values (else
// by their type names, whatever the values).
func sameKind(a, b any) bool {
	switch a.(type) {
	case string:
		_, ok := b.(string)
		return ok
	case float64:
		_, ok := b.(float64)
		return ok
	case time.Time:
		_, ok := b.(time.Time)
		return ok
	}
	return false
}

func sqlBool(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

var sqlOperators = map[string]string{
	qEqual: "=", qLessThan: "<", qLessThanEqual: "<=", qGreaterThan: ">", qGreaterThanEqual: ">=",
}

// compare is "attribute op value" (op one of comparisons'), as
// compareValues decides it: in SQL for values of the attribute's kind,
// a constant for others.
func (b *sqlPlan) compare(expr string, kind any, method string, value any) string {
	if !sameKind(kind, value) {
		return sqlBool(comparisons[method](compareValues(kind, value)))
	}
	if t, ok := value.(time.Time); ok && t.Nanosecond()%1000 != 0 {
		// The archive keeps microseconds: compare with the microsecond
		// below, which no stored time passes without passing t.
		switch method {
		case qEqual:
			return "FALSE"
		case qLessThan, qLessThanEqual:
			return expr + " <= " + b.arg(t.Truncate(time.Microsecond))
		default:
			return expr + " > " + b.arg(t.Truncate(time.Microsecond))
		}
	}
	return expr + " " + sqlOperators[method] + " " + b.arg(value)
}

// where is the SQL of the plan's filters and search.
func (b *sqlPlan) where() string {
	conds := make([]string, 0, len(b.p.filters)+1)
	for _, q := range b.p.filters {
		conds = append(conds, b.filter(q))
	}
	if len(b.p.search) > 0 {
		conds = append(conds, b.search())
	}
	if len(conds) == 0 {
		return "TRUE"
	}
	return "(" + strings.Join(conds, ") AND (") + ")"
}

func join(conds []string, op, empty string) string {
	if len(conds) == 0 {
		return empty
	}
	return "((" + strings.Join(conds, ") "+op+" (") + "))"
}

// filter is listPlan.matches in SQL.
func (b *sqlPlan) filter(q Query) string {
	if positive, ok := negations[q.Method]; ok {
		q.Method = positive
		return "NOT (" + b.filter(q) + ")"
	}
	var conds []string
	switch q.Method {
	case qAnd, qOr:
		for _, sub := range q.Queries {
			conds = append(conds, b.filter(sub))
		}
		if q.Method == qAnd {
			return join(conds, "AND", "TRUE")
		}
		return join(conds, "OR", "FALSE")
	case qExists, qIsNotNull:
		return "TRUE" // every queryable attribute has a value
	case qIsNull:
		return "FALSE"
	}
	expr, kind := sqlAttribute(q.Attribute, b.p.f)
	if kind == nil {
		return "FALSE" // validation lets no other attribute through
	}
	if _, ok := stringTests[q.Method]; ok {
		return b.stringTest(expr, kind, q)
	}
	want := q.Values
	if _, ok := kind.(time.Time); ok {
		want = make([]any, len(q.Values))
		for i, w := range q.Values {
			want[i] = datetimeValue(w)
		}
	}
	if q.Method == qBetween {
		return join([]string{b.compare(expr, kind, qGreaterThanEqual, want[0]), b.compare(expr, kind, qLessThanEqual, want[1])}, "AND", "TRUE")
	}
	if _, ok := comparisons[q.Method]; !ok {
		return "FALSE"
	}
	for _, w := range want {
		conds = append(conds, b.compare(expr, kind, q.Method, w))
	}
	return join(conds, "OR", "FALSE")
}

// stringTest is contains, startsWith or endsWith with any of the values;
// an attribute that is not a string tests as "", as in matches.
func (b *sqlPlan) stringTest(expr string, kind any, q Query) string {
	var conds []string
	for _, v := range q.Values {
		w, _ := v.(string)
		if _, ok := kind.(string); !ok {
			conds = append(conds, sqlBool(stringTests[q.Method]("", w)))
			continue
		}
		switch q.Method {
		case qContains:
			conds = append(conds, "strpos("+expr+", "+b.arg(w)+") > 0")
		case qStartsWith:
			conds = append(conds, "starts_with("+expr+", "+b.arg(w)+")")
		case qEndsWith:
			n := b.arg(w)
			conds = append(conds, "right("+expr+", char_length("+n+")) = "+n)
		}
	}
	return join(conds, "OR", "FALSE")
}

// search is matchesSearch: a word that starts the function's ID or the
// execution's.
func (b *sqlPlan) search() string {
	var conds []string
	for _, w := range b.p.search {
		w = strings.ToLower(strings.Trim(w, `"'+-*~<>()@`))
		if w == "" {
			continue
		}
		n := b.arg(w)
		conds = append(conds, "starts_with(lower(function_id), "+n+") OR starts_with(lower(id), "+n+")")
	}
	return join(conds, "OR", "FALSE")
}

// sortKey is one term of the plan's order (listPlan.compare).
type sortKey struct {
	expr string
	desc bool
	// value reads a record's value for the key (the cursor's).
	value func(r record) any
}

// sortKeys are the plan's orders, then the default order.
func (p listPlan) sortKeys() []sortKey {
	defaults := []sortKey{
		{expr: "created_at", value: func(r record) any { return r.CreatedAt }},
		{expr: `id COLLATE "C"`, value: func(r record) any { return r.ID }},
	}
	var keys []sortKey
	for _, o := range p.orders {
		desc := o.Method == qOrderDesc
		if o.Attribute == "" {
			for _, d := range defaults {
				keys = append(keys, sortKey{expr: d.expr, desc: desc, value: d.value})
			}
			continue
		}
		expr, _ := sqlAttribute(o.Attribute, p.f)
		name := o.Attribute
		keys = append(keys, sortKey{expr: expr, desc: desc, value: func(r record) any { return r.attr(name, p.f) }})
	}
	// A key after one on the same column adds nothing (the orders of
	// listPlan.compare end with the default one).
	for _, d := range defaults {
		if !slices.ContainsFunc(keys, func(k sortKey) bool { return k.expr == d.expr }) {
			keys = append(keys, d)
		}
	}
	return keys
}

// orderBy is the ORDER BY of the walk: the plan's order, or its reverse
// when walking back from a cursorBefore.
func orderBy(keys []sortKey, back bool) string {
	terms := make([]string, len(keys))
	for i, k := range keys {
		dir := "ASC"
		if k.desc != back {
			dir = "DESC"
		}
		terms[i] = k.expr + " " + dir
	}
	return strings.Join(terms, ", ")
}

// beyond is the condition of lying strictly after the cursor in walk
// order: for some key, the earlier keys equal the cursor's and this one
// lies beyond it.
func (b *sqlPlan) beyond(keys []sortKey, cur record, back bool) string {
	if sameDirection(keys) {
		// One row comparison, which an index walks, for the usual orders.
		exprs, vals := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			exprs[i], vals[i] = k.expr, b.arg(k.value(cur))
		}
		op := ">"
		if keys[0].desc != back {
			op = "<"
		}
		return "(" + strings.Join(exprs, ", ") + ") " + op + " (" + strings.Join(vals, ", ") + ")"
	}
	// The first key bounds the walk (an index range), the rest decide ties.
	bound := " >= "
	if keys[0].desc != back {
		bound = " <= "
	}
	first := keys[0].expr + bound + b.arg(keys[0].value(cur))
	var ors []string
	for i, k := range keys {
		terms := make([]string, 0, i+1)
		for _, e := range keys[:i] {
			terms = append(terms, e.expr+" = "+b.arg(e.value(cur)))
		}
		op := ">"
		if k.desc != back {
			op = "<"
		}
		terms = append(terms, k.expr+" "+op+" "+b.arg(k.value(cur)))
		ors = append(ors, strings.Join(terms, " AND "))
	}
	return first + " AND " + join(ors, "OR", "FALSE")
}

func sameDirection(keys []sortKey) bool {
	for _, k := range keys {
		if k.desc != keys[0].desc {
			return false
		}
	}
	return true
}

// archiveQuery is the plan as a query of the archive for the first n
// records of the function visible to user ("": all) beyond the cursor
// record cur (nil: none), leaving out the records of the live objects.
func (p listPlan) archiveQuery(namespace, function, user string, liveUIDs []string, cur *record, n int) archive.ListQuery {
	b := &sqlPlan{p: p}
	where := []string{"namespace = " + b.arg(namespace), "function_id = " + b.arg(function), b.where()}
	if user != "" {
		where = append(where, "user_id = "+b.arg(user))
	}
	if len(liveUIDs) > 0 {
		where = append(where, "uid <> ALL("+b.arg(liveUIDs)+"::uuid[])")
	}
	count := strings.Join(where, " AND ")
	countArgs := len(b.args)
	keys := p.sortKeys()
	back := cur != nil && p.cursor != nil && p.cursor.Method == qCursorBefore
	if cur != nil {
		where = append(where, b.beyond(keys, *cur, back))
	}
	q := archive.ListQuery{
		Where: strings.Join(where, " AND "), CountWhere: count, CountArgs: countArgs,
		OrderBy: orderBy(keys, back), Args: b.args, Limit: n,
	}
	if statuses, ok := p.countedStatuses(); ok {
		q.Counted = &archive.StatusCount{Namespace: namespace, FunctionID: function, Statuses: statuses, Exclude: liveUIDs}
		if user != "" {
			q.Counted.User = &user
		}
	}
	return q
}

// countedStatuses tells whether the archive's per-status counts give the
// plan's total, and for which statuses (nil: all): so they do with no
// search and no filter, or only equal on the status a format shows as
// stored (1.4 and 1.5 show some completed records as failed).
func (p listPlan) countedStatuses() ([]string, bool) {
	if len(p.search) > 0 || len(p.filters) > 1 {
		return nil, false
	}
	if len(p.filters) == 0 {
		return nil, true
	}
	q := p.filters[0]
	if q.Method != qEqual || q.Attribute != "status" || len(q.Values) == 0 || (p.f.atLeast(v1_4) && !p.f.atLeast(v1_6)) {
		return nil, false
	}
	statuses := make([]string, len(q.Values))
	for i, v := range q.Values {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		statuses[i] = s
	}
	return statuses, true
}

// mergePage is the plan's page of the records of several lists, each
// holding at least the first offset+limit beyond the cursor in walk order
// (back: walking back from a cursorBefore).
func (p listPlan) mergePage(back bool, lists ...[]record) []record {
	sel := selection{p: p, back: back}
	var all []record
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortFunc(all, sel.order)
	page := window(all, p.offset, p.limit)
	if back {
		slices.Reverse(page)
	}
	return page
}

// listWithArchive answers a list from the live objects and the archive:
// each gives its first offset+limit records beyond the cursor, the page is
// taken from the two merged, and the total adds their counts. A record
// still an object (archived within the keep-live) is counted once, as the
// object.
func (s *Server) listWithArchive(ctx context.Context, r request, fn *fnv1.Function, p listPlan) (int, []*fnv1.Execution, *apiError) {
	user := r.caller.userID
	if r.caller.kind == apiKey {
		user = ""
	}
	cur, live, aerr := s.listCursor(ctx, r, fn, p)
	if aerr != nil {
		return 0, nil, aerr
	}
	firsts := p
	firsts.offset, firsts.limit = 0, p.offset+p.limit
	v := s.index.View(r.project, fn.Name, user)
	var liveTotal int
	var livePage []*fnv1.Execution
	if cur == nil || live {
		liveTotal, livePage, aerr = s.listPage(r, fn, firsts)
	} else { // the index walks only from its own executions
		liveTotal, livePage, aerr = scan(v, firsts, functionAppwriteID(fn), func(string) (record, bool) { return *cur, true })
	}
	if aerr != nil {
		return 0, nil, aerr
	}
	var liveUIDs []string
	_ = v.Walk(execindex.Query{}, func(e *fnv1.Execution) bool { liveUIDs = append(liveUIDs, string(e.UID)); return true })
	q := p.archiveQuery(r.project, fn.Name, user, liveUIDs, cur, firsts.limit)
	countLimit := 0
	if p.countTotal {
		countLimit = maxTotal
	}
	archived, archivedTotal, err := s.opts.Archive.List(ctx, q, countLimit)
	if err != nil {
		return 0, nil, internalError(err)
	}
	total := 0
	if p.countTotal {
		total = min(liveTotal+archivedTotal, maxTotal)
	}
	recs := p.mergePage(p.cursor != nil && p.cursor.Method == qCursorBefore, summaries(livePage), summaries(archived))
	page := make([]*fnv1.Execution, len(recs))
	for i, rec := range recs {
		page[i] = rec.src
	}
	return total, page, nil
}

// listCursor finds the plan's cursor among the objects (live) or in the
// archive, as the caller may see it; nil without a cursor.
func (s *Server) listCursor(ctx context.Context, r request, fn *fnv1.Function, p listPlan) (cur *record, live bool, aerr *apiError) {
	if p.cursor == nil {
		return nil, false, nil
	}
	id := p.cursor.Values[0].(string)
	if rec, ok := s.liveCursor(r, fn, id); ok {
		return &rec, true, nil
	}
	e, err := s.opts.Archive.Get(ctx, r.project, fn.Name, id)
	switch {
	case errors.Is(err, archive.ErrNotFound) || (err == nil && !r.caller.canSee(e.Spec.UserID)):
		return nil, false, cursorNotFound(id)
	case err != nil:
		return nil, false, internalError(err)
	}
	rec := summarize(e)
	return &rec, false, nil
}

// summaries are the executions as queries see them.
func summaries(execs []*fnv1.Execution) []record {
	out := make([]record, len(execs))
	for i, e := range execs {
		out[i] = summarize(e)
	}
	return out
}
