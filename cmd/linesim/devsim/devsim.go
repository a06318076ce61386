// Package devsim plays the line's coding printer, vision camera, aggregation
// cameras and ZPL label printers over real protocols on loopback, for
// cmd/linesim and for the drivers' tests. Only cmd/linesim and tests import it.
//
// Conveyor-facing API (called by cmd/linesim/sim's conveyor; the fault and
// label types are sim's):
//
//	func (p *Printer) PrintOnto(f sim.PrintFault) (onUnit string)
//	func (c *Camera) Inspect(item uint32, onUnit string, f sim.CameraFault)
//	func (a *AggCamera) Read(group uint32, codes []string)
//	func (l *LabelScanner) Scan(group uint32, label string, children []string)
//	func (l *LabelPrinter) NextLabel() (sim.Label, bool)
//
// NewDevices builds them all as a sim.Devices (use it with
// sim.WithDevices); each device can also be built on its own with
// NewPrinter, NewCamera, NewAggCamera, NewLabelScanner and NewLabelPrinter,
// then Start(ctx), Addr() and Close().
//
// Printer, cameras and label scanners are OPC UA servers (cmd/linesim/uasim). Every print
// record and camera result is published atomically as one JSON value in a
// last-record node, together with a counter and a ring of the last N records,
// so a client that misses notifications (the gopcua server sends one value per
// monitored item per publishing interval) detects the gap by the counter and
// reads the lost records back from the ring. The address space is documented
// in docs/devices-printer-camera.md.
package devsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// Config configures every simulated device of NewDevices.
type Config struct {
	Printer   PrinterConfig `yaml:"printer"`
	Camera    CameraConfig  `yaml:"camera"`
	AggCamera CameraConfig  `yaml:"agg_camera"` // one per level; Listen must be "" or host:0 when levels > 1
	// LabelPrinter: one per level (or one shared, sim.Layout); Listen
	// applies to level 2's (or the shared one), higher levels get any free
	// port.
	LabelPrinter LabelPrinterConfig `yaml:"label_printer"`
	// LabelScanner: one per level, like the aggregation cameras (Listen
	// applies to level 2; higher levels get any free port). Trigger must
	// be "" or "self"; LowGrade is not used.
	LabelScanner CameraConfig `yaml:"label_scanner"`
}

// Validate reports what is wrong with the config.
func (c Config) Validate() error {
	var scanner error
	if c.LabelScanner.Trigger == "method" {
		scanner = errors.New("devsim.label_scanner.trigger: a label scanner reads every group that passes; method is not supported")
	}
	return errors.Join(c.Printer.Validate(), c.Camera.Validate(), c.AggCamera.validate("devsim.agg_camera"), c.LabelPrinter.Validate(),
		c.LabelScanner.validate("devsim.label_scanner"), scanner)
}

// Device names used as keys of sim.Devices.Targets.
const (
	NamePrinter      = "printer"
	NameCamera       = "camera"
	NameAggCamera    = "agg_camera"    // level 2; higher levels: "agg_camera_3", …
	NameLabelPrinter = "label_printer" // level 2 (or the one shared); higher levels: "label_printer_3", …
	NameLabelScanner = "label_scanner" // level 2; higher levels: "label_scanner_3", …
)

// AggCameraName is the Targets key of the aggregation camera for level.
func AggCameraName(level int) string { return levelName(NameAggCamera, level) }

// LabelScannerName is the Targets key of the label scanner for level.
func LabelScannerName(level int) string { return levelName(NameLabelScanner, level) }

// LabelPrinterName is the Targets key of the label printer of level's
// labeller.
func LabelPrinterName(level int) string { return levelName(NameLabelPrinter, level) }

func levelName(name string, level int) string {
	if level == 2 {
		return name
	}
	return name + "_" + strconv.Itoa(level)
}

// Set is every simulated device, started.
type Set struct {
	Printer       *Printer
	Camera        *Camera
	AggCameras    []*AggCamera    // AggCameras[i] reads groups of level i+2
	LabelScanners []*LabelScanner // LabelScanners[i] scans labelled groups of level i+2
	// LabelPrinters[i] prints the labels of level i+2's labeller; with one
	// label printer for every level there is one.
	LabelPrinters []*LabelPrinter
}

// Close stops every device.
func (s *Set) Close() error {
	var errs []error
	if s.Printer != nil {
		errs = append(errs, s.Printer.Close())
	}
	if s.Camera != nil {
		errs = append(errs, s.Camera.Close())
	}
	for _, a := range s.AggCameras {
		errs = append(errs, a.Close())
	}
	for _, l := range s.LabelScanners {
		errs = append(errs, l.Close())
	}
	for _, l := range s.LabelPrinters {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// Start builds and starts every device of layout: the printer, the
// camera, one aggregation camera and one label scanner per level above the
// unit (layout.Levels = len(ratios)) and the label printers (one per
// level, or one shared). On error everything started is closed.
func Start(ctx context.Context, cfg Config, layout sim.Layout, log *slog.Logger) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	levels := layout.Levels
	if levels < 0 || levels > 8 {
		return nil, fmt.Errorf("devsim: %d aggregation levels is outside 0..8", levels)
	}
	if layout.LabelPrinters < 0 || layout.LabelPrinters > levels {
		return nil, fmt.Errorf("devsim: %d label printers for %d aggregation levels (one per level, or one shared)", layout.LabelPrinters, levels)
	}
	s := &Set{}
	fail := func(err error) (*Set, error) {
		s.Close()
		return nil, err
	}
	var err error
	if s.Printer, err = NewPrinter(cfg.Printer, log); err != nil {
		return fail(err)
	}
	if err = s.Printer.Start(ctx); err != nil {
		return fail(err)
	}
	if s.Camera, err = NewCamera(cfg.Camera, log); err != nil {
		return fail(err)
	}
	if err = s.Camera.Start(ctx); err != nil {
		return fail(err)
	}
	for i := 0; i < levels; i++ {
		ac := cfg.AggCamera
		if i > 0 {
			ac.Listen = ""
		}
		a, err := NewAggCamera(ac, i+2, log)
		if err != nil {
			return fail(err)
		}
		s.AggCameras = append(s.AggCameras, a)
		if err := a.Start(ctx); err != nil {
			return fail(err)
		}
		lc := cfg.LabelScanner
		if i > 0 {
			lc.Listen = ""
		}
		l, err := NewLabelScanner(lc, i+2, log)
		if err != nil {
			return fail(err)
		}
		s.LabelScanners = append(s.LabelScanners, l)
		if err := l.Start(ctx); err != nil {
			return fail(err)
		}
	}
	for i := 0; i < layout.LabelPrinters; i++ {
		lc := cfg.LabelPrinter
		if i > 0 {
			lc.Listen = ""
		}
		l, err := NewLabelPrinter(lc, log)
		if err != nil {
			return fail(err)
		}
		s.LabelPrinters = append(s.LabelPrinters, l)
		if err := l.Start(ctx); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// Devices returns the set as the conveyor's sim.Devices.
func (s *Set) Devices() *sim.Devices {
	d := &sim.Devices{
		Printer: s.Printer,
		Camera:  s.Camera,
		Targets: map[string]string{
			NamePrinter: s.Printer.Addr(),
			NameCamera:  s.Camera.Addr(),
		},
		Close: s.Close,
	}
	for i, a := range s.AggCameras {
		d.AggCameras = append(d.AggCameras, a)
		d.Targets[AggCameraName(i+2)] = a.Addr()
	}
	for i, l := range s.LabelScanners {
		d.LabelScanners = append(d.LabelScanners, l)
		d.Targets[LabelScannerName(i+2)] = l.Addr()
	}
	for i, l := range s.LabelPrinters {
		d.Labels = append(d.Labels, l)
		d.Targets[LabelPrinterName(i+2)] = l.Addr()
	}
	return d
}

// Factory returns a sim.DeviceFactory that starts the devices from cfg.
func Factory(cfg Config, log *slog.Logger) sim.DeviceFactory {
	return func(ctx context.Context, layout sim.Layout) (*sim.Devices, error) {
		s, err := Start(ctx, cfg, layout, log)
		if err != nil {
			return nil, err
		}
		return s.Devices(), nil
	}
}

func checkListen(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not 0..65535", addr, port)
	}
	return nil
}

func splitListen(addr string) (string, int) {
	if addr == "" {
		return "127.0.0.1", 0
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if host == "" {
		host = "127.0.0.1"
	}
	return host, p
}
