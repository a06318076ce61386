package sim

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the simulated line. Decoded from YAML (examples/linesim.yaml);
// zero values take the defaults in WithDefaults.
type Config struct {
	// Seed makes a run reproducible: the same seed and config inject the
	// same faults on the same units.
	Seed uint64 `yaml:"seed" json:"seed"`
	// Rate in units per minute (default 600, at most MaxRate).
	Rate float64 `yaml:"rate" json:"rate"`
	// Units to run before the infeed stops (0 = until stopped). After the
	// last unit has left the line, Done() is closed.
	Units int `yaml:"units" json:"units"`
	// Positions along the conveyor, as times after the trigger photo-eye.
	Positions Positions `yaml:"positions" json:"positions"`
	// Ratios of the packing hierarchy above the unit: [10, 4] = 10 units per
	// box (level 2), 4 boxes per case (level 3). Empty = no aggregation.
	Ratios []int `yaml:"ratios" json:"ratios"`
	// LabelTimeout: how long the labeller waits for a printed label after
	// a group was read before the group leaves unlabelled (default 2s).
	LabelTimeout time.Duration `yaml:"label_timeout" json:"label_timeout"`
	// Labellers: per-level (default) — each aggregated level has its own
	// label printer and labeller, as lines are built: a level's labels go
	// only on that level's groups, in that level's order; shared — one
	// label printer and one labeller for every level, groups served first
	// come first served (the simulator's model before per-level: labels of
	// two levels closing together can cross).
	Labellers Labellers `yaml:"labellers" json:"labellers"`
	// Heartbeat period of the PLC's heartbeat counter (default 100ms).
	Heartbeat time.Duration `yaml:"heartbeat" json:"heartbeat"`
	// Listen addresses ("" = 127.0.0.1:0, any free port). Every device is
	// reached through a netsim proxy at this address so disconnects and
	// slow answers can be injected.
	Listen Listen `yaml:"listen" json:"listen"`
	// Faults to inject.
	Faults []Fault `yaml:"faults" json:"faults"`
	// StartStopped: the PLC starts with its stop request set, so no unit
	// comes before a controller has connected and cleared it (the line
	// interlock of a real line).
	StartStopped bool `yaml:"start_stopped" json:"start_stopped"`
	// ControllerWatchdog: once the controller has written its alive value
	// (holding register 11 / PLC.ControllerAlive) at least once, the PLC
	// stops the infeed when the value has not changed for this long, as
	// under a stop request, and shows controller_lost. nil = the default
	// 1s; 0 = off (in YAML write 0s: a bare 0 is not a duration).
	ControllerWatchdog *time.Duration `yaml:"controller_watchdog,omitempty" json:"controller_watchdog,omitempty"`
}

// DefaultControllerWatchdog is the controller watchdog when the config
// does not say.
const DefaultControllerWatchdog = time.Second

// Positions are the conveyor stations, as delays after the trigger.
type Positions struct {
	Printer time.Duration `yaml:"printer" json:"printer"` // default 20ms
	Camera  time.Duration `yaml:"camera" json:"camera"`   // default 40ms
	Gate    time.Duration `yaml:"gate" json:"gate"`       // default 100ms
	Labeler time.Duration `yaml:"labeler" json:"labeler"` // after a group is read; default 50ms
	// LabelScanner: after the label is applied, the group passes the label
	// scanner, which reads the label and the children; default 30ms.
	LabelScanner time.Duration `yaml:"label_scanner" json:"label_scanner"`
}

// Listen holds the addresses the devices are served on.
type Listen struct {
	Modbus    string `yaml:"modbus" json:"modbus"`
	PLCOPCUA  string `yaml:"plc_opcua" json:"plc_opcua"` // "off": the PLC speaks Modbus only (starts faster)
	Printer   string `yaml:"printer" json:"printer"`
	Camera    string `yaml:"camera" json:"camera"`
	AggCamera string `yaml:"agg_camera" json:"agg_camera"`
	// Label is the level-2 label printer (or the shared one); higher
	// levels get any free port (Endpoints().LabelPrinters).
	Label string `yaml:"label_printer" json:"label_printer"`
	// LabelScanner is the level-2 label scanner; higher levels get any
	// free port (Endpoints().LabelScanners).
	LabelScanner string `yaml:"label_scanner" json:"label_scanner"`
	HTTP         string `yaml:"http" json:"http"` // ground truth; "off" disables
	// Proxies: "" or "on" puts a netsim proxy in front of every device
	// (link faults, Cut, Stall, SetDelay act there); "off" serves each
	// device directly, as real devices are reached — one hop less for
	// every message, no link faults (refused), every device address but
	// http left to the simulator.
	Proxies string `yaml:"proxies" json:"proxies"`
}

// Labellers says how the line labels its groups.
type Labellers string

const (
	// LabellersPerLevel: a label printer and a labeller per aggregated
	// level (the default).
	LabellersPerLevel Labellers = "per-level"
	// LabellersShared: one label printer and one labeller for every level.
	LabellersShared Labellers = "shared"
)

// Layout is what the device factory builds for a config: the aggregation
// levels above the unit (an aggregation camera and a label scanner each)
// and the label printers (one per level, or one shared).
type Layout struct {
	Levels        int `json:"levels"`
	LabelPrinters int `json:"label_printers"`
}

// Printer is the index of the label printer (and labeller) of level
// index li (0 = level 2): li itself with a printer per level, 0 with one
// shared; false if there is none.
func (l Layout) Printer(li int) (int, bool) {
	switch {
	case l.LabelPrinters == 1:
		return 0, true
	case li < l.LabelPrinters:
		return li, true
	}
	return 0, false
}

// Layout is the devices cfg asks for.
func (c Config) Layout() Layout {
	c = c.WithDefaults()
	l := Layout{Levels: len(c.Ratios), LabelPrinters: len(c.Ratios)}
	if c.Labellers == LabellersShared && l.Levels > 0 {
		l.LabelPrinters = 1
	}
	return l
}

// FaultKind names an injectable fault.
type FaultKind string

// Fault kinds. Unit faults act on one unit (at most one per unit); gate
// faults act on what the reject gate does with a unit and combine with a
// unit fault; label faults act on one labelled group (rate per group, at =
// group id); link faults act on a device's connection for a duration.
const (
	FaultNoRead       FaultKind = "no-read"     // camera reads nothing on the unit
	FaultLowGrade     FaultKind = "low-grade"   // camera grades the code below C
	FaultCameraLost   FaultKind = "camera-lost" // camera publishes no result at all
	FaultSkipPrint    FaultKind = "skip-print"  // printer consumes the code, nothing lands on the unit
	FaultDuplicate    FaultKind = "duplicate"   // printer prints the previous code again
	FaultMissing      FaultKind = "missing"     // unit triggers, then falls off before the printer
	FaultPLCDown      FaultKind = "plc-disconnect"
	FaultPrinterDown  FaultKind = "printer-disconnect"
	FaultCameraDown   FaultKind = "camera-disconnect"
	FaultPLCSlow      FaultKind = "plc-slow"
	FaultPrinterSlow  FaultKind = "printer-slow"
	FaultCameraSlow   FaultKind = "camera-slow"
	FaultPLCStall     FaultKind = "plc-stall" // link open, no byte through (half-dead)
	FaultCameraStall  FaultKind = "camera-stall"
	FaultPrinterStall FaultKind = "printer-stall"

	// Gate faults. A rate or at fault is drawn on a unit and applies to the
	// first unit at or after it that it can act on (see conveyor.gate).
	FaultLatePass     FaultKind = "late-pass"     // a unit with a pass is rejected anyway (outcome 2)
	FaultRejectFailed FaultKind = "reject-failed" // a unit to be rejected goes on (outcome 3, escaped)
	FaultBinFull      FaultKind = "bin-full"      // from this unit on the reject bin is full (outcome 4) until emptied

	// Label faults, per labelled group.
	FaultLabelNoRead   FaultKind = "label-noread"   // the label scanner reads the children but not the label
	FaultLabelMisapply FaultKind = "label-misapply" // the group's label falls off; it takes the next one, and every later group is one off until a purge

	// Label scanner link faults (every level's scanner).
	FaultScannerDown  FaultKind = "scanner-disconnect"
	FaultScannerStall FaultKind = "scanner-stall"
	FaultScannerSlow  FaultKind = "scanner-slow"
)

var unitFaults = []FaultKind{FaultNoRead, FaultLowGrade, FaultCameraLost, FaultSkipPrint, FaultDuplicate, FaultMissing}
var gateFaults = []FaultKind{FaultLatePass, FaultRejectFailed, FaultBinFull}
var labelFaults = []FaultKind{FaultLabelNoRead, FaultLabelMisapply}
var linkFaults = []FaultKind{FaultPLCDown, FaultPrinterDown, FaultCameraDown, FaultScannerDown, FaultPLCSlow, FaultPrinterSlow,
	FaultCameraSlow, FaultScannerSlow, FaultPLCStall, FaultCameraStall, FaultPrinterStall, FaultScannerStall}

func (k FaultKind) in(list []FaultKind) bool {
	for _, u := range list {
		if u == k {
			return true
		}
	}
	return false
}

// IsUnitFault says whether k acts on one unit's printing or inspection
// (at most one per unit).
func (k FaultKind) IsUnitFault() bool { return k.in(unitFaults) }

// IsGateFault says whether k acts on what the reject gate does.
func (k FaultKind) IsGateFault() bool { return k.in(gateFaults) }

// IsLabelFault says whether k acts on a labelled group.
func (k FaultKind) IsLabelFault() bool { return k.in(labelFaults) }

// IsLinkFault says whether k acts on a device's connection.
func (k FaultKind) IsLinkFault() bool { return k.in(linkFaults) }

func (k FaultKind) known() bool {
	return k.IsUnitFault() || k.IsGateFault() || k.IsLabelFault() || k.IsLinkFault()
}

// FaultKinds lists every fault kind: unit, gate, label, link.
func FaultKinds() []FaultKind {
	var all []FaultKind
	for _, l := range [][]FaultKind{unitFaults, gateFaults, labelFaults, linkFaults} {
		all = append(all, l...)
	}
	return all
}

// Fault is one injected fault: at a rate (per unit) or at a moment (the
// unit with item id At). Label faults count groups instead: Rate per
// labelled group, At and After are group ids. Link faults last For and,
// for *-slow, add Delay to every chunk of the device's traffic.
type Fault struct {
	Kind  FaultKind     `yaml:"kind" json:"kind"`
	Rate  float64       `yaml:"rate,omitempty" json:"rate,omitempty"`   // 0..1 per unit
	At    uint32        `yaml:"at,omitempty" json:"at,omitempty"`       // item id
	For   time.Duration `yaml:"for,omitempty" json:"for,omitempty"`     // link faults (default 1s)
	Delay time.Duration `yaml:"delay,omitempty" json:"delay,omitempty"` // slow-* (default 50ms)
	// After: a rate fault spares items up to this id (e.g. the challenge
	// test units at the start of a batch). The RNG is drawn all the same,
	// so the faults after it fall on the same units.
	After uint32 `yaml:"after,omitempty" json:"after,omitempty"`
}

// ParseFault parses the command-line form kind:key=value,key=value, e.g.
// "no-read:rate=0.02" or "plc-disconnect:at=100,for=2s".
func ParseFault(s string) (Fault, error) {
	kind, opts, _ := strings.Cut(strings.TrimSpace(s), ":")
	f := Fault{Kind: FaultKind(kind)}
	if opts != "" {
		for _, kv := range strings.Split(opts, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return Fault{}, fmt.Errorf("fault %q: %q is not key=value", s, kv)
			}
			var err error
			switch k {
			case "rate":
				f.Rate, err = strconv.ParseFloat(v, 64)
			case "at":
				var n uint64
				n, err = strconv.ParseUint(v, 10, 32)
				f.At = uint32(n)
			case "for":
				f.For, err = time.ParseDuration(v)
			case "delay":
				f.Delay, err = time.ParseDuration(v)
			case "after":
				var n uint64
				n, err = strconv.ParseUint(v, 10, 32)
				f.After = uint32(n)
			default:
				return Fault{}, fmt.Errorf("fault %q: unknown key %q (rate, at, for, delay, after)", s, k)
			}
			if err != nil {
				return Fault{}, fmt.Errorf("fault %q: %s: %w", s, k, err)
			}
		}
	}
	if err := f.validate("fault"); err != nil {
		return Fault{}, err
	}
	return f, nil
}

func (f Fault) validate(p string) error {
	if !f.Kind.known() {
		all := FaultKinds()
		names := make([]string, len(all))
		for i, k := range all {
			names[i] = string(k)
		}
		return fmt.Errorf("%s: kind %q is unknown (%s)", p, f.Kind, strings.Join(names, ", "))
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("%s (%s): rate %g is outside 0..1", p, f.Kind, f.Rate)
	}
	if (f.Rate == 0) == (f.At == 0) {
		return fmt.Errorf("%s (%s): give exactly one of rate (per unit) or at (item id)", p, f.Kind)
	}
	if f.For < 0 || f.Delay < 0 {
		return fmt.Errorf("%s (%s): for/delay must not be negative", p, f.Kind)
	}
	return nil
}

// WithDefaults fills zero settings.
func (c Config) WithDefaults() Config {
	if c.Rate == 0 {
		c.Rate = 600
	}
	if c.Positions.Printer == 0 {
		c.Positions.Printer = 20 * time.Millisecond
	}
	if c.Positions.Camera == 0 {
		c.Positions.Camera = 40 * time.Millisecond
	}
	if c.Positions.Gate == 0 {
		c.Positions.Gate = 100 * time.Millisecond
	}
	if c.Positions.Labeler == 0 {
		c.Positions.Labeler = 50 * time.Millisecond
	}
	if c.Positions.LabelScanner == 0 {
		c.Positions.LabelScanner = 30 * time.Millisecond
	}
	if c.ControllerWatchdog == nil {
		d := DefaultControllerWatchdog
		c.ControllerWatchdog = &d
	}
	if c.LabelTimeout == 0 {
		c.LabelTimeout = 2 * time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 100 * time.Millisecond
	}
	if c.Labellers == "" {
		c.Labellers = LabellersPerLevel
	}
	fs := make([]Fault, len(c.Faults))
	for i, f := range c.Faults {
		if f.For == 0 {
			f.For = time.Second
		}
		if f.Delay == 0 {
			f.Delay = 50 * time.Millisecond
		}
		fs[i] = f
	}
	c.Faults = fs
	return c
}

// MaxRate is the fastest belt the simulator takes, in units per minute: a
// unit every 2 ms. The belt keeps its rate as long as its event loop keeps
// up (nextDue): on session 22's machine it made 11,885 units/min asked for
// 12,000 and 14,782 asked for 15,000. Faster than about 15,000 on the
// default 100 ms from trigger to gate, more units are between the two than
// the PLC's 32-outcome gate ring leaves room for, and the ring holds the
// infeed (docs/devices.md, B.3) as a real PLC's would: the ground truth's
// infeed says so (held_slots, rate_per_min), and bench line does not count
// such a run. The cap was 6,000 until session 21 and 12,000 until session 22.
const MaxRate = 30000

// Validate says what is wrong, naming the setting.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Rate < 1 || c.Rate > MaxRate {
		bad("linesim.rate: %g units/min is outside 1..%d", c.Rate, MaxRate)
	}
	if c.Units < 0 {
		bad("linesim.units: %d is negative", c.Units)
	}
	p := c.Positions
	if p.Printer <= 0 || p.Camera <= p.Printer || p.Gate <= p.Camera {
		bad("linesim.positions: need 0 < printer (%s) < camera (%s) < gate (%s)", p.Printer, p.Camera, p.Gate)
	}
	if p.Labeler <= 0 {
		bad("linesim.positions.labeler: %s must be positive", p.Labeler)
	}
	if p.LabelScanner <= 0 {
		bad("linesim.positions.label_scanner: %s must be positive (time from the label applied to the label scanner)", p.LabelScanner)
	}
	if w := *c.ControllerWatchdog; w < 0 || w > time.Hour || (w > 0 && w < time.Millisecond) {
		bad("linesim.controller_watchdog: %s is outside 1ms..1h (0s = off)", w)
	}
	for i, r := range c.Ratios {
		if r < 1 || r > 10000 {
			bad("linesim.ratios[%d]: %d is outside 1..10000", i, r)
		}
	}
	if len(c.Ratios) > 4 {
		bad("linesim.ratios: %d levels above the unit; at most 4", len(c.Ratios))
	}
	if c.Heartbeat < time.Millisecond {
		bad("linesim.heartbeat: %s is shorter than 1ms", c.Heartbeat)
	}
	switch c.Labellers {
	case LabellersPerLevel, LabellersShared:
	default:
		bad("linesim.labellers: %q is neither per-level (a label printer and a labeller per level) nor shared (one for every level)", c.Labellers)
	}
	for name, a := range map[string]string{"modbus": c.Listen.Modbus, "plc_opcua": c.Listen.PLCOPCUA,
		"printer": c.Listen.Printer, "camera": c.Listen.Camera, "agg_camera": c.Listen.AggCamera,
		"label_printer": c.Listen.Label, "label_scanner": c.Listen.LabelScanner, "http": c.Listen.HTTP} {
		if a == "" || ((name == "http" || name == "plc_opcua") && a == "off") {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("linesim.listen.%s: %q is not host:port", name, a)
		}
	}
	for i, f := range c.Faults {
		if err := f.validate(fmt.Sprintf("linesim.faults[%d]", i)); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Listen.Proxies {
	case "", "on":
	case "off":
		for i, f := range c.Faults {
			if f.Kind.IsLinkFault() {
				bad("linesim.faults[%d] (%s): a link fault needs the proxies (linesim.listen.proxies is off)", i, f.Kind)
			}
		}
		for name, a := range map[string]string{"modbus": c.Listen.Modbus, "printer": c.Listen.Printer, "camera": c.Listen.Camera,
			"agg_camera": c.Listen.AggCamera, "label_printer": c.Listen.Label, "label_scanner": c.Listen.LabelScanner} {
			if a != "" {
				bad("linesim.listen.%s: %q: with proxies off the device's own server picks its port; leave it empty", name, a)
			}
		}
		if a := c.Listen.PLCOPCUA; a != "" && a != "off" {
			bad("linesim.listen.plc_opcua: %q: with proxies off the device's own server picks its port; leave it empty or off", a)
		}
	default:
		bad("linesim.listen.proxies: %q is neither on nor off", c.Listen.Proxies)
	}
	return errors.Join(errs...)
}
