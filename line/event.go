package line

import (
	"fmt"
	"strings"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// Event is an input to the Machine. Every event carries the time it was
// observed; the machine has no clock of its own.
type Event interface {
	At() time.Time
	event()
}

// Stamp is the observation time embedded in every event.
type Stamp struct{ T time.Time }

func (s Stamp) At() time.Time { return s.T }
func (Stamp) event()          {}

// Read is one code as a camera reported it, already run through the parser
// by the runner: either a canonical Code or the parser's error.
type Read struct {
	Code tracecode.Code
	Err  string // non-empty: the camera saw something that is not a valid code
}

func (r Read) String() string {
	if r.Err != "" {
		return "!" + r.Err
	}
	return string(r.Code)
}

// Trigger: the PLC saw item Item at the print station.
type Trigger struct {
	Stamp
	Item uint32
}

// Printed: the printer confirmed it printed Code (in print order).
type Printed struct {
	Stamp
	Code tracecode.Code
}

// PrintGap: the printer's record counter jumped; N print records are lost
// and cannot be recovered. The units concerned get no verdict and are
// rejected at their deadline.
type PrintGap struct {
	Stamp
	N int
}

// CameraResult: the camera's result for item Item.
type CameraResult struct {
	Stamp
	Item  uint32
	Reads []Read // empty: no-read
	Grade byte   // 'A'..'F'; 0 if the camera grades nothing
	Pass  bool   // the camera's own verification verdict
}

// Tick lets deadlines pass.
type Tick struct{ Stamp }

// Allocated: codes of a level are ready to be sent (answer to Allocate).
type Allocated struct {
	Stamp
	Level tracecode.Level
	Codes []tracecode.Code
	Err   string // the allocation failed (e.g. pool exhausted)
}

// Delivered: the printer took codes handed to it (answer to Send). The
// line enters Execute — and the PLC's infeed starts — only once the printer
// holds codes, so that no unit passes the print head before them.
type Delivered struct {
	Stamp
	N int
}

// SendFailed: codes the runner journaled as sent but could not hand to the
// printer. They are uncertain and must be voided, never sent again.
type SendFailed struct {
	Stamp
	Codes []tracecode.Code
	Err   string
}

// Flushed: the printer's buffer was flushed; Codes were handed over and never
// confirmed printed.
type Flushed struct {
	Stamp
	Codes []tracecode.Code
	Err   string // the flush failed (the printer did not answer): Codes is empty
	// Marks answers FlushPrinter.Purge: each aggregation camera's result
	// count when the purge was confirmed, by level. MarkErr: a camera did
	// not answer — the purge is then not confirmed.
	Marks   map[tracecode.Level]uint64
	MarkErr string
}

// AggRead: an aggregation camera read a group that is to become one unit of
// Level (so the codes read are of Level-1). Final marks the batch's last,
// possibly partial, group at that station.
type AggRead struct {
	Stamp
	Level tracecode.Level
	Reads []Read
	Final bool
	// Seq is the camera's result number (0: unknown), compared with the
	// camera's mark at the last purge (Flushed.Marks).
	Seq uint64
}

// AggReset: the aggregation camera of Level restarted its result count:
// its mark at the last purge means nothing any more.
type AggReset struct {
	Stamp
	Level tracecode.Level
}

// Packed: the runner's answer to Pack: the parent was labelled and packed,
// or Err says why not (then nothing was packed).
type Packed struct {
	Stamp
	Parent tracecode.Code
	Err    string
}

// Unpacked: a parent packed in the ledger lost its label (the label
// printer failed after packing); the runner unpacked it and decommissioned
// the parent. The group goes to rework.
type Unpacked struct {
	Stamp
	Parent   tracecode.Code
	Children []tracecode.Code
	Err      string
}

// Overridden: the runner could not carry out a pass in time — the
// verdict was ready after the unit's deadline (Decommissioned false: the
// code was rejected instead of commissioned), or it reached the PLC after
// the unit passed the gate, which rejected it (Decommissioned true: the
// code was commissioned, then decommissioned). Either way the unit is out.
type Overridden struct {
	Stamp
	Item           uint32
	Code           tracecode.Code
	Decommissioned bool
}

// Reworked: a manual rework was journaled; the machine's view of the codes
// follows: Loose codes are commissioned in no parent, Packed are in one,
// Out are out of circulation (sampled, decommissioned).
type Reworked struct {
	Stamp
	Loose, Packed, Out []tracecode.Code
}

// CounterReset: the PLC's item counter went backwards (PLC restart). The
// line holds; item tracking starts again from Item.
type CounterReset struct {
	Stamp
	Item uint32
}

// Journaled: the runner's answer to a Verdict whose journal write failed
// (Err non-empty) — the line holds; a successful write needs no answer.
type Journaled struct {
	Stamp
	Item uint32
	Err  string
}

// DeviceFault: a device stopped answering or reported a fault.
type DeviceFault struct {
	Stamp
	Device string
	Err    string
}

// DeviceOK: a device that was faulted answers again.
type DeviceOK struct {
	Stamp
	Device string
}

// Operator: a command from an operator (or a script) to the line.
type Operator struct {
	Stamp
	Cmd  Command
	User string
}

func (e Trigger) String() string  { return fmt.Sprintf("trigger %d", e.Item) }
func (e Printed) String() string  { return fmt.Sprintf("printed %s", e.Code) }
func (e PrintGap) String() string { return fmt.Sprintf("print-gap %d", e.N) }
func (e CameraResult) String() string {
	var rs []string
	for _, r := range e.Reads {
		rs = append(rs, r.String())
	}
	g := "-"
	if e.Grade != 0 {
		g = string(e.Grade)
	}
	return fmt.Sprintf("camera %d grade=%s pass=%t reads=[%s]", e.Item, g, e.Pass, strings.Join(rs, " "))
}
func (e Tick) String() string { return "tick" }
func (e Allocated) String() string {
	return fmt.Sprintf("allocated %s %s err=%q", e.Level, joinCodes(e.Codes), e.Err)
}
func (e Delivered) String() string { return fmt.Sprintf("delivered %d", e.N) }
func (e SendFailed) String() string {
	return fmt.Sprintf("send-failed %s err=%q", joinCodes(e.Codes), e.Err)
}
func (e Flushed) String() string { return fmt.Sprintf("flushed %s", joinCodes(e.Codes)) }
func (e AggRead) String() string {
	return fmt.Sprintf("agg-read %s final=%t %v", e.Level, e.Final, e.Reads)
}
func (e Packed) String() string   { return fmt.Sprintf("packed %s err=%q", e.Parent, e.Err) }
func (e Unpacked) String() string { return fmt.Sprintf("unpacked %s err=%q", e.Parent, e.Err) }
func (e Overridden) String() string {
	return fmt.Sprintf("overridden %d %s decommissioned=%t", e.Item, e.Code, e.Decommissioned)
}
func (e Reworked) String() string {
	return fmt.Sprintf("reworked loose=%s packed=%s out=%s", joinCodes(e.Loose), joinCodes(e.Packed), joinCodes(e.Out))
}
func (e CounterReset) String() string { return fmt.Sprintf("counter-reset %d", e.Item) }
func (e Journaled) String() string    { return fmt.Sprintf("journaled %d err=%q", e.Item, e.Err) }
func (e DeviceFault) String() string  { return fmt.Sprintf("device-fault %s %q", e.Device, e.Err) }
func (e DeviceOK) String() string     { return fmt.Sprintf("device-ok %s", e.Device) }
func (e Operator) String() string     { return fmt.Sprintf("operator %s by %s", e.Cmd, e.User) }

func joinCodes(cs []tracecode.Code) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return "[" + strings.Join(s, " ") + "]"
}
