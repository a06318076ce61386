package line

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// resolveLabels settles, at restart, parents whose label's fate the ledger
// does not know: a parent packed but with no label printed (the controller
// stopped between the two), or, where a scanner verifies labels, printed but
// never read on its group. Nobody can vouch for what label, if any, is on
// those groups, and the purge takes them off the line: each is unpacked
// (its children are loose again, for rework) and decommissioned. It returns
// how many parents it took out and the unit codes whose gate outcome was
// never journaled — listed after the unpacking: a unit packed at the stop
// whose outcome was not yet journaled is loose now, and its outcome, in the
// PLC's ring, must settle it (listed before, it was adopted only at the
// next restart, when the ring had moved on, and its pass taken back).
func (r *Runner) resolveLabels(ctx context.Context, sum aggregation.BatchSummary) (int, []aggregation.Unconfirmed, error) {
	list := func(level1 bool) ([]aggregation.Unconfirmed, error) {
		var found []aggregation.Unconfirmed
		if err := r.store.Unconfirmed(ctx, sum.Batch, func(u aggregation.Unconfirmed) error {
			if (u.Level == 1) == level1 {
				found = append(found, u)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("line runner: unconfirmed codes: %w", err)
		}
		return found, nil
	}
	parents, err := list(false)
	if err != nil {
		return 0, nil, err
	}
	// Highest level first: a parent inside another must be loose before it
	// can be decommissioned.
	sort.SliceStable(parents, func(i, j int) bool { return parents[i].Level > parents[j].Level })
	n := 0
	for _, p := range parents {
		why := "restart: the controller stopped between packing and printing the label; the group goes to rework at the purge"
		if p.LabelPrinted {
			why = "restart: the label was never verified on its group; the group goes to rework at the purge"
		}
		if err := r.takeOutParent(ctx, p.Code, why); err != nil {
			return n, nil, err
		}
		n++
	}
	if n > 0 {
		r.log.Warn("restart: parents with an unconfirmed label unpacked and decommissioned", "batch", sum.Batch, "parents", n)
	}
	units, err := list(true)
	return n, units, err
}

// takeOutParent unpacks a parent and decommissions it. A parent inside a
// parent is first taken out of it (that parent is taken out too: its
// count would be short).
func (r *Runner) takeOutParent(ctx context.Context, p tracecode.Code, why string) error {
	info, err := r.store.Lookup(ctx, p)
	if err != nil {
		return fmt.Errorf("line runner: %s: %w", p, err)
	}
	if info.Parent != "" {
		if err := r.takeOutParent(ctx, info.Parent, why); err != nil {
			return err
		}
	}
	if info.Children > 0 {
		if err := r.store.Unpack(ctx, p, why, system); err != nil && !errors.Is(err, aggregation.ErrRefused) {
			return fmt.Errorf("line runner: unpacking %s: %w", p, err)
		}
	}
	if err := r.store.Decommission(ctx, p, why, system); err != nil && !errors.Is(err, aggregation.ErrRefused) {
		return fmt.Errorf("line runner: decommissioning %s: %w", p, err)
	}
	return nil
}

// countersFrom rebuilds the line's counters of a batch from the ledger.
// Reject reasons of earlier runs are not in the ledger's counters: they
// are counted under "before-restart".
func countersFrom(sum aggregation.BatchSummary) Counters {
	c := Counters{RejectReason: map[string]uint64{}, Packed: map[string]uint64{}, Partial: map[string]uint64{}}
	for _, l := range sum.Levels {
		if l.Level == 1 {
			passed := l.Commissioned - l.Decommissioned
			rejected := l.Rejected + l.RejectedUnits + l.Decommissioned
			c.Passed, c.Rejected = uint64(max(passed, 0)), uint64(max(rejected, 0))
			c.Triggered = c.Passed + c.Rejected
			c.Sent, c.Printed = uint64(l.Sent), uint64(l.Printed)
			if rejected > 0 {
				c.RejectReason["before-restart"] = uint64(rejected)
			}
			c.Escaped = uint64(l.GateEscaped)
		} else {
			c.Packed[l.Level.String()] = uint64(l.FullParents + l.PartialParents)
			if l.PartialParents > 0 {
				c.Partial[l.Level.String()] = uint64(l.PartialParents)
			}
			c.LabelsVerified += uint64(l.LabelsVerified)
		}
		c.Voided += uint64(l.Voided)
	}
	return c
}

// waitDecided waits until unit item's verdict is journaled (a gate outcome
// or a take-back is journaled after it, never before).
func (r *Runner) waitDecided(ctx context.Context, item uint32) {
	if done := r.decided.take(item); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
}

// doneSet keeps, per unit, a channel closed when its verdict is journaled,
// for the last doneSetCap units: a unit whose gate outcome never comes
// (it fell off the line) must not be kept for ever, and a gate outcome
// arrives long before doneSetCap later units are decided.
type doneSet struct {
	mu    sync.Mutex
	m     map[uint32]chan struct{}
	order []uint32
}

const doneSetCap = 4096

func (d *doneSet) add(item uint32, done chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[uint32]chan struct{}{}
	}
	d.m[item] = done
	d.order = append(d.order, item)
	if len(d.order) > doneSetCap {
		delete(d.m, d.order[0])
		d.order = d.order[1:]
	}
}

func (d *doneSet) take(item uint32) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	done := d.m[item]
	delete(d.m, item)
	return done
}

// ledgerView is the batch's per-level reconciliation for the snapshot,
// read from the ledger at most every ledgerRefresh: not on every event of
// the line's loop.
type ledgerView struct {
	at     time.Time
	levels []aggregation.LevelSummary
}

const ledgerRefresh = 100 * time.Millisecond

func (v *ledgerView) get(ctx context.Context, store *aggregation.Store, batch string, now time.Time) []aggregation.LevelSummary {
	if v.levels == nil || now.Sub(v.at) >= ledgerRefresh {
		if sum, err := store.Summary(ctx, batch); err == nil {
			v.levels, v.at = sum.Levels, now
		}
	}
	return v.levels
}

// doConfirm carries out the actions of the physical line's confirmations.
func (r *Runner) doConfirm(ctx context.Context, a Action) {
	switch a := a.(type) {
	case AckGate:
		r.acks.seen(a.Seq)
	case ConfirmGate:
		r.acks.pending(a.Seq)
		r.jwg.Add(1)
		r.async(ctx, func(c context.Context) {
			defer r.jwg.Done()
			// Acknowledged to the PLC once journaled. A journal that fails
			// holds the line by its own fault; the outcome is acknowledged
			// all the same, so that a later batch is not held by it.
			defer r.acks.done(a.Seq)
			r.waitDecided(c, a.Item)
			plcDev := aggregation.Actor{Kind: aggregation.ActorDevice, ID: "plc-gate"}
			// Deferrable: the outcome rides with the next verdict's sync (the
			// PLC's ring holds 32 unacknowledged outcomes).
			if err := r.store.RecordGate(aggregation.Deferrable(c, recordDefer), r.cfg.Batch, uint64(a.Item), a.Code, aggregation.GateOutcome(a.Outcome.String()), plcDev); err != nil {
				r.log.Error("journal gate outcome", "item", a.Item, "code", a.Code, "outcome", a.Outcome.String(), "err", err)
				if !errors.Is(err, aggregation.ErrRefused) {
					r.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "ledger", Err: "journal gate outcome: " + err.Error()})
				}
			}
		})
	case TakeBack:
		r.jwg.Add(1)
		r.async(ctx, func(c context.Context) {
			defer r.jwg.Done()
			r.waitPrinted(c, a.Code)
			if err := r.store.Decommission(c, a.Code, a.Reason, system); err != nil {
				if info, lerr := r.store.Lookup(c, a.Code); errors.Is(err, aggregation.ErrRefused) && lerr == nil &&
					(info.State == aggregation.StateDecommissioned || info.State == aggregation.StateRejected || info.State == aggregation.StateVoided) {
					// Taken out already (the gate's outcome came after all
					// and rejected it): what the take-back wanted holds.
					r.log.Info("take back code: already out", "code", a.Code, "state", info.State)
					return
				}
				r.log.Error("take back code", "code", a.Code, "err", err)
			}
		})
	case LabelOK:
		r.jwg.Add(1)
		r.async(ctx, func(c context.Context) {
			defer r.jwg.Done()
			scanner := aggregation.Actor{Kind: aggregation.ActorDevice, ID: "label-scanner"}
			if err := r.store.RecordLabel(c, a.Parent, aggregation.LabelVerified, scanner); err != nil {
				r.log.Error("journal label verified", "parent", a.Parent, "err", err)
			}
		})
	case Divert:
		r.log.Warn("group to rework at the label scanner", "level", a.Level.String(), "parents", fmt.Sprint(a.Parents), "why", a.Reason)
		r.jwg.Add(1)
		r.async(ctx, func(c context.Context) {
			defer r.jwg.Done()
			for _, p := range a.Parents {
				if err := r.takeOutParent(c, p, "label scanner: "+a.Reason); err != nil {
					r.log.Error("divert group", "parent", p, "err", err)
				}
			}
		})
	}
}

// heartbeat writes the controller's heartbeat to the PLC until ctx ends.
// The PLC's watchdog stops the infeed when it stops changing: a dead or
// hung controller stops the line even though its last stop request said
// run.
func (r *Runner) heartbeat(ctx context.Context, a AliveSignaller) {
	heartbeat(ctx, a, r.cfg.AlivePeriod, r.log)
}

// GateAcker is an optional ability of a StateSignaller: it acknowledges the
// PLC's gate ring — the number of the last gate outcome the controller has
// journaled (every earlier one journaled or lost). A PLC that supports it
// holds the infeed rather than overwrite an outcome not acknowledged: a
// controller that dies, or lags, cannot lose a unit's outcome.
type GateAcker interface {
	AckGate(ctx context.Context, seq uint64) error
}

// gateAcks tracks which gate outcomes (by their number in the PLC's ring)
// still wait for their journal; the acknowledgement is the number before
// the oldest of them. Outcomes are registered in their order. nil: no
// tracking (a runner without a Line).
type gateAcks struct {
	mu    sync.Mutex
	pend  map[uint64]bool
	hi    uint64        // the highest outcome registered (0: none yet)
	moved chan struct{} // room for one: an outcome was journaled (run writes the acknowledgement)
}

func newGateAcks() *gateAcks {
	return &gateAcks{pend: map[uint64]bool{}, moved: make(chan struct{}, 1)}
}

// pending registers outcome seq as waiting for its journal. A number not
// above the last one means the PLC's ring restarted its count: what waited
// under the old numbering is forgotten.
func (g *gateAcks) pending(seq uint64) {
	if g == nil || seq == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if seq <= g.hi {
		clear(g.pend)
	}
	g.hi = seq
	g.pend[seq] = true
}

// done: outcome seq is journaled (or needs nothing).
func (g *gateAcks) done(seq uint64) {
	if g == nil || seq == 0 {
		return
	}
	g.mu.Lock()
	delete(g.pend, seq)
	g.mu.Unlock()
	select {
	case g.moved <- struct{}{}:
	default:
	}
}

// seen: outcome seq needs nothing journaled.
func (g *gateAcks) seen(seq uint64) {
	g.pending(seq)
	g.done(seq)
}

// acked is the number to acknowledge (ok false: nothing registered yet).
func (g *gateAcks) acked() (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hi == 0 {
		return 0, false
	}
	ack := g.hi
	for s := range g.pend {
		if s-1 < ack {
			ack = s - 1
		}
	}
	return ack, true
}

// run writes the acknowledgement as soon as it moves, at most once every
// gateAckGap (outcomes journaled meanwhile go with the next write: not one
// write per outcome, which would crowd the PLC link the verdicts share),
// and again gateAckRetry after a failed write, until ctx ends.
//
// The PLC holds the infeed while the outcomes not acknowledged and the
// units between the trigger and the gate would fill its ring (32 outcomes
// by default): the acknowledgement's lag is part of the line's speed. It
// was written every 100 ms until session 22: 16 outcomes late at 9,600
// units/min, which with the 16 units on a 100 ms trigger-to-gate belt
// filled the ring, so the simulated line could not run faster, and held
// its infeed now and then at 6,000 (docs/line.md, "The belt's rate and the
// gate ring's acknowledgement").
func (g *gateAcks) run(ctx context.Context, a GateAcker, log *slog.Logger) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var last uint64
	written, failing := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.moved:
		case <-retry.C:
		}
		ack, ok := g.acked()
		if !ok || written && ack == last && !failing {
			continue
		}
		c, cancel := context.WithTimeout(ctx, gateAckTimeout)
		err := a.AckGate(c, ack)
		cancel()
		switch {
		case err != nil:
			if !failing && ctx.Err() == nil {
				log.Warn("gate ring acknowledgement to the PLC", "ack", ack, "err", err)
			}
			failing = true
			retry.Reset(gateAckRetry)
		default:
			last, written, failing = ack, true, false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(gateAckGap):
		}
	}
}

// gateAckGap is the least time between two acknowledgements: at 16,000
// units/min (267 outcomes/s) one write carries 3 outcomes, and the PLC sees
// the acknowledgement 10 ms after the journal at most, not 100.
// gateAckRetry is the wait before a failed write is tried again (also when
// nothing more is journaled), gateAckTimeout a write's bound.
var (
	gateAckGap     = 10 * time.Millisecond // variables for tests
	gateAckRetry   = 100 * time.Millisecond
	gateAckTimeout = 400 * time.Millisecond
)
