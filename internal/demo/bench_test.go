package demo

import (
	"reflect"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/line"
)

func TestMissCauses(t *testing.T) {
	// Usually the camera's result comes 40 ms after the trigger and the
	// verdict takes 2 ms.
	base := line.StatsReport{P50ms: 2, Stages: map[string][2]float64{"camera": {40, 50}}}
	with := func(misses int, m ...line.Miss) line.StatsReport {
		r := base
		r.DeadlineMisses, r.Missed = misses, m
		return r
	}
	// A journal stage of 124 ms from t0, as in a run whose disk stalled
	// for 168 ms (the probe's stall began 10 ms before the journal's).
	t0 := time.Date(2026, 12, 2, 15, 3, 36, 0, time.UTC)
	stalled := line.Miss{CameraMs: 40, ControllerMs: 126, QueueMs: 0.1, JournalMs: 124, PLCMs: 1.9, Reason: "late", JournalAt: t0}
	stall := func(from time.Duration, ms float64) []aggregation.ProbeStall {
		return []aggregation.ProbeStall{{At: t0.Add(from), Ms: ms}}
	}
	camLate := line.Miss{CameraMs: 70, ControllerMs: 12, QueueMs: 0.5, JournalMs: 10, PLCMs: 1.5, Reason: "pass", JournalAt: t0.Add(500 * time.Microsecond)}
	loopLate := func(due time.Duration, ms float64) sim.LoopLag {
		return sim.LoopLag{Events: 1, Over5: 1, MaxMs: ms, Late: []sim.LateWake{{Due: t0.Add(due), Ms: ms}}}
	}
	for _, tc := range []struct {
		name      string
		stats     line.StatsReport
		faultFree map[string]int
		stalls    []aggregation.ProbeStall
		loop      sim.LoopLag
		want      MissCauses
	}{
		{"none", base, nil, nil, sim.LoopLag{}, MissCauses{}},
		{"camera 35 ms late, verdict 5 ms", with(1, line.Miss{CameraMs: 75, ControllerMs: 7, JournalMs: 5, Reason: "pass"}), nil,
			nil, sim.LoopLag{}, MissCauses{Camera: 1}},
		{"journal stall", with(1, line.Miss{CameraMs: 45, ControllerMs: 40, QueueMs: 0.1, JournalMs: 38, PLCMs: 1.9, Reason: "late"}),
			map[string]int{"late": 1}, nil, sim.LoopLag{}, MissCauses{Controller: 1, ControllerStage: map[string]int{"journal": 1}}},
		{"PLC write stall", with(1, line.Miss{CameraMs: 42, ControllerMs: 45, QueueMs: 0.1, JournalMs: 2, PLCMs: 43, Reason: "no-read"}), nil,
			nil, sim.LoopLag{}, MissCauses{Controller: 1, ControllerStage: map[string]int{"plc": 1}}},
		{"queue", with(1, line.Miss{CameraMs: 41, ControllerMs: 45, QueueMs: 40, JournalMs: 3, PLCMs: 2, Reason: "pass"}), nil,
			nil, sim.LoopLag{}, MissCauses{Controller: 1, ControllerStage: map[string]int{"queue": 1}}},
		{"decided late, never a miss", base, map[string]int{"late": 2, "no-read": 1}, nil, sim.LoopLag{}, MissCauses{CameraAfterDeadline: 2}},
		{"more misses than itemised", with(52, line.Miss{CameraMs: 90, ControllerMs: 1, Reason: "late"}), map[string]int{"late": 1},
			nil, sim.LoopLag{}, MissCauses{Camera: 1, Controller: 51}},
		{"disk stall seen by the probe", with(1, stalled), map[string]int{"late": 1}, stall(-10*time.Millisecond, 168),
			sim.LoopLag{}, MissCauses{DiskStall: 1}},
		{"a probe stall over less than half the journal stage", with(1, stalled), map[string]int{"late": 1}, stall(70*time.Millisecond, 168),
			sim.LoopLag{}, MissCauses{Controller: 1, ControllerStage: map[string]int{"journal": 1}}},
		{"a probe stall before the journal stage", with(1, stalled), map[string]int{"late": 1}, stall(-200*time.Millisecond, 168),
			sim.LoopLag{}, MissCauses{Controller: 1, ControllerStage: map[string]int{"journal": 1}}},
		// A camera result 70 ms after the trigger (30 ms over its p50),
		// received at t0: the simulator's camera event, due some 40 ms
		// before, ran 20 ms late — or 10 ms, or long before the trigger.
		{"the simulator's loop ran the camera late", with(1, camLate), nil, nil, loopLate(-40*time.Millisecond, 20),
			MissCauses{Camera: 1, CameraSimLoop: 1}},
		{"the simulator's loop a little late: not the cause", with(1, camLate), nil, nil, loopLate(-40*time.Millisecond, 10),
			MissCauses{Camera: 1}},
		{"the simulator's loop late before the trigger", with(1, camLate), nil, nil, loopLate(-200*time.Millisecond, 30),
			MissCauses{Camera: 1}},
		{"a late loop beside a controller's miss", with(1, line.Miss{CameraMs: 42, ControllerMs: 45, QueueMs: 0.1, JournalMs: 2, PLCMs: 43, Reason: "no-read", JournalAt: t0}),
			nil, nil, loopLate(-20*time.Millisecond, 30), MissCauses{Controller: 1, ControllerStage: map[string]int{"plc": 1}}},
		{"a PLC stall beside a disk stall is the PLC's", with(1, line.Miss{CameraMs: 42, ControllerMs: 45, QueueMs: 0.1, JournalMs: 2, PLCMs: 43, Reason: "no-read", JournalAt: t0}),
			nil, stall(0, 50), sim.LoopLag{}, MissCauses{Controller: 1, ControllerStage: map[string]int{"plc": 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := missCauses(tc.stats, tc.faultFree, tc.stalls, nil, tc.loop); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A miss whose journal stage the probe saw nothing in, but the ledger's
// own redo syncs stalled in: counted as redo_sync_stall when those syncs
// cover at least half the stage, added up.
func TestMissCausesRedoSyncs(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 21, 25, 37, 574393647, time.UTC)
	// Session 24's miss: a journal stage of 42.1 ms, two redo syncs of
	// 14.5 and 24.2 ms one after the other.
	miss := line.Miss{CameraMs: 41.8, ControllerMs: 44.5, QueueMs: 0.03, JournalMs: 42.1, PLCMs: 2.3, Reason: "late", JournalAt: t0}
	stats := line.StatsReport{P50ms: 0.6, Stages: map[string][2]float64{"camera": {34.8, 43.4}}, DeadlineMisses: 1, Missed: []line.Miss{miss}}
	ws := &aggregation.WriteStages{Events: []aggregation.LedgerEvent{
		{At: t0.Add(-20 * time.Second), Ms: 1.3, What: aggregation.EventCheckpoint},
		{At: t0.Add(msDur(0.004)), Ms: 14.5, What: aggregation.EventSlowSync, Bytes: 4096},
		{At: t0.Add(msDur(14.56)), Ms: 24.2, What: aggregation.EventSlowSync, Bytes: 4096},
		{At: t0.Add(msDur(100)), Ms: 30, What: aggregation.EventCheckpoint},
	}}
	syncs := slowSyncs(ws)
	if len(syncs) != 2 || syncs[0].Ms != 14.5 || syncs[1].Ms != 24.2 {
		t.Fatalf("slow syncs of the events: %+v, want the two slow syncs", syncs)
	}
	if got := slowSyncs(nil); got != nil {
		t.Fatalf("slow syncs of no stages: %+v", got)
	}
	controller := MissCauses{Controller: 1, ControllerStage: map[string]int{"journal": 1}}
	for _, tc := range []struct {
		name          string
		stalls, syncs []aggregation.ProbeStall
		want          MissCauses
	}{
		{"no slow sync: the controller's", nil, nil, controller},
		{"two slow redo syncs", nil, syncs, MissCauses{RedoSyncStall: 1}},
		{"the shorter alone is under half the stage", nil, syncs[:1], controller},
		{"two short ones add up to half", nil, []aggregation.ProbeStall{{At: t0, Ms: 10}, {At: t0.Add(msDur(25)), Ms: 11.1}}, MissCauses{RedoSyncStall: 1}},
		{"nor do they when under half", nil, []aggregation.ProbeStall{{At: t0, Ms: 10}, {At: t0.Add(msDur(25)), Ms: 11}}, controller},
		{"a redo sync before the stage", nil, []aggregation.ProbeStall{{At: t0.Add(-time.Second), Ms: 40}}, controller},
		{"the probe saw it too: the disk's", []aggregation.ProbeStall{{At: t0.Add(-msDur(5)), Ms: 40}}, syncs, MissCauses{DiskStall: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := missCauses(stats, map[string]int{"late": 1}, tc.stalls, tc.syncs, sim.LoopLag{}); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFaultFreeRejects(t *testing.T) {
	gt := sim.GroundTruth{Units: []sim.UnitTruth{
		{Item: 1, Fate: sim.FateRejected, Verdict: "reject", Reason: 10}, // a challenge unit: rejected by design
		{Item: 5, Fate: sim.FateGood, Verdict: "pass"},
		{Item: 6, Fate: sim.FateRejected, Verdict: "reject", Reason: uint16(line.ReasonNoRead), Fault: sim.FaultNoRead},
		{Item: 7, Fate: sim.FateRejected, Verdict: "reject", Reason: uint16(line.ReasonLate)},
		{Item: 8, Fate: sim.FateRejected, Verdict: "none"},
		{Item: 9, Fate: sim.FateRejected, Verdict: "pass", GateFault: sim.FaultLatePass},
		{Item: 10, Fate: sim.FateRejected, Verdict: "reject", Reason: uint16(line.ReasonWrongCode)},
		{Item: 11, Fate: sim.FateMissing, Fault: sim.FaultMissing},
	}}
	want := map[string]int{"late": 1, "no-verdict": 1, "wrong-code": 1}
	if got := faultFreeRejects(gt, 4); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A run counts for the highest rate only if its belt made that rate: a
// simulated belt asked for 12,000 units/min that made 9,500 tested 9,500
// (session 22), and one whose infeed the gate ring held ran slower still.
func TestRanAtRate(t *testing.T) {
	cases := []struct {
		ru   BenchRun
		want bool
	}{
		{BenchRun{Rate: 6000, AchievedRate: 6000}, true},
		{BenchRun{Rate: 6000, AchievedRate: 5900}, true},
		{BenchRun{Rate: 6000, AchievedRate: 5744}, false},
		{BenchRun{Rate: 12000, AchievedRate: 9502}, false},
		{BenchRun{Rate: 6000, AchievedRate: 6010, InfeedHeld: 1}, false},
		{BenchRun{Rate: 6000}, false}, // no rate measured
	}
	for _, c := range cases {
		if got := ranAtRate(c.ru); got != c.want {
			t.Errorf("rate %g, achieved %g, held %d: ranAtRate %v, want %v", c.ru.Rate, c.ru.AchievedRate, c.ru.InfeedHeld, got, c.want)
		}
	}
}
