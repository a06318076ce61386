package line

import (
	"errors"
	"fmt"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// Config is what the Machine needs to decide; plain data from the work order
// and the line's config.
type Config struct {
	// MinGrade is the lowest acceptable print grade, 'A' (best) to 'F'; 0 = the
	// camera's pass flag alone decides.
	MinGrade byte
	// Deadline is the time from a unit's trigger to the reject gate: a unit
	// without a verdict by then is rejected.
	Deadline time.Duration
	// PrinterBuffer is how many codes the controller keeps handed over to the
	// coding printer ahead of the units.
	PrinterBuffer int
	// AllocChunk is how many codes are allocated at a time for level 1.
	AllocChunk int
	// Ratios gives, for every level aggregated automatically (2, 3, …), how
	// many units of the level below make one full unit of it.
	Ratios map[tracecode.Level]int
	// Planned is the work order's planned quantity of level-1 units (0:
	// unknown). Once that many units have come and all are decided, a short
	// group at an aggregation station is the batch's last, partial one.
	Planned uint64
	// GateConfirm: the PLC confirms every unit's outcome at the reject gate
	// (GateOutcome events); a pass is provisional until then. GateTimeout is
	// how long after a unit reached the gate its outcome may take (default
	// 2s) before the unit's code is taken back.
	GateConfirm bool
	GateTimeout time.Duration
	// LabelCheck: levels whose parents' labels a label scanner reads on
	// their groups (LabelScan events). LabelMismatchHold consecutive groups
	// carrying a label not theirs hold the line (default 2).
	LabelCheck        map[tracecode.Level]bool
	LabelMismatchHold int
	// Challenge is the batch-start challenge test: one expected outcome per
	// test unit, in order. Empty: no challenge (not allowed for production
	// work orders; the runner enforces that).
	Challenge []ChallengeStep
}

// ChallengeStep is one test unit of the challenge test and what the line
// must decide for it.
type ChallengeStep struct {
	Name   string `json:"name" yaml:"name"`
	Expect Reason `json:"expect" yaml:"expect"` // ReasonNone: must pass
}

// ChallengeResult is what the line decided for one test unit.
type ChallengeResult struct {
	Step   string `json:"step"`
	Item   uint32 `json:"item"`
	Expect string `json:"expect"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.MinGrade != 0 && (c.MinGrade < 'A' || c.MinGrade > 'F') {
		errs = append(errs, fmt.Errorf("min_grade: %q is not a grade A–F", string(rune(c.MinGrade))))
	}
	if c.Deadline <= 0 {
		errs = append(errs, errors.New("deadline (gate − margin): must be positive"))
	}
	if c.PrinterBuffer < 1 {
		errs = append(errs, errors.New("printer_buffer: must be at least 1"))
	}
	if c.AllocChunk < c.PrinterBuffer {
		errs = append(errs, fmt.Errorf("alloc_chunk: %d is less than printer_buffer %d", c.AllocChunk, c.PrinterBuffer))
	}
	for l, r := range c.Ratios {
		if l < 2 || l > tracecode.MaxLevel {
			errs = append(errs, fmt.Errorf("ratios: level %d cannot be aggregated (2..%d)", l, tracecode.MaxLevel))
		}
		if r < 1 {
			errs = append(errs, fmt.Errorf("ratios: level %d ratio %d must be at least 1", l, r))
		}
	}
	for l := range c.Ratios {
		if l > 2 && c.Ratios[l-1] == 0 {
			errs = append(errs, fmt.Errorf("ratios: level %d is aggregated but level %d is not (levels never skip)", l, l-1))
		}
	}
	if c.GateTimeout < 0 {
		errs = append(errs, errors.New("gate_timeout: must not be negative"))
	}
	for l := range c.LabelCheck {
		if c.Ratios[l] == 0 {
			errs = append(errs, fmt.Errorf("label check on level %d, which this line does not aggregate", l))
		}
	}
	for i, s := range c.Challenge {
		if s.Expect >= reasonCount {
			errs = append(errs, fmt.Errorf("challenge[%d]: unknown expected outcome %d", i, s.Expect))
		}
	}
	return errors.Join(errs...)
}

// codeState is the machine's own view of a code of this batch; the ledger
// is the truth, this is what the machine needs to decide in microseconds.
type codeState uint8

const (
	csSent codeState = iota
	csPrinted
	csCommissioned // loose: commissioned and not packed
	csRejected
	csVoided
	csPacking // a Pack is in flight for it (as child or parent)
	csPacked
)

func (s codeState) String() string {
	switch s {
	case csSent:
		return "sent"
	case csPrinted:
		return "printed"
	case csCommissioned:
		return "commissioned"
	case csRejected:
		return "rejected"
	case csVoided:
		return "voided"
	case csPacking:
		return "packing"
	case csPacked:
		return "packed"
	}
	return fmt.Sprintf("codeState(%d)", uint8(s))
}

type codeInfo struct {
	level           tracecode.Level
	state           codeState
	recorded        bool // the printer has reported printing it (a second report is a reprint)
	voidedAtRestart bool // sent or printed by the run before a restart, voided then
}

// unit is one item between trigger and verdict.
type unit struct {
	item      uint32
	deadline  time.Time
	code      tracecode.Code // printed on it, per the printer's record
	hasPrint  bool
	dup       bool // the print record repeated an earlier code
	lost      bool // its print record was lost: it is rejected whatever the camera says
	gap       bool // the PLC's counter skipped it: we know it exists, not when
	noPrint   bool // came while the printer was not fed: no print record will come
	producing bool // the line was producing when it came
	challenge int  // 1-based challenge step, 0 = production unit
	result    *CameraResult
	decided   bool
}

// Counters are PackTags-style production counters.
type Counters struct {
	Triggered    uint64            `json:"triggered"`
	Passed       uint64            `json:"passed"`
	Rejected     uint64            `json:"rejected"`
	RejectReason map[string]uint64 `json:"rejects_by_reason"`
	Late         uint64            `json:"late"`
	Sent         uint64            `json:"sent"`
	Printed      uint64            `json:"printed"`
	Voided       uint64            `json:"voided"`
	Packed       map[string]uint64 `json:"packed_parents"`  // by level
	Partial      map[string]uint64 `json:"partial_parents"` // by level
	Reworked     uint64            `json:"reworked_groups"`
	// What the physical line confirmed: passes the gate rejected all the
	// same, units to be rejected that went on (reject failed, bin full),
	// parents' labels verified on their groups and groups whose label was
	// not theirs (or unreadable).
	GateRejectedPasses uint64 `json:"gate_rejected_passes"`
	Escaped            uint64 `json:"escaped"`
	LabelsVerified     uint64 `json:"labels_verified"`
	LabelMismatches    uint64 `json:"label_mismatches"`
}

// Machine is the line's decision logic. It is not safe for concurrent use:
// the runner owns it and calls Step from one goroutine.
type Machine struct {
	cfg   Config
	state State
	why   string

	purgeRequired bool
	// purgeMarks: each aggregation camera's result count when the last
	// purge was confirmed (Flushed.Marks); a level's mark is dropped at its
	// first read above it. markErr: why the last purge could not be marked.
	purgeMarks    map[tracecode.Level]uint64
	markErr       string
	faults        map[string]string
	challengeNext int // next challenge step to assign to a trigger
	challengeRes  []ChallengeResult
	challengeDone bool
	challengeOK   bool

	units     map[uint32]*unit
	order     []uint32 // items in trigger order, undecided ones among them
	lastItem  uint32
	haveItem  bool
	waitPrint []uint32         // triggered, no print record yet
	waitItem  []printRec       // print records, no trigger yet
	inPrinter []tracecode.Code // handed over, not yet confirmed

	ready        map[tracecode.Level][]tracecode.Code
	allocPending map[tracecode.Level]bool
	codes        map[tracecode.Code]*codeInfo
	packing      map[tracecode.Code][]tracecode.Code
	partialSet   map[tracecode.Code]bool
	reprinted    map[tracecode.Code]bool // codes the printer printed more than once
	limbo        []tracecode.Code        // printed codes of units that got no camera result
	flushPending bool
	// printerProbe is when a flush next asks a printer that failed a send
	// or a flush whether it answers again (zero: none outstanding). A
	// printer that stalls for a moment, shorter than its link watchdog,
	// fails a send but never goes down and up: its answering flush is what
	// clears the fault (probePrinter).
	printerProbe time.Time
	printerReady bool // the printer holds codes (delivered since the last flush)

	counters Counters

	now             time.Time // the last event's time
	completingSince time.Time

	atGate          map[uint32]*gateWait
	gateOrder       []uint32 // items in atGate, ascending
	parentOf        map[tracecode.Code]tracecode.Code
	packedKids      map[tracecode.Code][]tracecode.Code
	labelQueue      map[tracecode.Level][]tracecode.Code // parents packed, label not yet verified, in pack order
	labelMismatches int                                  // consecutive
	resumeItem      uint32                               // the ledger's last item before a restart (0: none)
	resumeTriggered uint64                               // the batch's units counted by the ledger at the restart
}

type printRec struct {
	code tracecode.Code
	dup  bool
	lost bool // the printer's record was lost: presumed printed, not vouched for
}

// ErrInvalidCommand is returned (as an Alarm) when a command is not allowed
// in the current state.
var ErrInvalidCommand = errors.New("command not allowed in this state")

// NewMachine returns a machine in Stopped. If purgeRequired, the operator
// must confirm the line is purged (command clear) before it can be reset:
// that is how it starts after a restart with a batch open.
func NewMachine(cfg Config, purgeRequired bool) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.GateTimeout == 0 {
		cfg.GateTimeout = 2 * time.Second
	}
	return &Machine{
		cfg:           cfg,
		state:         Stopped,
		purgeRequired: purgeRequired,
		faults:        map[string]string{},
		units:         map[uint32]*unit{},
		ready:         map[tracecode.Level][]tracecode.Code{},
		allocPending:  map[tracecode.Level]bool{},
		codes:         map[tracecode.Code]*codeInfo{},
		packing:       map[tracecode.Code][]tracecode.Code{},
		partialSet:    map[tracecode.Code]bool{},
		reprinted:     map[tracecode.Code]bool{},
		challengeOK:   len(cfg.Challenge) == 0,
		challengeDone: len(cfg.Challenge) == 0,
		counters: Counters{RejectReason: map[string]uint64{}, Packed: map[string]uint64{},
			Partial: map[string]uint64{}},
	}, nil
}

// State is the current PackML state.
func (m *Machine) State() State { return m.state }

// Snapshot is a copy of what the HMI shows.
type Snapshot struct {
	State         string            `json:"state"`
	Why           string            `json:"why"`
	PurgeRequired bool              `json:"purge_required"`
	Faults        map[string]string `json:"faults"`
	InFlight      int               `json:"in_flight"`
	InPrinter     int               `json:"in_printer"`
	Challenge     []ChallengeResult `json:"challenge"`
	ChallengeOK   bool              `json:"challenge_ok"`
	Counters      Counters          `json:"counters"`
	// Ledger is the batch's reconciliation per level as the ledger has it
	// (filled by the runner): it survives restarts and is what QA reviews.
	Ledger []aggregation.LevelSummary `json:"ledger,omitempty"`
}

// Snapshot returns a copy of the machine's visible state.
func (m *Machine) Snapshot() Snapshot {
	s := Snapshot{State: m.state.String(), Why: m.why, PurgeRequired: m.purgeRequired,
		Faults: map[string]string{}, InPrinter: len(m.inPrinter), ChallengeOK: m.challengeOK,
		Challenge: append([]ChallengeResult(nil), m.challengeRes...), Counters: m.counters}
	for k, v := range m.faults {
		s.Faults[k] = v
	}
	s.Counters.RejectReason = copyMap(m.counters.RejectReason)
	s.Counters.Packed = copyMap(m.counters.Packed)
	s.Counters.Partial = copyMap(m.counters.Partial)
	for _, u := range m.units {
		if !u.decided {
			s.InFlight++
		}
	}
	return s
}

func copyMap(m map[string]uint64) map[string]uint64 {
	c := make(map[string]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Adopt tells the machine about codes of this batch that already exist
// (after a restart): commissioned loose units and parents, so that
// aggregation and duplicate detection continue. It is not an event: the
// runner calls it before the first Step.
func (m *Machine) Adopt(code tracecode.Code, level tracecode.Level, packed bool) {
	st := csCommissioned
	if packed {
		st = csPacked
	}
	m.codes[code] = &codeInfo{level: level, state: st}
}

// Step feeds one event to the machine and returns what must be done, in order.
func (m *Machine) Step(ev Event) []Action {
	var out []Action
	if t := ev.At(); t.After(m.now) {
		m.now = t
	}
	switch e := ev.(type) {
	case GateOutcome:
		out = m.onGate(e, out)
	case GateLost:
		out = append(out, Alarm{Device: faultGate, Text: fmt.Sprintf("%d gate outcomes lost (PLC ring overflowed); those units are resolved as unknown", e.N)})
	case LabelScan:
		out = m.onLabelScan(e, out)
	case Trigger:
		out = m.onTrigger(e, out)
	case Printed:
		out = m.onPrinted(e, out)
	case PrintGap:
		out = m.onPrintGap(e, out)
	case CameraResult:
		out = m.onCamera(e, out)
	case Tick:
	case Allocated:
		out = m.onAllocated(e, out)
	case Delivered:
		m.printerReady = true
	case SendFailed:
		out = m.voidInPrinter(e.Codes, "send to printer failed: "+e.Err, out)
		out = m.fault(e.T, "printer", e.Err, out)
		m.printerProbe = e.T.Add(printerProbeEvery)
	case Flushed:
		m.flushPending = false
		if e.Err != "" {
			// The printer did not answer the flush: ask again later.
			m.printerProbe = e.T.Add(printerProbeEvery)
		} else if !m.printerProbe.IsZero() {
			// The printer answered: the send failure is over.
			m.printerProbe = time.Time{}
			if _, ok := m.faults["printer"]; ok {
				delete(m.faults, "printer")
				out = append(out, Alarm{Device: "printer", Clear: true})
			}
		}
		out = m.voidInPrinter(e.Codes, "flushed from printer buffer, never printed", out)
		m.printerReady = len(m.inPrinter) > 0 // what the flush left is still in the printer
		if m.state == Clearing && (e.Marks != nil || e.MarkErr != "") {
			out = m.markPurge(e, out)
		}
	case AggRead:
		out = m.onAggRead(e, out)
	case AggReset:
		delete(m.purgeMarks, e.Level)
	case Packed:
		out = m.onPacked(e, out)
	case Unpacked:
		out = m.onUnpacked(e, out)
	case Overridden:
		if w := m.atGate[e.Item]; w != nil {
			w.pass = false // the PLC was told reject
		}
		if info := m.codes[e.Code]; info != nil && info.state == csCommissioned {
			info.state = csRejected
			if e.Decommissioned {
				info.state = csVoided
			}
			m.counters.Passed--
			m.counters.Rejected++
			m.counters.RejectReason[ReasonLate.String()]++
			m.counters.Late++
		}
	case Reworked:
		for _, set := range []struct {
			codes []tracecode.Code
			st    codeState
		}{{e.Loose, csCommissioned}, {e.Packed, csPacked}, {e.Out, csVoided}} {
			for _, c := range set.codes {
				if info := m.codes[c]; info != nil {
					info.state = set.st
				}
			}
		}
	case CounterReset:
		out = m.fault(e.T, "plc", fmt.Sprintf("item counter reset to %d (PLC restart?)", e.Item), out)
		// Tracking restarts from the new count; the operator unholds once
		// the line is checked (the fault is cleared with the event).
		m.lastItem, m.haveItem = e.Item, e.Item > 0
		delete(m.faults, "plc")
	case Journaled:
		if e.Err != "" {
			out = m.fault(e.T, "ledger", e.Err, out)
		}
	case DeviceFault:
		out = m.fault(e.T, e.Device, e.Err, out)
	case DeviceOK:
		if e.Device == "printer" {
			m.printerProbe = time.Time{}
		}
		if _, ok := m.faults[e.Device]; ok {
			delete(m.faults, e.Device)
			out = append(out, Alarm{Device: e.Device, Clear: true})
		}
		if e.Device == "plc" {
			m.gateLinkBack(e.T)
		}
	case Operator:
		out = m.onCommand(e, out)
	default:
		out = append(out, Alarm{Device: "line", Text: fmt.Sprintf("unknown event %T ignored", ev)})
	}
	out = m.expire(ev.At(), out)
	out = m.expireGate(ev.At(), out)
	out = m.probePrinter(ev.At(), out)
	out = m.settle(out)
	out = m.topUp(out)
	return out
}

func (m *Machine) onTrigger(e Trigger, out []Action) []Action {
	if m.haveItem && e.Item <= m.lastItem {
		// Already known: its camera result overtook the trigger, or the PLC
		// repeated itself. Either way the unit is tracked once.
		return out
	}
	if m.haveItem && e.Item > m.lastItem+1 {
		// The PLC's counter skipped: those units exist and will be printed on.
		out = append(out, Alarm{Device: "plc", Text: fmt.Sprintf("item counter skipped %d..%d; those units will be rejected", m.lastItem+1, e.Item-1)})
		for it := m.lastItem + 1; it < e.Item; it++ {
			m.newUnit(it, e.T, true)
		}
	}
	m.newUnit(e.Item, e.T, false)
	return out
}

func (m *Machine) newUnit(item uint32, at time.Time, gap bool) {
	u := &unit{item: item, deadline: at.Add(m.cfg.Deadline), gap: gap, producing: m.state == Execute}
	if u.producing && m.challengeNext < len(m.cfg.Challenge) && !gap {
		m.challengeNext++
		u.challenge = m.challengeNext
	}
	m.units[item] = u
	m.order = append(m.order, item)
	m.lastItem, m.haveItem = item, true
	switch {
	case m.resumeItem == 0:
		m.counters.Triggered++
	case item > m.resumeItem:
		// After a restart the batch's count runs on the PLC's item ids:
		// the units between the ledger's last and this one were on the
		// line while the controller was down (the gate rejected them: no
		// verdict). Units at or before the ledger's last (a camera's record
		// replayed at connect) are counted already.
		if want := m.resumeTriggered + uint64(item-m.resumeItem); want > m.counters.Triggered {
			if down := want - m.counters.Triggered - 1; down > 0 {
				m.counters.Rejected += down
				m.counters.RejectReason["controller-down"] += down
			}
			m.counters.Triggered = want
		}
	}
	if !m.sending() {
		// The printer is not being fed (held, stopped, flushed): no print
		// is coming for this unit. It must not wait for one, or it would
		// take the first record printed after the line resumes — the next
		// unit's code — and every later unit would be one code off.
		u.noPrint = true
		return
	}
	if len(m.waitItem) > 0 {
		rec := m.waitItem[0]
		m.waitItem = m.waitItem[1:]
		u.code, u.dup, u.lost, u.hasPrint = rec.code, rec.dup, rec.lost, true
		return
	}
	m.waitPrint = append(m.waitPrint, item)
}

func (m *Machine) onPrinted(e Printed, out []Action) []Action {
	m.counters.Printed++
	rec := printRec{code: e.Code}
	info := m.codes[e.Code]
	switch {
	case info == nil:
		rec.dup = true
		out = append(out, Alarm{Device: "printer", Text: fmt.Sprintf("printer reports code %s that this line never sent", e.Code)})
	case info.voidedAtRestart && !info.recorded:
		rec.dup = true
		info.recorded = true
		out = append(out, Alarm{Device: "printer", Text: fmt.Sprintf("printer printed %s, sent before the restart and voided then (uncertain): the unit carrying it is rejected; the purge flushes the rest", e.Code)})
	case info.recorded:
		rec.dup = true // printed again: a reprint of a code already on a unit
		m.reprinted[e.Code] = true
		out = append(out, Alarm{Device: "printer", Text: fmt.Sprintf("code %s printed again (reprint)", e.Code)})
	default:
		info.recorded = true
		if info.state == csSent {
			m.markPrinted(e.Code, info)
		}
		// Otherwise the camera saw it first and it is decided already.
	}
	return m.pairPrint(rec, e.T, out)
}

// onPrintGap: N print records are lost. The printer prints its buffer in
// order, so the next N codes handed over were printed, on the next N units
// waiting for a record: pair them so that the units after them stay
// aligned, and reject those units — nobody vouches for what is on them.
func (m *Machine) onPrintGap(e PrintGap, out []Action) []Action {
	out = append(out, Alarm{Device: "printer", Text: fmt.Sprintf("%d print records lost; the units concerned will be rejected", e.N)})
	for i := 0; i < e.N; i++ {
		rec := printRec{lost: true, dup: true}
		if len(m.inPrinter) > 0 {
			rec.code = m.inPrinter[0]
			m.inPrinter = m.inPrinter[1:]
			if info := m.codes[rec.code]; info != nil && info.state == csSent {
				info.state = csPrinted
				rec.dup = false
			}
		}
		m.counters.Printed++
		out = m.pairPrint(rec, e.T, out)
	}
	return out
}

// pairPrint gives a print record to the oldest unit waiting for one, or
// keeps it for the next trigger.
func (m *Machine) pairPrint(rec printRec, at time.Time, out []Action) []Action {
	info := m.codes[rec.code]
	if len(m.waitPrint) == 0 {
		if !m.sending() {
			// Printed while no unit can be expected: never let it pair with
			// the next unit when production starts again (a record replayed
			// by the printer at a restart, a print during a stop). A fresh
			// code is voided; a repeat or a code voided already is dropped.
			if rec.dup {
				return out
			}
			if info != nil {
				info.state = csVoided
			}
			m.counters.Voided++
			return append(out, Void{Codes: []tracecode.Code{rec.code}, Reason: "printed while the line was " + m.state.String()})
		}
		m.waitItem = append(m.waitItem, rec)
		return out
	}
	u := m.units[m.waitPrint[0]]
	m.waitPrint = m.waitPrint[1:]
	if u == nil {
		return out
	}
	u.code, u.dup, u.lost, u.hasPrint = rec.code, rec.dup, rec.lost, true
	if u.decided {
		// Decided at its deadline without a print record: the code on it is rejected too.
		delete(m.units, u.item)
		return m.settleLateCode(u, out)
	}
	if u.result != nil {
		out = m.decide(u, u.result, at, false, out)
	}
	return out
}

// resync: unit u carries code r, which the print records gave to an
// earlier unit (one that fell off before the printer, or whose trigger came
// early): the print records run one step behind the units from u on. Give
// u its code and every later undecided unit the record of the unit before
// it, so that a later reject rejects the code really on that unit.
func (m *Machine) resync(u *unit, r tracecode.Code) {
	earlier := false
	for i, c := range m.limbo {
		if c == r {
			m.limbo = append(m.limbo[:i:i], m.limbo[i+1:]...)
			earlier = true
			break
		}
	}
	var after []*unit
	seen := false
	for _, it := range m.order {
		z := m.units[it]
		if z == nil || z.decided && z != u {
			continue
		}
		if z == u {
			seen = true
			continue
		}
		if !seen {
			if z.hasPrint && z.code == r {
				earlier = true
			}
			continue
		}
		after = append(after, z)
	}
	if !earlier {
		return // read before its print record, not out of step: nothing to shift
	}
	var recs []printRec
	if u.hasPrint {
		recs = append(recs, printRec{code: u.code, dup: u.dup, lost: u.lost})
	}
	for _, z := range after {
		if z.hasPrint {
			recs = append(recs, printRec{code: z.code, dup: z.dup, lost: z.lost})
		}
	}
	recs = append(recs, m.waitItem...)
	u.code, u.dup, u.lost, u.hasPrint = r, false, false, true
	m.waitPrint = m.waitPrint[:0]
	for _, z := range after {
		if len(recs) == 0 {
			z.code, z.dup, z.lost, z.hasPrint = "", false, false, false
			m.waitPrint = append(m.waitPrint, z.item)
			continue
		}
		z.code, z.dup, z.lost, z.hasPrint = recs[0].code, recs[0].dup, recs[0].lost, true
		recs = recs[1:]
	}
	m.waitItem = recs
}

// settleLateCode deals with a print record that arrives for a unit already
// decided without one. The unit's verdict stands (the PLC is never told
// twice). The code may be on this unit or, if the records are out of step,
// on the next: it stays printed for a later read to claim, else it is
// voided when the line leaves Execute or the batch completes.
func (m *Machine) settleLateCode(u *unit, out []Action) []Action {
	if info := m.codes[u.code]; !u.dup && info != nil && info.state == csPrinted {
		m.limbo = append(m.limbo, u.code)
	}
	return out
}

func (m *Machine) onCamera(e CameraResult, out []Action) []Action {
	if !m.haveItem || e.Item > m.lastItem {
		// The result overtook its trigger on the wire: the trigger is implied.
		out = m.onTrigger(Trigger{Stamp: e.Stamp, Item: e.Item}, out)
	}
	u := m.units[e.Item]
	if u == nil || u.decided {
		return out // after its deadline: the unit was already rejected
	}
	if !u.hasPrint && !m.freshRead(&e) {
		r := e
		u.result = &r
		return out
	}
	return m.decide(u, &e, e.T, false, out)
}

// markPrinted takes a code out of the printer's buffer: it is on a unit.
func (m *Machine) markPrinted(c tracecode.Code, info *codeInfo) {
	info.state = csPrinted
	for i, p := range m.inPrinter {
		if p == c {
			m.inPrinter = append(m.inPrinter[:i:i], m.inPrinter[i+1:]...)
			break
		}
	}
}

// fresh reports whether c is a code printed once and never decided — or
// handed to the printer and seen by the camera before the printer's record
// of it came (the camera's read proves the print).
func (m *Machine) fresh(c tracecode.Code) bool {
	info := m.codes[c]
	if info == nil || m.reprinted[c] {
		return false
	}
	return info.state == csPrinted || (info.state == csSent && !info.recorded && m.inPrinterHas(c))
}

func (m *Machine) inPrinterHas(c tracecode.Code) bool {
	for _, p := range m.inPrinter {
		if p == c {
			return true
		}
	}
	return false
}

// freshRead reports whether a result reads one fresh printed code: then it
// can be decided without waiting for the unit's print record.
func (m *Machine) freshRead(r *CameraResult) bool {
	if len(r.Reads) == 0 || r.Reads[0].Err != "" {
		return false
	}
	for _, x := range r.Reads[1:] {
		if x != r.Reads[0] {
			return false
		}
	}
	return m.fresh(r.Reads[0].Code)
}

// evaluate is the verdict rule: a unit passes only with a verified, fresh
// code that is the one printed on it, of sufficient grade.
func (m *Machine) evaluate(u *unit, r *CameraResult) (Reason, tracecode.Code, string) {
	if r == nil {
		if !u.hasPrint {
			return ReasonNoPrint, "", "no print record and no camera result"
		}
		return ReasonLate, "", "no camera result before the deadline"
	}
	if len(r.Reads) == 0 {
		return ReasonNoRead, "", ""
	}
	read := r.Reads[0]
	for _, x := range r.Reads[1:] {
		if x != read {
			return ReasonWrongCode, "", fmt.Sprintf("%d different codes on one unit", len(r.Reads))
		}
	}
	if read.Err != "" {
		return ReasonUnreadable, "", read.Err
	}
	if !u.hasPrint && !m.freshRead(r) {
		return ReasonNoPrint, read.Code, "no print record for this unit"
	}
	if read.Code != u.code {
		switch info := m.codes[read.Code]; {
		case m.fresh(read.Code):
			// A fresh code: printed once, never decided, not a reprint. The
			// print records are out of step with the units (a unit fell off
			// before the printer, a trigger was missed); what the camera
			// sees on the unit is the truth. Uniqueness is unaffected.
			if !r.Pass || (m.cfg.MinGrade != 0 && (r.Grade == 0 || r.Grade > m.cfg.MinGrade)) {
				return ReasonLowGrade, read.Code, fmt.Sprintf("realigned to %s; grade below %c or camera fail", read.Code, m.cfg.MinGrade)
			}
			if u.code == "" {
				return ReasonNone, read.Code, "realigned: before its print record"
			}
			return ReasonNone, read.Code, fmt.Sprintf("realigned: print record expected %s", u.code)
		case info == nil:
			return ReasonNotOurs, read.Code, fmt.Sprintf("read %s, expected %s", read.Code, u.code)
		case info.state == csCommissioned || info.state == csPacked || info.state == csPacking:
			return ReasonDuplicate, read.Code, fmt.Sprintf("expected %s; read code already commissioned", u.code)
		default:
			return ReasonWrongCode, read.Code, fmt.Sprintf("read %s (%s), expected %s", read.Code, info.state, u.code)
		}
	}
	if u.lost {
		return ReasonNoPrint, read.Code, "print record lost"
	}
	if u.dup {
		return ReasonDuplicate, read.Code, "reprint of a code already printed"
	}
	if info := m.codes[u.code]; info == nil || info.state != csPrinted {
		return ReasonDuplicate, read.Code, "code already settled"
	}
	if !r.Pass {
		return ReasonLowGrade, read.Code, "camera verification failed"
	}
	if m.cfg.MinGrade != 0 && (r.Grade == 0 || r.Grade > m.cfg.MinGrade) {
		g := "none"
		if r.Grade != 0 {
			g = string(r.Grade)
		}
		return ReasonLowGrade, read.Code, fmt.Sprintf("grade %s below %c", g, m.cfg.MinGrade)
	}
	return ReasonNone, read.Code, ""
}

func (m *Machine) decide(u *unit, r *CameraResult, at time.Time, late bool, out []Action) []Action {
	reason, read, detail := m.evaluate(u, r)
	if reason == ReasonNone && u.gap {
		reason, detail = ReasonTriggerGap, "the PLC did not report this unit"
	}
	if reason == ReasonNone && !u.producing {
		reason, detail = ReasonNotProducing, "line not in Execute when the unit came"
	}
	if reason == ReasonNone && u.challenge == 0 && !m.challengeOK {
		reason, detail = ReasonNotProducing, "challenge test not passed"
	}
	v := Verdict{Item: u.item, Code: u.code, Reason: reason, Read: read, Detail: detail, Received: at, Late: late, Deadline: u.deadline}
	if r != nil {
		v.Grade = r.Grade
	}
	if u.challenge > 0 {
		step := m.cfg.Challenge[u.challenge-1]
		res := ChallengeResult{Step: step.Name, Item: u.item, Expect: step.Expect.String(), Got: reason.String(), OK: reason == step.Expect}
		m.challengeRes = append(m.challengeRes, res)
		if reason == ReasonNone {
			// Test units never go to market: the PLC rejects them into the QA bin.
			v.Reason = ReasonNotProducing
		}
		v.Detail = fmt.Sprintf("challenge %q: expected %s, got %s", step.Name, res.Expect, res.Got)
	}
	jcode := u.code
	if read != "" && read != u.code && (reason == ReasonNone || reason == ReasonLowGrade) && m.fresh(read) {
		jcode = read // realigned: the code on the unit is the one read
		v.Code = read
		m.resync(u, read)
	}
	if ji := m.codes[jcode]; ji != nil && ji.state == csSent && m.fresh(jcode) && read == jcode {
		m.markPrinted(jcode, ji) // seen by the camera before the printer's record
	}
	info := m.codes[jcode]
	switch {
	case jcode == "" || (jcode == u.code && u.dup && !u.lost) || info == nil || info.state != csPrinted:
		v.Journal = JournalUnitOnly
	case r == nil && late && !u.lost && u.challenge == 0:
		// No camera result at all: the unit may have fallen off before the
		// printer, its code then being on the next unit. The code stays
		// printed, for a later read to claim; unclaimed, it is voided when
		// the line leaves Execute or the batch completes.
		v.Journal = JournalUnitOnly
		m.limbo = append(m.limbo, jcode)
	case v.Reason == ReasonWrongCode && read != "" && read != jcode && !u.lost && u.challenge == 0:
		// The unit carries another code of ours, one decided already (a
		// rejected, voided or reprinted code): the print records may run
		// behind the units, the expected code then being on a later unit.
		// Reject the unit alone and leave the expected code printed for a
		// later read to claim, as after a missing camera result; rejecting
		// it would reject that later, good unit as wrong-code in turn, and
		// the next, in a chain. Unclaimed, it is voided when the line leaves
		// Execute or the batch completes.
		v.Journal = JournalUnitOnly
		m.limbo = append(m.limbo, jcode)
	case v.Reason == ReasonNone:
		v.Journal, v.Pass = JournalCommission, true
		info.state = csCommissioned
	default:
		v.Journal = JournalReject
		info.state = csRejected
	}
	u.decided = true
	u.result = nil
	if u.hasPrint || u.noPrint {
		delete(m.units, u.item) // done; without a print record it waits to pair with one
	}
	if v.Pass {
		m.counters.Passed++
	} else {
		m.counters.Rejected++
		m.counters.RejectReason[v.Reason.String()]++
	}
	if late {
		m.counters.Late++
	}
	m.expectGate(v)
	out = append(out, v)
	if u.challenge > 0 && len(m.challengeRes) == len(m.cfg.Challenge) {
		out = m.finishChallenge(at, out)
	}
	return out
}

func (m *Machine) finishChallenge(at time.Time, out []Action) []Action {
	ok := true
	for _, r := range m.challengeRes {
		ok = ok && r.OK
	}
	m.challengeDone, m.challengeOK = true, ok
	out = append(out, ChallengeDone{Passed: ok, Results: append([]ChallengeResult(nil), m.challengeRes...)})
	if !ok {
		out = append(out, Alarm{Device: "challenge", Text: "challenge test failed: production cannot start; unhold to repeat it"})
		out = m.transition(Holding, "challenge test failed", out)
	}
	return out
}

// expire rejects every unit whose deadline has passed without a verdict.
// Deadlines are in trigger order, so only the front of the queue is looked at.
func (m *Machine) expire(now time.Time, out []Action) []Action {
	for len(m.order) > 0 {
		it := m.order[0]
		u := m.units[it]
		if u != nil && !u.decided {
			if now.Before(u.deadline) {
				break
			}
			// Deciding may change the queue under us: a failed challenge
			// holds the line, which rejects and drops every unit in flight.
			out = m.decide(u, u.result, u.deadline, true, out)
		}
		if len(m.order) > 0 && m.order[0] == it {
			m.order = m.order[1:]
		}
	}
	return out
}

// printerProbeEvery is how often a printer that failed a send is asked
// (by a flush) whether it answers again.
const printerProbeEvery = 2 * time.Second

// probePrinter flushes a printer that failed a send, once the line has
// left Execute and no flush is under way, every printerProbeEvery until
// one answers (Flushed without an error clears the fault). Outside
// Execute the printer's buffer is to be empty anyway: the flush loses
// nothing, and the codes it names are voided as ever.
func (m *Machine) probePrinter(now time.Time, out []Action) []Action {
	if m.printerProbe.IsZero() || now.Before(m.printerProbe) || m.flushPending || m.faults["printer"] == "" {
		return out
	}
	switch m.state {
	case Held, Stopped, Idle, Complete, Aborted, Suspended:
	default:
		return out
	}
	m.printerProbe = now.Add(printerProbeEvery)
	m.flushPending = true
	return append(out, FlushPrinter{Probe: true})
}
