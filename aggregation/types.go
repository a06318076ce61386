package aggregation

import (
	"errors"
	"fmt"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// Sentinel errors callers branch on. Errors returned by the Store wrap them
// with the precise reason, e.g. "code X is commissioned, not printed: refused".
var (
	// ErrNotFound: the code or batch is unknown to the store.
	ErrNotFound = errors.New("not found")
	// ErrRefused: the operation is not allowed in the current state; nothing changed.
	ErrRefused = errors.New("refused")
	// ErrDuplicate: Commission of a code that was already commissioned (the
	// line rejects the unit carrying it). It also matches ErrRefused.
	ErrDuplicate = fmt.Errorf("duplicate: %w", ErrRefused)
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("ledger closed")
)

func refused(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrRefused)...)
}

// CodeState is where a code is in its life (DESIGN.md "Life of a code").
// Batch-level states (released, active, handed off) are in BatchState.
type CodeState uint8

const (
	StateUnknown        CodeState = iota
	StateInPool                   // imported into a pool, not yet allocated
	StateAllocated                // allocated to a batch+level, not yet sent
	StateSent                     // sent to a printer (write-ahead); never sent again
	StatePrinted                  // the printer confirmed it
	StateCommissioned             // verified by the camera; loose (not in a parent)
	StateRejected                 // camera fail, no-read, late…: the unit was rejected
	StateVoided                   // uncertain (sent/printed at a crash or purge) and voided
	StateSampled                  // taken by QA
	StateDecommissioned           // voided after commissioning, with a reason
	StateAggregated               // commissioned and packed into a parent
	StateReturned                 // allocated, never sent, returned at batch end
)

var stateNames = [...]string{"unknown", "in_pool", "allocated", "sent", "printed", "commissioned",
	"rejected", "voided", "sampled", "decommissioned", "aggregated", "returned"}

// NumCodeStates is the number of CodeState values, StateUnknown included.
const NumCodeStates = len(stateNames)

func (s CodeState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ParseCodeState is the inverse of String.
func ParseCodeState(s string) (CodeState, error) {
	for i, n := range stateNames {
		if n == s && i != 0 {
			return CodeState(i), nil
		}
	}
	return 0, fmt.Errorf("unknown code state %q", s)
}

// BatchState is where a batch is in its life.
type BatchState uint8

const (
	BatchOpen       BatchState = iota + 1 // created; codes flow
	BatchComplete                         // closed by the line; no more codes sent
	BatchReleased                         // QA signed "released"
	BatchQARejected                       // QA signed "rejected"
	BatchActive                           // codes activated
	BatchHandedOff                        // at least one hand-off document acknowledged
)

func (s BatchState) String() string {
	switch s {
	case BatchOpen:
		return "open"
	case BatchComplete:
		return "complete"
	case BatchReleased:
		return "released"
	case BatchQARejected:
		return "qa_rejected"
	case BatchActive:
		return "active"
	case BatchHandedOff:
		return "handed_off"
	}
	return fmt.Sprintf("batch_state(%d)", uint8(s))
}

// MarshalText makes states readable in JSON.
func (s BatchState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (s *BatchState) UnmarshalText(b []byte) error {
	for v := BatchOpen; v <= BatchHandedOff; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown batch state %q", b)
}

// MarshalText makes states readable in JSON.
func (s CodeState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (s *CodeState) UnmarshalText(b []byte) error {
	v, err := ParseCodeState(string(b))
	*s = v
	return err
}

// ActorKind says who did something.
type ActorKind string

const (
	ActorUser   ActorKind = "user"
	ActorDevice ActorKind = "device"
	ActorSystem ActorKind = "system"
)

func (k ActorKind) String() string { return string(k) }

// Actor is who caused an event: a signed-in user, a device, or the system.
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id"`
}

func (a Actor) validate() error {
	switch a.Kind {
	case ActorUser, ActorDevice, ActorSystem:
	default:
		return fmt.Errorf("actor kind %q: want user, device or system", a.Kind)
	}
	if a.ID == "" {
		return errors.New("actor id is empty")
	}
	return nil
}

// LevelSpec is one packaging level of a batch.
type LevelSpec struct {
	Level  tracecode.Level  `json:"level"`
	Ratio  int              `json:"ratio"` // children per parent of this level; 0 for level 1
	Scheme tracecode.Scheme `json:"scheme"`
	// LabelCheck: a label scanner verifies every parent's label on its
	// group at this level; a complete batch then has every packed parent's
	// label verified (Verify checks it).
	LabelCheck bool `json:"label_check,omitempty"`
}

// WorkOrder is the work order's data carried by a batch (opaque to the ledger).
type WorkOrder struct {
	BatchNumber    string `json:"batch_number,omitempty"`
	ProductionDate string `json:"production_date,omitempty"` // YYYY-MM-DD
	Expiry         string `json:"expiry,omitempty"`          // YYYY-MM-DD
	PlannedQty     int64  `json:"planned_qty,omitempty"`
	Workshop       string `json:"workshop,omitempty"`
	Manager        string `json:"manager,omitempty"`
	// Extra holds anything else the work order carries.
	Extra map[string]string `json:"extra,omitempty"`
}

// BatchSpec describes a batch at creation.
type BatchSpec struct {
	ID      string      `json:"id"`
	Product string      `json:"product"`
	Line    string      `json:"line"`
	Levels  []LevelSpec `json:"levels"` // level 1 first, contiguous
	Order   WorkOrder   `json:"order"`
	// GateConfirm: the line's PLC confirms every unit's gate outcome; a
	// commissioned unit code is provisional until its outcome is journaled
	// (EvGate), and a restart resolves unconfirmed ones (Store.Unconfirmed).
	GateConfirm bool `json:"gate_confirm,omitempty"`
}

// Validate checks a spec; messages name the faulty field.
func (b BatchSpec) Validate() error {
	if b.ID == "" || len(b.ID) > 128 {
		return errors.New("batch id must be 1..128 characters")
	}
	for i := 0; i < len(b.ID); i++ {
		if b.ID[i] < 0x20 || b.ID[i] == 0x7f {
			return fmt.Errorf("batch id %q contains a control character", b.ID)
		}
	}
	if b.Product == "" {
		return fmt.Errorf("batch %s: product is empty", b.ID)
	}
	if len(b.Levels) == 0 {
		return fmt.Errorf("batch %s: no packaging levels", b.ID)
	}
	for i, l := range b.Levels {
		if l.Level != tracecode.Level(i+1) {
			return fmt.Errorf("batch %s: levels[%d] is %s, want L%d (levels start at 1 and never skip)", b.ID, i, l.Level, i+1)
		}
		if err := l.Level.Validate(); err != nil {
			return fmt.Errorf("batch %s: %w", b.ID, err)
		}
		if err := l.Scheme.Validate(); err != nil {
			return fmt.Errorf("batch %s: level %s: %w", b.ID, l.Level, err)
		}
		if i == 0 && l.Ratio != 0 {
			return fmt.Errorf("batch %s: level L1 ratio must be 0 (it has no children)", b.ID)
		}
		if i > 0 && (l.Ratio < 1 || l.Ratio > 10000) {
			return fmt.Errorf("batch %s: level %s ratio %d out of range 1..10000", b.ID, l.Level, l.Ratio)
		}
	}
	return nil
}

func (b BatchSpec) level(l tracecode.Level) (LevelSpec, bool) {
	if l < 1 || int(l) > len(b.Levels) {
		return LevelSpec{}, false
	}
	return b.Levels[l-1], true
}

// Challenge is one run of the batch-start challenge test: each test unit's
// expected and actual outcome.
type Challenge struct {
	Passed bool            `json:"passed"`
	Steps  []ChallengeStep `json:"steps"`
}

// ChallengeStep is one test unit of a challenge test.
type ChallengeStep struct {
	Step   string `json:"step"`
	Item   uint64 `json:"item"`
	Expect string `json:"expect"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
}

func (c *Challenge) validate() error {
	if c == nil || len(c.Steps) == 0 {
		return errors.New("challenge test with no steps")
	}
	if len(c.Steps) > 100 {
		return fmt.Errorf("challenge test of %d steps (max 100)", len(c.Steps))
	}
	all := true
	for i, st := range c.Steps {
		if st.Step == "" || st.Expect == "" || st.Got == "" {
			return fmt.Errorf("challenge step %d: step, expect and got are required", i+1)
		}
		if st.OK != (st.Expect == st.Got) {
			return fmt.Errorf("challenge step %d %q: ok=%t but expected %s and got %s", i+1, st.Step, st.OK, st.Expect, st.Got)
		}
		all = all && st.OK
	}
	if c.Passed != all {
		return fmt.Errorf("challenge passed=%t contradicts its steps", c.Passed)
	}
	return nil
}

// UnitInfo is what the line knows of a unit when its code is commissioned.
type UnitInfo struct {
	ItemID uint64    `json:"item_id,omitempty"`
	Grade  string    `json:"grade,omitempty"`
	ReadAt time.Time `json:"read_at,omitempty"`
}

// PackOpts qualifies a Pack.
type PackOpts struct {
	Partial bool   `json:"partial,omitempty"` // fewer children than the ratio (零箱)
	Mixed   bool   `json:"mixed,omitempty"`   // children from other batches (拼箱)
	Reason  string `json:"reason,omitempty"`
}

// Signature is QA's electronic signature record of a release decision.
type Signature struct {
	User    string    `json:"user"`
	Meaning string    `json:"meaning"` // "released" or "rejected"
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
	Hash    string    `json:"hash,omitempty"` // the signer's hash over the batch record, as the HMI computed it
}

// Event is one journal entry.
type Event struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Actor  Actor     `json:"actor"`
	Batch  string    `json:"batch,omitempty"`
	Kind   EventKind `json:"kind"`
	Reason string    `json:"reason,omitempty"`
	// Payload, by kind.
	Pool      string           `json:"pool,omitempty"`
	Source    string           `json:"source,omitempty"`
	Level     tracecode.Level  `json:"level,omitempty"`
	Codes     []tracecode.Code `json:"codes,omitempty"`
	Parent    tracecode.Code   `json:"parent,omitempty"`
	New       tracecode.Code   `json:"new,omitempty"`
	Unit      *UnitInfo        `json:"unit,omitempty"`
	Pack      *PackOpts        `json:"pack,omitempty"`
	Spec      *BatchSpec       `json:"spec,omitempty"`
	Sig       *Signature       `json:"sig,omitempty"`
	Read      string           `json:"read,omitempty"` // what the camera read, for reject_unit (may be no code at all)
	Challenge *Challenge       `json:"challenge,omitempty"`
	Document  string           `json:"document,omitempty"`
	Answer    string           `json:"answer,omitempty"`
	Upto      uint64           `json:"upto,omitempty"` // trim_pool: the first entry kept
	// Prev is the hex SHA-256 of the previous event ("" for the first).
	Prev string `json:"prev"`
}

// EventKind names what an event did.
type EventKind string

const (
	EvPoolAdd      EventKind = "pool_add"
	EvBatchCreate  EventKind = "batch_create"
	EvAllocPool    EventKind = "allocate_pool"
	EvAllocGen     EventKind = "allocate_generated"
	EvReturn       EventKind = "return_unsent"
	EvSent         EventKind = "sent"
	EvPrinted      EventKind = "printed"
	EvCommission   EventKind = "commission"
	EvReject       EventKind = "reject"
	EvRejectUnit   EventKind = "reject_unit" // a unit rejected without a code transition (no-read, duplicate, foreign code)
	EvChallenge    EventKind = "challenge"   // the batch-start challenge test's results, in the batch record
	EvReprint      EventKind = "reprint"     // a parent's label printed again (rework), no state change
	EvVoid         EventKind = "void"
	EvSample       EventKind = "sample"
	EvDecommission EventKind = "decommission"
	EvPack         EventKind = "pack"
	EvUnpack       EventKind = "unpack"
	EvReplace      EventKind = "replace"
	EvComplete     EventKind = "complete"
	EvRelease      EventKind = "release"
	EvActivate     EventKind = "activate"
	EvHandedOff    EventKind = "handed_off"
	// EvGate: the PLC's reject-confirm sensor says what physically happened
	// to one unit at the reject gate (Unit.ItemID, the unit's code if it
	// has one, Reason = the GateOutcome's name). A "rejected" outcome on a
	// loose commissioned code decommissions it in the same event.
	EvGate EventKind = "gate"
	// EvLabel: the fate of a parent's label (Parent, Reason = the
	// LabelFate's name): printed by the label printer, verified on its group
	// by the label scanner. Nothing changes state.
	EvLabel EventKind = "label"
	// EvRecord is a journaled Record: an audit entry that changes no code.
	EvRecord EventKind = "record"
	// EvTrimPool deletes a pool's entries before Upto, all allocated long
	// ago (entries base..Upto-1): an allocated code's entry is never read
	// again (its location and the allocation range say where it went), so
	// an idle line trims them to keep the ledger small.
	EvTrimPool EventKind = "trim_pool"
)

// GateOutcome is what the reject-confirm sensor saw for one unit.
type GateOutcome string

const (
	GatePassed       GateOutcome = "passed"        // went on as good
	GateRejected     GateOutcome = "rejected"      // confirmed in the reject bin
	GateRejectFailed GateOutcome = "reject-failed" // should have been rejected and went on
	GateBinFull      GateOutcome = "bin-full"      // reject failed: the reject bin is full
)

func (g GateOutcome) valid() bool {
	switch g {
	case GatePassed, GateRejected, GateRejectFailed, GateBinFull:
		return true
	}
	return false
}

// Escaped reports whether the unit went on though it was to be rejected.
func (g GateOutcome) Escaped() bool { return g == GateRejectFailed || g == GateBinFull }

// LabelFate is what happened to a parent's label.
type LabelFate string

const (
	LabelPrinted  LabelFate = "printed"  // the label printer took and printed it
	LabelVerified LabelFate = "verified" // the label scanner read it on the group packed under it
)

func (k EventKind) String() string { return string(k) }

// CodeInfo is everything the ledger knows of one code.
type CodeInfo struct {
	Code       tracecode.Code  `json:"code"`
	State      CodeState       `json:"state"`
	Pool       string          `json:"pool,omitempty"`
	Batch      string          `json:"batch,omitempty"`
	BatchState BatchState      `json:"batch_state,omitempty"`
	Level      tracecode.Level `json:"level,omitempty"`
	Generated  bool            `json:"generated,omitempty"`
	Parent     tracecode.Code  `json:"parent,omitempty"`
	Children   int             `json:"children"`
	Partial    bool            `json:"partial,omitempty"`
	Mixed      bool            `json:"mixed,omitempty"`
	History    []Event         `json:"history"`
}

// Node is one code in a tree walk.
type Node struct {
	Code   tracecode.Code  `json:"code"`
	Parent tracecode.Code  `json:"parent,omitempty"`
	Level  tracecode.Level `json:"level"`
	Depth  int             `json:"depth"` // 0 for the root
}
