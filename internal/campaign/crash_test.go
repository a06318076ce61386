package campaign

import (
	"math/rand/v2"
	"testing"
)

// The kill plan: k kills, one per equal slice of the batch, in order,
// the last leaving 40 units; every window gets its share.
func TestPlanKills(t *testing.T) {
	for _, tc := range []struct{ units, k int }{{3000, 25}, {240, 3}, {600, 4}} {
		plan := planKills(rand.New(rand.NewPCG(1, 2)), tc.units, tc.k)
		if len(plan) != tc.k {
			t.Fatalf("%d kills planned, want %d", len(plan), tc.k)
		}
		kinds := map[string]int{}
		for i, p := range plan {
			kinds[p.kind]++
			if i > 0 && p.at <= plan[i-1].at {
				t.Errorf("%d/%d: kill %d at %d not after kill %d at %d", tc.units, tc.k, i, p.at, i-1, plan[i-1].at)
			}
			if p.at < uint64(tc.units*3/100) || p.at > uint64(tc.units-40) {
				t.Errorf("%d/%d: kill %d at %d outside the batch's 3%%..(end-40)", tc.units, tc.k, i, p.at)
			}
		}
		for _, w := range crashWindows[1:] {
			if kinds[w.kind] == 0 {
				t.Errorf("%d/%d: no kill in window %s (%v)", tc.units, tc.k, w.kind, kinds)
			}
		}
		if tc.k >= 25 && kinds[killRandom] < tc.k/2 {
			t.Errorf("%d/%d: %d random kills, want at least half", tc.units, tc.k, kinds[killRandom])
		}
	}
}

func TestPointToKills(t *testing.T) {
	tries := []killTry{{kill: plannedKill{kind: killRandom}, made: true, plcAt: 100},
		{kill: plannedKill{kind: "pack-label"}, made: true, plcAt: 220}}
	got := pointToKills([]string{"unit 150 left as good but its code X is decommissioned in the ledger", "ledger has 9 commissioned unit codes", "unit 300: x"}, tries)
	want := []string{"unit 150 left as good but its code X is decommissioned in the ledger (the unit was on the line at kill 2, pack-label)",
		"ledger has 9 commissioned unit codes", "unit 300: x (after the last kill)"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %q, want %q", i, got[i], want[i])
		}
	}
}
