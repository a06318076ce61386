package aggregation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/tracecode"
)

var (
	op  = Actor{ActorDevice, "camera-1"}
	qa  = Actor{ActorUser, "qa"}
	ctx = context.Background()
)

func code(prefix, i int) tracecode.Code {
	return tracecode.Code(fmt.Sprintf("8%06d%013d", prefix, i))
}

func codes(prefix, from, n int) []tracecode.Code {
	out := make([]tracecode.Code, n)
	for i := range out {
		out[i] = code(prefix, from+i)
	}
	return out
}

func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// openSynced opens a store that syncs every group, as on a line, so that
// groups really are in flight while the next is applied.
func openSynced(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// allocated creates batch (one level) with a pool of n codes of prefix and
// allocates them all, returning them.
func allocated(t testing.TB, s *Store, batch string, prefix, n int) []tracecode.Code {
	t.Helper()
	must(t, s.CreateBatch(ctx, spec(batch), op))
	must(t, s.AddToPool(ctx, batch+"-pool", codes(prefix, 0, n), "test"))
	cs, err := s.AllocateFromPool(ctx, batch, 1, batch+"-pool", n, op)
	must(t, err)
	return cs
}

func spec(id string, ratios ...int) BatchSpec {
	b := BatchSpec{ID: id, Product: "P1", Line: "L1", Levels: []LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}}}
	for i, r := range ratios {
		b.Levels = append(b.Levels, LevelSpec{Level: tracecode.Level(i + 2), Ratio: r, Scheme: tracecode.SchemeNMPA20})
	}
	return b
}

// commissioned makes a batch with levels (ratios) and n commissioned codes
// per level, returning them per level.
func commissioned(t testing.TB, s *Store, batch string, n []int, ratios ...int) [][]tracecode.Code {
	t.Helper()
	must(t, s.CreateBatch(ctx, spec(batch, ratios...), op))
	out := make([][]tracecode.Code, len(n))
	for i, k := range n {
		pool := fmt.Sprintf("%s-L%d", batch, i+1)
		base := len(batch)*100 + i + 1
		_ = base
		must(t, s.AddToPool(ctx, pool, codes(poolPrefix(batch, i), 0, k), "test"))
		cs, err := s.AllocateFromPool(ctx, batch, tracecode.Level(i+1), pool, k, op)
		must(t, err)
		must(t, s.MarkSent(ctx, cs, op))
		for _, c := range cs {
			must(t, s.Commission(ctx, c, UnitInfo{ItemID: 1}, op))
		}
		out[i] = cs
	}
	return out
}

var prefixes = map[string]int{}

func poolPrefix(batch string, level int) int {
	k := fmt.Sprintf("%s/%d", batch, level)
	if p, ok := prefixes[k]; ok {
		return p
	}
	prefixes[k] = len(prefixes) + 100
	return prefixes[k]
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLifecycle(t *testing.T) {
	s, dir := openTest(t)
	lv := commissioned(t, s, "B1", []int{6, 2, 1}, 3, 2)
	units, boxes, cases := lv[0], lv[1], lv[2]
	must(t, s.Pack(ctx, boxes[0], units[:3], PackOpts{}, op))
	must(t, s.Pack(ctx, boxes[1], units[3:6], PackOpts{}, op))
	must(t, s.Pack(ctx, cases[0], boxes, PackOpts{}, op))

	anc, err := s.Ancestors(ctx, units[4])
	must(t, err)
	if len(anc) != 2 || anc[0] != boxes[1] || anc[1] != cases[0] {
		t.Fatalf("ancestors %v", anc)
	}
	var nodes []Node
	must(t, s.Tree(ctx, cases[0], func(n Node) error { nodes = append(nodes, n); return nil }))
	if len(nodes) != 9 {
		t.Fatalf("tree %d nodes: %v", len(nodes), nodes)
	}
	sum, err := s.Summary(ctx, "B1")
	must(t, err)
	if p := sum.ReleaseProblems(); len(p) != 0 {
		t.Fatalf("release problems %v", p)
	}
	must(t, s.Release(ctx, "B1", Signature{User: "qa", Meaning: "released", At: time.Now()}, qa))
	must(t, s.Activate(ctx, "B1", qa))
	must(t, s.HandedOff(ctx, "B1", "doc-1", "ok", qa))
	must(t, s.HandedOff(ctx, "B1", "doc-1", "ok", qa)) // idempotent
	ci, err := s.Code(ctx, units[0])
	must(t, err)
	if ci.State != StateAggregated || ci.Parent != boxes[0] || ci.BatchState != BatchHandedOff || len(ci.History) != 5 {
		t.Fatalf("code info %+v", ci)
	}
	head := s.seq
	must(t, s.Close())
	s2, err := Open(dir, Options{})
	must(t, err)
	defer s2.Close()
	if s2.seq != head {
		t.Fatalf("seq %d after reopen, want %d", s2.seq, head)
	}
	rep, err := s2.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

func TestRefusals(t *testing.T) {
	s, _ := openTest(t)
	lv := commissioned(t, s, "B2", []int{4, 2}, 2)
	units, boxes := lv[0], lv[1]
	must(t, s.AddToPool(ctx, "spare", codes(900, 0, 3), "test"))
	other := commissioned(t, s, "B3", []int{1, 1}, 2)

	cases := []struct {
		name string
		op   func() error
		want error
	}{
		{"commission twice is a duplicate", func() error { return s.Commission(ctx, units[0], UnitInfo{}, op) }, ErrDuplicate},
		{"printed after commissioned", func() error { return s.MarkPrinted(ctx, units[0], op) }, ErrRefused},
		{"unknown code", func() error { return s.Commission(ctx, code(1, 1), UnitInfo{}, op) }, ErrNotFound},
		{"send a pooled code", func() error { return s.MarkSent(ctx, codes(900, 0, 1), op) }, ErrRefused},
		{"send twice", func() error { return s.MarkSent(ctx, units[:1], op) }, ErrRefused},
		{"pack beyond ratio", func() error { return s.Pack(ctx, boxes[0], units[:3], PackOpts{}, op) }, ErrRefused},
		{"pack short, not partial", func() error { return s.Pack(ctx, boxes[0], units[:1], PackOpts{}, op) }, ErrRefused},
		{"pack a unit into a unit", func() error { return s.Pack(ctx, units[0], units[1:2], PackOpts{Partial: true, Reason: "x"}, op) }, ErrRefused},
		{"pack other batch, not mixed", func() error { return s.Pack(ctx, boxes[0], []tracecode.Code{units[0], other[0][0]}, PackOpts{}, op) }, ErrRefused},
		{"pack same child twice", func() error { return s.Pack(ctx, boxes[0], []tracecode.Code{units[0], units[0]}, PackOpts{}, op) }, ErrRefused},
		{"unpack empty", func() error { return s.Unpack(ctx, boxes[0], "rework", op) }, ErrRefused},
		{"activate unreleased", func() error { return s.Activate(ctx, "B2", qa) }, ErrRefused},
		{"release unbalanced", func() error {
			return s.Release(ctx, "B2", Signature{User: "qa", Meaning: "released", At: time.Now()}, qa)
		}, ErrRefused},
		{"batch twice", func() error { return s.CreateBatch(ctx, spec("B2", 2), op) }, ErrRefused},
		{"handoff before active", func() error { return s.HandedOff(ctx, "B2", "d", "ok", qa) }, ErrRefused},
		{"pool empty", func() error { _, err := s.AllocateFromPool(ctx, "B2", 1, "spare", 4, op); return err }, tracecode.ErrPoolEmpty},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.Summary(ctx, "B2")
			seq := s.seq
			err := tc.op()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			after, _ := s.Summary(ctx, "B2")
			if s.seq != seq || fmt.Sprint(before) != fmt.Sprint(after) {
				t.Fatalf("refused op changed something: seq %d→%d", seq, s.seq)
			}
		})
	}
	// Good ops still work after the refusals.
	must(t, s.Pack(ctx, boxes[0], units[:2], PackOpts{}, op))
	must(t, s.Pack(ctx, boxes[1], units[2:3], PackOpts{Partial: true, Reason: "end of batch"}, op))
	must(t, s.Replace(ctx, boxes[1], units[2], units[3], "damaged", op))
	must(t, s.Decommission(ctx, units[2], "damaged", qa))
	if err := s.Pack(ctx, boxes[1], nil, PackOpts{}, op); err == nil {
		t.Fatal("pack of nothing into a full box accepted")
	}
	sum, _ := s.Summary(ctx, "B2")
	if c := sum.Check(); len(c) != 0 || sum.Levels[1].PartialParents != 1 || sum.Levels[0].Decommissioned != 1 {
		t.Fatalf("summary %+v check %v", sum.Levels, c)
	}
}

func TestTrimPools(t *testing.T) {
	t.Parallel() // with TestCrashRecovery: both wait on the disk more than they compute
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec := BatchSpec{ID: "T1", Product: "p", Line: "l", Levels: []LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}}}
	if err := s.CreateBatch(ctx, spec, op); err != nil {
		t.Fatal(err)
	}
	var codes []tracecode.Code
	for i := 0; i < 9000; i++ {
		codes = append(codes, code(810000, i))
	}
	if err := s.AddToPool(ctx, "P", codes, "test"); err != nil {
		t.Fatal(err)
	}
	got, err := s.AllocateFromPool(ctx, "T1", 1, "P", 8500, op)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, got[:10], op); err != nil {
		t.Fatal(err)
	}
	if err := s.Commission(ctx, got[0], UnitInfo{ItemID: 1}, op); err != nil {
		t.Fatal(err)
	}
	n, err := s.TrimPools(ctx, op)
	if err != nil || n != 8500 {
		t.Fatalf("trim: %d, %v (want 8500: two events, 8192 + 308)", n, err)
	}
	if n, err := s.TrimPools(ctx, op); err != nil || n != 0 {
		t.Fatalf("second trim: %d, %v", n, err)
	}
	// A trim past the head is refused and changes nothing.
	head := s.Head()
	if err := s.submit(ctx, &request{ev: Event{Kind: EvTrimPool, Pool: "P", Upto: 8600, Actor: op}}); !IsRefused(err) {
		t.Fatalf("trim of unallocated entries: %v", err)
	}
	if s.Head() != head {
		t.Fatal("a refused trim changed the journal")
	}
	// Codes allocated before the trim are found as before; the pool goes on.
	for _, c := range []tracecode.Code{got[0], got[5], got[8499]} {
		if _, err := s.Lookup(ctx, c); err != nil {
			t.Fatalf("lookup %s after trim: %v", c, err)
		}
	}
	if cv, err := s.Code(ctx, got[0]); err != nil || cv.State != StateCommissioned {
		t.Fatalf("code %s: %+v %v", got[0], cv, err)
	}
	more, err := s.AllocateFromPool(ctx, "T1", 1, "P", 400, op)
	if err != nil || len(more) != 400 || more[0] != codes[8500] {
		t.Fatalf("allocate after trim: %d %v", len(more), err)
	}
	if n, err := s.ReturnUnsent(ctx, "T1", op); err != nil || n != 8900-10 {
		t.Fatalf("return unsent after trim: %d %v", n, err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify after trim: %v %v", err, rep.Problems)
	}
	// Reopened, the trimmed queue is read back.
	s.Close()
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.TrimPools(ctx, op); err != nil || n != 400 {
		t.Fatalf("trim after reopen: %d, %v", n, err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify after reopen: %v %v", err, rep.Problems)
	}
}

// TestMarkSentRefusesARepeatedCode: a code named twice in one MarkSent is
// refused and nothing of the call is written — for a short call (checked
// against the codes before it) and a long one (a map) alike.
func TestMarkSentRefusesARepeatedCode(t *testing.T) {
	s, _ := openTest(t)
	cs := allocated(t, s, "B1", 3, 64)
	for _, n := range []int{5, 40} {
		call := append(append([]tracecode.Code{}, cs[:n]...), cs[n/2])
		if err := s.MarkSent(ctx, call, op); !IsRefused(err) || !strings.Contains(err.Error(), "appears twice") {
			t.Fatalf("%d codes with one repeated: %v, want refused as appearing twice", len(call), err)
		}
		for _, c := range cs[:n] {
			info, err := s.Lookup(ctx, c)
			must(t, err)
			if info.State != StateAllocated {
				t.Fatalf("code %s is %s after a refused call, want allocated", c, info.State)
			}
		}
	}
	must(t, s.MarkSent(ctx, cs[:40], op)) // the same codes once each
}

// TestCountersOfInterleavedBatches commissions the codes of two batches
// alternately from many goroutines on a synced store, so that one group
// counts in both batches one transition after the other (the committer
// keeps the counters it counted in last: wtx.ctr). Each batch must count
// exactly its own, after reopening too, and the ledger must verify.
func TestCountersOfInterleavedBatches(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	const n = 300
	a := allocated(t, s, "BA", 41, n)
	b := allocated(t, s, "BB", 42, 2*n)
	must(t, s.MarkSent(ctx, a, op))
	must(t, s.MarkSent(ctx, b, op))
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				// B's codes come two for each of A's: the level before
				// is sometimes the same batch's, sometimes the other's.
				for _, c := range []tracecode.Code{a[i], b[2*i], b[2*i+1]} {
					if err := s.Commission(ctx, c, UnitInfo{ItemID: uint64(i + 1)}, op); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		for batch, want := range map[string]int64{"BA": n, "BB": 2 * n} {
			sum, err := s.Summary(ctx, batch)
			must(t, err)
			l := sum.Levels[0]
			if l.Commissioned != want || l.Loose != want || l.InFlight != 0 || l.Sent != want || l.Allocated != want {
				t.Fatalf("%s, batch %s: commissioned %d, loose %d, in flight %d, sent %d, allocated %d; want %d commissioned and loose, 0 in flight, %d sent and allocated",
					when, batch, l.Commissioned, l.Loose, l.InFlight, l.Sent, l.Allocated, want, want)
			}
		}
	}
	check(s, "before reopening")
	must(t, s.Close())
	s, err = Open(dir, Options{})
	must(t, err)
	defer s.Close()
	check(s, "after reopening")
	verifyOK(t, s, "after reopening")
}

// TestSubmitRefusesAnEndedContext: a write whose context has ended before
// it is queued is refused with the context's error and changes nothing —
// every time, though the queue has room (submit's first try skips the
// select that would otherwise have picked either).
func TestSubmitRefusesAnEndedContext(t *testing.T) {
	s, _ := openTest(t)
	cs := allocated(t, s, "B1", 43, 20)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range cs {
		if err := s.MarkSent(cctx, []tracecode.Code{c}, op); !errors.Is(err, context.Canceled) {
			t.Fatalf("MarkSent with a cancelled context: %v, want context.Canceled", err)
		}
		info, err := s.Lookup(ctx, c)
		must(t, err)
		if info.State != StateAllocated {
			t.Fatalf("code %s is %s after a refused call, want allocated", c, info.State)
		}
	}
}

// TestStatsCountTheWaitGoingOn: the committer's wait for requests is
// counted while it lasts, not only when it ends, so that figures taken
// across an idle start (a bench's full load) are not charged with the
// quiet before it.
func TestStatsCountTheWaitGoingOn(t *testing.T) {
	s, _ := openTest(t)
	allocated(t, s, "B1", 44, 4)
	before := s.Stats().IdleWait
	time.Sleep(30 * time.Millisecond) // no request meanwhile: the committer waits
	if after := s.Stats().IdleWait; after <= before {
		t.Fatalf("idle wait %v then %v with the committer waiting in between: the wait going on is not counted", before, after)
	}
}
