package line

import (
	"fmt"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// parentChunk is how many parent codes of a level are allocated at a time.
const parentChunk = 8

func (m *Machine) sending() bool {
	return m.state == Starting || m.state == Execute || m.state == Unholding || m.state == Unsuspending
}

// topUp keeps the printer's buffer full and enough codes allocated.
func (m *Machine) topUp(out []Action) []Action {
	if m.sending() {
		need := m.cfg.PrinterBuffer - len(m.inPrinter)
		if r := m.ready[1]; need > 0 && len(r) > 0 {
			n := min(need, len(r))
			batch := append([]tracecode.Code(nil), r[:n]...)
			m.ready[1] = r[n:]
			for _, c := range batch {
				m.codes[c] = &codeInfo{level: 1, state: csSent}
			}
			ahead := len(m.inPrinter)
			m.inPrinter = append(m.inPrinter, batch...)
			m.counters.Sent += uint64(n)
			out = append(out, Send{Codes: batch, Ahead: ahead})
		}
		if !m.allocPending[1] && len(m.ready[1]) < m.cfg.AllocChunk/2+1 {
			m.allocPending[1] = true
			out = append(out, Allocate{Level: 1, N: m.cfg.AllocChunk})
		}
	}
	if m.state != Stopped && m.state != Idle && m.state != Aborted && m.state != Complete && m.state != Resetting && m.state != Clearing {
		for l := tracecode.Level(2); l <= tracecode.MaxLevel; l++ {
			if m.cfg.Ratios[l] == 0 || m.allocPending[l] || len(m.ready[l]) >= 2 {
				continue
			}
			m.allocPending[l] = true
			out = append(out, Allocate{Level: l, N: parentChunk})
		}
	}
	return out
}

func (m *Machine) onAllocated(e Allocated, out []Action) []Action {
	m.allocPending[e.Level] = false
	if e.Err != "" {
		out = append(out, Alarm{Device: "codes", Text: fmt.Sprintf("allocating %s codes: %s", e.Level, e.Err)})
		if e.Level == 1 && len(m.ready[1]) == 0 && len(m.inPrinter) == 0 {
			out = m.fault(e.T, "codes", "no level 1 codes: "+e.Err, out)
		}
		return out
	}
	m.ready[e.Level] = append(m.ready[e.Level], e.Codes...)
	return out
}

// voidInPrinter voids codes handed to the printer that will never be printed.
func (m *Machine) voidInPrinter(codes []tracecode.Code, reason string, out []Action) []Action {
	var void []tracecode.Code
	for _, c := range codes {
		for i, p := range m.inPrinter {
			if p == c {
				m.inPrinter = append(m.inPrinter[:i:i], m.inPrinter[i+1:]...)
				if info := m.codes[c]; info != nil && info.state == csSent {
					info.state = csVoided
					void = append(void, c)
				}
				break
			}
		}
	}
	if len(void) == 0 {
		return out
	}
	m.counters.Voided += uint64(len(void))
	return append(out, Void{Codes: void, Reason: reason})
}

// onAggRead checks a group read by an aggregation camera and packs it, or
// sends it to rework with nothing packed.
func (m *Machine) onAggRead(e AggRead, out []Action) []Action {
	mark, marked := m.purgeMarks[e.Level]
	stale := marked && e.Seq > 0 && e.Seq <= mark
	if marked && e.Seq > mark {
		delete(m.purgeMarks, e.Level) // the camera's later reads all come after the purge
	}
	if stale || m.purgeRequired || m.state == Clearing || m.state == Stopped || m.state == Resetting || m.state == Idle ||
		m.state == Aborting || m.state == Aborted {
		// Everything on the line when the controller restarted goes to
		// rework at the purge the operator must confirm (clear), and a group
		// read now is part of it — also a read numbered at or below its
		// camera's mark at the clear, however late it reaches the machine (a
		// record caught up by polling after the line restarted), and any
		// group read while the line is not running. Nothing is packed and no
		// label printed, not even a rework label: it would go on the next
		// group the labeller sees, and every label after it would be one
		// group off.
		m.counters.Reworked++
		var why string
		switch {
		case stale:
			why = fmt.Sprintf("group read before the purge was confirmed (camera result %d, the purge at %d): it went to rework with the rest of the line, unlabelled", e.Seq, mark)
		case m.purgeRequired:
			why = "group read before the purge was confirmed: it goes to rework with the rest of the line, unlabelled"
		default:
			why = fmt.Sprintf("group read while the line is %s: it goes to rework, unlabelled (the purge took it off, or take it off now)", m.state)
		}
		return append(out, Alarm{Device: fmt.Sprintf("aggregation-%s", e.Level), Text: why})
	}
	rework := func(why string) []Action {
		m.counters.Reworked++
		return append(out, Rework{Level: e.Level, Reads: e.Reads, Reason: why},
			Alarm{Device: fmt.Sprintf("aggregation-%s", e.Level), Text: "group to rework: " + why})
	}
	ratio := m.cfg.Ratios[e.Level]
	if ratio == 0 {
		return rework(fmt.Sprintf("level %d is not aggregated on this line", e.Level))
	}
	seen := make(map[tracecode.Code]bool, len(e.Reads))
	children := make([]tracecode.Code, 0, len(e.Reads))
	for i, r := range e.Reads {
		if r.Err != "" {
			return rework(fmt.Sprintf("code %d of the group unreadable: %s", i+1, r.Err))
		}
		if seen[r.Code] {
			return rework(fmt.Sprintf("code %s read twice in one group", r.Code))
		}
		seen[r.Code] = true
		info := m.codes[r.Code]
		switch {
		case info == nil:
			return rework(fmt.Sprintf("code %s is not of this batch", r.Code))
		case info.level != e.Level-1:
			return rework(fmt.Sprintf("code %s is level %d, expected level %d", r.Code, info.level, e.Level-1))
		case info.state == csPacked || info.state == csPacking:
			return rework(fmt.Sprintf("code %s is already packed", r.Code))
		case info.state != csCommissioned:
			return rework(fmt.Sprintf("code %s is not commissioned", r.Code))
		}
		children = append(children, r.Code)
	}
	partial := false
	switch {
	case len(children) == 0:
		return rework("empty group")
	case len(children) > ratio:
		return rework(fmt.Sprintf("%d codes read, ratio is %d", len(children), ratio))
	case len(children) < ratio && !e.Final && !m.endOfRun(e.T):
		return rework(fmt.Sprintf("%d codes read, ratio is %d", len(children), ratio))
	case len(children) < ratio:
		partial = true
	}
	if len(m.ready[e.Level]) == 0 {
		return rework(fmt.Sprintf("no %s code allocated for the parent", e.Level))
	}
	parent := m.ready[e.Level][0]
	m.ready[e.Level] = m.ready[e.Level][1:]
	m.codes[parent] = &codeInfo{level: e.Level, state: csPacking}
	for _, c := range children {
		m.codes[c].state = csPacking
	}
	m.packing[parent] = children
	if partial {
		m.partialSet[parent] = true
	}
	return append(out, Pack{Level: e.Level, Parent: parent, Children: children, Partial: partial})
}

func (m *Machine) onPacked(e Packed, out []Action) []Action {
	children, ok := m.packing[e.Parent]
	if !ok {
		return append(out, Alarm{Device: "line", Text: fmt.Sprintf("pack answer for unknown parent %s", e.Parent)})
	}
	delete(m.packing, e.Parent)
	partial := m.partialSet[e.Parent]
	delete(m.partialSet, e.Parent)
	pinfo := m.codes[e.Parent]
	if e.Err != "" {
		for _, c := range children {
			m.codes[c].state = csCommissioned
		}
		pinfo.state = csVoided
		m.counters.Reworked++
		reads := make([]Read, len(children))
		for i, c := range children {
			reads[i] = Read{Code: c}
		}
		return append(out, Rework{Level: pinfo.level, Reads: reads, Reason: "packing failed: " + e.Err, AfterPack: true},
			Alarm{Device: fmt.Sprintf("aggregation-%s", pinfo.level), Text: "packing failed: " + e.Err})
	}
	for _, c := range children {
		m.codes[c].state = csPacked
	}
	pinfo.state = csCommissioned
	m.rememberParent(pinfo.level, e.Parent, children)
	m.counters.Packed[pinfo.level.String()]++
	if partial {
		m.counters.Partial[pinfo.level.String()]++
	}
	return out
}

// endOfRun reports whether no more units will come to a group read at t:
// the line is completing, or the planned quantity has come and every unit
// is decided — or past its deadline at t, at the gate before the group was
// read and with no pass (the gate rejects it: it joins no group). Its
// verdict is given after this event; counting it as undecided sent the
// batch's last short group to rework, not partial, when the last units had
// no print or no read.
func (m *Machine) endOfRun(t time.Time) bool {
	if m.state == Completing {
		return true
	}
	if m.cfg.Planned == 0 || m.counters.Triggered < m.cfg.Planned {
		return false
	}
	for _, it := range m.order {
		if u := m.units[it]; u != nil && !u.decided && u.deadline.After(t) {
			return false
		}
	}
	return true
}

func (m *Machine) onUnpacked(e Unpacked, out []Action) []Action {
	pinfo := m.codes[e.Parent]
	if pinfo == nil || pinfo.state != csCommissioned {
		return append(out, Alarm{Device: "line", Text: fmt.Sprintf("unpack notice for parent %s not packed here", e.Parent)})
	}
	pinfo.state = csVoided
	m.forgetParent(pinfo.level, e.Parent)
	reads := make([]Read, 0, len(e.Children))
	for _, c := range e.Children {
		if info := m.codes[c]; info != nil && info.state == csPacked {
			info.state = csCommissioned
		}
		reads = append(reads, Read{Code: c})
	}
	m.counters.Packed[pinfo.level.String()]--
	m.counters.Reworked++
	out = append(out, Alarm{Device: fmt.Sprintf("aggregation-%s", pinfo.level), Text: fmt.Sprintf("parent %s unpacked: %s", e.Parent, e.Err)})
	out = append(out, Rework{Level: pinfo.level, Reads: reads, Reason: "label failed after packing: " + e.Err, AfterPack: true})
	// The label printer failed (the only reason a parent is unpacked
	// here): hold the line naming it, rather than send every later group
	// to rework unseen. The operator checks the label printer, purges the
	// labeller and acknowledges (the fault campaign found the line running
	// on with its label printer disconnected).
	return m.fault(e.T, faultLabeller, fmt.Sprintf("label printer: parent %s not labelled (%s) — check the label printer, purge the labeller, then acknowledge", e.Parent, e.Err), out)
}
