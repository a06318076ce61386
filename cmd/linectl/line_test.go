package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the gopcua server in the simulators logs through the standard logger
	if os.Getenv(asLinectl) == "1" {
		// Started as linectl by a test (bench line's simulator process:
		// os.Executable is this test binary).
		os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// asLinectl, set to 1 in the environment, makes this test binary linectl.
const asLinectl = "LINECTL_TEST_AS_LINECTL"

// bench line runs the simulated line in a process of its own (the test
// binary as linectl bench simproc), devices served directly: the batch
// reconciles with the ledger and the ground truth read back from that
// process, and the simulator's CPU is reported apart from the
// controller's. Latency and misses are the bench's figures, not asserted.
func TestBenchLineSimProcess(t *testing.T) {
	t.Setenv(asLinectl, "1")
	logFile := filepath.Join(t.TempDir(), "bench.log")
	rc, out, errs := runLinectl(t, "", "bench", "line", "--units", "60", "--rates", "1200", "--gate", "300ms", "--log", logFile)
	if rc != 0 {
		t.Fatalf("bench line: exit %d: %s", rc, errs)
	}
	if b, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(b), "level=INFO") {
		t.Errorf("--log: the controller's log was not kept (%v): %.200s", err, b)
	}
	var res demo.BenchLineResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(res.Simulator, "separate process") || !strings.Contains(res.Simulator, "served directly") {
		t.Fatalf("simulated_line: %q", res.Simulator)
	}
	if len(res.Runs) != 1 {
		t.Fatalf("runs: %+v", res.Runs)
	}
	r := res.Runs[0]
	if r.Err != "" || !r.InvariantsOK || !r.GroundTruthOK {
		t.Fatalf("run: error %q, invariants_ok %t, ground_truth_ok %t", r.Err, r.InvariantsOK, r.GroundTruthOK)
	}
	if r.SimCPU <= 0 || r.CPU <= 0 {
		t.Fatalf("CPU: controller %g%%, simulator %g%%: both should be measured", r.CPU, r.SimCPU)
	}
	for _, st := range []string{"camera", "queue", "journal", "print_wait", "plc", "controller", "total"} {
		if _, ok := r.Stages[st]; !ok {
			t.Errorf("stage %s missing: %+v", st, r.Stages)
		}
	}
	if w := r.Ledger.Writes; w == nil || w.Writes == 0 || len(w.Stages) != 6 {
		t.Errorf("ledger write stages: %+v", w)
	}
	if r.SyncDuring.N == 0 || r.SyncPaced.N == 0 || r.SyncPacedAfter.N == 0 || r.JournalOverSyncDuring <= 0 {
		t.Errorf("disk probes: during %+v, paced %+v / %+v, ratio %g", r.SyncDuring, r.SyncPaced, r.SyncPacedAfter, r.JournalOverSyncDuring)
	}
	if r.Lat.Verdicts == 0 || r.Runtime.AllocObjsPerU <= 0 || r.Runtime.GOMAXPROCS == 0 {
		t.Fatalf("verdicts %d, runtime %+v", r.Lat.Verdicts, r.Runtime)
	}
	if rc, _, errs := runLinectl(t, "", "bench", "line", "--sim", "elsewhere"); rc == 0 || !strings.Contains(errs, `--sim: "elsewhere" is neither process nor inprocess`) {
		t.Fatalf("--sim elsewhere: exit %d, %s", rc, errs)
	}
}

func quietCLI() *cli {
	return &cli{stdin: nil, stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// lineCLI is quietCLI whose log (controller and simulator, info and up) is
// kept in memory and, if the test fails, printed: alarms, rework, labels
// and purges are what a failure of the whole line is read from.
func lineCLI(t *testing.T) *cli {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		t.Logf("the line's log:\n%s", buf.String())
	})
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	return &cli{stdin: nil, stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(w, nil))}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// testOpts: a 1200/min line whose reject gate is 300 ms after the trigger.
// The tests run under the race detector beside other packages' tests on a
// small machine; the longer belt keeps them about the logic, not about
// whether a starved CPU meets a 100 ms gate (that is `linectl bench line`).
// For the same reason the labeller waits up to 10 s for a group's label
// rather than 2 s: a clean-clone CI run once saw a label come later than 2 s
// (pack and label after three synced ledger writes, under -race), and the
// late label went on the next group. That limit is in the README.
// The gate was 200 ms until the line journaled every command and alarm
// (line.Line): in full -race runs of this package on a loaded 2-core
// machine (load 8–20) a challenge unit right after start then missed its
// 180 ms deadline twice in three runs (TestReworkThroughAPI); alone it
// passed.
//
// The product is the embedded example (Options.Product ""), as `linectl
// demo` uses it from any directory.
func testOpts(units int, faults []sim.Fault) demo.Options {
	return demo.Options{Units: units, Rate: 1200, Seed: 42,
		Gate: 300 * time.Millisecond, LabelTimeout: 10 * time.Second, Faults: faults, Log: quietCLI().log}
}

// runningLine starts a simulated line with a controller, reset and started.
func runningLine(t *testing.T, ctx context.Context, o demo.Options) *demo.Line {
	t.Helper()
	o.Data, o.Log = t.TempDir(), lineCLI(t).log
	d, err := demo.Start(ctx, o, wireDemo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if err := d.StartBatch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		t.Fatal(err)
	}
	return d
}

// beltAtRest waits until no unit of the simulated line is on its belt:
// every unit fed has reached the gate (or fell off), so no group closes
// before the infeed runs again.
func beltAtRest(ctx context.Context, s *sim.Sim) error {
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	for {
		gt := s.GroundTruth()
		if gt.Summary.OnLine == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the belt did not come to rest: %d units on it: %w", gt.Summary.OnLine, ctx.Err())
		case <-tk.C:
		}
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A whole batch on the simulated line with every unit fault: the ledger
// balances, verify passes, and it agrees with what physically happened.
func TestDemoHeadlessReconciles(t *testing.T) {
	o := testOpts(120, demo.DefaultFaults())
	o.Data = t.TempDir()
	o.Handoff = wireDemoHandoff
	rep, err := demo.Run(ctxFor(t, 90*time.Second), o, wireDemo)
	if err != nil {
		t.Fatal(err)
	}
	// Then QA's release, activation and the hand-off: every document
	// delivered, and each receiver found every code the ground truth
	// says left the line good (units and applied labels).
	// DESIGN.md's export contract, exactly: no product named (the demo's
	// product is found among the embedded examples).
	if rc, out, stderr := runLinectl(t, "", "export", "--data", filepath.Join(o.Data, "ledger"), "--batch", rep.Batch, "--format", "msfx-xml"); rc != 0 || !strings.Contains(out, "RelationCreate") {
		t.Errorf("linectl export of the demo's batch: rc %d, %s", rc, stderr)
	}
	if h := rep.Handoff; h == nil || !h.OK || len(h.Documents) != 3 || h.Expected == 0 {
		t.Errorf("hand-off: %+v", h)
	} else {
		for _, d := range h.Documents {
			if !strings.Contains(d.Answer, fmt.Sprintf("all %d expected codes present", h.Expected)) {
				t.Errorf("%s: %s", d.Format, d.Answer)
			}
		}
	}
	if !rep.InvariantsOK {
		t.Errorf("invariants: %v", rep.Invariants)
	}
	if !rep.GroundTruthOK {
		t.Errorf("ground truth: %v", rep.GroundTruth)
	}
	if !rep.ChallengeOK || len(rep.Challenge) != len(demo.Challenge()) {
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
	if rep.Latency.Verdicts == 0 {
		t.Error("no verdict latency recorded")
	}
}

// The controller stops mid-batch (as a crash would) while the line goes on.
// On restart the codes it had sent or printed are voided, the line starts
// Stopped and will not reset before the operator confirms a purge; then the
// batch finishes and everything reconciles.
func TestControllerRestartMidBatch(t *testing.T) {
	ctx := ctxFor(t, 120*time.Second)
	d := runningLine(t, ctx, testOpts(220, demo.DefaultFaults()))
	if err := demo.WaitLine(ctx, d.Line(), func(s line.Snapshot) bool { return s.Counters.Passed >= 40 }); err != nil {
		t.Fatal(err)
	}
	if err := d.StopController(); err != nil {
		t.Fatal(err)
	}
	// A new process: the ledger is reopened from disk.
	if err := d.ReopenLedger(); err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	snap := d.Snapshot()
	if snap.State != "Stopped" || !snap.PurgeRequired {
		t.Fatalf("after restart: state %s purge_required %t, want Stopped and a purge", snap.State, snap.PurgeRequired)
	}
	for _, st := range []aggregation.CodeState{aggregation.StateSent, aggregation.StatePrinted} {
		n := 0
		if err := d.Store().Codes(ctx, d.Setup().Batch.Batch, 1, st, func(tracecode.Code) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("after restart %d codes still %s; want all voided", n, st)
		}
	}
	if err := d.Commands(ctx, line.CmdReset); !errors.Is(err, line.ErrInvalidCommand) {
		t.Fatalf("reset before the purge is confirmed: err %v, want ErrInvalidCommand", err)
	}
	// The operator purges the line once it has come to rest (groups
	// waiting at the labeller go to rework), then confirms it. Units given
	// a pass before the stop reach the gate up to a trigger-to-gate time
	// after the restart and can close a group: purged before that, the
	// group would be read after the purge but below the clear's mark, and
	// take the next group's label (CI saw it once, session 24).
	if err := beltAtRest(ctx, d.Sim()); err != nil {
		t.Fatal(err)
	}
	if err := d.Sim().Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Commands(ctx, line.CmdClear); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitLine(ctx, d.Line(), func(s line.Snapshot) bool { return s.State == "Stopped" && !s.PurgeRequired }); err != nil {
		t.Fatal(err)
	}
	if err := d.Commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := d.Report(ctx, time.Second, 0)
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
	faults := append(demo.DefaultFaults(), sim.Fault{Kind: sim.FaultCameraDown, At: 60, For: 1500 * time.Millisecond})
	d := runningLine(t, ctx, testOpts(160, faults))
	r := d.Line()
	if err := demo.WaitLine(ctx, r, func(s line.Snapshot) bool { return s.State == "Held" && s.Faults["camera"] != "" }); err != nil {
		t.Fatalf("line did not hold on the camera's disconnect: %v", err)
	}
	if err := demo.WaitLine(ctx, r, func(s line.Snapshot) bool { return len(s.Faults) == 0 }); err != nil {
		t.Fatalf("camera fault never cleared: %v", err)
	}
	if err := d.Commands(ctx, line.CmdUnhold); err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := d.Report(ctx, time.Second, 0)
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

// Manual rework while the line runs: unpack a bundle, decommission and
// sample units, replace a unit in another bundle — through the line's API
// (HTTP, codes as scanned) — each journaled, the ledger balanced after.
func TestReworkThroughAPI(t *testing.T) {
	ctx := ctxFor(t, 120*time.Second)
	c := quietCLI()
	d := runningLine(t, ctx, testOpts(120, demo.DefaultFaults()[:3])) // the challenge test's faults only
	r := d.Line()
	if err := demo.WaitLine(ctx, r, func(s line.Snapshot) bool { return s.Counters.Packed["L2"] >= 3 }); err != nil {
		t.Fatal(err)
	}
	batch := d.Setup().Batch.Batch
	var bundles []tracecode.Code
	if err := d.Store().Codes(ctx, batch, 2, aggregation.StateCommissioned, func(c tracecode.Code) error {
		bundles = append(bundles, c)
		return nil
	}); err != nil || len(bundles) < 2 {
		t.Fatalf("bundles: %v %v", bundles, err)
	}
	children := func(p tracecode.Code) []tracecode.Code {
		var cs []tracecode.Code
		if err := d.Store().Tree(ctx, p, func(n aggregation.Node) error {
			if n.Parent == p {
				cs = append(cs, n.Code)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	p, q := bundles[0], bundles[1]
	pc, qc := children(p), children(q)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// [hmi hook] The HMI needs a session (the demo's operator) and its CSRF
	// token; the user is the logged-in one, never a field of the body.
	stop, err := serveAPIOn(ln, r, d.Store(), true, c)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	base := "http://" + ln.Addr().String()
	res, err := hc.Post(base+"/api/v1/session", "application/json", strings.NewReader(`{"user":"operator","password":"demo"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ CSRF string }
	if err := json.NewDecoder(res.Body).Decode(&sess); err != nil || res.StatusCode != 200 {
		t.Fatalf("login: HTTP %d %v", res.StatusCode, err)
	}
	res.Body.Close()
	userField := regexp.MustCompile(`,"user":"[a-z0-9]+"`)
	post := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/line/rework", strings.NewReader(userField.ReplaceAllString(body, "")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", sess.CSRF)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// As a scanner hands it over: GS1 element string with symbology id.
	scanned := func(code tracecode.Code) string {
		pp, err := tracecode.Parse(string(code))
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll("]d2"+pp.GS1Data(), "\x1d", `\u001d`)
	}
	steps := []struct {
		name   string
		body   string
		status int
	}{
		{"unpack a bundle", fmt.Sprintf(`{"kind":"unpack","code":%q,"reason":"wrong count found at check weigher","user":"op1"}`, scanned(p)), 200},
		{"decommission a damaged unit", fmt.Sprintf(`{"kind":"decommission","code":%q,"reason":"carton crushed","user":"op1"}`, pc[0]), 200},
		{"sample a unit", fmt.Sprintf(`{"kind":"sample","code":%q,"reason":"QA retained sample","user":"qa1"}`, pc[1]), 200},
		{"replace a unit in another bundle", fmt.Sprintf(`{"kind":"replace","code":%q,"old":%q,"new":%q,"reason":"damaged unit swapped","user":"op1"}`, q, qc[0], pc[2]), 200},
		{"reprint a bundle's label", fmt.Sprintf(`{"kind":"reprint","code":%q,"reason":"label torn at the case packer","user":"op1"}`, q), 200},
		{"reprint of a loose unit is refused", fmt.Sprintf(`{"kind":"reprint","code":%q,"reason":"x","user":"op1"}`, pc[3]), 409},
		{"decommission a packed unit is refused", fmt.Sprintf(`{"kind":"decommission","code":%q,"reason":"x","user":"op1"}`, qc[1]), 409},
		{"sample twice is refused", fmt.Sprintf(`{"kind":"sample","code":%q,"reason":"again","user":"qa1"}`, pc[1]), 409},
		{"no reason", fmt.Sprintf(`{"kind":"sample","code":%q,"user":"qa1"}`, pc[3]), 400},
		{"unknown kind", fmt.Sprintf(`{"kind":"shred","code":%q,"reason":"x","user":"qa1"}`, pc[3]), 400},
		{"garbage code", `{"kind":"sample","code":"]d2010690123456789","reason":"x","user":"qa1"}`, 400},
		{"unknown code", `{"kind":"sample","code":"(01)06901234567892(21)NOSUCHCODE","reason":"x","user":"qa1"}`, 404},
		{"not JSON", `kind=sample`, 400},
	}
	for _, s := range steps {
		if got, body := post(s.body); got != s.status {
			t.Errorf("%s: status %d (%s), want %d", s.name, got, body, s.status)
		}
	}
	for code, want := range map[tracecode.Code]aggregation.CodeState{
		pc[0]: aggregation.StateDecommissioned, pc[1]: aggregation.StateSampled, pc[2]: aggregation.StateAggregated,
		qc[0]: aggregation.StateCommissioned, pc[3]: aggregation.StateCommissioned,
	} {
		info, err := d.Store().Code(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != want {
			t.Errorf("code %s is %s, want %s", code, info.State, want)
		}
		if want != aggregation.StateCommissioned && info.History[len(info.History)-1].Actor.Kind != aggregation.ActorUser {
			t.Errorf("code %s: last event not by a user: %+v", code, info.History[len(info.History)-1])
		}
	}
	if err := d.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	sum, err := d.Store().Summary(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if p := sum.Check(); len(p) != 0 {
		t.Fatalf("ledger unbalanced after rework: %v", p)
	}
	vr, err := d.Store().Verify(ctx)
	if err != nil || !vr.OK() {
		t.Fatalf("verify after rework: %v %v", err, vr.Problems)
	}
}

// `linectl demo --headless` from a directory with no examples in it: the
// product, rules and code files are embedded. The report file has the
// contract's keys; the exit status agrees with it.
func TestDemoCommandFromAnyDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	c, _, stderr := testCLI()
	err := cmdDemo(ctxFor(t, 90*time.Second), c, []string{"--headless", "--units", "30", "--rate", "1200", "--gate", "200ms", "--report", "report.json"})
	var ee exitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("linectl demo: %v\n%s", err, stderr)
	}
	data, rerr := os.ReadFile("report.json")
	if rerr != nil {
		t.Fatalf("report: %v (demo: %v)", rerr, err)
	}
	var rep map[string]any
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"batch", "invariants_ok", "ground_truth_ok", "deadline_misses", "verdict_latency_ms", "counts"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	if rep["invariants_ok"] != true || rep["ground_truth_ok"] != true {
		t.Errorf("report: invariants %v %v, ground truth %v %v", rep["invariants_ok"], rep["invariant_problems"], rep["ground_truth_ok"], rep["ground_truth_problems"])
	}
	// Exit 1 only for what the report says failed (here: a deadline miss
	// on a loaded machine).
	if misses, _ := rep["deadline_misses"].(float64); (err != nil) != (misses > 0) {
		t.Errorf("exit error %v with %v deadline misses", err, misses)
	}
	for _, bad := range [][]string{{"--headless"}, {"--report", "r.json"}, {"--units", "-1", "--headless"}, {"extra"}} {
		if err := cmdDemo(ctxFor(t, 10*time.Second), c, bad); err == nil {
			t.Errorf("linectl demo %v: no error", bad)
		}
	}
}
