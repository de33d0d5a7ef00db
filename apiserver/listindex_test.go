package apiserver

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// These tests and benchmarks need no cluster: a Server on fake readers
// whose index is filled directly, as the informer would.

const (
	offlineProject = "bench"
	offlineKey     = "bench-key"
)

// offlineServer is a facade whose project has one function, "fn", with
// the given executions, and an API key offlineKey that may read them.
func offlineServer(tb testing.TB, execs []*fnv1.Execution) *Server {
	tb.Helper()
	s := offlineFacade(tb, DefaultOptions(), nil)
	for _, e := range execs {
		s.index.OnAdd(e, true)
	}
	return s
}

// finishedHistory is n finished executions of "fn", as bench/scale seeds
// them: facade IDs a few per second, 10% failed/500, ~40 B of stdout.
func finishedHistory(n int) []*fnv1.Execution {
	base := time.Unix(1_700_000_000, 0)
	out := make([]*fnv1.Execution, n)
	for i := range out {
		created := base.Add(time.Duration(i) * 300 * time.Millisecond)
		e := &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: offlineProject, UID: "uid",
				Name:              fmt.Sprintf("%08x%05x%07x", created.Unix(), created.Nanosecond()/1000, i),
				CreationTimestamp: metav1.NewTime(created.Truncate(time.Second)),
			},
			Spec: fnv1.ExecutionSpec{FunctionName: "fn", Trigger: fnv1.TriggerHTTP},
			Status: fnv1.ExecutionStatus{Status: fnv1.PhaseCompleted, StatusCode: 200, Duration: 0.1,
				Stdout: "a log line of about forty bytes, say 40\n"},
		}
		if i%10 == 0 {
			e.Status.Status, e.Status.StatusCode = fnv1.PhaseFailed, 500
		}
		out[i] = e
	}
	return out
}

func listRequest(queries ...string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/v1/functions/fn/executions?"+url.Values{"queries[]": queries}.Encode(), nil)
	req.Header.Set("X-Appwrite-Project", offlineProject)
	req.Header.Set("X-Appwrite-Key", offlineKey)
	return req
}

// BenchmarkListFilterLimit25 is bench/scale's B3 list (status = failed,
// limit 25) through the Gin engine: its cost must not grow with the
// number of stored records. The scan case (a filter the index cannot
// answer) is there for comparison: it reads every record.
func BenchmarkListFilterLimit25(b *testing.B) {
	queries := map[string][]string{
		"indexed": {`{"method":"equal","attribute":"status","values":["failed"]}`, `{"method":"limit","values":[25]}`},
		"indexed-desc": {`{"method":"equal","attribute":"status","values":["failed"]}`, `{"method":"orderDesc","attribute":"$createdAt"}`,
			`{"method":"limit","values":[25]}`},
		"scan": {`{"method":"greaterThan","attribute":"responseStatusCode","values":[499]}`, `{"method":"limit","values":[25]}`},
	}
	for _, n := range []int{1_000, 10_000, 100_000} {
		s := offlineServer(b, finishedHistory(n))
		for _, name := range []string{"indexed", "indexed-desc", "scan"} {
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					s.engine.ServeHTTP(w, listRequest(queries[name]...))
					if w.Code != http.StatusOK {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
			if name != "indexed" {
				continue
			}
			// 8 clients at once, as bench/scale's B3.
			b.Run(fmt.Sprintf("%s-8clients/n=%d", name, n), func(b *testing.B) {
				b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						w := httptest.NewRecorder()
						s.engine.ServeHTTP(w, listRequest(queries[name]...))
						if w.Code != http.StatusOK {
							b.Errorf("%d %s", w.Code, w.Body)
						}
					}
				})
			})
		}
	}
}

// TestIndexedListsAsScanned checks the index walks against the attribute
// table's reading of every execution, on a history with many executions
// created in the same second (ties), every status, trigger and 4xx, and
// two users: same totals, pages and errors, for every format's syntax.
func TestIndexedListsAsScanned(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	execs := tiedHistory(rnd, 300)
	s := offlineServer(t, execs)
	callers := []caller{{kind: apiKey}, {kind: user, userID: "alice"}}
	formats := []format{parseFormat("1.0.0"), parseFormat("1.4.0"), parseFormat("1.6.0"), parseFormat("1.8.0")}
	checked := 0
	for range 3000 {
		f, who := formats[rnd.IntN(len(formats))], callers[rnd.IntN(len(callers))]
		queries := randomIndexedQueries(rnd, f, execs)
		p, aerr := planList(f, url.Values{"queries[]": queries})
		if aerr != nil {
			t.Fatalf("%v: %v", queries, aerr)
		}
		if _, _, ok := p.indexQuery(); !ok {
			t.Fatalf("%v: not an index walk", queries)
		}
		r := request{format: f, project: offlineProject, caller: who, functionID: "fn"}
		total, page, aerr := s.listPage(r, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn"}}, p)
		wantTotal, want, wantErr := runRecords(p, visibleTo(who, execs))
		if (aerr == nil) != (wantErr == nil) || (aerr != nil && aerr.Type != wantErr.Type) {
			t.Fatalf("%s %v: error %v, scan %v", f.name, queries, aerr, wantErr)
		}
		if total != wantTotal || !slices.Equal(names(page), ids(want)) {
			t.Fatalf("%s %v as %v:\n total %d, page %v\nscan total %d, page %v", f.name, queries, who.kind, total, names(page), wantTotal, ids(want))
		}
		checked += len(page)
	}
	if checked == 0 {
		t.Fatal("no page had an execution")
	}
}

// A page's stripped executions are read from the API server, all of them
// (more than liveReads); one deleted meanwhile is left out.
func TestListPageReadsStrippedLive(t *testing.T) {
	execs := finishedHistory(40)
	s := offlineServer(t, nil)
	for i, e := range execs {
		e.Status.Stdout = strings.Repeat("x", 2000)
		if i != 3 {
			if err := s.writer.Create(bg, e.DeepCopy()); err != nil {
				t.Fatal(err)
			}
		}
		live := &fnv1.Execution{}
		if err := s.live.Get(bg, client.ObjectKeyFromObject(e), live); err == nil {
			e.UID = live.UID
		}
		stripped := e.DeepCopy()
		stripped.Status.Stdout = ""
		stripped.Annotations = map[string]string{kube.AnnotationStripped: "true"}
		s.index.OnAdd(stripped, true)
	}
	w := httptest.NewRecorder()
	s.engine.ServeHTTP(w, listRequest(`{"method":"limit","values":[30]}`))
	var list struct {
		Total      int
		Executions []struct {
			ID   string `json:"$id"`
			Logs string
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if list.Total != 40 || len(list.Executions) != 29 {
		t.Fatalf("total %d, %d executions", list.Total, len(list.Executions))
	}
	for i, e := range list.Executions {
		if want := execs[i+min(i/3, 1)].Name; e.ID != want || len(e.Logs) != 2000 {
			t.Fatalf("execution %d: %s with %d bytes of logs, want %s with 2000", i, e.ID, len(e.Logs), want)
		}
	}
}

// tiedHistory is n executions of "fn" created a few per second with names
// that carry no time, so many share their creation time.
func tiedHistory(rnd *rand.Rand, n int) []*fnv1.Execution {
	base := time.Unix(1_700_000_000, 0)
	statuses := []fnv1.ExecutionPhase{"", fnv1.PhaseWaiting, fnv1.PhaseProcessing, fnv1.PhaseCompleted, fnv1.PhaseCompleted, fnv1.PhaseFailed}
	triggers := []fnv1.Trigger{"", fnv1.TriggerHTTP, fnv1.TriggerSchedule, fnv1.TriggerEvent}
	users := []string{"", "", "alice", "bob"}
	out := make([]*fnv1.Execution, n)
	for i := range out {
		e := &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: offlineProject, Name: fmt.Sprintf("e-%03x", rnd.IntN(1<<12)) + fmt.Sprint(i),
				CreationTimestamp: metav1.NewTime(base.Add(time.Duration(rnd.IntN(n/4)) * time.Second)),
			},
			Spec:   fnv1.ExecutionSpec{FunctionName: "fn", Trigger: triggers[rnd.IntN(len(triggers))], UserID: users[rnd.IntN(len(users))]},
			Status: fnv1.ExecutionStatus{Status: statuses[rnd.IntN(len(statuses))], StatusCode: int32([]int{200, 404, 500}[rnd.IntN(3)])},
		}
		if e.Status.Status == "" && rnd.IntN(2) == 0 {
			e.Spec.ScheduledAt = &metav1.Time{Time: base}
		}
		out[i] = e
	}
	return out
}

// randomIndexedQueries is a list request the index answers: equal filters
// on status and trigger, an order on $createdAt (or 1.0's ""), a cursor,
// an offset and a limit, in the format's syntax.
func randomIndexedQueries(rnd *rand.Rand, f format, execs []*fnv1.Execution) []string {
	pick := func(vals ...string) []any {
		var out []any
		for range 1 + rnd.IntN(2) {
			out = append(out, vals[rnd.IntN(len(vals))])
		}
		return out
	}
	var qs []Query
	for range rnd.IntN(3) {
		if rnd.IntN(2) == 0 {
			qs = append(qs, Query{Method: qEqual, Attribute: "status", Values: pick("waiting", "scheduled", "processing", "completed", "failed")})
		} else {
			qs = append(qs, Query{Method: qEqual, Attribute: "trigger", Values: pick("http", "schedule", "event")})
		}
	}
	orders := []string{"", "$createdAt"}
	if f.atLeast(v1_5) {
		orders = orders[1:]
	}
	if rnd.IntN(4) > 0 {
		qs = append(qs, Query{Method: []string{qOrderAsc, qOrderDesc}[rnd.IntN(2)], Attribute: orders[rnd.IntN(len(orders))]})
	}
	return withRandomPaging(rnd, f, execs, qs)
}

// querySyntaxOf writes a query as a client of format f sends it.
// withRandomPaging ends a random plan: perhaps a cursor (now and then one
// that does not exist), perhaps an offset, and a limit; all in f's syntax.
func withRandomPaging(rnd *rand.Rand, f format, execs []*fnv1.Execution, qs []Query) []string {
	if rnd.IntN(3) > 0 {
		id := execs[rnd.IntN(len(execs))].Name
		if rnd.IntN(10) == 0 {
			id = "missing"
		}
		qs = append(qs, Query{Method: []string{qCursorAfter, qCursorBefore}[rnd.IntN(2)], Values: []any{id}})
	}
	if rnd.IntN(2) == 0 {
		qs = append(qs, Query{Method: qOffset, Values: []any{float64(rnd.IntN(20))}})
	}
	qs = append(qs, Query{Method: qLimit, Values: []any{float64(1 + rnd.IntN(40))}})
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = querySyntaxOf(q, f)
	}
	return out
}

func querySyntaxOf(q Query, f format) string {
	if f.atLeast(v1_5) {
		m := map[string]any{"method": q.Method, "values": q.Values}
		if q.Attribute != "" {
			m["attribute"] = q.Attribute
		}
		raw, _ := json.Marshal(m)
		return string(raw)
	}
	raw, _ := json.Marshal(q.Values)
	switch q.Method {
	case qLimit, qOffset, qCursorAfter, qCursorBefore:
		return fmt.Sprintf("%s(%s)", q.Method, strings.Trim(string(raw), "[]"))
	case qOrderAsc, qOrderDesc:
		return fmt.Sprintf("%s(%q)", q.Method, q.Attribute)
	}
	return fmt.Sprintf("%s(%q, %s)", q.Method, q.Attribute, raw)
}

func visibleTo(who caller, execs []*fnv1.Execution) []record {
	var out []record
	for _, e := range execs {
		if who.canSee(e.Spec.UserID) {
			out = append(out, summarize(e))
		}
	}
	return out
}

func ids(recs []record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func names(es []*fnv1.Execution) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

// The models write their JSON themselves, exactly as encoding/json writes
// each value (escaping included).
func TestObjectJSONAsEncodingJSON(t *testing.T) {
	tricky := "a\"b\\c\n\t\x01<script>&\u2028\u2029é\xff\x7f💡"
	e := finishedHistory(1)[0]
	e.Status.Stdout, e.Status.Stderr, e.Status.Response = tricky, "", tricky
	e.Status.ResponseHeaders = map[string]string{"content-type": tricky}
	e.Spec.Headers, e.Spec.UserID = map[string]string{"Content-Type": tricky}, "alice"
	e.Status.Duration = 1e-7
	for _, f := range []string{"1.0.0", "1.4.0", "1.6.0", "1.9.0"} {
		rec := toRecord(e, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: e.Spec.FunctionName}}, true)
		rec.SyncAnswer = true
		one := rec.render(parseFormat(f))
		got, err := one.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want := referenceJSON(t, one)
		if string(got) != want {
			t.Fatalf("%s:\n got %s\nwant %s", f, got, want)
		}
		list, err := renderList(3, []rawJSON{got, got}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if wantList := `{"total":3,"executions":[` + want + "," + want + "]}"; string(list) != wantList {
			t.Fatalf("%s list:\n got %s\nwant %s", f, list, wantList)
		}
	}
}

// A kept rendering is what rendering again would give, for as long as
// the record, the way it is shown and its Function's ID stay the same.
func TestRenderedRecordsAreKeptOnlyWhileTheyHold(t *testing.T) {
	kept := newRenderedRecords()
	fn := &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn"}}
	e := finishedHistory(1)[0]
	e.UID, e.ResourceVersion, e.Spec.FunctionName = "uid-1", "7", "fn"
	fresh := func(e *fnv1.Execution, fn *fnv1.Function, logs bool, f format) string {
		raw, err := toRecord(e, fn, logs).render(f).appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	check := func(what string, e *fnv1.Execution, fn *fnv1.Function, logs bool, f format) {
		t.Helper()
		raw, err := kept.render(e, fn, logs, f)
		if err != nil {
			t.Fatal(err)
		}
		if want := fresh(e, fn, logs, f); string(raw) != want {
			t.Fatalf("%s:\n got %s\nwant %s", what, raw, want)
		}
	}
	e.Status.Stdout = "secret log"
	for _, f := range []string{"1.0.0", "1.9.0"} {
		check("first", e, fn, true, parseFormat(f))
		check("kept", e, fn, true, parseFormat(f))
		check("without logs", e, fn, false, parseFormat(f))
	}
	if kept.cache.Len() != 4 {
		t.Fatalf("kept %d renderings, want 4", kept.cache.Len())
	}
	changed := e.DeepCopy()
	changed.ResourceVersion, changed.Status.Stdout = "8", "another log"
	check("a new version", changed, fn, true, parseFormat("1.9.0"))
	labelled := fn.DeepCopy()
	labelled.Labels = map[string]string{kube.LabelFunctionID: "My_Fn"}
	check("a new function ID", e, labelled, true, parseFormat("1.9.0"))
	running := e.DeepCopy()
	running.UID, running.Status.Status = "uid-2", fnv1.PhaseProcessing
	check("unfinished", running, fn, true, parseFormat("1.9.0"))
	if kept.cache.Len() != 6 {
		t.Fatalf("kept %d renderings, want 6 (an unfinished record is not kept)", kept.cache.Len())
	}
}

func TestJSONStringAsEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", "\"", "\\", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "é", "\u2028", "\u2029", "💡", "\xff", "\xe2\x80", "/"}
	for range 5000 {
		var b strings.Builder
		for range rnd.IntN(12) {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		want, _ := json.Marshal(b.String())
		if got := appendJSONString(nil, b.String()); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", b.String(), got, want)
		}
	}
}

// referenceJSON is an object written by encoding/json, value by value.
func referenceJSON(t *testing.T, o object) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.key)
		var v []byte
		var err error
		if items, ok := kv.value.([]object); ok {
			parts := make([]string, len(items))
			for j, item := range items {
				parts[j] = referenceJSON(t, item)
			}
			v = []byte("[" + strings.Join(parts, ",") + "]")
		} else if v, err = json.Marshal(kv.value); err != nil {
			t.Fatal(err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}
