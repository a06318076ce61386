package sim

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestParseActionBody(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
	}{
		{"", true}, {"  \n", true}, {"{}", true}, {" { } \n", true}, {"null", true},
		{"[]", false}, {`{"x":1}`, false}, {"{} {}", false}, {"{}x", false}, {"{", false}, {`"purge"`, false},
	}
	for _, tc := range tests {
		if err := parseActionBody([]byte(tc.body)); (err == nil) != tc.ok {
			t.Errorf("parseActionBody(%q) = %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
	if err := parseActionBody(make([]byte, maxActionBody+1)); err == nil {
		t.Error("oversized body accepted")
	}
}

func FuzzParseActionBody(f *testing.F) {
	for _, s := range []string{"", "{}", "null", `{"a":1}`, "{} {}", "[]", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := parseActionBody(b); err == nil && len(b) > maxActionBody {
			t.Fatalf("accepted %d bytes", len(b))
		}
	})
}

func TestGateOutcomeText(t *testing.T) {
	for o := GateNone; o <= GateBinFull; o++ {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var back GateOutcome
		if err := json.Unmarshal(b, &back); err != nil || back != o {
			t.Fatalf("%s → %s → %v %v", o, b, back, err)
		}
	}
	if _, err := json.Marshal(GateOutcome(9)); err == nil {
		t.Error("outcome 9 marshalled")
	}
	var o GateOutcome
	if err := json.Unmarshal([]byte(`"lost"`), &o); err == nil {
		t.Error(`"lost" accepted`)
	}
	if !GateBinFull.Escaped() || !GateRejectFailed.Escaped() || GateRejected.Escaped() {
		t.Error("Escaped wrong")
	}
	// The ring's layouts: outcome s in slot (s-1)%32.
	var r gateRing
	for i := uint32(1); i <= GateRingSize+2; i++ {
		r.add(GateRecord{Item: 1000 + i, Outcome: GatePassed})
	}
	regs, arr := r.registers(), r.array()
	if len(regs) != IRCount-IRGateCount || len(arr) != 1+2*GateRingSize {
		t.Fatalf("%d registers, %d array elements", len(regs), len(arr))
	}
	if regs[1] != GateRingSize+2 || arr[0] != GateRingSize+2 {
		t.Fatalf("count %d / %d", regs[1], arr[0])
	}
	// Outcome 33 (item 1033) is in slot 0, outcome 3 (item 1003) in slot 2.
	if regs[2] != 0 || regs[3] != 1033 || regs[4] != uint16(GatePassed) || arr[1] != 1033 || arr[5] != 1003 || r.last().Item != 1034 {
		t.Fatalf("registers %v array %v", regs[:10], arr[:7])
	}
}

// The infeed keeps its schedule however late the loop gets round to each
// unit: timed from when the loop ran, every late run lengthened the pitch,
// and a belt asked for 12,000 units/min made 9,500 (session 22). A loop
// later than half a pitch does not put units on top of each other to
// catch up.
func TestNextDueKeepsTheRate(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	iv := 5 * time.Millisecond // 12,000 units/min
	cases := []struct {
		name     string
		due, now time.Time
		want     time.Time
	}{
		{"on time", t0, t0, t0.Add(iv)},
		{"late by less than half a pitch", t0, t0.Add(2 * time.Millisecond), t0.Add(iv)},
		{"late by more", t0, t0.Add(4 * time.Millisecond), t0.Add(4*time.Millisecond + iv/2)},
		{"late by pitches", t0, t0.Add(3 * iv), t0.Add(3*iv + iv/2)},
	}
	for _, c := range cases {
		if got := nextDue(c.due, c.now, iv); !got.Equal(c.want) {
			t.Errorf("%s: next due %v after t0, want %v", c.name, got.Sub(t0), c.want.Sub(t0))
		}
	}
	// A loop that runs every unit 2 ms late puts 1,000 units on the belt
	// in 999 pitches, as an on-time one does.
	due, f := t0, InfeedTruth{}
	for range 1000 {
		now := due.Add(2 * time.Millisecond)
		f.add(now)
		due = nextDue(due, now, iv)
	}
	f = f.rated()
	if f.Units != 1000 || f.Last.Sub(f.First) != 999*iv || math.Abs(f.Rate-12000) > 1e-6 {
		t.Fatalf("infeed %+v (span %v), want 1000 units over 999 pitches at 12,000/min", f, f.Last.Sub(f.First))
	}
}

func TestInfeedRate(t *testing.T) {
	var f InfeedTruth
	t0 := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	f.add(t0)
	if f = f.rated(); f.Units != 1 || f.Rate != 0 || !f.First.Equal(t0) {
		t.Fatalf("one unit: %+v, want no rate yet", f)
	}
	f.add(t0.Add(10 * time.Millisecond))
	f.add(t0.Add(20 * time.Millisecond))
	if f = f.rated(); f.Units != 3 || math.Abs(f.Rate-6000) > 1e-6 || !f.Last.Equal(t0.Add(20*time.Millisecond)) {
		t.Fatalf("three units 10 ms apart: %+v, want 6,000/min", f)
	}
}
