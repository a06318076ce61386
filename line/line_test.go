package line

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// The Line's tests run it on a real ledger (Badger in a temp dir) with the
// runner tests' hand-written devices.

// loadProduct loads an example product; ratio2 > 0 sets its level-2 ratio
// (small groups for the tests).
func loadProduct(t testing.TB, file string, ratio2 int) *tracecode.Product {
	t.Helper()
	data, err := os.ReadFile("../examples/" + file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if ratio2 > 0 {
		s = strings.Replace(s, "ratio: 10", fmt.Sprintf("ratio: %d", ratio2), 1)
	}
	p, err := tracecode.ParseProduct(file, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sharedSource generates GS1 codes for every batch from one counter (a
// second batch must not regenerate the first's codes).
type sharedSource struct {
	mu sync.Mutex
	n  int
}

type batchSource struct {
	s     *sharedSource
	store *aggregation.Store
	batch string
}

func (b *batchSource) Allocate(ctx context.Context, l tracecode.Level, n int) ([]tracecode.Code, error) {
	g := &genSource{store: b.store, batch: b.batch}
	b.s.mu.Lock()
	g.n = b.s.n
	b.s.n += n
	b.s.mu.Unlock()
	return g.Allocate(ctx, l, n)
}

type fakeLabels struct {
	mu      sync.Mutex
	printed []string
}

func (f *fakeLabels) PrintLabel(ctx context.Context, l tracecode.Level, parent tracecode.Code, children int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.printed = append(f.printed, fmt.Sprintf("%s %s %d", l, parent, children))
	return nil
}

func (f *fakeLabels) PrintRework(ctx context.Context, l tracecode.Level, reason string) error {
	return nil
}

type lineRig struct {
	t       testing.TB
	dir     string
	store   *aggregation.Store
	plc     *fakePLC
	printer *fakePrinter
	signals *fakeSignals
	rework  *fakeLabels
	eng     *fakeEngineering
	src     *sharedSource
	line    *Line
	cancel  context.CancelFunc
	done    chan error
}

func lineMachineConfig() Config {
	return Config{Deadline: 2 * time.Second, PrinterBuffer: 2, AllocChunk: 4}
}

// newLineRig opens the ledger in dir and runs a Line on it.
func newLineRig(t testing.TB, dir string) *lineRig {
	t.Helper()
	return newLineRigWith(t, dir, nil)
}

// newLineRigWith is newLineRig with the config changed by change.
func newLineRigWith(t testing.TB, dir string, change func(*LineConfig)) *lineRig {
	t.Helper()
	return newLineRigOpts(t, dir, aggregation.Options{}, change)
}

// newLineRigOpts is newLineRigWith with the ledger opened with opts.
func newLineRigOpts(t testing.TB, dir string, opts aggregation.Options, change func(*LineConfig)) *lineRig {
	t.Helper()
	store, err := aggregation.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rg := &lineRig{t: t, dir: dir, store: store, plc: &fakePLC{wrote: make(chan uint32, 1024)},
		printer: &fakePrinter{sent: make(chan tracecode.Code, 1024)}, signals: &fakeSignals{},
		rework: &fakeLabels{}, eng: &fakeEngineering{}, src: &sharedSource{}, done: make(chan error, 1)}
	cfg := LineConfig{Line: "L1", Machine: lineMachineConfig(),
		Products: map[string]*tracecode.Product{"amox-gs1": loadProduct(t, "amoxicillin-gs1.yaml", 2),
			"amox-nmpa": loadProduct(t, "amoxicillin-nmpa20.yaml", 0)},
		Devices: Devices{PLC: rg.plc, Printer: rg.printer, Signals: rg.signals, ReworkLabels: rg.rework},
		BatchDevices: func(ctx context.Context, spec aggregation.BatchSpec) (Devices, error) {
			return Devices{Codes: &batchSource{s: rg.src, store: store, batch: spec.ID}}, nil
		},
		Engineering: rg.eng, IOTimeout: time.Second}
	if change != nil {
		change(&cfg)
	}
	rg.line, err = NewLine(context.Background(), cfg, store, slog.New(slog.DiscardHandler))
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rg.cancel = cancel
	go func() { rg.done <- rg.line.Run(ctx) }()
	t.Cleanup(func() { rg.stop() })
	return rg
}

func (rg *lineRig) stop() error {
	if rg.cancel == nil {
		return nil
	}
	rg.cancel()
	rg.cancel = nil
	err := <-rg.done
	rg.store.Close()
	return err
}

func workOrder(batch string) WorkOrder {
	return WorkOrder{Product: "amox-gs1", Batch: batch, ProductionDate: "2026-11-01", Expiry: "2028-10-31", Planned: 4, Levels: 1}
}

func (rg *lineRig) command(cmd Command) {
	rg.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rg.line.Command(ctx, cmd, "op1"); err != nil {
		rg.t.Fatalf("command %s: %v", cmd, err)
	}
}

// waitFor waits until cond holds of the line's overview.
func (rg *lineRig) waitFor(what string, cond func(Overview) bool) Overview {
	rg.t.Helper()
	ch, unsub := rg.line.Subscribe()
	defer unsub()
	deadline := time.After(10 * time.Second)
	for {
		o := rg.line.Snapshot()
		if cond(o) {
			return o
		}
		select {
		case <-ch:
		case <-deadline:
			rg.t.Fatalf("never saw %s; overview: state %s, batch %+v, counts %+v", what, o.State, o.Batch, o.Counts)
		}
	}
}

func (rg *lineRig) nextSent() tracecode.Code {
	rg.t.Helper()
	select {
	case c := <-rg.printer.sent:
		return c
	case <-time.After(10 * time.Second):
		rg.t.Fatal("no code sent to the printer")
		return ""
	}
}

// goodUnit runs one good unit through the line and returns its code.
func (rg *lineRig) goodUnit(item uint32) tracecode.Code {
	code := rg.nextSent()
	now := Stamp{T: time.Now()}
	rg.line.Post(Trigger{Stamp: now, Item: item})
	rg.line.Post(Printed{Stamp: now, Code: code})
	rg.line.Post(CameraResult{Stamp: now, Item: item, Reads: []Read{{Code: code}}, Grade: 'A', Pass: true})
	return code
}

// runBatch starts a batch from wo, produces n good units from item first,
// completes it and waits until the line is ready for the next.
func (rg *lineRig) runBatch(wo WorkOrder, first uint32, n int) []tracecode.Code {
	rg.t.Helper()
	if _, err := rg.line.StartBatch(context.Background(), wo, "op1"); err != nil {
		rg.t.Fatalf("start batch %s: %v", wo.Batch, err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	var codes []tracecode.Code
	for i := 0; i < n; i++ {
		codes = append(codes, rg.goodUnit(first+uint32(i)))
	}
	rg.waitFor(fmt.Sprintf("%d good units", n), func(o Overview) bool { return o.Counts.Good == uint64(n) })
	rg.command(CmdComplete)
	rg.waitFor("ready for the next batch", func(o Overview) bool { return o.Ready && o.Batch != nil && o.Batch.Complete })
	for len(rg.printer.sent) > 0 { // codes left in the printer at the end (voided)
		<-rg.printer.sent
	}
	return codes
}

func TestLineRunsBatchAfterBatch(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	if o := rg.line.Snapshot(); !o.Ready || o.Batch != nil {
		t.Fatalf("a new line: ready %t, batch %+v", o.Ready, o.Batch)
	}
	// A subscription taken before the first batch sees both.
	updates, unsub := rg.line.Subscribe()
	defer unsub()
	seen := map[string]bool{}
	var seenMu sync.Mutex
	go func() {
		for o := range updates {
			if o.Batch != nil {
				seenMu.Lock()
				seen[o.Batch.ID] = true
				seenMu.Unlock()
			}
		}
	}()

	// A unit with no batch: the PLC is told reject (not-producing).
	rg.line.Post(Trigger{Stamp: Stamp{T: time.Now()}, Item: 1})
	select {
	case <-rg.plc.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no verdict for a unit triggered with no batch")
	}
	rg.plc.mu.Lock()
	got := rg.plc.verdicts[0]
	rg.plc.mu.Unlock()
	if want := fmt.Sprintf("1 false %d", ReasonNotProducing); got != want {
		t.Fatalf("verdict with no batch: %q, want %q", got, want)
	}
	if o := rg.line.Snapshot(); o.NoBatchTriggers != 1 {
		t.Fatalf("no-batch triggers: %d, want 1", o.NoBatchTriggers)
	}

	rg.runBatch(workOrder("B1"), 10, 3)
	sum, err := rg.store.Summary(context.Background(), "B1")
	if err != nil || sum.State != aggregation.BatchComplete || sum.Levels[0].Commissioned != 3 {
		t.Fatalf("B1 in the ledger: %+v, %v", sum, err)
	}
	if sum.Order.Extra["started_by"] != "op1" || sum.Order.Extra["product_key"] != "amox-gs1" || sum.Order.PlannedQty != 4 {
		t.Fatalf("B1's work order: %+v", sum.Order)
	}
	// The same batch number again is refused; the check names the field.
	_, err = rg.line.StartBatch(context.Background(), workOrder("B1"), "op1")
	var woErr *WorkOrderError
	if !errors.As(err, &woErr) || !errors.Is(err, ErrBadWorkOrder) || woErr.Problems[0].Field != "batch" || woErr.Problems[0].Code != "used" {
		t.Fatalf("B1 again: %v", err)
	}
	rg.runBatch(workOrder("B2"), 20, 2)
	sum, err = rg.store.Summary(context.Background(), "B2")
	if err != nil || sum.State != aggregation.BatchComplete || sum.Levels[0].Commissioned != 2 {
		t.Fatalf("B2 in the ledger: %+v, %v", sum, err)
	}
	recs := records(t, rg.store)
	if !hasRecord(recs, "command B1 line", "batch-complete") || !hasRecord(recs, "command B2 line", "batch-complete") {
		t.Fatalf("batch completions not journaled:\n%s", strings.Join(recs, "\n"))
	}
	// One subscription saw both batches.
	rg.waitFor("the subscriber saw B1 and B2", func(Overview) bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		return seen["B1"] && seen["B2"]
	})
}

func TestStartBatchRefusedWhileABatchIsOpen(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	head := ledgerBatches(t, rg.store)
	_, err := rg.line.StartBatch(context.Background(), workOrder("B2"), "op1")
	if !errors.Is(err, ErrBatchOpen) {
		t.Fatalf("a second batch while B1 is open: %v, want ErrBatchOpen", err)
	}
	if got := ledgerBatches(t, rg.store); got != head {
		t.Fatalf("batches after a refused start: %s, want %s", got, head)
	}
	// Commands go to B1's runner; a command not allowed is refused in words.
	err = rg.line.Command(context.Background(), CmdStart, "op1")
	if !errors.Is(err, ErrInvalidCommand) || !strings.Contains(err.Error(), "start in Stopped") {
		t.Fatalf("start in Stopped: %v", err)
	}
}

func ledgerBatches(t *testing.T, s *aggregation.Store) string {
	ids, err := s.Batches(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(ids, ",")
}

// A controller restart with a batch open: the new Line resumes it, the
// overview asks for the purge and guides it.
func TestLineResumesTheOpenBatch(t *testing.T) {
	dir := t.TempDir()
	rg := newLineRig(t, dir)
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	rg.goodUnit(1)
	rg.waitFor("1 good", func(o Overview) bool { return o.Counts.Good == 1 })
	if err := rg.stop(); err != nil {
		t.Fatal(err)
	}

	rg = newLineRig(t, dir)
	o := rg.line.Snapshot()
	if o.Batch == nil || o.Batch.ID != "B1" || !o.Batch.Resumed || o.Ready {
		t.Fatalf("after the restart: batch %+v, ready %t", o.Batch, o.Ready)
	}
	if o.Purge == nil || !o.Purge.Required || len(o.Purge.Steps) == 0 || o.Purge.Voided == 0 {
		t.Fatalf("after the restart: purge guide %+v", o.Purge)
	}
	if o.Counts.Good != 1 {
		t.Fatalf("after the restart: counts %+v", o.Counts)
	}
	if err := rg.line.Command(context.Background(), CmdReset, "op1"); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("reset before the purge: %v", err)
	}
	rg.command(CmdClear)
	rg.waitFor("purge done", func(o Overview) bool { return o.Purge == nil && o.State == "Stopped" })
}

type fakeEngineering struct {
	mu    sync.Mutex
	tests []TestAction
}

func (f *fakeEngineering) Monitor(ctx context.Context) (Monitor, error) {
	return Monitor{Signals: []SignalValue{{Name: "trigger", Address: "30001", Value: "7", AgeMs: 3}}}, nil
}

func (f *fakeEngineering) Test(ctx context.Context, a TestAction) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tests = append(f.tests, a)
	return "done", nil
}

func TestEngineeringRefusedWhileABatchRuns(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	m, err := rg.line.Monitor(context.Background())
	if err != nil || len(m.Signals) != 1 {
		t.Fatalf("monitor: %+v, %v", m, err)
	}
	if _, err := rg.line.TestAction(context.Background(), TestAction{Kind: "dance"}, "eng"); err == nil {
		t.Fatal("an unknown test action was accepted")
	}
	if out, err := rg.line.TestAction(context.Background(), TestAction{Kind: TestOutput, Output: "tower_light", Value: 1}, "eng"); err != nil || out != "done" {
		t.Fatalf("test output with no batch: %q, %v", out, err)
	}
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.TestAction(context.Background(), TestAction{Kind: TestPrint, Text: "TEST"}, "eng"); !errors.Is(err, ErrBusy) {
		t.Fatalf("test print with a batch open: %v", err)
	}
	rg.eng.mu.Lock()
	defer rg.eng.mu.Unlock()
	if len(rg.eng.tests) != 1 {
		t.Fatalf("test actions carried out: %+v", rg.eng.tests)
	}
}

// A panic in a batch's runner ends the Line's Run with ErrPanic (the
// process exits non-zero for a supervisor to restart it), the line
// stopped safely.
func TestLineRunnerPanic(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	rg.plc.mu.Lock()
	rg.plc.panicOn = true
	rg.plc.mu.Unlock()
	rg.goodUnit(1)
	select {
	case err := <-rg.done:
		rg.cancel = nil
		rg.store.Close()
		if !errors.Is(err, ErrPanic) {
			t.Fatalf("Run returned %v, want ErrPanic", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the line kept running after a panic in a verdict writer")
	}
	last, ok := rg.signals.last()
	if !ok || last.st != Aborted || last.faults == 0 {
		t.Fatalf("last state shown to the PLC: %+v (ok %t), want the safe stop", last, ok)
	}
}

// A ledger of the controller before work orders may hold several open
// batches of the line: the latest created is resumed, an alarm names the
// others.
func TestLineResumesTheLatestOfSeveralOpen(t *testing.T) {
	dir := t.TempDir()
	store, err := aggregation.Open(dir, aggregation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"Z-OLD", "A-NEW"} {
		spec := aggregation.BatchSpec{ID: id, Product: "阿莫西林胶囊", Line: "L1", Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeGS1SGTIN}}}
		if err := store.CreateBatch(context.Background(), spec, system); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	rg := newLineRig(t, dir)
	o := rg.line.Snapshot()
	if o.Batch == nil || o.Batch.ID != "A-NEW" || o.Batch.ProductKey != "amox-gs1" || !o.Batch.Resumed {
		t.Fatalf("resumed: %+v", o.Batch)
	}
	if len(o.Alarms) != 1 || !strings.Contains(o.Alarms[0].Text, "Z-OLD") || o.Alarms[0].Active {
		t.Fatalf("alarms: %+v", o.Alarms)
	}
}

// aliveSignals records the controller's heartbeat.
type aliveSignals struct {
	fakeSignals
	mu    sync.Mutex
	beats []uint16
	beat  chan struct{}
}

func (a *aliveSignals) Alive(ctx context.Context, n uint16) error {
	a.mu.Lock()
	a.beats = append(a.beats, n)
	a.mu.Unlock()
	select {
	case a.beat <- struct{}{}:
	default:
	}
	return nil
}

// The Line writes the controller's heartbeat for the process's life, with
// no batch and across batches — one writer: the runners do not write a
// second one.
func TestHeartbeatAcrossBatches(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	rg.stop()
	store, err := aggregation.Open(rg.dir, aggregation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig := &aliveSignals{beat: make(chan struct{}, 1)}
	cfg := rg.line.cfg
	cfg.Devices.Signals = sig
	cfg.AlivePeriod = time.Millisecond
	cfg.Links = nil
	cfg.BatchDevices = func(ctx context.Context, spec aggregation.BatchSpec) (Devices, error) {
		return Devices{Codes: &batchSource{s: rg.src, store: store, batch: spec.ID}}, nil
	}
	rg.store = store
	rg.line, err = NewLine(context.Background(), cfg, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rg.cancel = cancel
	go func() { rg.done <- rg.line.Run(ctx) }()
	beats := func(n int) {
		for i := 0; i < n; i++ {
			select {
			case <-sig.beat:
			case <-time.After(10 * time.Second):
				t.Fatal("no heartbeat")
			}
		}
	}
	beats(3)
	rg.runBatch(workOrder("B1"), 1, 2)
	if h := rg.line.Histograms(nil)["total"]; h.Count != 2 || h.Counts[len(h.Counts)-1] > 2 {
		t.Fatalf("B1's verdict latency histogram: %+v", h)
	}
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B2"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	beats(3)
	sig.mu.Lock()
	defer sig.mu.Unlock()
	for i := 1; i < len(sig.beats); i++ {
		if sig.beats[i] != sig.beats[i-1]+1 {
			t.Fatalf("heartbeat values %v: not one writer counting up", sig.beats)
		}
	}
	if _, ok := sig.last(); !ok {
		t.Fatal("the line's state was never shown to the PLC")
	}
}

func TestSmallAPIs(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	ps := rg.line.Products()
	if len(ps) != 2 || ps[0].Key != "amox-gs1" || ps[1].Levels[0].Pool != "8021762-L1" || ps[0].Levels[0].Pool != "" || ps[1].Levels[1].Ratio != 10 {
		t.Fatalf("products: %+v", ps)
	}
	if err := rg.line.Record(ctx, "login", "", map[string]string{"from": "127.0.0.1"}, "qa1"); err != nil {
		t.Fatal(err)
	}
	if !hasRecord(records(t, rg.store), "login  qa1", "127.0.0.1") {
		t.Fatal("the HMI's record is not in the journal")
	}
	if err := rg.line.Record(ctx, "Bad Type!", "", nil, "qa1"); err == nil {
		t.Fatal("a record of a bad type was journaled")
	}
	rep, err := rg.line.VerifyLedger(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if rg.line.LedgerStats().Groups == 0 {
		t.Fatal("ledger stats: no commits counted")
	}
	if _, err := rg.line.StartBatch(ctx, workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationBeginNew(ctx, 2, "op1"); !isScan(err, ScanWrongLevel) {
		t.Fatalf("a level-2 parent in a batch of units only: %v", err)
	}
	if v := rg.line.StationCancel(ctx, "op1"); v.Parent != "" || v.Batch != "B1" {
		t.Fatalf("station after cancel: %+v", v)
	}
	if v := rg.line.Station(); v.Parent != "" || len(v.Children) != 0 {
		t.Fatalf("station: %+v", v)
	}
}

// Every operation of a person needs the person: an empty user (a wiring
// bug) is refused before anything is done.
func TestNoUserRefused(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	if _, err := rg.line.StartBatch(ctx, workOrder("B1"), " "); !errors.Is(err, ErrNoUser) {
		t.Fatalf("start batch: %v", err)
	}
	if _, err := rg.line.StartBatch(ctx, workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	head := rg.store.Head()
	for name, err := range map[string]error{
		"command": rg.line.Command(ctx, CmdReset, ""),
		"rework":  rg.line.Rework(ctx, ReworkOp{Kind: ReworkSample, Code: "x", Reason: "qa"}, ""),
		"ack":     rg.line.AcknowledgeAlarm(ctx, 1, ""),
		"station": func() error { _, err := rg.line.StationBeginNew(ctx, 2, ""); return err }(),
		"import":  func() error { _, err := rg.line.ImportCodeFile(ctx, "8021762-L1", "f", []byte("x"), ""); return err }(),
		"test":    func() error { _, err := rg.line.TestAction(ctx, TestAction{Kind: TestPrint}, ""); return err }(),
	} {
		if !errors.Is(err, ErrNoUser) {
			t.Errorf("%s with no user: %v", name, err)
		}
	}
	if s := rg.line.Snapshot(); s.State != "Stopped" {
		t.Fatalf("state after refused commands: %s", s.State)
	}
	// Only the refusals were journaled.
	n := 0
	if err := rg.store.Events(ctx, head+1, func(ev aggregation.Event) error {
		if ev.Kind != aggregation.EvRecord {
			t.Errorf("a refused operation wrote %s", ev.Kind)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("%d records of refusals, want 5 (all but the acknowledgement)", n)
	}
}

// Alarms of the open batch that nobody acknowledged come back after a
// restart, under their ids, for the operator to acknowledge (the batch's
// release waits for them); ids given after the restart are new ones.
func TestLineKeepsUnacknowledgedAlarmsAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rg := newLineRig(t, dir)
	if _, err := rg.line.StartBatch(ctx, workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.line.raiseAlarm(ctx, "printer", "ribbon low", "B1", false)
	rg.line.raiseAlarm(ctx, "camera", "lens dirty", "B1", false)
	before := rg.line.Alarms()
	if len(before) != 2 {
		t.Fatalf("alarms %+v", before)
	}
	if before[0].Text != "ribbon low" {
		before[0], before[1] = before[1], before[0]
	}
	if err := rg.line.AcknowledgeAlarm(ctx, before[1].ID, "op1"); err != nil {
		t.Fatal(err)
	}
	if err := rg.stop(); err != nil {
		t.Fatal(err)
	}

	rg = newLineRig(t, dir)
	after := rg.line.Alarms()
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].Text != "ribbon low" || after[0].AckAt != nil {
		t.Fatalf("after the restart: alarms %+v, want the unacknowledged %+v", after, before[0])
	}
	rg.line.raiseAlarm(ctx, "gate", "bin full", "B1", false)
	now := rg.line.Alarms()
	var fresh AlarmView
	for _, a := range now {
		if a.Text == "bin full" {
			fresh = a
		}
	}
	if len(now) != 2 || fresh.ID <= before[0].ID || fresh.ID <= before[1].ID {
		t.Fatalf("a new alarm after the restart got id %d; ids before were %d, %d", fresh.ID, before[0].ID, before[1].ID)
	}
	if err := rg.line.AcknowledgeAlarm(ctx, after[0].ID, "op2"); err != nil {
		t.Fatal(err)
	}
	if acks := countAcks(t, rg.store, "B1"); acks != 2 {
		t.Fatalf("%d acknowledgements journaled, want 2", acks)
	}
}

// Alarms of a batch completed but not yet released come back after a
// restart too: the release waits until every one is acknowledged, and the
// operator acknowledges them on the line (the crash campaign found a
// completed batch whose alarms nobody could acknowledge any more once the
// controller had restarted: its release was blocked for ever).
func TestLineKeepsAlarmsOfCompletedBatchAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rg := newLineRig(t, dir)
	rg.runBatch(workOrder("B1"), 1, 2)
	rg.line.raiseAlarm(ctx, "printer", "code printed again (reprint)", "B1", false)
	if err := rg.stop(); err != nil {
		t.Fatal(err)
	}

	rg = newLineRig(t, dir)
	var al AlarmView
	for _, a := range rg.line.Alarms() {
		if a.Batch == "B1" && a.Text == "code printed again (reprint)" {
			al = a
		}
	}
	if al.ID == 0 || al.AckAt != nil {
		t.Fatalf("after the restart the completed batch's alarm is not there to acknowledge: %+v", rg.line.Alarms())
	}
	if err := rg.line.AcknowledgeAlarm(ctx, al.ID, "op2"); err != nil {
		t.Fatal(err)
	}
	if acks := countAcks(t, rg.store, "B1"); acks != 1 {
		t.Fatalf("%d acknowledgements journaled in B1, want 1", acks)
	}
	// Acknowledged, it does not come back at the next restart.
	if err := rg.stop(); err != nil {
		t.Fatal(err)
	}
	rg = newLineRig(t, dir)
	for _, a := range rg.line.Alarms() {
		if a.Batch == "B1" {
			t.Fatalf("an acknowledged alarm came back: %+v", a)
		}
	}
}

// countAcks counts the alarm acknowledgements journaled in batch's trail.
func countAcks(t *testing.T, st *aggregation.Store, batch string) int {
	t.Helper()
	acks := 0
	if err := st.Trail(context.Background(), batch, func(ev aggregation.Event) error {
		if ev.Reason == "alarm.ack" {
			acks++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return acks
}
