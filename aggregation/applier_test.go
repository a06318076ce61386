package aggregation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// Badger takes landed groups behind the redo log, several per commit, and
// a key that several of them wrote once; a reader still sees every write
// acknowledged before it asked, at once.
func TestBadgerBehindTheLog(t *testing.T) {
	s := openSynced(t, Options{})
	cs := allocated(t, s, "BL", 501, 400)
	st0 := s.Stats()
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < len(cs); i += 20 {
				if err := s.MarkSent(ctx, cs[i:i+1], op); err != nil {
					t.Error(err)
					return
				}
				if err := s.Commission(ctx, cs[i], UnitInfo{ItemID: uint64(i)}, op); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	groups, commits := st.BadgerGroups-st0.BadgerGroups, st.BadgerCommits-st0.BadgerCommits
	// Nothing has read Badger since the allocation: the applier gathered.
	if commits >= groups && groups > 1 {
		t.Errorf("Badger took %d groups in %d commits: nothing gathered", groups, commits)
	}
	for i, c := range cs {
		ci, err := s.Lookup(ctx, c)
		must(t, err)
		if ci.State != StateCommissioned {
			t.Fatalf("code %d: %s after its commission was acknowledged", i, ci.State)
		}
	}
	st = s.Stats()
	if st.BadgerGroups != st.Groups {
		t.Errorf("after a read: Badger holds %d of %d groups", st.BadgerGroups, st.Groups)
	}
	// Each code's record was written at its send and its commission; the
	// groups Badger took together wrote it once.
	if w := st.BadgerWrites - st0.BadgerWrites; commits < groups && w == 0 {
		t.Errorf("no writes counted")
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
	// A read right after a write sees it (no wait for the gathering).
	more := allocated(t, s, "BM", 502, 5)
	for _, c := range more {
		must(t, s.MarkSent(ctx, []tracecode.Code{c}, op))
		ci, err := s.Lookup(ctx, c)
		must(t, err)
		if ci.State != StateSent {
			t.Fatalf("%s: %s right after its send was acknowledged", c, ci.State)
		}
	}
}

// A busy group's journal block (over valueThreshold) goes to Badger's value
// log, not inline in the LSM tree; the journal reads back and verifies
// after a reopen.
func TestJournalBlocksInValueLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	const n = 3000
	must(t, s.AddToPool(ctx, "big", codes(77, 0, n), "test"))
	must(t, s.Close())
	var vlog int64
	paths, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	for _, p := range paths {
		fi, err := os.Stat(p)
		must(t, err)
		vlog += fi.Size() // a closed value log file is cut to what it holds
	}
	// Each code is in the import's journal block: at least its 20
	// characters.
	if vlog < 20*n {
		t.Fatalf("value log files hold %d bytes after a %d-code import: the journal block is not there", vlog, n)
	}
	s, err = Open(dir, Options{})
	must(t, err)
	defer s.Close()
	got := 0
	must(t, s.Events(ctx, 0, func(ev Event) error {
		got += len(ev.Codes)
		return nil
	}))
	if got != n {
		t.Fatalf("journal read back %d codes, want %d", got, n)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %+v", rep)
	}
}

// heldBack is how many code records wait in the applier (call it with
// the applier idle: waitTaken).
func (a *applier) heldBack() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.deferred)
}

// waitTaken waits until Badger has taken every group sent so far, without
// reading (a read would have the applier write what it holds back).
func waitTaken(t *testing.T, s *Store) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		if st := s.Stats(); st.BadgerGroups == st.Groups {
			return
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("Badger did not take the groups: %+v", s.Stats())
		}
	}
}

// A code record the committer's cache holds (allocated, sent) waits in the
// applier until the code's next write replaces it, so that Badger takes a
// code's record once, not at each of its states. Everyone who reads Badger
// still finds every acknowledged write: a crash's replay, the committer
// after a failed group empties its cache, a reader.
func TestCachedRecordsWaitInTheApplier(t *testing.T) {
	defer func(w time.Duration) { applyWindow = w }(applyWindow)
	applyWindow = 0 // Badger takes each group as it lands: nothing is gathered
	var fail atomic.Bool
	s := openSynced(t, Options{failGroup: func() bool { return fail.CompareAndSwap(true, false) }})
	cs := allocated(t, s, "DW", 601, 60)
	for _, c := range cs[:40] {
		must(t, s.MarkSent(ctx, []tracecode.Code{c}, op))
	}
	waitTaken(t, s)
	st := s.Stats()
	if n := s.ap.heldBack(); n != len(cs) || st.BadgerFlushed != 0 {
		t.Fatalf("Badger took every group; %d code records held back (want one for each of the %d codes), %d written since", n, len(cs), st.BadgerFlushed)
	}

	// A crash now: the records are only in the redo log.
	crash := t.TempDir()
	copyLedger(t, s.dir, crash, true, true)
	r, err := Open(crash, Options{})
	must(t, err)
	for i, c := range cs {
		ci, err := r.Lookup(ctx, c)
		must(t, err)
		if want := map[bool]CodeState{true: StateSent, false: StateAllocated}[i < 40]; ci.State != want {
			t.Fatalf("crash copy: code %d is %s, want %s", i, ci.State, want)
		}
	}
	verifyOK(t, r, "crash copy")
	must(t, r.Close())

	// A failed group empties the committer's cache: the codes it held are
	// read from Badger again, which must have their records by then.
	fail.Store(true)
	if err := s.MarkSent(ctx, cs[40:41], op); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("send in the failed group: %v, want it refused as too large", err)
	}
	for i, c := range cs[:40] {
		if err := s.MarkSent(ctx, []tracecode.Code{c}, op); !errors.Is(err, ErrRefused) {
			t.Fatalf("code %d sent again after the failed group: %v, want it refused", i, err)
		}
	}
	for i, c := range cs[:41] {
		if err := s.Commission(ctx, c, UnitInfo{ItemID: uint64(i)}, op); (err == nil) != (i < 40) {
			t.Fatalf("commission of code %d (sent: %v): %v", i, i < 40, err)
		}
	}
	// A commission replaces the held-back record, which is then never
	// written: Badger takes the code's record once.
	more := cs[41:]
	must(t, s.MarkSent(ctx, more, op))
	waitTaken(t, s)
	st0 := s.Stats()
	if n := s.ap.heldBack(); n != len(more) || st0.BadgerDeferred-st.BadgerDeferred < uint64(len(more)) {
		t.Fatalf("%d records held back after %d sends", n, len(more))
	}
	for i, c := range more[10:] {
		must(t, s.Commission(ctx, c, UnitInfo{ItemID: uint64(100 + i)}, op))
	}
	waitTaken(t, s)
	if n, st := s.ap.heldBack(), s.Stats(); n != 10 || st.BadgerFlushed != st0.BadgerFlushed {
		t.Fatalf("after the commissions: %d records held back (want the 10 codes only sent), %d written by flushes", n, st.BadgerFlushed-st0.BadgerFlushed)
	}
	// A reader sees every state at once: the held-back ones are written
	// first.
	for i, c := range cs {
		want := StateCommissioned
		switch {
		case i == 40:
			want = StateAllocated
		case i > 40 && i < 51:
			want = StateSent
		}
		ci, err := s.Lookup(ctx, c)
		must(t, err)
		if ci.State != want {
			t.Fatalf("code %d is %s, want %s", i, ci.State, want)
		}
	}
	if n := s.ap.heldBack(); n != 0 {
		t.Fatalf("%d records held back after a read", n)
	}
	verifyOK(t, s, "after the failed group")
}

// A checkpoint needs Badger to hold every write of the records before the
// one it names: the applier writes the code records it holds back of those
// records, and the log goes round its segments while codes stay sent.
func TestCheckpointTakesHeldBackRecords(t *testing.T) {
	defer func(w time.Duration) { applyWindow = w }(applyWindow)
	applyWindow = 0
	s := openSynced(t, smallRedo)
	cs := allocated(t, s, "CK", 602, 1500)
	total := uint64(redoSegments) * uint64(smallRedo.redoSegSize)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	i := 0
	for ; s.Stats().RedoBytes < 2*total; i++ {
		if i == len(cs) {
			t.Fatalf("%d codes sent, %d redo bytes written: the test needs more codes", i, s.Stats().RedoBytes)
		}
		if err := s.MarkSent(cctx, cs[i:i+1], op); err != nil {
			t.Fatalf("send %d (redo log %d bytes, %d checkpoints): %v", i, s.Stats().RedoBytes, s.Stats().Checkpoints, err)
		}
	}
	waitTaken(t, s)
	st := s.Stats()
	t.Logf("%d sends, %d checkpoints, %d records held back, %d written by flushes", i, st.Checkpoints, st.BadgerDeferred, st.BadgerFlushed)
	crash := t.TempDir()
	copyLedger(t, s.dir, crash, true, true)
	r, err := Open(crash, Options{})
	must(t, err)
	for j, c := range cs {
		ci, err := r.Lookup(ctx, c)
		must(t, err)
		if want := map[bool]CodeState{true: StateSent, false: StateAllocated}[j < i]; ci.State != want {
			t.Fatalf("crash copy: code %d is %s, want %s", j, ci.State, want)
		}
	}
	verifyOK(t, r, "crash copy")
	must(t, r.Close())
	if st.Checkpoints < 2 || st.BadgerFlushed == 0 {
		t.Fatalf("%d checkpoints, %d held-back records written", st.Checkpoints, st.BadgerFlushed)
	}
}

// A code record written before a failed group emptied the committer's
// cache, and taken by Badger after, is not held back: nothing would
// replace it while the committer reads the code from Badger again.
func TestDroppedCacheRecordsNotHeldBack(t *testing.T) {
	defer func(w time.Duration) { applyWindow = w }(applyWindow)
	applyWindow = time.Hour // Badger takes nothing until asked
	s, cs := sentThenFailed(t, "DN", 603, 30)
	// Badger takes the sends now, with nobody reading (no flush), and the
	// committer's next group takes a snapshot that holds them all.
	s.ap.hurry()
	waitTaken(t, s)
	for i, c := range cs[:20] {
		if err := s.MarkSent(ctx, []tracecode.Code{c}, op); !errors.Is(err, ErrRefused) {
			t.Fatalf("code %d sent again after the failed group: %v, want it refused", i, err)
		}
	}
	verifyOK(t, s, "after the failed group")
}

// The checkpoint at a segment's start names the segment before it
// (redo.go, the lag): a code record held back in one segment is written by a
// checkpoint only if the code's next write has not come by the end of the
// segment after. Codes sent one by one and commissioned a few records later
// go round the log's segments several times with no record written by a
// flush; a crash copy replays at most the two segments the checkpoint
// keeps, and holds every state.
func TestCheckpointLeavesHeldBackRecordsTheirNextWrite(t *testing.T) {
	defer func(w time.Duration) { applyWindow = w }(applyWindow)
	applyWindow = 0 // Badger takes each group as it lands
	s := openSynced(t, smallRedo)
	must(t, s.CreateBatch(ctx, spec("CL"), op))
	must(t, s.AddToPool(ctx, "CL-pool", codes(605, 0, 1000), "test"))
	// A line's pace: ten codes allocated, each sent, and commissioned
	// 2×lag records after its send — well inside a segment (63 records).
	const lag = 10
	var cs []tracecode.Code
	total := uint64(redoSegments) * uint64(smallRedo.redoSegSize)
	i := 0
	for ; s.Stats().RedoBytes < 2*total; i++ {
		if i == 1000 {
			t.Fatalf("%d codes sent, %d redo bytes written: the test needs more codes", i, s.Stats().RedoBytes)
		}
		if i%10 == 0 {
			got, err := s.AllocateFromPool(ctx, "CL", 1, "CL-pool", 10, op)
			must(t, err)
			cs = append(cs, got...)
		}
		must(t, s.MarkSent(ctx, cs[i:i+1], op))
		if i >= lag {
			must(t, s.Commission(ctx, cs[i-lag], UnitInfo{ItemID: uint64(i)}, op))
		}
	}
	waitTaken(t, s)
	st := s.Stats()
	t.Logf("%d codes sent, %d checkpoints, %d records held back, %d written by flushes", i, st.Checkpoints, st.BadgerDeferred, st.BadgerFlushed)
	if st.Checkpoints < 4 {
		t.Fatalf("%d checkpoints over twice round the segments", st.Checkpoints)
	}
	if st.BadgerFlushed != 0 {
		t.Fatalf("%d held-back records written by checkpoints, want none: each code's next write came a few records after", st.BadgerFlushed)
	}
	crash := t.TempDir()
	copyLedger(t, s.dir, crash, true, true)
	r, err := Open(crash, Options{})
	must(t, err)
	perSeg := int(smallRedo.redoSegSize/redoBlock) - 1
	if r.redo.replayed == 0 || r.redo.replayed > 2*perSeg {
		t.Errorf("the crash copy replayed %d records; want some, and at most two segments' (%d)", r.redo.replayed, 2*perSeg)
	}
	for j, c := range cs {
		ci, err := r.Lookup(ctx, c)
		must(t, err)
		want := StateAllocated
		switch {
		case j < i-lag:
			want = StateCommissioned
		case j < i:
			want = StateSent
		}
		if ci.State != want {
			t.Fatalf("crash copy: code %d is %s, want %s", j, ci.State, want)
		}
	}
	verifyOK(t, r, "crash copy")
	must(t, r.Close())
}

// The checkpointer's flush waits until Badger has the groups queued before
// the record it names: a held-back record that a queued group replaces is
// then never written.
func TestCheckpointFlushWaitsForTheQueuedGroups(t *testing.T) {
	defer func(w time.Duration) { applyWindow = w }(applyWindow)
	applyWindow = time.Hour // Badger takes the groups when hurried
	s := openSynced(t, Options{})
	cs := allocated(t, s, "CQ", 606, 2)
	must(t, s.MarkSent(ctx, cs[:1], op))
	sent := s.redo.next - 1 // the send's record (the caller was answered after it was written)
	s.ap.hurry()
	waitTaken(t, s)
	st0 := s.Stats()
	if n := s.ap.heldBack(); n != 2 {
		t.Fatalf("%d code records held back, want both codes'", n)
	}
	must(t, s.Commission(ctx, cs[0], UnitInfo{ItemID: 1}, op)) // queued: the applier gathers
	next := s.redo.next
	// As the checkpointer asks when a segment begins at next: the records
	// before the send's and the send's own, once the groups before next
	// are in.
	s.ap.hurryFlush(sent+1, next)
	for start := time.Now(); s.Stats().BadgerFlushed == st0.BadgerFlushed; time.Sleep(time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatal("the flush asked for did not come")
		}
	}
	waitTaken(t, s)
	if d := s.Stats().BadgerFlushed - st0.BadgerFlushed; d != 1 {
		t.Fatalf("%d held-back records written, want 1 (the code only allocated; the sent one's record was replaced by its queued commission)", d)
	}
	if n := s.ap.heldBack(); n != 0 {
		t.Fatalf("%d records still held back", n)
	}
	for i, want := range []CodeState{StateCommissioned, StateAllocated} {
		ci, err := s.Lookup(ctx, cs[i])
		must(t, err)
		if ci.State != want {
			t.Fatalf("code %d is %s, want %s", i, ci.State, want)
		}
	}
	verifyOK(t, s, "after the flush")
}

// The committer waits for Badger when too many keys are only in s.pend
// (lagging), taking newer snapshots meanwhile. The group it waits with has
// put its writes in s.pend already: a snapshot holding every group sent
// before it must not take them out, or the next group reads what they
// replaced — here a pool's queue record, and the codes it allocated would
// be allocated again (a bug until session 18, found by bench ledger).
func TestLaggingKeepsTheWaitingGroupsWrites(t *testing.T) {
	defer func(n int, w time.Duration) { maxPendKeys, applyWindow = n, w }(maxPendKeys, applyWindow)
	// The committer waits with almost every group: the applier gathers
	// for 5 ms, so groups are queued when it looks, and the wait hurries
	// the applier to take them all.
	maxPendKeys, applyWindow = 2, 5*time.Millisecond
	s := openSynced(t, Options{})
	allocateConcurrently(t, s, "LG", 700)
	if st := s.Stats(); st.BadgerLagWait == 0 {
		t.Fatalf("the committer never waited for Badger: %+v", st)
	}
}

// s.pend's generations: a write stays readable until the snapshot holds
// its group, however often the generations turn.
func TestPendGenerations(t *testing.T) {
	defer func(n int, w time.Duration) { pendGen, applyWindow = n, w }(pendGen, applyWindow)
	// A generation each time the committer takes a snapshot that lacks a
	// group sent (a snapshot holding them all empties s.pend instead):
	// the applier gathers for 2 ms so that snapshots lag a little. Rounds
	// until a generation was retired (on a loaded machine the applier may
	// keep up with every group of a round).
	pendGen, applyWindow = 1, 2*time.Millisecond
	s := openSynced(t, Options{})
	for round := 0; ; round++ {
		b := fmt.Sprintf("PG%d", round)
		allocateConcurrently(t, s, b+"a", 710+3*round, b+"b", 711+3*round, b+"c", 712+3*round)
		if s.pendRetired.Load() > 0 {
			return
		}
		if round == 4 {
			t.Fatal("no generation of s.pend was retired in five rounds")
		}
	}
}

// allocateConcurrently creates batches (batch, code prefix, ...) with a
// pool of 3,000 codes each and allocates them in five-code events from 16
// goroutines, each taking the batches in turn, checks that no code comes
// twice, and verifies.
func allocateConcurrently(t *testing.T, s *Store, batchPrefix ...any) {
	t.Helper()
	const n = 3000
	var batches []string
	for i := 0; i < len(batchPrefix); i += 2 {
		b := batchPrefix[i].(string)
		batches = append(batches, b)
		must(t, s.CreateBatch(ctx, spec(b), op))
		must(t, s.AddToPool(ctx, b+"-pool", codes(batchPrefix[i+1].(int), 0, n), "test"))
	}
	var mu sync.Mutex
	seen := map[tracecode.Code]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(batches)*n/16/5; i++ {
				batch := batches[(w+i)%len(batches)]
				cs, err := s.AllocateFromPool(ctx, batch, 1, batch+"-pool", 5, op)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, c := range cs {
					if seen[c] {
						mu.Unlock()
						errs <- fmt.Errorf("code %s allocated twice", c)
						return
					}
					seen[c] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	verifyOK(t, s, "after the allocations")
}

// TestFitsIsBadgersLimit feeds the same writes to a group's accounting
// (wtx.fitsLen, which the applier's batches also use through txnFits) and to
// a Badger transaction: the accounting must take exactly the writes Badger
// takes, up to the first Badger refuses — by count (small values) and by
// size (values just under the value log's threshold, kept inline). Counting
// from zero, as Badger does not, took one write too many.
func TestFitsIsBadgersLimit(t *testing.T) {
	s, _ := openTest(t)
	for _, tc := range []struct {
		name string
		vlen int
	}{{"count", 1}, {"size", valueThreshold - 1}} {
		txn := s.db.NewTransaction(true)
		w := &wtx{s: s}
		v := make([]byte, tc.vlen)
		n := 0
		for ; ; n++ {
			k := fmt.Appendf(nil, "fits/%s/%09d", tc.name, n)
			ours := w.fitsLen(len(k), len(v))
			theirs := txn.Set(k, v)
			if (ours == nil) != (theirs == nil) {
				t.Fatalf("%s: write %d: the accounting says %v, Badger says %v", tc.name, n+1, ours, theirs)
			}
			if theirs != nil {
				if !errors.Is(theirs, badger.ErrTxnTooBig) || !errors.Is(ours, badger.ErrTxnTooBig) {
					t.Fatalf("%s: write %d refused: the accounting %v, Badger %v; want ErrTxnTooBig from both", tc.name, n+1, ours, theirs)
				}
				break
			}
		}
		txn.Discard()
		if n < 1000 {
			t.Fatalf("%s: refused after %d writes: the test did not reach Badger's limit by %s", tc.name, n, tc.name)
		}
	}
}
