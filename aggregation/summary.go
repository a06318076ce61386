package aggregation

import (
	"fmt"

	"github.com/tracline/tracline/tracecode"
)

// LevelSummary is one level's reconciliation counters. Flow counters count
// transitions ever made; Outstanding, InFlight, Loose and Packed are codes
// now in those states.
type LevelSummary struct {
	Level          tracecode.Level `json:"level"`
	Ratio          int             `json:"ratio"`
	Allocated      int64           `json:"allocated"`
	Returned       int64           `json:"returned"`
	Sent           int64           `json:"sent"`
	Printed        int64           `json:"printed"`
	Commissioned   int64           `json:"commissioned"` // ever
	Rejected       int64           `json:"rejected"`
	Voided         int64           `json:"voided"`
	Sampled        int64           `json:"sampled"`
	Decommissioned int64           `json:"decommissioned"`
	Packed         int64           `json:"packed"`      // now in a parent
	Loose          int64           `json:"loose"`       // commissioned, in no parent
	Outstanding    int64           `json:"outstanding"` // allocated, not yet sent nor returned
	InFlight       int64           `json:"in_flight"`   // sent or printed, not yet decided
	FullParents    int64           `json:"full_parents"`
	PartialParents int64           `json:"partial_parents"`
	MixedParents   int64           `json:"mixed_parents"`
	// RejectedUnits counts units rejected without a code of theirs changing
	// state (no-read, a duplicate or foreign code): not part of conservation.
	RejectedUnits int64 `json:"rejected_units"`
	// What the reject-confirm sensor reported (level 1) and what happened
	// to parents' labels (levels ≥ 2); see EvGate and EvLabel.
	GatePassed     int64  `json:"gate_passed"`
	GateRejected   int64  `json:"gate_rejected"`
	GateEscaped    int64  `json:"gate_escaped"`
	LabelsPrinted  int64  `json:"labels_printed"`
	LabelsVerified int64  `json:"labels_verified"`
	LabelCheck     bool   `json:"label_check,omitempty"`
	LastItem       uint64 `json:"last_item,omitempty"`
	FirstItem      uint64 `json:"first_item,omitempty"`
	// States counts codes now in each state, by CodeState name.
	States map[string]int64 `json:"states"`
	raw    levelCounters
}

// BatchSummary is a batch's reconciliation, built in O(levels).
type BatchSummary struct {
	Batch     string            `json:"batch"`
	Product   string            `json:"product"`
	Line      string            `json:"line"`
	State     BatchState        `json:"state"`
	Order     WorkOrder         `json:"order"`
	Levels    []LevelSummary    `json:"levels"`
	Signature *Signature        `json:"signature,omitempty"`
	Documents map[string]string `json:"documents,omitempty"`
	Challenge *Challenge        `json:"challenge,omitempty"` // the last challenge test run
}

func buildSummary(b *batchRec, ctr func(tracecode.Level) levelCounters) BatchSummary {
	s := BatchSummary{Batch: b.Spec.ID, Product: b.Spec.Product, Line: b.Spec.Line, State: b.State,
		Order: b.Spec.Order, Signature: b.Signature, Documents: b.Documents, Challenge: b.Challenge}
	for _, ls := range b.Spec.Levels {
		c := ctr(ls.Level)
		l := LevelSummary{Level: ls.Level, Ratio: ls.Ratio, Allocated: c.Allocated, Returned: c.Returned,
			Sent: c.Sent, Printed: c.Printed, Commissioned: c.Commissioned, Rejected: c.Rejected,
			Voided: c.Voided, Sampled: c.Sampled, Decommissioned: c.Decommissioned, Packed: c.Packed,
			Loose: c.States[StateCommissioned], Outstanding: c.States[StateAllocated],
			InFlight: c.States[StateSent] + c.States[StatePrinted], FullParents: c.FullParents,
			PartialParents: c.PartialParents, MixedParents: c.MixedParents, RejectedUnits: c.RejectedUnits, States: map[string]int64{}, raw: c,
			GatePassed: c.GatePassed, GateRejected: c.GateRejected, GateEscaped: c.GateEscaped,
			LabelsPrinted: c.LabelsPrinted, LabelsVerified: c.LabelsVerified, LabelCheck: ls.LabelCheck,
			LastItem: c.LastItem, FirstItem: c.FirstItem}
		for st := StateAllocated; int(st) < NumCodeStates; st++ {
			if c.States[st] != 0 {
				l.States[st.String()] = c.States[st]
			}
		}
		s.Levels = append(s.Levels, l)
	}
	return s
}

// Check returns every conservation equation (invariant 2, and the parent
// counts of invariant 4) that does not hold; empty means balanced. Codes
// not yet decided (outstanding, in flight) are counted as such.
func (s BatchSummary) Check() []string {
	var bad []string
	f := func(l LevelSummary, format string, a ...any) {
		bad = append(bad, fmt.Sprintf("batch %s %s: ", s.Batch, l.Level)+fmt.Sprintf(format, a...))
	}
	for _, l := range s.Levels {
		c := l.raw
		if l.Allocated != l.Returned+l.Sent+l.Outstanding {
			f(l, "allocated %d ≠ returned %d + sent %d + outstanding %d", l.Allocated, l.Returned, l.Sent, l.Outstanding)
		}
		if l.Sent != l.Commissioned+l.Rejected+l.Voided+l.InFlight {
			f(l, "sent %d ≠ commissioned %d + rejected %d + voided %d + in flight %d", l.Sent, l.Commissioned, l.Rejected, l.Voided, l.InFlight)
		}
		if l.Commissioned != l.Packed+l.Sampled+l.Decommissioned+l.Loose {
			f(l, "commissioned %d ≠ packed %d + sampled %d + decommissioned %d + loose %d", l.Commissioned, l.Packed, l.Sampled, l.Decommissioned, l.Loose)
		}
		pairs := []struct {
			name      string
			flow, now int64
		}{
			{"returned", l.Returned, c.States[StateReturned]},
			{"rejected", l.Rejected, c.States[StateRejected]},
			{"voided", l.Voided, c.States[StateVoided]},
			{"sampled", l.Sampled, c.States[StateSampled]},
			{"decommissioned", l.Decommissioned, c.States[StateDecommissioned]},
			{"packed", l.Packed, c.States[StateAggregated]},
		}
		for _, p := range pairs {
			if p.flow != p.now {
				f(l, "%s counter %d ≠ %d codes now %s", p.name, p.flow, p.now, p.name)
			}
		}
		for st, n := range c.States {
			if n < 0 {
				f(l, "%d codes in state %s", n, CodeState(st))
			}
		}
		if l.Level >= 2 && l.FullParents+l.PartialParents > l.Loose+l.Packed {
			f(l, "%d parents hold children but only %d codes are commissioned", l.FullParents+l.PartialParents, l.Loose+l.Packed)
		}
	}
	return bad
}

// ReleaseProblems is Check plus what must be settled before QA can release:
// nothing outstanding or in flight, nothing loose below the top level.
func (s BatchSummary) ReleaseProblems() []string {
	bad := s.Check()
	for i, l := range s.Levels {
		if l.Outstanding > 0 {
			bad = append(bad, fmt.Sprintf("batch %s %s: %d codes allocated but neither sent nor returned", s.Batch, l.Level, l.Outstanding))
		}
		if l.InFlight > 0 {
			bad = append(bad, fmt.Sprintf("batch %s %s: %d codes sent but neither commissioned, rejected nor voided", s.Batch, l.Level, l.InFlight))
		}
		if i < len(s.Levels)-1 && l.Loose > 0 {
			bad = append(bad, fmt.Sprintf("batch %s %s: %d commissioned codes are in no parent", s.Batch, l.Level, l.Loose))
		}
	}
	return bad
}
