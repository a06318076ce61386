package line

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// After a restart the batch's counts continue from the ledger (item 5) and
// the end-of-run test sees the units of earlier runs (item 6): the last
// short group is packed as partial, not sent to rework.
func TestResumeKeepsEndOfRun(t *testing.T) {
	cfg := Config{Deadline: 100 * time.Millisecond, PrinterBuffer: 2, AllocChunk: 4, Planned: 5,
		Ratios: map[tracecode.Level]int{2: 2}}
	m, err := NewMachine(cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	// Units 1–3 were decided by the run before; unit 4 was on the line when
	// it stopped (never journaled); C1 is unit 3's code, loose.
	m.Resume(Counters{Triggered: 3, Passed: 3, RejectReason: map[string]uint64{}, Packed: map[string]uint64{"L2": 1},
		Partial: map[string]uint64{}}, 3)
	m.Adopt("C1", 1, false)
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := func(ms int) Stamp { return Stamp{T: base.Add(time.Duration(ms) * time.Millisecond)} }
	var acts []Action
	for _, ev := range append(started(at, "C2", "C3", "C4", "C5"),
		Trigger{Stamp: at(10), Item: 5}, Printed{Stamp: at(11), Code: "C2"},
		CameraResult{Stamp: at(40), Item: 5, Reads: []Read{{Code: "C2"}}, Pass: true},
	) {
		acts = append(acts, m.Step(ev)...)
	}
	if got := m.Snapshot().Counters.Triggered; got != 5 {
		t.Fatalf("triggered %d after the first unit of the new run, want 5 (3 decided, 1 lost at the stop, 1 now)", got)
	}
	// Unit 5 was the planned quantity's last: a group of one is the batch's
	// last, partial one.
	acts = m.Step(AggRead{Stamp: at(60), Level: 2, Reads: []Read{{Code: "C1"}}})
	var got []string
	for _, a := range acts {
		got = append(got, a.(interface{ String() string }).String())
	}
	if len(acts) == 0 || !strings.Contains(got[0], "pack L2 B1 <- [C1] partial=true") {
		t.Fatalf("last short group after a restart: %v, want it packed as partial", got)
	}
}

// The runner keeps a verdict's done channel for a gate outcome that may
// never come (the unit fell off): it keeps the last doneSetCap only.
func TestDoneSetIsBounded(t *testing.T) {
	var d doneSet
	for i := uint32(1); i <= doneSetCap+10; i++ {
		d.add(i, make(chan struct{}))
	}
	if len(d.m) != doneSetCap || len(d.order) != doneSetCap {
		t.Fatalf("kept %d channels (%d in order), want %d", len(d.m), len(d.order), doneSetCap)
	}
	if d.take(1) != nil || d.take(doneSetCap+10) == nil || d.take(doneSetCap+10) != nil {
		t.Fatal("take: the oldest must be gone, the newest there once")
	}
}

// The gate ring's acknowledgement never passes an outcome still waiting for
// its journal, whatever order the journals finish in; outcomes that need
// nothing, or were lost (a jump in the numbers), do not hold it back; a
// number that goes back (the PLC's ring restarted) starts afresh.
func TestGateAcksOnlyJournaled(t *testing.T) {
	g := newGateAcks()
	want := func(step string, n uint64) {
		t.Helper()
		if got, ok := g.acked(); !ok || got != n {
			t.Fatalf("%s: acknowledged %d (%t), want %d", step, got, ok, n)
		}
	}
	if _, ok := g.acked(); ok {
		t.Fatal("an acknowledgement before any outcome")
	}
	g.pending(10)
	want("#10 waiting", 9)
	g.pending(11)
	g.seen(12)
	g.done(11)
	want("#11 journaled before #10", 9)
	g.done(10)
	want("#10 journaled", 12)
	g.pending(20) // #13..#19 lost: nothing to wait for
	want("#20 waiting after a gap", 19)
	g.done(20)
	want("#20 journaled", 20)
	g.pending(3) // the ring restarted its count
	want("#3 waiting after a ring reset", 2)
	g.done(3)
	want("#3 journaled", 3)
	var nilAcks *gateAcks // a runner without a Line
	nilAcks.pending(1)
	nilAcks.done(1)
}

// A unit packed when the controller stopped, its gate outcome not yet
// journaled, is loose after the restart takes its unlabelled group out: the
// restart must adopt it, so that its outcome — in the PLC's ring at this
// connect — settles it. Adopted only at a later restart, when the ring had
// moved on, its pass was taken back although the unit went on as good
// (found by the crash campaign: a pack-label kill soon after a restart).
func TestRestartAdoptsUnitsOfUnpackedGroups(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	store, err := aggregation.Open(dir, aggregation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec := aggregation.BatchSpec{ID: "B", Product: "P", Line: "L", GateConfirm: true, Levels: []aggregation.LevelSpec{
		{Level: 1, Scheme: tracecode.SchemeGS1SGTIN}, {Level: 2, Ratio: 2, Scheme: tracecode.SchemeGS1SGTIN}}}
	units := []tracecode.Code{"(01)06901234567892(21)K000001", "(01)06901234567892(21)K000002"}
	parent := tracecode.Code("(01)16901234567899(21)Q000001")
	steps := []func() error{
		func() error { return store.CreateBatch(ctx, spec, system) },
		func() error { _, err := store.AllocateGenerated(ctx, "B", 1, units, system); return err },
		func() error {
			_, err := store.AllocateGenerated(ctx, "B", 2, []tracecode.Code{parent}, system)
			return err
		},
		func() error { return store.MarkSent(ctx, units, system) },
	}
	for i, u := range units {
		steps = append(steps,
			func() error { return store.MarkPrinted(ctx, u, system) },
			func() error { return store.Commission(ctx, u, aggregation.UnitInfo{ItemID: uint64(7 + i)}, system) })
	}
	// Packed, the label not printed: the controller was killed there.
	steps = append(steps,
		func() error { return store.MarkSent(ctx, []tracecode.Code{parent}, system) },
		func() error { return store.Commission(ctx, parent, aggregation.UnitInfo{}, system) },
		func() error { return store.Pack(ctx, parent, units, aggregation.PackOpts{}, system) })
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("ledger step %d: %v", i, err)
		}
	}
	store.Close()

	rg := newRig(t, dir, nil)
	// The PLC's ring, read at connect: both units went on as good.
	rg.runner.Post(GateOutcome{Stamp: Stamp{T: time.Now()}, Item: 7, Outcome: GatePassed, Seq: 30})
	rg.runner.Post(GateOutcome{Stamp: Stamp{T: time.Now()}, Item: 8, Outcome: GatePassed, Seq: 31})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []tracecode.Code
		if err := rg.store.Unconfirmed(ctx, "B", func(u aggregation.Unconfirmed) error {
			if u.Level == 1 {
				left = append(left, u.Code)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart and the ring's outcomes, %v still have no gate outcome journaled: not adopted at this restart", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, u := range units {
		if info, err := rg.store.Code(ctx, u); err != nil || info.State != aggregation.StateCommissioned {
			t.Fatalf("%s: %v %v, want commissioned (loose, for rework)", u, info.State, err)
		}
	}
}

// The batch's last short group is partial even when units that came after
// its units are not decided yet: they reached the gate before the group was
// read, with no pass (the gate rejects them), so none of them can join a
// group. Seen after a restart: the simulated line read its last group of 2
// as the last units' deadlines ran out (no print, no read), and the group
// went to rework instead of being packed as partial.
func TestLastShortGroupWithUnitsPastTheirDeadline(t *testing.T) {
	cfg := Config{Deadline: 100 * time.Millisecond, PrinterBuffer: 2, AllocChunk: 4, Planned: 3,
		Ratios: map[tracecode.Level]int{2: 2}}
	base := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	at := func(ms int) Stamp { return Stamp{T: base.Add(time.Duration(ms) * time.Millisecond)} }
	// lastUnits: unit 1 passes; units 2 and 3, the planned quantity's last,
	// get no print record and no camera result (deadlines 120 and 130 ms).
	lastUnits := func() *Machine {
		m, err := NewMachine(cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range append(started(at, "C1", "C2", "C3", "C4"),
			Trigger{Stamp: at(10), Item: 1}, Printed{Stamp: at(11), Code: "C1"},
			CameraResult{Stamp: at(40), Item: 1, Reads: []Read{{Code: "C1"}}, Pass: true},
			Trigger{Stamp: at(20), Item: 2}, Trigger{Stamp: at(30), Item: 3},
		) {
			m.Step(ev)
		}
		return m
	}
	in := func(acts []Action, s string) bool {
		for _, a := range acts {
			if strings.Contains(a.(interface{ String() string }).String(), s) {
				return true
			}
		}
		return false
	}
	// Their deadlines are past when unit 1's group is read; the machine has
	// not ticked since.
	if acts := lastUnits().Step(AggRead{Stamp: at(140), Level: 2, Reads: []Read{{Code: "C1"}}}); !in(acts, "pack L2 B1 <- [C1] partial=true") {
		t.Fatalf("last short group with the last units past their deadline: %v, want it packed as partial", acts)
	}
	// A unit still on its way to the gate could join a group: a short group
	// read before its deadline is not the last.
	if acts := lastUnits().Step(AggRead{Stamp: at(110), Level: 2, Reads: []Read{{Code: "C1"}}}); in(acts, "pack") {
		t.Fatalf("short group read while units are still on their way to the gate: %v, want rework", acts)
	}
}

// started is an operator's reset and start with the given unit codes and
// parents B1, B2 allocated and two codes delivered to the printer.
func started(at func(ms int) Stamp, units ...tracecode.Code) []Event {
	return []Event{
		Operator{Stamp: at(0), Cmd: CmdReset, User: "op"}, Operator{Stamp: at(1), Cmd: CmdStart, User: "op"},
		Allocated{Stamp: at(2), Level: 1, Codes: units},
		Allocated{Stamp: at(2), Level: 2, Codes: []tracecode.Code{"B1", "B2"}},
		Delivered{Stamp: at(3), N: 2},
	}
}

// ackRecorder is a GateAcker that hands each write to the test, failing
// the writes fail says.
type ackRecorder struct {
	got  chan uint64
	fail func(seq uint64) bool
}

func (a ackRecorder) AckGate(_ context.Context, seq uint64) error {
	if a.fail != nil && a.fail(seq) {
		return errors.New("link down")
	}
	a.got <- seq
	return nil
}

// The acknowledgement is written as soon as an outcome is journaled — not
// on the next tick of a 100 ms clock, which at 9,600 units/min left the
// PLC 16 outcomes behind and its ring full (session 22): here no timer
// could write it (the retry waits an hour) — never past an outcome still
// waiting, and a failed write is tried again with nothing more journaled.
func TestGateAcksWrittenAsTheyMove(t *testing.T) {
	defer func(gap, retry time.Duration) { gateAckGap, gateAckRetry = gap, retry }(gateAckGap, gateAckRetry)
	next := func(rec ackRecorder, what string) uint64 {
		t.Helper()
		select {
		case s := <-rec.got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no acknowledgement written", what)
			return 0
		}
	}
	start := func(g *gateAcks, rec ackRecorder) func() {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); g.run(ctx, rec, slog.New(slog.DiscardHandler)) }()
		return func() { cancel(); <-done }
	}

	gateAckGap, gateAckRetry = time.Millisecond, time.Hour
	g := newGateAcks()
	rec := ackRecorder{got: make(chan uint64, 16)}
	stop := start(g, rec)
	g.pending(1)
	g.done(1)
	if s := next(rec, "#1 journaled"); s != 1 {
		t.Fatalf("acknowledged %d, want 1", s)
	}
	g.pending(2)
	g.pending(3)
	g.done(3) // #2 still waits: the acknowledgement may not pass it
	g.done(2)
	if s := next(rec, "#2 and #3 journaled"); s != 3 {
		t.Fatalf("acknowledged %d, want 3 (and nothing while #2 waited)", s)
	}
	stop()

	// A failed write is tried again, with nothing more journaled.
	gateAckRetry = time.Millisecond
	g = newGateAcks()
	failed := false
	rec = ackRecorder{got: make(chan uint64, 16), fail: func(uint64) bool { f := !failed; failed = true; return f }}
	stop = start(g, rec)
	defer stop()
	g.seen(4)
	if s := next(rec, "#4 after a failed write"); s != 4 {
		t.Fatalf("acknowledged %d, want 4", s)
	}
}
