// Package printer defines what the line needs from printers: a coding printer
// that prints unit codes (Coder) and a label printer that prints case and
// pallet labels (Labeler). Implementations live in subpackages:
// printer/opcua (coding printers over OPC UA, by profile) and printer/zpl
// (label printers over raw TCP, ZPL). The line's runner and cmd/ import this
// package; drivers import nothing from the line.
package printer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// Coder is a coding printer with a FIFO buffer of codes to print.
//
// Send hands codes over in print order. Confirmations, gaps and link changes
// arrive in order on Events. Flush empties the printer's buffer and tells
// exactly which handed-over codes were never confirmed printed.
type Coder interface {
	Send(ctx context.Context, codes []tracecode.Code) error
	Flush(ctx context.Context) (FlushResult, error)
	Events() <-chan Event
	Close() error
}

// StatusReader is an optional ability of a Coder: read its status now.
type StatusReader interface {
	Status(ctx context.Context) (Status, error)
}

// Labeler prints one label (case, pallet…) and returns once the printer
// took it; a printer that does not answer is an error by the ctx deadline.
type Labeler interface {
	PrintLabel(ctx context.Context, l Label) error
}

// EventKind is what a printer Event says.
type EventKind int

const (
	EventPrinted EventKind = iota + 1 // the printer confirmed printing Code
	EventGap                          // Lost print records are gone for good; Uncertain codes may be among them
	EventDown                         // the link to the printer is down (Err)
	EventUp                           // the link is back; missed records follow (as Printed or Gap)
	EventReset                        // the printer's print counter went backwards (restarted)
)

func (k EventKind) String() string {
	switch k {
	case EventPrinted:
		return "printed"
	case EventGap:
		return "gap"
	case EventDown:
		return "down"
	case EventUp:
		return "up"
	case EventReset:
		return "reset"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one thing a Coder reports, in order.
type Event struct {
	Kind EventKind
	At   time.Time
	// Code printed (EventPrinted). It may be a code that was not the next
	// expected one (a duplicate reprint): the line decides.
	Code tracecode.Code
	// Seq is the printer's print record number (EventPrinted).
	Seq uint64
	// Lost is how many print records are lost (EventGap).
	Lost int
	// Uncertain are handed-over codes that were probably printed with the
	// lost records (the oldest unconfirmed ones, EventGap). They are no
	// longer pending: the line must treat them as uncertain (void them).
	Uncertain []tracecode.Code
	// Err says why the link went down (EventDown).
	Err error
}

// FlushResult is the outcome of a flush.
type FlushResult struct {
	// Unconfirmed are the codes handed over that were never confirmed
	// printed, in hand-over order: the line voids them.
	Unconfirmed []tracecode.Code
	// Removed is what the printer said it removed from its buffer (for the
	// record; normally a subset of Unconfirmed).
	Removed []tracecode.Code
}

// Status is a coding printer's state.
type Status struct {
	State       string // device's own word: running, fault, …
	InkLow      bool   // ink or ribbon low
	HeadFault   bool
	BufferLevel int // codes in the printer's buffer
	BufferDepth int // its capacity
	Underruns   int // units that passed with an empty buffer
}

// Label is a case / pallet label.
type Label struct {
	// Code is the parent's code in canonical form (tracecode).
	Code tracecode.Code
	// ElementString is what the barcode encodes for GS1 codes: AIs and
	// values with GS (0x1D) after variable-length fields, no leading FNC1
	// (e.g. "00069012345678901234"). Empty: derived from Code.
	ElementString string
	// Title is the big text line, e.g. "CASE" / "箱" / "PALLET".
	Title   string
	Product string
	Batch   string
	Expiry  string // as printed, e.g. "2027-05-31"
	// Count is the number of children (0 = not printed).
	Count int
	// Level of the parent (2 = box, 3 = case, …; 0 = not printed).
	Level tracecode.Level
}

// Sentinel errors drivers wrap.
var (
	ErrBufferFull  = errors.New("printer buffer full")
	ErrRefused     = errors.New("printer refused")
	ErrNotAnswered = errors.New("printer did not answer")
	ErrNotReady    = errors.New("printer not ready")
	ErrClosed      = errors.New("printer closed")
)

// SendError says what became of the codes of a failed Send. Taken were
// accepted by the printer (and are pending), NotTaken were refused for sure,
// Uncertain may or may not have reached the buffer (a link failure mid-
// request): the line voids NotTaken and Uncertain codes (never re-sends).
type SendError struct {
	Taken, NotTaken, Uncertain []tracecode.Code
	Err                        error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("send %d codes: %d taken, %d refused, %d uncertain: %v",
		len(e.Taken)+len(e.NotTaken)+len(e.Uncertain), len(e.Taken), len(e.NotTaken), len(e.Uncertain), e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }
