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
	// Rate in units per minute (default 600).
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
}

// Positions are the conveyor stations, as delays after the trigger.
type Positions struct {
	Printer time.Duration `yaml:"printer" json:"printer"` // default 20ms
	Camera  time.Duration `yaml:"camera" json:"camera"`   // default 40ms
	Gate    time.Duration `yaml:"gate" json:"gate"`       // default 100ms
	Labeler time.Duration `yaml:"labeler" json:"labeler"` // after a group is read; default 50ms
}

// Listen holds the addresses the devices are served on.
type Listen struct {
	Modbus    string `yaml:"modbus" json:"modbus"`
	PLCOPCUA  string `yaml:"plc_opcua" json:"plc_opcua"` // "off": the PLC speaks Modbus only (starts faster)
	Printer   string `yaml:"printer" json:"printer"`
	Camera    string `yaml:"camera" json:"camera"`
	AggCamera string `yaml:"agg_camera" json:"agg_camera"`
	Label     string `yaml:"label_printer" json:"label_printer"`
	HTTP      string `yaml:"http" json:"http"` // ground truth; "off" disables
}

// FaultKind names an injectable fault.
type FaultKind string

// Fault kinds. Unit faults act on one unit; link faults act on a device's
// connection for a duration.
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
)

var unitFaults = []FaultKind{FaultNoRead, FaultLowGrade, FaultCameraLost, FaultSkipPrint, FaultDuplicate, FaultMissing}
var linkFaults = []FaultKind{FaultPLCDown, FaultPrinterDown, FaultCameraDown, FaultPLCSlow, FaultPrinterSlow, FaultCameraSlow, FaultPLCStall, FaultCameraStall, FaultPrinterStall}

// IsUnitFault says whether k acts on one unit.
func (k FaultKind) IsUnitFault() bool {
	for _, u := range unitFaults {
		if u == k {
			return true
		}
	}
	return false
}

func (k FaultKind) known() bool {
	if k.IsUnitFault() {
		return true
	}
	for _, l := range linkFaults {
		if l == k {
			return true
		}
	}
	return false
}

// Fault is one injected fault: at a rate (per unit) or at a moment (the
// unit with item id At). Link faults last For and, for slow-*, add Delay to
// every chunk of the device's traffic.
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
		all := append(append([]FaultKind{}, unitFaults...), linkFaults...)
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
	if c.LabelTimeout == 0 {
		c.LabelTimeout = 2 * time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 100 * time.Millisecond
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

// Validate says what is wrong, naming the setting.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Rate < 1 || c.Rate > 6000 {
		bad("linesim.rate: %g units/min is outside 1..6000", c.Rate)
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
	for name, a := range map[string]string{"modbus": c.Listen.Modbus, "plc_opcua": c.Listen.PLCOPCUA,
		"printer": c.Listen.Printer, "camera": c.Listen.Camera, "agg_camera": c.Listen.AggCamera,
		"label_printer": c.Listen.Label, "http": c.Listen.HTTP} {
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
	return errors.Join(errs...)
}
