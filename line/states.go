package line

import (
	"fmt"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// allowed lists, per command, the states it may be given in (PackML).
var allowed = map[Command][]State{
	CmdReset:     {Stopped, Complete},
	CmdStart:     {Idle},
	CmdStop:      {Idle, Starting, Execute, Holding, Held, Unholding, Suspending, Suspended, Unsuspending, Complete, Resetting},
	CmdHold:      {Execute, Starting, Suspending, Suspended, Unsuspending},
	CmdUnhold:    {Held},
	CmdSuspend:   {Execute},
	CmdUnsuspend: {Suspended},
	CmdComplete:  {Execute, Held, Suspended},
	CmdAbort:     {Stopped, Resetting, Idle, Starting, Execute, Holding, Held, Unholding, Suspending, Suspended, Unsuspending, Completing, Complete, Clearing, Stopping},
	CmdClear:     {Aborted, Stopped},
	CmdAck:       {Stopped, Idle, Held, Suspended, Aborted, Complete, Execute, Holding},
}

var commandTarget = map[Command]State{
	CmdReset: Resetting, CmdStart: Starting, CmdStop: Stopping, CmdHold: Holding, CmdUnhold: Unholding,
	CmdSuspend: Suspending, CmdUnsuspend: Unsuspending, CmdComplete: Completing, CmdAbort: Aborting,
	CmdClear: Clearing,
}

// CommandAllowed reports whether cmd may be given now, and if not, why.
func (m *Machine) CommandAllowed(cmd Command) error {
	ok := false
	for _, s := range allowed[cmd] {
		ok = ok || s == m.state
	}
	switch {
	case !ok:
		return fmt.Errorf("%w: %s in %s", ErrInvalidCommand, cmd, m.state)
	case cmd == CmdReset && m.purgeRequired:
		return fmt.Errorf("%w: the line must be purged and cleared first (restart with a batch open)", ErrInvalidCommand)
	case cmd == CmdClear && m.state == Stopped && !m.purgeRequired:
		return fmt.Errorf("%w: clear in Stopped only confirms a purge, and none is required", ErrInvalidCommand)
	case cmd == CmdAck && m.faults[faultGate] == "" && m.faults[faultLabeller] == "":
		return fmt.Errorf("%w: nothing to acknowledge (no reject-gate or labeller fault)", ErrInvalidCommand)
	case cmd == CmdUnhold && len(m.faults) > 0:
		return fmt.Errorf("%w: unhold with device faults active: %v", ErrInvalidCommand, m.faultList())
	case cmd == CmdStart && m.faults[FaultLedgerDisk] != "":
		// Production never starts on a disk below the ledger's reserve.
		// (Other faults do not refuse start: some never clear by
		// themselves — codes ran out, a send refused with the link up —
		// and stop, reset, start is then the operator's way back.)
		return fmt.Errorf("%w: start with the ledger's disk below its reserve: %s: %s", ErrInvalidCommand, FaultLedgerDisk, m.faults[FaultLedgerDisk])
	}
	return nil
}

func (m *Machine) faultList() []string {
	var l []string
	for d, e := range m.faults {
		l = append(l, d+": "+e)
	}
	return l
}

func (m *Machine) onCommand(e Operator, out []Action) []Action {
	if err := m.CommandAllowed(e.Cmd); err != nil {
		return append(out, Alarm{Device: "operator", Text: err.Error()})
	}
	if e.Cmd == CmdAck {
		// The operator retrieved the escaped units / purged the labeller.
		for _, d := range []string{faultGate, faultLabeller} {
			if _, ok := m.faults[d]; ok {
				delete(m.faults, d)
				out = append(out, Alarm{Device: d, Clear: true})
			}
		}
		if m.faults[faultLabeller] == "" {
			m.labelMismatches = 0
		}
		return out
	}
	if e.Cmd == CmdUnhold && m.challengeDone && !m.challengeOK {
		// Repeat the challenge test from the start.
		m.challengeNext, m.challengeRes, m.challengeDone = 0, nil, false
	}
	return m.transition(commandTarget[e.Cmd], fmt.Sprintf("%s by %s", e.Cmd, e.User), out)
}

func (m *Machine) fault(at time.Time, device, err string, out []Action) []Action {
	m.faults[device] = err
	out = append(out, Alarm{Device: device, Text: err})
	switch m.state {
	case Execute, Starting, Unholding, Suspending, Suspended, Unsuspending:
		out = m.transition(Holding, fmt.Sprintf("device fault: %s: %s", device, err), out)
	}
	return out
}

// transition enters state to and does what entering it requires.
func (m *Machine) transition(to State, why string, out []Action) []Action {
	from := m.state
	m.state, m.why = to, why
	out = append(out, StateChanged{From: from, To: to, Why: why})
	switch to {
	case Holding, Stopping, Aborting:
		out = m.rejectInFlight(why, out)
		out = m.flush(out)
	case Completing:
		m.completingSince = m.now
		out = m.flush(out)
	case Clearing:
		// The operator confirms the line is purged. Whatever a previous run
		// left in the printer's buffer was voided at restart: flush it so it
		// is never printed.
		m.purgeRequired = false
		m.flushPending = true
		m.markErr = ""
		out = append(out, FlushPrinter{Purge: true})
	}
	return out
}

func (m *Machine) flush(out []Action) []Action {
	if len(m.inPrinter) == 0 {
		return out
	}
	m.flushPending = true
	return append(out, FlushPrinter{})
}

// rejectInFlight rejects every unit between trigger and gate: the line is
// stopping, nobody can vouch for them.
func (m *Machine) rejectInFlight(why string, out []Action) []Action {
	for _, it := range m.order {
		u := m.units[it]
		if u == nil || u.decided {
			continue
		}
		out = m.decide(u, nil, u.deadline, false, out)
		last := out[len(out)-1].(Verdict)
		if last.Reason == ReasonLate || last.Reason == ReasonNoPrint {
			last.Reason, last.Detail = ReasonNotProducing, "in flight when the line left Execute: "+why
			out[len(out)-1] = last
		}
	}
	m.order = m.order[:0]
	return out
}

// settle completes acting states whose work is done.
func (m *Machine) settle(out []Action) []Action {
	for {
		next, why := m.state, ""
		switch m.state {
		case Resetting:
			next, why = Idle, "reset done"
		case Starting:
			if m.printerReady {
				next, why = Execute, "codes in the printer"
			}
		case Unholding:
			if m.printerReady {
				next, why = Execute, "resumed, codes in the printer"
			}
		case Unsuspending:
			next, why = Execute, "resumed"
		case Suspending:
			next, why = Suspended, "suspended"
		case Holding:
			if !m.flushPending {
				next, why = Held, "printer flushed, in-flight units rejected"
			}
		case Stopping:
			if !m.flushPending {
				next, why = Stopped, "stopped"
			}
		case Aborting:
			if !m.flushPending {
				next, why = Aborted, "aborted"
			}
		case Clearing:
			switch {
			case m.flushPending:
			case m.markErr != "":
				next, why = Stopped, "purge not confirmed: "+m.markErr
			default:
				next, why = Stopped, "purge confirmed, printer flushed"
			}
		case Completing:
			if !m.flushPending && len(m.packing) == 0 && m.undecided() == 0 && m.labelsSettled() {
				out = m.voidUnpaired("printed at batch end without a unit", out)
				out = m.unverifiedAtEnd(out)
				out = m.resolveAtEnd(out)
				out = append(out, Finish{})
				m.ready = map[tracecode.Level][]tracecode.Code{}
				next, why = Complete, "batch complete"
			}
		}
		if next == m.state {
			return out
		}
		from := m.state
		m.state = next
		out = append(out, StateChanged{From: from, To: next, Why: why})
		if from == Holding || from == Stopping || from == Aborting {
			out = m.voidUnpaired("printed while the line left Execute, no unit known", out)
		}
	}
}

func (m *Machine) undecided() int {
	n := 0
	for _, it := range m.order {
		if u := m.units[it]; u != nil && !u.decided {
			n++
		}
	}
	return n
}

// voidUnpaired voids codes that were printed but never paired with a unit,
// and forgets units that will never get a print record.
func (m *Machine) voidUnpaired(reason string, out []Action) []Action {
	var codes []tracecode.Code
	for _, r := range m.waitItem {
		if info := m.codes[r.code]; !r.dup && info != nil && info.state == csPrinted {
			info.state = csVoided
			codes = append(codes, r.code)
		}
	}
	m.waitItem = nil
	for _, it := range m.waitPrint {
		if u := m.units[it]; u != nil && u.decided {
			delete(m.units, it)
		}
	}
	m.waitPrint = nil
	for _, c := range m.limbo {
		if info := m.codes[c]; info != nil && info.state == csPrinted {
			info.state = csVoided
			codes = append(codes, c)
		}
	}
	m.limbo = nil
	if len(codes) == 0 {
		return out
	}
	m.counters.Voided += uint64(len(codes))
	return append(out, Void{Codes: codes, Reason: reason})
}

// markPurge takes the aggregation cameras' marks answering a purge's
// flush. A camera that did not answer leaves the purge unconfirmed: a read
// of a group taken off could not be told from a new group's, and packing it
// would put its label on the next group.
func (m *Machine) markPurge(e Flushed, out []Action) []Action {
	if e.MarkErr != "" {
		m.markErr = "an aggregation camera did not say where its results stand (" + e.MarkErr + "); clear again once it answers"
		m.purgeRequired = true
		return append(out, Alarm{Device: "line", Text: m.markErr})
	}
	m.purgeMarks = make(map[tracecode.Level]uint64, len(e.Marks))
	for l, n := range e.Marks {
		m.purgeMarks[l] = n
	}
	return out
}
