package outbox

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/tracecode"
)

// TestRestartMidDelivery closes the ledger while a receiver is processing a
// document and delivers on with a new outbox: one delivery, as the
// receiver sees it.
func TestRestartMidDelivery(t *testing.T) {
	for _, kind := range []Kind{KindEPCIS, KindPlatform} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t, nil)
			rc := receiverOf(f, kind)
			rc.Behave(receiver.Slow)
			d := f.addKind(kind)
			f.drive(3)
			if st := f.doc(d.ID).Deliveries[0].State; st != Processing {
				t.Fatalf("before the restart: %s", st)
			}
			f.reopen(nil)
			f.drive(100)
			if got := f.doc(d.ID); got.State != Delivered || !f.handedOff(d.ID) {
				t.Fatalf("after the restart: %s %+v", got.State, got.Deliveries)
			}
			if sum := rc.Summary(); sum.Received != 1 || sum.Accepted != 1 {
				t.Errorf("receiver: %s", sum.Text)
			}
		})
	}
}

func (f *fixture) addKind(k Kind) Document {
	if k == KindEPCIS {
		return f.add(FormatEPCISJSON, epcisJSON("B1", f.codes))
	}
	return f.add(FormatRelation, relationXML("B1", f.codes, -1))
}

// crashAfterSend lets the send reach the receiver, then stops the outbox
// before it can journal the answer (as a crash would).
type crashAfterSend struct{ stop context.CancelFunc }

func (c crashAfterSend) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost {
		return resp, err
	}
	resp.Body.Close()
	c.stop()
	return nil, errors.New("crashed before the answer was read")
}

func TestCrashBetweenSendAndAnswer(t *testing.T) {
	for _, kind := range []Kind{KindEPCIS, KindPlatform} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t, nil)
			d := f.addKind(kind)
			stepCtx, stop := context.WithCancel(ctx)
			opt := f.opt
			opt.Client = &http.Client{Transport: crashAfterSend{stop}}
			ob, err := New(f.cfg, f.led, opt)
			must(t, err)
			if _, err := ob.Step(stepCtx); !errors.Is(err, context.Canceled) {
				t.Fatalf("step: %v", err)
			}
			if dl := f.doc(d.ID).Deliveries[0]; dl.State != Sending || dl.Sends != 1 {
				t.Fatalf("after the crash: %+v", dl)
			}
			f.reopen(nil)
			f.drive(30)
			got := f.doc(d.ID)
			if got.State != Delivered || !f.handedOff(d.ID) || got.Deliveries[0].Sends != 2 {
				t.Fatalf("after the restart: %s %+v", got.State, got.Deliveries)
			}
			rc := receiverOf(f, kind)
			if sum := rc.Summary(); sum.Received != 2 || sum.Accepted != 1 || sum.Duplicates != 1 {
				t.Errorf("receiver: %s", sum.Text)
			}
			as, err := f.ob.Attempts(ctx, d.ID)
			must(t, err)
			if !hasOutcome(as, "send", "begun (again") {
				t.Errorf("attempts %+v", as)
			}
		})
	}
}

func hasOutcome(as []Attempt, op, part string) bool {
	for _, a := range as {
		if a.Op == op && strings.Contains(a.Outcome, part) {
			return true
		}
	}
	return false
}

// TestRunStoppedMidAttempt stops Run while a receiver holds the send, then
// runs again: the document is delivered once.
func TestRunStoppedMidAttempt(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		for i := range c.Endpoints {
			c.Endpoints[i].Timeout = time.Minute
			c.Endpoints[i].PollMin = 10 * time.Millisecond
		}
	})
	hanging := make(chan receiver.Behaviour, 10)
	rcv, err := receiver.NewPlatform(receiver.Config{Behaviour: receiver.Hang, OnSubmission: func(b receiver.Behaviour) { hanging <- b }}, nil)
	must(t, err)
	must(t, rcv.Start())
	defer rcv.Close()
	f.cfg.Endpoints[1].URL, f.cfg.Endpoints[1].Token = rcv.URL(), ""
	opt := f.opt
	opt.Clock = nil // Run waits in real time
	ob, err := New(f.cfg, f.led, opt)
	must(t, err)
	d, err := ob.Add(ctx, Submission{Batch: "B1", Format: FormatRelation}, strings.NewReader(relationXML("B1", f.codes, -1)), qa)
	must(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- ob.Run(runCtx) }()
	select {
	case b := <-hanging:
		if b != receiver.Hang {
			t.Fatalf("the receiver did %s", b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing was sent")
	}
	stop()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
	if dl := f.doc(d.ID).Deliveries[0]; dl.State != Sending {
		t.Fatalf("after the stop: %+v", dl)
	}
	for len(f.changes) > 0 {
		<-f.changes
	}
	rcv.SetDefault(receiver.Accept)
	runCtx, stop = context.WithCancel(ctx)
	defer stop()
	go func() { done <- ob.Run(runCtx) }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case c := <-f.changes:
			if c.ID == d.ID && c.HandedOff {
				stop()
				must(t, <-done)
				if sum := rcv.Summary(); sum.Accepted != 1 || sum.Received != 2 {
					t.Errorf("receiver: %s", sum.Text)
				}
				return
			}
		case <-deadline:
			t.Fatalf("not delivered: %+v; receiver: %s", f.doc(d.ID), rcv.Summary().Text)
		}
	}
}

// TestReplaceAndRecall: a document the receiver fails (a code missing) is
// replaced by a corrected version; the recall question shows both.
func TestReplaceAndRecall(t *testing.T) {
	f := newFixture(t, nil)
	bad := f.add(FormatRelation, relationXML("B1", f.codes, 1))
	f.drive(30)
	got := f.doc(bad.ID)
	dl := got.Deliveries[0]
	if got.State != Failed || !strings.Contains(dl.Error, "the receiver failed the document") ||
		len(dl.Errors) != 1 || !strings.Contains(dl.Errors[0], string(f.codes.units[1])) {
		t.Fatalf("bad document: %s %+v", got.State, dl)
	}
	if f.handedOff(bad.ID) {
		t.Fatal("a failed document was handed off")
	}
	if _, err := f.ob.Add(ctx, Submission{Batch: "B1", Format: FormatRelation, Replaces: bad.ID},
		strings.NewReader(relationXML("B1", f.codes, 1)), qa); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "same content") {
		t.Fatalf("a replacement with the same content: %v", err)
	}
	good, err := f.ob.Add(ctx, Submission{Batch: "B1", Format: FormatRelation, Replaces: bad.ID},
		strings.NewReader(relationXML("B1", f.codes, -1)), qa)
	must(t, err)
	f.drive(30)
	if st := f.doc(good.ID).State; st != Delivered || !f.handedOff(good.ID) {
		t.Fatalf("corrected document: %s", st)
	}
	if old := f.doc(bad.ID); old.State != Superseded || old.ReplacedBy != good.ID {
		t.Fatalf("old document: %s replaced by %q", old.State, old.ReplacedBy)
	}
	if _, err := f.ob.Resend(ctx, bad.ID, qa); !errors.Is(err, ErrRefused) {
		t.Errorf("resend of a superseded document: %v", err)
	}
	rec, err := f.ob.Recall(ctx, f.codes.units[3])
	must(t, err)
	if rec.Batch != "B1" || len(rec.Documents) != 2 || rec.Documents[0].ID != bad.ID || rec.Documents[1].ID != good.ID {
		t.Fatalf("recall: %+v", rec)
	}
	if a := rec.Documents[1].Deliveries[0]; a.URL != f.platform.URL() || !strings.Contains(a.Answer, "accepted") {
		t.Errorf("recall delivery: %+v", a)
	}
	if _, err := f.ob.Recall(ctx, tracecode.Code("80000000000000000000")); err == nil {
		t.Error("recall of an unknown code answered")
	}
}

func TestAddRefused(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Endpoints = c.Endpoints[1:] }) // the platform only
	must(t, f.led.CreateBatch(ctx, aggregation.BatchSpec{ID: "B2", Product: "P1", Line: "L1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}}}, dev))
	delivered := f.add(FormatRelation, relationXML("B1", f.codes, -1))
	f.drive(10)
	head := f.led.Head()
	tests := []struct {
		name string
		sub  Submission
		body string
		want string
	}{
		{"batch not active", Submission{Batch: "B2", Format: FormatRelation}, "<Document/>", "is open; only a released and activated batch"},
		{"unknown batch", Submission{Batch: "B9", Format: FormatRelation}, "<Document/>", "not found"},
		{"unknown format", Submission{Batch: "B1", Format: "pdf"}, "x", `format "pdf"`},
		{"empty", Submission{Batch: "B1", Format: FormatRelation}, "", "is empty"},
		{"no endpoint", Submission{Batch: "B1", Format: FormatEPCISJSON}, "{}", "no endpoint takes epcis-json"},
		{"replace a delivered one", Submission{Batch: "B1", Format: FormatRelation, Replaces: delivered.ID}, "<Document/>", "only a failed document is replaced"},
		{"replace an unknown one", Submission{Batch: "B1", Format: FormatRelation, Replaces: "nope"}, "<Document/>", "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.ob.Add(ctx, tc.sub, strings.NewReader(tc.body), qa)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if h := f.led.Head(); h != head {
				t.Errorf("journal moved from %d to %d", head, h)
			}
		})
	}
	ents, err := os.ReadDir(f.cfg.Dir)
	must(t, err)
	if len(ents) != 1 || ents[0].Name() != delivered.File {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("outbox directory holds %v", names)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Endpoint{Name: "e", Kind: KindEPCIS, URL: "http://127.0.0.1:1"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no dir", func(c *Config) { c.Dir = "" }, "outbox.dir"},
		{"no name", func(c *Config) { c.Endpoints[0].Name = "" }, "outbox.endpoints[0].name"},
		{"twice", func(c *Config) { c.Endpoints = append(c.Endpoints, ok) }, `outbox.endpoints[1].name: "e" is used twice`},
		{"kind", func(c *Config) { c.Endpoints[0].Kind = "ftp" }, "outbox.endpoints[0].kind"},
		{"url", func(c *Config) { c.Endpoints[0].URL = "127.0.0.1:80" }, "outbox.endpoints[0].url"},
		{"format", func(c *Config) { c.Endpoints[0].Formats = []string{FormatRelation} }, "outbox.endpoints[0].formats"},
		{"timeout", func(c *Config) { c.Endpoints[0].Timeout = -1 }, "outbox.endpoints[0].timeout"},
		{"max sends", func(c *Config) { c.Endpoints[0].MaxSends = -1 }, "outbox.endpoints[0].max_sends"},
		{"backoff", func(c *Config) { c.Endpoints[0].BackoffMin, c.Endpoints[0].BackoffMax = time.Minute, time.Second }, "outbox.endpoints[0].backoff_max"},
		{"poll", func(c *Config) { c.Endpoints[0].PollMin, c.Endpoints[0].PollMax = time.Minute, time.Second }, "outbox.endpoints[0].poll_max"},
		{"token header", func(c *Config) { c.Endpoints[0].TokenHeader = "X-Key" }, "outbox.endpoints[0].token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Dir: "d", Endpoints: []Endpoint{ok}}
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				must(t, err)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
