package lineproc

import (
	"bytes"
	"context"
	"encoding/json"
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
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// LineConfig makes the controller's config file (YAML) for a line whose
// devices linesim serves on listen, running batch (planned units) from the
// first start and resuming it at every restart. cmd/linectl provides it:
// the config's types are the command's.
type LineConfig func(listen sim.Listen, batch string, units int) ([]byte, error)

// Options is one line.
type Options struct {
	Name   string // the batch id's suffix and the logs' names
	Units  int
	Rate   float64 // units per minute
	Seed   uint64
	Faults []sim.Fault
	Dir    string // configs, logs, the ledger
	Data   string // the ledger's directory (default Dir/ledger)
	Bins   Binaries
	Config LineConfig
	// CtlEnv is the first controller's extra environment ("K=V").
	CtlEnv []string
	// Handoff, if set, are the controller's hand-off endpoints (its
	// config's handoff.endpoints; Receivers.Endpoints).
	Handoff []outbox.Endpoint
	// Gate is the reject gate's distance after the trigger, LabelTimeout
	// how long the labeller waits for a label; 200 ms and 10 s when zero
	// (a small shared machine: the campaigns are about the logic).
	Gate, LabelTimeout time.Duration
	// Logf reports progress (nil: silent).
	Logf func(format string, args ...any)
}

// Line is a simulated line (linesim) with a controller (linectl run), both
// separate processes.
type Line struct {
	o       Options
	SimURL  string // http://host:port of linesim's HTTP API
	API     string // http://host:port/api/line
	apiAddr string
	LineCfg string
	Data    string // the ledger's directory
	Batch   string
	Listen  sim.Listen
	Sim     *Proc
	Ctl     *Proc
	// CtlDown: linectl was killed or stopped on purpose (waiting does not
	// fail on its exit).
	CtlDown bool
	CtlRuns int
	Procs   []*Proc
	ports   map[int]bool
	// BeforeComplete, if set, is what the operator does in Finish once
	// every unit is decided, before the batch is completed (rework).
	BeforeComplete func(ctx context.Context) error
}

// Start writes both configs, starts linesim and linectl run and waits
// until both answer. On an error every process started is killed.
func Start(ctx context.Context, o Options) (l *Line, err error) {
	if o.Gate == 0 {
		o.Gate = 200 * time.Millisecond
	}
	if o.LabelTimeout == 0 {
		o.LabelTimeout = 10 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	l = &Line{o: o, Batch: "P" + strings.ToUpper(o.Name)}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	// linesim, on ports of our choosing; if one was taken meanwhile (the
	// ports are free when picked, not reserved), again on others.
	for attempt := 1; ; attempt++ {
		ls := sim.Listen{PLCOPCUA: "off"}
		for _, p := range []*string{&ls.Modbus, &ls.Printer, &ls.Camera, &ls.AggCamera, &ls.Label, &ls.LabelScanner, &ls.HTTP} {
			if *p, err = l.port(); err != nil {
				return l, err
			}
		}
		l.Listen = ls
		err = l.startSim(ctx, attempt)
		if err == nil {
			break
		}
		if attempt == 3 || l.Sim == nil || !strings.Contains(l.Sim.Log(), "address already in use") {
			return l, fmt.Errorf("linesim: %w", err)
		}
		o.Logf("linesim attempt %d: a port was taken; again on other ports", attempt)
	}
	cfg, err := o.Config(l.Listen, l.Batch, o.Units)
	if err != nil {
		return l, fmt.Errorf("the controller's config: %w", err)
	}
	if len(o.Handoff) > 0 {
		if cfg, err = withHandoff(cfg, o.Handoff); err != nil {
			return l, err
		}
	}
	l.LineCfg = filepath.Join(o.Dir, "line.yaml")
	if err := os.WriteFile(l.LineCfg, cfg, 0o644); err != nil {
		return l, err
	}
	l.Data = o.Data
	if l.Data == "" {
		l.Data = filepath.Join(o.Dir, "ledger")
	}
	if l.apiAddr, err = l.port(); err != nil {
		return l, err
	}
	l.API = "http://" + l.apiAddr + "/api/line"
	if _, err := l.StartController(ctx, o.CtlEnv...); err != nil {
		return l, err
	}
	return l, nil
}

// Close kills every process the line started.
func (l *Line) Close() {
	for _, p := range l.Procs {
		p.Kill()
	}
}

// startSim writes linesim's config for l.Listen, starts it and waits until
// its HTTP API answers; an error if it exits first.
func (l *Line) startSim(ctx context.Context, attempt int) error {
	watchdog := time.Second
	scfg := struct {
		sim.Config `yaml:",inline"`
	}{sim.Config{Seed: l.o.Seed, Rate: l.o.Rate, Units: l.o.Units, Positions: sim.Positions{Gate: l.o.Gate},
		Ratios: []int{10}, LabelTimeout: l.o.LabelTimeout, StartStopped: true, ControllerWatchdog: &watchdog,
		Listen: l.Listen, Faults: l.o.Faults}}
	simYAML, err := yaml.Marshal(scfg)
	if err != nil {
		return err
	}
	simCfg := filepath.Join(l.o.Dir, "linesim.yaml")
	if err := os.WriteFile(simCfg, simYAML, 0o644); err != nil {
		return err
	}
	l.SimURL = "http://" + l.Listen.HTTP
	l.Sim, err = StartProc(fmt.Sprintf("linesim (attempt %d)", attempt), filepath.Join(l.o.Dir, fmt.Sprintf("linesim-%d.log", attempt)), l.o.Bins.Linesim, nil,
		"--config", simCfg, "--units", strconv.Itoa(l.o.Units), "--rate", strconv.FormatFloat(l.o.Rate, 'g', -1, 64),
		"--stay", "--groundtruth", filepath.Join(l.o.Dir, "groundtruth.json"))
	if err != nil {
		return err
	}
	l.Procs = append(l.Procs, l.Sim)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var ep sim.Endpoints
		err := GetJSON(ctx, l.SimURL+"/endpoints", &ep)
		if err == nil && ep.LabelScanner != "" {
			return nil
		}
		select {
		case <-l.Sim.Done():
			return fmt.Errorf("exited before it answered: %v", l.Sim.Err())
		case <-ctx.Done():
			return fmt.Errorf("GET /endpoints: %v (last error %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// port picks a free loopback port below the kernel's ephemeral range
// (32768 up on Linux), so that no port the simulator's own servers or any
// client connection is handed by the kernel can take it before linesim
// binds it; and none twice in one line.
func (l *Line) port() (string, error) {
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
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port in 20000..31999")
}

// StartController starts (or restarts) `linectl run`, with extra
// environment variables env ("K=V", e.g. a kill point), and waits until
// its API answers (it has connected to every device).
func (l *Line) StartController(ctx context.Context, env ...string) (line.Snapshot, error) {
	l.CtlRuns++
	l.CtlDown = false
	p, err := StartProc(fmt.Sprintf("linectl run #%d", l.CtlRuns), filepath.Join(l.o.Dir, fmt.Sprintf("linectl-%d.log", l.CtlRuns)),
		l.o.Bins.Linectl, env, "run", "--config", l.LineCfg, "--data", l.Data, "--listen", l.apiAddr, "--local-api")
	if err != nil {
		return line.Snapshot{}, err
	}
	l.Ctl = p
	l.Procs = append(l.Procs, p)
	return l.WaitLine(ctx, "the line API answers", func(line.Snapshot) bool { return true })
}

// KillController kills linectl with SIGKILL and waits until it is gone.
func (l *Line) KillController() {
	l.CtlDown = true
	l.Ctl.Kill()
}

// WaitFor polls cond (every 20 ms) until it holds; past ctx's deadline the
// error says what cond last said. A controller that exits (unless CtlDown)
// or a linesim that exits is an error at once.
func (l *Line) WaitFor(ctx context.Context, what string, cond func() (bool, string)) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, s := cond()
		if ok {
			return nil
		}
		last = s
		if l.Ctl != nil && !l.CtlDown && l.Ctl.Exited() {
			return fmt.Errorf("waiting for %s: %s exited: %v (last: %s)", what, l.Ctl.Name, l.Ctl.Err(), last)
		}
		if l.Sim.Exited() {
			return fmt.Errorf("waiting for %s: linesim exited: %v", what, l.Sim.Err())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %v; last: %s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// State is GET /api/line's line part.
func (l *Line) State(ctx context.Context) (line.Snapshot, error) {
	var doc struct {
		Line line.Snapshot `json:"line"`
	}
	err := GetJSON(ctx, l.API, &doc)
	return doc.Line, err
}

// WaitLine polls GET /api/line until cond holds.
func (l *Line) WaitLine(ctx context.Context, what string, cond func(line.Snapshot) bool) (line.Snapshot, error) {
	var sn line.Snapshot
	err := l.WaitFor(ctx, what, func() (bool, string) {
		s, err := l.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		sn = s
		return cond(s), Describe(s)
	})
	return sn, err
}

// Describe is a snapshot in one line, for logs and errors.
func Describe(s line.Snapshot) string {
	return fmt.Sprintf("state %s (%s), purge_required %t, faults %v, in flight %d, counters %+v, challenge %v",
		s.State, s.Why, s.PurgeRequired, s.Faults, s.InFlight, s.Counters, s.Challenge)
}

// Command gives an operator command through the API; anything but 200 is
// an error.
func (l *Line) Command(ctx context.Context, cmd string) (line.Snapshot, error) {
	code, body, err := l.TryCommand(ctx, cmd)
	if err != nil {
		return line.Snapshot{}, err
	}
	if code != http.StatusOK {
		return line.Snapshot{}, fmt.Errorf("command %s: HTTP %d %s", cmd, code, body)
	}
	var sn line.Snapshot
	if err := json.Unmarshal([]byte(body), &sn); err != nil {
		return line.Snapshot{}, fmt.Errorf("command %s: answer %q: %w", cmd, body, err)
	}
	return sn, nil
}

// TryCommand gives an operator command; the answer's status and body.
func (l *Line) TryCommand(ctx context.Context, cmd string) (int, string, error) {
	code, body, err := PostJSON(ctx, l.API+"/commands", fmt.Sprintf(`{"command":%q,"user":"op1"}`, cmd))
	if err != nil {
		return 0, "", fmt.Errorf("command %s: %w", cmd, err)
	}
	return code, body, nil
}

// SimPost is the operator's hand on the line (POST /purge, /bin/empty) or
// the campaign's (POST /link); body "" is {}. The answer, compacted.
func (l *Line) SimPost(ctx context.Context, path, body string) (string, error) {
	if body == "" {
		body = "{}"
	}
	code, ans, err := PostJSON(ctx, l.SimURL+path, body)
	if err != nil || code != http.StatusOK {
		return "", fmt.Errorf("linesim POST %s: HTTP %d %s %v", path, code, ans, err)
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(ans)) != nil {
		return ans, nil
	}
	return b.String(), nil
}

// PLC is linesim's PLC state.
func (l *Line) PLC(ctx context.Context) (sim.PLCState, error) {
	var st sim.PLCState
	err := GetJSON(ctx, l.SimURL+"/plc", &st)
	return st, err
}

// GroundTruth is what physically happened so far.
func (l *Line) GroundTruth(ctx context.Context) (sim.GroundTruth, error) {
	var gt sim.GroundTruth
	err := GetJSON(ctx, l.SimURL+"/groundtruth", &gt)
	return gt, err
}

// ResetStart resets and starts the line, then waits for Execute.
func (l *Line) ResetStart(ctx context.Context) error {
	if _, err := l.Command(ctx, "reset"); err != nil {
		return err
	}
	if _, err := l.Command(ctx, "start"); err != nil {
		return err
	}
	_, err := l.WaitLine(ctx, "Execute after start", func(s line.Snapshot) bool { return s.State == "Execute" })
	return err
}

// RecoverAfterCrash is what an operator does after the controller was
// killed: wait until linesim's watchdog stopped the infeed, start the
// controller again, see it come up Stopped with a purge required, purge
// the line (linesim POST /purge), clear, reset and start. It returns the
// snapshot right after the restart.
//
// env is the restarted controller's extra environment (a kill point).
func (l *Line) RecoverAfterCrash(ctx context.Context, env ...string) (line.Snapshot, error) {
	var st sim.PLCState
	if err := l.WaitFor(ctx, "linesim's watchdog trips", func() (bool, string) {
		var err error
		st, err = l.PLC(ctx)
		if err != nil {
			return false, err.Error()
		}
		return st.ControllerLost && !st.Running, fmt.Sprintf("%+v", st)
	}); err != nil {
		return line.Snapshot{}, err
	}
	after, err := l.StartController(ctx, env...)
	if err != nil {
		return after, err
	}
	if after.State != "Stopped" || !after.PurgeRequired {
		return after, fmt.Errorf("after the restart: state %s purge_required %t, want Stopped with a purge required (%s)",
			after.State, after.PurgeRequired, Describe(after))
	}
	if code, body, err := l.TryCommand(ctx, "reset"); err != nil || code != http.StatusConflict {
		return after, fmt.Errorf("after the restart, reset before the purge was confirmed: HTTP %d %s %v, want 409", code, body, err)
	}
	if _, err := l.SimPost(ctx, "/purge", ""); err != nil {
		return after, err
	}
	if _, err := l.Command(ctx, "clear"); err != nil {
		return after, err
	}
	if _, err := l.WaitLine(ctx, "clear done", func(s line.Snapshot) bool { return s.State == "Stopped" && !s.PurgeRequired }); err != nil {
		return after, err
	}
	return after, l.ResetStart(ctx)
}

// Finished is the end of a batch.
type Finished struct {
	Final  line.Snapshot   // the last snapshot (Complete)
	Truth  sim.GroundTruth // what physically happened
	Verify string          // `linectl verify`'s output
	// VerifyErr is verify's failure (nil: it passed).
	VerifyErr error
}

// Finish waits until every unit has left the simulated line and the
// controller has decided them all, completes the batch, stops linectl
// (SIGTERM: exit 0) and runs `linectl verify`. An error is a harness
// failure (something did not happen); verify's verdict is in Finished.
func (l *Line) Finish(ctx context.Context) (Finished, error) {
	var f Finished
	if err := l.WaitFor(ctx, "linesim finished the batch", func() (bool, string) {
		gt, err := l.GroundTruth(ctx)
		if err != nil {
			return false, err.Error()
		}
		return gt.Finished, fmt.Sprintf("%+v", gt.Summary)
	}); err != nil {
		return f, err
	}
	if _, err := l.WaitLine(ctx, "every unit decided", func(s line.Snapshot) bool { return s.State == "Execute" && s.InFlight == 0 }); err != nil {
		return f, err
	}
	if l.BeforeComplete != nil {
		if err := l.BeforeComplete(ctx); err != nil {
			return f, fmt.Errorf("before completing the batch: %w", err)
		}
	}
	if _, err := l.Command(ctx, "complete"); err != nil {
		return f, err
	}
	var err error
	if f.Final, err = l.WaitLine(ctx, "Complete", func(s line.Snapshot) bool { return s.State == "Complete" }); err != nil {
		return f, err
	}
	if f.Truth, err = l.GroundTruth(ctx); err != nil {
		return f, err
	}
	l.CtlDown = true
	if err := l.Ctl.Stop(ctx); err != nil {
		return f, fmt.Errorf("linectl run on SIGTERM: %v (want exit 0)", err)
	}
	f.Verify, f.VerifyErr = l.Verify(ctx)
	return f, nil
}

// Verify runs `linectl verify` on the ledger (the controller must not be
// running): its output, and an error if it failed.
func (l *Line) Verify(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, l.o.Bins.Linectl, "verify", "--data", l.Data).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("linectl verify: %v", err)
	}
	return string(bytes.TrimSpace(out)), err
}

// OpenLedger opens the ledger (the controller must be stopped).
func (l *Line) OpenLedger() (*aggregation.Store, error) {
	return aggregation.Open(l.Data, aggregation.Options{})
}

// CheckLedger is every check of the ledger against what physically
// happened: unit by unit (demo.CompareTruth), the batch balances, its
// level-1 counters say what left the line as good, no code went onto two
// units except by an injected duplicate reprint, and every pass the PLC
// was given (acknowledged: journaled before it was sent) is in the ledger.
// The answer is the problems found (none: it all held).
func CheckLedger(ctx context.Context, store *aggregation.Store, batch string, gt sim.GroundTruth) (aggregation.BatchSummary, []string) {
	return CheckLedgerReworked(ctx, store, batch, gt, nil)
}

// CheckLedgerReworked is CheckLedger for a batch some of whose good units
// the operator took off at rework and decommissioned (takenOff, by code;
// demo.CompareTruthReworked).
func CheckLedgerReworked(ctx context.Context, store *aggregation.Store, batch string, gt sim.GroundTruth, takenOff map[tracecode.Code]bool) (aggregation.BatchSummary, []string) {
	problems := demo.CompareTruthReworked(ctx, store, batch, gt, takenOff)
	sum, err := store.Summary(ctx, batch)
	if err != nil {
		return sum, append(problems, fmt.Sprintf("batch summary: %v", err))
	}
	if p := sum.Check(); len(p) > 0 {
		problems = append(problems, fmt.Sprintf("batch does not balance: %v", p))
	}
	l1 := LevelOf(sum, 1)
	good := int64(gt.Summary.Good)
	for _, u := range gt.Units {
		if p, err := tracecode.Parse(u.Code); err == nil && u.Fate == sim.FateGood && takenOff[p.Code] {
			good--
		}
	}
	if got := l1.Commissioned - l1.Sampled - l1.Decommissioned; got != good {
		problems = append(problems, fmt.Sprintf("ledger L1: commissioned %d − sampled %d − decommissioned %d = %d, the simulator shipped %d good units (%d taken off at rework)",
			l1.Commissioned, l1.Sampled, l1.Decommissioned, got, good, int64(gt.Summary.Good)-good))
	}
	problems = append(problems, SentOnce(gt)...)
	problems = append(problems, AcknowledgedPresent(ctx, store, gt)...)
	return sum, problems
}

// SentOnce: no code is on two units, unless the later one's printer
// reprinted the previous code (the injected duplicate fault, which the
// camera must catch) — a code the controller sent twice would be.
func SentOnce(gt sim.GroundTruth) []string {
	var problems []string
	on := map[string]uint32{}
	for _, u := range gt.Units {
		if u.Code == "" {
			continue
		}
		if first, dup := on[u.Code]; dup && u.Fault != sim.FaultDuplicate {
			problems = append(problems, fmt.Sprintf("code %s printed on units %d and %d (sent twice)", u.Code, first, u.Item))
		}
		if _, seen := on[u.Code]; !seen {
			on[u.Code] = u.Item
		}
	}
	return problems
}

// AcknowledgedPresent: every unit the PLC held a pass for was journaled
// commissioned before the pass was written (the verdict is durable before
// it is sent), so its code must have been commissioned in the ledger —
// now commissioned, packed, or taken back (decommissioned, e.g. the gate
// rejected it) — never merely sent, printed or voided.
func AcknowledgedPresent(ctx context.Context, store *aggregation.Store, gt sim.GroundTruth) []string {
	var problems []string
	for _, u := range gt.Units {
		if u.Verdict != "pass" || u.Code == "" || u.Fault == sim.FaultDuplicate {
			continue
		}
		p, err := tracecode.Parse(u.Code)
		if err != nil {
			problems = append(problems, fmt.Sprintf("unit %d: the PLC passed it, its code %q does not parse: %v", u.Item, u.Code, err))
			continue
		}
		info, err := store.Code(ctx, p.Code)
		if err != nil {
			problems = append(problems, fmt.Sprintf("unit %d: the PLC passed it, its code %s: %v", u.Item, p.Code, err))
			continue
		}
		switch info.State {
		case aggregation.StateCommissioned, aggregation.StateAggregated, aggregation.StateDecommissioned:
		default:
			problems = append(problems, fmt.Sprintf("unit %d: the PLC was given a pass for code %s, which the ledger has %s (the acknowledged commission is missing)", u.Item, p.Code, info.State))
		}
	}
	return problems
}

// LevelOf is the summary of level lv.
func LevelOf(sum aggregation.BatchSummary, lv tracecode.Level) aggregation.LevelSummary {
	for _, l := range sum.Levels {
		if l.Level == lv {
			return l
		}
	}
	return aggregation.LevelSummary{}
}

// PackedTotal is the parents packed at every level.
func PackedTotal(s line.Snapshot) uint64 {
	var n uint64
	for _, v := range s.Counters.Packed {
		n += v
	}
	return n
}

var client = &http.Client{Timeout: 5 * time.Second}

// GetJSON GETs url and decodes its 200 answer into v.
func GetJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
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

// PostJSON POSTs body as JSON; the answer's status and body.
func PostJSON(ctx context.Context, url, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
