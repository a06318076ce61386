// Package camera defines what the line needs from vision cameras: a stream
// of inspection results (one per unit, or one per group for aggregation
// cameras reading many codes at once), in order, with explicit gaps and link
// changes. Implementations live in subpackages (camera/opcua). The line's
// runner and cmd/ import this package; drivers import nothing from the line.
package camera

import (
	"context"
	"fmt"
	"time"
)

// Camera delivers results in order on Events until Close.
type Camera interface {
	Events() <-chan Event
	Close() error
}

// Triggerer is an optional ability: ask the camera to inspect item now
// (OPC 40100 StartSingleJob style), for cameras that do not trigger on
// their own.
type Triggerer interface {
	StartSingleJob(ctx context.Context, item uint32) error
}

// Result is one inspection.
type Result struct {
	// Seq is the camera's result number (gaps in it are reported, never guessed).
	Seq uint64
	// Item is the unit's item id (vision camera) or the group id
	// (aggregation camera).
	Item uint32
	// Level is the level of the group read (aggregation cameras; 0 otherwise).
	Level int
	// Codes read, raw as the camera gave them (the line parses them);
	// empty on a no-read. Aggregation cameras give many.
	Codes []string
	// Grade 'A'..'F', 0 when the camera graded nothing.
	Grade byte
	// Pass is the camera's own verdict.
	Pass bool
	// At is the camera's timestamp (zero if it sent none).
	At time.Time
}

// EventKind is what an Event says.
type EventKind int

const (
	EventResult EventKind = iota + 1 // Result
	EventGap                         // results From..To (Lost of them) are lost for good
	EventDown                        // the link is down (Err)
	EventUp                          // the link is back; missed results follow (as results or a gap)
	EventReset                       // the camera's result counter went backwards (restart)
)

func (k EventKind) String() string {
	switch k {
	case EventResult:
		return "result"
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

// Event is one thing a Camera reports, in order.
type Event struct {
	Kind   EventKind
	At     time.Time // when the driver received it
	Result Result    // EventResult
	From   uint64    // EventGap, EventReset
	To     uint64    // EventGap, EventReset
	Lost   int       // EventGap
	Err    error     // EventDown, EventReset
}
