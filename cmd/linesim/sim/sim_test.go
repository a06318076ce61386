package sim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/modbus"
)

// controller is a toy line controller: it passes even items and rejects odd
// ones (reason 9), over the real Modbus driver.
func controller(ctx context.Context, t *testing.T, addr string) {
	cfg := sim.ModbusProfile(addr)
	cfg.ReconnectMin, cfg.ReconnectMax = 5*time.Millisecond, 20*time.Millisecond
	d, err := modbus.New(cfg, nil)
	if err != nil {
		t.Error(err)
		return
	}
	if err := d.Connect(ctx); err != nil {
		t.Error(err)
		return
	}
	go func() { <-ctx.Done(); d.Close() }()
	for e := range d.Events() {
		if e.Kind != plc.EventItem {
			continue
		}
		v := plc.Verdict{Item: e.Item, Result: plc.ResultPass}
		if e.Item%2 == 1 {
			v.Result, v.Reason = plc.ResultReject, 9
		}
		d.WriteVerdict(ctx, v) // errors while the link is cut: the gate rejects
	}
}

func TestBatchWithFaults(t *testing.T) {
	cfg := sim.Config{
		Seed:   42,
		Rate:   6000,
		Units:  300,
		Ratios: []int{5, 3},
		Faults: []sim.Fault{
			{Kind: sim.FaultNoRead, Rate: 0.03},
			{Kind: sim.FaultSkipPrint, Rate: 0.02},
			{Kind: sim.FaultDuplicate, Rate: 0.02},
			{Kind: sim.FaultMissing, Rate: 0.02},
			{Kind: sim.FaultLowGrade, At: 17},
			{Kind: sim.FaultPLCDown, At: 150, For: 150 * time.Millisecond},
		},
	}
	s, err := sim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gt := runBatch(ctx, t, s)
	sum := gt.Summary
	t.Logf("summary %+v", sum)
	if !gt.Finished || sum.Triggered != 300 || sum.Good+sum.Rejected+sum.Missing != 300 {
		t.Fatalf("counts %+v", sum)
	}
	if sum.Faults[string(sim.FaultLowGrade)] != 1 || sum.Faults[string(sim.FaultMissing)] == 0 {
		t.Fatalf("faults %v", sum.Faults)
	}
	for _, u := range gt.Units {
		if u.Fate == sim.FateGood && u.Item%2 == 1 {
			t.Fatalf("odd item %d left as good", u.Item)
		}
		if u.Fate == sim.FateRejected && u.Verdict == "reject" && u.Reason != 9 {
			t.Fatalf("item %d rejected with reason %d", u.Item, u.Reason)
		}
	}
	// The cut link cost verdicts: some even units reached the gate without one.
	if sum.NoVerdict == 0 {
		t.Errorf("a 150ms PLC cut at 100 units/s left no unit without a verdict")
	}
	// Aggregation: every good unit is in a box, every box has a label.
	for _, u := range gt.Units {
		if u.Fate == sim.FateGood && (u.Group == 0 || len(u.Parents) == 0) {
			t.Fatalf("good unit %d not packed/labelled: %+v", u.Item, u)
		}
	}
	if sum.Groups[2] == 0 || sum.Groups[3] == 0 || sum.Unlabeled != 0 {
		t.Fatalf("groups %v unlabelled %d", sum.Groups, sum.Unlabeled)
	}

	// Over HTTP: the same document.
	res, err := http.Get(s.Endpoints().HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var viaHTTP sim.GroundTruth
	if err := json.NewDecoder(res.Body).Decode(&viaHTTP); err != nil {
		t.Fatal(err)
	}
	if err := viaHTTP.Check(); err != nil || len(viaHTTP.Units) != 300 {
		t.Fatalf("ground truth over HTTP: %d units, %v", len(viaHTTP.Units), err)
	}
}

// The same seed draws the same faults on the same units.
func TestSeedReproducible(t *testing.T) {
	run := func() []string {
		cfg := sim.Config{Seed: 7, Rate: 6000, Units: 120, Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off"},
			Faults: []sim.Fault{{Kind: sim.FaultNoRead, Rate: 0.1}, {Kind: sim.FaultDuplicate, Rate: 0.05},
				{Kind: sim.FaultRejectFailed, Rate: 0.05}, {Kind: sim.FaultBinFull, At: 100}}}
		s, err := sim.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		<-s.Done()
		gt := s.GroundTruth()
		if err := gt.Check(); err != nil {
			t.Fatal(err)
		}
		var fs []string
		for _, u := range gt.Units {
			fs = append(fs, string(u.Fault)+"/"+string(u.GateFault)+"/"+u.Gate.String())
		}
		return fs
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
}

// TestProxiesOff: with the proxies off a batch runs with every device
// served directly (its endpoint is the device's own server), and what
// only a proxy can do is refused with a clear error.
func TestProxiesOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := sim.Config{Seed: 3, Rate: 6000, Units: 60, Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off", Proxies: "off"},
		Faults: []sim.Fault{{Kind: sim.FaultNoRead, Rate: 0.1}}}
	s, err := sim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gt := runBatch(ctx, t, s)
	if gt.Summary.Good == 0 {
		t.Fatalf("no unit passed over the direct Modbus link: %+v", gt.Summary)
	}
	if s.Accepted(sim.DevModbus) != 0 {
		t.Fatal("a proxy accepted a connection with the proxies off")
	}
	if err := s.Cut(sim.DevCamera); err == nil || !strings.Contains(err.Error(), "listen.proxies is off") {
		t.Fatalf("Cut with the proxies off: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*sim.Config)
		want string
	}{
		{"ok", func(*sim.Config) {}, ""},
		{"rate", func(c *sim.Config) { c.Rate = sim.MaxRate + 1 }, "linesim.rate: 30001 units/min is outside 1..30000"},
		{"rate at the most", func(c *sim.Config) { c.Rate = sim.MaxRate }, ""},
		{"rate zero", func(c *sim.Config) { c.Rate = 0.5 }, "linesim.rate: 0.5 units/min is outside"},
		{"positions", func(c *sim.Config) { c.Positions.Camera = time.Millisecond }, "linesim.positions: need 0 < printer"},
		{"ratio", func(c *sim.Config) { c.Ratios = []int{10, 0} }, "linesim.ratios[1]: 0 is outside"},
		{"fault kind", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: "smoke", Rate: 0.1}} }, `linesim.faults[0]: kind "smoke" is unknown`},
		{"fault both", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: sim.FaultNoRead, Rate: 0.1, At: 3}} }, "give exactly one of rate"},
		{"fault rate", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: sim.FaultNoRead, Rate: 2}} }, "rate 2 is outside 0..1"},
		{"listen", func(c *sim.Config) { c.Listen.Modbus = "502" }, `linesim.listen.modbus: "502" is not host:port`},
		{"listen label scanner", func(c *sim.Config) { c.Listen.LabelScanner = "4844" }, `linesim.listen.label_scanner: "4844" is not host:port`},
		{"label scanner position", func(c *sim.Config) { c.Positions.LabelScanner = -time.Millisecond }, "linesim.positions.label_scanner: -1ms must be positive"},
		{"watchdog negative", func(c *sim.Config) { d := -time.Second; c.ControllerWatchdog = &d }, "linesim.controller_watchdog: -1s is outside 1ms..1h (0s = off)"},
		{"watchdog too short", func(c *sim.Config) { d := time.Microsecond; c.ControllerWatchdog = &d }, "linesim.controller_watchdog: 1µs is outside"},
		{"watchdog off", func(c *sim.Config) { d := time.Duration(0); c.ControllerWatchdog = &d }, ""},
		{"gate faults", func(c *sim.Config) {
			c.Faults = []sim.Fault{{Kind: sim.FaultLatePass, Rate: 0.01}, {Kind: sim.FaultRejectFailed, At: 9}, {Kind: sim.FaultBinFull, At: 100}}
		}, ""},
		{"label faults", func(c *sim.Config) {
			c.Faults = []sim.Fault{{Kind: sim.FaultLabelNoRead, Rate: 0.1, After: 2}, {Kind: sim.FaultLabelMisapply, At: 3}}
		}, ""},
		{"scanner link faults", func(c *sim.Config) {
			c.Faults = []sim.Fault{{Kind: sim.FaultScannerDown, At: 9}, {Kind: sim.FaultScannerStall, At: 19}, {Kind: sim.FaultScannerSlow, Rate: 0.01}}
		}, ""},
		{"label fault both", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: sim.FaultLabelMisapply}} }, "linesim.faults[0] (label-misapply): give exactly one of rate"},
		{"unknown names new kinds", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: "bin-empty", At: 1}} }, "late-pass, reject-failed, bin-full, label-noread, label-misapply"},
		{"proxies off", func(c *sim.Config) {
			c.Listen.Proxies = "off"
			c.Faults = []sim.Fault{{Kind: sim.FaultNoRead, Rate: 0.1}}
		}, ""},
		{"proxies off, link fault", func(c *sim.Config) {
			c.Listen.Proxies = "off"
			c.Faults = []sim.Fault{{Kind: sim.FaultCameraSlow, At: 3}}
		},
			"linesim.faults[0] (camera-slow): a link fault needs the proxies"},
		{"proxies off, fixed port", func(c *sim.Config) { c.Listen.Proxies = "off"; c.Listen.Camera = "127.0.0.1:4841" },
			`linesim.listen.camera: "127.0.0.1:4841": with proxies off`},
		{"proxies unknown", func(c *sim.Config) { c.Listen.Proxies = "no" }, `linesim.listen.proxies: "no" is neither on nor off`},
		{"labellers shared", func(c *sim.Config) { c.Labellers = sim.LabellersShared }, ""},
		{"labellers unknown", func(c *sim.Config) { c.Labellers = "one" }, `linesim.labellers: "one" is neither per-level`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c sim.Config
			tt.edit(&c)
			err := c.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestLayout: a label printer per level by default, one with labellers
// shared; level index li's labeller.
func TestLayout(t *testing.T) {
	tests := []struct {
		cfg      sim.Config
		want     sim.Layout
		printers []int // labeller of level index 0, 1, …
	}{
		{sim.Config{}, sim.Layout{}, nil},
		{sim.Config{Ratios: []int{10}}, sim.Layout{Levels: 1, LabelPrinters: 1}, []int{0}},
		{sim.Config{Ratios: []int{10, 20, 40}}, sim.Layout{Levels: 3, LabelPrinters: 3}, []int{0, 1, 2}},
		{sim.Config{Ratios: []int{10, 20, 40}, Labellers: sim.LabellersPerLevel}, sim.Layout{Levels: 3, LabelPrinters: 3}, []int{0, 1, 2}},
		{sim.Config{Ratios: []int{10, 20, 40}, Labellers: sim.LabellersShared}, sim.Layout{Levels: 3, LabelPrinters: 1}, []int{0, 0, 0}},
		{sim.Config{Labellers: sim.LabellersShared}, sim.Layout{}, nil},
	}
	for _, tc := range tests {
		l := tc.cfg.Layout()
		if l != tc.want {
			t.Errorf("%+v: layout %+v, want %+v", tc.cfg, l, tc.want)
		}
		for li, want := range tc.printers {
			if k, ok := l.Printer(li); !ok || k != want {
				t.Errorf("%+v: level index %d's labeller %d %v, want %d", tc.cfg, li, k, ok, want)
			}
		}
		if _, ok := l.Printer(len(tc.printers)); ok && l.LabelPrinters != 1 {
			t.Errorf("%+v: a labeller for level index %d", tc.cfg, len(tc.printers))
		}
	}
	if sim.LabelPrinterDevice(2) != "label_printer" || sim.LabelPrinterDevice(4) != "label_printer_4" {
		t.Errorf("device names %s %s", sim.LabelPrinterDevice(2), sim.LabelPrinterDevice(4))
	}
}

func TestParseFault(t *testing.T) {
	f, err := sim.ParseFault("plc-disconnect:at=100,for=2s")
	if err != nil || f.Kind != sim.FaultPLCDown || f.At != 100 || f.For != 2*time.Second {
		t.Fatalf("%+v %v", f, err)
	}
	for in, want := range map[string]sim.Fault{
		"reject-failed:rate=0.01,after=4": {Kind: sim.FaultRejectFailed, Rate: 0.01, After: 4},
		"bin-full:at=300":                 {Kind: sim.FaultBinFull, At: 300},
		"label-misapply:at=7":             {Kind: sim.FaultLabelMisapply, At: 7},
		"scanner-slow:at=5,delay=20ms":    {Kind: sim.FaultScannerSlow, At: 5, Delay: 20 * time.Millisecond},
	} {
		if got, err := sim.ParseFault(in); err != nil || got != want {
			t.Errorf("ParseFault(%q) = %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, k := range sim.FaultKinds() {
		n := 0
		for _, is := range []bool{k.IsUnitFault(), k.IsGateFault(), k.IsLabelFault(), k.IsLinkFault()} {
			if is {
				n++
			}
		}
		if n != 1 {
			t.Errorf("fault kind %s is in %d classes", k, n)
		}
	}
	for _, bad := range []string{"", "no-read", "no-read:rate", "no-read:rate=x", "no-read:speed=1", "fire:rate=0.1"} {
		if _, err := sim.ParseFault(bad); err == nil {
			t.Errorf("ParseFault(%q) accepted", bad)
		}
	}
}

// A stop request halts the infeed (running goes false); clearing it
// resumes with the next item id.
func TestStopRequest(t *testing.T) {
	s, err := sim.New(sim.Config{Seed: 3, Rate: 3000, Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := modbus.New(sim.ModbusProfile(s.Endpoints().Modbus), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	next := func(want func(plc.Event) bool) plc.Event {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case e := <-d.Events():
				if want(e) {
					return e
				}
			case <-deadline:
				t.Fatal("timed out")
			}
		}
	}
	isItem := func(e plc.Event) bool { return e.Kind == plc.EventItem }
	next(isItem)
	if err := d.Set(t.Context(), plc.OutStopRequest, 1); err != nil {
		t.Fatal(err)
	}
	next(func(e plc.Event) bool { return e.Kind == plc.EventRunning && !e.Running })
	// Stopped: the infeed spawns nothing until the request is cleared.
	stopped := s.PLC().ItemCounter
	if err := d.Set(t.Context(), plc.OutStopRequest, 0); err != nil {
		t.Fatal(err)
	}
	// Running and the first new item come from the same instant of the
	// infeed, so the driver may report them in either order.
	var first uint32
	resumed := false
	next(func(e plc.Event) bool {
		switch {
		case e.Kind == plc.EventRunning && e.Running:
			resumed = true
		case isItem(e) && e.Item > stopped && first == 0:
			first = e.Item
		}
		return resumed && first != 0
	})
	if first != stopped+1 {
		t.Fatalf("after resume item %d, want %d", first, stopped+1)
	}
}

// A batch with gate and label faults at a rate, against the toy controller:
// the ground truth stays self-consistent with escaped units, one-off labels
// and label no-reads, and the PLC's counters agree with it.
func TestBatchWithGateAndLabelFaults(t *testing.T) {
	cfg := sim.Config{
		Seed:         11,
		Rate:         6000,
		Units:        240,
		Ratios:       []int{4, 2},
		LabelTimeout: 500 * time.Millisecond,
		Listen:       sim.Listen{HTTP: "off", PLCOPCUA: "off"},
		Faults: []sim.Fault{
			{Kind: sim.FaultNoRead, Rate: 0.03},
			{Kind: sim.FaultMissing, Rate: 0.02},
			{Kind: sim.FaultLatePass, Rate: 0.03},
			{Kind: sim.FaultRejectFailed, Rate: 0.03},
			{Kind: sim.FaultBinFull, At: 200},
			{Kind: sim.FaultLabelNoRead, Rate: 0.2},
			{Kind: sim.FaultLabelMisapply, At: 6},
			{Kind: sim.FaultScannerDown, At: 50, For: 50 * time.Millisecond},
		},
	}
	s, err := sim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gt := runBatch(ctx, t, s)
	sum := gt.Summary
	t.Logf("summary %+v", sum)
	gate := 0
	for _, n := range sum.Gate {
		gate += n
	}
	if gate != sum.Good+sum.Rejected+sum.Escaped || gate != int(gt.PLC.GateCount) || sum.Escaped != int(gt.PLC.Escaped) {
		t.Fatalf("gate outcomes %v, units %d/%d/%d, PLC %d outcomes %d escaped", sum.Gate, sum.Good, sum.Rejected, sum.Escaped, gt.PLC.GateCount, gt.PLC.Escaped)
	}
	if sum.Gate["bin-full"] == 0 || sum.Gate["reject-failed"] == 0 || sum.Faults[string(sim.FaultLatePass)] == 0 {
		t.Fatalf("gate faults did not act: %v %v", sum.Gate, sum.Faults)
	}
	if sum.LabelsLost != 1 || sum.Misapplied == 0 || sum.Scans == 0 || sum.Faults[string(sim.FaultLabelNoRead)] == 0 {
		t.Fatalf("label faults: %+v", sum)
	}
	for _, u := range gt.Units {
		if u.Fate == sim.FateEscaped && (u.Group != 0 || len(u.Parents) != 0) {
			t.Fatalf("escaped unit %d packed: %+v", u.Item, u)
		}
		if u.Fate == sim.FateGood && u.Item%2 == 1 {
			t.Fatalf("odd item %d left as good", u.Item)
		}
	}
}

// GET /looplag serves what the event loop recorded: every timed event of a
// batch, counted.
func TestLoopLagOverHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := startSim(t, sim.Config{Seed: 3, Rate: 6000, Units: 40, Listen: sim.Listen{PLCOPCUA: "off"}})
	runBatch(ctx, t, s)
	res, err := http.Get(strings.TrimSuffix(s.Endpoints().HTTP, "/groundtruth") + "/looplag")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var l sim.LoopLag
	if err := json.NewDecoder(res.Body).Decode(&l); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /looplag: %s %v", res.Status, err)
	}
	// Each unit passes the trigger, printer, camera and gate: four events
	// at least.
	if l.Events < 4*40 || l.Events > s.LoopLag().Events {
		t.Fatalf("looplag events %d; want at least %d, at most the simulator's %d", l.Events, 4*40, s.LoopLag().Events)
	}
	if l.Over10 > l.Over5 || l.Over5 > l.Events || (l.Over5 > 0) != (l.MaxMs > 5) {
		t.Fatalf("inconsistent loop lag: %+v", l)
	}
}
