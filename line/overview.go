package line

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// Overview is what the operator's overview screen shows: the HMI's
// contract (JSON). It is built on request and for every live update.
type Overview struct {
	Line string    `json:"line"`
	At   time.Time `json:"at"`
	// Seq increases with every update published (a client can tell it
	// missed some; it always gets the latest).
	Seq uint64 `json:"seq"`
	// State is the PackML state and why it was entered ("" with no batch).
	State string `json:"state"`
	Why   string `json:"why"`
	// Ready: a batch can be started now (none is open).
	Ready bool       `json:"ready_for_batch"`
	Batch *BatchView `json:"batch,omitempty"` // the current batch, or the last one (complete)
	// RatePerMin: units decided per minute over the last minute.
	RatePerMin float64       `json:"rate_per_min"`
	Counts     Counts        `json:"counts"`
	Levels     []LevelView   `json:"levels"`
	Codes      []CodesLeft   `json:"codes_left"`
	Units      []UnitView    `json:"last_units"`
	Devices    []DeviceView  `json:"devices"`
	Alarms     []AlarmView   `json:"alarms"`
	Purge      *PurgeGuide   `json:"purge,omitempty"`
	Challenge  ChallengeView `json:"challenge"`
	// NoBatch counts device events that came with no batch running and
	// were dropped; NoBatchTriggers the units among them (each got a
	// reject verdict).
	NoBatch         uint64 `json:"no_batch_events"`
	NoBatchTriggers uint64 `json:"no_batch_triggers"`
	// Line is the runner's own snapshot (faults, raw counters, the
	// ledger's reconciliation), for the engineer's and QA's screens.
	Runner *Snapshot `json:"runner,omitempty"`
}

// BatchView is the batch on the line and its work order.
type BatchView struct {
	ID         string                 `json:"id"`
	Product    string                 `json:"product"`
	ProductKey string                 `json:"product_key"`
	Order      aggregation.WorkOrder  `json:"order"`
	State      aggregation.BatchState `json:"ledger_state"`
	StartedBy  string                 `json:"started_by,omitempty"`
	StartedAt  *time.Time             `json:"started_at,omitempty"`
	Resumed    bool                   `json:"resumed"` // picked up at a controller restart
	Complete   bool                   `json:"complete"`
}

// Counts are the unit counters of the batch.
type Counts struct {
	Triggered uint64            `json:"triggered"`
	Good      uint64            `json:"good"`
	Rejected  uint64            `json:"rejected"`
	ByReason  map[string]uint64 `json:"rejected_by_reason"`
	// Uncertain: codes voided (sent or printed, never verified).
	Uncertain uint64 `json:"uncertain"`
	// Sampled: units QA took (ledger).
	Sampled uint64 `json:"sampled"`
	Planned int64  `json:"planned"`
}

// LevelView is one aggregation level's progress.
type LevelView struct {
	Level   tracecode.Level `json:"level"`
	Name    string          `json:"name,omitempty"`
	Ratio   int             `json:"ratio"`
	Full    int64           `json:"full"`
	Partial int64           `json:"partial"`
	// InProgress: loose units of the level below, waiting for a group.
	InProgress int64 `json:"in_progress"`
}

// CodesLeft is what a pool the batch draws on still holds, and a warning
// when it would run out before the batch's planned quantity.
type CodesLeft struct {
	Level     tracecode.Level `json:"level"`
	Pool      string          `json:"pool"`
	Available int64           `json:"available"`
	Needed    int64           `json:"needed"` // still to come for the planned quantity
	Warning   string          `json:"warning,omitempty"`
}

// DeviceView is one device's link.
type DeviceView struct {
	Name  string `json:"name"`
	Link  string `json:"link"` // up, down, unknown
	Error string `json:"error,omitempty"`
	// AgeMs is the age of its last message (-1: none yet).
	AgeMs int64 `json:"age_ms"`
}

// PurgeGuide is the guided purge after a restart with a batch open.
type PurgeGuide struct {
	Required bool     `json:"required"`
	Steps    []string `json:"steps"`
	// Voided: codes voided at the restart (handed to the printer, never
	// verified): a unit carrying one is rejected. TakenOut: parents
	// unpacked at the restart (label never printed or verified): their
	// groups go to rework.
	Voided   int `json:"voided_at_restart"`
	TakenOut int `json:"parents_taken_out"`
}

// ChallengeView is the challenge test: its steps and what each test unit got.
type ChallengeView struct {
	Steps   []ChallengeStepView `json:"steps"`
	Results []ChallengeResult   `json:"results"`
	Done    bool                `json:"done"`
	Passed  bool                `json:"passed"`
}

// ChallengeStepView is one step of the challenge test: a test unit and
// the outcome it must get (a reason's name, "pass" for none).
type ChallengeStepView struct {
	Name   string `json:"name"`
	Expect string `json:"expect"`
}

// LinkReporter is an optional ability of a device driver (adapted by the
// wiring): its link state and when it last sent anything.
type LinkReporter interface {
	Link() LinkState
}

// LinkState is a device's link as its driver knows it.
type LinkState struct {
	Up          bool
	LastMessage time.Time
	Err         string
}

// Devices whose events the Line sees, by the events they send.
const (
	seenPLC = iota
	seenPrinter
	seenCamera
	seenAggCamera
	seenLabelScanner
	numSeen
)

var seenNames = [numSeen]string{"plc", "printer", "camera", "aggregation-camera", "label-scanner"}

// sawEvent notes when a device last sent something: an atomic store of
// the event's own time (no clock read on the way to the runner).
func (l *Line) sawEvent(ev Event) {
	var i int
	switch ev.(type) {
	case Trigger, GateOutcome, GateLost, CounterReset:
		i = seenPLC
	case Printed, PrintGap:
		i = seenPrinter
	case CameraResult:
		i = seenCamera
	case AggRead:
		i = seenAggCamera
	case LabelScan:
		i = seenLabelScanner
	default:
		return
	}
	l.seen[i].Store(ev.At().UnixNano())
}

// Snapshot returns the overview as of now.
func (l *Line) Snapshot() Overview {
	return l.overview(context.Background(), time.Now())
}

func (l *Line) overview(ctx context.Context, now time.Time) Overview {
	o := Overview{Line: l.cfg.Line, At: now, Seq: l.subs.seq(), NoBatch: l.droppedEvents.Load(),
		NoBatchTriggers: l.noBatchTriggers.Load(), Alarms: l.alarms.view(), Counts: Counts{ByReason: map[string]uint64{}}}
	run := l.cur.Load()
	l.mu.Lock()
	o.Ready = l.current() == nil && !l.starting
	l.mu.Unlock()
	var snap Snapshot
	if run != nil {
		snap = run.r.Snapshot()
		o.State, o.Why = snap.State, snap.Why
		o.Units, o.RatePerMin = run.r.Recent()
		bv := &BatchView{ID: run.spec.ID, Product: run.spec.Product, ProductKey: run.key, Order: run.spec.Order,
			StartedBy: run.startedBy, Resumed: run.resumed, Complete: run.complete.Load()}
		if !run.startedAt.IsZero() {
			t := run.startedAt
			bv.StartedAt = &t
		}
		sum, err := l.store.Summary(ctx, run.spec.ID)
		if err == nil {
			bv.State = sum.State
		}
		o.Batch = bv
		c := snap.Counters
		o.Counts = Counts{Triggered: c.Triggered, Good: c.Passed, Rejected: c.Rejected, ByReason: c.RejectReason,
			Uncertain: c.Voided, Planned: run.spec.Order.PlannedQty}
		for i, ls := range sum.Levels {
			if ls.Level == 1 {
				o.Counts.Sampled = uint64(ls.Sampled)
				continue
			}
			lv := LevelView{Level: ls.Level, Ratio: ls.Ratio, Full: ls.FullParents, Partial: ls.PartialParents,
				InProgress: sum.Levels[i-1].Loose}
			if pl, ok := run.product.Level(ls.Level); ok {
				lv.Name = pl.Name
			}
			o.Levels = append(o.Levels, lv)
		}
		o.Codes = l.codesLeft(ctx, run, sum, c)
		steps := make([]ChallengeStepView, 0, len(run.r.cfg.Machine.Challenge))
		for _, st := range run.r.cfg.Machine.Challenge {
			steps = append(steps, ChallengeStepView{Name: st.Name, Expect: st.Expect.String()})
		}
		o.Challenge = ChallengeView{Steps: steps, Results: snap.Challenge,
			Passed: snap.ChallengeOK, Done: snap.ChallengeOK || len(snap.Challenge) == len(run.r.cfg.Machine.Challenge)}
		if len(snap.Challenge) == 0 && sum.Challenge != nil {
			// Passed before a restart (not repeated): the ledger's results.
			for _, st := range sum.Challenge.Steps {
				o.Challenge.Results = append(o.Challenge.Results, ChallengeResult{Step: st.Step, Item: uint32(st.Item), Expect: st.Expect, Got: st.Got, OK: st.OK})
			}
		}
		if snap.PurgeRequired {
			o.Purge = purgeGuide(run.r.restartVoided, run.r.restartTakenOut)
		}
		s := snap
		o.Runner = &s
	}
	faults := snap.Faults
	if run == nil || run.complete.Load() {
		faults = l.idleFaults()
	}
	o.Devices = l.deviceViews(now, faults)
	// The JSON contract has lists, never null.
	if o.Levels == nil {
		o.Levels = []LevelView{}
	}
	if o.Codes == nil {
		o.Codes = []CodesLeft{}
	}
	if o.Units == nil {
		o.Units = []UnitView{}
	}
	if o.Devices == nil {
		o.Devices = []DeviceView{}
	}
	if o.Alarms == nil {
		o.Alarms = []AlarmView{}
	}
	if o.Challenge.Steps == nil {
		o.Challenge.Steps = []ChallengeStepView{}
	}
	if o.Challenge.Results == nil {
		o.Challenge.Results = []ChallengeResult{}
	}
	return o
}

// codesLeft: for each pool the batch draws on, what it holds, what the
// batch still needs, and a warning when that is more.
func (l *Line) codesLeft(ctx context.Context, run *batchRun, sum aggregation.BatchSummary, c Counters) []CodesLeft {
	avail, err := l.poolAvailable(ctx)
	if err != nil || run.complete.Load() {
		return nil
	}
	left := max(run.spec.Order.PlannedQty-int64(c.Triggered), 0)
	need := codesNeeded(left, 0, run.spec)
	var out []CodesLeft
	for i, ls := range run.spec.Levels {
		pool := poolOf(run.product, ls.Level)
		if pool == "" {
			continue
		}
		cl := CodesLeft{Level: ls.Level, Pool: pool, Available: avail[pool], Needed: need[ls.Level]}
		have := cl.Available
		if i < len(sum.Levels) {
			have += sum.Levels[i].Outstanding // allocated to the batch, not yet sent
		}
		if have < cl.Needed {
			cl.Warning = "the pool runs out before the planned quantity: import a code file"
		}
		out = append(out, cl)
	}
	return out
}

func purgeGuide(voided, takenOut int) *PurgeGuide {
	g := &PurgeGuide{Required: true, Steps: []string{
		"remove every unit between the printer and the reject gate (their codes were voided at the restart)",
		"remove the groups at each aggregation station that are not yet labelled, and throw away labels printed but not applied",
		"take the groups the restart sent to rework to the rework station",
		"confirm the purge: give clear (the printer's buffer is flushed), then reset",
	}, Voided: voided, TakenOut: takenOut}
	return g
}

// idleFaults are the device faults while no batch runs: those the last
// batch ended with, then as devices report.
func (l *Line) idleFaults() map[string]string {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	f := make(map[string]string, len(l.faults))
	for d, e := range l.faults {
		f[d] = e
	}
	return f
}

// deviceViews: each device's link, from its LinkReporter if the wiring
// gave one, else from the faults the line holds and the events it saw.
func (l *Line) deviceViews(now time.Time, faults map[string]string) []DeviceView {
	seen := map[string]bool{}
	var out []DeviceView
	names := make([]string, 0, len(l.cfg.Links))
	for n := range l.cfg.Links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := l.cfg.Links[n].Link()
		d := DeviceView{Name: n, Link: "down", Error: st.Err, AgeMs: -1}
		if st.Up {
			d.Link = "up"
		}
		if !st.LastMessage.IsZero() {
			d.AgeMs = now.Sub(st.LastMessage).Milliseconds()
		}
		if f := faults[n]; f != "" && d.Error == "" {
			d.Error = f
		}
		seen[n] = true
		out = append(out, d)
	}
	for i, n := range seenNames {
		if seen[n] {
			continue
		}
		t := l.seen[i].Load()
		_, faulted := faults[n]
		if t == 0 && !faulted && i != seenPLC && i != seenPrinter && i != seenCamera {
			continue // a device this line may not have
		}
		d := DeviceView{Name: n, Link: "unknown", AgeMs: -1}
		if t != 0 {
			d.Link, d.AgeMs = "up", now.Sub(time.Unix(0, t)).Milliseconds()
		}
		if f, ok := faults[n]; ok {
			d.Link, d.Error = "down", f
		}
		seen[n] = true
		out = append(out, d)
	}
	// Other devices with a fault (aggregation-camera-L2, label-scanner-L2,
	// the ledger…); the line's own conditions are alarms, not links.
	var rest []string
	for n := range faults {
		switch n {
		case faultGate, faultLabeller, "challenge", "codes", "operator", "line":
			continue
		}
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		out = append(out, DeviceView{Name: n, Link: "down", Error: faults[n], AgeMs: -1})
	}
	return out
}

// lineSubs fans overviews out to live views. Each subscriber's channel
// holds one overview; a newer one replaces one not yet taken, so a slow
// subscriber gets the latest and never slows the line or the others.
type lineSubs struct {
	mu   sync.Mutex
	subs map[chan Overview]struct{}
	n    uint64
	kick chan struct{}
}

// notify asks for an update to be published (coalesced).
func (s *lineSubs) notify() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *lineSubs) seq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *lineSubs) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

func (s *lineSubs) publish(o Overview) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- o:
			continue
		default:
		}
		select { // full: replace the stale one
		case <-ch:
		default:
		}
		select {
		case ch <- o:
		default:
		}
	}
}

// Subscribe returns a channel of overviews, one after every change (the
// latest only, if the subscriber is slow), and a function that ends the
// subscription. It survives batch changes.
func (l *Line) Subscribe() (<-chan Overview, func()) {
	ch := make(chan Overview, 1)
	l.subs.mu.Lock()
	if l.subs.subs == nil {
		l.subs.subs = map[chan Overview]struct{}{}
	}
	l.subs.subs[ch] = struct{}{}
	l.subs.mu.Unlock()
	l.subs.notify()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.subs.mu.Lock()
			delete(l.subs.subs, ch)
			l.subs.mu.Unlock()
		})
	}
}

// broadcast publishes an overview after every change of the current
// batch's runner and every kick, until ctx ends. Runner updates that
// arrive while one is being built are coalesced into the next.
func (l *Line) broadcast(ctx context.Context) {
	var (
		run   *batchRun
		upd   <-chan Update
		unsub = func() {}
	)
	defer func() { unsub() }()
	for {
		// The runner is subscribed to only while someone listens: without
		// live views the line's loop publishes to no one.
		want := l.cur.Load()
		if l.subs.count() == 0 {
			want = nil
		}
		if want != run {
			unsub()
			run, upd, unsub = want, nil, func() {}
			if run != nil {
				upd, unsub = run.r.Subscribe()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-l.subs.kick:
		case <-upd:
		}
		for drained := false; !drained; { // coalesce
			select {
			case <-upd:
			case <-l.subs.kick:
			default:
				drained = true
			}
		}
		if l.subs.count() == 0 {
			continue
		}
		l.subs.mu.Lock()
		l.subs.n++
		l.subs.mu.Unlock()
		l.subs.publish(l.overview(ctx, time.Now()))
	}
}
