package apiserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// TestArchiveListsAsScanned checks the SQL form of list plans against the
// in-memory reading of the same records (listPlan.run): same totals and
// pages, for random filters, searches, orders, cursors, offsets and
// limits, in several formats, for an API key and for a user.
func TestArchiveListsAsScanned(t *testing.T) {
	ctx := context.Background()
	_, store := testArchive(t)
	rnd := rand.New(rand.NewPCG(3, 4))
	execs := archivedHistory(rnd, 200)
	if err := store.Put(ctx, execs...); err != nil {
		t.Fatal(err)
	}
	callers := []caller{{kind: apiKey}, {kind: user, userID: "alice"}}
	formats := []format{parseFormat("1.0.0"), parseFormat("1.4.0"), parseFormat("1.5.0"), parseFormat("1.6.0"), parseFormat("1.9.0")}
	checked, plans := 0, 0
	for range 1500 {
		f, who := formats[rnd.IntN(len(formats))], callers[rnd.IntN(len(callers))]
		values := url.Values{"queries[]": randomQueries(rnd, f, execs)}
		if rnd.IntN(6) == 0 {
			values.Set("search", []string{"e-1", "fn", "E-2 x", `"e-3"`, "zz"}[rnd.IntN(5)])
		}
		p, aerr := planList(f, values)
		if aerr != nil {
			continue // a query this format does not take
		}
		plans++
		recs := visibleTo(who, execs)
		wantTotal, want, wantErr := runRecords(p, recs)
		user := who.userID
		var cur *record
		if p.cursor != nil {
			i := slices.IndexFunc(recs, func(r record) bool { return r.ID == p.cursor.Values[0].(string) })
			if i < 0 {
				if wantErr == nil {
					t.Fatalf("%v: the scan found a cursor that is not there", values)
				}
				continue
			}
			cur = &recs[i]
		}
		q := p.archiveQuery(offlineProject, "fn", user, nil, cur, p.offset+p.limit)
		countLimit := 0
		if p.countTotal {
			countLimit = maxTotal
		}
		rows, total, err := store.List(ctx, q, countLimit)
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", f.name, values, err, q.Where)
		}
		got := p.mergePage(cur != nil && p.cursor.Method == qCursorBefore, summaries(rows))
		if total != wantTotal || !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("%s %v as %v:\nSQL  total %d, page %v\nscan total %d, page %v\n%s ORDER BY %s %v", f.name, values, who.kind,
				total, ids(got), wantTotal, ids(want), q.Where, q.OrderBy, q.Args)
		}
		checked += len(got)
	}
	if plans < 500 || checked < 2000 {
		t.Fatalf("only %d plans and %d records checked", plans, checked)
	}
}

// archivedHistory is n finished executions of "fn" with every attribute
// varied, many created in the same second (ties), some with facade IDs
// (microseconds).
func archivedHistory(rnd *rand.Rand, n int) []*fnv1.Execution {
	execs := tiedHistory(rnd, n)
	base := time.Unix(1_700_000_000, 0)
	for i, e := range execs {
		e.UID = types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
		e.Spec.ScheduledAt = nil
		e.Status.Status = []fnv1.ExecutionPhase{fnv1.PhaseCompleted, fnv1.PhaseFailed}[rnd.IntN(2)]
		if rnd.IntN(4) == 0 {
			at := base.Add(time.Duration(rnd.IntN(n/4))*time.Second + time.Duration(rnd.IntN(1e6))*time.Microsecond)
			e.Name = fmt.Sprintf("%08x%05x%s", at.Unix(), at.Nanosecond()/1000, fmt.Sprintf("%07x", i))
			e.CreationTimestamp = metav1.NewTime(at.Truncate(time.Second))
		}
		// Seconds, as the API server keeps them.
		done := metav1.NewTime(e.CreationTimestamp.Add(time.Duration(rnd.IntN(3)) * time.Second))
		e.Status.CompletionTime = &done
		e.Status.Duration = []float64{0, 0.25, 0.5, 1, 2.5}[rnd.IntN(5)]
		e.Spec.Method = []string{"", "GET", "POST", "DELETE"}[rnd.IntN(4)]
		e.Spec.Path = []string{"", "/", "/a?b=1", "/b/c", "/ä"}[rnd.IntN(5)]
		e.Annotations = map[string]string{kube.AnnotationFunctionGeneration: fmt.Sprint(1 + rnd.IntN(3))}
	}
	return execs
}

// randomQueries is a list request with random filters on every
// queryable attribute, nested logic, orders, a cursor, an offset and a
// limit, in the format's syntax.
func randomQueries(rnd *rand.Rand, f format, execs []*fnv1.Execution) []string {
	var qs []Query
	for range rnd.IntN(3) {
		qs = append(qs, randomFilter(rnd, execs, 0))
	}
	for range rnd.IntN(3) {
		attr := []string{"", "$id", "$createdAt", "$updatedAt", "$sequence", "status", "trigger", "duration", "responseStatusCode",
			"statusCode", "requestMethod", "requestPath", "deploymentId"}[rnd.IntN(13)]
		qs = append(qs, Query{Method: []string{qOrderAsc, qOrderDesc}[rnd.IntN(2)], Attribute: attr})
	}
	return withRandomPaging(rnd, f, execs, qs)
}

func randomFilter(rnd *rand.Rand, execs []*fnv1.Execution, depth int) Query {
	if depth < 2 && rnd.IntN(6) == 0 {
		q := Query{Method: []string{qAnd, qOr}[rnd.IntN(2)]}
		for range 2 + rnd.IntN(2) {
			q.Queries = append(q.Queries, randomFilter(rnd, execs, depth+1))
		}
		return q
	}
	e := execs[rnd.IntN(len(execs))]
	done := e.CreationTimestamp.Time
	if e.Status.CompletionTime != nil {
		done = e.Status.CompletionTime.Time
	}
	at := func(t time.Time) any {
		return t.Add(time.Duration(rnd.IntN(3)-1) * time.Duration([]int{1, 1000, 1e6}[rnd.IntN(3)])).UTC().Format(time.RFC3339Nano)
	}
	values := map[string][]any{
		"$id":                {e.Name, "e-", e.Name[:3]},
		"$createdAt":         {at(e.CreationTimestamp.Time), at(done)},
		"$updatedAt":         {at(done)},
		"$sequence":          {float64(e.CreationTimestamp.UnixMicro()), 1.7e15 + float64(rnd.IntN(1e8))},
		"status":             {"completed", "failed", "comp"},
		"trigger":            {"http", "schedule", "event", "e"},
		"duration":           {0.25, 1.0, 0.7},
		"responseStatusCode": {200.0, 404.0, 450.0},
		"statusCode":         {200.0, 500.0},
		"requestMethod":      {"GET", "POST", "P"},
		"requestPath":        {"/", "/a?b=1", "/b", "c", "ä"},
		"deploymentId":       {"1", "2", "3"},
	}
	attrs := make([]string, 0, len(values))
	for a := range values {
		attrs = append(attrs, a)
	}
	slices.Sort(attrs)
	attr := attrs[rnd.IntN(len(attrs))]
	pick := func(n int) []any {
		var out []any
		for range n {
			out = append(out, values[attr][rnd.IntN(len(values[attr]))])
		}
		return out
	}
	method := []string{qEqual, qNotEqual, qLessThan, qLessThanEqual, qGreaterThan, qGreaterThanEqual, qBetween, qNotBetween,
		qStartsWith, qNotStartsWith, qEndsWith, qNotEndsWith, qContains, qNotContains, qIsNull, qIsNotNull}[rnd.IntN(16)]
	switch method {
	case qIsNull, qIsNotNull:
		return Query{Method: method, Attribute: attr}
	case qBetween, qNotBetween:
		return Query{Method: method, Attribute: attr, Values: pick(2)}
	case qEqual, qNotEqual, qContains, qNotContains:
		return Query{Method: method, Attribute: attr, Values: pick(1 + rnd.IntN(2))}
	}
	return Query{Method: method, Attribute: attr, Values: pick(1)}
}

// TestListMergesObjectsAndArchive lists a function whose records are
// objects only (running, or not archived yet), archived only, or both
// (within the keep-live): the same totals, pages and errors as reading
// all of them once in memory, for random plans, formats and callers.
func TestListMergesObjectsAndArchive(t *testing.T) {
	ctx := context.Background()
	_, store := testArchive(t)
	rnd := rand.New(rand.NewPCG(5, 6))
	execs := archivedHistory(rnd, 150)
	for i, e := range tiedHistory(rnd, 40) {
		if !e.Status.Status.IsFinished() {
			e.UID = types.UID(fmt.Sprintf("00000000-0000-4000-9000-%012d", i))
			e.Name = "run-" + e.Name
			execs = append(execs, e)
		}
	}
	s := offlineFacade(t, Options{Archive: store}, nil)
	for i, e := range execs {
		if i%3 != 1 && e.Status.Status.IsFinished() {
			if err := store.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 != 0 || !e.Status.Status.IsFinished() {
			s.index.OnAdd(e, true)
		}
	}
	callers := []caller{{kind: apiKey}, {kind: user, userID: "alice"}}
	formats := []format{parseFormat("1.0.0"), parseFormat("1.4.0"), parseFormat("1.6.0"), parseFormat("1.9.0")}
	checked := 0
	for range 1000 {
		f, who := formats[rnd.IntN(len(formats))], callers[rnd.IntN(len(callers))]
		values := url.Values{"queries[]": randomQueries(rnd, f, execs)}
		p, aerr := planList(f, values)
		if aerr != nil {
			continue
		}
		wantTotal, want, wantErr := runRecords(p, visibleTo(who, execs))
		total, page, aerr := s.listWithArchive(ctx, request{format: f, project: offlineProject, caller: who, functionID: "fn"}, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn"}}, p)
		if (aerr == nil) != (wantErr == nil) || (aerr != nil && aerr.Type != wantErr.Type) {
			t.Fatalf("%s %v: error %v, scan %v", f.name, values, aerr, wantErr)
		}
		if total != wantTotal || !slices.Equal(names(page), ids(want)) {
			t.Fatalf("%s %v as %v:\nmerged total %d, page %v\nscan   total %d, page %v", f.name, values, who.kind, total, names(page), wantTotal, ids(want))
		}
		checked += len(page)
	}
	if checked < 2000 {
		t.Fatalf("only %d records checked", checked)
	}
}
