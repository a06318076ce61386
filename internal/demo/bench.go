package demo

import (
	"context"
	"errors"
	"os"
	"sort"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/line"
)

// BenchRun is one rate of BenchLine.
type BenchRun struct {
	Rate float64 `json:"rate"`
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
	// fdatasync p99 (the mean of probes just before and just after this
	// run; goal ≤ 1.5); ControllerP99 the controller's own share of a
	// verdict at p99 (goal ≤ 2 ms).
	JournalOverSync float64               `json:"journal_p99_over_fdatasync_p99"`
	ControllerP99   float64               `json:"controller_share_p99_ms"`
	Sync            aggregation.SyncStats `json:"disk_fdatasync_ms"`
	SyncAfter       aggregation.SyncStats `json:"disk_fdatasync_after_ms"`
	CPU             float64               `json:"cpu_percent"`
	// SimCPU is the simulator process's CPU, % of one core (0 in-process:
	// it is in cpu_percent then).
	SimCPU float64 `json:"sim_cpu_percent,omitempty"`
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
	Camera              int            `json:"camera_late"`
	Controller          int            `json:"controller"`
	ControllerStage     map[string]int `json:"controller_by_stage,omitempty"`
	CameraAfterDeadline int            `json:"camera_after_deadline"`
}

// BenchLineResult is `linectl bench line`.
type BenchLineResult struct {
	Units int `json:"units"`
	// Simulator says where the simulated line ran (Report.Simulator).
	Simulator string `json:"simulated_line"`
	// HighestZeroMisses is the highest rate tried whose run reconciled
	// with no miss of any cause; MaxRate the highest rate of the unbroken
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
		rep, err := Run(ctx, oo, wire)
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
			ru.MissesByCause = missCauses(rep.Latency, rep.FaultFreeRejects)
			ru.Stages = stagesOf(rep.Latency)
			// The disk's state varies from minute to minute: probe it again
			// after the run and compare with the mean of the two.
			if ru.SyncAfter, err = aggregation.ProbeSync(os.TempDir(), 300); err != nil {
				return nil, err
			}
			if ref := (sync.P99ms + ru.SyncAfter.P99ms) / 2; ref > 0 {
				ru.JournalOverSync = rep.Latency.Stages["journal"][1] / ref
			}
			ru.ControllerP99 = rep.Latency.Stages["controller"][1]
			os.RemoveAll(rep.DataDir)
		}
		zero := ru.OK && ru.MissesByCause.CameraAfterDeadline == 0
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

func stagesOf(l line.StatsReport) map[string]StageMs {
	out := map[string]StageMs{"total": {P50: l.P50ms, P99: l.P99ms, Max: l.MaxMs}}
	for name, p := range l.Stages {
		out[name] = StageMs{P50: p[0], P99: p[1], Max: l.StagesMax[name]}
	}
	return out
}

// missCauses splits the misses of l (the first 50 are itemised; the rest,
// if any, are counted as the controller's) — see MissCauses.
func missCauses(l line.StatsReport, faultFree map[string]int) MissCauses {
	mc := MissCauses{CameraAfterDeadline: faultFree[line.ReasonLate.String()]}
	camP50, ctlP50 := l.Stages["camera"][0], l.P50ms
	for _, m := range l.Missed {
		if m.Reason == line.ReasonLate.String() && mc.CameraAfterDeadline > 0 {
			mc.CameraAfterDeadline-- // a pass turned late: counted here, not there
		}
		if m.CameraMs-camP50 > m.ControllerMs-ctlP50 {
			mc.Camera++
			continue
		}
		mc.Controller++
		stage := "queue"
		if m.JournalMs > m.QueueMs && m.JournalMs >= m.PLCMs {
			stage = "journal"
		} else if m.PLCMs > m.QueueMs {
			stage = "plc"
		}
		if mc.ControllerStage == nil {
			mc.ControllerStage = map[string]int{}
		}
		mc.ControllerStage[stage]++
	}
	mc.Controller += l.DeadlineMisses - len(l.Missed)
	return mc
}
