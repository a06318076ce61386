package main

// Whole-line tests with `linesim` and `linectl run` as separate processes,
// driven the way an operator runs the line: commands through linectl's
// HTTP API, the operator's hands (purge, empty the reject bin) through
// linesim's. They cover issue 12's "Done when" (items 1–9): what a
// restart, a killed controller, a misapplied label and the reject gate's
// confirmation do to the ledger, checked against the simulator's ground
// truth. Each test names the items it covers.
//
// The two binaries are built once per test binary run, without -race: they
// are other processes. Every process is started in its own process group
// and killed with it in t.Cleanup. Waiting is always polling a condition
// with a deadline; no assertion is about how long something took.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

var processSeed = flag.Uint64("process.seed", 0, "seed of TestProcessKillRestart's kill moments (0: from the clock; the test logs it)")

// ---------------------------------------------------------------------------
// The binaries.

var procBins struct {
	once             sync.Once
	linesim, linectl string
	err              error
}

// processBinaries builds linesim and linectl (once per test binary run)
// into a directory named after this process; directories left by test
// binaries that are no longer running are removed first.
func processBinaries(t *testing.T) (linesim, linectl string) {
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
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			procBins.err = fmt.Errorf("module root not found from %s: %w", root, err)
			return
		}
		removeStaleBinDirs()
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("%s%d", binDirPrefix, os.Getpid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			procBins.err = err
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			procBins.err = fmt.Errorf("the go command is needed to build linesim and linectl: %w", err)
			return
		}
		for _, b := range []struct {
			name string
			dst  *string
		}{{"linesim", &procBins.linesim}, {"linectl", &procBins.linectl}} {
			out := filepath.Join(dir, b.name)
			cmd := exec.Command(gobin, "build", "-o", out, "./cmd/"+b.name)
			cmd.Dir = root
			if msg, err := cmd.CombinedOutput(); err != nil {
				procBins.err = fmt.Errorf("go build ./cmd/%s: %v\n%s", b.name, err, msg)
				return
			}
			*b.dst = out
		}
	})
	if procBins.err != nil {
		t.Fatal(procBins.err)
	}
	return procBins.linesim, procBins.linectl
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
// Processes.

// proc is one child process in its own process group; its stdout and
// stderr go to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // Wait's answer, once done is closed
}

func startProc(t *testing.T, name, logPath, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill kills the process group with SIGKILL (as a crash or a power cut
// would) and waits for the process to be reaped.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// stop asks the process to stop (SIGTERM, as a supervisor would) and
// waits for it; the answer is its exit.
func (p *proc) stop(ctx context.Context) error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("%s did not stop on SIGTERM: %w", p.name, ctx.Err())
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// digest is what a failure is read from: the log's warnings, errors and
// anything not from the logger (a panic, a usage message), then its last n
// lines.
func (p *proc) digest(n int) string {
	var b strings.Builder
	for _, ln := range strings.Split(p.log(), "\n") {
		if ln != "" && (!strings.HasPrefix(ln, "time=") || !strings.Contains(ln, "level=INFO")) {
			b.WriteString(ln + "\n")
		}
	}
	b.WriteString("--- last lines:\n")
	b.WriteString(p.tail(n))
	return b.String()
}

// tail is the last n lines of the process's log.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… %d lines before", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// A line: linesim and linectl run on it.

// processOpts is one test's line.
type processOpts struct {
	name    string // batch id suffix and log names
	units   int
	rate    float64
	seed    uint64
	faults  []sim.Fault
	watchOK bool // the test itself checks linesim's watchdog (no extra waiting)
}

// procLine is a simulated line (linesim) with a controller (linectl run),
// both separate processes.
type procLine struct {
	t        *testing.T
	o        processOpts
	dir      string
	linectl  string
	simURL   string // http://host:port of linesim's HTTP API
	api      string // http://host:port/api/line
	apiAddr  string
	lineCfg  string
	data     string
	batch    string
	sim      *proc
	ctl      *proc
	ctlDown  bool // linectl was killed or stopped on purpose
	ctlRuns  int
	allProcs []*proc
	ports    map[int]bool
}

// The belt of these tests: the reject gate is 200 ms after the trigger and
// the labeller waits up to 10 s for a label, as in testOpts — the machine
// is small and shared, and these tests are about the logic.
const (
	procGate         = 200 * time.Millisecond
	procLabelTimeout = 10 * time.Second
)

// startProcLine writes both configs, starts linesim and linectl run and
// waits until both answer.
func startProcLine(ctx context.Context, t *testing.T, o processOpts) *procLine {
	t.Helper()
	simBin, ctlBin := processBinaries(t)
	l := &procLine{t: t, o: o, dir: t.TempDir(), linectl: ctlBin}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range l.allProcs {
			t.Logf("--- log of %s: warnings and errors, then its last lines:\n%s", p.name, p.digest(40))
		}
	})

	// linesim, on ports of our choosing; if one was taken meanwhile (the
	// ports are free when picked, not reserved), again on others.
	var listen sim.Listen
	for attempt := 1; ; attempt++ {
		listen = sim.Listen{Modbus: l.port(t), PLCOPCUA: "off", Printer: l.port(t), Camera: l.port(t),
			AggCamera: l.port(t), Label: l.port(t), LabelScanner: l.port(t), HTTP: l.port(t)}
		err := l.startSim(ctx, simBin, listen, attempt)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(l.sim.log(), "address already in use") {
			t.Fatalf("linesim: %v", err)
		}
		t.Logf("linesim attempt %d: a port was taken; again on other ports", attempt)
	}

	// linectl's config: the shipped example with these ports.
	lf, err := loadLineFile(lineExample)
	if err != nil {
		t.Fatal(err)
	}
	product, err := filepath.Abs(gs1Product)
	if err != nil {
		t.Fatal(err)
	}
	l.batch = "P" + strings.ToUpper(o.name)
	// An old-style config with a batch section: the batch is started at
	// the first start and resumed at every restart (config.go).
	lf.Product, lf.Products, lf.Line = product, nil, "PROC-L1"
	lf.Batch = &batchFile{ID: l.batch, ProductionDate: "2026-11-23", Expiry: "2028-11-22", Planned: o.units, Levels: 2}
	lf.Settings.Gate, lf.Settings.Challenge = procGate, []string{"pass"}
	lf.Devices.PLC.Modbus.Address = listen.Modbus
	lf.Devices.Printer.Stream.Endpoint = "opc.tcp://" + listen.Printer
	lf.Devices.Camera.Stream.Endpoint = "opc.tcp://" + listen.Camera
	if len(lf.Devices.AggCameras) != 1 || len(lf.Devices.LabelScanners) != 1 || lf.Devices.LabelPrinter == nil {
		t.Fatalf("%s: want one aggregation camera, one label scanner and a label printer", lineExample)
	}
	lf.Devices.AggCameras[0].Stream.Endpoint = "opc.tcp://" + listen.AggCamera
	lf.Devices.LabelScanners[0].Stream.Endpoint = "opc.tcp://" + listen.LabelScanner
	lf.Devices.LabelPrinter.Address = listen.Label
	for _, sig := range []string{"gate_outcome", "controller_alive"} {
		if _, ok := lf.Devices.PLC.Signals[sig]; !ok {
			t.Fatalf("%s: plc.signals.%s is not mapped", lineExample, sig)
		}
	}
	lineYAML, err := yaml.Marshal(lf)
	if err != nil {
		t.Fatal(err)
	}
	l.lineCfg = filepath.Join(l.dir, "line.yaml")
	if err := os.WriteFile(l.lineCfg, lineYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	l.data = filepath.Join(l.dir, "ledger")
	l.apiAddr = l.port(t)
	l.api = "http://" + l.apiAddr + "/api/line"
	l.startController(ctx)
	return l
}

// startSim writes linesim's config for these ports, starts it and waits
// until its HTTP API answers; an error if it exits first.
func (l *procLine) startSim(ctx context.Context, bin string, listen sim.Listen, attempt int) error {
	l.t.Helper()
	watchdog := time.Second
	scfg := struct {
		sim.Config `yaml:",inline"`
	}{sim.Config{Seed: l.o.seed, Rate: l.o.rate, Units: l.o.units, Positions: sim.Positions{Gate: procGate},
		Ratios: []int{10}, LabelTimeout: procLabelTimeout, StartStopped: true, ControllerWatchdog: &watchdog,
		Listen: listen, Faults: l.o.faults}}
	simYAML, err := yaml.Marshal(scfg)
	if err != nil {
		l.t.Fatal(err)
	}
	simCfg := filepath.Join(l.dir, "linesim.yaml")
	if err := os.WriteFile(simCfg, simYAML, 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.simURL = "http://" + listen.HTTP
	l.sim = startProc(l.t, fmt.Sprintf("linesim (attempt %d)", attempt), filepath.Join(l.dir, fmt.Sprintf("linesim-%d.log", attempt)), bin,
		"--config", simCfg, "--units", strconv.Itoa(l.o.units), "--rate", strconv.FormatFloat(l.o.rate, 'g', -1, 64),
		"--stay", "--groundtruth", filepath.Join(l.dir, "groundtruth.json"))
	l.allProcs = append(l.allProcs, l.sim)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var ep sim.Endpoints
		err := getJSON(ctx, l.simURL+"/endpoints", &ep)
		if err == nil && ep.LabelScanner != "" {
			return nil
		}
		select {
		case <-l.sim.done:
			return fmt.Errorf("exited before it answered: %v", l.sim.err)
		case <-ctx.Done():
			return fmt.Errorf("GET /endpoints: %v (last error %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// port picks a free loopback port below the kernel's ephemeral range
// (32768 up on Linux), so that no port the simulator's own servers or any
// client connection is handed by the kernel can take it before linesim
// binds it; and none twice in one test.
func (l *procLine) port(t *testing.T) string {
	t.Helper()
	if l.ports == nil {
		l.ports = map[int]bool{}
	}
	for range 200 {
		p := 20000 + rand.IntN(12000)
		if l.ports[p] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		l.ports[p] = true
		return addr
	}
	t.Fatal("no free loopback port in 20000..31999")
	return ""
}

// startController starts (or restarts) `linectl run` and waits until its
// API answers (it has connected to every device).
func (l *procLine) startController(ctx context.Context) line.Snapshot {
	l.t.Helper()
	l.ctlRuns++
	l.ctlDown = false
	l.ctl = startProc(l.t, fmt.Sprintf("linectl run #%d", l.ctlRuns), filepath.Join(l.dir, fmt.Sprintf("linectl-%d.log", l.ctlRuns)),
		l.linectl, "run", "--config", l.lineCfg, "--data", l.data, "--listen", l.apiAddr, "--local-api")
	l.allProcs = append(l.allProcs, l.ctl)
	return l.waitLine(ctx, "the line API answers", func(line.Snapshot) bool { return true })
}

// killController kills linectl with SIGKILL and waits until it is gone.
func (l *procLine) killController() {
	l.ctlDown = true
	l.ctl.kill()
}

// waitFor polls cond (every 20 ms) until it holds; past ctx's deadline the
// test fails with what cond last said. A controller that exits fails it.
func (l *procLine) waitFor(ctx context.Context, what string, cond func() (bool, string)) {
	l.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		if l.ctl != nil && !l.ctlDown && l.ctl.exited() {
			l.t.Fatalf("waiting for %s: %s exited: %v (last: %s)", what, l.ctl.name, l.ctl.err, last)
		}
		if l.sim.exited() {
			l.t.Fatalf("waiting for %s: linesim exited: %v", what, l.sim.err)
		}
		select {
		case <-ctx.Done():
			l.t.Fatalf("waiting for %s: %v; last: %s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// state is GET /api/line's line part.
func (l *procLine) state(ctx context.Context) (line.Snapshot, error) {
	var doc struct {
		Line line.Snapshot `json:"line"`
	}
	err := getJSON(ctx, l.api, &doc)
	return doc.Line, err
}

// waitLine polls GET /api/line until cond holds.
func (l *procLine) waitLine(ctx context.Context, what string, cond func(line.Snapshot) bool) line.Snapshot {
	l.t.Helper()
	var sn line.Snapshot
	l.waitFor(ctx, what, func() (bool, string) {
		s, err := l.state(ctx)
		if err != nil {
			return false, err.Error()
		}
		sn = s
		return cond(s), describe(s)
	})
	return sn
}

func describe(s line.Snapshot) string {
	return fmt.Sprintf("state %s (%s), purge_required %t, faults %v, in flight %d, counters %+v, challenge %v",
		s.State, s.Why, s.PurgeRequired, s.Faults, s.InFlight, s.Counters, s.Challenge)
}

// command gives an operator command through the API; it must be accepted.
func (l *procLine) command(ctx context.Context, cmd string) line.Snapshot {
	l.t.Helper()
	code, body := l.tryCommand(ctx, cmd)
	if code != http.StatusOK {
		l.t.Fatalf("command %s: HTTP %d %s", cmd, code, body)
	}
	var sn line.Snapshot
	if err := json.Unmarshal([]byte(body), &sn); err != nil {
		l.t.Fatalf("command %s: answer %q: %v", cmd, body, err)
	}
	return sn
}

func (l *procLine) tryCommand(ctx context.Context, cmd string) (int, string) {
	l.t.Helper()
	code, body, err := postJSON(ctx, l.api+"/commands", fmt.Sprintf(`{"command":%q,"user":"op1"}`, cmd))
	if err != nil {
		l.t.Fatalf("command %s: %v", cmd, err)
	}
	return code, body
}

// simPost is the operator's hand on the line: POST /purge, /bin/empty.
func (l *procLine) simPost(ctx context.Context, path string) string {
	l.t.Helper()
	code, body, err := postJSON(ctx, l.simURL+path, "{}")
	if err != nil || code != http.StatusOK {
		l.t.Fatalf("linesim POST %s: HTTP %d %s %v", path, code, body, err)
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(body)) != nil {
		return body
	}
	return b.String()
}

func (l *procLine) plc(ctx context.Context) sim.PLCState {
	l.t.Helper()
	var st sim.PLCState
	if err := getJSON(ctx, l.simURL+"/plc", &st); err != nil {
		l.t.Fatalf("linesim GET /plc: %v", err)
	}
	return st
}

func (l *procLine) groundTruth(ctx context.Context) sim.GroundTruth {
	l.t.Helper()
	var gt sim.GroundTruth
	if err := getJSON(ctx, l.simURL+"/groundtruth", &gt); err != nil {
		l.t.Fatalf("linesim GET /groundtruth: %v", err)
	}
	return gt
}

// resetStart: reset and start, then wait for Execute.
func (l *procLine) resetStart(ctx context.Context) {
	l.t.Helper()
	l.command(ctx, "reset")
	l.command(ctx, "start")
	l.waitLine(ctx, "Execute after start", func(s line.Snapshot) bool { return s.State == "Execute" })
}

// finish waits until every unit has left the simulated line and the
// controller has decided them all, completes the batch, stops linectl
// (SIGTERM: exit 0), runs `linectl verify` (exit 0) and returns the last
// snapshot, the ground truth and the ledger, opened read for checks.
func (l *procLine) finish(ctx context.Context) (line.Snapshot, sim.GroundTruth, *aggregation.Store) {
	l.t.Helper()
	l.waitFor(ctx, "linesim finished the batch", func() (bool, string) {
		var gt sim.GroundTruth
		if err := getJSON(ctx, l.simURL+"/groundtruth", &gt); err != nil {
			return false, err.Error()
		}
		return gt.Finished, fmt.Sprintf("%+v", gt.Summary)
	})
	l.waitLine(ctx, "every unit decided", func(s line.Snapshot) bool { return s.State == "Execute" && s.InFlight == 0 })
	l.command(ctx, "complete")
	final := l.waitLine(ctx, "Complete", func(s line.Snapshot) bool { return s.State == "Complete" })
	gt := l.groundTruth(ctx)
	l.ctlDown = true
	if err := l.ctl.stop(ctx); err != nil {
		l.t.Fatalf("linectl run on SIGTERM: %v (want exit 0)", err)
	}
	verify := exec.CommandContext(ctx, l.linectl, "verify", "--data", l.data)
	out, err := verify.CombinedOutput()
	if err != nil {
		l.t.Errorf("linectl verify --data: %v\n%s", err, out)
	} else {
		l.t.Logf("%s", bytes.TrimSpace(out))
	}
	store, err := aggregation.Open(l.data, aggregation.Options{})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { store.Close() })
	return final, gt, store
}

// checkLedger: the ledger against the ground truth (compareTruth), the
// batch balances, and its level-1 counters say what left the line as good.
func (l *procLine) checkLedger(ctx context.Context, store *aggregation.Store, gt sim.GroundTruth) aggregation.BatchSummary {
	l.t.Helper()
	if problems := demo.CompareTruth(ctx, store, l.batch, gt); len(problems) > 0 {
		l.t.Errorf("ledger against the simulator's ground truth:\n%s", strings.Join(problems, "\n"))
	}
	sum, err := store.Summary(ctx, l.batch)
	if err != nil {
		l.t.Fatal(err)
	}
	if p := sum.Check(); len(p) > 0 {
		l.t.Errorf("batch does not balance: %v", p)
	}
	l1 := levelOf(sum, 1)
	if got := l1.Commissioned - l1.Sampled - l1.Decommissioned; got != int64(gt.Summary.Good) {
		l.t.Errorf("ledger L1: commissioned %d − sampled %d − decommissioned %d = %d, the simulator shipped %d good units",
			l1.Commissioned, l1.Sampled, l1.Decommissioned, got, gt.Summary.Good)
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
	for _, p := range l.allProcs {
		if !strings.HasPrefix(p.name, "linectl") {
			continue
		}
		for _, ln := range strings.Split(p.log(), "\n") {
			if strings.Contains(ln, "reason=wrong-code") && len(first) < 4 {
				first = append(first, ln)
			}
		}
	}
	l.t.Errorf("%d units rejected as wrong-code, with no fault injected that reprints a code: the print records are out of step with the units and the line does not realign. The first:\n%s",
		n, strings.Join(first, "\n"))
}

func levelOf(sum aggregation.BatchSummary, lv tracecode.Level) aggregation.LevelSummary {
	for _, l := range sum.Levels {
		if l.Level == lv {
			return l
		}
	}
	return aggregation.LevelSummary{}
}

// ---------------------------------------------------------------------------
// HTTP.

var procHTTP = &http.Client{Timeout: 5 * time.Second}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := procHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d %s", url, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

func postJSON(ctx context.Context, url, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := procHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func packedTotal(s line.Snapshot) uint64 {
	var n uint64
	for _, v := range s.Counters.Packed {
		n += v
	}
	return n
}

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
	if l.ctl.exited() {
		t.Fatalf("linectl exited: %v", l.ctl.err)
	}
	if log := l.ctl.log(); strings.Contains(log, "panic") {
		t.Errorf("linectl's log mentions a panic:\n%s", l.ctl.tail(60))
	}
	l.ctlDown = true
	if err := l.ctl.stop(ctx); err != nil {
		t.Errorf("linectl run on SIGTERM: %v (want exit 0)", err)
	}
}
