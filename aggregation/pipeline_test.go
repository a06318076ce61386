package aggregation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// Many writers run code lives at once on a synced store, so that groups
// are applied while the previous group is still being written (the
// committer's pipeline): reads of codes the flight just wrote (a pack of
// codes commissioned in the group before, an unpack barrier, pool
// allocations) must see those writes. Each writer keeps a model of its own
// codes; at the end every code, the batch counters and a full replay
// (Verify, which applies one group at a time) must agree with the models.
func TestPipelineModel(t *testing.T) {
	s := openSynced(t, Options{})
	const workers, units, ratio = 8, 120, 5
	must(t, s.CreateBatch(ctx, spec("PM", ratio), op))
	must(t, s.AddToPool(ctx, "pm-1", codes(401, 0, workers*units), "test"))
	must(t, s.AddToPool(ctx, "pm-2", codes(402, 0, workers*units/ratio), "test"))

	type want struct {
		state  CodeState
		parent tracecode.Code
	}
	models := make([]map[tracecode.Code]want, workers)
	var wg sync.WaitGroup
	for w := range workers {
		models[w] = map[tracecode.Code]want{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := models[w]
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			fail := func(f string, a ...any) { t.Errorf("worker %d: "+f, append([]any{w}, a...)...) }
			kids, err := s.AllocateFromPool(ctx, "PM", 1, "pm-1", units, op)
			if err != nil {
				fail("allocate units: %v", err)
				return
			}
			parents, err := s.AllocateFromPool(ctx, "PM", 2, "pm-2", units/ratio, op)
			if err != nil {
				fail("allocate parents: %v", err)
				return
			}
			for _, c := range append(kids, parents...) {
				m[c] = want{state: StateAllocated}
			}
			var loose []tracecode.Code
			next := 0 // next parent
			for i := 0; i < len(kids); i += 10 {
				part := kids[i : i+10]
				if err := s.MarkSent(ctx, part, op); err != nil {
					fail("send: %v", err)
					return
				}
				for _, c := range part {
					if rng.IntN(5) == 0 {
						if err := s.Reject(ctx, c, "camera: no read", op); err != nil {
							fail("reject %s: %v", c, err)
							return
						}
						m[c] = want{state: StateRejected}
						continue
					}
					if err := s.Commission(ctx, c, UnitInfo{ItemID: uint64(i)}, op); err != nil {
						fail("commission %s: %v", c, err)
						return
					}
					m[c] = want{state: StateCommissioned}
					loose = append(loose, c)
				}
				for len(loose) >= ratio && next < len(parents) {
					p, box := parents[next], loose[:ratio]
					next++
					loose = loose[ratio:]
					if err := s.MarkSent(ctx, []tracecode.Code{p}, op); err != nil {
						fail("send parent: %v", err)
						return
					}
					if err := s.Commission(ctx, p, UnitInfo{}, op); err != nil {
						fail("commission parent: %v", err)
						return
					}
					if err := s.Pack(ctx, p, box, PackOpts{}, op); err != nil {
						fail("pack %s: %v", p, err)
						return
					}
					m[p] = want{state: StateCommissioned}
					for _, c := range box {
						m[c] = want{StateAggregated, p}
					}
					if rng.IntN(3) > 0 {
						continue
					}
					// Rework: unpack (a barrier), take one unit out, pack again short.
					if err := s.Unpack(ctx, p, "rework", qa); err != nil {
						fail("unpack %s: %v", p, err)
						return
					}
					if err := s.Decommission(ctx, box[0], "damaged", qa); err != nil {
						fail("decommission %s: %v", box[0], err)
						return
					}
					m[box[0]] = want{state: StateDecommissioned}
					if err := s.Pack(ctx, p, box[1:], PackOpts{Partial: true, Reason: "one damaged"}, qa); err != nil {
						fail("repack %s: %v", p, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	count := map[tracecode.Level]map[string]int64{1: {}, 2: {}}
	for _, m := range models {
		for c, w := range m {
			info, err := s.Lookup(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			count[info.Level][w.state.String()]++
			if info.State != w.state || info.Parent != w.parent {
				t.Errorf("%s: %s in %q, want %s in %q", c, info.State, info.Parent, w.state, w.parent)
			}
		}
	}
	sum, err := s.Summary(ctx, "PM")
	must(t, err)
	for _, l := range sum.Levels {
		for st, n := range l.States {
			if n != count[l.Level][st] {
				t.Errorf("summary: level %s has %d %s, models %d", l.Level, n, st, count[l.Level][st])
			}
		}
		for st, n := range count[l.Level] {
			if l.States[st] != n {
				t.Errorf("summary: level %s has %d %s, models %d", l.Level, l.States[st], st, n)
			}
		}
	}
	if st := s.Stats(); st.Groups >= st.Requests {
		t.Errorf("no group carried more than one request (%+v): the pipeline was not exercised", st)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if len(rep.Problems) > 0 {
		t.Fatalf("verify: %v", rep.Problems)
	}
	fmt.Fprintf(testWriter{t}, "%d events in %d groups", rep.Events, s.Stats().Groups)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// Writers race for the same keys in consecutive groups: generated codes
// registered by several writers at once (each code must go to exactly one),
// and the same loose units packed into different parents (each unit must
// end in exactly one). The committer reads those keys while the previous
// group, which may have written them, is still in flight.
func TestPipelineContention(t *testing.T) {
	s := openSynced(t, Options{})
	must(t, s.CreateBatch(ctx, spec("PC", 4), op))
	const writers, n = 8, 400
	gen := codes(403, 0, n)
	var mu sync.Mutex
	won := map[tracecode.Code]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			order := rand.New(rand.NewPCG(uint64(w), 9)).Perm(n / 5)
			for _, k := range order {
				part := gen[k*5 : k*5+5]
				collided, err := s.AllocateGenerated(ctx, "PC", 1, part, op)
				if err != nil {
					t.Errorf("register: %v", err)
					return
				}
				lost := map[tracecode.Code]bool{}
				for _, c := range collided {
					lost[c] = true
				}
				mu.Lock()
				for _, c := range part {
					if !lost[c] {
						won[c]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range gen {
		if won[c] != 1 {
			t.Errorf("code %s registered by %d writers, want 1", c, won[c])
		}
	}
	if t.Failed() {
		return
	}

	units := gen[:200]
	must(t, s.MarkSent(ctx, units, op))
	for _, c := range units {
		must(t, s.Commission(ctx, c, UnitInfo{}, op))
	}
	must(t, s.AddToPool(ctx, "pc-2", codes(404, 0, writers*50), "test"))
	parentOf := map[tracecode.Code]tracecode.Code{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := s.AllocateFromPool(ctx, "PC", 2, "pc-2", 50, op)
			if err != nil {
				t.Errorf("allocate: %v", err)
				return
			}
			must(t, s.MarkSent(ctx, ps, op))
			order := rand.New(rand.NewPCG(uint64(w), 11)).Perm(50)
			for i, k := range order {
				p := ps[i]
				if err := s.Commission(ctx, p, UnitInfo{}, op); err != nil {
					t.Errorf("commission parent: %v", err)
					return
				}
				box := units[k*4 : k*4+4]
				err := s.Pack(ctx, p, box, PackOpts{}, op)
				if err != nil {
					continue // another writer packed one of them first
				}
				mu.Lock()
				for _, c := range box {
					if q, dup := parentOf[c]; dup {
						t.Errorf("unit %s packed into %s and %s", c, q, p)
					}
					parentOf[c] = p
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range units {
		info, err := s.Lookup(ctx, c)
		must(t, err)
		if info.Parent != parentOf[c] {
			t.Errorf("unit %s is in %q, the writers saw it packed into %q", c, info.Parent, parentOf[c])
		}
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if len(rep.Problems) > 0 {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

// A pool is a queue: codes are allocated in the order they were imported
// (codes whose keys sort first but came later wait their turn), every code
// once, and an empty pool says so.
func TestPoolIsAQueue(t *testing.T) {
	s, _ := openTest(t)
	must(t, s.CreateBatch(ctx, spec("PW"), op))
	must(t, s.AddToPool(ctx, "pw", codes(405, 100, 100), "late codes"))
	seen := map[tracecode.Code]bool{}
	var order []tracecode.Code
	take := func(n int) {
		t.Helper()
		got, err := s.AllocateFromPool(ctx, "PW", 1, "pw", n, op)
		must(t, err)
		for _, c := range got {
			if seen[c] {
				t.Fatalf("code %s allocated twice", c)
			}
			seen[c] = true
		}
		order = append(order, got...)
	}
	take(10)
	must(t, s.AddToPool(ctx, "pw", codes(405, 0, 10), "early codes")) // sort before the cursor
	take(95)
	take(5)
	if len(seen) != 110 {
		t.Fatalf("%d codes allocated, want 110", len(seen))
	}
	want := append(codes(405, 100, 100), codes(405, 0, 10)...)
	if !slices.Equal(order, want) {
		t.Fatalf("allocation order %v…, want import order %v…", order[:12], want[:12])
	}
	if _, err := s.AllocateFromPool(ctx, "PW", 1, "pw", 1, op); !errors.Is(err, tracecode.ErrPoolEmpty) {
		t.Fatalf("empty pool: %v, want ErrPoolEmpty", err)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if len(rep.Problems) > 0 {
		t.Fatal(rep.Problems)
	}
}

// Writers allocate a few codes at a time from one pool whose read-ahead is
// tiny, while codes keep being imported, so that nearly every refill reads
// entries while groups are in flight, some of them appended by the group in
// flight (read through its overlay): no code may be allocated twice, none
// lost.
func TestPipelinePoolRefills(t *testing.T) {
	s := openSynced(t, Options{prefetch: 7})
	must(t, s.CreateBatch(ctx, spec("PR"), op))
	const writers, rounds, n, chunks = 16, 25, 3, 100
	var mu sync.Mutex
	got := map[tracecode.Code]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := range chunks { // each chunk sorts before the ones before it
			if err := s.AddToPool(ctx, "pr", codes(406100-k, 0, writers*rounds*n/chunks), "test"); err != nil {
				t.Errorf("import: %v", err)
				return
			}
		}
	}()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; {
				cs, err := s.AllocateFromPool(ctx, "PR", 1, "pr", n, op)
				if errors.Is(err, tracecode.ErrPoolEmpty) {
					time.Sleep(time.Millisecond) // the importer is behind
					continue
				}
				if err != nil {
					t.Errorf("allocate: %v", err)
					return
				}
				r++
				if err := s.MarkSent(ctx, cs, op); err != nil {
					t.Errorf("send: %v", err)
					return
				}
				mu.Lock()
				for _, c := range cs {
					got[c]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for c, k := range got {
		if k != 1 {
			t.Errorf("code %s allocated %d times", c, k)
		}
	}
	if len(got) != writers*rounds*n {
		t.Errorf("%d codes allocated, want %d", len(got), writers*rounds*n)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if len(rep.Problems) > 0 {
		t.Fatalf("verify: %v", rep.Problems[:min(5, len(rep.Problems))])
	}
}

// When Badger fails behind the redo log, every write acknowledged before
// or after stays durable (the log keeps it and the next Open replays it),
// and the store soon refuses every write with a clear error until it is
// reopened.
// A group that fails after its writes reached the committer's cache (one
// too big for a transaction is split and retried) empties the cache. The
// codes' last writes, which only the cache held while Badger lagged, must
// still be what the committer reads after: a code sent before the failure
// cannot be sent again (even on a hint read from Badger before its send),
// and can be commissioned.
// sentThenFailed opens a synced store whose Badger takes nothing until
// asked (the caller sets applyWindow), allocates n codes (allocated),
// sends the first 20 one group each, and fails the group of the 21st send:
// the committer's cache is dropped with those sends still behind in
// Badger.
func sentThenFailed(t *testing.T, batch string, prefix, n int) (*Store, []tracecode.Code) {
	t.Helper()
	var fail atomic.Bool
	s := openSynced(t, Options{failGroup: func() bool { return fail.CompareAndSwap(true, false) }})
	cs := allocated(t, s, batch, prefix, n)
	if _, err := s.Lookup(ctx, cs[0]); err != nil { // Badger takes the allocation
		t.Fatal(err)
	}
	for _, c := range cs[:20] {
		must(t, s.MarkSent(ctx, []tracecode.Code{c}, op))
	}
	fail.Store(true)
	if err := s.MarkSent(ctx, cs[20:21], op); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("send in the failed group: %v, want it refused as too large", err)
	}
	return s, cs
}

func TestFailedGroupKeepsCachedWrites(t *testing.T) {
	defer func(w time.Duration) { applyWindow = w }(applyWindow)
	applyWindow = time.Hour // Badger takes nothing until a reader waits for it
	s, cs := sentThenFailed(t, "FK", 408, 40)
	if st := s.Stats(); st.BadgerGroups == st.Groups {
		t.Fatal("Badger took every group: the test needs it behind")
	}
	for i, c := range cs[:20] {
		if err := s.MarkSent(ctx, []tracecode.Code{c}, op); !errors.Is(err, ErrRefused) {
			t.Fatalf("code %d sent again after the failed group: %v, want it refused", i, err)
		}
	}
	for i, c := range cs[:21] {
		if err := s.Commission(ctx, c, UnitInfo{ItemID: uint64(i)}, op); (err == nil) != (i < 20) {
			t.Fatalf("commission of code %d (sent: %v): %v", i, i < 20, err)
		}
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

func TestCommitFailureStopsWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	cs := allocated(t, s, "CF", 407, 40)
	must(t, s.MarkSent(ctx, cs[:5], op))
	must(t, s.db.Close()) // the disk goes away under Badger
	acked := 5
	switch err := s.MarkSent(ctx, cs[5:10], op); {
	case err == nil:
		acked = 10 // its redo record is synced: durable, though Badger will not take it
	case !strings.Contains(err.Error(), "ledger commit") && !strings.Contains(err.Error(), "stopped accepting writes"):
		t.Fatalf("send after the database failed: %v, want a ledger error", err)
	}
	// A reader waits for Badger to take every acknowledged group: it
	// cannot, and says so.
	if err := s.caughtUp(); err == nil {
		t.Fatal("Badger took the groups after its database was closed")
	}
	err = s.MarkSent(ctx, cs[10:15], op)
	if err == nil || !strings.Contains(err.Error(), "stopped accepting writes") {
		t.Fatalf("send after Badger failed: %v, want the store to refuse writes", err)
	}
	s.Close()
	s, err = Open(dir, Options{})
	must(t, err)
	defer s.Close()
	for i, c := range cs {
		ci, err := s.Lookup(ctx, c)
		must(t, err)
		want := StateAllocated
		if i < acked {
			want = StateSent
		}
		if ci.State != want {
			t.Fatalf("code %d of %d (%d sends acknowledged) after reopening: %s, want %s", i, len(cs), acked, ci.State, want)
		}
	}
}
