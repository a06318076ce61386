package sim

import (
	"encoding/json"
	"testing"
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
