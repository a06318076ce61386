package main

import (
	"context"
	"errors"
	"io"
	"log"
	"os"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the gopcua server in the simulators logs through the standard logger
	os.Exit(m.Run())
}

func quietCLI() *cli {
	return &cli{stdin: nil, stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func testOpts(units int, faults []sim.Fault) *demoOpts {
	return &demoOpts{product: "../../examples/amoxicillin-gs1.yaml", units: units, rate: 1200, seed: 42,
		deadline: 100 * time.Millisecond, headless: true, faults: faults}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A whole batch on the simulated line with every unit fault: the ledger
// balances, verify passes, and it agrees with what physically happened.
func TestDemoHeadlessReconciles(t *testing.T) {
	o := testOpts(120, defaultFaults())
	o.data = t.TempDir()
	rep, err := runDemo(ctxFor(t, 90*time.Second), o, quietCLI())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.InvariantsOK {
		t.Errorf("invariants: %v", rep.Invariants)
	}
	if !rep.GroundTruthOK {
		t.Errorf("ground truth: %v", rep.GroundTruth)
	}
	if !rep.ChallengeOK || len(rep.Challenge) != len(demoChallenge) {
		t.Errorf("challenge: ok=%t %v", rep.ChallengeOK, rep.Challenge)
	}
	if rep.State != "Complete" {
		t.Errorf("line state %s, want Complete", rep.State)
	}
	if rep.Sim.Triggered != 120 {
		t.Errorf("simulator triggered %d units, want 120", rep.Sim.Triggered)
	}
	var l1 aggregation.LevelSummary
	for _, l := range rep.Levels {
		if l.Level == 1 {
			l1 = l
		}
	}
	if got := l1.Commissioned - l1.Sampled - l1.Decommissioned; got != int64(rep.Sim.Good) {
		t.Errorf("commissioned %d, simulator shipped %d good units", got, rep.Sim.Good)
	}
	if l1.InFlight != 0 || l1.Outstanding != 0 {
		t.Errorf("level 1 left in flight %d, outstanding %d", l1.InFlight, l1.Outstanding)
	}
	if rep.Verdicts() == 0 {
		t.Error("no verdict latency recorded")
	}
}

func (r *demoReport) Verdicts() int { return r.Latency.Verdicts }

// The controller stops mid-batch (as a crash would) while the line goes on.
// On restart the codes it had sent or printed are voided, the line starts
// Stopped and will not reset before the operator confirms a purge; then the
// batch finishes and everything reconciles.
func TestControllerRestartMidBatch(t *testing.T) {
	ctx := ctxFor(t, 120*time.Second)
	c := quietCLI()
	o := testOpts(220, defaultFaults())
	o.data = t.TempDir()
	d, err := startDemo(ctx, o, c)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		t.Fatal(err)
	}
	if err := waitLine(ctx, d.runner(), func(s line.Snapshot) bool { return s.Counters.Passed >= 40 }); err != nil {
		t.Fatal(err)
	}
	if err := d.stopController(); err != nil {
		t.Fatal(err)
	}
	// A new process: the ledger is reopened from disk.
	if err := d.store.Close(); err != nil {
		t.Fatal(err)
	}
	if d.store, err = aggregation.Open(filepath.Join(d.dir, "ledger"), aggregation.Options{Logger: c.log}); err != nil {
		t.Fatal(err)
	}
	if err := d.connect(ctx, c); err != nil {
		t.Fatal(err)
	}
	snap := d.runner().Snapshot()
	if snap.State != "Stopped" || !snap.PurgeRequired {
		t.Fatalf("after restart: state %s purge_required %t, want Stopped and a purge", snap.State, snap.PurgeRequired)
	}
	for _, st := range []aggregation.CodeState{aggregation.StateSent, aggregation.StatePrinted} {
		n := 0
		if err := d.store.Codes(ctx, d.file.Batch.ID, 1, st, func(tracecode.Code) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("after restart %d codes still %s; want all voided", n, st)
		}
	}
	if err := d.commands(ctx, line.CmdReset); !errors.Is(err, line.ErrInvalidCommand) {
		t.Fatalf("reset before the purge is confirmed: err %v, want ErrInvalidCommand", err)
	}
	if err := d.commands(ctx, line.CmdClear); err != nil {
		t.Fatal(err)
	}
	if err := waitLine(ctx, d.runner(), func(s line.Snapshot) bool { return s.State == "Stopped" && !s.PurgeRequired }); err != nil {
		t.Fatal(err)
	}
	if err := d.commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		t.Fatal(err)
	}
	if err := d.finish(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := d.report(ctx, time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.InvariantsOK || !rep.GroundTruthOK {
		t.Fatalf("after restart: invariants %v, ground truth %v", rep.Invariants, rep.GroundTruth)
	}
	voidedAtRestart := false
	for _, l := range rep.Levels {
		if l.Level == 1 && l.Voided > 0 {
			voidedAtRestart = true
		}
	}
	if !voidedAtRestart {
		t.Error("no level-1 code was voided, though the controller stopped with codes in the printer")
	}
}

// A camera that drops off the network holds the line with an alarm naming
// it; units in flight are rejected; once it is back the operator unholds
// and the batch still reconciles.
func TestCameraDisconnectHoldsLine(t *testing.T) {
	ctx := ctxFor(t, 120*time.Second)
	c := quietCLI()
	faults := append(defaultFaults(), sim.Fault{Kind: sim.FaultCameraDown, At: 60, For: 1500 * time.Millisecond})
	o := testOpts(160, faults)
	o.data = t.TempDir()
	d, err := startDemo(ctx, o, c)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		t.Fatal(err)
	}
	r := d.runner()
	if err := waitLine(ctx, r, func(s line.Snapshot) bool { return s.State == "Held" && s.Faults["camera"] != "" }); err != nil {
		t.Fatalf("line did not hold on the camera's disconnect: %v", err)
	}
	if err := waitLine(ctx, r, func(s line.Snapshot) bool { return len(s.Faults) == 0 }); err != nil {
		t.Fatalf("camera fault never cleared: %v", err)
	}
	if err := d.commands(ctx, line.CmdUnhold); err != nil {
		t.Fatal(err)
	}
	if err := d.finish(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := d.report(ctx, time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.InvariantsOK || !rep.GroundTruthOK {
		t.Fatalf("invariants %v, ground truth %v", rep.Invariants, rep.GroundTruth)
	}
	if rep.Rejects["not-producing"] == 0 {
		t.Errorf("no unit rejected as in flight when the line held: %v", rep.Rejects)
	}
}
