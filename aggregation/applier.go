package aggregation

// The applier: Badger behind the redo log.
//
// A group is durable, and its callers are answered, once its redo record is
// fdatasync'ed (redo.go): the record holds every key the group set or
// deleted, with its full value, and Open replays the records Badger lacks.
// Badger is the projections' index, not the durability point, so the
// committer does not wait for it. Landed groups queue here, and one
// goroutine commits them to Badger (unsynced) several at a time, in order,
// in one transaction per batch of groups: a key that several of them wrote
// (a code allocated, sent and commissioned within a few milliseconds) goes
// into Badger's memtable and log once, not once per group.
//
// Who sees what:
//   - the committer reads through its snapshot plus s.pend, the latest write
//     of every key a group sent may have made and its snapshot may lack;
//   - every other reader first waits until Badger holds every group landed
//     before it asked (Store.caughtUp), so that a caller who was answered
//     reads what it wrote;
//   - a checkpoint of the redo log names a record only once Badger holds
//     every record before it (redoLog.badgerHas).
//
// Each group's writes include its redo LSN (keyRedo): a batch that Badger
// holds after a crash says, by its last group's LSN, where replay starts.
//
// Cached code records wait here (deferred). A code record written while
// the committer's cache holds the code (written.hot: allocated, sent or
// printed) is not given to Badger until a later write of the same key
// replaces it — the code's commission, usually within a second, which
// alone then goes to Badger: one key per code, not two or three. Nobody
// needs the waiting ones from Badger meanwhile:
//   - the committer reads a cached code from its cache only (wtx.lookup).
//     A code leaves the cache only by a later write of the same key
//     (putRec), which the committer reads from s.pend until Badger has it,
//     or all at once when a failed group empties the cache (drop): the
//     cache's epoch then changes, the applier defers no write of an older
//     epoch, and drop waits until Badger holds every deferred one
//     (flushNow);
//   - every other reader waits until Badger holds every write of the
//     groups landed before it asked (completeG), which writes them out;
//   - a checkpoint names a record only once Badger holds every write of
//     the records before it: badgerHas gets the record before the oldest
//     group whose write waits, and the checkpointer has the applier write
//     those of the records before the one it names (hurryFlush).
// The redo log holds every deferred write until then: a crash replays them.
// What waits is bounded by the cache (hotMax codes) and the groups queued:
// a code that left the cache has its replacing write in a later group.
// A store with no redo log (NoSync, in memory) defers nothing.

import (
	"errors"
	"fmt"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// applyGroup is a landed group on its way to Badger.
type applyGroup struct {
	g           uint64 // the group's number (Store.gseq)
	seq         uint64 // its last event's seq
	lsn         uint64 // its redo record (0: none, NoSync)
	log         []written
	count, size int64 // as Badger counts a transaction (wtx.set)
}

// pendW is the latest write of a key that Badger's snapshot may lack.
type pendW struct {
	v   []byte
	del bool
	g   uint64 // the group that wrote it
}

// Bounds of what waits for Badger: the committer waits for the applier
// beyond them (the time counts as settle). maxPendKeys also bounds
// s.pend's table, which a Go map keeps at its largest: at 512k keys a
// 1M-code import left it (and the queued logs) big enough that the 1M
// bench under its 384 MB limit collected without pause; at 128k the full
// load ran 100–105k transitions/s against 73–87k (session 9, interleaved
// runs). A full load at 100k units does not reach it.
const maxLagGroups = 1024

var maxPendKeys = 1 << 17 // a variable for tests

// applyWindow is how long the applier gathers landed groups before it
// commits them (unless a reader or the committer waits for Badger).
var applyWindow = 500 * time.Millisecond

type applier struct {
	s    *Store
	mu   sync.Mutex
	cond *sync.Cond

	queue      []applyGroup
	landed     uint64 // the last group handed over
	applied    uint64 // the last group Badger took (its cached records may wait: deferred)
	appliedSeq uint64 // the last event seq Badger took
	completeG  uint64 // Badger holds every write of the groups up to this one
	snap       *badger.Txn
	snapG      uint64 // the groups snap holds (snap opened after they were committed)
	snapV      uint64 // snap's number: a flush makes a newer snapshot of the same groups
	err        error
	stopping   bool
	exited     chan struct{}
	// flushTo asks the applier to give Badger the deferred records of the
	// redo records before it (allRecords: every one); fullFlushes counts
	// the flushes of every one (after flushTo was set, nothing being
	// committed).
	flushTo     uint64
	fullFlushes uint64
	// flushAfter: a flush for the checkpointer waits until the groups of
	// the redo records before it are in (hurryFlush).
	flushAfter uint64

	// The applier goroutine's own: the deferred code records (key → the
	// latest write), and the oldest group, and its redo record, whose
	// write may be among them.
	deferred     map[string]deferW
	deferFromG   uint64
	deferFromLSN uint64
	appliedLSN   uint64 // the redo record of the last group Badger took
	// kick ends the applier's gathering at once: a reader or the
	// committer waits for Badger. flushKick interrupts it for a flush
	// only (flushNow).
	kick, flushKick chan struct{}
	window          time.Duration

	batches, groups, keysIn, keysOut uint64 // counters (Stats)
	deferredIn, deferredOut          uint64 // records held back, and written by flushes
	busy                             time.Duration
}

// deferW is a deferred code record: the write, its group and redo record.
type deferW struct {
	w      written
	g, lsn uint64
}

// allRecords asks for a flush of every deferred record.
const allRecords = ^uint64(0)

func newApplier(s *Store, seq uint64) *applier {
	a := &applier{s: s, exited: make(chan struct{}), kick: make(chan struct{}, 1), flushKick: make(chan struct{}, 1), appliedSeq: seq, window: applyWindow, deferred: map[string]deferW{}}
	a.cond = sync.NewCond(&a.mu)
	go a.run()
	return a
}

// hurry ends the applier's gathering.
func (a *applier) hurry() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// push hands over a landed group (in order).
func (a *applier) push(g applyGroup) {
	a.mu.Lock()
	a.queue = append(a.queue, g)
	a.landed = g.g
	if len(a.queue) >= maxLagGroups/2 {
		a.hurry()
	}
	a.cond.Broadcast()
	a.mu.Unlock()
}

// hurryFlush ends the applier's gathering and asks it to write the
// deferred records of the redo records before lsn once it has committed
// the groups of the records before after: the checkpointer, which needs
// Badger to hold them before it names lsn. Until then a later write of a
// code may still replace its held-back record (redo.go, the lag).
func (a *applier) hurryFlush(lsn, after uint64) {
	a.mu.Lock()
	a.askFlush(lsn)
	a.flushAfter = max(a.flushAfter, after)
	a.mu.Unlock()
	a.hurry()
}

// flushReady reports whether the flush asked for is due (a.mu held): a
// flush of every record at once; one for the checkpointer once the groups
// of the records before flushTo and flushAfter are in.
func (a *applier) flushReady() bool {
	if a.flushTo == 0 {
		return false
	}
	return a.flushTo == allRecords || a.appliedLSN+1 >= max(a.flushTo, a.flushAfter)
}

// askFlush asks for a flush of the deferred records before lsn (a.mu held).
func (a *applier) askFlush(lsn uint64) {
	if lsn > a.flushTo {
		a.flushTo = lsn
		a.cond.Broadcast()
	}
}

// waitFor waits until Badger holds every write of group g and of the
// groups before it (or the applier failed).
func (a *applier) waitFor(g uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.completeG < g && a.err == nil && !a.hasExited() {
		if a.applied >= g {
			// Held-back records are written once the groups are in:
			// before, a flush would write records the groups queued are
			// about to replace.
			a.askFlush(allRecords)
		}
		a.hurry()
		a.cond.Wait()
	}
	if a.completeG < g {
		if a.err != nil {
			return a.err
		}
		return ErrClosed
	}
	return nil
}

// hasExited reports whether run has returned.
func (a *applier) hasExited() bool {
	select {
	case <-a.exited:
		return true
	default:
		return false
	}
}

// flushNow waits until Badger holds every deferred record, those of a
// commit under way included (drop: the committer's cache is gone, so the
// committer will read those codes from Badger). The groups queued may
// still wait for the gathering.
func (a *applier) flushNow() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.fullFlushes
	a.askFlush(allRecords)
	select {
	case a.flushKick <- struct{}{}:
	default:
	}
	for a.fullFlushes == n && a.err == nil && !a.hasExited() {
		a.cond.Wait()
	}
	if a.fullFlushes == n {
		if a.err != nil {
			return a.err
		}
		return ErrClosed
	}
	return nil
}

// lagging reports whether the committer should wait for Badger: too many
// groups queued, or too many keys only in s.pend.
func (a *applier) lagging(pend int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err == nil && (len(a.queue) > maxLagGroups || pend > maxPendKeys && len(a.queue) > 0)
}

// waitLess waits until fewer groups are queued than now (or the applier
// failed).
func (a *applier) waitLess() {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.queue)
	a.hurry()
	for len(a.queue) >= n && n > 0 && a.err == nil {
		a.cond.Wait()
	}
}

// takeSnap gives the committer the newest snapshot, if newer than the
// one it has (hasV): the transaction, the groups it holds and its number.
func (a *applier) takeSnap(hasV uint64) (*badger.Txn, uint64, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.snap == nil || a.snapV <= hasV {
		return nil, 0, 0
	}
	t, g := a.snap, a.snapG
	a.snap = nil
	return t, g, a.snapV
}

// seqHeld is the last event seq Badger holds; a snapshot opened after the
// call holds at least that.
func (a *applier) seqHeld() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.appliedSeq
}

// close commits what is queued, at once (no gathering), and stops.
func (a *applier) close() error {
	a.mu.Lock()
	a.stopping = true
	a.cond.Broadcast()
	a.mu.Unlock()
	a.hurry()
	<-a.exited
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.snap != nil {
		a.snap.Discard()
		a.snap = nil
	}
	return a.err
}

func (a *applier) run() {
	defer func() {
		a.mu.Lock()
		close(a.exited)
		a.cond.Broadcast()
		a.mu.Unlock()
	}()
	for {
		a.mu.Lock()
		for len(a.queue) == 0 && !a.stopping && !a.flushReady() {
			a.cond.Wait()
		}
		if a.flushReady() || len(a.queue) == 0 {
			// A flush asked for (before the groups queued: they may wait
			// for the gathering), or the last one before stopping.
			stop := a.stopping && len(a.queue) == 0
			if stop {
				a.flushTo = allRecords
			}
			a.mu.Unlock()
			if !a.flush() || stop {
				return
			}
			continue
		}
		if !a.stopping && a.window > 0 && len(a.queue) < maxLagGroups/2 && a.flushTo == 0 {
			// Gather groups for a while: a key several of them write
			// goes to Badger once.
			a.mu.Unlock()
			t := time.NewTimer(a.window)
			flushFirst := false
			select {
			case <-a.kick:
			case <-t.C:
			case <-a.flushKick:
				flushFirst = true
			}
			t.Stop()
			if flushFirst {
				continue // the flush, then the gathering again
			}
			a.mu.Lock()
		}
		// Whole groups, as many as one transaction takes.
		n := 0
		var count, size int64
		for n < len(a.queue) {
			g := a.queue[n]
			if n > 0 && !txnFits(a.s.db, count+g.count, size+g.size) {
				break
			}
			count, size = count+g.count, size+g.size
			n++
		}
		batch := a.queue[:n:n]
		a.mu.Unlock()

		t0 := time.Now()
		err := a.commit(batch)
		last := batch[n-1]
		a.mu.Lock()
		a.busy += time.Since(t0)
		a.queue = a.queue[n:]
		if err == nil {
			a.groups += uint64(n)
		}
		a.mu.Unlock()
		if !a.publish(err, last) {
			return
		}
	}
}

// publish publishes what a commit (err: its outcome) leaves Badger holding,
// last being the newest group it took; false if it failed.
func (a *applier) publish(err error, last applyGroup) bool {
	if err != nil {
		// The store refuses writes before anyone waiting learns of the
		// failure: a reader told "Badger failed" must not then see its
		// next write accepted (s.fail takes s.mu, which is taken before
		// a.mu elsewhere, so not under a.mu).
		a.s.fail(err)
		a.mu.Lock()
		// Nothing more is committed: the log keeps the groups for the
		// next Open.
		a.err, a.queue = err, nil
		a.cond.Broadcast()
		a.mu.Unlock()
		return false
	}
	// Opened now, nothing being committed: Badger does not make it wait,
	// and it holds every group committed.
	snap := a.s.db.NewTransaction(false)
	if last.lsn > 0 {
		a.appliedLSN = last.lsn
	}
	complete, held := last.g, a.appliedLSN
	if len(a.deferred) > 0 {
		complete, held = a.deferFromG-1, a.deferFromLSN-1
	}
	a.mu.Lock()
	if last.g > a.applied {
		a.batches++
	}
	a.applied, a.appliedSeq = max(a.applied, last.g), max(a.appliedSeq, last.seq)
	a.completeG = max(a.completeG, complete)
	if a.snap != nil {
		a.snap.Discard()
	}
	a.snapV++
	a.snap, a.snapG = snap, a.applied
	a.cond.Broadcast()
	a.mu.Unlock()
	if r := a.s.redo; r != nil && held > 0 {
		r.badgerHas(held)
	}
	return true
}

// flush gives Badger the deferred records asked for (flushTo), in as many
// transactions as they need, and counts a flush of all (flushNow); false
// if a commit failed.
func (a *applier) flush() bool {
	a.mu.Lock()
	to := a.flushTo
	a.flushTo, a.flushAfter = 0, 0
	last := applyGroup{g: a.applied, seq: a.appliedSeq}
	a.mu.Unlock()
	if len(a.deferred) > 0 {
		t0 := time.Now()
		err := a.commitDeferred(to)
		last.lsn = a.appliedLSN
		a.mu.Lock()
		a.busy += time.Since(t0)
		a.mu.Unlock()
		if !a.publish(err, last) {
			return false
		}
	}
	if to == allRecords {
		a.mu.Lock()
		a.fullFlushes++
		a.cond.Broadcast()
		a.mu.Unlock()
	}
	return true
}

// commit writes the groups' writes as one transaction: each key's last,
// unless it is a cached code record, which waits (deferred).
func (a *applier) commit(batch []applyGroup) error {
	txn := a.s.db.NewTransaction(true)
	defer txn.Discard()
	in, out, held := 0, 0, 0
	// The writes in order, each replacing the key's earlier ones: Badger's
	// transaction keeps a key's last write only (its pending writes are a
	// map), so a key several groups of the batch wrote goes to Badger once
	// without a map of our own. A code record held back (deferred) and
	// written again later in the batch leaves a.deferred; one written and
	// then held back goes to Badger at its earlier state, replaced later as
	// any held-back record's older state is.
	defers := a.s.redo != nil
	for _, g := range batch {
		in += len(g.log)
		for _, w := range g.log {
			if w.hot && defers && g.lsn > 0 && w.epoch == a.s.hot.epoch.Load() {
				if len(a.deferred) == 0 {
					a.deferFromG, a.deferFromLSN = g.g, g.lsn
				}
				a.deferred[keyString(w.k)] = deferW{w, g.g, g.lsn}
				held++
				continue
			}
			if len(a.deferred) > 0 {
				delete(a.deferred, keyString(w.k))
			}
			var err error
			if w.del {
				err = txn.Delete(w.k)
			} else {
				err = txn.Set(w.k, w.v)
			}
			if err != nil {
				return fmt.Errorf("ledger: badger: group %d: %w", g.g, err)
			}
			out++
		}
	}
	if len(a.deferred) == 0 {
		a.deferFromG, a.deferFromLSN = 0, 0
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("ledger: badger commit of groups %d–%d: %w", batch[0].g, batch[len(batch)-1].g, err)
	}
	a.mu.Lock()
	a.keysIn += uint64(in)
	a.keysOut += uint64(out)
	a.deferredIn += uint64(held)
	a.mu.Unlock()
	return nil
}

// commitDeferred writes the deferred records of the redo records before
// lsn, in as many transactions as Badger's limits need, and forgets them.
func (a *applier) commitDeferred(lsn uint64) error {
	txn := a.s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	n := 0
	var fromG, fromLSN uint64
	for k, d := range a.deferred {
		if d.lsn >= lsn {
			if fromG == 0 || d.g < fromG {
				fromG, fromLSN = d.g, d.lsn
			}
			continue
		}
		err := txn.Set(d.w.k, d.w.v)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err = txn.Commit(); err != nil {
				return fmt.Errorf("ledger: badger commit of cached code records: %w", err)
			}
			txn = a.s.db.NewTransaction(true)
			err = txn.Set(d.w.k, d.w.v)
		}
		if err != nil {
			return fmt.Errorf("ledger: badger: cached code records: %w", err)
		}
		delete(a.deferred, k)
		n++
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("ledger: badger commit of cached code records: %w", err)
	}
	if len(a.deferred) == 0 && n > 1<<16 {
		a.deferred = map[string]deferW{} // not kept at its largest
	}
	a.deferFromG, a.deferFromLSN = fromG, fromLSN
	a.mu.Lock()
	a.keysOut += uint64(n)
	a.deferredOut += uint64(n)
	a.mu.Unlock()
	return nil
}

// Settled waits until Badger holds every write acknowledged so far (the
// redo log holds them already: this is for benchmarks and tools that read
// Badger's files, not for durability).
func (s *Store) Settled() error { return s.caughtUp() }

// caughtUp waits until Badger holds every group that landed before the
// call: a reader then reads every write acknowledged before it asked.
func (s *Store) caughtUp() error {
	if s.ap == nil {
		return nil
	}
	s.mu.RLock()
	g := s.landedG
	s.mu.RUnlock()
	return s.ap.waitFor(g)
}
