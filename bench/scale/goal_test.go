package main

import (
	"math"
	"testing"
)

func TestGoal(t *testing.T) {
	for _, tc := range []struct {
		g    goal
		want string
	}{
		{atMost(1.1, 1.15, "≤ 1.15×"), "yes"},
		{atMost(1.2, 1.15, "≤ 1.15×"), "no"},
		{atLeast(math.NaN(), 300, "≥ 300/s"), "n/a"},
		{atLeast(6000, 5000, "a").and(atLeast(30, 20, "b")), "yes"},
		{atLeast(6000, 5000, "a").and(atLeast(10, 20, "b")), "no"},
		{atLeast(6000, 5000, "a").and(atLeast(math.Inf(1), 20, "b")), "n/a"},
		{noGoal, ""},
	} {
		if tc.g.met != tc.want {
			t.Errorf("%+v: met %q, want %q", tc.g, tc.g.met, tc.want)
		}
	}
	if g := atLeast(1, 0, "a").and(atLeast(1, 0, "b")); g.target != "a; b" {
		t.Errorf("target %q", g.target)
	}
}
