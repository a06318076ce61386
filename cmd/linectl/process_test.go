package main

// Whole-line tests with `linesim` and `linectl run` as separate processes,
// driven the way an operator runs the line: commands through linectl's
// HTTP API, the operator's hands (purge, empty the reject bin) through
// linesim's. They cover issue 12's "Done when" (items 1–9): what a
// restart, a killed controller, a misapplied label and the reject gate's
// confirmation do to the ledger, checked against the simulator's ground
// truth. Each test names the items it covers.
//
// The harness is internal/campaign/lineproc (shared with linectl
// campaign); this file wraps it for tests: a harness error fails the test.
// The two binaries are built once per test binary run, without -race: they
// are other processes. Every process is killed in t.Cleanup. Waiting is
// always polling a condition with a deadline; no assertion is about how
// long something took.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/campaign/lineproc"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

var processSeed = flag.Uint64("process.seed", 0, "seed of TestProcessKillRestart's kill moments (0: from the clock; the test logs it)")

// ---------------------------------------------------------------------------
// The binaries.

var procBins struct {
	once sync.Once
	bins lineproc.Binaries
	err  error
}

// processBinaries builds linesim and linectl (once per test binary run)
// into a directory named after this process; directories left by test
// binaries that are no longer running are removed first.
func processBinaries(t *testing.T) lineproc.Binaries {
	t.Helper()
	if testing.Short() {
		t.Skip("builds linesim and linectl and runs them as processes")
	}
	procBins.once.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			procBins.err = err
			return
		}
		removeStaleBinDirs()
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("%s%d", binDirPrefix, os.Getpid()))
		procBins.bins, procBins.err = lineproc.Build(context.Background(), root, dir)
	})
	if procBins.err != nil {
		t.Fatal(procBins.err)
	}
	return procBins.bins
}

const binDirPrefix = "tracline-process-test-"

// removeStaleBinDirs removes binary directories of test processes that
// have exited (the directory's name ends in the process id).
func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), binDirPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// ---------------------------------------------------------------------------
// A line: linesim and linectl run on it (lineproc.Line), failing the test
// on a harness error.

// processOpts is one test's line.
type processOpts struct {
	name   string // batch id suffix and log names
	units  int
	rate   float64
	seed   uint64
	faults []sim.Fault
	env    []string // the first controller's extra environment
}

type procLine struct {
	*lineproc.Line
	t *testing.T
}

// startProcLine writes both configs, starts linesim and linectl run and
// waits until both answer.
func startProcLine(ctx context.Context, t *testing.T, o processOpts) *procLine {
	t.Helper()
	bins := processBinaries(t)
	cfg, err := campaignLineConfig(lineExample)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := lineproc.Start(ctx, lineproc.Options{Name: o.name, Units: o.units, Rate: o.rate, Seed: o.seed, Faults: o.faults,
		Dir: t.TempDir(), Bins: bins, Config: cfg, CtlEnv: o.env, Logf: t.Logf})
	if ln != nil {
		t.Cleanup(func() {
			if t.Failed() {
				for _, p := range ln.Procs {
					t.Logf("--- log of %s: warnings and errors, then its last lines:\n%s", p.Name, p.Digest(40))
				}
			}
			ln.Close()
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return &procLine{Line: ln, t: t}
}

func (l *procLine) must(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatal(err)
	}
}

func (l *procLine) startController(ctx context.Context, env ...string) line.Snapshot {
	l.t.Helper()
	s, err := l.StartController(ctx, env...)
	l.must(err)
	return s
}

func (l *procLine) killController() { l.KillController() }

func (l *procLine) waitFor(ctx context.Context, what string, cond func() (bool, string)) {
	l.t.Helper()
	l.must(l.WaitFor(ctx, what, cond))
}

func (l *procLine) state(ctx context.Context) (line.Snapshot, error) { return l.State(ctx) }

func (l *procLine) waitLine(ctx context.Context, what string, cond func(line.Snapshot) bool) line.Snapshot {
	l.t.Helper()
	s, err := l.WaitLine(ctx, what, cond)
	l.must(err)
	return s
}

func describe(s line.Snapshot) string { return lineproc.Describe(s) }

func (l *procLine) command(ctx context.Context, cmd string) line.Snapshot {
	l.t.Helper()
	s, err := l.Command(ctx, cmd)
	l.must(err)
	return s
}

func (l *procLine) tryCommand(ctx context.Context, cmd string) (int, string) {
	l.t.Helper()
	code, body, err := l.TryCommand(ctx, cmd)
	l.must(err)
	return code, body
}

func (l *procLine) simPost(ctx context.Context, path string) string {
	l.t.Helper()
	s, err := l.SimPost(ctx, path, "")
	l.must(err)
	return s
}

func (l *procLine) plc(ctx context.Context) sim.PLCState {
	l.t.Helper()
	st, err := l.PLC(ctx)
	l.must(err)
	return st
}

func (l *procLine) resetStart(ctx context.Context) {
	l.t.Helper()
	l.must(l.ResetStart(ctx))
}

// finish: lineproc's Finish; verify must pass. The ledger is opened for
// checks and closed at the test's end.
func (l *procLine) finish(ctx context.Context) (line.Snapshot, sim.GroundTruth, *aggregation.Store) {
	l.t.Helper()
	f, err := l.Finish(ctx)
	l.must(err)
	if f.VerifyErr != nil {
		l.t.Errorf("%v\n%s", f.VerifyErr, f.Verify)
	} else {
		l.t.Logf("%s", f.Verify)
	}
	store, err := l.OpenLedger()
	l.must(err)
	l.t.Cleanup(func() { store.Close() })
	return f.Final, f.Truth, store
}

// checkLedger: lineproc.CheckLedger; every problem fails the test.
func (l *procLine) checkLedger(ctx context.Context, store *aggregation.Store, gt sim.GroundTruth) aggregation.BatchSummary {
	l.t.Helper()
	sum, problems := lineproc.CheckLedger(ctx, store, l.Batch, gt)
	if len(problems) > 0 {
		l.t.Errorf("ledger against the simulator's ground truth:\n%s", strings.Join(problems, "\n"))
	}
	return sum
}

// checkInStep: with no duplicate or skip-print fault injected, nothing on
// the line puts on a unit a code other than the fresh one printed for it,
// so a wrong-code reject means the controller's print records are out of
// step with the units. A unit or two at the boundary of a hold may be; a
// run of them is the line rejecting good units because it does not
// realign.
func (l *procLine) checkInStep(final line.Snapshot) {
	l.t.Helper()
	n := final.Counters.RejectReason["wrong-code"]
	if n <= 2 {
		return
	}
	var first []string
	for _, p := range l.Procs {
		if !strings.HasPrefix(p.Name, "linectl") {
			continue
		}
		for _, ln := range strings.Split(p.Log(), "\n") {
			if strings.Contains(ln, "reason=wrong-code") && len(first) < 4 {
				first = append(first, ln)
			}
		}
	}
	l.t.Errorf("%d units rejected as wrong-code, with no fault injected that reprints a code: the print records are out of step with the units and the line does not realign. The first:\n%s",
		n, strings.Join(first, "\n"))
}

func levelOf(sum aggregation.BatchSummary, lv tracecode.Level) aggregation.LevelSummary {
	return lineproc.LevelOf(sum, lv)
}

func packedTotal(s line.Snapshot) uint64 { return lineproc.PackedTotal(s) }

// ---------------------------------------------------------------------------
// The tests.

// TestProcessKillRestart covers items 1, 3, 4, 5, 6 and 7: linectl is
// killed (SIGKILL) at seeded random moments of a batch — one within a few
// milliseconds of a pass verdict, one right after a pack — and restarted
// each time as an operator would: the line comes up Stopped with a purge
// required, the operator purges the line (linesim POST /purge) and clears,
// resets and starts. At the end the ledger must agree with what physically
// happened (every good unit's code commissioned under the labels on it,
// nothing else commissioned), `linectl verify` passes, the counters carry
// on across restarts (item 5) and the batch's last short group is packed
// as partial under a real label, not sent to rework (item 6).
func TestProcessKillRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	seed := *processSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 12))
	t.Logf("kill moments: seed %d (rerun with -args -process.seed=%d)", seed, seed)

	const units = 600
	faults := []sim.Fault{
		{Kind: sim.FaultNoRead, Rate: 0.01, After: 1},
		{Kind: sim.FaultLowGrade, Rate: 0.005, After: 1},
		{Kind: sim.FaultSkipPrint, Rate: 0.003, After: 1},
		{Kind: sim.FaultDuplicate, Rate: 0.002, After: 1},
		{Kind: sim.FaultMissing, Rate: 0.002, After: 1},
		{Kind: sim.FaultCameraLost, Rate: 0.002, After: 1},
	}
	l := startProcLine(ctx, t, processOpts{name: "kill", units: units, rate: 1200, seed: 1 + rng.Uint64N(1000), faults: faults})
	l.resetStart(ctx)

	// Four kills, spread over the batch, each after a random number of
	// units; the kinds in a random order.
	kinds := []string{"pass", "pack", "any", []string{"pass", "pack"}[rng.IntN(2)]}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for i, kind := range kinds {
		at := uint64(50 + 125*i + rng.IntN(80))
		l.waitLine(ctx, fmt.Sprintf("kill %d: %d units triggered", i+1, at), func(s line.Snapshot) bool {
			return s.State == "Execute" && s.Counters.Triggered >= at
		})
		before := l.killAfter(ctx, kind)
		t.Logf("kill %d (%s): at triggered %d passed %d packed %d (state %s)", i+1, kind,
			before.Counters.Triggered, before.Counters.Passed, packedTotal(before), before.State)

		// The PLC's watchdog stops the infeed once the controller is gone
		// (item 8); the operator comes, then restarts the controller.
		l.waitFor(ctx, "linesim's watchdog trips", func() (bool, string) {
			st := l.plc(ctx)
			return st.ControllerLost && !st.Running, fmt.Sprintf("%+v", st)
		})
		after := l.startController(ctx)
		// Item 4: restart resolution — Stopped, purge required, reset refused.
		if after.State != "Stopped" || !after.PurgeRequired {
			t.Fatalf("after restart %d: state %s purge_required %t, want Stopped with a purge required (%s)",
				i+1, after.State, after.PurgeRequired, describe(after))
		}
		if code, body := l.tryCommand(ctx, "reset"); code != http.StatusConflict {
			t.Errorf("after restart %d: reset before the purge was confirmed: HTTP %d %s, want 409", i+1, code, body)
		}
		purge := l.simPost(ctx, "/purge")
		l.command(ctx, "clear")
		l.waitLine(ctx, "clear done", func(s line.Snapshot) bool { return s.State == "Stopped" && !s.PurgeRequired })
		l.resetStart(ctx)
		// Item 5: the counters continue the batch; once a new unit came,
		// those on the line at the kill count as triggered too.
		restarted := l.waitLine(ctx, "a unit after the restart", func(s line.Snapshot) bool {
			return s.Counters.Triggered > after.Counters.Triggered
		})
		t.Logf("restart %d: ledger counters triggered %d passed %d rejected %d (before-restart %d); purge %s; first new unit → triggered %d",
			i+1, after.Counters.Triggered, after.Counters.Passed, after.Counters.Rejected,
			after.Counters.RejectReason["before-restart"], purge, restarted.Counters.Triggered)
		if restarted.Counters.Triggered < before.Counters.Triggered {
			t.Errorf("after restart %d the batch's triggered count is %d, before the kill it was %d",
				i+1, restarted.Counters.Triggered, before.Counters.Triggered)
		}
		if after.Counters.Passed == 0 && before.Counters.Passed > 0 {
			t.Errorf("after restart %d the passed count starts from 0 (before the kill %d)", i+1, before.Counters.Passed)
		}
	}

	final, gt, store := l.finish(ctx)
	t.Logf("simulator %+v", gt.Summary)
	t.Logf("final counters %+v", final.Counters)
	sum := l.checkLedger(ctx, store, gt)
	if final.Counters.Triggered != units {
		t.Errorf("the batch's triggered count at the end is %d, the PLC counted %d units (item 5)", final.Counters.Triggered, units)
	}

	// Item 6: the batch's last short group is packed as partial.
	var partial []sim.GroupTruth
	for _, g := range gt.Groups {
		if g.Level == 2 && g.Partial {
			partial = append(partial, g)
		}
	}
	l2 := levelOf(sum, 2)
	t.Logf("ledger L2: full parents %d, partial %d; the simulator's partial groups %d", l2.FullParents, l2.PartialParents, len(partial))
	if len(partial) == 0 {
		t.Logf("the simulator's good units filled whole groups this run: no partial group to check")
	}
	if int(l2.PartialParents) != len(partial) {
		t.Errorf("ledger L2 partial_parents %d, the simulator closed %d partial group(s) at the end of the run (item 6)", l2.PartialParents, len(partial))
	}
	for _, g := range partial {
		if _, err := tracecode.Parse(g.Label); err != nil {
			t.Errorf("the last, partial group %d (%d units) carries label %q %q, not a parent code: sent to rework (item 6)",
				g.ID, len(g.Children), g.Label, g.Text)
		}
	}
}

// killAfter kills linectl at a moment of the given kind: "pass" within a
// few milliseconds of a pass verdict (the passed counter moved), "pack"
// right after a pack (a packed-parent counter moved), "any" now. It polls
// the API back to back and returns the last snapshot before the kill.
func (l *procLine) killAfter(ctx context.Context, kind string) line.Snapshot {
	l.t.Helper()
	base, err := l.state(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	last := base
	for kind != "any" {
		s, err := l.state(ctx)
		if err != nil {
			l.t.Fatalf("waiting to kill after a %s: %v", kind, err)
		}
		last = s
		if kind == "pass" && s.Counters.Passed > base.Counters.Passed {
			break
		}
		if kind == "pack" && packedTotal(s) > packedTotal(base) {
			break
		}
		if s.State != "Execute" {
			l.t.Fatalf("waiting to kill after a %s, the line left Execute: %s", kind, describe(s))
		}
		if ctx.Err() != nil {
			l.t.Fatalf("waiting to kill after a %s: %v (%s)", kind, ctx.Err(), describe(s))
		}
	}
	l.killController()
	return last
}

// TestProcessWatchdogStopsInfeed covers item 8: linectl writes
// controller_alive; when it is killed, linesim's watchdog stops the infeed
// (controller_lost) and no unit comes any more.
func TestProcessWatchdogStopsInfeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := startProcLine(ctx, t, processOpts{name: "watchdog", units: 400, rate: 1200, seed: 3})
	l.resetStart(ctx)
	l.waitLine(ctx, "30 units", func(s line.Snapshot) bool { return s.Counters.Triggered >= 30 })
	if st := l.plc(ctx); !st.WatchdogArmed || !st.Running || st.ControllerLost {
		t.Fatalf("before the kill: the PLC's watchdog should be armed and the line running: %+v", st)
	}
	l.killController()
	var lost sim.PLCState
	l.waitFor(ctx, "controller_lost and the infeed stopped", func() (bool, string) {
		lost = l.plc(ctx)
		return lost.ControllerLost && !lost.Running, fmt.Sprintf("%+v", lost)
	})
	// The item counter stands: compare readings over five poll periods
	// (at 1200/min, ten units would have come).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 5; i++ {
		<-tick.C
		st := l.plc(ctx)
		if st.ItemCounter != lost.ItemCounter || !st.ControllerLost || st.Running {
			t.Fatalf("after the watchdog tripped the line goes on: item counter %d → %d, controller_lost %t, running %t",
				lost.ItemCounter, st.ItemCounter, st.ControllerLost, st.Running)
		}
	}
	t.Logf("watchdog tripped at item %d (alive value %d)", lost.ItemCounter, lost.ControllerAlive)
	if lost.ItemCounter >= 400 {
		t.Errorf("the whole batch ran (%d units) before the watchdog stopped the infeed", lost.ItemCounter)
	}
}

// TestProcessLabelMisapply covers item 3: a label falls off at the
// labeller (label-misapply at group 4), so that group and every later one
// carry the next group's label. The label scanner must catch it: the line
// holds with a labeller fault within a few groups; the operator purges,
// acknowledges and unholds; the batch finishes with no unit under a parent
// whose label is not on it.
func TestProcessLabelMisapply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const units = 200
	l := startProcLine(ctx, t, processOpts{name: "label", units: units, rate: 1200, seed: 5,
		faults: []sim.Fault{{Kind: sim.FaultLabelMisapply, At: 4}}})
	l.resetStart(ctx)
	held := l.waitLine(ctx, "the line holds on the labeller", func(s line.Snapshot) bool {
		return (s.State == "Held" || s.State == "Holding") && s.Faults["labeller"] != ""
	})
	plcAt := l.plc(ctx)
	t.Logf("held: %s; PLC item counter %d", describe(held), plcAt.ItemCounter)
	if plcAt.ItemCounter >= units {
		t.Errorf("the line held only after the whole batch had come (item %d)", plcAt.ItemCounter)
	}
	if held.Counters.LabelMismatches < 2 {
		t.Errorf("held with %d label mismatches counted, want at least 2 (label_mismatch_hold)", held.Counters.LabelMismatches)
	}
	if code, body := l.tryCommand(ctx, "unhold"); code != http.StatusConflict {
		t.Errorf("unhold before acknowledge: HTTP %d %s, want 409", code, body)
	}
	t.Logf("purge: %s", l.simPost(ctx, "/purge"))
	l.waitLine(ctx, "Held", func(s line.Snapshot) bool { return s.State == "Held" })
	l.command(ctx, "acknowledge")
	l.command(ctx, "unhold")
	l.waitLine(ctx, "Execute after unhold", func(s line.Snapshot) bool { return s.State == "Execute" })

	final, gt, store := l.finish(ctx)
	t.Logf("simulator %+v; counters %+v", gt.Summary, final.Counters)
	if gt.Summary.LabelsLost != 1 || gt.Summary.Misapplied == 0 {
		t.Fatalf("the simulator did not misapply labels as asked: %+v", gt.Summary)
	}
	l.checkLedger(ctx, store, gt)
	l.checkInStep(final)
	// No packed parent in the ledger is a label that went on a group other
	// than its own.
	for _, g := range gt.Groups {
		if !g.Misapplied || g.Label == "" {
			continue
		}
		p, err := tracecode.Parse(g.Label)
		if err != nil {
			continue
		}
		info, err := store.Code(ctx, p.Code)
		if err != nil {
			t.Errorf("group %d's label %s: %v", g.ID, p.Code, err)
			continue
		}
		if info.State == aggregation.StateCommissioned || info.State == aggregation.StateAggregated {
			t.Errorf("group %d carries label %s printed for another group, and the ledger has it %s", g.ID, p.Code, info.State)
		}
	}
}

// TestProcessGateFaults covers item 2: the reject gate's outcome. Passes
// the gate rejected all the same (late-pass) are taken back — their codes
// end decommissioned — and a unit to be rejected that went on
// (reject-failed) holds the line with a gate fault until the operator
// acknowledges.
func TestProcessGateFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const units = 250
	l := startProcLine(ctx, t, processOpts{name: "gate", units: units, rate: 1200, seed: 11, faults: []sim.Fault{
		{Kind: sim.FaultNoRead, Rate: 0.03, After: 1},
		{Kind: sim.FaultLatePass, Rate: 0.02, After: 1},
		{Kind: sim.FaultRejectFailed, At: 100},
	}})
	l.resetStart(ctx)
	held := l.waitLine(ctx, "the line holds on the gate", func(s line.Snapshot) bool {
		return (s.State == "Held" || s.State == "Holding") && s.Faults["gate"] != ""
	})
	t.Logf("held: %s", describe(held))
	if code, body := l.tryCommand(ctx, "unhold"); code != http.StatusConflict {
		t.Errorf("unhold before acknowledge: HTTP %d %s, want 409", code, body)
	}
	l.waitLine(ctx, "Held", func(s line.Snapshot) bool { return s.State == "Held" })
	// The operator retrieves the unit that went on, then acknowledges.
	l.command(ctx, "acknowledge")
	l.command(ctx, "unhold")
	l.waitLine(ctx, "Execute after unhold", func(s line.Snapshot) bool { return s.State == "Execute" })

	final, gt, store := l.finish(ctx)
	t.Logf("simulator %+v; counters %+v", gt.Summary, final.Counters)
	latePass, escaped := 0, 0
	for _, u := range gt.Units {
		switch u.GateFault {
		case sim.FaultLatePass:
			latePass++
		case sim.FaultRejectFailed:
			escaped++
			if !strings.Contains(held.Faults["gate"], fmt.Sprintf("item %d", u.Item)) {
				t.Errorf("the gate fault does not name the escaped item %d: %q", u.Item, held.Faults["gate"])
			}
		}
	}
	if latePass == 0 || escaped != 1 {
		t.Fatalf("the simulator acted %d late-pass and %d reject-failed faults; the test needs some and one", latePass, escaped)
	}
	// Every late-pass is a pass the gate rejected; so is a pass that
	// reached the PLC after its unit (no verdict at the gate), which a
	// loaded machine may produce.
	var noVerdict []uint32
	for _, u := range gt.Units {
		if u.Verdict == "none" {
			noVerdict = append(noVerdict, u.Item)
		}
	}
	if n := final.Counters.GateRejectedPasses; n < uint64(latePass) || n > uint64(latePass+len(noVerdict)) {
		t.Errorf("gate_rejected_passes %d, the gate rejected %d units with a pass (late-pass) and %d without a verdict %v",
			n, latePass, len(noVerdict), noVerdict)
	}
	if final.Counters.Escaped != 1 {
		t.Errorf("escaped %d, want 1", final.Counters.Escaped)
	}
	l.checkLedger(ctx, store, gt)
	l.checkInStep(final)
	for _, u := range gt.Units {
		if u.GateFault != sim.FaultLatePass {
			continue
		}
		p, err := tracecode.Parse(u.Code)
		if err != nil {
			t.Errorf("late-pass unit %d: code %q: %v", u.Item, u.Code, err)
			continue
		}
		info, err := store.Code(ctx, p.Code)
		if err != nil {
			t.Errorf("late-pass unit %d: %v", u.Item, err)
			continue
		}
		if info.State != aggregation.StateDecommissioned {
			t.Errorf("late-pass unit %d was rejected at the gate; its code %s is %s in the ledger, want decommissioned", u.Item, p.Code, info.State)
		}
	}
}

// TestProcessChallengeCameraLost covers item 9: the camera publishes
// nothing (camera-lost on every unit), so the challenge test's pass unit
// gets no result. The challenge fails and the line holds; the controller
// stays up, its API answers, and nothing panicked. Unhold repeats the test,
// which fails the same way.
func TestProcessChallengeCameraLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := startProcLine(ctx, t, processOpts{name: "challenge", units: 40, rate: 1200, seed: 13,
		faults: []sim.Fault{{Kind: sim.FaultCameraLost, Rate: 1}}})
	l.resetStart(ctx)
	held := l.waitLine(ctx, "the challenge fails and the line holds", func(s line.Snapshot) bool {
		return s.State == "Held" && len(s.Challenge) > 0
	})
	t.Logf("held: %s", describe(held))
	if held.ChallengeOK || held.Challenge[0].OK {
		t.Errorf("challenge passed without a camera result: %v", held.Challenge)
	}
	l.command(ctx, "unhold")
	again := l.waitLine(ctx, "the repeated challenge fails too", func(s line.Snapshot) bool {
		return s.State == "Held" && len(s.Challenge) > 0 && s.Counters.Triggered > held.Counters.Triggered
	})
	t.Logf("held again: %s", describe(again))
	// Still alive, still answering.
	for i := 0; i < 3; i++ {
		if _, err := l.state(ctx); err != nil {
			t.Fatalf("the API stopped answering: %v", err)
		}
	}
	if l.Ctl.Exited() {
		t.Fatalf("linectl exited: %v", l.Ctl.Err())
	}
	if log := l.Ctl.Log(); strings.Contains(log, "panic") {
		t.Errorf("linectl's log mentions a panic:\n%s", l.Ctl.Tail(60))
	}
	l.CtlDown = true
	if err := l.Ctl.Stop(ctx); err != nil {
		t.Errorf("linectl run on SIGTERM: %v (want exit 0)", err)
	}
}

var (
	getJSON  = lineproc.GetJSON
	postJSON = lineproc.PostJSON
)
