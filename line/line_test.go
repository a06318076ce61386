package line

import (
	"context"
	"encoding/json"
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
	store, err := aggregation.Open(dir, aggregation.Options{})
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

// The overview lists the last units, the rate, the devices and the alarms;
// an alarm is acknowledged by a user, and cleared when its device answers.
func TestOverviewUnitsDevicesAlarms(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	c1 := rg.goodUnit(1)
	// Unit 2: a no-read.
	now := Stamp{T: time.Now()}
	c2 := rg.nextSent()
	rg.line.Post(Trigger{Stamp: now, Item: 2})
	rg.line.Post(Printed{Stamp: now, Code: c2})
	rg.line.Post(CameraResult{Stamp: now, Item: 2, Grade: 'A', Pass: true})
	o := rg.waitFor("2 units", func(o Overview) bool { return len(o.Units) == 2 })
	if u := o.Units[0]; u.Item != 2 || u.Pass || u.Reason != "no-read" || u.Code != c2 {
		t.Fatalf("last unit: %+v", u)
	}
	if u := o.Units[1]; u.Item != 1 || !u.Pass || u.Code != c1 {
		t.Fatalf("first unit: %+v", u)
	}
	if o.RatePerMin <= 0 || o.Counts.Good != 1 || o.Counts.Rejected != 1 || o.Counts.ByReason["no-read"] != 1 {
		t.Fatalf("rate %v, counts %+v", o.RatePerMin, o.Counts)
	}
	dev := map[string]DeviceView{}
	for _, d := range o.Devices {
		dev[d.Name] = d
	}
	if d := dev["camera"]; d.Link != "up" || d.AgeMs < 0 {
		t.Fatalf("camera: %+v", d)
	}

	rg.line.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "camera", Err: "link down"})
	o = rg.waitFor("the camera alarm", func(o Overview) bool { return len(o.Alarms) > 0 && o.State == "Held" })
	var al AlarmView
	for _, a := range o.Alarms {
		if a.Device == "camera" {
			al = a
		}
	}
	if !al.Active || al.Text != "link down" || al.Batch != "B1" || al.AckAt != nil {
		t.Fatalf("camera alarm: %+v", al)
	}
	for _, d := range o.Devices {
		if d.Name == "camera" && (d.Link != "down" || d.Error != "link down") {
			t.Fatalf("camera with a fault: %+v", d)
		}
	}
	if err := rg.line.AcknowledgeAlarm(context.Background(), al.ID, "op2"); err != nil {
		t.Fatal(err)
	}
	if err := rg.line.AcknowledgeAlarm(context.Background(), al.ID, "op3"); !errors.Is(err, ErrAcknowledged) || !strings.Contains(err.Error(), "op2") {
		t.Fatalf("second acknowledge: %v", err)
	}
	if err := rg.line.AcknowledgeAlarm(context.Background(), 999, "op2"); !errors.Is(err, ErrNoAlarm) {
		t.Fatalf("acknowledge an unknown alarm: %v", err)
	}
	if h := rg.line.Health(context.Background()); h.Ready || len(h.Problems) != 1 || !strings.Contains(h.Problems[0], "camera: down") {
		t.Fatalf("health with the camera down: %+v", h)
	}
	rg.line.Post(DeviceOK{Stamp: Stamp{T: time.Now()}, Device: "camera"})
	o = rg.waitFor("the camera alarm cleared", func(o Overview) bool {
		for _, a := range o.Alarms {
			if a.ID == al.ID {
				return !a.Active
			}
		}
		return false
	})
	for _, a := range o.Alarms {
		if a.ID == al.ID && (a.AckBy != "op2" || a.AckAt == nil || a.ClearedAt == nil) {
			t.Fatalf("alarm acknowledged and cleared: %+v", a)
		}
	}
}

// A slow subscriber (never reading) does not keep a fast one from getting
// every change, nor the line from deciding.
func TestSlowSubscriberNeverSlowsTheLine(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	_, unsubSlow := rg.line.Subscribe() // never read
	defer unsubSlow()
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	for i := uint32(1); i <= 3; i++ {
		rg.goodUnit(i)
	}
	rg.waitFor("3 good", func(o Overview) bool { return o.Counts.Good == 3 })
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

func TestStation(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	old := rg.runBatch(workOrder("B0"), 1, 1)
	wo := workOrder("B1")
	wo.Levels = 2 // bundles of 2
	if _, err := rg.line.StartBatch(ctx, wo, "op1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationAdd(ctx, string(old[0]), "op1"); !isScan(err, ScanNoParent) {
		t.Fatalf("a child before a parent: %v", err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	var units []tracecode.Code
	for i := uint32(10); i < 14; i++ {
		units = append(units, rg.goodUnit(i))
	}
	// Unit 14 is rejected (no-read): its code is not commissioned.
	bad := rg.nextSent()
	now := Stamp{T: time.Now()}
	rg.line.Post(Trigger{Stamp: now, Item: 14})
	rg.line.Post(Printed{Stamp: now, Code: bad})
	rg.line.Post(CameraResult{Stamp: now, Item: 14, Grade: 'A', Pass: true})
	rg.waitFor("4 good, 1 rejected", func(o Overview) bool { return o.Counts.Good == 4 && o.Counts.Rejected == 1 })
	waitLedgerState(t, rg.store, bad, aggregation.StateRejected)

	v, err := rg.line.StationBeginNew(ctx, 2, "op2")
	if err != nil || v.Parent == "" || v.Ratio != 2 || v.Level != 2 {
		t.Fatalf("a new parent: %+v, %v", v, err)
	}
	parent := v.Parent
	if _, err := rg.line.StationBeginNew(ctx, 2, "op2"); !isScan(err, ScanParentOpen) {
		t.Fatalf("a second parent while one is open: %v", err)
	}
	for _, tc := range []struct{ scan, reason string }{
		{"not a code", ScanUnreadable},
		{"(01)06901234567892(21)ZZZ999", ScanNotOurs},
		{string(old[0]), ScanForeign},
		{string(parent), ScanDuplicate},
		{string(bad), ScanNotCommissioned},
	} {
		if _, err := rg.line.StationAdd(ctx, tc.scan, "op2"); !isScan(err, tc.reason) {
			t.Errorf("scan %q: %v, want %s", tc.scan, err, tc.reason)
		}
	}
	if v, err = rg.line.StationAdd(ctx, string(units[0]), "op2"); err != nil || len(v.Children) != 1 {
		t.Fatalf("first child: %+v, %v", v, err)
	}
	if _, err := rg.line.StationAdd(ctx, string(units[0]), "op2"); !isScan(err, ScanDuplicate) {
		t.Fatalf("the same child twice: %v", err)
	}
	v, err = rg.line.StationAdd(ctx, string(units[1]), "op2")
	if err != nil || v.Parent != "" || v.Packed == nil || v.Packed.Parent != parent || v.Packed.Partial || !v.Packed.Labelled {
		t.Fatalf("the ratio reached: %+v, %v", v, err)
	}
	info, err := rg.store.Lookup(ctx, parent)
	if err != nil || info.State != aggregation.StateCommissioned || info.Children != 2 {
		t.Fatalf("packed parent: %+v, %v", info, err)
	}
	for _, ev := range info.History {
		if ev.Kind == aggregation.EvPack && ev.Actor != (aggregation.Actor{Kind: aggregation.ActorUser, ID: "op2"}) {
			t.Fatalf("pack journaled by %+v, want the user", ev.Actor)
		}
	}
	if len(rg.rework.printed) != 1 {
		t.Fatalf("labels printed: %v", rg.rework.printed)
	}

	// A pre-printed parent label, scanned; a packed child is refused; a
	// short parent is closed with a reason.
	pre := tracecode.Code("(01)16901234567899(21)PRE001")
	if _, err := rg.store.AllocateGenerated(ctx, "B1", 2, []tracecode.Code{pre}, system); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationBegin(ctx, string(units[2]), "op2"); !isScan(err, ScanWrongLevel) {
		t.Fatalf("a unit as a parent: %v", err)
	}
	if _, err := rg.line.StationBegin(ctx, string(parent), "op2"); !isScan(err, ScanParentUsed) {
		t.Fatalf("a used parent: %v", err)
	}
	if _, err := rg.line.StationBegin(ctx, string(pre), "op2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationAdd(ctx, string(units[0]), "op2"); !isScan(err, ScanPacked) {
		t.Fatalf("a packed child: %v", err)
	}
	if _, err := rg.line.StationAdd(ctx, string(units[2]), "op2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationClose(ctx, " ", "op2"); !errors.Is(err, aggregation.ErrRefused) {
		t.Fatalf("closing short without a reason: %v", err)
	}
	v, err = rg.line.StationClose(ctx, "last bundle", "op2")
	if err != nil || v.Packed == nil || !v.Packed.Partial || v.Packed.Children != 1 {
		t.Fatalf("closing short: %+v, %v", v, err)
	}
	sum, err := rg.store.Summary(ctx, "B1")
	if err != nil || sum.Levels[1].FullParents != 1 || sum.Levels[1].PartialParents != 1 || sum.Levels[1].LabelsVerified != 1 {
		t.Fatalf("level 2 in the ledger: %+v, %v", sum.Levels[1], err)
	}
	o := rg.waitFor("the overview's level 2", func(o Overview) bool {
		return len(o.Levels) == 1 && o.Levels[0].Full == 1 && o.Levels[0].Partial == 1
	})
	if o.Levels[0].InProgress != 1 || o.Levels[0].Name != "中包" {
		t.Fatalf("level 2 on the overview: %+v", o.Levels[0])
	}
	// A reprint goes to the rework label printer, journaled as the user.
	if err := rg.line.StationReprint(ctx, parent, "label torn", "op2"); err != nil {
		t.Fatal(err)
	}
	if len(rg.rework.printed) != 2 {
		t.Fatalf("labels printed: %v", rg.rework.printed)
	}

	// QA's questions, through the Line.
	cv, err := rg.line.LookupCode(ctx, " "+string(units[0])+" ")
	if err != nil || cv.Top != parent || len(cv.Ancestors) != 1 || len(cv.SameTop) != 2 || len(cv.Children) != 0 || len(cv.Code.History) == 0 {
		t.Fatalf("lookup of a packed unit: %+v, %v", cv, err)
	}
	if cv, err = rg.line.LookupCode(ctx, string(parent)); err != nil || len(cv.Children) != 2 || cv.Top != parent {
		t.Fatalf("lookup of a parent: %+v, %v", cv, err)
	}
	if _, err := rg.line.LookupCode(ctx, "(01)06901234567892(21)NOPE"); !errors.Is(err, aggregation.ErrNotFound) {
		t.Fatalf("lookup of an unknown code: %v", err)
	}
	rec, err := rg.line.BatchRecord(ctx, "B1")
	if err != nil || rec.Spec.ID != "B1" || len(rec.Trail) == 0 {
		t.Fatalf("batch record: %+v, %v", rec, err)
	}
	packs := 0
	for _, ev := range rec.Trail {
		if ev.Kind == aggregation.EvPack && ev.Actor.ID == "op2" {
			packs++
		}
	}
	if packs != 2 {
		t.Fatalf("packs by op2 in B1's trail: %d, want 2", packs)
	}
	for _, tc := range []struct {
		f    BatchFilter
		want string
	}{
		{BatchFilter{}, "B0 B1"},
		{BatchFilter{Product: "amox-gs1"}, "B0 B1"},
		{BatchFilter{Product: "amox-nmpa"}, ""},
		{BatchFilter{State: "complete"}, "B0"},
		{BatchFilter{From: "2026-11-01", To: "2026-11-01"}, "B0 B1"},
		{BatchFilter{From: "2026-11-02"}, ""},
	} {
		bs, err := rg.line.Batches(ctx, tc.f)
		var ids []string
		for _, b := range bs {
			ids = append(ids, b.Batch)
		}
		if err != nil || strings.Join(ids, " ") != tc.want {
			t.Errorf("batches %+v: %v, %v; want %s", tc.f, ids, err, tc.want)
		}
	}
	if _, err := rg.line.Batches(ctx, BatchFilter{From: "yesterday", State: "lost"}); err == nil || !strings.Contains(err.Error(), "from:") || !strings.Contains(err.Error(), "state:") {
		t.Fatalf("a bad filter: %v", err)
	}
}

func isScan(err error, reason string) bool {
	var se *ScanError
	return errors.As(err, &se) && se.Reason == reason && se.Message != "" && errors.Is(err, ErrScanRefused)
}

func waitLedgerState(t *testing.T, s *aggregation.Store, c tracecode.Code, want aggregation.CodeState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := s.Code(context.Background(), c)
		if err == nil && info.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("code %s: %s (%v), want %s", c, info.State, err, want)
		}
		time.Sleep(2 * time.Millisecond) // polling the ledger: it has no change feed
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

// records lists the journal's records: "type batch actor value".
func records(t *testing.T, s *aggregation.Store) []string {
	t.Helper()
	var out []string
	if err := s.Events(context.Background(), 0, func(ev aggregation.Event) error {
		if ev.Kind == aggregation.EvRecord {
			out = append(out, fmt.Sprintf("%s %s %s %s", ev.Reason, ev.Batch, ev.Actor.ID, ev.Answer))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func hasRecord(recs []string, parts ...string) bool {
	for _, r := range recs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(r, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// Every command (accepted or refused, with the refusal) and every alarm
// raised, cleared and acknowledged is journaled, with the user.
func TestJournalCommandsAndAlarms(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	if err := rg.line.Command(ctx, CmdReset, "op1"); !errors.Is(err, ErrNoBatch) {
		t.Fatalf("reset with no batch: %v", err)
	}
	if _, err := rg.line.StartBatch(ctx, WorkOrder{Product: "amox-gs1"}, "op1"); err == nil {
		t.Fatal("an incomplete work order started a batch")
	}
	if _, err := rg.line.StartBatch(ctx, workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	if err := rg.line.Command(ctx, CmdUnhold, "op2"); err == nil {
		t.Fatal("unhold in Idle accepted")
	}
	rg.line.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "printer", Err: "link down"})
	o := rg.waitFor("the printer alarm", func(o Overview) bool { return len(o.Alarms) == 1 })
	if err := rg.line.AcknowledgeAlarm(ctx, o.Alarms[0].ID, "op3"); err != nil {
		t.Fatal(err)
	}
	rg.line.Post(DeviceOK{Stamp: Stamp{T: time.Now()}, Device: "printer"})
	rg.waitFor("the printer alarm cleared", func(o Overview) bool { return len(o.Alarms) == 1 && !o.Alarms[0].Active })
	if err := rg.line.Rework(ctx, ReworkOp{Kind: ReworkSample, Code: "(01)06901234567892(21)NOPE", Reason: "qa"}, "qa1"); err == nil {
		t.Fatal("a rework of an unknown code was accepted")
	}
	wantAll := [][]string{
		{"command  op1", `"command":"reset"`, `"accepted":false`, "no batch"},
		{"command  op1", `"command":"start-batch"`, `"accepted":false`, "batch: the batch number is required"},
		{"command B1 op1", `"command":"start-batch"`, `"accepted":true`, `"batch":"B1"`},
		{"command B1 op1", `"command":"reset"`, `"accepted":true`},
		{"command B1 op2", `"command":"unhold"`, `"accepted":false`, "unhold in Idle"},
		{"alarm B1 line", `"device":"printer"`, `"text":"link down"`},
		{"alarm.ack B1 op3", `"device":"printer"`},
		{"alarm B1 line", `"device":"printer"`, `"cleared":true`},
		{"command B1 qa1", `"command":"rework"`, `"accepted":false`},
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := records(t, rg.store)
		var missing []string
		for _, w := range wantAll {
			if !hasRecord(recs, w...) {
				missing = append(missing, strings.Join(w, " … "))
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records missing:\n%s\nrecords:\n%s", strings.Join(missing, "\n"), strings.Join(recs, "\n"))
		}
		time.Sleep(5 * time.Millisecond) // alarms are journaled off the line's loop; the ledger has no change feed
	}
	// The batch's audit trail holds its records.
	n := 0
	if err := rg.store.Trail(ctx, "B1", func(ev aggregation.Event) error {
		if ev.Kind == aggregation.EvRecord {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("B1's trail holds %d records, want ≥ 6", n)
	}
}

// With no batch, a device fault is an alarm and shows the device down; a
// batch started then has the fault too. A message alarm (not a fault) is
// never active: it waits for an acknowledgement.
func TestFaultsWithNoBatch(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	rg.line.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "camera", Err: "link down"})
	o := rg.waitFor("the camera alarm", func(o Overview) bool { return len(o.Alarms) == 1 })
	if a := o.Alarms[0]; !a.Active || a.Device != "camera" || a.Batch != "" {
		t.Fatalf("alarm with no batch: %+v", a)
	}
	for _, d := range o.Devices {
		if d.Name == "camera" && d.Link != "down" {
			t.Fatalf("camera: %+v", d)
		}
	}
	if _, err := rg.line.StartBatch(ctx, workOrder("B1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.waitFor("B1 knows the camera is down", func(o Overview) bool {
		return o.Runner != nil && o.Runner.Faults["camera"] == "link down"
	})
	rg.line.Post(Printed{Stamp: Stamp{T: time.Now()}, Code: "(01)06901234567892(21)STRAY"})
	o = rg.waitFor("the printer's message", func(o Overview) bool {
		for _, a := range o.Alarms {
			if a.Device == "printer" {
				return true
			}
		}
		return false
	})
	for _, a := range o.Alarms {
		if a.Device == "printer" && (a.Active || !strings.Contains(a.Text, "never sent")) {
			t.Fatalf("a message alarm: %+v", a)
		}
	}
}

// BenchmarkLiveUpdate: a unit's camera result posted → an overview showing
// it reaches a live subscriber (ns/op is that latency; the HMI's goal is
// ≤ 250 ms at the browser).
func BenchmarkLiveUpdate(b *testing.B) {
	rg := newLineRig(b, b.TempDir())
	wo := workOrder("B1")
	wo.Planned = 1_000_000
	if _, err := rg.line.StartBatch(context.Background(), wo, "op1"); err != nil {
		b.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	ch, unsub := rg.line.Subscribe()
	defer unsub()
	var worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code := rg.nextSent()
		now := Stamp{T: time.Now()}
		rg.line.Post(Trigger{Stamp: now, Item: uint32(i + 1)})
		rg.line.Post(Printed{Stamp: now, Code: code})
		for o := range ch {
			if o.Runner != nil && o.Runner.Counters.Printed == uint64(i+1) {
				break
			}
		}
		b.StartTimer()
		start := time.Now()
		rg.line.Post(CameraResult{Stamp: now, Item: uint32(i + 1), Reads: []Read{{Code: code}}, Grade: 'A', Pass: true})
		for o := range ch {
			if o.Counts.Good == uint64(i+1) {
				break
			}
		}
		worst = max(worst, time.Since(start))
		b.StopTimer()
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}

// The overview is the HMI's JSON contract: lists are never null.
func TestOverviewJSON(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	b, err := json.Marshal(rg.line.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ready_for_batch":true`, `"levels":[]`, `"last_units":[]`, `"alarms":[]`, `"codes_left":[]`, `"steps":[]`, `"rejected_by_reason":{}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("overview JSON lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), "null") || strings.Contains(string(b), `"batch"`) {
		t.Errorf("overview JSON with no batch: %s", b)
	}
}

func TestHistogram(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	h := histogram([]time.Duration{ms(0.3), ms(1), ms(1.5), ms(7), ms(900)}, []float64{1, 2, 10})
	if fmt.Sprint(h.Counts) != "[2 3 4]" || h.Count != 5 || h.SumMs != 909.8 {
		t.Fatalf("histogram: %+v", h)
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

func TestPreviewRework(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	wo := workOrder("B1")
	wo.Levels = 2
	if _, err := rg.line.StartBatch(ctx, wo, "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	var u []tracecode.Code
	for i := uint32(1); i <= 3; i++ {
		u = append(u, rg.goodUnit(i))
	}
	for _, c := range u {
		waitLedgerState(t, rg.store, c, aggregation.StateCommissioned)
	}
	v, err := rg.line.StationBeginNew(ctx, 2, "op1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range u[:2] {
		if _, err := rg.line.StationAdd(ctx, string(c), "op1"); err != nil {
			t.Fatal(err)
		}
	}
	parent := v.Parent
	head := rg.store.Head()
	for _, tc := range []struct {
		op      ReworkOp
		changes string
		refusal string
	}{
		{ReworkOp{Kind: ReworkDecommission, Code: u[2], Reason: "damaged"}, fmt.Sprintf("[{%s commissioned decommissioned }]", u[2]), ""},
		{ReworkOp{Kind: ReworkSample, Code: u[0], Reason: "qa"}, "[]", "aggregated, not a loose"},
		{ReworkOp{Kind: ReworkUnpack, Code: parent, Reason: "recount"}, fmt.Sprintf("[{%s aggregated commissioned %s} {%s aggregated commissioned %s}]", u[0], parent, u[1], parent), ""},
		{ReworkOp{Kind: ReworkReplace, Code: parent, Old: u[0], New: u[2], Reason: "damaged"}, fmt.Sprintf("[{%s aggregated commissioned %s} {%s commissioned aggregated %s}]", u[0], parent, u[2], parent), ""},
		{ReworkOp{Kind: ReworkReplace, Code: parent, Old: u[2], New: u[0], Reason: "x"}, "[]", "is not in"},
		{ReworkOp{Kind: ReworkDecommission, Code: "(01)06901234567892(21)NOPE", Reason: "x"}, "[]", "not a code of this line"},
		{ReworkOp{Kind: ReworkReprint, Code: parent, Reason: "torn"}, "[]", ""},
	} {
		p, err := rg.line.PreviewRework(ctx, tc.op)
		if err != nil {
			t.Fatalf("%+v: %v", tc.op, err)
		}
		if got := fmt.Sprint(p.Changes); got != tc.changes || !strings.Contains(p.Refusal, tc.refusal) || (tc.refusal == "") != (p.Refusal == "") {
			t.Errorf("%s %s: changes %s refusal %q; want %s, %q", tc.op.Kind, tc.op.Code, got, p.Refusal, tc.changes, tc.refusal)
		}
	}
	if _, err := rg.line.PreviewRework(ctx, ReworkOp{Kind: "burn", Code: u[0], Reason: "x"}); !errors.Is(err, ErrBadRework) {
		t.Fatalf("an unknown rework: %v", err)
	}
	if rg.store.Head() != head {
		t.Fatal("a preview changed the ledger")
	}
}

// The pool source hands out a pool's last codes rather than refusing a chunk.
func TestPoolSourceLastCodes(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	data, err := os.ReadFile("../examples/codes/8021764-L3.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.ImportCodeFile(ctx, "8021764-L3", "l3.txt", data, "op1"); err != nil {
		t.Fatal(err)
	}
	spec := aggregation.BatchSpec{ID: "N1", Product: "阿莫西林胶囊", Line: "L1", Levels: []aggregation.LevelSpec{
		{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 10, Scheme: tracecode.SchemeNMPA20}, {Level: 3, Ratio: 20, Scheme: tracecode.SchemeNMPA20}}}
	if err := rg.store.CreateBatch(ctx, spec, system); err != nil {
		t.Fatal(err)
	}
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

// The runner view follows the line from batch to batch.
func TestRunnerView(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	v := rg.line.RunnerView()
	if s := v.Snapshot(); s.State != "Stopped" || s.Counters.RejectReason == nil {
		t.Fatalf("no batch: %+v", s)
	}
	updates, unsub := v.Subscribe()
	defer unsub()
	rg.runBatch(workOrder("B1"), 1, 1)
	if _, err := rg.line.StartBatch(context.Background(), workOrder("B2"), "op1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Command(context.Background(), CmdReset, "op1"); err != nil {
		t.Fatal(err)
	}
	// Updates of B1's run and of B2's: B2 is new, Idle after the reset.
	sawVerdict := false
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u := <-updates:
			for _, a := range u.Actions {
				if _, ok := a.(Verdict); ok {
					sawVerdict = true
				}
			}
			if sawVerdict && u.Snapshot.State == "Idle" && u.Snapshot.Counters.Triggered == 0 {
				if err := v.AckAlarm(context.Background(), "x", "op1"); !errors.Is(err, ErrNoAlarm) {
					t.Fatalf("ack of alarm x: %v", err)
				}
				return
			}
		case <-deadline:
			t.Fatalf("updates never showed B1's verdict and B2 Idle (verdict seen: %t)", sawVerdict)
		}
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
