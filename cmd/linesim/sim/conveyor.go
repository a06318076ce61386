package sim

import (
	"container/heap"
	"context"
	"log/slog"
	"math/rand/v2"
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
// good ones. All belt logic runs on one goroutine (run); truth is guarded
// by mu for readers.
type conveyor struct {
	cfg    Config
	log    *slog.Logger
	rng    *rand.Rand
	plc    *plcModel
	dev    *Devices
	faults linkFaulter

	h        eventHeap
	seq      uint64
	interval time.Duration
	spawned  uint32
	pending  int // unit and group events still to come
	infeed   bool
	wake     chan struct{}
	feed     chan int
	purgeC   chan chan struct{}
	purges   int // purges so far; a group read before one leaves unlabelled

	mu     sync.Mutex
	units  []UnitTruth
	groups []*GroupTruth
	open   []*GroupTruth // the group being filled, per level
	nextG  uint32
	done   chan struct{}
	closed bool
}

func newConveyor(cfg Config, log *slog.Logger, plc *plcModel, dev *Devices, lf linkFaulter, done chan struct{}) *conveyor {
	return &conveyor{
		cfg: cfg, log: log, plc: plc, dev: dev, faults: lf,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		interval: time.Duration(float64(time.Minute) / cfg.Rate),
		open:     make([]*GroupTruth, len(cfg.Ratios)),
		wake:     make(chan struct{}, 1),
		feed:     make(chan int, 16),
		purgeC:   make(chan chan struct{}),
		done:     done,
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
		c.at(start, c.spawnNext)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		for c.h.Len() > 0 && !c.h[0].at.After(now) {
			e := heap.Pop(&c.h).(event)
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
			c.purge()
			close(done)
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
	if c.plc.stopRequested() {
		// The controller asked for a stop: the infeed halts, units on the
		// belt run out; the infeed resumes when the request is cleared.
		if c.plc.State().Running {
			c.plc.setRunning(false)
		}
		c.at(now.Add(c.interval), c.spawnNext)
		return
	}
	if !c.plc.State().Running {
		c.plc.setRunning(true)
	}
	c.spawn(now)
	c.at(now.Add(c.interval), c.spawnNext)
}

// spawn puts one unit on the belt at the trigger.
func (c *conveyor) spawn(now time.Time) {
	c.spawned++
	item := c.spawned
	fault := c.pickFault(item, now)
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

// pickFault draws the unit fault (at most one per unit, first listed wins)
// and starts link faults that are due at this item. Every rate fault draws
// from the RNG for every unit, so a run is reproducible from its seed.
func (c *conveyor) pickFault(item uint32, now time.Time) FaultKind {
	var got FaultKind
	for _, f := range c.cfg.Faults {
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
		if c.faults != nil {
			k, d := f.Kind, f.Delay
			c.log.Info("link fault", "kind", k, "item", item, "for", f.For)
			c.faults.linkFault(k, true, d)
			c.at(now.Add(f.For), func(time.Time) { c.faults.linkFault(k, false, 0) })
		}
	}
	return got
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

func (c *conveyor) gate(item uint32, now time.Time) {
	c.mu.Lock()
	present := c.unit(item).Fate != FateMissing
	c.mu.Unlock()
	v, ok := c.plc.atGate(item, present)
	if !present {
		return
	}
	c.mu.Lock()
	u := c.unit(item)
	switch {
	case !ok:
		u.Verdict, u.Fate = "none", FateRejected
	case v.Result == 1:
		u.Verdict, u.Fate = "pass", FateGood
	default:
		u.Verdict, u.Reason, u.Fate = "reject", v.Reason, FateRejected
	}
	good, code := u.Fate == FateGood, u.Code
	c.mu.Unlock()
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

// readGroup: the aggregation camera reads the closed group, then the
// labeller waits for a printed label.
func (c *conveyor) readGroup(li int, g *GroupTruth, now time.Time) {
	c.mu.Lock()
	g.State = groupRead
	codes := append([]string(nil), g.Children...)
	c.mu.Unlock()
	if li < len(c.dev.AggCameras) && c.dev.AggCameras[li] != nil {
		c.dev.AggCameras[li].Read(g.ID, codes)
	}
	deadline := now.Add(c.cfg.Positions.Labeler + c.cfg.LabelTimeout)
	c.pending++
	gen := c.purges
	var try func(time.Time)
	try = func(t time.Time) {
		if c.purges != gen {
			// The operator purged the line: the group was taken off for
			// rework before a label reached it.
			c.pending--
			c.mu.Lock()
			g.State = groupDone
			c.mu.Unlock()
			c.log.Warn("group purged unlabelled", "group", g.ID, "level", g.Level)
			return
		}
		if lb, ok := c.nextLabel(); ok {
			c.pending--
			c.mu.Lock()
			g.Label, g.Text, g.State = lb.Code, lb.Text, groupDone
			c.mu.Unlock()
			// A label without a code (REWORK) diverts the group off the
			// line to manual rework; it goes no further up.
			if li+1 < len(c.cfg.Ratios) && lb.Code != "" {
				c.addChild(li+1, lb.Code, g.ID, t)
			}
			return
		}
		if !t.Before(deadline) {
			c.pending--
			c.mu.Lock()
			g.State = groupDone // leaves the line unlabelled
			c.mu.Unlock()
			c.log.Warn("group left unlabelled", "group", g.ID, "level", g.Level)
			return
		}
		c.at(t.Add(10*time.Millisecond), try)
	}
	c.at(now.Add(c.cfg.Positions.Labeler), try)
}

// purge is the operator clearing the line after the controller restarted:
// groups waiting at the labeller are taken off for rework, and labels
// printed but not yet applied are thrown away, so that the next label goes
// on the next group the controller packs. Runs on the conveyor goroutine.
func (c *conveyor) purge() {
	c.purges++
	n := 0
	for {
		if _, ok := c.nextLabel(); !ok {
			break
		}
		n++
	}
	c.log.Info("line purged", "labels_discarded", n)
}

func (c *conveyor) nextLabel() (Label, bool) {
	if c.dev.Labels == nil {
		return Label{}, false
	}
	return c.dev.Labels.NextLabel()
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
	g := GroundTruth{Seed: c.cfg.Seed, Rate: c.cfg.Rate, Ratios: c.cfg.Ratios, Units: append([]UnitTruth(nil), c.units...)}
	byID := map[uint32]*GroupTruth{}
	for _, gr := range c.groups {
		cp := *gr
		cp.Children = append([]string(nil), gr.Children...)
		cp.Items = append([]uint32(nil), gr.Items...)
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
