package link

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/plc"
)

// ring builds a snapshot of n slots holding outcome numbers count-n+1..count
// (those that exist), each outcome s for item 100+s with outcome out(s).
func ring(n int, count uint32, out func(s uint32) uint32) GateSnapshot {
	g := GateSnapshot{Count: count, Items: make([]uint32, n), Outcomes: make([]uint32, n)}
	for s := uint64(count); s >= 1 && uint64(count)-s < uint64(n); s-- {
		slot := (s - 1) % uint64(n)
		g.Items[slot], g.Outcomes[slot] = 100+uint32(s), out(uint32(s))
	}
	return g
}

func cycle(s uint32) uint32 { return 1 + (s-1)%4 }

func TestGateTracker(t *testing.T) {
	at := time.Unix(0, 0)
	tests := []struct {
		name  string
		last  uint64
		snaps []GateSnapshot
		want  []string
	}{
		{"empty ring", 0, []GateSnapshot{ring(4, 0, cycle)}, nil},
		{"first snapshot reports the ring", 0, []GateSnapshot{ring(4, 3, cycle)},
			[]string{"gate #1 item 101 passed", "gate #2 item 102 rejected", "gate #3 item 103 reject-failed"}},
		{"first snapshot of a full ring: gap then the ring in seq order", 0, []GateSnapshot{ring(4, 10, cycle)},
			[]string{"gate-gap #1..#6", "gate #7 item 107 reject-failed", "gate #8 item 108 bin-full", "gate #9 item 109 passed", "gate #10 item 110 rejected"}},
		{"new outcomes only", 10, []GateSnapshot{ring(4, 12, cycle), ring(4, 12, cycle), ring(4, 13, cycle)},
			[]string{"gate #11 item 111 reject-failed", "gate #12 item 112 bin-full", "gate #13 item 113 passed"}},
		{"exactly a ring's worth since last: no gap", 6, []GateSnapshot{ring(4, 10, cycle)},
			[]string{"gate #7 item 107 reject-failed", "gate #8 item 108 bin-full", "gate #9 item 109 passed", "gate #10 item 110 rejected"}},
		{"one more than the ring: gap of one", 5, []GateSnapshot{ring(4, 10, cycle)},
			[]string{"gate-gap #6..#6", "gate #7 item 107 reject-failed", "gate #8 item 108 bin-full", "gate #9 item 109 passed", "gate #10 item 110 rejected"}},
		{"PLC restart: reset, then the new ring", 10, []GateSnapshot{ring(4, 2, cycle)},
			[]string{"gate-reset to count 2", "gate #1 item 101 passed", "gate #2 item 102 rejected"}},
		{"ring cleared to zero", 10, []GateSnapshot{ring(4, 0, cycle), ring(4, 1, cycle)},
			[]string{"gate-reset to count 0", "gate #1 item 101 passed"}},
		{"ring of one", 0, []GateSnapshot{ring(1, 1, cycle), ring(1, 3, cycle)},
			[]string{"gate #1 item 101 passed", "gate-gap #2..#2", "gate #3 item 103 reject-failed"}},
		// (items are 100+seq, wrapped)
		{"count at the top of u32", 0, []GateSnapshot{ring(2, 0xFFFFFFFF, func(uint32) uint32 { return 2 })},
			[]string{"gate-gap #1..#4294967293", "gate #4294967294 item 98 rejected", "gate #4294967295 item 99 rejected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &GateTracker{last: tt.last}
			var got []string
			for _, g := range tt.snaps {
				for _, e := range tr.Observe(g, at) {
					got = append(got, e.String())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if last := tt.snaps[len(tt.snaps)-1].Count; tr.Last() != uint64(last) {
				t.Fatalf("Last() = %d, want %d", tr.Last(), last)
			}
		})
	}
}

func TestGateTrackerNonsense(t *testing.T) {
	for _, raw := range []uint32{0, 5, 0xFFFF} {
		tr := &GateTracker{}
		g := ring(4, 2, func(s uint32) uint32 {
			if s == 2 {
				return raw
			}
			return 1
		})
		evs := tr.Observe(g, time.Time{})
		if len(evs) != 2 || evs[0].Kind != plc.EventGate || evs[1].Kind != plc.EventGateError {
			t.Fatalf("outcome %d: events %v", raw, evs)
		}
		e := evs[1]
		if e.Seq != 2 || e.Item != 102 || e.Outcome != 0 || e.Err == nil {
			t.Fatalf("outcome %d: error event %+v", raw, e)
		}
		for _, want := range []string{"#2", "slot 1", "item 102", "value " + strconv.FormatUint(uint64(raw), 10)} {
			if !strings.Contains(e.Err.Error(), want) {
				t.Errorf("outcome %d: %q does not name %q", raw, e.Err, want)
			}
		}
		if tr.Last() != 2 {
			t.Fatalf("a nonsense outcome stopped the ring at %d", tr.Last())
		}
	}
	tr := &GateTracker{last: 3}
	if evs := tr.Observe(GateSnapshot{Count: 9}, time.Time{}); len(evs) != 1 || evs[0].Kind != plc.EventGateError || tr.Last() != 3 {
		t.Fatalf("shapeless snapshot: %v, last %d", evs, tr.Last())
	}
}

func TestGateFromRegisters(t *testing.T) {
	regs := []uint16{0x0001, 0x0002, 0x000A, 0x000B, 3, 0x000C, 0x000D, 4}
	g, err := GateFromRegisters(regs, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	if g.Count != 0x00010002 || g.Items[0] != 0x000A000B || g.Outcomes[0] != 3 || g.Items[1] != 0x000C000D || g.Outcomes[1] != 4 {
		t.Fatalf("high-first %+v", g)
	}
	g, err = GateFromRegisters(regs, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if g.Count != 0x00020001 || g.Items[0] != 0x000B000A || g.Items[1] != 0x000D000C {
		t.Fatalf("low-first %+v", g)
	}
	for _, tc := range []struct {
		regs int
		n    int
		want string
	}{{7, 2, "7 registers, want 8"}, {9, 2, "9 registers, want 8"}, {2, 0, "length must be 1..40"}, {125, 41, "length must be 1..40"}} {
		if _, err := GateFromRegisters(make([]uint16, tc.regs), tc.n, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d registers, %d entries: %v, want %q", tc.regs, tc.n, err, tc.want)
		}
	}
}

func TestGateFromArray(t *testing.T) {
	g, err := GateFromArray([]uint32{7, 107, 2, 106, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if g.Count != 7 || g.Items[0] != 107 || g.Outcomes[0] != 2 || g.Items[1] != 106 || g.Outcomes[1] != 1 {
		t.Fatalf("%+v", g)
	}
	if _, err := GateFromArray([]uint32{7, 107, 2}, 2); err == nil || !strings.Contains(err.Error(), "array of 3 values, want 5") {
		t.Fatalf("short array: %v", err)
	}
}

// checkGate checks what any snapshot may imply, whatever the PLC sent.
func checkGate(t *testing.T, before uint64, g GateSnapshot, evs []plc.Event, after uint64) {
	t.Helper()
	n := uint64(len(g.Items))
	if after != uint64(g.Count) {
		t.Fatalf("last %d after a snapshot of count %d", after, g.Count)
	}
	last := before
	i := 0
	if i < len(evs) && evs[i].Kind == plc.EventGateReset {
		if uint64(g.Count) >= before || evs[i].Seq != uint64(g.Count) {
			t.Fatalf("reset %v with last %d, count %d", evs[i], before, g.Count)
		}
		last, i = 0, i+1
	} else if uint64(g.Count) < before {
		t.Fatalf("count %d < last %d without a reset: %v", g.Count, before, evs)
	}
	if i < len(evs) && evs[i].Kind == plc.EventGateGap {
		e := evs[i]
		if uint64(e.From) != last+1 || e.To < e.From || uint64(g.Count)-uint64(e.To) != n {
			t.Fatalf("gap %v with last %d, count %d, ring %d", e, last, g.Count, n)
		}
		last, i = uint64(e.To), i+1
	}
	if got := uint64(len(evs) - i); got != uint64(g.Count)-last || got > n {
		t.Fatalf("%d outcome events for last %d, count %d, ring %d: %v", got, last, g.Count, n, evs)
	}
	for _, e := range evs[i:] {
		if e.Seq != last+1 {
			t.Fatalf("seq %d after %d", e.Seq, last)
		}
		last = e.Seq
		slot := (e.Seq - 1) % n
		if e.Item != g.Items[slot] {
			t.Fatalf("seq %d: item %d, slot %d holds %d", e.Seq, e.Item, slot, g.Items[slot])
		}
		switch e.Kind {
		case plc.EventGate:
			if raw := g.Outcomes[slot]; uint32(e.Outcome) != raw || raw < 1 || raw > 4 {
				t.Fatalf("seq %d: outcome %v from raw %d", e.Seq, e.Outcome, raw)
			}
		case plc.EventGateError:
			if raw := g.Outcomes[slot]; e.Err == nil || e.Outcome != 0 || (raw >= 1 && raw <= 4) {
				t.Fatalf("seq %d: error %+v from raw %d", e.Seq, e, raw)
			}
		default:
			t.Fatalf("unexpected %v", e)
		}
	}
}

// FuzzGateRegisters: Modbus registers from a PLC (anything) → gate events.
// The bytes are two snapshots' registers (big-endian pairs) in a row.
func FuzzGateRegisters(f *testing.F) {
	regs := func(rs ...uint16) []byte {
		b := make([]byte, 2*len(rs))
		for i, r := range rs {
			binary.BigEndian.PutUint16(b[2*i:], r)
		}
		return b
	}
	f.Add(regs(0, 3, 0, 101, 1, 0, 102, 2, 0, 103, 3), uint8(3), false)                                      // one full ring
	f.Add(regs(0, 2, 0, 101, 1, 0, 102, 4, 0, 0, 0, 0, 5, 0, 105, 1, 0, 102, 2, 0, 103, 9), uint8(3), false) // ring, then more with nonsense
	f.Add(regs(0, 9, 0, 1, 1, 0, 0, 3, 0, 0, 9), uint8(1), true)                                             // ring of one, then a reset
	f.Add(regs(0xFFFF, 0xFFFF, 0, 7, 2), uint8(1), false)                                                    // count at the top of u32
	f.Add(regs(1, 2, 3), uint8(40), false)                                                                   // short read
	f.Add([]byte{1}, uint8(0), true)
	f.Fuzz(func(t *testing.T, data []byte, n8 uint8, lowFirst bool) {
		n := 1 + int(n8)%plc.MaxGateRing
		all := make([]uint16, len(data)/2)
		for i := range all {
			all[i] = binary.BigEndian.Uint16(data[2*i:])
		}
		var tr GateTracker
		size := 2 + 3*n
		for len(all) > 0 {
			chunk := all[:min(size, len(all))]
			all = all[len(chunk):]
			g, err := GateFromRegisters(chunk, n, lowFirst)
			if err != nil {
				if len(chunk) == size {
					t.Fatalf("a whole snapshot did not decode: %v", err)
				}
				return
			}
			before := tr.Last()
			evs := tr.Observe(g, time.Time{})
			checkGate(t, before, g, evs, tr.Last())
		}
	})
}

// FuzzGateArray: an OPC UA UInt32 array from a PLC (anything) → gate events.
func FuzzGateArray(f *testing.F) {
	arr := func(vs ...uint32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.BigEndian.PutUint32(b[4*i:], v)
		}
		return b
	}
	f.Add(arr(2, 101, 1, 102, 2), uint8(2), uint32(0))
	f.Add(arr(70, 69, 3, 70, 4), uint8(2), uint32(60))
	f.Add(arr(1, 7, 0, 0, 0), uint8(2), uint32(5))
	f.Add(arr(1, 7), uint8(2), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, n8 uint8, last uint32) {
		n := 1 + int(n8)%plc.MaxGateRing
		a := make([]uint32, len(data)/4)
		for i := range a {
			a[i] = binary.BigEndian.Uint32(data[4*i:])
		}
		g, err := GateFromArray(a, n)
		if err != nil {
			if len(a) == 1+2*n {
				t.Fatalf("a whole snapshot did not decode: %v", err)
			}
			return
		}
		tr := GateTracker{last: uint64(last)}
		evs := tr.Observe(g, time.Time{})
		checkGate(t, uint64(last), g, evs, tr.Last())
	})
}
