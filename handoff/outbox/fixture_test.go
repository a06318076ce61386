package outbox

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/tracecode"
)

var (
	ctx = context.Background()
	dev = aggregation.Actor{Kind: aggregation.ActorDevice, ID: "camera-1"}
	qa  = aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"}
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a settable clock shared by the outbox and the receivers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

// batchCodes are an active batch's codes: 4 units in 2 boxes.
type batchCodes struct {
	units, boxes []tracecode.Code
}

func (b batchCodes) all() []string {
	var out []string
	for _, c := range append(append([]tracecode.Code{}, b.boxes...), b.units...) {
		out = append(out, string(c))
	}
	return out
}

// activeBatch builds a released and activated batch the way the ledger's
// own tests do: pools, allocation, sent, commissioned, packed, released.
func activeBatch(t testing.TB, s *aggregation.Store, batch string, prefix int) batchCodes {
	t.Helper()
	spec := aggregation.BatchSpec{ID: batch, Product: "P1", Line: "L1", Levels: []aggregation.LevelSpec{
		{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 2, Scheme: tracecode.SchemeNMPA20}}}
	must(t, s.CreateBatch(ctx, spec, dev))
	var out [2][]tracecode.Code
	for i, n := range []int{4, 2} {
		pool := fmt.Sprintf("%s-L%d", batch, i+1)
		var cs []tracecode.Code
		for k := range n {
			cs = append(cs, tracecode.Code(fmt.Sprintf("8%06d%013d", prefix+i, k)))
		}
		must(t, s.AddToPool(ctx, pool, cs, "test"))
		got, err := s.AllocateFromPool(ctx, batch, tracecode.Level(i+1), pool, n, dev)
		must(t, err)
		must(t, s.MarkSent(ctx, got, dev))
		for _, c := range got {
			must(t, s.Commission(ctx, c, aggregation.UnitInfo{ItemID: 1}, dev))
		}
		out[i] = got
	}
	units, boxes := out[0], out[1]
	must(t, s.Pack(ctx, boxes[0], units[:2], aggregation.PackOpts{}, dev))
	must(t, s.Pack(ctx, boxes[1], units[2:], aggregation.PackOpts{}, dev))
	must(t, s.Release(ctx, batch, aggregation.Signature{User: "qa", Meaning: "released", At: time.Now()}, qa))
	must(t, s.Activate(ctx, batch, qa))
	return batchCodes{units: units, boxes: boxes}
}

// relationXML is a small relation document of the batch; drop leaves a unit out.
func relationXML(batch string, b batchCodes, drop int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `<?xml version="1.0" encoding="UTF-8"?>
<Document License="t" Version="1.0"><Events><Event Name="RelationCreate" MainAction="InsertRelation">
<Relation productCode="P1" subTypeNo="1" cascade="2" packageSpec="1:2">
<Batch batchNo=%q madeDate="2026-12-01" validateDate="2028-11-30" workshop="W1" lineName="L1" lineManager="M">
`, batch)
	for _, c := range b.boxes {
		fmt.Fprintf(&sb, "<Code curCode=%q packLayer=\"2\" parentCode=\"\" flag=\"0\"/>\n", c)
	}
	for i, c := range b.units {
		if i == drop {
			continue
		}
		fmt.Fprintf(&sb, "<Code curCode=%q packLayer=\"1\" parentCode=%q flag=\"0\"/>\n", c, b.boxes[i/2])
	}
	sb.WriteString("</Batch></Relation></Event></Events></Document>\n")
	return sb.String()
}

// epcisJSON is a small EPCIS document of the batch.
func epcisJSON(batch string, b batchCodes) string {
	uri := func(c tracecode.Code) string { return fmt.Sprintf("%q", "https://id.nmpa.example/"+string(c)) }
	var units, boxes []string
	for _, c := range b.units {
		units = append(units, uri(c))
	}
	for _, c := range b.boxes {
		boxes = append(boxes, uri(c))
	}
	ev := func(typ, extra string) string {
		return fmt.Sprintf(`{"type":%q,"eventTime":"2026-12-01T08:00:00Z","eventTimeZoneOffset":"+08:00","action":"ADD",%s}`, typ, extra)
	}
	events := []string{
		ev("ObjectEvent", fmt.Sprintf(`"bizStep":"commissioning","epcList":[%s],"ilmd":{"cbvmda:lotNumber":%q}`, strings.Join(units, ","), batch)),
		ev("ObjectEvent", fmt.Sprintf(`"bizStep":"commissioning","epcList":[%s]`, strings.Join(boxes, ","))),
		ev("AggregationEvent", fmt.Sprintf(`"bizStep":"packing","parentID":%s,"childEPCs":[%s]`, boxes[0], strings.Join(units[:2], ","))),
		ev("AggregationEvent", fmt.Sprintf(`"bizStep":"packing","parentID":%s,"childEPCs":[%s]`, boxes[1], strings.Join(units[2:], ","))),
	}
	return fmt.Sprintf(`{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2026-12-01T08:00:00Z","epcisBody":{"eventList":[%s]}}`, strings.Join(events, ","))
}

// fixture: a ledger with an active batch, both receivers, an outbox.
type fixture struct {
	t        testing.TB
	dataDir  string
	led      *aggregation.Store
	clk      *fakeClock
	capture  *receiver.Capture
	platform *receiver.Platform
	cfg      Config
	opt      Options
	ob       *Outbox
	codes    batchCodes
	changes  chan Document
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, dataDir: t.TempDir(), clk: &fakeClock{t: time.Date(2020, 1, 1, 8, 0, 0, 0, time.UTC)},
		changes: make(chan Document, 1000)}
	var err error
	f.led, err = aggregation.Open(filepath.Join(f.dataDir, "ledger"), aggregation.Options{NoSync: true})
	must(t, err)
	t.Cleanup(func() { f.led.Close() })
	f.codes = activeBatch(t, f.led, "B1", 100)
	rc := receiver.Config{Clock: f.clk, Token: "secret", RefuseReason: "not today"}
	f.capture, err = receiver.NewCapture(rc, nil)
	must(t, err)
	must(t, f.capture.Start())
	t.Cleanup(func() { f.capture.Close() })
	f.platform, err = receiver.NewPlatform(rc, nil)
	must(t, err)
	must(t, f.platform.Start())
	t.Cleanup(func() { f.platform.Close() })
	f.capture.Expect("B1", prefixed(f.codes.all()))
	f.platform.Expect("B1", f.codes.all())
	f.cfg = Config{Dir: filepath.Join(f.dataDir, "outbox"), Endpoints: []Endpoint{
		{Name: "epcis", Kind: KindEPCIS, URL: f.capture.URL(), Token: "secret", Timeout: 5 * time.Second, MaxSends: 4,
			BackoffMin: time.Second, BackoffMax: time.Minute, PollMin: time.Second, PollMax: 5 * time.Minute},
		{Name: "platform", Kind: KindPlatform, URL: f.platform.URL(), Token: "secret", Timeout: 5 * time.Second, MaxSends: 4,
			BackoffMin: time.Second, BackoffMax: time.Minute, PollMin: time.Second, PollMax: 5 * time.Minute},
	}}
	if mod != nil {
		mod(&f.cfg)
	}
	f.opt = Options{Clock: f.clk, Jitter: func() float64 { return 0.5 }, OnChange: func(d Document) {
		select {
		case f.changes <- d:
		default:
		}
	}}
	f.ob, err = New(f.cfg, f.led, f.opt)
	must(t, err)
	return f
}

// prefixed are codes as the EPCIS documents carry them (the receiver
// finds them by their tail anyway; this checks the whole form).
func prefixed(cs []string) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = "https://id.nmpa.example/" + c
	}
	return out
}

// reopen closes the ledger (as a stopped controller would) and opens it
// again with a new outbox on it.
func (f *fixture) reopen(client *http.Client) {
	f.t.Helper()
	must(f.t, f.led.Close())
	var err error
	f.led, err = aggregation.Open(filepath.Join(f.dataDir, "ledger"), aggregation.Options{NoSync: true})
	must(f.t, err)
	f.t.Cleanup(func() { f.led.Close() })
	opt := f.opt
	opt.Client = client
	f.ob, err = New(f.cfg, f.led, opt)
	must(f.t, err)
}

func (f *fixture) add(format, content string) Document {
	f.t.Helper()
	d, err := f.ob.Add(ctx, Submission{Batch: "B1", Format: format}, strings.NewReader(content), qa)
	must(f.t, err)
	return d
}

// drive steps the outbox, moving the clock to whatever is due next, until
// nothing is waiting or steps run out; it returns the steps taken.
func (f *fixture) drive(steps int) int {
	f.t.Helper()
	for i := 1; i <= steps; i++ {
		next, err := f.ob.Step(ctx)
		if err != nil {
			f.t.Fatalf("step %d: %v", i, err)
		}
		if next.IsZero() {
			return i
		}
		f.clk.Set(next)
	}
	return steps
}

func (f *fixture) doc(id string) Document {
	f.t.Helper()
	d, err := f.ob.Get(ctx, id)
	must(f.t, err)
	return d
}

func (f *fixture) handedOff(id string) bool {
	f.t.Helper()
	sum, err := f.led.Summary(ctx, "B1")
	must(f.t, err)
	_, ok := sum.Documents[id]
	return ok
}

// epcisXML is a small EPCIS XML document of the batch (commissioning only).
func epcisXML(batch string, b batchCodes) string {
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:cbvmda="urn:epcglobal:cbv:mda" schemaVersion="2.0" creationDate="2026-12-01T08:00:00Z">
<EPCISBody><EventList>`)
	for _, level := range [][]tracecode.Code{b.units, b.boxes} {
		sb.WriteString("<ObjectEvent><eventTime>2026-12-01T08:00:00Z</eventTime><eventTimeZoneOffset>+08:00</eventTimeZoneOffset><epcList>")
		for _, c := range level {
			fmt.Fprintf(&sb, "<epc>https://id.nmpa.example/%s</epc>", c)
		}
		fmt.Fprintf(&sb, "</epcList><action>ADD</action><bizStep>commissioning</bizStep><ilmd><cbvmda:lotNumber>%s</cbvmda:lotNumber></ilmd></ObjectEvent>", batch)
	}
	sb.WriteString("</EventList></EPCISBody></epcis:EPCISDocument>\n")
	return sb.String()
}
