package line

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

func TestCheckWorkOrder(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	rg.runBatch(workOrder("USED"), 1, 1)
	ok := workOrder("NEW")
	nmpa := WorkOrder{Product: "amox-nmpa", Batch: "N1", ProductionDate: "2026-11-01", Expiry: "2028-10-31", Planned: 100, Levels: 2}
	for _, tc := range []struct {
		name string
		wo   func(*WorkOrder)
		base WorkOrder
		want []string // field/code
	}{
		{"fine", func(*WorkOrder) {}, ok, nil},
		{"no product", func(w *WorkOrder) { w.Product = "" }, ok, []string{"product/required"}},
		{"unknown product", func(w *WorkOrder) { w.Product = "aspirin" }, ok, []string{"product/unknown"}},
		{"no batch", func(w *WorkOrder) { w.Batch = " " }, ok, []string{"batch/required"}},
		{"batch control char", func(w *WorkOrder) { w.Batch = "B\x01" }, ok, []string{"batch/format"}},
		{"batch used", func(w *WorkOrder) { w.Batch = "USED" }, ok, []string{"batch/used"}},
		{"bad dates", func(w *WorkOrder) { w.ProductionDate, w.Expiry = "1.11.2026", "" }, ok, []string{"production_date/format", "expiry/required"}},
		{"expiry before production", func(w *WorkOrder) { w.Expiry = "2026-11-01" }, ok, []string{"expiry/expiry_before_production"}},
		{"planned", func(w *WorkOrder) { w.Planned = 0 }, ok, []string{"planned/range"}},
		{"levels", func(w *WorkOrder) { w.Levels = 9 }, ok, []string{"levels/range"}},
		{"everything", func(w *WorkOrder) { *w = WorkOrder{Levels: -1} }, ok,
			[]string{"product/required", "batch/required", "production_date/required", "expiry/required", "planned/range"}},
		// The nmpa20 pools are empty: the batch needs 100 units' codes
		// and the printer buffer's 2, and 11 bundles' codes.
		{"pools empty", func(*WorkOrder) {}, nmpa, []string{"planned/codes_short", "planned/codes_short"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wo := tc.base
			tc.wo(&wo)
			var got []string
			for _, p := range rg.line.CheckWorkOrder(context.Background(), wo) {
				if p.Message == "" {
					t.Errorf("problem %s/%s without a message", p.Field, p.Code)
				}
				got = append(got, p.Field+"/"+p.Code)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("problems %v, want %v", got, tc.want)
			}
		})
	}
	ps := rg.line.CheckWorkOrder(context.Background(), nmpa)
	if ps[0].Pool != "8021762-L1" || ps[0].Missing != 102 || ps[1].Pool != "8021763-L2" || ps[1].Missing != 11 {
		t.Fatalf("codes short: %+v", ps)
	}
}

func TestImportCodeFile(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	data, err := os.ReadFile("../examples/codes/8021762-L1.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(strings.TrimSpace(string(data)), "\n") + 1
	pools := func() string {
		pv, err := rg.line.Pools(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(pv)
	}
	before := pools()
	for _, tc := range []struct {
		name, pool string
		data       []byte
		want       string
	}{
		{"unknown pool", "nope-L1", data, "not an nmpa20 level's pool"},
		{"gs1 level", "06901234567892-L1", data, "not an nmpa20 level's pool"},
		{"empty", "8021762-L1", nil, "is empty"},
		{"wrong product", "8021763-L2", data, "line 1"},
		{"a bad line", "8021762-L1", []byte(string(data[:22]) + "8021762123\r\n" + string(data[22:])), "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rg.line.ImportCodeFile(ctx, tc.pool, "f.txt", tc.data, "op1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
			if got := pools(); got != before {
				t.Fatalf("pools changed by a refused import:\n%s\n%s", before, got)
			}
		})
	}
	res, err := rg.line.ImportCodeFile(ctx, "8021762-L1", "8021762-L1.txt", data, "op1")
	if err != nil || res.Codes != n || res.SHA256 == "" {
		t.Fatalf("import: %+v, %v", res, err)
	}
	_, err = rg.line.ImportCodeFile(ctx, "8021762-L1", "again.txt", data, "op1")
	var cfe *tracecode.CodeFileError
	if !errors.As(err, &cfe) || cfe.Total != n || !errors.Is(err, tracecode.ErrBadCodeFile) {
		t.Fatalf("the same file again: %v", err)
	}
	pv, err := rg.line.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pv {
		if p.Pool == "8021762-L1" {
			found = true
			if p.Available != int64(n) || p.Product != "amox-nmpa" || p.Level != 1 {
				t.Fatalf("pool after the import: %+v", p)
			}
		}
	}
	if !found {
		t.Fatalf("pools: %+v", pv)
	}
	// The work order now lacks only level 2's codes.
	wo := WorkOrder{Product: "amox-nmpa", Batch: "N1", ProductionDate: "2026-11-01", Expiry: "2028-10-31", Planned: 10, Levels: 2}
	ps := rg.line.CheckWorkOrder(ctx, wo)
	if len(ps) != 1 || ps[0].Pool != "8021763-L2" || ps[0].Missing != 2 {
		t.Fatalf("problems: %+v", ps)
	}
}

// The pool source hands out a pool's last codes rather than refusing a chunk.
func TestPoolSourceLastCodes(t *testing.T) {
	rg, spec := nmpaBatchWithL3Pool(t)
	ctx := context.Background()
	key, p, err := rg.line.cfg.ProductOf(spec)
	if err != nil || key != "amox-nmpa" {
		t.Fatalf("product of N1: %q, %v", key, err)
	}
	src, err := NewPoolSource(p, rg.store, "N1")
	if err != nil {
		t.Fatal(err)
	}
	if codes, err := src.Allocate(ctx, 3, 20); err != nil || len(codes) != 20 {
		t.Fatalf("20 of 30: %d, %v", len(codes), err)
	}
	if codes, err := src.Allocate(ctx, 3, 20); err != nil || len(codes) != 10 {
		t.Fatalf("the last 10: %d, %v", len(codes), err)
	}
	if _, err := src.Allocate(ctx, 3, 20); !errors.Is(err, tracecode.ErrPoolEmpty) {
		t.Fatalf("an empty pool: %v", err)
	}
	if _, _, err := rg.line.cfg.ProductOf(aggregation.BatchSpec{ID: "X", Product: "aspirin"}); err == nil {
		t.Fatal("an unknown product was found")
	}
}

// Once a batch is complete and the line idle, the pools' allocated entries
// are trimmed in journaled events, which verify replays.
func TestLineTrimsPoolsWhenIdle(t *testing.T) {
	rg, spec := nmpaBatchWithL3Pool(t)
	ctx := context.Background()
	_, p, err := rg.line.cfg.ProductOf(spec)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewPoolSource(p, rg.store, "N1")
	if err != nil {
		t.Fatal(err)
	}
	codes, err := src.Allocate(ctx, 3, 20)
	if err != nil {
		t.Fatal(err)
	}
	trims := func() (n int) {
		if err := rg.store.Events(ctx, 1, func(ev aggregation.Event) error {
			if ev.Kind == aggregation.EvTrimPool && ev.Pool == "8021764-L3" && ev.Upto == 20 {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if trims() != 0 {
		t.Fatal("trimmed before the line was idle")
	}
	rg.runBatch(workOrder("B1"), 10, 2)
	deadline := time.Now().Add(20 * time.Second)
	for trims() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no trim of the 20 allocated entries after the line went idle")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ci, err := rg.store.Lookup(ctx, codes[19]); err != nil || ci.Batch != "N1" {
		t.Fatalf("an allocated code after the trim: %+v, %v", ci, err)
	}
	if rep, err := rg.store.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify after the idle trim: %v %v", err, rep.Problems)
	}
}

// nmpaBatchWithL3Pool is a line rig whose ledger holds the example level-3
// pool and an nmpa20 batch N1 made outside the line.
func nmpaBatchWithL3Pool(t *testing.T) (*lineRig, aggregation.BatchSpec) {
	t.Helper()
	rg := newLineRig(t, t.TempDir())
	data, err := os.ReadFile("../examples/codes/8021764-L3.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.ImportCodeFile(context.Background(), "8021764-L3", "l3.txt", data, "op1"); err != nil {
		t.Fatal(err)
	}
	spec := aggregation.BatchSpec{ID: "N1", Product: "阿莫西林胶囊", Line: "L1", Levels: []aggregation.LevelSpec{
		{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 10, Scheme: tracecode.SchemeNMPA20}, {Level: 3, Ratio: 20, Scheme: tracecode.SchemeNMPA20}}}
	if err := rg.store.CreateBatch(context.Background(), spec, system); err != nil {
		t.Fatal(err)
	}
	return rg, spec
}
