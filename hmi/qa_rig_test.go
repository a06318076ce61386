package hmi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/handoff/export"
	"github.com/tracline/tracline/handoff/export/exporttest"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// The QA screens' rig: a real Badger ledger holding an active batch
// (exporttest.Build) and complete, unreleased batches built the way the
// line leaves them (pools, allocation, sent, commissioned, packed, a
// challenge test, an alarm acknowledged, a unit decommissioned by hand,
// complete); the multi-batch line.Line for the batch list and the lookup;
// the release desk over the accounts (accounts.Signer); an outbox with the
// stand-in receivers (EPCIS capture and platform upload) and the
// publisher — everything cmd/linectl wires.

const (
	activeBatch = "QA-ACTIVE"
	doneBatch   = "QA-DONE"
	otherBatch  = "QA-OTHER"
)

type qaOpts struct {
	fourEyes bool
	// run: the outbox delivers in the background (real time, short
	// waits); else tests step it.
	run bool
}

type qaRig struct {
	*rig
	line     *line.Line
	ob       *outbox.Outbox
	capture  *receiver.Capture
	platform *receiver.Platform
	done     map[string][][]tracecode.Code // the complete batches' codes per level
	active   *exporttest.Built
	clk      *stepClock
}

// stepClock is the outbox's and receivers' clock when tests step them.
type stepClock struct {
	mu   chan struct{}
	t    time.Time
	real bool
}

func (c *stepClock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	c.mu <- struct{}{}
	defer func() { <-c.mu }()
	return c.t
}

func (c *stepClock) set(t time.Time) {
	c.mu <- struct{}{}
	defer func() { <-c.mu }()
	if t.After(c.t) {
		c.t = t
	}
}

var (
	lineDev  = aggregation.Actor{Kind: aggregation.ActorDevice, ID: "camera-1"}
	operUser = aggregation.Actor{Kind: aggregation.ActorUser, ID: "operator"}
)

// completeBatch builds a complete, reconciled, unreleased batch of prod:
// units in bundles of 10 (level 2), codes from level offset off.
func completeBatch(t testing.TB, s *aggregation.Store, prod *tracecode.Product, id string, units, off int) [][]tracecode.Code {
	t.Helper()
	ctx := context.Background()
	spec := aggregation.BatchSpec{ID: id, Product: prod.GenericName, Line: "L1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 10, Scheme: tracecode.SchemeNMPA20}},
		Order: aggregation.WorkOrder{BatchNumber: "LOT-" + id, ProductionDate: "2026-11-30", Expiry: "2028-10-31",
			PlannedQty: int64(units), Workshop: "固体制剂车间", Manager: "陈经理"}}
	must(t, s.CreateBatch(ctx, spec, operUser))
	must(t, s.RecordChallenge(ctx, id, aggregation.Challenge{Passed: true, Steps: []aggregation.ChallengeStep{
		{Step: "good unit", Item: 1, Expect: "passed", Got: "passed", OK: true},
		{Step: "no-read", Item: 2, Expect: "rejected", Got: "rejected", OK: true}}}, lineDev))
	out := make([][]tracecode.Code, 2)
	for li, n := range []int{units + 1, units / 10} {
		ls, _ := prod.Level(tracecode.Level(li + 1))
		cs := make([]tracecode.Code, n)
		for i := range cs {
			cs[i] = tracecode.Code(fmt.Sprintf("%s%013d", ls.ProductID, off+i))
		}
		pool := fmt.Sprintf("%s-L%d", id, li+1)
		must(t, s.AddToPool(ctx, pool, cs, "test"))
		got, err := s.AllocateFromPool(ctx, id, tracecode.Level(li+1), pool, n, lineDev)
		must(t, err)
		must(t, s.MarkSent(ctx, got, lineDev))
		if li == 0 { // one unit taken off the line by hand
			must(t, s.Commission(ctx, got[n-1], aggregation.UnitInfo{ItemID: 999}, lineDev))
			must(t, s.Decommission(ctx, got[n-1], "damaged at the infeed", operUser))
			got = got[:n-1]
		}
		for i, c := range got {
			must(t, s.Commission(ctx, c, aggregation.UnitInfo{ItemID: uint64(i + 1)}, lineDev))
		}
		out[li] = got
	}
	for i, p := range out[1] {
		must(t, s.Pack(ctx, p, out[0][i*10:(i+1)*10], aggregation.PackOpts{}, lineDev))
	}
	seq, err := s.Record(ctx, aggregation.Record{Type: release.TypeAlarm, Batch: id,
		Value: `{"text":"camera link lost","device":"camera-1"}`}, aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"})
	must(t, err)
	_, err = s.Record(ctx, aggregation.Record{Type: release.TypeAlarmAck, Batch: id,
		Value: fmt.Sprintf(`{"alarm_seq":%d,"note":"cable re-seated"}`, seq)}, operUser)
	must(t, err)
	must(t, s.Complete(ctx, id, aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"}))
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newQARig(t testing.TB, o qaOpts) *qaRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	store, err := aggregation.Open(filepath.Join(dir, "ledger"), aggregation.Options{NoSync: true})
	must(t, err)
	prod, err := tracecode.LoadProduct("../examples/amoxicillin-nmpa20.yaml")
	must(t, err)
	qr := &qaRig{done: map[string][][]tracecode.Code{}}
	qr.active, err = exporttest.Build(ctx, store, prod, exporttest.Shape{Batch: activeBatch, Units: 20, Ratios: []int{10}, Extras: true})
	must(t, err)
	qr.done[doneBatch] = completeBatch(t, store, prod, doneBatch, 20, 1_000_000)
	qr.done[otherBatch] = completeBatch(t, store, prod, otherBatch, 10, 2_000_000)

	pr := &fakePrinter{sent: make(chan tracecode.Code, 1<<10)}
	l, err := line.NewLine(ctx, line.LineConfig{Line: "L1",
		Machine:  line.Config{Deadline: 2 * time.Second, PrinterBuffer: 4, AllocChunk: 16},
		Products: map[string]*tracecode.Product{"amox": prod},
		Devices:  line.Devices{PLC: fakePLC{}, Printer: pr},
		BatchDevices: func(ctx context.Context, spec aggregation.BatchSpec) (line.Devices, error) {
			cs, err := line.NewPoolSource(prod, store, spec.ID)
			return line.Devices{Codes: cs}, err
		}, IOTimeout: time.Second}, store, log)
	must(t, err)
	lineDone := make(chan error, 1)
	go func() { lineDone <- l.Run(ctx) }()

	clk := &stepClock{mu: make(chan struct{}, 1), t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), real: o.run}
	rc := receiver.Config{Clock: clk, ValidateJSON: epcisschema.ValidateJSONReader}
	qr.capture, err = receiver.NewCapture(rc, nil)
	must(t, err)
	must(t, qr.capture.Start())
	qr.platform, err = receiver.NewPlatform(rc, nil)
	must(t, err)
	must(t, qr.platform.Start())
	short := 20 * time.Millisecond
	ep := func(name string, kind outbox.Kind, url string) outbox.Endpoint {
		return outbox.Endpoint{Name: name, Kind: kind, URL: url, Timeout: 5 * time.Second,
			BackoffMin: short, BackoffMax: short, PollMin: short, PollMax: short}
	}
	qr.ob, err = outbox.New(outbox.Config{Dir: filepath.Join(dir, "outbox"), Endpoints: []outbox.Endpoint{
		ep("epcis", outbox.KindEPCIS, qr.capture.URL()), ep("platform", outbox.KindPlatform, qr.platform.URL())}},
		store, outbox.Options{Clock: clk, Jitter: func() float64 { return 0.5 }})
	must(t, err)
	obDone := make(chan struct{})
	if o.run {
		go func() { _ = qr.ob.Run(ctx); close(obDone) }()
	} else {
		close(obDone)
	}
	pub := &handoff.Publisher{Ledger: store, Outbox: qr.ob, TempDir: dir,
		Product: func(aggregation.BatchSpec) (*tracecode.Product, error) { return prod, nil },
		Export:  export.Options{Now: clk.Now}}

	hclk := &clock{}
	acc, err := accounts.Open(ctx, accounts.Config{Params: accounts.Params{Time: 1, Memory: 64, Threads: 1},
		Demo: true, Now: hclk.now}, accounts.Ledger(store), log)
	must(t, err)
	cfg := release.Config{}
	if o.fourEyes {
		cfg.Signatures = release.FourEyes
	}
	desk, err := release.New(cfg, store, accounts.Signer(acc), nil, log)
	must(t, err)
	srv, err := hmi.New(hmi.Config{Store: store, Line: l.RunnerView(), Overview: l, Accounts: acc, Demo: true, Log: log, Now: hclk.now,
		QA: l, Desk: desk, Documents: qr.ob, Publisher: pub})
	must(t, err)
	hubDone := make(chan struct{})
	go func() { srv.Run(ctx); close(hubDone) }()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		cancel()
		<-hubDone
		<-obDone
		if err := <-lineDone; err != nil {
			t.Errorf("line: %v", err)
		}
		qr.capture.Close()
		qr.platform.Close()
		store.Close()
	})
	qr.rig = &rig{t: t, store: store, acc: acc, srv: srv, ts: ts, clock: hclk}
	qr.rig.router = qr.rig.openAPIRouter()
	qr.line, qr.clk = l, clk
	return qr
}

// deliver steps the outbox (moving its clock) until nothing is due.
func (qr *qaRig) deliver() {
	qr.t.Helper()
	for range 100 {
		next, err := qr.ob.Step(context.Background())
		must(qr.t, err)
		if next.IsZero() {
			return
		}
		qr.clk.set(next)
	}
	qr.t.Fatal("the outbox is still busy after 100 steps")
}

// get decodes a 200 answer into v.
func (c *client) get(path string, v any) {
	c.rg.t.Helper()
	code, b := c.do("GET", path, "")
	if code != 200 {
		c.rg.t.Fatalf("GET %s: HTTP %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.rg.t.Fatalf("GET %s: %v", path, err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
