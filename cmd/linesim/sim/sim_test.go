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
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go controller(cctx, t, s.Endpoints().Modbus)

	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("batch did not finish")
	}
	gt := s.GroundTruth()
	if err := gt.Check(); err != nil {
		t.Fatalf("ground truth inconsistent:\n%v", err)
	}
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
	run := func() []sim.FaultKind {
		cfg := sim.Config{Seed: 7, Rate: 6000, Units: 120, Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off"},
			Faults: []sim.Fault{{Kind: sim.FaultNoRead, Rate: 0.1}, {Kind: sim.FaultDuplicate, Rate: 0.05}}}
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
		var fs []sim.FaultKind
		for _, u := range gt.Units {
			fs = append(fs, u.Fault)
		}
		return fs
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*sim.Config)
		want string
	}{
		{"ok", func(*sim.Config) {}, ""},
		{"rate", func(c *sim.Config) { c.Rate = 10000 }, "linesim.rate"},
		{"positions", func(c *sim.Config) { c.Positions.Camera = time.Millisecond }, "linesim.positions: need 0 < printer"},
		{"ratio", func(c *sim.Config) { c.Ratios = []int{10, 0} }, "linesim.ratios[1]: 0 is outside"},
		{"fault kind", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: "smoke", Rate: 0.1}} }, `linesim.faults[0]: kind "smoke" is unknown`},
		{"fault both", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: sim.FaultNoRead, Rate: 0.1, At: 3}} }, "give exactly one of rate"},
		{"fault rate", func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: sim.FaultNoRead, Rate: 2}} }, "rate 2 is outside 0..1"},
		{"listen", func(c *sim.Config) { c.Listen.Modbus = "502" }, `linesim.listen.modbus: "502" is not host:port`},
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

func TestParseFault(t *testing.T) {
	f, err := sim.ParseFault("plc-disconnect:at=100,for=2s")
	if err != nil || f.Kind != sim.FaultPLCDown || f.At != 100 || f.For != 2*time.Second {
		t.Fatalf("%+v %v", f, err)
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
	next(func(e plc.Event) bool { return e.Kind == plc.EventRunning && e.Running })
	if e := next(func(e plc.Event) bool { return isItem(e) && e.Item > stopped }); e.Item != stopped+1 {
		t.Fatalf("after resume item %d, want %d", e.Item, stopped+1)
	}
}
