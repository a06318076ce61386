package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/examples"
	"github.com/tracline/tracline/tracecode"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the gopcua server in the simulators logs through the standard logger
	os.Exit(m.Run())
}

func openStore(t *testing.T) *aggregation.Store {
	t.Helper()
	s, err := aggregation.Open(t.TempDir(), aggregation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string // "" = valid
	}{
		{"defaults", Options{}, ""},
		{"a run", Options{Units: 100, Rate: 1200, Gate: 1}, ""},
		{"negative units", Options{Units: -1}, "units: -1 is negative"},
		{"negative rate", Options{Rate: -5}, "rate: -5 units/min is negative"},
		{"negative gate", Options{Gate: -1}, "gate: -1ns is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// The embedded example loads without any file on disk; a product file on
// disk that is not there is an error naming it.
func TestLoadProduct(t *testing.T) {
	p, fsys, err := LoadProduct("")
	if err != nil {
		t.Fatal(err)
	}
	if p.GenericName != "阿莫西林胶囊" || p.TopLevel() != 4 {
		t.Errorf("embedded product: %s with %d levels", p.GenericName, p.TopLevel())
	}
	if _, err := fs.Stat(fsys, "codes/8021762-L1.txt"); err != nil {
		t.Errorf("embedded code files: %v", err)
	}
	if _, _, err := LoadProduct("no/such/product.yaml"); err == nil || !strings.Contains(err.Error(), "no/such/product.yaml") {
		t.Errorf("missing product file: %v", err)
	}
	if _, _, err := LoadProduct("../../examples/" + examples.NMPAProduct); err != nil {
		t.Errorf("product on disk: %v", err)
	}
}

// The nmpa20 example's pools are filled from the embedded code files; a
// second import into the same ledger is skipped, a missing or bad file is
// an error naming the level and changes nothing.
func TestImportPools(t *testing.T) {
	ctx := context.Background()
	data, err := fs.ReadFile(examples.FS, examples.NMPAProduct)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tracecode.ParseProduct(examples.NMPAProduct, data)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	for range 2 {
		if err := ImportPools(ctx, p, examples.FS, store); err != nil {
			t.Fatal(err)
		}
	}
	pools, err := store.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, ps := range pools {
		got[ps.Pool] = ps.Available
	}
	for pool, want := range map[string]int64{p.PoolName(1): 3000, p.PoolName(2): 300, p.PoolName(3): 30} {
		if got[pool] != want {
			t.Errorf("pool %s holds %d codes, want %d (pools %+v)", pool, got[pool], want, pools)
		}
	}

	for name, fsys := range map[string]fs.FS{
		"no code files": fstest.MapFS{},
		"a bad line":    fstest.MapFS{"codes/8021762-L1.txt": {Data: []byte("80217620000000000001\r\nnot a code\r\n")}},
	} {
		t.Run(name, func(t *testing.T) {
			store := openStore(t)
			err := ImportPools(ctx, p, fsys, store)
			if err == nil || !strings.Contains(err.Error(), "demo pool for level") {
				t.Fatalf("ImportPools: %v, want an error naming the level", err)
			}
			if pools, _ := store.Pools(ctx); len(pools) != 0 {
				t.Errorf("pools after a failed import: %+v", pools)
			}
		})
	}
}

// Start refuses bad options and a product it cannot load before it starts
// anything; a wiring that fails is reported and everything is closed.
func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("no controller today")
	wire := func(context.Context, *Setup, *aggregation.Store, *slog.Logger) (Controller, error) { return nil, boom }
	if _, err := Start(ctx, Options{Units: -1}, wire); err == nil || !strings.Contains(err.Error(), "units") {
		t.Errorf("negative units: %v", err)
	}
	if _, err := Start(ctx, Options{Product: "no/such.yaml"}, wire); err == nil {
		t.Error("missing product: no error")
	}
	var setup *Setup
	wire2 := func(_ context.Context, s *Setup, _ *aggregation.Store, _ *slog.Logger) (Controller, error) {
		setup = s
		return nil, boom
	}
	if _, err := Start(ctx, Options{Data: t.TempDir(), Units: 10, Gate: 150e6}, wire2); !errors.Is(err, boom) {
		t.Fatalf("failing wiring: %v", err)
	}
	// What the wiring was given: the simulated line's devices, a rework
	// label printer, the demo's challenge and a work order.
	if setup == nil || setup.Devices.Modbus == "" || setup.Devices.Camera == "" || setup.ReworkLabelPrinter == "" {
		t.Fatalf("setup: %+v", setup)
	}
	if setup.Gate != 150e6 || len(setup.Challenge) != 4 || setup.Batch.Planned != 10 || !strings.HasPrefix(setup.Batch.Batch, "DEMO-") {
		t.Errorf("setup: gate %s challenge %v batch %+v", setup.Gate, setup.Challenge, setup.Batch)
	}
	if _, err := Run(ctx, Options{}, wire); err == nil || !strings.Contains(err.Error(), "units") {
		t.Errorf("headless run without units: %v", err)
	}
}

// The report's JSON keys that DESIGN.md's command-line contract names.
func TestReportContractKeys(t *testing.T) {
	js, err := json.Marshal(Report{Counts: map[string]int64{"commissioned": 1}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"batch", "invariants_ok", "ground_truth_ok", "deadline_misses", "verdict_latency_ms", "counts"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no key %q: %s", k, js)
		}
	}
	lat, _ := m["verdict_latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p99", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("verdict_latency_ms has no key %q: %s", k, js)
		}
	}
	if (&Report{InvariantsOK: true, GroundTruthOK: true}).OK() != true || (&Report{InvariantsOK: true, GroundTruthOK: true, DeadlineMisses: 1}).OK() {
		t.Error("Report.OK")
	}
}

// CompareTruth against a hand-made ledger and ground truth: agreeing, then
// each kind of disagreement named.
func TestCompareTruth(t *testing.T) {
	ctx := context.Background()
	store, codes := sentBatch(t, 4)
	sys := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"}
	for _, c := range codes[:2] {
		if err := store.Commission(ctx, c, aggregation.UnitInfo{}, sys); err != nil {
			t.Fatal(err)
		}
	}
	good := func(item uint32, c tracecode.Code) sim.UnitTruth {
		return sim.UnitTruth{Item: item, Code: string(c), Verdict: "pass", Fate: sim.FateGood, Gate: sim.GatePassed}
	}
	rejected := func(item uint32, c tracecode.Code) sim.UnitTruth {
		return sim.UnitTruth{Item: item, Code: string(c), Verdict: "reject", Fate: sim.FateRejected, Gate: sim.GateRejected}
	}
	truth := func(units ...sim.UnitTruth) sim.GroundTruth {
		gt := sim.GroundTruth{Finished: true, Units: units}
		for _, u := range units {
			switch u.Fate {
			case sim.FateGood:
				gt.PLC.Good++
				gt.Summary.Good++
			case sim.FateRejected:
				gt.PLC.Rejected++
				gt.Summary.Rejected++
			}
			if u.Gate != sim.GateNone {
				gt.PLC.GateCount++
			}
		}
		return gt
	}
	for _, tc := range []struct {
		name string
		gt   sim.GroundTruth
		want []string // substrings, one problem each; none = agree
	}{
		{"agree", truth(good(1, codes[0]), good(2, codes[1]), rejected(3, codes[2])), nil},
		{"good unit whose code was not commissioned", truth(good(1, codes[0]), good(2, codes[1]), good(3, codes[2])),
			[]string{"unit 3 left as good but its code " + string(codes[2]) + " is sent", "3 units left the line as good"}},
		{"commissioned code on a rejected unit", truth(good(1, codes[0]), rejected(2, codes[1])),
			[]string{"code " + string(codes[1]) + " is commissioned in the ledger but on unit 2 (rejected", "2 commissioned unit codes, 1 units"}},
		{"simulator not finished", func() sim.GroundTruth {
			gt := truth(good(1, codes[0]), good(2, codes[1]))
			gt.Finished = false
			return gt
		}(), []string{"simulator did not finish the batch"}},
		{"good unit with a code the ledger never saw", truth(good(1, codes[0]), good(2, codes[1]), good(3, "(01)06901234567892(21)NOSUCHCODE")),
			[]string{"unit 3: code", "3 units left the line as good"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CompareTruth(ctx, store, "B1", tc.gt)
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

// CompareTruthReworked: good units the operator took off at rework must be
// decommissioned in the ledger and are not counted as good; without being
// told, the same ledger disagrees with the line.
func TestCompareTruthReworked(t *testing.T) {
	ctx := context.Background()
	store, codes := sentBatch(t, 3)
	sys := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"}
	op := aggregation.Actor{Kind: aggregation.ActorUser, ID: "op1"}
	for _, c := range codes {
		if err := store.Commission(ctx, c, aggregation.UnitInfo{}, sys); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Decommission(ctx, codes[0], "rework: unit of a group left unlabelled", op); err != nil {
		t.Fatal(err)
	}
	gt := sim.GroundTruth{Finished: true}
	for i, c := range codes {
		gt.Units = append(gt.Units, sim.UnitTruth{Item: uint32(i + 1), Code: string(c), Verdict: "pass", Fate: sim.FateGood, Gate: sim.GatePassed})
		gt.PLC.Good++
		gt.Summary.Good++
		gt.PLC.GateCount++
	}
	for _, tc := range []struct {
		name string
		off  map[tracecode.Code]bool
		want []string
	}{
		{"told", map[tracecode.Code]bool{codes[0]: true}, nil},
		{"not told", nil, []string{"unit 1 left as good but its code " + string(codes[0]) + " is decommissioned", "2 commissioned unit codes, 3 units"}},
		{"told the wrong unit", map[tracecode.Code]bool{codes[1]: true},
			[]string{"unit 1 left as good but its code", "unit 2 was taken off at rework, but its code " + string(codes[1]) + " is commissioned",
				"code " + string(codes[1]) + " is commissioned in the ledger but on unit 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CompareTruthReworked(ctx, store, "B1", gt, tc.off)
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

// sentBatch is a ledger with batch B1 (one level of the example product)
// and n of its codes generated, allocated and sent.
func sentBatch(t *testing.T, n int) (*aggregation.Store, []tracecode.Code) {
	t.Helper()
	ctx := context.Background()
	p, _, err := LoadProduct("")
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	sys := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"}
	spec := aggregation.BatchSpec{ID: "B1", Product: "amoxicillin", Line: "L1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: p.Rule(1).Scheme}}}
	if err := store.CreateBatch(ctx, spec, sys); err != nil {
		t.Fatal(err)
	}
	g, err := tracecode.NewGenerator(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := g.Generate(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AllocateGenerated(ctx, "B1", 1, codes, sys); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkSent(ctx, codes, sys); err != nil {
		t.Fatal(err)
	}
	return store, codes
}
