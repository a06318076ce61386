package line

import (
	"fmt"
	"sort"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// What the physical line confirms after a verdict: the reject gate's
// outcome for every unit (the PLC's reject-confirm sensor), and every
// parent's label read on its group by a label scanner. The ledger follows
// what physically happened; a disagreement holds the line and is named.

// Gate is a unit's outcome at the reject gate, as the PLC confirms it.
type Gate uint8

const (
	GatePassed       Gate = iota + 1 // went on as good
	GateRejected                     // confirmed in the reject bin
	GateRejectFailed                 // to be rejected, went on
	GateBinFull                      // to be rejected, went on: the bin is full
)

var gateNames = [...]string{"", "passed", "rejected", "reject-failed", "bin-full"}

func (g Gate) String() string {
	if g >= GatePassed && g <= GateBinFull {
		return gateNames[g]
	}
	return fmt.Sprintf("gate(%d)", uint8(g))
}

// Escaped reports whether a unit that was to be rejected went on.
func (g Gate) Escaped() bool { return g == GateRejectFailed || g == GateBinFull }

// GateOutcome: the PLC confirmed what the gate did with item Item. Seq is
// the outcome's number in the PLC's ring (0: not numbered); the controller
// acknowledges it to the PLC once nothing about it is left to journal.
type GateOutcome struct {
	Stamp
	Item    uint32
	Outcome Gate
	Seq     uint64
}

// GateLost: N gate outcomes were lost (the PLC's ring overflowed while the
// link was down). The units concerned are resolved as unknown when a later
// outcome arrives.
type GateLost struct {
	Stamp
	N uint64
}

// LabelScan: the label scanner after the labeller read a group of Level:
// the applied label and the group's children, in any order (Pass false:
// the scanner's own verdict is a fail, e.g. no label read).
type LabelScan struct {
	Stamp
	Level tracecode.Level
	Reads []Read
	Pass  bool
}

func (e GateOutcome) String() string { return fmt.Sprintf("gate %d %s", e.Item, e.Outcome) }
func (e GateLost) String() string    { return fmt.Sprintf("gate-lost %d", e.N) }
func (e LabelScan) String() string {
	return fmt.Sprintf("label-scan %s pass=%t %v", e.Level, e.Pass, e.Reads)
}

// ConfirmGate: journal unit Item's gate outcome (with its code, if any).
// A rejected outcome on a commissioned code decommissions it in the ledger.
// Seq (if not 0) is acknowledged to the PLC once it is journaled.
type ConfirmGate struct {
	Item    uint32
	Code    tracecode.Code
	Outcome Gate
	Seq     uint64
}

// AckGate: gate outcome number Seq needs nothing journaled (a unit this run
// does not track): acknowledge it to the PLC in its turn.
type AckGate struct{ Seq uint64 }

// TakeBack: decommission Code — commissioned, but its unit's fate at the
// gate cannot be confirmed (Reason says why).
type TakeBack struct {
	Code   tracecode.Code
	Reason string
}

// LabelOK: journal that Parent's label was read on the group packed under it.
type LabelOK struct{ Parent tracecode.Code }

// Divert: the group at the label scanner is not the one its label (or the
// ledger) says: unpack and decommission each of Parents; the group goes to
// rework (the operator takes it off the line and re-aggregates it).
type Divert struct {
	Level   tracecode.Level
	Parents []tracecode.Code
	Reason  string
}

func (a ConfirmGate) String() string {
	if a.Seq > 0 {
		return fmt.Sprintf("confirm-gate %d %s code=%s #%d", a.Item, a.Outcome, a.Code, a.Seq)
	}
	return fmt.Sprintf("confirm-gate %d %s code=%s", a.Item, a.Outcome, a.Code)
}
func (a AckGate) String() string  { return fmt.Sprintf("ack-gate #%d", a.Seq) }
func (a TakeBack) String() string { return fmt.Sprintf("take-back %s %q", a.Code, a.Reason) }
func (a LabelOK) String() string  { return fmt.Sprintf("label-ok %s", a.Parent) }
func (a Divert) String() string {
	return fmt.Sprintf("divert %s %s: %s", a.Level, joinCodes(a.Parents), a.Reason)
}

func (ConfirmGate) action() {}
func (AckGate) action()     {}
func (TakeBack) action()    {}
func (LabelOK) action()     {}
func (Divert) action()      {}

// Latched faults are cleared only by an operator's acknowledge: nothing on
// the device side says the condition is gone.
const (
	faultGate     = "gate"
	faultLabeller = "labeller"
)

// gateWait is a decided unit waiting for its gate outcome.
type gateWait struct {
	code     tracecode.Code
	pass     bool
	deadline time.Time // when it reached the gate
	restart  bool      // commissioned before a restart, resolved from the PLC's ring or voided
}

// AdoptUnconfirmed tells the machine, after a restart, of a commissioned
// unit code whose gate outcome was never journaled (the controller stopped
// between the verdict and the outcome). The PLC's ring of outcomes, read
// when the PLC connects, resolves it; if the ring no longer holds it, the
// first outcome of a later unit (or the batch's end) takes it back. Not an
// event: the runner calls it before the first Step.
func (m *Machine) AdoptUnconfirmed(code tracecode.Code, item uint32) {
	if !m.cfg.GateConfirm || item == 0 {
		return
	}
	m.addGateWait(item, &gateWait{code: code, pass: true, restart: true})
}

// AdoptVoided tells the machine of codes voided at restart (sent or printed
// by the previous run): the printer may still print them, and the alarm
// then says what they are.
func (m *Machine) AdoptVoided(code tracecode.Code, level tracecode.Level) {
	m.codes[code] = &codeInfo{level: level, state: csVoided, voidedAtRestart: true}
}

// Resume seeds the batch's counters from the ledger after a restart, so
// that the counts, the end-of-run test and the HMI continue the batch.
// lastItem is the highest item id the ledger holds for the batch: units
// between it and the first trigger of this run were on the line when the
// controller stopped and count as triggered.
func (m *Machine) Resume(c Counters, lastItem uint32) {
	c.RejectReason = copyMap(c.RejectReason)
	c.Packed = copyMap(c.Packed)
	c.Partial = copyMap(c.Partial)
	m.counters = c
	m.resumeItem, m.resumeTriggered = lastItem, c.Triggered
}

// ResumeCounters are the counters a batch resumes with, from the ledger:
// the units decided are its verdicts; the units triggered span the PLC's
// item ids from the batch's first to its last journaled unit (units the
// controller never decided — it was down — were rejected at the gate).
func ResumeCounters(c Counters, firstItem, lastItem uint32) Counters {
	if firstItem > 0 && lastItem >= firstItem {
		if span := uint64(lastItem-firstItem) + 1; span > c.Triggered {
			down := span - c.Triggered
			c.Triggered = span
			c.Rejected += down
			if c.RejectReason == nil {
				c.RejectReason = map[string]uint64{}
			}
			c.RejectReason["controller-down"] += down
		}
	}
	return c
}

func (m *Machine) addGateWait(item uint32, w *gateWait) {
	if m.atGate == nil {
		m.atGate = map[uint32]*gateWait{}
	}
	if _, ok := m.atGate[item]; !ok {
		i := sort.Search(len(m.gateOrder), func(i int) bool { return m.gateOrder[i] >= item })
		m.gateOrder = append(m.gateOrder, 0)
		copy(m.gateOrder[i+1:], m.gateOrder[i:])
		m.gateOrder[i] = item
	}
	m.atGate[item] = w
}

// expectGate records a decided unit for its gate outcome.
func (m *Machine) expectGate(v Verdict) {
	if !m.cfg.GateConfirm {
		return
	}
	code := v.Code
	if v.Journal == JournalUnitOnly {
		// The code read or printed is not this unit's to settle (a reprint
		// of another unit's code, a foreign code): its outcome says
		// nothing about that code.
		code = ""
	}
	m.addGateWait(v.Item, &gateWait{code: code, pass: v.Pass, deadline: v.Deadline})
}

func (m *Machine) onGate(e GateOutcome, out []Action) []Action {
	ack := func(out []Action) []Action {
		if e.Seq > 0 {
			out = append(out, AckGate{Seq: e.Seq})
		}
		return out
	}
	if !m.cfg.GateConfirm {
		return ack(out)
	}
	// The gate reports units in the order they reach it: an earlier unit
	// still waiting lost its outcome (or never reached the gate).
	for len(m.gateOrder) > 0 && m.gateOrder[0] < e.Item {
		out = m.gateUnknown(m.gateOrder[0], "no gate outcome (a later unit's came first)", out)
	}
	w, ok := m.atGate[e.Item]
	if !ok {
		if e.Outcome.Escaped() {
			// A unit this run did not decide (before a restart, or in flight
			// at it): the operator must still retrieve it.
			out = append(out, Alarm{Device: faultGate, Text: fmt.Sprintf("item %d: %s at the reject gate (a unit from before the restart or not tracked): retrieve it", e.Item, e.Outcome)})
		}
		return ack(out)
	}
	m.dropGate(e.Item)
	outcome := e.Outcome
	if outcome == GatePassed && !w.pass {
		outcome = GateRejectFailed // the PLC let through a unit it was told to reject
	}
	out = append(out, ConfirmGate{Item: e.Item, Code: w.code, Outcome: outcome, Seq: e.Seq})
	switch {
	case outcome == GateRejected && w.pass:
		if info := m.codes[w.code]; info != nil && info.state == csCommissioned {
			info.state = csVoided
		}
		m.counters.Passed--
		m.counters.Rejected++
		m.counters.RejectReason["rejected-at-gate"]++
		m.counters.GateRejectedPasses++
		out = append(out, Alarm{Device: faultGate, Text: fmt.Sprintf("item %d passed but the gate rejected it: code %s decommissioned", e.Item, w.code)})
	case outcome.Escaped():
		m.counters.Escaped++
		why := "the reject failed"
		if outcome == GateBinFull {
			why = "the reject bin is full"
		}
		out = m.fault(e.T, faultGate, fmt.Sprintf("item %d (code %s) was to be rejected and went on: %s — retrieve it, then acknowledge", e.Item, w.code, why), out)
	}
	return out
}

// gateUnknown resolves a unit whose gate outcome will never come.
func (m *Machine) gateUnknown(item uint32, why string, out []Action) []Action {
	w := m.atGate[item]
	m.dropGate(item)
	if w == nil || !w.pass {
		return out // rejected anyway
	}
	info := m.codes[w.code]
	if info == nil || info.state != csCommissioned {
		return out // packed (it reached the aggregation station: it passed) or settled
	}
	info.state = csVoided
	m.counters.Passed--
	m.counters.Rejected++
	m.counters.RejectReason["gate-unknown"]++
	reason := fmt.Sprintf("gate outcome of item %d unknown: %s", item, why)
	return append(out, TakeBack{Code: w.code, Reason: reason},
		Alarm{Device: faultGate, Text: reason + "; code " + string(w.code) + " decommissioned"})
}

func (m *Machine) dropGate(item uint32) {
	delete(m.atGate, item)
	i := sort.Search(len(m.gateOrder), func(i int) bool { return m.gateOrder[i] >= item })
	if i < len(m.gateOrder) && m.gateOrder[i] == item {
		m.gateOrder = append(m.gateOrder[:i], m.gateOrder[i+1:]...)
	}
}

// expireGate resolves units whose outcome is overdue. While the PLC link is
// down nothing is overdue: its ring replays the outcomes at reconnect.
func (m *Machine) expireGate(now time.Time, out []Action) []Action {
	if !m.cfg.GateConfirm || m.faults["plc"] != "" {
		return out
	}
	for i := 0; i < len(m.gateOrder); {
		it := m.gateOrder[i]
		w := m.atGate[it]
		if w.restart || w.deadline.IsZero() {
			i++ // resolved by the PLC's ring or a later outcome, not by time
			continue
		}
		if now.Before(w.deadline.Add(m.cfg.GateTimeout)) {
			return out // deadlines follow the items' order
		}
		out = m.gateUnknown(it, fmt.Sprintf("none %s after the gate", m.cfg.GateTimeout), out)
	}
	return out
}

// gateLinkBack: the PLC's link is back. Outcomes of units that reached
// the gate while it was down are in the PLC's ring, which the driver
// reads after it reconnects: they get GateTimeout from now, not from
// their passage (the fault campaign found passes the gate let through
// taken back the instant the link returned, before the ring was read).
func (m *Machine) gateLinkBack(now time.Time) {
	for _, it := range m.gateOrder {
		if w := m.atGate[it]; !w.deadline.IsZero() && w.deadline.Before(now) {
			w.deadline = now
		}
	}
}

// resolveAtEnd takes back, at batch end, every pass whose outcome never
// came (before a restart and not in the PLC's ring, or its PLC counter
// restarted).
func (m *Machine) resolveAtEnd(out []Action) []Action {
	for _, it := range append([]uint32(nil), m.gateOrder...) {
		out = m.gateUnknown(it, "none by the batch's end", out)
	}
	return out
}

// onLabelScan checks that the label read on a group is the parent the
// ledger packed that group's children under.
func (m *Machine) onLabelScan(e LabelScan, out []Action) []Action {
	if !m.cfg.LabelCheck[e.Level] {
		return out
	}
	dev := fmt.Sprintf("label-scanner-%s", e.Level)
	var labels, children []tracecode.Code
	unreadable := 0
	for _, r := range e.Reads {
		if r.Err != "" {
			unreadable++
			continue
		}
		info := m.codes[r.Code]
		switch {
		case info != nil && info.level == e.Level-1:
			children = append(children, r.Code)
		default:
			labels = append(labels, r.Code) // this level's code, or a stranger's
		}
	}
	// The parent the ledger packed these children under; without children
	// read (a closed case), the next parent labelled at this level.
	var expect tracecode.Code
	mixed := false
	if len(children) > 0 {
		for i, c := range children {
			p := m.parentOf[c]
			if i == 0 {
				expect = p
			} else if p != expect {
				mixed = true
			}
		}
		if !mixed && expect != "" && len(m.packedKids[expect]) != len(children) {
			mixed = true
		}
	} else if q := m.labelQueue[e.Level]; len(q) > 0 {
		expect = q[0]
	}
	var label tracecode.Code
	if len(labels) == 1 {
		label = labels[0]
	}
	mismatch := func(why string) []Action {
		var parents []tracecode.Code
		for _, p := range []tracecode.Code{expect, label} {
			if _, packed := m.packedKids[p]; packed && p != "" && (len(parents) == 0 || parents[0] != p) {
				parents = append(parents, p)
			}
		}
		m.labelMismatches++
		m.counters.LabelMismatches++
		out = m.divert(e.Level, parents, why, out)
		out = append(out, Alarm{Device: dev, Text: "group to rework: " + why})
		if m.labelMismatches >= m.cfg.mismatchHold() {
			out = m.fault(e.T, faultLabeller, fmt.Sprintf("%d groups in a row carry a label that is not theirs: labels are out of step with the groups — purge the labeller, then acknowledge", m.labelMismatches), out)
		}
		return out
	}
	switch {
	case mixed:
		return mismatch(fmt.Sprintf("the %d codes read are not one packed group", len(children)))
	case len(labels) > 1:
		return mismatch(fmt.Sprintf("%d labels read on one group: %s", len(labels), joinCodes(labels)))
	case expect == "" && label == "":
		return out // a group refused earlier, carrying its rework label
	case label == "":
		// Not an off-by-one: the label could not be read. Fail safe all the
		// same: nobody vouches for the label on this group.
		m.counters.LabelMismatches++
		why := "label not read on the group"
		if unreadable > 0 {
			why = "label unreadable on the group"
		}
		out = m.divert(e.Level, []tracecode.Code{expect}, why, out)
		return append(out, Alarm{Device: dev, Text: fmt.Sprintf("group of %s to rework: %s", expect, why)})
	case expect == "":
		return mismatch(fmt.Sprintf("label %s is on a group the line did not pack under it", label))
	case label != expect:
		return mismatch(fmt.Sprintf("label %s is on the group packed under %s", label, expect))
	}
	m.labelMismatches = 0
	m.forgetParent(e.Level, expect)
	m.counters.LabelsVerified++
	return append(out, LabelOK{Parent: expect})
}

// divert takes parents out: their groups go to rework, their children are
// loose again.
func (m *Machine) divert(l tracecode.Level, parents []tracecode.Code, why string, out []Action) []Action {
	if len(parents) == 0 {
		return out
	}
	for _, p := range parents {
		for _, c := range m.packedKids[p] {
			if info := m.codes[c]; info != nil && info.state == csPacked {
				info.state = csCommissioned
			}
			delete(m.parentOf, c)
		}
		if info := m.codes[p]; info != nil {
			info.state = csVoided
		}
		m.counters.Packed[l.String()]--
		m.forgetParent(l, p)
	}
	m.counters.Reworked++
	return append(out, Divert{Level: l, Parents: parents, Reason: why})
}

// rememberParent keeps a packed parent until its label is verified.
func (m *Machine) rememberParent(l tracecode.Level, parent tracecode.Code, children []tracecode.Code) {
	if !m.cfg.LabelCheck[l] {
		return
	}
	if m.parentOf == nil {
		m.parentOf, m.packedKids, m.labelQueue = map[tracecode.Code]tracecode.Code{}, map[tracecode.Code][]tracecode.Code{}, map[tracecode.Level][]tracecode.Code{}
	}
	m.packedKids[parent] = children
	for _, c := range children {
		m.parentOf[c] = parent
	}
	m.labelQueue[l] = append(m.labelQueue[l], parent)
}

func (m *Machine) forgetParent(l tracecode.Level, p tracecode.Code) {
	for _, c := range m.packedKids[p] {
		if m.parentOf[c] == p {
			delete(m.parentOf, c)
		}
	}
	delete(m.packedKids, p)
	q := m.labelQueue[l]
	for i, x := range q {
		if x == p {
			m.labelQueue[l] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
}

// unverifiedAtEnd diverts, at batch end, every parent whose label was never
// read on its group.
func (m *Machine) unverifiedAtEnd(out []Action) []Action {
	levels := make([]tracecode.Level, 0, len(m.labelQueue))
	for l := range m.labelQueue {
		levels = append(levels, l)
	}
	sort.Slice(levels, func(i, j int) bool { return levels[i] > levels[j] })
	for _, l := range levels {
		if q := append([]tracecode.Code(nil), m.labelQueue[l]...); len(q) > 0 {
			out = m.divert(l, q, "label never verified on its group by batch end", out)
		}
	}
	return out
}

func (c Config) mismatchHold() int {
	if c.LabelMismatchHold > 0 {
		return c.LabelMismatchHold
	}
	return 2
}

// labelsSettled reports whether every packed group has passed the label
// scanner — or waited long enough at batch end (then its label is taken as
// never verified).
func (m *Machine) labelsSettled() bool {
	for _, q := range m.labelQueue {
		if len(q) > 0 {
			return !m.now.Before(m.completingSince.Add(labelSettle))
		}
	}
	return true
}

// labelSettle is how long batch completion waits for the last groups to
// pass the label scanner.
const labelSettle = 5 * time.Second
