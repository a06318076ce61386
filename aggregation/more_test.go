package aggregation

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// Many goroutines commission the same code at once: exactly one wins, the
// others get ErrDuplicate, and the counters count one.
func TestConcurrentCommissionOneWins(t *testing.T) {
	s, _ := openTest(t)
	cs := allocated(t, s, "CC", 300, 10)
	must(t, s.MarkSent(ctx, cs, op))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, dups := 0, 0
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Commission(ctx, cs[0], UnitInfo{}, op)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrDuplicate):
				dups++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	sum, _ := s.Summary(ctx, "CC")
	if wins != 1 || dups != 49 || sum.Levels[0].Commissioned != 1 {
		t.Fatalf("wins %d dups %d commissioned %d", wins, dups, sum.Levels[0].Commissioned)
	}
}

func gs1(i int) tracecode.Code { return tracecode.Code(fmt.Sprintf("(01)06901234567892(21)S%06d", i)) }

func TestGeneratedReturnAndStream(t *testing.T) {
	s, dir := openTest(t)
	b := BatchSpec{ID: "G1", Product: "P", Line: "L", Levels: []LevelSpec{{Level: 1, Scheme: tracecode.SchemeGS1SGTIN}}}
	must(t, s.CreateBatch(ctx, b, op))
	gen := []tracecode.Code{gs1(1), gs1(2), gs1(3), gs1(2)}
	col, err := s.AllocateGenerated(ctx, "G1", 1, gen, op)
	must(t, err)
	if len(col) != 1 || col[0] != gs1(2) {
		t.Fatalf("collided %v, want the repeated %s", col, gs1(2))
	}
	col, err = s.AllocateGenerated(ctx, "G1", 1, []tracecode.Code{gs1(3), gs1(4)}, op)
	must(t, err)
	if len(col) != 1 || col[0] != gs1(3) {
		t.Fatalf("collided %v, want the known %s", col, gs1(3))
	}
	if _, err := s.AllocateGenerated(ctx, "G1", 1, []tracecode.Code{code(1, 1)}, op); !errors.Is(err, ErrRefused) {
		t.Fatalf("an nmpa20 code on a gs1 level: %v", err)
	}
	must(t, s.MarkSent(ctx, []tracecode.Code{gs1(1)}, op))
	n, err := s.ReturnUnsent(ctx, "G1", op)
	must(t, err)
	if n != 3 {
		t.Fatalf("returned %d, want 3", n)
	}
	var got []tracecode.Code
	must(t, s.Codes(ctx, "G1", 1, StateReturned, func(c tracecode.Code) error { got = append(got, c); return nil }))
	if len(got) != 3 {
		t.Fatalf("stream of returned: %v", got)
	}
	// A retired generated code is never reissued.
	col, err = s.AllocateGenerated(ctx, "G1", 1, []tracecode.Code{gs1(2)}, op)
	must(t, err)
	if len(col) != 1 {
		t.Fatal("a returned generated code was registered again")
	}
	must(t, s.Void(ctx, gs1(1), "line purge", op))
	sum, _ := s.Summary(ctx, "G1")
	if p := sum.ReleaseProblems(); len(p) != 0 {
		t.Fatalf("problems %v", p)
	}
	must(t, s.Complete(ctx, "G1", op))
	must(t, s.Release(ctx, "G1", Signature{User: "qa", Meaning: "rejected", At: time.Now(), Comment: "test"}, qa))
	if err := s.Activate(ctx, "G1", qa); !errors.Is(err, ErrRefused) {
		t.Fatalf("activate a QA-rejected batch: %v", err)
	}
	must(t, s.Close())
	rep, err := VerifyDir(ctx, dir, Options{NoSync: true})
	must(t, err)
	if !rep.OK() {
		t.Fatal(rep.Problems)
	}
}

func TestPoolReturnAndReallocate(t *testing.T) {
	s, _ := openTest(t)
	must(t, s.CreateBatch(ctx, spec("R1"), op))
	must(t, s.CreateBatch(ctx, spec("R2"), op))
	must(t, s.AddToPool(ctx, "rp", codes(400, 0, 5), "test"))
	cs, err := s.AllocateFromPool(ctx, "R1", 1, "rp", 5, op)
	must(t, err)
	must(t, s.MarkSent(ctx, cs[:2], op))
	n, err := s.ReturnUnsent(ctx, "R1", op)
	must(t, err)
	ps, _ := s.Pools(ctx)
	if n != 3 || ps[0].Available != 3 || ps[0].Allocated != 2 || ps[0].Returned != 3 {
		t.Fatalf("returned %d, pool %+v", n, ps)
	}
	again, err := s.AllocateFromPool(ctx, "R2", 1, "rp", 3, op)
	must(t, err)
	ci, err := s.Code(ctx, again[0])
	must(t, err)
	if ci.Batch != "R2" || ci.State != StateAllocated || len(ci.History) != 4 {
		t.Fatalf("reallocated code %+v", ci)
	}
	if _, err := s.AllocateFromPool(ctx, "R2", 1, "rp", 1, op); !errors.Is(err, tracecode.ErrPoolEmpty) {
		t.Fatalf("empty pool: %v", err)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatal(rep.Problems)
	}
}

func TestSpecValidate(t *testing.T) {
	good := spec("OK", 10)
	cases := []struct {
		name string
		edit func(*BatchSpec)
	}{
		{"empty id", func(b *BatchSpec) { b.ID = "" }},
		{"no product", func(b *BatchSpec) { b.Product = "" }},
		{"no levels", func(b *BatchSpec) { b.Levels = nil }},
		{"skipped level", func(b *BatchSpec) { b.Levels[1].Level = 3 }},
		{"L1 ratio", func(b *BatchSpec) { b.Levels[0].Ratio = 2 }},
		{"zero ratio", func(b *BatchSpec) { b.Levels[1].Ratio = 0 }},
		{"bad scheme", func(b *BatchSpec) { b.Levels[0].Scheme = "ean13" }},
		{"control char", func(b *BatchSpec) { b.ID = "a\x00b" }},
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		b := spec("OK", 10)
		tc.edit(&b)
		if err := b.Validate(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestRejectUnit(t *testing.T) {
	s, _ := openTest(t)
	lv := commissioned(t, s, "RU", []int{1})
	must(t, s.RejectUnit(ctx, "RU", 42, "", "no-read", op))
	must(t, s.RejectUnit(ctx, "RU", 43, lv[0][0], "duplicate", op))
	if err := s.RejectUnit(ctx, "RU", 44, "", "", op); err == nil {
		t.Fatal("reject without a reason accepted")
	}
	if err := s.RejectUnit(ctx, "nope", 44, "", "no-read", op); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown batch: %v", err)
	}
	sum, _ := s.Summary(ctx, "RU")
	if sum.Levels[0].RejectedUnits != 2 || len(sum.Check()) != 0 {
		t.Fatalf("summary %+v", sum.Levels[0])
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatal(rep.Problems)
	}
}
