package sim

import (
	"cmp"
	"container/heap"
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// event is one scheduled happening on the belt.
type event struct {
	at  time.Time
	seq uint64
	fn  func(now time.Time)
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// linkFaulter applies link faults to a device's proxy.
type linkFaulter interface {
	linkFault(k FaultKind, on bool, delay time.Duration)
}

// conveyor moves units past trigger → printer → camera → gate and packs the
// good ones; groups pass the aggregation camera, the labeller and the label
// scanner. All belt logic runs on one goroutine (run); truth is guarded by
// mu for readers.
type conveyor struct {
	lag    loopLag // how late the loop ran its events (Sim.LoopLag)
	cfg    Config
	log    *slog.Logger
	rng    *rand.Rand // unit, gate and link faults, drawn per unit at the trigger
	lrng   *rand.Rand // label faults, drawn per group at the labeller
	plc    *plcModel
	dev    *Devices
	faults linkFaulter

	h        eventHeap
	seq      uint64
	interval time.Duration
	// due is when the automatic infeed's next unit is due: units come one
	// interval apart on the schedule, not one interval after the loop got
	// round to the last (see nextDue).
	due     time.Time
	spawned uint32
	pending int // unit and group events still to come
	infeed  bool
	wake    chan struct{}
	feed    chan int
	purgeC  chan chan PurgeReport
	binC    chan chan BinReport

	// The reject gate.
	gateDraws   map[uint32][]FaultKind // gate faults drawn on a unit, until it reaches the gate
	pendLate    int                    // late-pass faults waiting for a unit with a pass
	pendRejFail int                    // reject-failed faults waiting for a unit to be rejected
	binFull     bool
	bin         []uint32 // items in the reject bin since it was last emptied

	// The labellers, one per level (or one shared, cfg.Labellers): at
	// each, groups wait in the order they arrive; the first takes the next
	// label its printer printed. transit holds the groups between the
	// aggregation cameras and the labellers.
	layout  Layout
	transit []*labelWait
	labs    []labeller

	mu     sync.Mutex
	fed    InfeedTruth // the automatic infeed as it ran (Rate derived by truth)
	units  []UnitTruth
	groups []*GroupTruth
	open   []*GroupTruth // the group being filled, per level
	nextG  uint32
	done   chan struct{}
	closed bool
}

// labeller is one labeller: the groups waiting at it and its label
// printer's labels.
type labeller struct {
	q     []*labelWait
	tick  bool // a retry of the labeller is scheduled
	shift int  // labels lost (label-misapply) and not yet made up: later groups carry another group's label
}

func newConveyor(cfg Config, log *slog.Logger, plc *plcModel, dev *Devices, lf linkFaulter, done chan struct{}) *conveyor {
	layout := cfg.Layout()
	return &conveyor{
		cfg: cfg, log: log, plc: plc, dev: dev, faults: lf, layout: layout, labs: make([]labeller, layout.LabelPrinters),
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		interval:  time.Duration(float64(time.Minute) / cfg.Rate),
		open:      make([]*GroupTruth, len(cfg.Ratios)),
		lrng:      rand.New(rand.NewPCG(cfg.Seed^0x6c6162656c, cfg.Seed^0x5bd1e9955bd1e995)),
		wake:      make(chan struct{}, 1),
		feed:      make(chan int, 16),
		purgeC:    make(chan chan PurgeReport),
		binC:      make(chan chan BinReport),
		gateDraws: map[uint32][]FaultKind{},
		done:      done,
	}
}

func (c *conveyor) at(t time.Time, fn func(time.Time)) {
	c.seq++
	heap.Push(&c.h, event{at: t, seq: c.seq, fn: fn})
}

// run drives the belt until ctx ends. With manual infeed, units come only
// from feed.
func (c *conveyor) run(ctx context.Context, manual bool) {
	start := time.Now()
	c.plc.setRunning(!manual)
	if !manual {
		c.infeed = true
		c.due = start
		c.at(start, c.spawnNext)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		for c.h.Len() > 0 && !c.h[0].at.After(now) {
			e := heap.Pop(&c.h).(event)
			c.lag.observe(e.at, now.Sub(e.at))
			e.fn(now)
		}
		c.checkDone()
		wait := time.Hour
		if c.h.Len() > 0 {
			wait = time.Until(c.h[0].at)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case n := <-c.feed:
			for i := 0; i < n; i++ {
				c.spawn(time.Now())
			}
		case done := <-c.purgeC:
			done <- c.purge()
		case done := <-c.binC:
			done <- c.emptyBin()
		case <-timer.C:
		}
	}
}

// spawnNext is the automatic infeed: one unit per interval until Units.
func (c *conveyor) spawnNext(now time.Time) {
	if c.cfg.Units > 0 && int(c.spawned) >= c.cfg.Units {
		c.infeed = false
		c.plc.setRunning(false)
		return
	}
	if c.plc.infeedHeld() {
		// The controller asked for a stop, or its watchdog tripped, or
		// the gate ring is full: the infeed halts, units on the belt run
		// out; the infeed resumes when the request is cleared, the
		// watchdog released or the outcomes acknowledged. A held infeed
		// makes up no unit: the schedule starts again from now.
		c.mu.Lock()
		if c.fed.Units > 0 { // before the first unit, the line had not started
			c.fed.HeldSlots++
		}
		c.mu.Unlock()
		if c.plc.State().Running {
			c.plc.setRunning(false)
		}
		c.due = now.Add(c.interval)
		c.at(c.due, c.spawnNext)
		return
	}
	if !c.plc.State().Running {
		c.plc.setRunning(true)
	}
	c.spawn(now)
	c.mu.Lock()
	c.fed.add(now)
	c.mu.Unlock()
	c.due = nextDue(c.due, now, c.interval)
	c.at(c.due, c.spawnNext)
}

// nextDue is when the unit after one due at due, and put on the belt at
// now, is due: one interval after due, so that the belt runs at its rate
// however late the loop gets round to each unit (timed from now, every
// late run lengthened the pitch: a belt asked for 12,000 units/min made
// 9,500, session 22) — but at least half an interval after now, so that
// a loop that ran late does not put units on the belt on top of each
// other to catch up.
func nextDue(due, now time.Time, interval time.Duration) time.Time {
	next := due.Add(interval)
	if least := now.Add(interval / 2); next.Before(least) {
		return least
	}
	return next
}

// spawn puts one unit on the belt at the trigger.
func (c *conveyor) spawn(now time.Time) {
	c.spawned++
	item := c.spawned
	fault, gf := c.pickFault(item, now)
	if len(gf) > 0 {
		c.gateDraws[item] = gf
	}
	c.mu.Lock()
	c.units = append(c.units, UnitTruth{Item: item, Fault: fault, Verdict: "none", Fate: FateOnLine})
	c.mu.Unlock()
	c.plc.trigger(item)
	c.pending += 3
	p := c.cfg.Positions
	c.at(now.Add(p.Printer), func(time.Time) { c.pending--; c.print(item, fault) })
	c.at(now.Add(p.Camera), func(time.Time) { c.pending--; c.inspect(item, fault) })
	c.at(now.Add(p.Gate), func(t time.Time) { c.pending--; c.gate(item, t) })
}

// pickFault draws the unit fault (at most one per unit, first listed
// wins) and the gate faults (a separate draw: they combine with a unit
// fault), and starts link faults that are due at this item. Every rate
// fault draws from the RNG for every unit, so a run is reproducible from
// its seed. Label faults are drawn per group, from their own RNG.
func (c *conveyor) pickFault(item uint32, now time.Time) (FaultKind, []FaultKind) {
	var got FaultKind
	var gate []FaultKind
	for _, f := range c.cfg.Faults {
		if f.Kind.IsLabelFault() {
			continue
		}
		hit := f.At == item
		if f.Rate > 0 {
			hit = c.rng.Float64() < f.Rate && item > f.After
		}
		if !hit {
			continue
		}
		if f.Kind.IsUnitFault() {
			if got == "" {
				got = f.Kind
			}
			continue
		}
		if f.Kind.IsGateFault() {
			gate = append(gate, f.Kind)
			continue
		}
		if c.faults != nil {
			k, d := f.Kind, f.Delay
			c.log.Info("link fault", "kind", k, "item", item, "for", f.For)
			c.faults.linkFault(k, true, d)
			c.at(now.Add(f.For), func(time.Time) { c.faults.linkFault(k, false, 0) })
		}
	}
	return got, gate
}

func (c *conveyor) unit(item uint32) *UnitTruth { return &c.units[item-1] }

func (c *conveyor) print(item uint32, f FaultKind) {
	if f == FaultMissing {
		c.mu.Lock()
		c.unit(item).Fate = FateMissing
		c.mu.Unlock()
		return
	}
	pf := PrintOK
	switch f {
	case FaultSkipPrint:
		pf = PrintSkip
	case FaultDuplicate:
		pf = PrintDuplicate
	}
	code := c.dev.Printer.PrintOnto(pf)
	c.mu.Lock()
	c.unit(item).Code = code
	c.mu.Unlock()
}

func (c *conveyor) inspect(item uint32, f FaultKind) {
	if f == FaultMissing {
		return // nothing passes the camera's photo-eye
	}
	cf := CameraOK
	switch f {
	case FaultNoRead:
		cf = CameraNoRead
	case FaultLowGrade:
		cf = CameraLowGrade
	case FaultCameraLost:
		cf = CameraLost
	}
	c.mu.Lock()
	code := c.unit(item).Code
	c.mu.Unlock()
	c.dev.Camera.Inspect(item, code, cf)
}

// gate: unit item reaches the reject gate. The PLC's shift register gives
// its verdict; the gate pushes it into the reject bin unless it has a pass;
// the confirmation sensor tells the PLC what happened (the gate ring).
//
// Gate faults drawn on a unit wait for a unit they can act on, at or after
// the drawn one: late-pass for the next unit with a pass (rejected anyway),
// reject-failed for the next unit to be rejected — reject or no verdict —
// (goes on). bin-full fills the bin from the drawn unit on: every unit to
// be rejected goes on until the bin is emptied (a pending reject-failed
// waits meanwhile). Units that go on wrongly are escaped: not packed (the
// line is expected to stop; the operator pulls them out).
func (c *conveyor) gate(item uint32, now time.Time) {
	c.mu.Lock()
	present := c.unit(item).Fate != FateMissing
	c.mu.Unlock()
	v, ok := c.plc.atGate(item)
	var drawnBinFull bool
	for _, k := range c.gateDraws[item] {
		switch k {
		case FaultLatePass:
			c.pendLate++
		case FaultRejectFailed:
			c.pendRejFail++
		case FaultBinFull:
			drawnBinFull = true
			if !c.binFull {
				c.log.Warn("reject bin full", "item", item)
			}
			c.binFull = true
			c.plc.setBinFull(true)
		}
	}
	delete(c.gateDraws, item)
	var gf FaultKind
	if drawnBinFull {
		gf = FaultBinFull
	}
	if !present {
		if gf != "" {
			c.mu.Lock()
			c.unit(item).GateFault = gf
			c.mu.Unlock()
		}
		return
	}
	pass := ok && v.Result == 1
	var o GateOutcome
	switch {
	case pass && c.pendLate > 0:
		c.pendLate--
		o, gf = GateRejected, FaultLatePass
	case pass:
		o = GatePassed
	case c.binFull:
		o = GateBinFull
	case c.pendRejFail > 0:
		c.pendRejFail--
		o, gf = GateRejectFailed, FaultRejectFailed
	default:
		o = GateRejected
	}
	if o == GateRejected {
		c.bin = append(c.bin, item)
	}
	c.mu.Lock()
	u := c.unit(item)
	switch {
	case !ok:
		u.Verdict = "none"
	case v.Result == 1:
		u.Verdict = "pass"
	default:
		u.Verdict, u.Reason = "reject", v.Reason
	}
	u.Gate, u.GateFault = o, gf
	switch o {
	case GatePassed:
		u.Fate = FateGood
	case GateRejected:
		u.Fate = FateRejected
	default:
		u.Fate = FateEscaped
	}
	good, code := u.Fate == FateGood, u.Code
	c.mu.Unlock()
	c.plc.gateOutcome(item, o, ok)
	if o.Escaped() {
		c.log.Warn("unit escaped the reject gate", "item", item, "outcome", o)
	}
	if good && len(c.cfg.Ratios) > 0 {
		c.addChild(0, code, item, now)
	}
}

// addChild puts a child (a unit's code, or a labelled group's label) into
// the open group of level index li (0 = level 2).
func (c *conveyor) addChild(li int, code string, id uint32, now time.Time) {
	c.mu.Lock()
	g := c.open[li]
	if g == nil {
		c.nextG++
		g = &GroupTruth{ID: c.nextG, Level: li + 2, State: groupFilling}
		c.groups = append(c.groups, g)
		c.open[li] = g
	}
	g.Children = append(g.Children, code)
	g.Items = append(g.Items, id)
	if li == 0 {
		c.unit(id).Group = g.ID
	} else {
		for _, ch := range c.groups {
			if ch.ID == id {
				ch.Parent = g.ID
			}
		}
	}
	full := len(g.Children) >= c.cfg.Ratios[li]
	if full {
		c.open[li] = nil
	}
	c.mu.Unlock()
	if full {
		c.readGroup(li, g, now)
	}
}

// labelWait is a group at the labeller.
type labelWait struct {
	li       int // level index (0 = level 2)
	lab      int // its labeller (index into conveyor.labs; -1: none)
	g        *GroupTruth
	deadline time.Time
	misapply bool // label-misapply drawn: its first label falls off
	noread   bool // label-noread drawn: the scanner misses its label
	lost     bool // its first label fell off already
	purged   bool // taken off the line by a purge before it reached the labeller
}

// readGroup: the aggregation camera reads the closed group, which then
// moves on to the labeller.
func (c *conveyor) readGroup(li int, g *GroupTruth, now time.Time) {
	c.mu.Lock()
	g.State = groupRead
	codes := append([]string(nil), g.Children...)
	c.mu.Unlock()
	if li < len(c.dev.AggCameras) && c.dev.AggCameras[li] != nil {
		c.dev.AggCameras[li].Read(g.ID, codes)
	}
	lab, ok := c.layout.Printer(li)
	if !ok {
		lab = -1
	}
	w := &labelWait{li: li, lab: lab, g: g, deadline: now.Add(c.cfg.Positions.Labeler + c.cfg.LabelTimeout)}
	c.pending++
	c.transit = append(c.transit, w)
	c.at(now.Add(c.cfg.Positions.Labeler), func(t time.Time) {
		if w.purged {
			return // the operator's purge took it off on its way (purge)
		}
		c.transit = slices.DeleteFunc(c.transit, func(x *labelWait) bool { return x == w })
		c.drawLabelFaults(w)
		if w.lab < 0 {
			c.pending--
			c.leaveUnlabelled(w.g, "group left unlabelled: its level has no labeller")
			return
		}
		c.labs[w.lab].q = append(c.labs[w.lab].q, w)
		c.serveLabeller(w.lab, t)
	})
}

// drawLabelFaults draws the label faults for a group reaching the labeller
// (every rate fault draws for every group, in the order groups arrive).
func (c *conveyor) drawLabelFaults(w *labelWait) {
	for _, f := range c.cfg.Faults {
		if !f.Kind.IsLabelFault() {
			continue
		}
		hit := f.At == w.g.ID
		if f.Rate > 0 {
			hit = c.lrng.Float64() < f.Rate && w.g.ID > f.After
		}
		if !hit {
			continue
		}
		switch f.Kind {
		case FaultLabelMisapply:
			w.misapply = true
		case FaultLabelNoRead:
			w.noread = true
		}
	}
}

// serveLabeller applies the labels labeller k's printer printed to the
// groups waiting at it, first come first served; a group whose deadline
// passed leaves unlabelled.
func (c *conveyor) serveLabeller(k int, t time.Time) {
	lab := &c.labs[k]
	for len(lab.q) > 0 {
		w := lab.q[0]
		if lb, ok := c.nextLabel(k); ok {
			if w.misapply && !w.lost {
				// The label falls off and is thrown away: this group takes
				// the next one printed, and every later group at this
				// labeller is one off.
				w.lost = true
				lab.shift++
				c.mu.Lock()
				w.g.LabelLost = labelName(lb)
				w.g.LabelFaults = append(w.g.LabelFaults, FaultLabelMisapply)
				c.mu.Unlock()
				c.log.Warn("label fell off at the labeller", "group", w.g.ID, "label", labelName(lb))
				continue
			}
			lab.q = lab.q[1:]
			c.pending--
			c.applyLabel(w, lb, lab.shift > 0, t)
			continue
		}
		if t.Before(w.deadline) {
			break
		}
		lab.q = lab.q[1:]
		c.pending--
		if lab.shift > 0 {
			// The label it would have taken goes on the next group: one
			// lost label made up.
			lab.shift--
		}
		c.leaveUnlabelled(w.g, "group left unlabelled")
	}
	if len(lab.q) > 0 && !lab.tick {
		lab.tick = true
		c.at(t.Add(10*time.Millisecond), func(t time.Time) {
			c.labs[k].tick = false
			c.serveLabeller(k, t)
		})
	}
}

func labelName(lb Label) string {
	if lb.Code != "" {
		return lb.Code
	}
	return "(no code) " + lb.Text
}

func (c *conveyor) leaveUnlabelled(g *GroupTruth, msg string) {
	c.mu.Lock()
	g.State = groupDone
	c.mu.Unlock()
	c.log.Warn(msg, "group", g.ID, "level", g.Level)
}

// applyLabel sticks lb on the group, sends it on to the next level and, a
// little further on, past the label scanner.
func (c *conveyor) applyLabel(w *labelWait, lb Label, misapplied bool, t time.Time) {
	g, li := w.g, w.li
	c.mu.Lock()
	g.Label, g.Text, g.State = lb.Code, lb.Text, groupDone
	g.Misapplied = misapplied
	children := append([]string(nil), g.Children...)
	c.mu.Unlock()
	// A label without a code (REWORK) diverts the group off the line to
	// manual rework; it goes no further up.
	if li+1 < len(c.cfg.Ratios) && lb.Code != "" {
		c.addChild(li+1, lb.Code, g.ID, t)
	}
	c.pending++
	c.at(t.Add(c.cfg.Positions.LabelScanner), func(time.Time) {
		c.pending--
		c.scan(w, lb.Code, children)
	})
}

// scan: the labelled group passes the label scanner, which reads the label
// and the children and publishes one result.
func (c *conveyor) scan(w *labelWait, label string, children []string) {
	if w.li >= len(c.dev.LabelScanners) || c.dev.LabelScanners[w.li] == nil {
		return
	}
	g := w.g
	c.mu.Lock()
	if w.noread && label != "" {
		label = ""
		g.LabelFaults = append(g.LabelFaults, FaultLabelNoRead)
	}
	g.Scanned = ScanCodes(label, children)
	g.LabelRead = label != ""
	c.mu.Unlock()
	c.dev.LabelScanners[w.li].Scan(g.ID, label, children)
}

// ScanCodes is what a label scanner publishes for a group: the label read
// first ("" = none read: left out), then the children's codes read through
// the top (empty ones left out).
func ScanCodes(label string, children []string) []string {
	codes := make([]string, 0, 1+len(children))
	if label != "" {
		codes = append(codes, label)
	}
	for _, ch := range children {
		if ch != "" {
			codes = append(codes, ch)
		}
	}
	return codes
}

// PurgeReport is what the operator's purge took off the line.
type PurgeReport struct {
	// Groups taken off for rework (ids, oldest first): those waiting at
	// the labeller and those between the aggregation camera and the
	// labeller — read by the camera, never labelled.
	Groups []uint32 `json:"groups_reworked"`
	// Labels printed but not applied, thrown away (codes; "(no code) text"
	// for a label without one).
	Labels []string `json:"labels_discarded"`
	// Bin is the reject bin, emptied too.
	Bin BinReport `json:"bin"`
}

// BinReport is what emptying the reject bin took out.
type BinReport struct {
	Units   int      `json:"units"`
	Items   []uint32 `json:"items"`    // item ids, in the order they were rejected
	WasFull bool     `json:"was_full"` // the bin was full (fault bin-full)
}

// purge is the operator clearing the line after the controller restarted:
// groups read by an aggregation camera but not yet labelled (at the
// labeller or on their way to it) are taken off for rework, labels printed
// but not yet applied are thrown away, so that the next label goes on the
// next group the controller packs, and the reject bin is emptied. Runs on
// the conveyor goroutine.
func (c *conveyor) purge() PurgeReport {
	rep := PurgeReport{Groups: []uint32{}, Labels: []string{}}
	var waiting []*labelWait
	for k := range c.labs {
		waiting = append(waiting, c.labs[k].q...)
		c.labs[k].q = nil
	}
	// Oldest first, across the labellers.
	slices.SortStableFunc(waiting, func(a, b *labelWait) int { return cmp.Compare(a.g.ID, b.g.ID) })
	for _, w := range waiting {
		c.pending--
		rep.Groups = append(rep.Groups, w.g.ID)
		c.leaveUnlabelled(w.g, "group purged unlabelled")
	}
	for _, w := range c.transit {
		w.purged = true
		c.pending--
		rep.Groups = append(rep.Groups, w.g.ID)
		c.leaveUnlabelled(w.g, "group purged on its way to the labeller")
	}
	c.transit = nil
	for k := range c.labs {
		for {
			lb, ok := c.nextLabel(k)
			if !ok {
				break
			}
			rep.Labels = append(rep.Labels, labelName(lb))
		}
		c.labs[k].shift = 0
	}
	rep.Bin = c.emptyBin()
	c.log.Info("line purged", "groups_reworked", len(rep.Groups), "labels_discarded", len(rep.Labels), "bin", rep.Bin.Units)
	return rep
}

// emptyBin is the operator emptying the reject bin (conveyor goroutine).
func (c *conveyor) emptyBin() BinReport {
	rep := BinReport{Units: len(c.bin), Items: append([]uint32{}, c.bin...), WasFull: c.binFull}
	c.bin = nil
	if c.binFull {
		c.log.Info("reject bin emptied", "units", rep.Units)
	}
	c.binFull = false
	c.plc.setBinFull(false)
	return rep
}

// nextLabel takes the oldest label labeller k's printer printed and not
// yet applied.
func (c *conveyor) nextLabel(k int) (Label, bool) {
	if k >= len(c.dev.Labels) || c.dev.Labels[k] == nil {
		return Label{}, false
	}
	return c.dev.Labels[k].NextLabel()
}

// checkDone closes done once the infeed has stopped after Units and every
// unit and group has left the line; open groups are closed as partial.
func (c *conveyor) checkDone() {
	if c.closed || c.infeed || c.cfg.Units == 0 || int(c.spawned) < c.cfg.Units || c.pending > 0 {
		return
	}
	// Close partial groups, lowest level first; their labels may feed the
	// next level, which then needs another pass.
	for li := range c.open {
		c.mu.Lock()
		g := c.open[li]
		if g != nil {
			g.Partial = true
			c.open[li] = nil
		}
		c.mu.Unlock()
		if g != nil {
			c.readGroup(li, g, time.Now())
			return
		}
	}
	c.closed = true
	close(c.done)
}

// truth snapshots the ground truth.
func (c *conveyor) truth() GroundTruth {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := GroundTruth{Seed: c.cfg.Seed, Rate: c.cfg.Rate, Ratios: c.cfg.Ratios, Infeed: c.fed.rated(), Units: append([]UnitTruth(nil), c.units...)}
	byID := map[uint32]*GroupTruth{}
	for _, gr := range c.groups {
		cp := *gr
		cp.Children = append([]string(nil), gr.Children...)
		cp.Items = append([]uint32(nil), gr.Items...)
		cp.Scanned = slices.Clone(gr.Scanned) // nil = not scanned, [] = scanned, nothing read
		cp.LabelFaults = slices.Clone(gr.LabelFaults)
		g.Groups = append(g.Groups, cp)
		byID[gr.ID] = gr
	}
	for i := range g.Units {
		u := &g.Units[i]
		for gid := u.Group; gid != 0; {
			gr := byID[gid]
			if gr == nil || gr.Label == "" {
				break
			}
			u.Parents = append(u.Parents, gr.Label)
			gid = gr.Parent
		}
	}
	sortGroups(g.Groups)
	select {
	case <-c.done:
		g.Finished = true
	default:
	}
	return g
}
