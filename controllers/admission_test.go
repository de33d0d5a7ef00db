package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

func TestPlanSlots(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	limits := map[string]int{"a": 2, "b": 5}
	limitOf := func(fn string) int { return limits[fn] }
	cases := map[string]struct {
		cands []candidate
		nsCap int
		// want is each waiting candidate's name and hold, in queue order.
		want []string
	}{
		"the oldest get the function's slots, then time, then name": {
			cands: []candidate{{name: "z", function: "a", queued: at(0)}, {name: "y", function: "a", queued: at(1)}, {name: "x", function: "a", queued: at(1)}},
			want:  []string{"z:0", "x:0", "y:1"},
		},
		"running ones take slots first": {
			cands: []candidate{{name: "r", function: "a", queued: at(9), running: true}, {name: "w1", function: "a", queued: at(0)}, {name: "w2", function: "a", queued: at(1)}},
			want:  []string{"w1:0", "w2:1"},
		},
		"the namespace cap holds whatever the function": {
			cands: []candidate{{name: "r", function: "a", queued: at(0), running: true}, {name: "b1", function: "b", queued: at(1)}, {name: "b2", function: "b", queued: at(2)}},
			nsCap: 2,
			want:  []string{"b1:0", "b2:2"},
		},
		"one held by its function does not hold back another function": {
			cands: []candidate{
				{name: "r1", function: "a", queued: at(0), running: true}, {name: "r2", function: "a", queued: at(0), running: true},
				{name: "a3", function: "a", queued: at(1)}, {name: "b1", function: "b", queued: at(2)},
			},
			nsCap: 3,
			want:  []string{"a3:1", "b1:0"},
		},
		"no cap when it is 0": {
			cands: []candidate{{name: "b1", function: "b", queued: at(0)}, {name: "b2", function: "b", queued: at(0)}, {name: "b3", function: "b", queued: at(0)}},
			want:  []string{"b1:0", "b2:0", "b3:0"},
		},
		"over a lowered limit, none starts": {
			cands: []candidate{{name: "r1", function: "a", running: true}, {name: "r2", function: "a", running: true}, {name: "r3", function: "a", running: true}, {name: "w", function: "a"}},
			want:  []string{"w:1"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, v := range planSlots(tc.cands, tc.nsCap, limitOf) {
				got = append(got, v.name+":"+string(rune('0'+v.hold)))
			}
			NewWithT(t).Expect(got).To(Equal(tc.want))
		})
	}
}

// A delayed Execution queues once due, at its due time; a slot given in
// this process counts as running before the cache shows its Job.
func TestAsCandidate(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	created := metav1.NewTime(now.Add(-time.Hour))
	exec := func(name string, scheduledAt *time.Time) *fnv1.Execution {
		e := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: created}, Spec: fnv1.ExecutionSpec{FunctionName: "f"}}
		if scheduledAt != nil {
			e.Spec.ScheduledAt = &metav1.Time{Time: *scheduledAt}
		}
		return e
	}
	r := &ExecutionReconciler{}
	r.admission.started = map[types.NamespacedName]bool{{Namespace: "ns", Name: "given"}: true}
	later, earlier := now.Add(time.Minute), now.Add(-time.Minute)

	_, ok := r.asCandidate(exec("later", &later), nil, now)
	g.Expect(ok).To(BeFalse(), "not due yet")
	c, ok := r.asCandidate(exec("due", &earlier), nil, now)
	g.Expect(ok).To(BeTrue())
	g.Expect(c.queued).To(Equal(earlier))
	g.Expect(c.running).To(BeFalse())
	c, _ = r.asCandidate(exec("plain", nil), map[string]bool{jobName("plain"): true}, now)
	g.Expect(c.running).To(BeTrue(), "its Job is cached")
	g.Expect(c.queued).To(Equal(created.Time))
	c, _ = r.asCandidate(exec("given", nil), nil, now)
	g.Expect(c.running).To(BeTrue(), "given a slot here")
}
