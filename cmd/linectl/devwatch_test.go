package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/camera"
	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/plctest"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

// The watch turns PLC events and the controller's writes into signal
// values with their age, and device events into links and counters.
func TestDevWatchSignalsAndLinks(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	now := t0
	w := newDevWatch()
	w.now = func() time.Time { return now }
	cfg := sim.ModbusProfile("127.0.0.1:1")
	fake := plctest.New(4)
	p := watchedPLC{fake, w}
	ctx := context.Background()

	w.declare("plc")
	w.watchPLCEvent(plc.Event{Kind: plc.EventItem, Item: 41, At: t0})
	w.watchPLCEvent(plc.Event{Kind: plc.EventRunning, Running: true, At: t0.Add(-time.Second)})
	now = t0.Add(250 * time.Millisecond)
	if err := p.WriteVerdict(ctx, plc.Verdict{Item: 41, Result: plc.ResultPass}); err != nil {
		t.Fatal(err)
	}
	if err := p.Set(ctx, plc.OutTowerLight, int(plc.TowerGreen)); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Second)
	got := map[string]line.SignalValue{}
	for _, s := range w.Signals(cfg) {
		got[s.Name] = s
	}
	if len(got) != len(cfg.Signals) {
		t.Errorf("%d signals listed, %d mapped", len(got), len(cfg.Signals))
	}
	for name, want := range map[string]line.SignalValue{
		plc.SigItemTrigger: {Value: "41", AgeMs: 1000},
		plc.SigRunning:     {Value: "true", AgeMs: 2000},
		plc.SigVerdict:     {Value: "item 41 pass reason 0", AgeMs: 750},
		plc.SigTowerLight:  {Value: "green", AgeMs: 750},
		plc.SigAlarm:       {AgeMs: -1},
	} {
		g, ok := got[name]
		if !ok {
			t.Errorf("signal %s not listed (mapped: %v)", name, cfg.Signals)
			continue
		}
		if g.Value != want.Value || g.AgeMs != want.AgeMs || g.Address == "" {
			t.Errorf("signal %s: %+v, want value %q age %d ms and an address", name, g, want.Value, want.AgeMs)
		}
	}
	// A failed write is not a value the PLC holds.
	fake.FailWrites(errors.New("cable cut"))
	if err := p.Set(ctx, plc.OutAlarm, 1); err == nil {
		t.Fatal("write through a failing PLC: no error")
	}
	for _, s := range w.Signals(cfg) {
		if s.Name == plc.SigAlarm && s.AgeMs != -1 {
			t.Errorf("alarm after a failed write: %+v", s)
		}
	}

	w.watchPLCEvent(plc.Event{Kind: plc.EventLinkDown, Err: errors.New("heartbeat stale"), At: t0.Add(2 * time.Second)})
	if l := w.Links()["plc"]; l.Up || l.Err != "heartbeat stale" || !l.LastMessage.Equal(t0.Add(2*time.Second)) {
		t.Errorf("plc after link down: %+v", l)
	}
	w.watchPLCEvent(plc.Event{Kind: plc.EventLinkUp, At: t0.Add(3 * time.Second)})
	if l := w.Links()["plc"]; !l.Up || l.Err != "" {
		t.Errorf("plc after link up: %+v", l)
	}

	for _, e := range []camera.Event{
		{Kind: camera.EventResult, Result: camera.Result{Codes: []string{"x"}, Pass: true}},
		{Kind: camera.EventResult},
		{Kind: camera.EventGap, Lost: 3},
	} {
		w.watchCamera("camera", e)
	}
	w.watchPrinter(printer.Event{Kind: printer.EventPrinted})
	if c := w.Counters("camera"); c["results"] != "2" || c["no_reads"] != "1" || c["failed"] != "1" || c["gaps"] != "1" {
		t.Errorf("camera counters %v", c)
	}
	if c := w.Counters("printer"); c["printed"] != "1" {
		t.Errorf("printer counters %v", c)
	}
	if l := w.Links()["camera"]; !l.Up || l.LastMessage.IsZero() {
		t.Errorf("camera link %+v", l)
	}
}

type fakeCoder struct {
	sent []tracecode.Code
	st   printer.Status
}

func (f *fakeCoder) Send(_ context.Context, codes []tracecode.Code) error {
	f.sent = append(f.sent, codes...)
	return nil
}
func (f *fakeCoder) Status(context.Context) (printer.Status, error) { return f.st, nil }

type fakeCam struct{ jobs int }

func (f *fakeCam) StartSingleJob(context.Context, uint32) error { f.jobs++; return nil }

func TestEngineeringTestActions(t *testing.T) {
	ctx := context.Background()
	w := newDevWatch()
	fake := plctest.New(4)
	coder := &fakeCoder{st: printer.Status{State: "running", BufferLevel: 3, BufferDepth: 64}}
	cam := &fakeCam{}
	e := &engineering{w: w, plcCfg: sim.ModbusProfile("127.0.0.1:1"), plc: watchedPLC{fake, w}, coder: coder,
		cameras: map[string]interface {
			StartSingleJob(context.Context, uint32) error
		}{"camera": cam}}
	for _, tc := range []struct {
		name                 string
		kind, output         string
		value                int
		text, device, wanted string // wanted: in the answer, or in the error if it starts with "!"
	}{
		{"tower light red", "output", "tower_light", 3, "", "", "tower_light set to 3"},
		{"alarm on", "output", "alarm", 1, "", "", "alarm set to 1"},
		{"alarm out of range", "output", "alarm", 2, "", "", "!takes 0 or 1"},
		{"verdict is not a test output", "output", "verdict", 1, "", "", "!not a writable signal"},
		{"an input is not an output", "output", "item_trigger", 1, "", "", "!not a writable signal"},
		{"print", "print", "", 0, "hello", "", `sent "TEST hello"`},
		{"print too long", "print", "", 0, strings.Repeat("x", 65), "", "!at most 64"},
		{"camera", "camera", "", 0, "", "", "camera camera triggered"},
		{"unknown camera", "camera", "", 0, "", "label-scanner-L9", "!not a configured camera"},
		{"unknown kind", "shred", "", 0, "", "", "!not output, print or camera"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writes := len(fake.Calls())
			out, err := e.test(ctx, tc.kind, tc.output, tc.value, tc.text, tc.device)
			if bad, ok := strings.CutPrefix(tc.wanted, "!"); ok {
				if err == nil || !strings.Contains(err.Error(), bad) {
					t.Fatalf("err %v, want %q", err, bad)
				}
				if n := len(fake.Calls()); n != writes {
					t.Errorf("a refused action wrote to the PLC: %v", fake.Calls()[writes:])
				}
				return
			}
			if err != nil || !strings.Contains(out, tc.wanted) {
				t.Fatalf("%q %v, want %q", out, err, tc.wanted)
			}
		})
	}
	if !e.testPrinted.Load() {
		t.Error("a test print is not remembered: the next batch would not empty the printer's buffer")
	}
	if len(coder.sent) != 1 || cam.jobs != 1 {
		t.Errorf("printer got %v, camera %d jobs", coder.sent, cam.jobs)
	}
	m, err := e.monitor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Printer["buffer"] != "3/64" || m.Printer["state"] != "running" {
		t.Errorf("printer view %v", m.Printer)
	}
	for _, s := range m.Signals {
		if s.Name == plc.SigTowerLight && s.Value != "red" {
			t.Errorf("tower light after the test: %+v", s)
		}
	}
}

// A label printer is on the overview through its answers: up after a label
// it took, down naming the reason when it is not ready or does not answer,
// up again after the next label it takes (a real ZPL printer simulator).
func TestWatchedLabelPrinter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lp, err := devsim.NewLabelPrinter(devsim.LabelPrinterConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	zp, err := zpl.New(zpl.Config{Address: lp.Addr(), Symbology: zpl.GS1128, Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zp.Close()
	w := newDevWatch()
	w.declare("label-printer-L2")
	p := watchedLabeler{zp, w, "label-printer-L2"}
	label := printer.Label{Code: "(00)069012345678901234", Level: 2, Count: 10}
	link := func() line.LinkState { return w.Links()["label-printer-L2"] }

	lp.SetPaperOut(true)
	if err := p.PrintLabel(ctx, label); !errors.Is(err, printer.ErrNotReady) {
		t.Fatalf("paper out: %v", err)
	}
	if l := link(); l.Up || !strings.Contains(l.Err, "paper out") {
		t.Fatalf("after a refusal for paper out: %+v, want down saying so", l)
	}
	lp.SetPaperOut(false)
	if err := p.PrintLabel(ctx, label); err != nil {
		t.Fatal(err)
	}
	if l := link(); !l.Up || l.Err != "" || l.LastMessage.IsZero() {
		t.Fatalf("after a label taken: %+v, want up", l)
	}
	// A label it cannot render says nothing of the printer.
	if err := p.PrintLabel(ctx, printer.Label{Code: "81012345678901234567", Level: 2}); err == nil {
		t.Fatal("an nmpa20 code in GS1-128 was printed")
	}
	if l := link(); !l.Up {
		t.Fatalf("after a label it could not render: %+v, want still up", l)
	}
	lp.Close()
	if err := p.PrintLabel(ctx, label); !errors.Is(err, printer.ErrNotAnswered) {
		t.Fatalf("printer gone: %v", err)
	}
	if l := link(); l.Up || l.Err == "" {
		t.Fatalf("after no answer: %+v, want down", l)
	}
}
