package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// Report is `linectl demo --headless --report`; its JSON keys are part of
// the command-line contract (DESIGN.md).
type Report struct {
	Batch   string  `json:"batch"`
	Product string  `json:"product"`
	Units   int     `json:"units"`
	Rate    float64 `json:"rate_per_min"`
	// Infeed is the simulated belt's infeed as it ran: the rate it made
	// (rate_per_min there) against Rate, the one asked for, and the
	// pitches it stood still (a stop request, the watchdog, a full gate
	// ring).
	Infeed         sim.InfeedTruth            `json:"infeed"`
	Seed           uint64                     `json:"seed"`
	InvariantsOK   bool                       `json:"invariants_ok"`
	Invariants     []string                   `json:"invariant_problems"`
	GroundTruthOK  bool                       `json:"ground_truth_ok"`
	GroundTruth    []string                   `json:"ground_truth_problems"`
	DeadlineMisses int                        `json:"deadline_misses"`
	Latency        line.StatsReport           `json:"verdict_latency_ms"`
	Counts         map[string]int64           `json:"counts"`
	Levels         []aggregation.LevelSummary `json:"levels"`
	Rejects        map[string]uint64          `json:"rejects_by_reason"`
	// FaultFreeRejects are the units the simulator injected no fault on
	// (the challenge test's units aside) that the gate rejected all the
	// same, by the reason the PLC held ("no-verdict": none at the gate).
	// A "late" one is a unit whose camera result came after its deadline:
	// decided late, not counted in deadline_misses, yet a good unit lost.
	FaultFreeRejects map[string]int         `json:"fault_free_rejects_by_reason"`
	Challenge        []line.ChallengeResult `json:"challenge"`
	ChallengeOK      bool                   `json:"challenge_ok"`
	Sim              sim.Summary            `json:"simulator"`
	State            string                 `json:"line_state"`
	WallSeconds      float64                `json:"wall_s"`
	CPUSeconds       float64                `json:"cpu_s"`
	CPUPercent       float64                `json:"cpu_percent"`
	// Simulator says where the simulated line ran; with a separate process
	// cpu_s and cpu_percent are the controller's alone and these the
	// simulator's, over the same batch.
	Simulator     string  `json:"simulated_line"`
	SimCPUSeconds float64 `json:"sim_cpu_s,omitempty"`
	SimCPUPercent float64 `json:"sim_cpu_percent,omitempty"`
	// SimLoop is how late the simulator's event loop ran its timed events
	// over the batch (sim.LoopLag): a late wake-up there is a late camera
	// result or PLC count on the simulated line.
	SimLoop *sim.LoopLag `json:"sim_loop_lag,omitempty"`
	DataDir string       `json:"data_dir"`
	// Runtime is what the Go runtime of this process did from the batch's
	// start to its end (garbage collection, allocation per unit, scheduler
	// latency).
	Runtime RuntimeStats `json:"runtime"`
	// Ledger is what the ledger's committer did over the batch.
	Ledger LedgerStats `json:"ledger"`
	// Handoff is the release and hand-off after the batch (Options.Handoff).
	Handoff *HandoffReport `json:"handoff,omitempty"`
}

// LedgerStats: the synced group commits over a batch (each one sync of
// the disk), the writes they carried, and the groups per unit.
type LedgerStats struct {
	Groups        uint64  `json:"groups"`
	Requests      uint64  `json:"requests"`
	GroupsPerUnit float64 `json:"groups_per_unit"`
	// Writes: where the time of the ledger writes the line waited for
	// went, by stage (aggregation.Store.WriteStages; the run's ledger only).
	Writes *aggregation.WriteStages `json:"writes,omitempty"`
}

// OK reports whether the batch reconciled: invariants, ground truth, no
// deadline miss and, if it ran, the hand-off (`linectl demo --headless`
// exits 1 otherwise).
func (r *Report) OK() bool {
	return r.InvariantsOK && r.GroundTruthOK && r.DeadlineMisses == 0 && (r.Handoff == nil || r.Handoff.OK)
}

// productName is how a report names the product file.
func productName(file string) string {
	if file == "" {
		return "examples/amoxicillin-gs1.yaml (embedded)"
	}
	return file
}

func buildReport(ctx context.Context, store *aggregation.Store, r *line.Line, gt sim.GroundTruth, s *Setup, o Options, wall, cpu time.Duration, dir string) (*Report, error) {
	batch := s.Batch.Batch
	sum, err := store.Summary(ctx, batch)
	if err != nil {
		return nil, err
	}
	snap := Snapshot(r)
	rep := &Report{Batch: batch, Product: productName(o.Product), Units: o.Units, Rate: o.Rate, Infeed: gt.Infeed, Seed: o.Seed,
		Latency: r.Stats(), Counts: map[string]int64{}, Levels: sum.Levels, Rejects: snap.Counters.RejectReason,
		Challenge: snap.Challenge, ChallengeOK: snap.ChallengeOK, Sim: gt.Summary, State: snap.State,
		WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds(), DataDir: dir}
	rep.DeadlineMisses = rep.Latency.DeadlineMisses
	if wall > 0 {
		rep.CPUPercent = 100 * cpu.Seconds() / wall.Seconds()
	}
	for _, l := range sum.Levels {
		for st, n := range l.States {
			rep.Counts[st] += n
		}
	}
	vr, err := store.Verify(ctx)
	if err != nil {
		return nil, err
	}
	rep.Invariants = append([]string{}, vr.Problems...)
	for _, p := range sum.Check() {
		rep.Invariants = append(rep.Invariants, "batch "+batch+": "+p)
	}
	rep.InvariantsOK = len(rep.Invariants) == 0 && vr.Truncated == 0
	rep.GroundTruth = append([]string{}, CompareTruth(ctx, store, batch, gt)...)
	rep.FaultFreeRejects = faultFreeRejects(gt, len(s.Challenge))
	rep.GroundTruthOK = len(rep.GroundTruth) == 0
	return rep, nil
}

// CompareTruth checks the ledger's record of batch against what physically
// happened on the line (the simulator's ground truth) and returns the
// differences (at most 50), none if they agree: every unit that left the
// line as good carries a commissioned code of its own under the parents
// whose labels are on it, and every commissioned unit code is on a good
// unit.
func CompareTruth(ctx context.Context, store *aggregation.Store, batch string, gt sim.GroundTruth) []string {
	return CompareTruthReworked(ctx, store, batch, gt, nil)
}

// CompareTruthReworked is CompareTruth for a batch some of whose good
// units an operator took off after the gate, at rework, and took out of
// circulation (decommissioned): what the simulator cannot know. Their codes
// must be decommissioned in the ledger, and they are not counted as good.
func CompareTruthReworked(ctx context.Context, store *aggregation.Store, batch string, gt sim.GroundTruth, takenOff map[tracecode.Code]bool) []string {
	var problems []string
	add := func(format string, a ...any) {
		if len(problems) < 50 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	if !gt.Finished {
		add("simulator did not finish the batch")
	}
	if err := gt.Check(); err != nil {
		add("simulator's own ground truth: %v", err)
	}
	onGood := map[string]uint32{}
	good := 0
	for _, u := range gt.Units {
		if u.Fate == sim.FateGood && len(takenOff) > 0 {
			if p, err := tracecode.Parse(u.Code); err == nil && takenOff[p.Code] {
				if info, err := store.Code(ctx, p.Code); err != nil {
					add("unit %d was taken off at rework: its code %s: %v", u.Item, p.Code, err)
				} else if info.State != aggregation.StateDecommissioned {
					add("unit %d was taken off at rework, but its code %s is %s in the ledger", u.Item, p.Code, info.State)
				}
				continue
			}
		}
		switch u.Fate {
		case sim.FateGood:
			good++
			if u.Fault != "" {
				add("unit %d had fault %s but left the line as good", u.Item, u.Fault)
			}
			if u.Code == "" {
				add("unit %d left the line as good without a code", u.Item)
				continue
			}
			if other, dup := onGood[u.Code]; dup {
				add("code %s is on two good units (%d and %d)", u.Code, other, u.Item)
			}
			onGood[u.Code] = u.Item
			p, err := tracecode.Parse(u.Code)
			if err != nil {
				add("unit %d: code %q on it does not parse: %v", u.Item, u.Code, err)
				continue
			}
			info, err := store.Code(ctx, p.Code)
			if err != nil {
				add("unit %d: code %s: %v", u.Item, p.Code, err)
				continue
			}
			if info.State != aggregation.StateCommissioned && info.State != aggregation.StateAggregated {
				add("unit %d left as good but its code %s is %s in the ledger", u.Item, p.Code, info.State)
			}
			anc, err := store.Ancestors(ctx, p.Code)
			if err != nil {
				add("unit %d: ancestors of %s: %v", u.Item, p.Code, err)
				continue
			}
			if len(anc) < len(u.Parents) && divertedLabels(ctx, store, u.Parents[len(anc):]) {
				// The label scanner found the label on this unit's group (or
				// one above) not the group's own: the group was diverted to
				// rework, its parents taken out; the unit is commissioned,
				// loose from that level up, and the labels on it are void.
				u.Parents = u.Parents[:len(anc)]
			}
			if len(anc) != len(u.Parents) {
				add("unit %d: ledger has %d parents %v, the line put it under %d labels %v", u.Item, len(anc), anc, len(u.Parents), u.Parents)
				continue
			}
			for i := range anc {
				if lp, err := tracecode.Parse(u.Parents[i]); err != nil || lp.Code != anc[i] {
					add("unit %d: parent %d is %s in the ledger, label %s on the line", u.Item, i+2, anc[i], u.Parents[i])
				}
			}
		case sim.FateOnLine:
			add("unit %d is still on the line", u.Item)
		}
	}
	// Every commissioned unit code is on a good unit: nothing commissioned
	// that did not ship (sampled or decommissioned codes aside).
	goodCodes := make(map[tracecode.Code]bool, len(onGood))
	for raw := range onGood {
		if p, err := tracecode.Parse(raw); err == nil {
			goodCodes[p.Code] = true
		}
	}
	n := 0
	for _, st := range []aggregation.CodeState{aggregation.StateCommissioned, aggregation.StateAggregated} {
		err := store.Codes(ctx, batch, 1, st, func(c tracecode.Code) error {
			n++
			if !goodCodes[c] {
				item := "no unit"
				for _, u := range gt.Units {
					if p, err := tracecode.Parse(u.Code); err == nil && p.Code == c {
						item = fmt.Sprintf("unit %d (%s, fault %q, verdict %s)", u.Item, u.Fate, u.Fault, u.Verdict)
					}
				}
				add("code %s is %s in the ledger but on %s", c, st, item)
			}
			return nil
		})
		if err != nil {
			add("batch %s: %s unit codes: %v", batch, st, err)
		}
	}
	if n != good {
		add("ledger has %d commissioned unit codes, %d units left the line as good", n, good)
	}
	return problems
}

// divertedLabels reports whether every label is a code the ledger took out
// (decommissioned): a group diverted to rework at the label scanner.
func divertedLabels(ctx context.Context, store *aggregation.Store, labels []string) bool {
	for _, raw := range labels {
		p, err := tracecode.Parse(raw)
		if err != nil {
			return false
		}
		info, err := store.Lookup(ctx, p.Code)
		if err != nil || info.State != aggregation.StateDecommissioned {
			return false
		}
	}
	return true
}

// faultFreeRejects counts the units with no injected fault that the gate
// rejected, by the PLC's reason; the first challenge units are test units,
// rejected by design.
func faultFreeRejects(gt sim.GroundTruth, challenge int) map[string]int {
	out := map[string]int{}
	for _, u := range gt.Units {
		if u.Fault != "" || u.GateFault != "" || int(u.Item) <= challenge || (u.Fate != sim.FateRejected && u.Fate != sim.FateEscaped) {
			continue
		}
		why := line.Reason(u.Reason).String()
		if u.Verdict == "none" {
			why = "no-verdict"
		}
		out[why]++
	}
	return out
}
