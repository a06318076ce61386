package handoff

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/handoff/export"
	"github.com/tracline/tracline/handoff/export/exporttest"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/tracecode"
)

var (
	ctx = context.Background()
	qa  = aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"}
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

// An activated batch goes from the ledger to both stand-in receivers:
// every format exported, written durably, delivered, checked by the
// receivers (EPCIS JSON against the GS1 schema, every commissioned code
// present), and the ledger told. Publishing again adds nothing.
func TestPublishDeliversEveryFormat(t *testing.T) {
	for _, product := range []string{"amoxicillin-nmpa20", "amoxicillin-gs1"} {
		t.Run(product, func(t *testing.T) { testPublish(t, "../examples/"+product+".yaml") })
	}
}

// testPublish: the receivers are told the codes as the ledger keeps them
// (canonical); the documents carry them as URIs (GS1 Digital Link, urn:nmpa20).
func testPublish(t *testing.T, productFile string) {
	dir := t.TempDir()
	led, err := aggregation.Open(filepath.Join(dir, "ledger"), aggregation.Options{NoSync: true})
	must(t, err)
	defer led.Close()
	prod, err := tracecode.LoadProduct(productFile)
	must(t, err)
	b, err := exporttest.Build(ctx, led, prod, exporttest.Shape{Batch: "B1", Units: 40, Ratios: []int{10}, Extras: true})
	must(t, err)
	var want []string
	for _, lv := range b.Levels {
		for _, c := range lv {
			want = append(want, string(c))
		}
	}
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	rc := receiver.Config{Clock: clk, ValidateJSON: epcisschema.ValidateJSONReader}
	capture, err := receiver.NewCapture(rc, nil)
	must(t, err)
	must(t, capture.Start())
	defer capture.Close()
	platform, err := receiver.NewPlatform(rc, nil)
	must(t, err)
	must(t, platform.Start())
	defer platform.Close()
	capture.Expect("LOT-B1", want)  // EPCIS documents name the lot (ILMD)
	platform.Expect("LOT-B1", want) // the platform knows a batch by its batch number
	ob, err := outbox.New(outbox.Config{Dir: filepath.Join(dir, "outbox"), Endpoints: []outbox.Endpoint{
		{Name: "epcis", Kind: outbox.KindEPCIS, URL: capture.URL(), Timeout: 5 * time.Second},
		{Name: "platform", Kind: outbox.KindPlatform, URL: platform.URL(), Timeout: 5 * time.Second},
	}}, led, outbox.Options{Clock: clk, Jitter: func() float64 { return 0.5 }})
	must(t, err)
	p := &Publisher{Ledger: led, Outbox: ob, TempDir: dir,
		Product: func(aggregation.BatchSpec) (*tracecode.Product, error) { return prod, nil },
		Export:  export.Options{Now: clk.Now}}
	docs, err := p.Publish(ctx, "B1", qa)
	must(t, err)
	if len(docs) != 3 {
		t.Fatalf("published %d documents, want 3 (msfx-xml, epcis-json, epcis-xml)", len(docs))
	}
	for i := 0; i < 50; i++ {
		next, err := ob.Step(ctx)
		must(t, err)
		if next.IsZero() {
			break
		}
		clk.Set(next)
	}
	for _, d := range docs {
		got, err := ob.Get(ctx, d.ID)
		must(t, err)
		if got.State != outbox.Delivered || !got.HandedOff {
			t.Fatalf("%s (%s): %s, handed off %v: %+v", d.ID, d.Format, got.State, got.HandedOff, got.Deliveries)
		}
		if a := got.Deliveries[0].Answer; !strings.Contains(a, "expected codes present") {
			t.Errorf("%s: the receiver said %q", d.Format, a)
		}
	}
	sum, err := led.Summary(ctx, "B1")
	must(t, err)
	if sum.State != aggregation.BatchHandedOff {
		t.Fatalf("batch state %s, want handed_off", sum.State)
	}
	head := led.Head()
	again, err := p.Publish(ctx, "B1", qa)
	must(t, err)
	if len(again) != 3 || led.Head() != head {
		t.Fatalf("publishing again: %d documents, head %d → %d; want the same 3 and nothing journaled", len(again), head, led.Head())
	}
}

func TestPublishRefusesABatchNotActivated(t *testing.T) {
	dir := t.TempDir()
	led, err := aggregation.Open(filepath.Join(dir, "ledger"), aggregation.Options{NoSync: true})
	must(t, err)
	defer led.Close()
	prod, err := tracecode.LoadProduct("../examples/amoxicillin-nmpa20.yaml")
	must(t, err)
	_, err = exporttest.Build(ctx, led, prod, exporttest.Shape{Batch: "B1", Units: 5, Ratios: []int{5}, Released: true})
	must(t, err)
	ob, err := outbox.New(outbox.Config{Dir: filepath.Join(dir, "outbox"), Endpoints: []outbox.Endpoint{
		{Name: "platform", Kind: outbox.KindPlatform, URL: "http://127.0.0.1:1"}}}, led, outbox.Options{})
	must(t, err)
	head := led.Head()
	p := &Publisher{Ledger: led, Outbox: ob, Product: func(aggregation.BatchSpec) (*tracecode.Product, error) { return prod, nil }}
	if _, err := p.Publish(ctx, "B1", qa); err == nil || !strings.Contains(err.Error(), "released") {
		t.Fatalf("publish of a released, not activated batch: %v", err)
	}
	if led.Head() != head {
		t.Fatal("a refused publish journaled something")
	}
}
