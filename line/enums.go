package line

import "fmt"

// Reason says why a unit was rejected. Its numeric value is the reason code
// written to the PLC with the verdict; 0 means pass.
type Reason uint16

const (
	ReasonNone         Reason = iota // pass
	ReasonNoRead                     // camera read no code
	ReasonUnreadable                 // camera read something that is not a valid code
	ReasonLowGrade                   // print grade below the rule's minimum, or camera's own fail
	ReasonWrongCode                  // a valid code, but not the one printed on this unit
	ReasonDuplicate                  // a code already commissioned (e.g. a reprint)
	ReasonNotOurs                    // a code this line never sent
	ReasonLate                       // no camera result before the deadline
	ReasonNoPrint                    // no print record for this unit (buffer underrun, lost record)
	ReasonTriggerGap                 // the PLC's item counter skipped this unit
	ReasonNotProducing               // the line was not in Execute when the unit came
	ReasonLedger                     // the ledger refused the decision; fail safe
	reasonCount
)

var reasonNames = [...]string{"pass", "no-read", "unreadable", "low-grade", "wrong-code", "duplicate",
	"not-ours", "late", "no-print", "trigger-gap", "not-producing", "ledger"}

func (r Reason) String() string {
	if r < reasonCount {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint16(r))
}

// ParseReason is the inverse of String.
func ParseReason(s string) (Reason, error) {
	for i, n := range reasonNames {
		if n == s {
			return Reason(i), nil
		}
	}
	return 0, fmt.Errorf("unknown reject reason %q", s)
}

// State is the PackML (ISA-TR88.00.02) state of the line.
type State uint8

const (
	Stopped State = iota
	Resetting
	Idle
	Starting
	Execute
	Holding
	Held
	Unholding
	Suspending
	Suspended
	Unsuspending
	Completing
	Complete
	Aborting
	Aborted
	Clearing
	Stopping
	stateCount
)

var stateNames = [...]string{"Stopped", "Resetting", "Idle", "Starting", "Execute", "Holding", "Held",
	"Unholding", "Suspending", "Suspended", "Unsuspending", "Completing", "Complete", "Aborting", "Aborted",
	"Clearing", "Stopping"}

func (s State) String() string {
	if s < stateCount {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Producing reports whether units coming down the line are production.
func (s State) Producing() bool { return s == Execute }

// Command is an operator (or supervisor) command to the line.
type Command uint8

const (
	CmdReset Command = iota
	CmdStart
	CmdStop
	CmdHold
	CmdUnhold
	CmdSuspend
	CmdUnsuspend
	CmdComplete
	CmdAbort
	CmdClear
	CmdAck // acknowledge a reject-gate or labeller fault (units retrieved, labeller purged)
	commandCount
)

var commandNames = [...]string{"reset", "start", "stop", "hold", "unhold", "suspend", "unsuspend",
	"complete", "abort", "clear", "acknowledge"}

func (c Command) String() string {
	if c < commandCount {
		return commandNames[c]
	}
	return fmt.Sprintf("command(%d)", uint8(c))
}

// ParseCommand is the inverse of String.
func ParseCommand(s string) (Command, error) {
	for i, n := range commandNames {
		if n == s {
			return Command(i), nil
		}
	}
	return 0, fmt.Errorf("unknown line command %q", s)
}
