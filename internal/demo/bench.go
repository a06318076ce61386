package demo

import (
	"context"
	"errors"
	"os"
	"sort"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/aggregation/ledgerbench/benchstat"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/line"
)

// BenchRun is one rate of BenchLine.
type BenchRun struct {
	Rate float64 `json:"rate"`
	// AchievedRate is the rate the simulated belt made (units/min from the
	// first unit to the last, sim.InfeedTruth), and InfeedHeld the pitches
	// its infeed stood still (a full gate ring, a stop request): a run
	// counts for the highest rate only if the belt made its rate (see
	// ranAtRate).
	AchievedRate float64 `json:"achieved_rate"`
	InfeedHeld   int     `json:"infeed_held_slots"`
	// OK: the batch reconciled (invariants, ground truth) with no deadline
	// miss (Report.OK).
	OK            bool `json:"ok"`
	InvariantsOK  bool `json:"invariants_ok"`
	GroundTruthOK bool `json:"ground_truth_ok"`
	Misses        int  `json:"deadline_misses"`
	// MissesByCause splits the misses (verdicts written after the unit's
	// deadline) and the fault-free units decided late: see MissCauses.
	MissesByCause MissCauses       `json:"misses_by_cause"`
	Lat           line.StatsReport `json:"verdict_latency_ms"`
	// Stages is the verdict's budget by stage, p50 / p99 / max in ms:
	// camera (trigger seen → camera result received: the devices' share),
	// queue, journal, plc and controller (queue + plc), and total (camera
	// result → verdict written).
	Stages map[string]StageMs `json:"stages_ms"`
	// JournalOverSync is the journal stage's p99 over the disk's raw
	// fdatasync p99, synced back to back (the mean of probes just before
	// and just after this run); JournalOverPacedSync over its p99 synced
	// at the run's cadence, one sync per ledger group's interval (the mean
	// of probes before, at the expected cadence, and after, at the
	// measured one). The disk is slower synced at a line's pace than back
	// to back (aggregation.ProbeSyncPaced): the paced figure is what the
	// journal pays for its own sync, and the goal (≤ 1.5) is judged on it.
	// ControllerP99 is the controller's own share of a verdict at p99
	// (goal ≤ 2 ms).
	JournalOverSync      float64               `json:"journal_p99_over_fdatasync_p99"`
	JournalOverPacedSync float64               `json:"journal_p99_over_paced_fdatasync_p99"`
	ControllerP99        float64               `json:"controller_share_p99_ms"`
	Sync                 aggregation.SyncStats `json:"disk_fdatasync_ms"`
	SyncAfter            aggregation.SyncStats `json:"disk_fdatasync_after_ms"`
	// SyncDuring is the disk's raw fdatasync probed during the run, one
	// every 100 ms on a file of its own (aggregation.ProbeSyncDuring): the
	// same disk, the same CPU load, the same minutes as the journal's;
	// JournalOverSyncDuring the journal stage's p99 over its p99.
	JournalOverSyncDuring float64               `json:"journal_p99_over_fdatasync_during_p99"`
	SyncDuring            aggregation.SyncStats `json:"disk_fdatasync_during_ms"`
	// SyncGap is the pause between the paced probe's syncs (before, after).
	SyncGapMs      [2]float64            `json:"paced_fdatasync_gap_ms"`
	SyncPaced      aggregation.SyncStats `json:"disk_paced_fdatasync_ms"`
	SyncPacedAfter aggregation.SyncStats `json:"disk_paced_fdatasync_after_ms"`
	CPU            float64               `json:"cpu_percent"`
	// SimCPU is the simulator process's CPU, % of one core (0 in-process:
	// it is in cpu_percent then).
	SimCPU float64 `json:"sim_cpu_percent,omitempty"`
	// SimLoop is how late the simulator's event loop ran its timed events
	// (sim.LoopLag, counts only: the late events themselves go into
	// misses_by_cause.camera_late_sim_loop).
	SimLoop *sim.LoopLag `json:"sim_loop_lag,omitempty"`
	// Runtime is what the Go runtime did from the batch's start to its end
	// (Report.Runtime).
	Runtime RuntimeStats `json:"runtime"`
	// Ledger: the ledger's group commits (syncs) over the batch.
	Ledger LedgerStats `json:"ledger"`
	// FaultFreeRejects: units with no injected fault the gate rejected
	// (Report.FaultFreeRejects).
	FaultFreeRejects map[string]int `json:"fault_free_rejects_by_reason,omitempty"`
	Err              string         `json:"error,omitempty"`
}

// StageMs is one stage's p50, p99 and max, in ms.
type StageMs struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// MissCauses says whose lateness each miss was. A verdict written after
// its deadline is the devices' (Camera) when its camera result came later
// than usual by more than the controller's verdict took longer than usual
// (each against its own p50), else the controller's (Controller: queue,
// journal or PLC write, named in Stage). CameraAfterDeadline are units
// with no injected fault rejected as late but not among the misses: their
// camera result came only after the deadline, the line decided them late
// and the controller's latency statistics never saw them.
type MissCauses struct {
	Camera int `json:"camera_late"`
	// CameraSimLoop: of the camera_late misses, those whose result came
	// late because the simulator's own event loop ran late (sim.LoopLag):
	// an event due between the unit's trigger and its result ran at least
	// half the camera's extra delay late. A simulator sharing the
	// controller's cores, not a device nor the controller.
	CameraSimLoop int `json:"camera_late_sim_loop"`
	Controller    int `json:"controller"`
	// DiskStall: misses whose journal stage spent at least half its time
	// beside a stall the probe during the run saw on a file of its own
	// (disk_fdatasync_during_ms.slow) — the disk stalled for every writer,
	// not the ledger alone. Counted here, not under controller.
	DiskStall int `json:"disk_stall"`
	// RedoSyncStall: misses the probe did not explain whose journal stage
	// spent at least half its time beside the ledger's own slow redo
	// syncs (ledger.writes.events, "slow sync": an fdatasync of a few KiB
	// taking 10 ms or more) — a stall the probe, one sync every 100 ms,
	// fell between. Counted here, not under controller.
	RedoSyncStall       int            `json:"redo_sync_stall"`
	ControllerStage     map[string]int `json:"controller_by_stage,omitempty"`
	CameraAfterDeadline int            `json:"camera_after_deadline"`
}

// BenchLineResult is `linectl bench line`.
type BenchLineResult struct {
	Units int `json:"units"`
	// Simulator says where the simulated line ran (Report.Simulator).
	Simulator string `json:"simulated_line"`
	// HighestZeroMisses is the highest rate tried whose run reconciled
	// with no miss of any cause, its belt at the rate (ranAtRate); MaxRate
	// the highest rate of the unbroken
	// run of such rates from the lowest (the key of earlier releases).
	HighestZeroMisses float64    `json:"highest_rate_zero_misses"`
	MaxRate           float64    `json:"max_rate_zero_misses"`
	Runs              []BenchRun `json:"runs"`
}

// BenchLine runs one batch of o.Units at each rate in turn, every rate
// whatever the one before did, and reports the highest rate with zero
// misses. Each run has a fresh temporary data directory, removed after it.
func BenchLine(ctx context.Context, o Options, rates []float64, wire Wire) (*BenchLineResult, error) {
	if len(rates) == 0 {
		return nil, errors.New("bench line: no rate to try")
	}
	out := &BenchLineResult{Units: o.Units}
	broken := false
	for _, rate := range rates {
		oo := o
		oo.Rate, oo.Data = rate, ""
		ru := BenchRun{Rate: rate}
		sync, err := aggregation.ProbeSync(os.TempDir(), 300) // the disk the demo's ledger is on
		if err != nil {
			return nil, err
		}
		ru.Sync = sync
		// About 1.5 ledger groups per unit at any rate (README, "Speed").
		gap := time.Duration(float64(time.Minute) / rate / 1.5)
		if ru.SyncPaced, err = aggregation.ProbeSyncPaced(os.TempDir(), pacedSyncs, gap); err != nil {
			return nil, err
		}
		ru.SyncGapMs[0] = benchstat.Ms(gap)
		stopProbe := aggregation.ProbeSyncDuring(os.TempDir(), duringGap)
		rep, err := Run(ctx, oo, wire)
		during, perr := stopProbe()
		if err != nil {
			ru.Err = err.Error()
			if ctx.Err() != nil {
				return nil, err
			}
		} else {
			ru.OK, ru.InvariantsOK, ru.GroundTruthOK = rep.OK(), rep.InvariantsOK, rep.GroundTruthOK
			ru.Misses, ru.Lat, ru.CPU, ru.SimCPU = rep.DeadlineMisses, rep.Latency, rep.CPUPercent, rep.SimCPUPercent
			out.Simulator = rep.Simulator
			ru.FaultFreeRejects, ru.Runtime, ru.Ledger = rep.FaultFreeRejects, rep.Runtime, rep.Ledger
			ru.AchievedRate, ru.InfeedHeld = benchstat.Round(rep.Infeed.Rate), rep.Infeed.HeldSlots
			var loop sim.LoopLag
			if rep.SimLoop != nil {
				loop = *rep.SimLoop
				counts := loop
				counts.Late = nil
				ru.SimLoop = &counts
			}
			ru.MissesByCause = missCauses(rep.Latency, rep.FaultFreeRejects, during.Slow, slowSyncs(rep.Ledger.Writes), loop)
			ru.Stages = stagesOf(rep.Latency)
			// The disk's state varies from minute to minute: probe it again
			// after the run and compare with the mean of the two.
			if ru.SyncAfter, err = aggregation.ProbeSync(os.TempDir(), 300); err != nil {
				return nil, err
			}
			if ref := (sync.P99ms + ru.SyncAfter.P99ms) / 2; ref > 0 {
				ru.JournalOverSync = rep.Latency.Stages["journal"][1] / ref
			}
			if perr != nil {
				return nil, perr
			}
			ru.SyncDuring = during
			if during.P99ms > 0 {
				ru.JournalOverSyncDuring = rep.Latency.Stages["journal"][1] / during.P99ms
			}
			if rep.Ledger.Groups > 0 && rep.WallSeconds > 0 {
				gap = time.Duration(rep.WallSeconds * float64(time.Second) / float64(rep.Ledger.Groups))
			}
			if ru.SyncPacedAfter, err = aggregation.ProbeSyncPaced(os.TempDir(), pacedSyncs, gap); err != nil {
				return nil, err
			}
			ru.SyncGapMs[1] = benchstat.Ms(gap)
			if ref := (ru.SyncPaced.P99ms + ru.SyncPacedAfter.P99ms) / 2; ref > 0 {
				ru.JournalOverPacedSync = rep.Latency.Stages["journal"][1] / ref
			}
			ru.ControllerP99 = rep.Latency.Stages["controller"][1]
			os.RemoveAll(rep.DataDir)
		}
		zero := ru.OK && ru.MissesByCause.CameraAfterDeadline == 0 && ranAtRate(ru)
		out.Runs = append(out.Runs, ru)
		if zero && rate > out.HighestZeroMisses {
			out.HighestZeroMisses = rate
		}
		if !zero {
			broken = true
		} else if !broken {
			out.MaxRate = rate
		}
	}
	sort.SliceStable(out.Runs, func(i, j int) bool { return out.Runs[i].Rate < out.Runs[j].Rate })
	return out, nil
}

// ranAtRate reports whether the belt of run ru made its rate: within
// rateTolerance of it, its infeed never held. A belt that ran slower than
// asked (the simulator's pace, a gate ring too small for the belt) did not
// test the rate, whatever it missed.
func ranAtRate(ru BenchRun) bool {
	return ru.InfeedHeld == 0 && ru.AchievedRate >= ru.Rate*(1-rateTolerance)
}

// rateTolerance is how far below its rate a belt may run and still count.
const rateTolerance = 0.02

// pacedSyncs is how many syncs a paced probe takes: 6 s at 1,200/min.
const pacedSyncs = 200

// duringGap is the pause between the syncs of the probe during a run.
const duringGap = 100 * time.Millisecond

func stagesOf(l line.StatsReport) map[string]StageMs {
	out := map[string]StageMs{"total": {P50: l.P50ms, P99: l.P99ms, Max: l.MaxMs}}
	for name, p := range l.Stages {
		out[name] = StageMs{P50: p[0], P99: p[1], Max: l.StagesMax[name]}
	}
	return out
}

// missCauses splits the misses of l (the first 50 are itemised; the rest,
// if any, are counted as the controller's) — see MissCauses; stalls are
// the slow syncs of the disk probe that ran beside the line, syncs the
// ledger's own slow redo syncs, loop the simulator's late events.
func missCauses(l line.StatsReport, faultFree map[string]int, stalls, syncs []aggregation.ProbeStall, loop sim.LoopLag) MissCauses {
	mc := MissCauses{CameraAfterDeadline: faultFree[line.ReasonLate.String()]}
	camP50, ctlP50 := l.Stages["camera"][0], l.P50ms
	for _, m := range l.Missed {
		if m.Reason == line.ReasonLate.String() && mc.CameraAfterDeadline > 0 {
			mc.CameraAfterDeadline-- // a pass turned late: counted here, not there
		}
		if m.CameraMs-camP50 > m.ControllerMs-ctlP50 {
			mc.Camera++
			if simLoopLate(m, camP50, loop) {
				mc.CameraSimLoop++
			}
			continue
		}
		stage := "queue"
		if m.JournalMs > m.QueueMs && m.JournalMs >= m.PLCMs {
			stage = "journal"
		} else if m.PLCMs > m.QueueMs {
			stage = "plc"
		}
		if stage == "journal" {
			if diskStalled(m, stalls) {
				mc.DiskStall++
				continue
			}
			if diskStalled(m, syncs) {
				mc.RedoSyncStall++
				continue
			}
		}
		mc.Controller++
		if mc.ControllerStage == nil {
			mc.ControllerStage = map[string]int{}
		}
		mc.ControllerStage[stage]++
	}
	mc.Controller += l.DeadlineMisses - len(l.Missed)
	return mc
}

// simLoopLate reports whether m's camera result was late because the
// simulator's loop was: an event due between the unit's trigger (less a
// PLC poll, 10 ms: the trigger is seen when polled) and the result ran at
// least half the result's extra delay (over camP50) late.
func simLoopLate(m line.Miss, camP50 float64, loop sim.LoopLag) bool {
	if m.JournalAt.IsZero() {
		return false
	}
	received := m.JournalAt.Add(-msDur(m.QueueMs))
	from := received.Add(-msDur(m.CameraMs) - 10*time.Millisecond)
	return 2*loop.Overlap(from, received) >= m.CameraMs-camP50
}

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// slowSyncs are the ledger's slow redo syncs among ws's events (the last
// 64 slow syncs and checkpoints), as stalls.
func slowSyncs(ws *aggregation.WriteStages) []aggregation.ProbeStall {
	if ws == nil {
		return nil
	}
	var out []aggregation.ProbeStall
	for _, e := range ws.Events {
		if e.What == aggregation.EventSlowSync {
			out = append(out, aggregation.ProbeStall{At: e.At, Ms: e.Ms})
		}
	}
	return out
}

// diskStalled reports whether m's journal stage spent at least half its
// time beside stalls (one after another, as a probe's or the redo log's
// syncs are: their overlaps add up).
func diskStalled(m line.Miss, stalls []aggregation.ProbeStall) bool {
	d := msDur(m.JournalMs)
	var in time.Duration
	for _, st := range stalls {
		in += st.Overlap(m.JournalAt, d)
	}
	return d > 0 && 2*in >= d
}
