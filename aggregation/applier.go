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

import (
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
const (
	maxLagGroups = 1024
	maxPendKeys  = 1 << 17
)

// applyWindow is how long the applier gathers landed groups before it
// commits them (unless a reader or the committer waits for Badger).
var applyWindow = 500 * time.Millisecond

type applier struct {
	s    *Store
	mu   sync.Mutex
	cond *sync.Cond

	queue      []applyGroup
	landed     uint64 // the last group handed over
	applied    uint64 // the last group Badger holds
	appliedSeq uint64 // the last event seq Badger holds
	snap       *badger.Txn
	snapG      uint64 // the groups snap holds (snap opened after they were committed)
	err        error
	stopping   bool
	exited     chan struct{}
	// kick ends the applier's gathering at once: a reader or the
	// committer waits for Badger.
	kick   chan struct{}
	window time.Duration

	batches, groups, keysIn, keysOut uint64 // counters (Stats)
	busy                             time.Duration
	last                             map[string]int // commit's scratch
}

func newApplier(s *Store, seq uint64) *applier {
	a := &applier{s: s, exited: make(chan struct{}), kick: make(chan struct{}, 1), appliedSeq: seq, window: applyWindow}
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

// waitFor waits until Badger holds group g (or the applier failed).
func (a *applier) waitFor(g uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied < g {
		a.hurry()
	}
	for a.applied < g && a.err == nil && !(a.stopping && len(a.queue) == 0) {
		a.cond.Wait()
	}
	if a.applied < g {
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
// one it has (hasG): the transaction, and the groups it holds.
func (a *applier) takeSnap(hasG uint64) (*badger.Txn, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.snap == nil || a.snapG <= hasG {
		return nil, 0
	}
	t, g := a.snap, a.snapG
	a.snap = nil
	return t, g
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
	defer close(a.exited)
	maxCount, maxSize := a.s.db.MaxBatchCount(), a.s.db.MaxBatchSize()
	for {
		a.mu.Lock()
		for len(a.queue) == 0 && !a.stopping {
			a.cond.Wait()
		}
		if len(a.queue) == 0 {
			a.mu.Unlock()
			return
		}
		if !a.stopping && a.window > 0 && len(a.queue) < maxLagGroups/2 {
			// Gather groups for a while: a key several of them write
			// goes to Badger once.
			a.mu.Unlock()
			t := time.NewTimer(a.window)
			select {
			case <-a.kick:
			case <-t.C:
			}
			t.Stop()
			a.mu.Lock()
		}
		// Whole groups, as many as one transaction takes.
		n := 0
		var count, size int64
		for n < len(a.queue) {
			g := a.queue[n]
			if n > 0 && (count+g.count >= maxCount || size+g.size >= maxSize) {
				break
			}
			count, size = count+g.count, size+g.size
			n++
		}
		batch := a.queue[:n:n]
		a.mu.Unlock()

		t0 := time.Now()
		err := a.commit(batch)
		if err != nil {
			// The store refuses writes before anyone waiting learns of the
			// failure: a reader told "Badger failed" must not then see its
			// next write accepted (s.fail takes s.mu, which is taken before
			// a.mu elsewhere, so not under a.mu).
			a.s.fail(err)
		}
		last := batch[n-1]
		var snap *badger.Txn
		if err == nil {
			// Opened now, nothing being committed: Badger does not make it
			// wait, and it holds every group of the batch.
			snap = a.s.db.NewTransaction(false)
		}
		a.mu.Lock()
		a.busy += time.Since(t0)
		a.queue = a.queue[n:]
		if err != nil {
			// Nothing more is committed: the log keeps the groups for the
			// next Open.
			a.err, a.queue = err, nil
			a.cond.Broadcast()
			a.mu.Unlock()
			return
		}
		a.applied, a.appliedSeq = last.g, last.seq
		if a.snap != nil {
			a.snap.Discard()
		}
		a.snap, a.snapG = snap, last.g
		a.batches++
		a.groups += uint64(n)
		a.cond.Broadcast()
		a.mu.Unlock()
		if r := a.s.redo; r != nil && last.lsn > 0 {
			r.badgerHas(last.lsn)
		}
	}
}

// commit writes the groups' writes as one transaction: each key's last.
func (a *applier) commit(batch []applyGroup) error {
	txn := a.s.db.NewTransaction(true)
	defer txn.Discard()
	in, out := 0, 0
	if a.last == nil {
		a.last = map[string]int{}
	}
	last := a.last
	clear(last)
	for gi, g := range batch {
		for wi := range g.log {
			last[keyString(g.log[wi].k)] = gi<<32 | wi
		}
		in += len(g.log)
	}
	for gi, g := range batch {
		for wi, w := range g.log {
			if last[string(w.k)] != gi<<32|wi {
				continue // a later group of the batch wrote it again
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
	if len(last) > 1<<16 {
		a.last = nil // not kept at its largest
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("ledger: badger commit of groups %d–%d: %w", batch[0].g, batch[len(batch)-1].g, err)
	}
	a.mu.Lock()
	a.keysIn += uint64(in)
	a.keysOut += uint64(out)
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
