package line

import (
	"errors"
	"fmt"
	"time"

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
		errs = append(errs, fmt.Errorf("line.min_grade: %q is not a grade A–F", c.MinGrade))
	}
	if c.Deadline <= 0 {
		errs = append(errs, errors.New("line.deadline: must be positive (time from trigger to reject gate)"))
	}
	if c.PrinterBuffer < 1 {
		errs = append(errs, errors.New("line.printer_buffer: must be at least 1"))
	}
	if c.AllocChunk < c.PrinterBuffer {
		errs = append(errs, fmt.Errorf("line.alloc_chunk: %d is less than printer_buffer %d", c.AllocChunk, c.PrinterBuffer))
	}
	for l, r := range c.Ratios {
		if l < 2 || l > tracecode.MaxLevel {
			errs = append(errs, fmt.Errorf("line.ratios: level %d cannot be aggregated (2..%d)", l, tracecode.MaxLevel))
		}
		if r < 1 {
			errs = append(errs, fmt.Errorf("line.ratios: level %d ratio %d must be at least 1", l, r))
		}
	}
	for l := range c.Ratios {
		if l > 2 && c.Ratios[l-1] == 0 {
			errs = append(errs, fmt.Errorf("line.ratios: level %d is aggregated but level %d is not (levels never skip)", l, l-1))
		}
	}
	for i, s := range c.Challenge {
		if s.Expect >= reasonCount {
			errs = append(errs, fmt.Errorf("line.challenge[%d]: unknown expected outcome %d", i, s.Expect))
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

type codeInfo struct {
	level tracecode.Level
	state codeState
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
}

// Machine is the line's decision logic. It is not safe for concurrent use:
// the runner owns it and calls Step from one goroutine.
type Machine struct {
	cfg   Config
	state State
	why   string

	purgeRequired bool
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
	flushPending bool

	counters Counters
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
	switch e := ev.(type) {
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
	case SendFailed:
		out = m.voidInPrinter(e.Codes, "send to printer failed: "+e.Err, out)
		out = m.fault(e.T, "printer", e.Err, out)
	case Flushed:
		m.flushPending = false
		out = m.voidInPrinter(e.Codes, "flushed from printer buffer, never printed", out)
	case AggRead:
		out = m.onAggRead(e, out)
	case Packed:
		out = m.onPacked(e, out)
	case Journaled:
		if e.Err != "" {
			out = m.fault(e.T, "ledger", e.Err, out)
		}
	case DeviceFault:
		out = m.fault(e.T, e.Device, e.Err, out)
	case DeviceOK:
		if _, ok := m.faults[e.Device]; ok {
			delete(m.faults, e.Device)
			out = append(out, Alarm{Device: e.Device, Clear: true})
		}
	case Operator:
		out = m.onCommand(e, out)
	default:
		out = append(out, Alarm{Device: "line", Text: fmt.Sprintf("unknown event %T ignored", ev)})
	}
	out = m.expire(ev.At(), out)
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
	m.counters.Triggered++
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
	found := false
	for i, c := range m.inPrinter {
		if c == e.Code {
			m.inPrinter = append(m.inPrinter[:i:i], m.inPrinter[i+1:]...)
			found = true
			break
		}
	}
	info := m.codes[e.Code]
	switch {
	case found && info != nil && info.state == csSent:
		info.state = csPrinted
	case info != nil:
		rec.dup = true // printed again: a reprint of a code already on a unit
		out = append(out, Alarm{Device: "printer", Text: fmt.Sprintf("code %s printed again (reprint)", e.Code)})
	default:
		rec.dup = true
		out = append(out, Alarm{Device: "printer", Text: fmt.Sprintf("printer reports code %s that this line never sent", e.Code)})
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
		if !m.sending() && !rec.dup {
			// Printed while no unit can be expected: void it rather than let
			// it pair with the next unit after a restart of production.
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

// settleLateCode journals the fate of a code whose print record arrived
// after its unit was already rejected without one.
func (m *Machine) settleLateCode(u *unit, out []Action) []Action {
	info := m.codes[u.code]
	if u.dup || info == nil || info.state != csPrinted {
		return out
	}
	info.state = csRejected
	return append(out, Verdict{Item: u.item, Code: u.code, Reason: ReasonLate, Journal: JournalReject,
		Detail: "print record arrived after the unit's deadline", Late: true})
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
	if !u.hasPrint {
		r := e
		u.result = &r
		return out
	}
	return m.decide(u, &e, e.T, false, out)
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
	if !u.hasPrint {
		return ReasonNoPrint, read.Code, "no print record for this unit"
	}
	if read.Code != u.code {
		switch info := m.codes[read.Code]; {
		case info == nil:
			return ReasonNotOurs, read.Code, fmt.Sprintf("expected %s", u.code)
		case info.state == csCommissioned || info.state == csPacked || info.state == csPacking:
			return ReasonDuplicate, read.Code, fmt.Sprintf("expected %s; read code already commissioned", u.code)
		default:
			return ReasonWrongCode, read.Code, fmt.Sprintf("expected %s", u.code)
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
	v := Verdict{Item: u.item, Code: u.code, Reason: reason, Read: read, Detail: detail, Received: at, Late: late}
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
	info := m.codes[u.code]
	switch {
	case u.code == "" || (u.dup && !u.lost) || info == nil || info.state != csPrinted:
		v.Journal = JournalUnitOnly
	case v.Reason == ReasonNone:
		v.Journal, v.Pass = JournalCommission, true
		info.state = csCommissioned
	default:
		v.Journal = JournalReject
		info.state = csRejected
	}
	u.decided = true
	u.result = nil
	if u.hasPrint {
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
		u := m.units[m.order[0]]
		if u != nil && !u.decided {
			if now.Before(u.deadline) {
				break
			}
			out = m.decide(u, u.result, u.deadline, true, out)
		}
		m.order = m.order[1:]
	}
	return out
}
