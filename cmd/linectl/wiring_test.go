package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/aggregation"
	cameraopcua "github.com/tracline/tracline/camera/opcua"
	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

const lineExample = "../../examples/line-linesim.yaml"

// TestLineFileExample: the shipped example loads, validates and says what
// it claims to (the ports of examples/linesim.yaml, the product's ratio).
func TestLineFileExample(t *testing.T) {
	f, err := loadLineFile(lineExample)
	if err != nil {
		t.Fatal(err)
	}
	products, err := f.loadProducts()
	if err != nil {
		t.Fatalf("products of the example: %v", err)
	}
	if f.Batch != nil {
		t.Errorf("the example has a batch section: batches start from work orders")
	}
	p := products["amoxicillin-gs1"]
	if p == nil {
		t.Fatalf("products: %v, want amoxicillin-gs1", products)
	}
	mc, err := f.machineConfig()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"plc address", f.Devices.PLC.Modbus.Address, "127.0.0.1:5020"},
		{"printer endpoint", f.Devices.Printer.Stream.Endpoint, "opc.tcp://127.0.0.1:4841"},
		{"camera endpoint", f.Devices.Camera.Stream.Endpoint, "opc.tcp://127.0.0.1:4842"},
		{"aggregation cameras", len(f.Devices.AggCameras), 1},
		{"no shared label printer", f.Devices.LabelPrinter == nil, true},
		{"label printers", len(f.Devices.LabelPrinters), 1},
		{"level 2's label printer", len(f.Devices.LabelPrinters) == 1 && f.Devices.LabelPrinters[0].Address == "127.0.0.1:9100", true},
		{"level-2 ratio", p.Ratio(2), 10},
		{"label check on level 2", mc.LabelCheck[2], true},
		{"deadline", mc.Deadline, 80 * time.Millisecond},
		{"min grade", string(mc.MinGrade), "C"},
	}
	if len(f.Devices.AggCameras) == 1 {
		checks = append(checks, struct {
			what      string
			got, want any
		}{"aggregation camera endpoint", f.Devices.AggCameras[0].Stream.Endpoint, "opc.tcp://127.0.0.1:4843"})
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestLineFileErrors: every broken config is refused with an error that
// names the field. Each case edits the example file.
func TestLineFileErrors(t *testing.T) {
	base, err := os.ReadFile(lineExample)
	if err != nil {
		t.Fatal(err)
	}
	// An old-style batch section, for the cases about it.
	base = append(base, []byte(oldBatchSection)...)
	edit := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("example no longer contains %q; fix the test case", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	cases := []struct {
		name string
		edit func(string) string
		want string // in the error
		// knownBug: the code names the field differently or accepts the
		// value; the case is skipped (with what it got) until fixed.
		knownBug string
	}{
		{name: "missing batch.id", edit: edit(`id: "A2611231"`, `id: ""`), want: "batch.id"},
		{name: "missing line", edit: edit("line: PKG-L03", "line: \"\""), want: "line:"},
		{name: "no product", edit: edit("products: [amoxicillin-gs1.yaml]", "products: []"), want: "product:"},
		{name: "empty product file name", edit: edit("products: [amoxicillin-gs1.yaml]", "products: [amoxicillin-gs1.yaml, \"\"]"), want: "products[1]"},
		{name: "two products with one key", edit: edit("products: [amoxicillin-gs1.yaml]", "products: [amoxicillin-gs1.yaml, other/amoxicillin-gs1.yaml]"), want: "same key"},
		{name: "batch product not a product", edit: edit("  levels: 2\n", "  levels: 2\n  product: aspirin\n"), want: "batch.product"},
		{name: "negative planned", edit: edit("planned: 2000", "planned: -5"), want: "batch.planned"},
		{name: "unknown key", edit: edit("  margin: 20ms", "  margin: 20ms\n  colour: red"), want: "colour"},
		{name: "misspelt device", edit: edit("  label_printers:\n", "  labelprinters:\n"), want: "labelprinters"},
		{name: "wrong type", edit: edit("printer_buffer: 8", "printer_buffer: eight"), want: "eight"},
		{name: "bad plc protocol", edit: edit("protocol: modbus", "protocol: profinet"), want: "plc.protocol"},
		{name: "plc address not host:port", edit: edit("address: 127.0.0.1:5020", "address: plc-1"), want: "plc.modbus.address"},
		{name: "plc output on an input table", edit: edit("stop_request: {table: coil", "stop_request: {table: input"), want: "plc.signals.stop_request"},
		{name: "plc required signal missing", edit: edit("      heartbeat: {table: input, address: 2, type: u16}\n", ""), want: "plc.signals.heartbeat"},
		{name: "printer endpoint not opc.tcp", edit: edit("endpoint: opc.tcp://127.0.0.1:4841", "endpoint: http://127.0.0.1:4841"), want: "printer.printer.endpoint"},
		{name: "printer handover", edit: edit("handover: array", "handover: ftp"), want: "handover"},
		{name: "camera record node", edit: edit("record_node: ns=1;s=Camera.LastResult", "record_node: Camera.LastResult"), want: "camera.Camera"},
		{name: "aggregation camera endpoint", edit: edit("endpoint: opc.tcp://127.0.0.1:4843", "endpoint: \"\""), want: "aggregation_cameras[0]"},
		{name: "label printer symbology", edit: edit("symbology: gs1-datamatrix", "symbology: qr"), want: "label_printers[0] (level 2): label_printer.label-printer-L2.symbology"},
		{name: "label printer address", edit: edit("address: 127.0.0.1:9100", "address: 127.0.0.1"), want: "label_printers[0] (level 2): label_printer.label-printer-L2.address"},
		{name: "both label printer forms", edit: edit("  label_printers:\n", "  label_printer: {address: 127.0.0.1:9101}\n  label_printers:\n"),
			want: "label_printer and label_printers: give one"},
		{name: "label printers empty", edit: edit(labelPrinters, "  label_printers: []\n"), want: "label_printers: empty"},
		{name: "label printer of a level not aggregated", edit: edit(labelPrinters, labelPrinters+"    - {address: 127.0.0.1:9101}\n"),
			want: "label_printers[1]: level 3 is not aggregated on this line (aggregation_cameras reads level 2)"},
		{name: "aggregated level without a label printer", edit: edit("  aggregation_cameras:\n", "  aggregation_cameras:\n"+aggCamera3),
			want: "label_printers: 1 printer(s) for 2 aggregated levels (aggregation_cameras reads levels 2..3): level 3's labeller has none"},
		{name: "two levels on one label printer", edit: func(s string) string {
			return edit(labelPrinters, labelPrinters+"    - {address: 127.0.0.1:9100, symbology: gs1-128}\n")(edit("  aggregation_cameras:\n", "  aggregation_cameras:\n"+aggCamera3)(s))
		}, want: "label_printers[1] (level 3): address 127.0.0.1:9100 is also label_printers[0]'s"},
		{name: "labeller printer is the rework station's", edit: edit(labelPrinters, labelPrinters+"  rework_label_printer: {address: 127.0.0.1:9100}\n"),
			want: "label_printers[0] (level 2): address 127.0.0.1:9100 is also rework_label_printer's"},
		{name: "unnamed label printer named by its level", edit: edit("    - name: label-printer-L2       # in its errors and the labeller's alarm (default label-printer-L<n>)\n      address: 127.0.0.1:9100\n      symbology: gs1-datamatrix",
			"    - address: 127.0.0.1:9100\n      symbology: qr"), want: "label_printers[0] (level 2): label_printer.label-printer-L2.symbology"},
		{name: "label scanner without label printers", edit: edit(labelPrinters, ""), want: "label_scanners: a label scanner verifies printed labels, but no label_printers"},
		{name: "margin equals gate", edit: edit("margin: 20ms", "margin: 100ms"), want: "settings.margin"},
		{name: "margin above gate", edit: edit("gate: 100ms", "gate: 10ms"), want: "settings.margin"},
		{name: "gate not a duration", edit: edit("gate: 100ms", "gate: soon"), want: "soon"},
		{name: "unknown challenge outcome", edit: edit("challenge: [pass]", "challenge: [pass, smudge]"), want: "settings.challenge[1]"},
		{name: "min_grade two letters", edit: edit("min_grade: C", "min_grade: CC"), want: "settings.min_grade"},
		{name: "min_grade out of range", edit: edit("min_grade: C", "min_grade: G"), want: "settings.min_grade"},
		{name: "alloc_chunk below printer_buffer", edit: edit("alloc_chunk: 200", "alloc_chunk: 4"), want: "settings.alloc_chunk"},
		{name: "negative printer_buffer", edit: edit("printer_buffer: 8", "printer_buffer: -1"), want: "settings.printer_buffer"},
		{name: "negative levels", edit: edit("  levels: 2\n", "  levels: -1\n"), want: "batch.levels"},
		{name: "expiry not a date", edit: edit(`expiry: "2028-11-22"`, `expiry: "22/11/2028"`), want: "batch.expiry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "line.yaml")
			if err := os.WriteFile(path, []byte(tc.edit(string(base))), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := loadLineFile(path)
			if err == nil {
				if tc.knownBug != "" {
					t.Skipf("known bug (%s): accepted", tc.knownBug)
				}
				t.Fatalf("accepted: %+v", f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				if tc.knownBug != "" {
					t.Skipf("known bug (%s): got %v", tc.knownBug, err)
				}
				t.Fatalf("error does not name %q:\n%v", tc.want, err)
			}
			if f != nil {
				t.Errorf("returned a config with the error")
			}
			if tc.knownBug != "" {
				t.Logf("known bug %q is fixed; drop knownBug from this case", tc.knownBug)
			}
		})
	}
}

// labelPrinters is the example's label_printers section, whole.
const labelPrinters = `  label_printers:
    - name: label-printer-L2       # in its errors and the labeller's alarm (default label-printer-L<n>)
      address: 127.0.0.1:9100
      symbology: gs1-datamatrix
      check: around                # ~HS before and after each label
      timeout: 3s
`

// aggCamera3 is a level-3 aggregation camera, first in the list.
const aggCamera3 = "    - {name: AggCamera3, stream: {endpoint: opc.tcp://127.0.0.1:4845, record_node: ns=1;s=AggCamera3.LastResult, count_node: ns=1;s=AggCamera3.ResultCount, ring_node: ns=1;s=AggCamera3.Results}}\n"

// oldBatchSection is a config's batch section as written before batches
// came from work orders.
const oldBatchSection = `
batch:
  id: "A2611231"
  production_date: "2026-11-23"
  expiry: "2028-11-22"
  planned: 2000
  workshop: 固体制剂车间 包装三线
  manager: 王建国
  levels: 2
`

// An old-style config (a product, a batch section) still loads.
func TestLineFileOldStyle(t *testing.T) {
	base, err := os.ReadFile(lineExample)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(base), "products: [amoxicillin-gs1.yaml]", "product: amoxicillin-gs1.yaml", 1) + oldBatchSection
	path := filepath.Join(t.TempDir(), "line.yaml")
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	// The product file is beside the example, not in the temporary directory.
	f, err := loadLineFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wo := f.workOrder()
	if wo.Product != "amoxicillin-gs1" || wo.Batch != "A2611231" || wo.Planned != 2000 || wo.Levels != 2 || wo.Source != "config" {
		t.Errorf("work order %+v", wo)
	}
}

func TestLineFileMissing(t *testing.T) {
	_, err := loadLineFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
}

// FuzzLoadLineFile: no config file makes the loader panic; a config it
// accepts turns into a machine config without error.
func FuzzLoadLineFile(f *testing.F) {
	base, err := os.ReadFile(lineExample)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(base)
	f.Add([]byte(""))
	f.Add([]byte("line: x\n"))
	f.Add([]byte("line: [\n"))
	f.Add([]byte("line: x\nproduct: p.yaml\nbatch: {id: B1, planned: -1}\nsettings: {gate: 1ns, margin: 2ns, challenge: [nope], min_grade: ZZ}\n"))
	f.Add([]byte("devices:\n  plc: {protocol: modbus, signals: {verdict: {table: coil, address: 70000, type: verdict}}}\n  aggregation_cameras: [{}, {name: x}]\n  label_printer: {}\n"))
	f.Add([]byte("devices:\n  aggregation_cameras: [{}, {}]\n  label_printers: [{address: 127.0.0.1:9100}, {address: 127.0.0.1:9100}, {}]\n  label_printer: {address: x}\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add(bytes.ReplaceAll(base, []byte("20ms"), []byte("-20ms")))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "line.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		lf, err := loadLineFile(path)
		if err != nil {
			if lf != nil {
				t.Fatalf("config returned with error %v", err)
			}
			return
		}
		if _, err := lf.machineConfig(); err != nil {
			t.Fatalf("accepted, but its machine config fails: %v", err)
		}
	})
}

// TestRunAgainstLinesim runs `linectl run` against linesim in-process: the
// config file is written from the simulator's endpoints, the line is driven
// over the HTTP API, and the ledger is checked after the controller stopped.
func TestRunAgainstLinesim(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the simulated line and a controller")
	}
	const units = 40
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, stderr := testCLI()

	product, err := tracecode.LoadProduct(gs1Product)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sim.Config{Seed: 7, Rate: 1200, Units: units, Ratios: []int{product.Ratio(2)}, StartStopped: true,
		Listen: sim.Listen{PLCOPCUA: "off", HTTP: "off"}}, discardLogger(),
		sim.WithDevices(devsim.Factory(devsim.Config{}, discardLogger())))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The config file, as an engineer would write it for these ports.
	productAbs, err := filepath.Abs(gs1Product)
	if err != nil {
		t.Fatal(err)
	}
	// No batch in it: the batch starts from a work order through the API.
	lf := demoLineFile(&demo.Setup{Product: product, ProductFile: productAbs, Devices: s.Endpoints(), Gate: 100 * time.Millisecond})
	lf.Line = "TEST-L1"
	lf.Settings.Challenge = []string{"pass"}
	const batch = "T2611231"
	workOrder := func(expiry string) string {
		return fmt.Sprintf(`{"product":%q,"batch":%q,"production_date":"2026-11-23","expiry":%q,"planned":%d,"levels":2,"user":"test-operator"}`,
			demo.ProductKey(productAbs), batch, expiry, units)
	}
	if n := len(lf.Devices.AggCameras); n != 1 {
		t.Fatalf("simulator serves %d aggregation cameras, want 1 (level 2)", n)
	}
	js, err := yaml.Marshal(lf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config, data := filepath.Join(dir, "line.yaml"), filepath.Join(dir, "ledger")
	if err := os.WriteFile(config, js, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() {
		runErr <- cmdRun(runCtx, c, []string{"--config", config, "--data", data, "--listen", addr, "--local-api"})
	}()
	api := "http://" + addr + "/api/line"

	// The API is up once the controller has connected to every device;
	// the line has no batch, and refuses commands until it has one.
	waitState(ctx, t, api, runErr, func(st apiState) bool { return st.Overview.Ready && st.Overview.Batch == nil })
	if code, body := postCommand(ctx, t, api, "reset"); code != http.StatusConflict || !strings.Contains(body, "no batch") {
		t.Errorf("reset with no batch: HTTP %d %s, want 409 naming the missing batch", code, body)
	}
	// A work order whose expiry is before its production date is refused,
	// naming the field; then the right one starts the batch.
	if code, body, err := postJSON(ctx, api+"/batches", workOrder("2025-01-01")); err != nil || code != http.StatusBadRequest || !strings.Contains(body, `"field":"expiry"`) {
		t.Errorf("work order with expiry before production: HTTP %d %s %v, want 400 naming expiry", code, body, err)
	}
	if code, body, err := postJSON(ctx, api+"/batches", workOrder("2028-11-22")); err != nil || code != http.StatusOK {
		t.Fatalf("work order: HTTP %d %s %v", code, body, err)
	}
	waitState(ctx, t, api, runErr, func(st apiState) bool { return st.Line.State == "Stopped" && !st.Overview.Ready })
	for _, cmd := range []string{"reset", "start"} {
		if code, body := postCommand(ctx, t, api, cmd); code != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", cmd, code, body)
		}
	}
	select {
	case <-s.Done():
	case err := <-runErr:
		t.Fatalf("linectl run stopped: %v\n%s", err, stderr)
	case <-ctx.Done():
		t.Fatalf("simulator did not finish: %+v", s.GroundTruth().Summary)
	}
	waitState(ctx, t, api, runErr, func(st apiState) bool { return st.Line.State == "Execute" && st.Line.InFlight == 0 })
	if code, body := postCommand(ctx, t, api, "complete"); code != http.StatusOK {
		t.Fatalf("complete: HTTP %d %s", code, body)
	}
	final := waitState(ctx, t, api, runErr, func(st apiState) bool { return st.Line.State == "Complete" && st.Overview.Ready })
	// The labeller's printer is on the overview with the other devices,
	// up after the batch's labels.
	labeller := ""
	for _, d := range final.Overview.Devices {
		if d.Name == "label-printer-L2" {
			labeller = d.Link
		}
	}
	if labeller != "up" {
		t.Errorf("overview devices %+v: want label-printer-L2 up", final.Overview.Devices)
	}
	// Ready for the next batch without a restart; the batch number is
	// not used twice.
	if code, body, err := postJSON(ctx, api+"/batches", workOrder("2028-11-22")); err != nil || code != http.StatusBadRequest || !strings.Contains(body, `"code":"used"`) {
		t.Errorf("the same batch number again: HTTP %d %s %v, want 400 used", code, body, err)
	}
	stopRun()
	if err := <-runErr; err != nil {
		t.Fatalf("linectl run: %v", err)
	}

	// An old-style config naming the completed batch: the controller
	// starts, says the section is ignored, and the line waits for a work
	// order (it does not reopen or restart a complete batch).
	lf.Batch = &batchFile{ID: batch, ProductionDate: "2026-11-23", Expiry: "2028-11-22", Planned: units, Levels: 2}
	if js, err = yaml.Marshal(lf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, js, 0o644); err != nil {
		t.Fatal(err)
	}
	addr2 := freeAddr(t)
	runCtx2, stopRun2 := context.WithCancel(ctx)
	defer stopRun2()
	runErr2 := make(chan error, 1)
	var logMu sync.Mutex
	var logBuf bytes.Buffer
	c2 := *c
	c2.log = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logBuf.Write(p)
	}), nil))
	go func() {
		runErr2 <- cmdRun(runCtx2, &c2, []string{"--config", config, "--data", data, "--listen", addr2, "--local-api"})
	}()
	again := waitState(ctx, t, "http://"+addr2+"/api/line", runErr2, func(st apiState) bool { return st.Overview.Ready })
	if again.Overview.Batch != nil {
		t.Errorf("old-style config naming a complete batch: the line has batch %s", again.Overview.Batch.ID)
	}
	stopRun2()
	if err := <-runErr2; err != nil {
		t.Fatalf("linectl run (old-style config): %v", err)
	}
	logMu.Lock()
	if !strings.Contains(logBuf.String(), "batch section is ignored") {
		t.Errorf("no warning that the config's batch section is ignored:\n%s", logBuf.String())
	}
	logMu.Unlock()

	gt := s.GroundTruth()
	if err := gt.Check(); err != nil {
		t.Fatalf("simulator's ground truth: %v", err)
	}
	if gt.Summary.Triggered != units || gt.Summary.Good == 0 {
		t.Fatalf("simulator: %+v", gt.Summary)
	}
	if !final.Line.ChallengeOK {
		t.Errorf("challenge: %+v", final.Line.Challenge)
	}

	store, err := aggregation.Open(data, aggregation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sum, err := store.Summary(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if p := sum.Check(); len(p) > 0 {
		t.Errorf("batch does not balance: %v\n%+v", p, sum.Levels)
	}
	if sum.State != aggregation.BatchComplete {
		t.Errorf("batch state %s, want complete", sum.State)
	}
	vr, err := store.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !vr.OK() {
		t.Errorf("verify: %v", vr.Problems)
	}
	commissioned := 0
	for _, st := range []aggregation.CodeState{aggregation.StateCommissioned, aggregation.StateAggregated} {
		if err := store.Codes(ctx, batch, 1, st, func(tracecode.Code) error { commissioned++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("simulator %+v; ledger L1 commissioned %d; levels %+v", gt.Summary, commissioned, sum.Levels)
	if commissioned != gt.Summary.Good {
		t.Errorf("ledger has %d commissioned unit codes, the simulator %d good units (%+v)", commissioned, gt.Summary.Good, gt.Summary)
	}
	if problems := demo.CompareTruth(ctx, store, batch, gt); len(problems) > 0 {
		t.Errorf("ledger against the simulator's ground truth:\n%s", strings.Join(problems, "\n"))
	}
}

// apiState is the part of GET /api/line the test looks at.
type apiState struct {
	Line struct {
		State       string `json:"state"`
		Why         string `json:"why"`
		InFlight    int    `json:"in_flight"`
		ChallengeOK bool   `json:"challenge_ok"`
		Challenge   []any  `json:"challenge"`
	} `json:"line"`
	Overview struct {
		Ready bool `json:"ready_for_batch"`
		Batch *struct {
			ID string `json:"id"`
		} `json:"batch"`
		Devices []struct {
			Name string `json:"name"`
			Link string `json:"link"`
		} `json:"devices"`
	} // GET /api/line/overview
}

// freeAddr picks a loopback address nobody listens on (a port the kernel
// just handed out and took back).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func postCommand(ctx context.Context, t *testing.T, api, cmd string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"command":%q,"user":"test-operator"}`, cmd)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/commands", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// waitState polls GET /api/line until cond holds, the controller stops or
// ctx ends (connection errors while the API comes up are retried).
func waitState(ctx context.Context, t *testing.T, api string, runErr chan error, cond func(apiState) bool) apiState {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last apiState
	var lastErr error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api, nil)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			lastErr = err
		} else {
			var st apiState
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil {
				err = getJSON(ctx, api+"/overview", &st.Overview)
			}
			if err == nil && resp.StatusCode == http.StatusOK {
				if cond(st) {
					return st
				}
				last, lastErr = st, nil
			} else {
				lastErr = fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
			}
		}
		select {
		case err := <-runErr:
			runErr <- err
			t.Fatalf("linectl run stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("line did not get there: state %s (%s), last error %v", last.Line.State, last.Line.Why, lastErr)
		case <-tick.C:
		}
	}
}

// The engineer's screen shows the devices as configured: every device
// with its settings, and never a secret.
func TestDeviceConfigsForTheEngineer(t *testing.T) {
	f, err := loadLineFile("../../examples/line-linesim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.Devices.PLC.OPCUA.PrivateKey = "/etc/tracline/hunter2.key"
	ds := deviceConfigs(f.Devices)
	names := map[string]line.DeviceConfig{}
	for _, d := range ds {
		names[d.Name] = d
		for _, s := range d.Settings {
			if strings.Contains(s.Value, "hunter2") {
				t.Errorf("%s: secret shown as %s", d.Name, s.Key)
			}
		}
	}
	plc, ok := names["plc"]
	if !ok || plc.Endpoint == "" || len(plc.Settings) == 0 {
		t.Fatalf("plc: %+v", plc)
	}
	found := false
	for _, s := range plc.Settings {
		if s.Key == "signals.item_trigger" && strings.HasPrefix(s.Value, "input 0 u32") {
			found = true
		}
	}
	if !found {
		t.Errorf("plc settings name no trigger signal: %+v", plc.Settings)
	}
	for _, want := range []string{"printer", "camera"} {
		if d, ok := names[want]; !ok || d.Endpoint == "" {
			t.Errorf("%s: %+v", want, d)
		}
	}
	// The level-2 labeller's printer, by its level; an unnamed one shows
	// the name it is wired with (its errors and the labeller's alarm say it).
	if d, ok := names["label_printer_L2"]; !ok || d.Endpoint != "127.0.0.1:9100" || d.Kind != "label-printer" || d.Driver != "zpl" {
		t.Errorf("label_printer_L2: %+v", d)
	}
	f.Devices.LabelPrinters[0].Name = ""
	f.Devices.LabelPrinters = append(f.Devices.LabelPrinters, f.Devices.LabelPrinters[0])
	f.Devices.LabelPrinters[1].Address = "127.0.0.1:9101"
	got := map[string]string{}
	for _, d := range deviceConfigs(f.Devices) {
		for _, s := range d.Settings {
			if s.Key == "name" {
				got[d.Name] = s.Value
			}
		}
	}
	if got["label_printer_L2"] != "label-printer-L2" || got["label_printer_L3"] != "label-printer-L3" || got["label_printer"] != "" {
		t.Errorf("label printers' names: %v", got)
	}
}

// TestLabelSymbologiesAgainstProducts: a label printer whose symbology
// cannot carry a level's codes is refused at start, naming the printer,
// the product, the level and the key to set; the rework station's printer
// reprints each level in its labeller's symbology unless told otherwise.
func TestLabelSymbologiesAgainstProducts(t *testing.T) {
	p, err := tracecode.LoadProduct("../../examples/amoxicillin-nmpa20.yaml") // levels 1–3 nmpa20, 4 SSCC
	if err != nil {
		t.Fatal(err)
	}
	products := map[string]*tracecode.Product{"amoxicillin-nmpa20": p}
	cam := cameraopcua.Config{}
	zc := func(addr string, sym zpl.Symbology, by ...zpl.Symbology) zpl.Config {
		return zpl.Config{Address: addr, Symbology: sym, SymbologyByLevel: by}
	}
	three := []cameraopcua.Config{cam, cam, cam} // levels 2..4 aggregated
	right := []zpl.Config{zc("h:1", zpl.Code128), zc("h:2", zpl.Code128), zc("h:3", zpl.GS1128)}
	rework := zc("h:9", zpl.Code128)
	tests := []struct {
		name string
		d    devicesFile
		want string
	}{
		{"per level, right", devicesFile{AggCameras: three, LabelPrinters: right, ReworkLabelPrinter: &rework}, ""},
		{"per level, SSCC in Code 128", devicesFile{AggCameras: three, LabelPrinters: []zpl.Config{right[0], right[1], zc("h:3", zpl.Code128)}},
			"label_printers[2]: product amoxicillin-nmpa20's level 4 codes are gs1-sscc, which symbology code128 cannot print: set symbology to gs1-128 or gs1-datamatrix"},
		{"per level, nmpa20 in GS1", devicesFile{AggCameras: three, LabelPrinters: []zpl.Config{zc("h:1", zpl.GS1DataMatrix), right[1], right[2]}},
			"label_printers[0]: product amoxicillin-nmpa20's level 2 codes are nmpa20, which symbology gs1-datamatrix cannot print: set symbology to code128 or datamatrix"},
		{"level 4 not aggregated", devicesFile{AggCameras: three[:2], LabelPrinters: right[:2]}, ""},
		{"shared, one symbology", devicesFile{AggCameras: three, LabelPrinter: &rework},
			"label_printer: product amoxicillin-nmpa20's level 4 codes are gs1-sscc, which symbology code128 cannot print: set symbology_by_level[2] to gs1-128 or gs1-datamatrix"},
		{"shared, by level", devicesFile{AggCameras: three, LabelPrinter: &zpl.Config{Address: "h:1", Symbology: zpl.Code128, SymbologyByLevel: []zpl.Symbology{zpl.Code128, zpl.Code128, zpl.GS1128}}}, ""},
		{"rework, its own list short of level 4", devicesFile{AggCameras: three, LabelPrinters: right, ReworkLabelPrinter: &zpl.Config{Address: "h:9", Symbology: zpl.Code128, SymbologyByLevel: []zpl.Symbology{zpl.Code128}}},
			"rework_label_printer: product amoxicillin-nmpa20's level 4 codes are gs1-sscc, which symbology code128 cannot print: set symbology_by_level[2]"},
		{"rework, pallets not aggregated on the line", devicesFile{AggCameras: three[:2], LabelPrinters: right[:2], ReworkLabelPrinter: &rework},
			"rework_label_printer: product amoxicillin-nmpa20's level 4 codes are gs1-sscc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.checkLabelSymbologies(products)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	d := devicesFile{AggCameras: three, LabelPrinters: right, ReworkLabelPrinter: &rework}
	if got := d.reworkPrinter().SymbologyByLevel; len(got) != 3 || got[2] != zpl.GS1128 {
		t.Fatalf("rework printer's symbologies %v, want its labellers'", got)
	}
	if rework.SymbologyByLevel != nil {
		t.Fatalf("the config's rework printer was changed: %v", rework.SymbologyByLevel)
	}
}
