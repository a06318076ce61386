package hmi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// The operator's screens over a real multi-batch line.Line on a real
// Badger ledger, with fake devices: the GS1 product (level-2 ratio 2) and
// the NMPA 20-digit one, whose pools start empty.

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

type opRig struct {
	*rig
	line    *line.Line
	printer *fakePrinter
	labels  *fakeLabels
}

func product(t testing.TB, file string, ratio2 int) *tracecode.Product {
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

// newOpRig runs a line.Line and the HMI on it. challenge, if any, is the
// batch-start challenge test.
func newOpRig(t testing.TB, challenge ...line.ChallengeStep) *opRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	store, err := aggregation.Open(t.TempDir(), aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	products := map[string]*tracecode.Product{"amox-gs1": product(t, "amoxicillin-gs1.yaml", 2),
		"amox-nmpa": product(t, "amoxicillin-nmpa20.yaml", 0)}
	pr := &fakePrinter{sent: make(chan tracecode.Code, 1<<16)}
	labels := &fakeLabels{}
	cfg := line.LineConfig{Line: "L1",
		Machine: line.Config{Deadline: 2 * time.Second, PrinterBuffer: 2, AllocChunk: 8, Challenge: challenge,
			LabelCheck: map[tracecode.Level]bool{2: true}}, // the station's new labels are scanned
		Products:  products,
		Devices:   line.Devices{PLC: fakePLC{}, Printer: pr, ReworkLabels: labels},
		IOTimeout: time.Second}
	cfg.BatchDevices = func(ctx context.Context, spec aggregation.BatchSpec) (line.Devices, error) {
		_, p, err := cfg.ProductOf(spec) // both products share a generic name: by the work order's key
		if err != nil {
			return line.Devices{}, err
		}
		cs, err := line.NewPoolSource(p, store, spec.ID)
		return line.Devices{Codes: cs}, err
	}
	l, err := line.NewLine(ctx, cfg, store, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	acc, err := accounts.Open(ctx, accounts.Config{Params: accounts.Params{Time: 1, Memory: 64, Threads: 1}, Demo: true},
		accounts.Ledger(store), log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := hmi.New(hmi.Config{Store: store, Line: l.RunnerView(), Overview: l, Accounts: acc, Demo: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan struct{})
	go func() { srv.Run(ctx); close(hubDone) }()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		cancel()
		<-hubDone
		if err := <-done; err != nil {
			t.Errorf("line: %v", err)
		}
		store.Close()
	})
	rg := &rig{t: t, store: store, acc: acc, srv: srv, ts: ts, printer: pr}
	rg.router = rg.openAPIRouter()
	return &opRig{rig: rg, line: l, printer: pr, labels: labels}
}

// unit runs one unit down the line: the next code sent to the printer,
// printed, read (good unless read is false: a no-read).
func (o *opRig) unit(item uint32, read bool) tracecode.Code {
	o.t.Helper()
	var code tracecode.Code
	select {
	case code = <-o.printer.sent:
	case <-time.After(10 * time.Second):
		o.t.Fatal("no code sent to the printer")
	}
	now := line.Stamp{T: time.Now()}
	o.line.Post(line.Trigger{Stamp: now, Item: item})
	o.line.Post(line.Printed{Stamp: now, Code: code})
	res := line.CameraResult{Stamp: now, Item: item, Grade: 'A', Pass: true}
	if read {
		res.Reads = []line.Read{{Code: code}}
	}
	o.line.Post(res)
	return code
}

// waitFor waits until cond holds of the line's overview.
func (o *opRig) waitFor(what string, cond func(line.Overview) bool) line.Overview {
	o.t.Helper()
	ch, unsub := o.line.Subscribe()
	defer unsub()
	deadline := time.After(10 * time.Second)
	for {
		ov := o.line.Snapshot()
		if cond(ov) {
			return ov
		}
		select {
		case <-ch:
		case <-deadline:
			o.t.Fatalf("never saw %s: state %s (%s), counts %+v, alarms %+v", what, ov.State, ov.Why, ov.Counts, ov.Alarms)
		}
	}
}

// call does a request and decodes a 200 answer into v (nil: none).
func call(t *testing.T, c *client, method, path, body string, v any) {
	t.Helper()
	code, b := c.do(method, path, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s", method, path, code, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func workOrderJSON(product, batch string, planned, levels int) string {
	return fmt.Sprintf(`{"product":%q,"batch":%q,"production_date":"2026-11-01","expiry":"2028-10-31","planned":%d,"levels":%d}`,
		product, batch, planned, levels)
}

func TestOperatorWorkOrderAndPools(t *testing.T) {
	o := newOpRig(t)
	op := o.login("operator", "demo")

	var products []line.ProductInfo
	call(t, op, http.MethodGet, "/api/v1/workorders/products", "", &products)
	if len(products) != 2 || products[0].Key != "amox-gs1" || products[1].Key != "amox-nmpa" {
		t.Fatalf("products: %+v", products)
	}

	// Every problem, by field.
	var pd hmi.ProblemsDoc
	call(t, op, http.MethodPost, "/api/v1/workorders/check",
		`{"product":"nope","batch":"","production_date":"2026-11-01","expiry":"2026-10-01","planned":0}`, &pd)
	fields := map[string]string{}
	for _, p := range pd.Problems {
		fields[p.Field] = p.Code
	}
	for f, code := range map[string]string{"product": "unknown", "batch": "required", "planned": "range"} {
		if fields[f] != code {
			t.Errorf("check: field %s: %q, want %q (all: %+v)", f, fields[f], code, pd.Problems)
		}
	}
	// The NMPA product's pools are empty: codes short, per pool.
	call(t, op, http.MethodPost, "/api/v1/workorders/check", workOrderJSON("amox-nmpa", "N-1", 10, 1), &pd)
	if len(pd.Problems) != 1 || pd.Problems[0].Code != "codes_short" || pd.Problems[0].Pool == "" || pd.Problems[0].Missing < 10 {
		t.Fatalf("codes short: %+v", pd.Problems)
	}
	pool := pd.Problems[0].Pool
	if code, b := op.do(http.MethodPost, "/api/v1/workorders", workOrderJSON("amox-nmpa", "N-1", 10, 1)); code != 422 || errCode(t, b) != "bad_work_order" {
		t.Fatalf("start short of codes: HTTP %d %s", code, b)
	}
	if bs, err := o.store.Batches(context.Background()); err != nil || len(bs) != 0 {
		t.Fatalf("a refused work order made a batch: %+v %v", bs, err)
	}

	// Import: a bad file is refused whole, its bad lines listed.
	good, err := os.ReadFile("../examples/codes/8021762-L1.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	bad := strings.Join(append([]string{lines[0], "12345", lines[2], lines[0]}, lines[3:10]...), "\n")
	body := func(name, data string) string {
		return fmt.Sprintf(`{"name":%q,"data":%q}`, name, base64.StdEncoding.EncodeToString([]byte(data)))
	}
	path := "/api/v1/pools/" + url.PathEscape(pool) + "/import"
	code, b := op.do(http.MethodPost, path, body("bad.txt", bad))
	var id hmi.ImportDoc
	if err := json.Unmarshal(b, &id); code != 422 || err != nil || id.Imported != nil || len(id.BadLines) != 2 || id.BadLines[0].Line != 2 || id.BadLines[1].Line != 4 {
		t.Fatalf("bad file: HTTP %d %s", code, b)
	}
	var pools hmi.PoolsDoc
	call(t, op, http.MethodGet, "/api/v1/pools", "", &pools)
	for _, p := range pools.Pools {
		if p.Available != 0 {
			t.Fatalf("a refused file imported codes: %+v", p)
		}
	}
	call(t, op, http.MethodPost, path, body("8021762-L1.txt", string(good)), &id)
	if id.Imported == nil || id.Imported.Codes != 3000 {
		t.Fatalf("good file: %+v", id)
	}
	call(t, op, http.MethodGet, "/api/v1/pools", "", &pools)
	found := false
	for _, p := range pools.Pools {
		if p.Pool == pool {
			found = p.Available == 3000 && p.Product == "amox-nmpa" && p.Level == 1
		}
	}
	if !found {
		t.Fatalf("pools after the import: %+v", pools)
	}
	if code, b := op.do(http.MethodPost, "/api/v1/pools/nope/import", body("x.txt", lines[0])); code != 422 {
		t.Fatalf("unknown pool: HTTP %d %s", code, b)
	}
	if code, b := op.do(http.MethodPost, path, `{"name":"x","data":"!!!"}`); code != 400 {
		t.Fatalf("not base64: HTTP %d %s", code, b)
	}

	// Start, then a second start is refused while the batch is open.
	var sd hmi.StartDoc
	call(t, op, http.MethodPost, "/api/v1/workorders", workOrderJSON("amox-nmpa", "N-1", 10, 1), &sd)
	if sd.Batch != "N-1" {
		t.Fatalf("start: %+v", sd)
	}
	if code, b := op.do(http.MethodPost, "/api/v1/workorders", workOrderJSON("amox-gs1", "G-1", 10, 1)); code != 409 || errCode(t, b) != "batch_open" {
		t.Fatalf("second start: HTTP %d %s", code, b)
	}
	// The batch's work-order header reaches the overview.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond) // polling, as a page would
	defer tick.Stop()
	for {
		var doc hmi.LineDoc
		call(t, op, http.MethodGet, "/api/v1/line", "", &doc)
		if lo := doc.Ops; lo != nil && lo.Batch != nil && lo.Batch.ID == "N-1" && lo.Batch.StartedBy == "operator" && lo.Batch.Order.PlannedQty == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no work-order header on the overview: %+v", doc.Ops)
		}
		<-tick.C
	}
}

func TestOperatorStationAndRework(t *testing.T) {
	o := newOpRig(t)
	op := o.login("operator", "demo")
	call(t, op, http.MethodPost, "/api/v1/workorders", workOrderJSON("amox-gs1", "G-1", 20, 2), nil)
	for _, c := range []string{"reset", "start"} {
		call(t, op, http.MethodPost, "/api/v1/line/commands", fmt.Sprintf(`{"command":%q}`, c), nil)
	}
	o.waitFor("Execute", func(ov line.Overview) bool { return ov.State == "Execute" })
	// Journaled once each, by the line, as the user: the start of the batch, reset, start.
	if n := count(records(t, o.rig), "command:operator"); n != 3 {
		t.Fatalf("%d command records by the operator, want 3 (start-batch, reset, start): %v", n, records(t, o.rig))
	}
	var units []tracecode.Code
	for i := uint32(1); i <= 3; i++ {
		units = append(units, o.unit(i, true))
	}
	o.waitFor("3 good", func(ov line.Overview) bool { return ov.Counts.Good == 3 })
	for _, u := range units {
		waitCommissioned(t, o.store, u)
	}

	var sd hmi.StationDoc
	call(t, op, http.MethodPost, "/api/v1/station/scan", `{"scan":"not a code"}`, &sd)
	if sd.Refused == nil || sd.Refused.Reason != line.ScanUnreadable || sd.Station.Parent != "" {
		t.Fatalf("garbage: %+v", sd)
	}
	call(t, op, http.MethodPost, "/api/v1/station/new", `{"level":2}`, &sd)
	parent := sd.Station.Parent
	if parent == "" || sd.Station.Ratio != 2 {
		t.Fatalf("new parent: %+v", sd)
	}
	for _, tc := range []struct{ scan, reason string }{
		{"(01)06901234567892(21)ZZZ999", line.ScanNotOurs},
		{string(units[0]), ""},
		{string(units[0]), line.ScanDuplicate},
	} {
		sd = hmi.StationDoc{}
		call(t, op, http.MethodPost, "/api/v1/station/scan", fmt.Sprintf(`{"scan":%q}`, tc.scan), &sd)
		if got := ""; sd.Refused != nil {
			got = sd.Refused.Reason
			if got != tc.reason {
				t.Fatalf("scan %s: refused %q, want %q", tc.scan, got, tc.reason)
			}
		} else if tc.reason != "" {
			t.Fatalf("scan %s: accepted, want %s", tc.scan, tc.reason)
		}
	}
	sd = hmi.StationDoc{}
	call(t, op, http.MethodPost, "/api/v1/station/scan", fmt.Sprintf(`{"scan":%q}`, units[1]), &sd)
	if sd.Refused != nil || sd.Station.Packed == nil || sd.Station.Packed.Parent != parent || !sd.Station.Packed.Labelled || sd.Station.LabelToScan != parent {
		t.Fatalf("the ratio reached: %+v", sd)
	}
	// The new label, applied, is scanned: verified; no parent opens before.
	sd = hmi.StationDoc{}
	call(t, op, http.MethodPost, "/api/v1/station/new", `{"level":2}`, &sd)
	if sd.Refused == nil || sd.Refused.Reason != line.ScanLabelPending || sd.Station.Parent != "" {
		t.Fatalf("a new parent before the label's scan: %+v", sd)
	}
	sd = hmi.StationDoc{}
	call(t, op, http.MethodPost, "/api/v1/station/scan", fmt.Sprintf(`{"scan":%q}`, parent), &sd)
	if sd.Refused != nil || sd.Station.LabelToScan != "" || sd.Station.Packed == nil || !sd.Station.Packed.Verified {
		t.Fatalf("the new label scanned: %+v", sd)
	}
	if code, b := op.do(http.MethodPost, "/api/v1/station/close", `{"reason":" "}`); code != 400 {
		t.Fatalf("close with no reason: HTTP %d %s", code, b)
	}
	call(t, op, http.MethodPost, "/api/v1/station/reprint", fmt.Sprintf(`{"code":%q,"reason":"label torn"}`, parent), nil)

	// Rework: the preview says what would change, changing nothing.
	head := o.store.Head()
	var pv line.ReworkPreview
	call(t, op, http.MethodPost, "/api/v1/line/rework/preview", fmt.Sprintf(`{"kind":"unpack","code":%q,"reason":"damaged case"}`, parent), &pv)
	if pv.Refusal != "" || len(pv.Changes) < 2 {
		t.Fatalf("unpack preview: %+v", pv)
	}
	call(t, op, http.MethodPost, "/api/v1/line/rework/preview", fmt.Sprintf(`{"kind":"decommission","code":%q,"reason":"damaged"}`, units[0]), &pv)
	if pv.Refusal == "" {
		t.Fatalf("decommissioning a packed unit should be refused in the preview: %+v", pv)
	}
	if h := o.store.Head(); h != head {
		t.Fatalf("previews moved the journal %d → %d", head, h)
	}
	call(t, op, http.MethodPost, "/api/v1/line/rework", fmt.Sprintf(`{"kind":"unpack","code":%q,"reason":"damaged case"}`, parent), nil)
	info, err := o.store.Lookup(context.Background(), units[0])
	if err != nil || info.Parent != "" {
		t.Fatalf("after unpack: %+v %v", info, err)
	}
	// Complete: the line is ready for the next batch.
	call(t, op, http.MethodPost, "/api/v1/line/commands", `{"command":"complete"}`, nil)
	o.waitFor("ready", func(ov line.Overview) bool { return ov.Ready })
	var pd hmi.ProblemsDoc
	call(t, op, http.MethodPost, "/api/v1/workorders/check", workOrderJSON("amox-gs1", "G-1", 20, 2), &pd)
	if len(pd.Problems) != 1 || pd.Problems[0].Code != "used" {
		t.Fatalf("a used batch number: %+v", pd.Problems)
	}
}

// TestOperatorBareRunner: with a single-batch runner the operator's
// routes answer 503, not a panic.
func TestOperatorBareRunner(t *testing.T) {
	rg := newRig(t, rigOpts{})
	op := rg.login("operator", "demo")
	for _, p := range []string{"/api/v1/workorders/products", "/api/v1/pools", "/api/v1/station"} {
		if code, b := op.do(http.MethodGet, p, ""); code != 503 || errCode(t, b) != "unavailable" {
			t.Errorf("%s: HTTP %d %s", p, code, b)
		}
	}
}

// waitCommissioned waits until the ledger has the unit commissioned (the
// verdict is journaled before it is counted, the ledger's view follows).
func waitCommissioned(t testing.TB, s *aggregation.Store, c tracecode.Code) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond) // polling the ledger: it has no change feed
	defer tick.Stop()
	for {
		info, err := s.Code(context.Background(), c)
		if err == nil && info.State == aggregation.StateCommissioned {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("code %s: %s (%v), never commissioned", c, info.State, err)
		}
		<-tick.C
	}
}
