package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
)

// A get of an execution that is no longer an object reads the archive,
// with the visibility rules of the objects: API keys see every record with
// its logs, a user only their own without logs, guests none; the function
// is checked first. A delete takes the record from the archive too.
// Without an archive such a get is 404, as before.
func TestGetFallsBackToTheArchive(t *testing.T) {
	pg, store := testArchive(t)
	done := metav1.NewTime(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	rec := func(fn, id, user string) *fnv1.Execution {
		return &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{Namespace: offlineProject, Name: id, UID: k8stypes.UID("00000000-0000-4000-8000-0000000000" + id[len(id)-2:]),
				CreationTimestamp: metav1.NewTime(done.Add(-time.Second))},
			Spec: fnv1.ExecutionSpec{FunctionName: fn, UserID: user, Trigger: fnv1.TriggerHTTP},
			Status: fnv1.ExecutionStatus{Status: fnv1.PhaseCompleted, StatusCode: 201, Response: "archived response",
				Stdout: "archived logs", CompletionTime: &done, Duration: 0.5},
		}
	}
	if err := store.Put(context.Background(), rec("open", "byalice01", "alice"), rec("fn", "bykey02", "")); err != nil {
		t.Fatal(err)
	}
	s := offlineFacade(t, Options{Archive: store}, nil)
	for _, c := range []struct {
		name, fn, id, key, user string
		code                    int
		errType, logs           string
	}{
		{name: "API key", fn: "open", id: "byalice01", key: offlineKey, code: 200, logs: "archived logs"},
		{name: "its user, without logs", fn: "open", id: "byalice01", user: "alice", code: 200},
		{name: "another user", fn: "open", id: "byalice01", user: "bob", code: 404, errType: errExecutionNotFound},
		{name: "a guest, who may not read executions", fn: "open", id: "byalice01", code: 401, errType: "general_unauthorized_scope"},
		{name: "another function", fn: "fn", id: "byalice01", key: offlineKey, code: 404, errType: errExecutionNotFound},
		{name: "a missing function", fn: "missing", id: "byalice01", key: offlineKey, code: 404, errType: errFunctionNotFound},
		{name: "a record of an API key", fn: "fn", id: "bykey02", key: offlineKey, code: 200, logs: "archived logs"},
		{name: "no such record", fn: "open", id: "nothing", key: offlineKey, code: 404, errType: errExecutionNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := offlineGet(t, s, c.fn, c.id, c.key, c.user)
			var body map[string]any
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != c.code || (c.errType != "" && body["type"] != c.errType) {
				t.Fatalf("answered %d %s, want %d %s", w.Code, w.Body, c.code, c.errType)
			}
			if c.code == 200 && (body["$id"] != c.id || body["responseBody"] != "" /* only a sync create shows it (1.4+) */ ||
				body["logs"] != c.logs || body["responseStatusCode"] != 201.0 || body["status"] != "completed") {
				t.Fatalf("answered %s", w.Body)
			}
		})
	}
	for who, want := range map[string]string{"": "byalice01 archived logs", "alice": "byalice01 ", "bob": ""} {
		key := offlineKey
		if who != "" {
			key = ""
		}
		w := offlineDo(t, s, http.MethodGet, "open", "", key, who)
		var list struct {
			Total      int
			Executions []map[string]any
		}
		_ = json.Unmarshal(w.Body.Bytes(), &list)
		got := ""
		for _, e := range list.Executions {
			got += fmt.Sprint(e["$id"], " ", e["logs"])
		}
		if w.Code != http.StatusOK || got != want || list.Total != len(list.Executions) {
			t.Fatalf("list as %q: %d %s, want the records %q", who, w.Code, w.Body, want)
		}
	}
	testDeleteArchived(t, s, store, rec("open", "live03", "alice"))
	if w := offlineGet(t, offlineFacade(t, Options{}, nil), "open", "byalice01", offlineKey, ""); w.Code != http.StatusNotFound {
		t.Fatalf("without an archive: %d %s, want 404", w.Code, w.Body)
	}
	pg.Stop()
	if w := offlineGet(t, s, "open", "byalice01", offlineKey, ""); w.Code != http.StatusInternalServerError {
		t.Fatalf("with the archive down: %d %s, want 500", w.Code, w.Body)
	}
}

// A delete takes the record from the archive too: an archived record
// within its keep-live (still an object), and one that is only archived.
// Only API keys delete.
func testDeleteArchived(t *testing.T, s *Server, store *archive.Store, live *fnv1.Execution) {
	t.Helper()
	ctx := context.Background()
	if err := store.Put(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := s.writer.Create(ctx, live.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	s.index.OnAdd(live, false) // what the informer would tell
	if w := offlineDo(t, s, http.MethodDelete, "open", "live03", offlineKey, ""); w.Code != http.StatusNoContent {
		t.Fatalf("deleting a live archived record: %d %s", w.Code, w.Body)
	}
	if _, err := store.Get(ctx, offlineProject, "open", "live03"); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("the deleted object's record is still archived (%v)", err)
	}
	s.index.OnDelete(live)
	if w := offlineGet(t, s, "open", "live03", offlineKey, ""); w.Code != http.StatusNotFound {
		t.Fatalf("a get after the delete: %d %s, want 404", w.Code, w.Body)
	}

	if w := offlineDo(t, s, http.MethodDelete, "open", "byalice01", "", "alice"); w.Code != http.StatusUnauthorized {
		t.Fatalf("a user deleting their archived record: %d %s, want 401", w.Code, w.Body)
	}
	for i, want := range []int{http.StatusNoContent, http.StatusNotFound} {
		if w := offlineDo(t, s, http.MethodDelete, "open", "byalice01", offlineKey, ""); w.Code != want {
			t.Fatalf("delete %d of an archived record: %d %s, want %d", i+1, w.Code, w.Body, want)
		}
	}
	if w := offlineGet(t, s, "open", "byalice01", offlineKey, ""); w.Code != http.StatusNotFound {
		t.Fatalf("a get after the delete: %d %s, want 404", w.Code, w.Body)
	}
}

func offlineGet(t *testing.T, s *Server, fn, id, key, user string) *httptest.ResponseRecorder {
	t.Helper()
	return offlineDo(t, s, http.MethodGet, fn, id, key, user)
}

func offlineDo(t *testing.T, s *Server, method, fn, id, key, user string) *httptest.ResponseRecorder {
	t.Helper()
	path := "/v1/functions/" + fn + "/executions"
	if id != "" {
		path += "/" + id
	}
	return s.serveOffline(t, httptest.NewRequest(method, path, nil), key, user)
}

// testArchive is an archive on a throwaway PostgreSQL (pgtest), closed
// when the test ends; under -short the test is skipped.
func testArchive(t *testing.T) (*pgtest.Server, *archive.Store) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Start(t)
	store, err := archive.Open(context.Background(), pg.DSN(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return pg, store
}
