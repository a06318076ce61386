package line

import (
	"fmt"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// Action is an output of the Machine, carried out by the runner in order.
type Action interface{ action() }

// Allocate asks for N more codes of a level for the batch.
type Allocate struct {
	Level tracecode.Level
	N     int
}

// Send: journal Codes as sent (durably, write-ahead), then hand them to the
// coding printer in this order. On any failure after journaling the runner
// answers SendFailed.
type Send struct {
	Codes []tracecode.Code
	// Ahead is how many codes the printer holds before these: with half
	// its buffer or more still ahead, the send can wait for company.
	Ahead int
}

// Journal says which ledger transition a verdict makes.
type Journal uint8

const (
	JournalCommission Journal = iota // Code becomes commissioned
	JournalReject                    // Code becomes rejected
	JournalUnitOnly                  // the unit is rejected; its code (if any) is already settled
)

func (j Journal) String() string {
	switch j {
	case JournalCommission:
		return "commission"
	case JournalReject:
		return "reject"
	case JournalUnitOnly:
		return "unit-only"
	}
	return fmt.Sprintf("journal(%d)", uint8(j))
}

// Verdict: journal the decision on one unit durably, then write it to the
// PLC for Item. Pass is true only with JournalCommission.
type Verdict struct {
	Item     uint32
	Code     tracecode.Code // the code printed on the unit, if known
	Pass     bool
	Reason   Reason
	Journal  Journal
	Read     tracecode.Code // what the camera read, if anything valid
	Grade    byte
	Detail   string
	Received time.Time // when the camera result (or the deadline) arrived: latency starts here
	Late     bool      // decided at the deadline: the PLC rejects anyway, write for the record
	Deadline time.Time // when the unit reaches the reject gate
}

// Void: journal Codes as voided (uncertain: sent, never confirmed or settled).
type Void struct {
	Codes  []tracecode.Code
	Reason string
}

// FlushPrinter: flush the coding printer's buffer and answer Flushed.
type FlushPrinter struct {
	// Probe: the flush asks a printer that failed whether it answers again
	// (probePrinter); its failure is no new fault.
	Probe bool
	// Purge: the operator confirmed a purge (Clearing). The runner also
	// reads where each aggregation camera's results stand (Flushed.Marks):
	// a group whose read is at or below its mark was on the line at the
	// purge, however late its read reaches the machine.
	Purge bool
}

// Pack: allocate-and-send Parent (journal sent), print its label, commission
// it and pack Children under it — then answer Packed.
type Pack struct {
	Level    tracecode.Level
	Parent   tracecode.Code
	Children []tracecode.Code
	Partial  bool
}

// Rework: a group could not be packed; it goes to manual rework. Nothing was packed.
type Rework struct {
	Level  tracecode.Level
	Reads  []Read
	Reason string
	// AfterPack: the group failed while being packed; the runner has
	// already labelled it for rework. Otherwise the runner prints the
	// rework label (in order with the other labels).
	AfterPack bool
}

// Alarm: tell the operator (HMI, tower light).
type Alarm struct {
	Device string
	Text   string
	Clear  bool // the condition is gone
}

// StateChanged: the PackML state changed.
type StateChanged struct {
	From, To State
	Why      string
}

// ChallengeDone: the batch-start challenge test finished.
type ChallengeDone struct {
	Passed  bool
	Results []ChallengeResult
}

// Finish: batch end — return unsent codes to the pool and reconcile.
type Finish struct{}

func (a Allocate) String() string { return fmt.Sprintf("allocate %s %d", a.Level, a.N) }
func (a Send) String() string     { return fmt.Sprintf("send %s", joinCodes(a.Codes)) }
func (a Verdict) String() string {
	v := "reject"
	if a.Pass {
		v = "pass"
	}
	s := fmt.Sprintf("verdict %d %s %s code=%s journal=%s", a.Item, v, a.Reason, a.Code, a.Journal)
	if a.Late {
		s += " late"
	}
	if a.Detail != "" {
		s += fmt.Sprintf(" (%s)", a.Detail)
	}
	return s
}
func (a Void) String() string { return fmt.Sprintf("void %s %q", joinCodes(a.Codes), a.Reason) }
func (a FlushPrinter) String() string {
	switch {
	case a.Probe:
		return "flush-printer probe"
	case a.Purge:
		return "flush-printer purge"
	}
	return "flush-printer"
}
func (a Pack) String() string {
	return fmt.Sprintf("pack %s %s <- %s partial=%t", a.Level, a.Parent, joinCodes(a.Children), a.Partial)
}
func (a Rework) String() string { return fmt.Sprintf("rework %s %v: %s", a.Level, a.Reads, a.Reason) }
func (a Alarm) String() string {
	if a.Clear {
		return fmt.Sprintf("alarm-clear %s", a.Device)
	}
	return fmt.Sprintf("alarm %s: %s", a.Device, a.Text)
}
func (a StateChanged) String() string { return fmt.Sprintf("state %s -> %s (%s)", a.From, a.To, a.Why) }
func (a ChallengeDone) String() string {
	return fmt.Sprintf("challenge passed=%t %v", a.Passed, a.Results)
}
func (a Finish) String() string { return "finish" }

func (Allocate) action()      {}
func (Send) action()          {}
func (Verdict) action()       {}
func (Void) action()          {}
func (FlushPrinter) action()  {}
func (Pack) action()          {}
func (Rework) action()        {}
func (Alarm) action()         {}
func (StateChanged) action()  {}
func (ChallengeDone) action() {}
func (Finish) action()        {}
