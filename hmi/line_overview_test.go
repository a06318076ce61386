package hmi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// TestLineOverview serves the multi-batch line (line.Line through its
// RunnerView, and its own overview): a batch started from a work order
// shows on the overview; a device fault is the line's alarm, acknowledged
// through the API by the operator — the line records who.
func TestLineOverview(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	store, err := aggregation.Open(t.TempDir(), aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../examples/amoxicillin-gs1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := tracecode.ParseProduct("amoxicillin-gs1.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	pr := &fakePrinter{sent: make(chan tracecode.Code, 1<<16)}
	l, err := line.NewLine(ctx, line.LineConfig{Line: "L1",
		Machine:  line.Config{Deadline: 2 * time.Second, PrinterBuffer: 4, AllocChunk: 16},
		Products: map[string]*tracecode.Product{"amox": prod},
		Devices:  line.Devices{PLC: fakePLC{}, Printer: pr},
		BatchDevices: func(ctx context.Context, spec aggregation.BatchSpec) (line.Devices, error) {
			cs, err := line.NewPoolSource(prod, store, spec.ID)
			return line.Devices{Codes: cs}, err
		}, IOTimeout: time.Second}, store, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	acc, err := accounts.Open(ctx, accounts.Config{Demo: true}, accounts.Ledger(store), log)
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
	defer func() {
		ts.Close()
		cancel()
		<-hubDone
		if err := <-done; err != nil {
			t.Errorf("line: %v", err)
		}
		store.Close()
	}()
	rg := &rig{t: t, store: store, acc: acc, srv: srv, ts: ts}
	rg.router = rg.openAPIRouter()

	if _, err := l.StartBatch(ctx, line.WorkOrder{Product: "amox", Batch: "WO-1", ProductionDate: "2026-11-01",
		Expiry: "2028-10-31", Planned: 100, Levels: 1}, "operator"); err != nil {
		t.Fatal(err)
	}
	op := rg.login("operator", "demo")
	get := func() hmi.LineDoc {
		t.Helper()
		code, b := op.do(http.MethodGet, "/api/v1/line", "")
		var doc hmi.LineDoc
		if err := json.Unmarshal(b, &doc); code != 200 || err != nil {
			t.Fatalf("GET line: HTTP %d %v", code, err)
		}
		return doc
	}
	l.Post(line.DeviceFault{Stamp: line.Stamp{T: time.Now()}, Device: "camera", Err: "link lost"})
	var al hmi.Alarm
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond) // polling the API as a page would
	defer tick.Stop()
	for {
		doc := get()
		if i := len(doc.Alarms); i > 0 && doc.Batch == "WO-1" {
			for _, a := range doc.Alarms {
				if a.Device == "camera" {
					al = a
				}
			}
		}
		if al.ID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no camera alarm of batch WO-1 on the overview: %+v", doc.Alarms)
		}
		<-tick.C
	}
	code, b := op.do(http.MethodPost, "/api/v1/line/alarms/"+al.ID+"/ack", "")
	var acked hmi.Alarm
	if err := json.Unmarshal(b, &acked); code != 200 || err != nil || acked.AckBy != "operator" {
		t.Fatalf("ack: HTTP %d %s", code, b)
	}
	for _, a := range l.Alarms() {
		if a.Device == "camera" && a.AckBy != "operator" {
			t.Fatalf("the line's alarm: %+v", a)
		}
	}
	// Acknowledging the same alarm again (a second tap, a second screen) gets it as it stands,
	// acknowledged by the first, not an internal error.
	code, b = op.do(http.MethodPost, "/api/v1/line/alarms/"+al.ID+"/ack", "")
	var again hmi.Alarm
	if err := json.Unmarshal(b, &again); code != 200 || err != nil || again.AckBy != "operator" || again.AckAt != acked.AckAt {
		t.Fatalf("second ack: HTTP %d %s", code, b)
	}
	if code, b := op.do(http.MethodPost, "/api/v1/line/alarms/999/ack", ""); code != 404 || !strings.Contains(string(b), "not_found") {
		t.Fatalf("unknown alarm: HTTP %d %s", code, b)
	}
}
