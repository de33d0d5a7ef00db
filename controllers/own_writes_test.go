package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

func TestOwnWritesWaitForTheCacheWithinGrace(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	w := newOwnWrites(clk, 10*time.Second)
	at := func(rv string) *fnv1.Execution {
		return &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{UID: "u1", ResourceVersion: rv}}
	}
	if wait := w.behind(at("1")); wait != 0 {
		t.Fatalf("never written: wait %s", wait)
	}
	w.wrote(at("2"))
	if wait := w.behind(at("1")); wait != 10*time.Second {
		t.Fatalf("cache before the write: wait %s, want the grace", wait)
	}
	clk.SetTime(clk.Now().Add(4 * time.Second))
	if wait := w.behind(at("1")); wait != 6*time.Second {
		t.Fatalf("4 s later: wait %s, want 6 s", wait)
	}
	if wait := w.behind(at("2")); wait != 0 {
		t.Fatalf("cache shows the write: wait %s", wait)
	}
	if wait := w.behind(at("1")); wait != 0 {
		t.Fatalf("once seen the write is forgotten, yet wait %s", wait)
	}
	w.wrote(at("3"))
	clk.SetTime(clk.Now().Add(10 * time.Second))
	if wait := w.behind(at("4")); wait != 0 {
		t.Fatalf("after the grace (another client wrote): wait %s", wait)
	}
	d := newSentDeletes()
	d.add("job-uid")
	if !d.sent("job-uid") || d.sent("other") {
		t.Fatal("sent deletes do not remember what was sent")
	}
}
