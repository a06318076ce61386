package aggregation

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitGathering waits until the committer holds n deferrable requests.
func waitGathering(t *testing.T, s *Store, n int32) {
	t.Helper()
	for s.gathering.Load() != n {
		time.Sleep(time.Millisecond)
	}
}

// TestDeferrableRidesWithTheNextWrite: deferrable writes wait for one that
// cannot wait and share its group (one sync), in order; alone, a deferrable
// write still lands (its wait ends); a deferrable write pending when the
// store closes is written, not lost.
func TestDeferrableRidesWithTheNextWrite(t *testing.T) {
	s := openSynced(t, Options{})
	rec := func(typ string) Record { return Record{Type: typ, Value: "v"} }
	type res struct {
		seq uint64
		err error
	}
	before := s.Stats().Groups
	deferred := make(chan res, 2)
	for i, typ := range []string{"first", "second"} {
		go func() {
			seq, err := s.Record(Deferrable(ctx, time.Hour), rec(typ), op)
			deferred <- res{seq, err}
		}()
		waitGathering(t, s, int32(i+1))
	}
	// Both are held (an hour): an urgent write takes them with it.
	seq, err := s.Record(ctx, rec("urgent"), op)
	must(t, err)
	a, b := <-deferred, <-deferred
	must(t, a.err)
	must(t, b.err)
	if a.seq > b.seq {
		a, b = b, a
	}
	if a.seq+1 != b.seq || b.seq+1 != seq {
		t.Errorf("seqs %d, %d (deferred) and %d (urgent): want the deferred first, in order, then the urgent", a.seq, b.seq, seq)
	}
	if g := s.Stats().Groups - before; g != 1 {
		t.Errorf("%d groups for three writes: want one (the deferred ride with the urgent)", g)
	}

	// Alone, a deferrable write lands once its wait is over.
	before = s.Stats().Groups
	if _, err := s.Record(Deferrable(ctx, 5*time.Millisecond), rec("alone"), op); err != nil {
		t.Fatal(err)
	}
	if g := s.Stats().Groups - before; g != 1 {
		t.Errorf("%d groups for a lone deferrable write, want 1", g)
	}

	// Pending at Close: written, the caller told so.
	last := make(chan res, 1)
	go func() {
		seq, err := s.Record(Deferrable(ctx, time.Hour), rec("at-close"), op)
		last <- res{seq, err}
	}()
	waitGathering(t, s, 1)
	must(t, s.Close())
	r := <-last
	if r.err != nil || r.seq != seq+2 {
		t.Fatalf("deferred write pending at Close: seq %d, err %v; want seq %d written", r.seq, r.err, seq+2)
	}
	if _, err := s.Record(Deferrable(ctx, time.Hour), rec("after"), op); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
}

// TestCloseAnswersTheLastGroup: a write that landed as the store closes is
// answered as written, never as refused — even when the committer, woken
// first, is gone before the group's callers are answered.
func TestCloseAnswersTheLastGroup(t *testing.T) {
	var slow atomic.Bool
	s, err := Open(t.TempDir(), Options{beforeAnswer: func() {
		if slow.Load() {
			time.Sleep(100 * time.Millisecond) // the committer sees Close meanwhile
		}
	}})
	must(t, err)
	defer s.Close()
	before := s.Stats().Groups
	slow.Store(true)
	got := make(chan error, 1)
	go func() {
		_, err := s.Record(ctx, Record{Type: "last", Value: "v"}, op)
		got <- err
	}()
	for s.Stats().Groups == before { // landed: its callers wait in beforeAnswer
		time.Sleep(time.Millisecond)
	}
	must(t, s.Close())
	if err := <-got; err != nil {
		t.Fatalf("a write that landed before Close: %v, want written", err)
	}
}

// TestCommissionRequestsUsedAgain: Commission's requests (and their done
// channels) are used again once answered. Many goroutines commission
// codes through a synced store, so that groups really are in flight while
// the next is applied and answers race new requests; every code must then
// carry its own unit in its commission event — a request used again while
// the committer still held it would give a code another call's unit, or
// answer a call twice. Then Close races the last commissions: every call
// answered without error is in the ledger after reopening.
func TestCommissionRequestsUsedAgain(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	const n, workers = 3000, 48
	cs := allocated(t, s, "B1", 7, n)
	must(t, s.MarkSent(ctx, cs, op))
	var next atomic.Int64
	var wg sync.WaitGroup
	ok := make([]atomic.Bool, n)
	closeAt := int64(n * 9 / 10)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if i == closeAt {
					go s.Close()
				}
				if err := s.Commission(ctx, cs[i], UnitInfo{ItemID: uint64(i) + 1}, op); err == nil {
					ok[i].Store(true)
				} else if !errors.Is(err, ErrClosed) {
					t.Errorf("commission %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	s, err = Open(dir, Options{})
	must(t, err)
	defer s.Close()
	answered := 0
	for i, c := range cs {
		info, err := s.Code(ctx, c)
		must(t, err)
		var units []uint64
		for _, ev := range info.History {
			if ev.Kind == EvCommission {
				if len(ev.Codes) != 1 || ev.Codes[0] != c || ev.Unit == nil {
					t.Fatalf("code %s: commission event %+v", c, ev)
				}
				units = append(units, ev.Unit.ItemID)
			}
		}
		if ok[i].Load() {
			answered++
			if len(units) != 1 || units[0] != uint64(i)+1 {
				t.Fatalf("code %s (call %d, answered): commissioned for units %v, want [%d]", c, i, units, i+1)
			}
		} else if len(units) > 1 || len(units) == 1 && units[0] != uint64(i)+1 {
			t.Fatalf("code %s (call %d, refused at Close): commissioned for units %v", c, i, units)
		}
	}
	if answered < int(closeAt)-workers { // at most one call per worker in the air at Close
		t.Fatalf("%d commissions answered, want at least %d", answered, int(closeAt)-workers)
	}
}
