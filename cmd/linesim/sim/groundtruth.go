package sim

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Fate is where a unit ended up.
type Fate string

const (
	FateOnLine   Fate = "on-line"  // still on the belt
	FateGood     Fate = "good"     // passed the reject gate
	FateRejected Fate = "rejected" // removed by the reject gate
	FateMissing  Fate = "missing"  // fell off before the printer (fault "missing")
	// FateEscaped: should have been rejected but went on past the gate
	// (gate outcome reject-failed or bin-full). It is not packed: the line
	// is expected to stop and the operator pulls it out.
	FateEscaped Fate = "escaped"
)

// UnitTruth is what physically happened to one unit.
type UnitTruth struct {
	Item    uint32    `json:"item"`
	Code    string    `json:"code"`            // code physically on it ("" = none)
	Fault   FaultKind `json:"fault,omitempty"` // injected unit fault
	Verdict string    `json:"verdict"`         // what the PLC held at the gate: pass, reject, none
	Reason  uint16    `json:"reason,omitempty"`
	Fate    Fate      `json:"fate"`
	// Gate is the outcome the gate's sensor reported to the PLC, by name
	// (passed, rejected, reject-failed, bin-full); omitted until the unit
	// reached the gate, and for a missing unit.
	Gate GateOutcome `json:"gate,omitempty"`
	// GateFault is the gate fault that acted on this unit (late-pass,
	// reject-failed), or bin-full on the unit where the bin became full.
	GateFault FaultKind `json:"gate_fault,omitempty"`
	Group     uint32    `json:"group,omitempty"`   // level-2 group it was packed in
	Parents   []string  `json:"parents,omitempty"` // labels applied above it, level 2 first
}

// GroupTruth is one packed group (box, case, …).
type GroupTruth struct {
	ID       uint32   `json:"id"`
	Level    int      `json:"level"`
	Children []string `json:"children"`        // codes (level 2) or child labels
	Items    []uint32 `json:"items,omitempty"` // level 2: unit items; above: child group ids
	Partial  bool     `json:"partial"`         // closed short of the ratio at the end of the run
	Label    string   `json:"label,omitempty"` // label applied ("" = left unlabelled)
	Text     string   `json:"label_text,omitempty"`
	Parent   uint32   `json:"parent,omitempty"` // group id one level up
	State    string   `json:"state"`            // filling, read (waiting for a label), done
	// Scanned is what the label scanner published for the group: the
	// label read first, then the children (null = not scanned: no label
	// applied, or no scanner). LabelRead says the scanner read the label
	// applied (false on a label without a code or a label-noread).
	Scanned   []string `json:"scanned"`
	LabelRead bool     `json:"label_read"`
	// LabelLost is the label that fell off this group (label-misapply);
	// Misapplied says the label it carries was printed for another group
	// (it went on after a lost label, before a purge realigned the line).
	LabelLost  string `json:"label_lost,omitempty"`
	Misapplied bool   `json:"misapplied,omitempty"`
	// LabelFaults are the label faults that acted on the group.
	LabelFaults []FaultKind `json:"label_faults,omitempty"`
}

const (
	groupFilling = "filling"
	groupRead    = "read" // read by the aggregation camera, waiting for a label
	groupDone    = "done" // labelled or left unlabelled
)

// Summary counts the units and groups.
type Summary struct {
	Triggered int            `json:"triggered"`
	Good      int            `json:"good"`
	Rejected  int            `json:"rejected"`
	Escaped   int            `json:"escaped"` // went on although they should have been rejected
	Missing   int            `json:"missing"`
	OnLine    int            `json:"on_line"`
	NoVerdict int            `json:"no_verdict"` // rejected without a verdict
	Gate      map[string]int `json:"gate"`       // gate outcomes by name
	Faults    map[string]int `json:"faults"`     // unit, gate and label faults that acted
	Groups    map[int]int    `json:"groups"`     // by level
	Unlabeled int            `json:"unlabelled"` // groups that left without a label
	Scans     int            `json:"scans"`      // label scanner results
	// LabelsLost counts labels that fell off (label-misapply); Misapplied
	// counts groups carrying a label printed for another group.
	LabelsLost int `json:"labels_lost"`
	Misapplied int `json:"misapplied"`
}

// GroundTruth is the simulator's account of every unit and group.
type GroundTruth struct {
	Seed     uint64  `json:"seed"`
	Rate     float64 `json:"rate"`
	Ratios   []int   `json:"ratios"`
	Finished bool    `json:"finished"` // all units left the line
	// Infeed is the automatic infeed as it ran: the rate the belt made,
	// against Rate, the one it was asked for.
	Infeed  InfeedTruth  `json:"infeed"`
	Units   []UnitTruth  `json:"units"`
	Groups  []GroupTruth `json:"groups"`
	Summary Summary      `json:"summary"`
	PLC     PLCState     `json:"plc"`
}

// InfeedTruth is the automatic infeed as it ran (manual infeed not
// counted): the units it put on the belt, when the first and the last
// came, the rate they made (units/min from the first to the last, 0 with
// fewer than two), and HeldSlots, the pitches it stood still for after the
// first unit (a stop request, the controller's watchdog, a full gate ring:
// docs/devices.md).
type InfeedTruth struct {
	Units     int       `json:"units"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
	Rate      float64   `json:"rate_per_min"`
	HeldSlots int       `json:"held_slots"`
}

// add counts a unit put on the belt at t. Rate is left to rated.
func (f *InfeedTruth) add(t time.Time) {
	if f.Units == 0 {
		f.First = t
	}
	f.Units++
	f.Last = t
}

// rated returns f with Rate derived from Units, First and Last: once per
// snapshot of the truth, not once per unit.
func (f InfeedTruth) rated() InfeedTruth {
	f.Rate = 0
	if d := f.Last.Sub(f.First); f.Units > 1 && d > 0 {
		f.Rate = float64(f.Units-1) / d.Minutes()
	}
	return f
}

// summarise fills Summary from Units and Groups.
func (g *GroundTruth) summarise() {
	s := Summary{Gate: map[string]int{}, Faults: map[string]int{}, Groups: map[int]int{}}
	for _, u := range g.Units {
		s.Triggered++
		switch u.Fate {
		case FateGood:
			s.Good++
		case FateRejected:
			s.Rejected++
		case FateEscaped:
			s.Escaped++
		case FateMissing:
			s.Missing++
		case FateOnLine:
			s.OnLine++
		}
		if u.Fate == FateRejected && u.Verdict == "none" {
			s.NoVerdict++
		}
		if u.Fault != "" {
			s.Faults[string(u.Fault)]++
		}
		if u.GateFault != "" {
			s.Faults[string(u.GateFault)]++
		}
		if u.Gate != GateNone {
			s.Gate[u.Gate.String()]++
		}
	}
	for _, gr := range g.Groups {
		s.Groups[gr.Level]++
		if gr.State == groupDone && gr.Label == "" {
			s.Unlabeled++
		}
		if gr.Scanned != nil {
			s.Scans++
		}
		if gr.LabelLost != "" {
			s.LabelsLost++
		}
		if gr.Misapplied {
			s.Misapplied++
		}
		for _, f := range gr.LabelFaults {
			s.Faults[string(f)]++
		}
	}
	g.Summary = s
}

// Check verifies that the ground truth is self-consistent: ids are
// consecutive, fates agree with verdicts, gate outcomes and faults, codes
// are unique except deliberate duplicates, groups hold good units only,
// each child has at most one parent, full groups hold exactly their ratio,
// scans agree with labels, and the PLC's counters agree with the units. It
// returns every problem found.
func (g GroundTruth) Check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	seen := map[string]uint32{}
	var good, rejected, escaped, atGate int
	for i, u := range g.Units {
		if u.Item != uint32(i+1) {
			bad("unit %d: item id %d, want %d", i, u.Item, i+1)
		}
		if u.Gate != GateNone {
			atGate++
		}
		switch u.Fate {
		case FateGood:
			good++
			if u.Verdict != "pass" {
				bad("item %d: good without a pass verdict (%s)", u.Item, u.Verdict)
			}
			if u.Gate != GatePassed {
				bad("item %d: good but the gate reported %s", u.Item, u.Gate)
			}
		case FateRejected:
			rejected++
			if u.Verdict == "pass" && u.GateFault != FaultLatePass {
				bad("item %d: rejected with a pass verdict and no late-pass fault", u.Item)
			}
			if u.Group != 0 {
				bad("item %d: rejected but packed in group %d", u.Item, u.Group)
			}
			if u.Gate != GateRejected {
				bad("item %d: rejected but the gate reported %s", u.Item, u.Gate)
			}
		case FateEscaped:
			escaped++
			if u.Verdict == "pass" {
				bad("item %d: escaped with a pass verdict", u.Item)
			}
			if u.Group != 0 {
				bad("item %d: escaped but packed in group %d", u.Item, u.Group)
			}
			if !u.Gate.Escaped() || (u.Gate == GateRejectFailed && u.GateFault != FaultRejectFailed) {
				bad("item %d: escaped with gate outcome %s and gate fault %q", u.Item, u.Gate, u.GateFault)
			}
		case FateMissing:
			if u.Fault != FaultMissing || u.Code != "" {
				bad("item %d: missing without the missing fault, or with a code", u.Item)
			}
			if u.Gate != GateNone {
				bad("item %d: missing but the gate reported %s", u.Item, u.Gate)
			}
		case FateOnLine:
			if g.Finished {
				bad("item %d: still on the line after the run finished", u.Item)
			}
			if u.Gate != GateNone {
				bad("item %d: on the line but the gate reported %s", u.Item, u.Gate)
			}
		default:
			bad("item %d: unknown fate %q", u.Item, u.Fate)
		}
		if u.Fault == FaultSkipPrint && u.Code != "" {
			bad("item %d: skipped print but code %q on it", u.Item, u.Code)
		}
		if u.Code != "" {
			if prev, dup := seen[u.Code]; dup && u.Fault != FaultDuplicate {
				bad("item %d: code %s also on item %d without a duplicate fault", u.Item, u.Code, prev)
			}
			seen[u.Code] = u.Item
		}
	}
	if g.Finished {
		if good != int(g.PLC.Good) || rejected != int(g.PLC.Rejected) || escaped != int(g.PLC.Escaped) {
			bad("PLC counted %d good / %d rejected / %d escaped, units say %d / %d / %d",
				g.PLC.Good, g.PLC.Rejected, g.PLC.Escaped, good, rejected, escaped)
		}
		if atGate != int(g.PLC.GateCount) {
			bad("PLC recorded %d gate outcomes, %d units reached the gate", g.PLC.GateCount, atGate)
		}
	}
	byID := map[uint32]GroupTruth{}
	for _, gr := range g.Groups {
		byID[gr.ID] = gr
	}
	parentOf := map[string]uint32{} // "item N" / "group N" → parent group
	for _, gr := range g.Groups {
		if len(gr.Children) != len(gr.Items) {
			bad("group %d: %d children but %d item ids", gr.ID, len(gr.Children), len(gr.Items))
		}
		lvl := gr.Level - 2
		if lvl < 0 || lvl >= len(g.Ratios) {
			bad("group %d: level %d outside the ratios", gr.ID, gr.Level)
			continue
		}
		if gr.State != groupFilling && !gr.Partial && len(gr.Children) != g.Ratios[lvl] {
			bad("group %d: full group holds %d, ratio is %d", gr.ID, len(gr.Children), g.Ratios[lvl])
		}
		if len(gr.Children) > g.Ratios[lvl] {
			bad("group %d: holds %d, more than the ratio %d", gr.ID, len(gr.Children), g.Ratios[lvl])
		}
		for i, c := range gr.Children {
			if i >= len(gr.Items) {
				continue
			}
			key := fmt.Sprintf("group %d", gr.Items[i])
			if gr.Level == 2 {
				key = fmt.Sprintf("item %d", gr.Items[i])
			}
			if p, ok := parentOf[key]; ok {
				bad("%s in groups %d and %d", key, p, gr.ID)
			}
			parentOf[key] = gr.ID
			if gr.Level == 2 {
				it := gr.Items[i]
				if it < 1 || int(it) > len(g.Units) {
					bad("group %d: unknown item %d", gr.ID, it)
					continue
				}
				u := g.Units[it-1]
				if u.Fate != FateGood || u.Code != c || u.Group != gr.ID {
					bad("group %d: item %d (%s, %s, group %d) does not match child %s", gr.ID, it, u.Fate, u.Code, u.Group, c)
				}
			} else {
				ch, ok := byID[gr.Items[i]]
				if !ok || ch.Label != c || ch.Level != gr.Level-1 || ch.Parent != gr.ID {
					bad("group %d: child group %d does not match label %s", gr.ID, gr.Items[i], c)
				}
			}
		}
		if gr.Scanned != nil {
			switch {
			case gr.State != groupDone:
				bad("group %d: scanned while %s", gr.ID, gr.State)
			case gr.LabelRead && (gr.Label == "" || len(gr.Scanned) == 0 || gr.Scanned[0] != gr.Label):
				bad("group %d: scanner read label %v, label applied %q", gr.ID, gr.Scanned, gr.Label)
			case !gr.LabelRead && gr.Label != "" && !slices.Contains(gr.LabelFaults, FaultLabelNoRead):
				bad("group %d: scanner missed label %q without a label-noread fault", gr.ID, gr.Label)
			}
		}
		if gr.LabelLost != "" && !slices.Contains(gr.LabelFaults, FaultLabelMisapply) {
			bad("group %d: label %s lost without a label-misapply fault", gr.ID, gr.LabelLost)
		}
	}
	s := g
	s.summarise()
	if s.Summary.Good != g.Summary.Good || s.Summary.Rejected != g.Summary.Rejected || s.Summary.Missing != g.Summary.Missing ||
		s.Summary.Escaped != g.Summary.Escaped {
		bad("summary disagrees with the units")
	}
	return errors.Join(errs...)
}

// sortGroups orders groups by id.
func sortGroups(gs []GroupTruth) {
	sort.Slice(gs, func(i, j int) bool { return gs[i].ID < gs[j].ID })
}
