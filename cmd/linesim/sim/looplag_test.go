package sim

import (
	"testing"
	"time"
)

func TestLoopLagObserve(t *testing.T) {
	var g loopLag
	t0 := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	for i, late := range []time.Duration{0, 3 * time.Millisecond, 6 * time.Millisecond, 17 * time.Millisecond, 10 * time.Millisecond} {
		g.observe(t0.Add(time.Duration(i)*10*time.Millisecond), late)
	}
	l := g.snapshot()
	if l.Events != 5 || l.Over5 != 3 || l.Over10 != 1 || l.MaxMs != 17 {
		t.Fatalf("counts %+v, want 5 events, 3 over 5 ms, 1 over 10 ms, max 17", l)
	}
	if len(l.Late) != 3 || l.Late[1].Ms != 17 || !l.Late[1].Due.Equal(t0.Add(30*time.Millisecond)) {
		t.Fatalf("late wakes %+v, want the three of 5 ms or more, the 17 ms one due at +30 ms", l.Late)
	}
	l.Late[0].Ms = 99
	if g.snapshot().Late[0].Ms == 99 {
		t.Fatal("a snapshot shares its list with the loop")
	}
	for _, tc := range []struct {
		from, to time.Duration
		want     float64
	}{
		{0, 100 * time.Millisecond, 17},
		{35 * time.Millisecond, 100 * time.Millisecond, 10},
		{0, 15 * time.Millisecond, 0},
		{21 * time.Millisecond, 29 * time.Millisecond, 0},
	} {
		if got := g.snapshot().Overlap(t0.Add(tc.from), t0.Add(tc.to)); got != tc.want {
			t.Errorf("Overlap(+%s, +%s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
	for range maxLateWakes + 10 {
		g.observe(t0, 20*time.Millisecond)
	}
	if l := g.snapshot(); len(l.Late) != maxLateWakes || l.Over10 != maxLateWakes+11 {
		t.Fatalf("after many late wakes: %d kept, %d counted; want %d kept, all counted", len(l.Late), l.Over10, maxLateWakes)
	}
}
