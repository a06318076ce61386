package main

// Wiring of a line controller: the config file of `linectl run`, the
// drivers it names, and the adapters that turn driver events into line
// events. Everything is built here, from decoded config, in one place.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/camera"
	cameraopcua "github.com/tracline/tracline/camera/opcua"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/plc"
	plcmodbus "github.com/tracline/tracline/plc/modbus"
	plcopcua "github.com/tracline/tracline/plc/opcua"
	"github.com/tracline/tracline/printer"
	printeropcua "github.com/tracline/tracline/printer/opcua"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

// lineFile is the config of `linectl run`: which product and batch, the
// line's settings, and every device's profile.
type lineFile struct {
	Line     string       `yaml:"line"`
	Product  string       `yaml:"product"` // product file, relative to this file
	Batch    batchFile    `yaml:"batch"`
	Settings settingsFile `yaml:"settings"`
	Devices  devicesFile  `yaml:"devices"`

	dir string // directory of the config file
}

type batchFile struct {
	ID             string `yaml:"id"`
	ProductionDate string `yaml:"production_date"` // YYYY-MM-DD
	Expiry         string `yaml:"expiry"`          // YYYY-MM-DD
	Planned        int    `yaml:"planned"`         // level-1 units
	Workshop       string `yaml:"workshop"`
	Manager        string `yaml:"manager"`
	// Levels is how many packaging levels this line aggregates (1 = units
	// only; default: all the product's levels).
	Levels int `yaml:"levels"`
}

type settingsFile struct {
	// Gate is the time from the trigger photo-eye to the reject gate
	// (default 100ms). Margin is taken off it for the controller's own
	// deadline: the trigger's detection delay (a Modbus poll period, an OPC
	// UA publishing interval) plus a safety margin (default 20ms).
	Gate          time.Duration `yaml:"gate"`
	Margin        time.Duration `yaml:"margin"`
	PrinterBuffer int           `yaml:"printer_buffer"` // codes kept in the printer (default 8)
	AllocChunk    int           `yaml:"alloc_chunk"`    // codes allocated at a time (default 200)
	Challenge     []string      `yaml:"challenge"`      // expected outcomes of the test units, in order
	MinGrade      string        `yaml:"min_grade"`      // default: the level-1 rule's
	// GateTimeout: how long after a unit reached the gate its outcome
	// (plc.signals.gate_outcome) may take before its code is taken back
	// (default 2s).
	GateTimeout time.Duration `yaml:"gate_timeout"`
	// LabelMismatchHold: groups in a row carrying a label not theirs that
	// hold the line (default 2).
	LabelMismatchHold int `yaml:"label_mismatch_hold"`
}

type devicesFile struct {
	PLC          plc.Config           `yaml:"plc"`
	Printer      printeropcua.Config  `yaml:"printer"`
	Camera       cameraopcua.Config   `yaml:"camera"`
	AggCameras   []cameraopcua.Config `yaml:"aggregation_cameras"` // [0] reads level-2 groups, [1] level 3, …
	LabelPrinter *zpl.Config          `yaml:"label_printer"`
	// ReworkLabelPrinter is the rework station's label printer: reprints of
	// a parent's label go there, never to the in-line labeller's printer.
	ReworkLabelPrinter *zpl.Config `yaml:"rework_label_printer"`
	// LabelScanners read each labelled group after the labeller (its label
	// and its children's codes): [0] level 2, [1] level 3, …
	LabelScanners []cameraopcua.Config `yaml:"label_scanners"`
}

// loadLineFile reads and validates a controller config file.
func loadLineFile(path string) (*lineFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f lineFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty config file", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.dir = filepath.Dir(path)
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

func (f *lineFile) validate() error {
	var errs []error
	if f.Line == "" {
		errs = append(errs, errors.New("line: must name the line"))
	}
	if f.Product == "" {
		errs = append(errs, errors.New("product: must name the product file"))
	}
	if f.Batch.ID == "" {
		errs = append(errs, errors.New("batch.id: must be set"))
	}
	if f.Batch.Planned < 0 {
		errs = append(errs, fmt.Errorf("batch.planned: %d is negative", f.Batch.Planned))
	}
	if f.Batch.Levels < 0 || f.Batch.Levels > int(tracecode.MaxLevel) {
		errs = append(errs, fmt.Errorf("batch.levels: %d is outside 1..%d (0: all the product's levels)", f.Batch.Levels, tracecode.MaxLevel))
	}
	for _, d := range []struct{ field, v string }{{"batch.production_date", f.Batch.ProductionDate}, {"batch.expiry", f.Batch.Expiry}} {
		if d.v == "" {
			continue
		}
		if _, err := time.Parse("2006-01-02", d.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a date YYYY-MM-DD", d.field, d.v))
		}
	}
	if err := f.Devices.PLC.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := f.Devices.Printer.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := f.Devices.Camera.Validate(); err != nil {
		errs = append(errs, err)
	}
	for i, c := range f.Devices.AggCameras {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("aggregation_cameras[%d]: %w", i, err))
		}
	}
	if f.Devices.LabelPrinter != nil {
		if err := f.Devices.LabelPrinter.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if f.Devices.ReworkLabelPrinter != nil {
		if err := f.Devices.ReworkLabelPrinter.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rework_label_printer: %w", err))
		}
	}
	for i, c := range f.Devices.LabelScanners {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("label_scanners[%d]: %w", i, err))
		}
	}
	if len(f.Devices.LabelScanners) > 0 && f.Devices.LabelPrinter == nil {
		errs = append(errs, errors.New("label_scanners: a label scanner verifies printed labels, but no label_printer is configured"))
	}
	if _, err := f.machineConfig(nil); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// machineConfig turns settings (and the product's ratios) into the
// machine's config. p may be nil for a syntax check.
func (f *lineFile) machineConfig(p *tracecode.Product) (line.Config, error) {
	s := f.Settings
	if s.Gate == 0 {
		s.Gate = 100 * time.Millisecond
	}
	if s.Margin == 0 {
		s.Margin = 20 * time.Millisecond
	}
	if s.Margin >= s.Gate {
		return line.Config{}, fmt.Errorf("settings.margin: %s leaves nothing of gate %s", s.Margin, s.Gate)
	}
	cfg := line.Config{Deadline: s.Gate - s.Margin, PrinterBuffer: s.PrinterBuffer, AllocChunk: s.AllocChunk,
		Planned: uint64(f.Batch.Planned), Ratios: map[tracecode.Level]int{},
		GateConfirm: f.gateConfirm(), GateTimeout: s.GateTimeout, LabelMismatchHold: s.LabelMismatchHold}
	if s.GateTimeout < 0 {
		return cfg, fmt.Errorf("settings.gate_timeout: %s is negative", s.GateTimeout)
	}
	if s.LabelMismatchHold < 0 {
		return cfg, fmt.Errorf("settings.label_mismatch_hold: %d is negative", s.LabelMismatchHold)
	}
	if cfg.PrinterBuffer == 0 {
		cfg.PrinterBuffer = 8
	}
	if cfg.AllocChunk == 0 {
		cfg.AllocChunk = 200
	}
	if s.MinGrade != "" {
		if len(s.MinGrade) != 1 {
			return cfg, fmt.Errorf("settings.min_grade: %q is not a grade A–F", s.MinGrade)
		}
		cfg.MinGrade = s.MinGrade[0]
	}
	for i, name := range s.Challenge {
		r, err := line.ParseReason(name)
		if err != nil {
			return cfg, fmt.Errorf("settings.challenge[%d]: %w", i, err)
		}
		cfg.Challenge = append(cfg.Challenge, line.ChallengeStep{Name: name, Expect: r})
	}
	if p != nil {
		if cfg.MinGrade == 0 {
			if g := p.Rule(1).MinGrade; g != "" {
				cfg.MinGrade = string(g)[0]
			}
		}
		for l := tracecode.Level(2); l <= f.levels(p); l++ {
			cfg.Ratios[l] = p.Ratio(l)
		}
		for i := range f.Devices.LabelScanners {
			l := tracecode.Level(i + 2)
			if cfg.LabelCheck == nil {
				cfg.LabelCheck = map[tracecode.Level]bool{}
			}
			cfg.LabelCheck[l] = true
		}
	}
	if err := cfg.Validate(); err != nil {
		// The machine names its fields as settings does (min_grade,
		// printer_buffer, alloc_chunk, …): say where they are in the file.
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				errs = append(errs, fmt.Errorf("settings.%w", e))
			}
		} else {
			errs = append(errs, fmt.Errorf("settings.%w", err))
		}
		return cfg, errors.Join(errs...)
	}
	return cfg, nil
}

// gateConfirm reports whether the PLC confirms each unit's gate outcome.
func (f *lineFile) gateConfirm() bool {
	_, ok := f.Devices.PLC.Signals[plc.SigGateOutcome]
	return ok
}

func (f *lineFile) levels(p *tracecode.Product) tracecode.Level {
	top := p.TopLevel()
	if f.Batch.Levels > 0 && tracecode.Level(f.Batch.Levels) < top {
		top = tracecode.Level(f.Batch.Levels)
	}
	return top
}

func (f *lineFile) productPath() string {
	if filepath.IsAbs(f.Product) {
		return f.Product
	}
	return filepath.Join(f.dir, f.Product)
}

// batchSpec is the ledger's view of the work order.
func (f *lineFile) batchSpec(p *tracecode.Product) aggregation.BatchSpec {
	spec := aggregation.BatchSpec{ID: f.Batch.ID, Product: p.PoolName(1), Line: f.Line,
		Order: aggregation.WorkOrder{BatchNumber: f.Batch.ID, ProductionDate: f.Batch.ProductionDate,
			Expiry: f.Batch.Expiry, PlannedQty: int64(f.Batch.Planned), Workshop: f.Batch.Workshop,
			Manager: f.Batch.Manager}}
	if name := p.GenericName; name != "" {
		spec.Product = name
	}
	for l := tracecode.Level(1); l <= f.levels(p); l++ {
		ls := aggregation.LevelSpec{Level: l, Scheme: p.Rule(l).Scheme}
		if l > 1 {
			ls.Ratio = p.Ratio(l)
		}
		ls.LabelCheck = l > 1 && int(l)-2 < len(f.Devices.LabelScanners)
		spec.Levels = append(spec.Levels, ls)
	}
	spec.GateConfirm = f.gateConfirm()
	return spec
}

// controller is one line controller: drivers, ledger and runner.
type controller struct {
	cfg     *lineFile
	product *tracecode.Product
	store   *aggregation.Store
	log     *slog.Logger
	runner  *line.Runner

	plc      interface{ plc.PLC }
	coder    *printeropcua.Printer
	cam      *cameraopcua.Camera
	aggCams  []*cameraopcua.Camera
	scanners []*cameraopcua.Camera
	labels   *zpl.Printer
	rework   *zpl.Printer
	closers  []func() error
	watch    *devWatch // links, signal values, counters (overview, engineer)
}

// newController connects to every device and opens (or creates) the batch
// of product (f.Product, loaded by the caller). On error, whatever was
// opened is closed.
func newController(ctx context.Context, f *lineFile, product *tracecode.Product, store *aggregation.Store, log *slog.Logger) (_ *controller, err error) {
	c := &controller{cfg: f, product: product, store: store, log: log, watch: newDevWatch()}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	mcfg, err := f.machineConfig(c.product)
	if err != nil {
		return nil, err
	}
	if err := c.ensureBatch(ctx); err != nil {
		return nil, err
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	c.checkMargin()
	codes, err := newCodeSource(c.product, store, f.Batch.ID)
	if err != nil {
		return nil, err
	}
	dev := line.Devices{PLC: plcVerdicts{c.plc}, Printer: coderAdapter{c.coder}, Signals: plcSignals{p: c.plc}, Codes: codes}
	if c.labels != nil {
		dev.Labels = &labelAdapter{p: c.labels, product: c.product, batch: f.Batch}
	}
	if c.rework != nil {
		dev.ReworkLabels = &labelAdapter{p: c.rework, product: c.product, batch: f.Batch}
	}
	c.runner, err = line.NewRunner(ctx, line.RunnerConfig{Batch: f.Batch.ID, Line: f.Line, Machine: mcfg}, store, dev, log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Runner is the controller's line runner.
func (c *controller) Runner() *line.Runner { return c.runner }

func (c *controller) ensureBatch(ctx context.Context) error {
	if _, err := c.store.Summary(ctx, c.cfg.Batch.ID); err == nil {
		return nil
	} else if !errors.Is(err, aggregation.ErrNotFound) {
		return err
	}
	return c.store.CreateBatch(ctx, c.cfg.batchSpec(c.product), aggregation.Actor{Kind: aggregation.ActorSystem, ID: "linectl"})
}

// retryConnect connects a device, retrying with backoff until it answers
// or ctx ends: a controller started before its line is up waits for it.
func retryConnect(ctx context.Context, log *slog.Logger, name string, connect func(context.Context) error) error {
	wait := 200 * time.Millisecond
	for {
		err := connect(ctx)
		if err == nil {
			return nil
		}
		log.Warn("device not answering; retrying", "device", name, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", name, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// connect builds and connects every driver named in config.
func (c *controller) connect(ctx context.Context) error {
	d := c.cfg.Devices
	var p interface {
		plc.PLC
		Connect(context.Context) error
	}
	var err error
	switch d.PLC.Protocol {
	case plc.ProtoModbus:
		p, err = plcmodbus.New(d.PLC, c.log)
	case plc.ProtoOPCUA:
		p, err = plcopcua.New(d.PLC, c.log)
	default:
		return fmt.Errorf("plc.protocol: %q is not modbus or opcua", d.PLC.Protocol)
	}
	if err != nil {
		return err
	}
	c.closers = append(c.closers, p.Close)
	if err := retryConnect(ctx, c.log, "plc", p.Connect); err != nil {
		return err
	}
	c.plc = watchedPLC{p, c.watch}
	c.watch.declare("plc")
	if c.coder, err = printeropcua.New(d.Printer, c.log); err != nil {
		return err
	}
	c.closers = append(c.closers, c.coder.Close)
	if err := retryConnect(ctx, c.log, "printer", c.coder.Connect); err != nil {
		return err
	}
	c.watch.declare("printer")
	if c.cam, err = cameraopcua.New(d.Camera, c.log); err != nil {
		return err
	}
	c.closers = append(c.closers, c.cam.Close)
	if err := retryConnect(ctx, c.log, "camera", c.cam.Connect); err != nil {
		return err
	}
	c.watch.declare("camera")
	if c.aggCams, err = c.connectCameras(ctx, d.AggCameras, aggCameraName); err != nil {
		return err
	}
	if d.ReworkLabelPrinter != nil {
		if c.rework, err = zpl.New(*d.ReworkLabelPrinter, c.log); err != nil {
			return err
		}
		c.closers = append(c.closers, c.rework.Close)
		if err := retryConnect(ctx, c.log, "rework label printer", c.rework.Connect); err != nil {
			return err
		}
	}
	if c.scanners, err = c.connectCameras(ctx, d.LabelScanners, labelScannerName); err != nil {
		return err
	}
	if d.LabelPrinter != nil {
		if c.labels, err = zpl.New(*d.LabelPrinter, c.log); err != nil {
			return err
		}
		c.closers = append(c.closers, c.labels.Close)
		if err := retryConnect(ctx, c.log, "label printer", c.labels.Connect); err != nil {
			return err
		}
	}
	return nil
}

// checkMargin warns when the deadline margin does not cover how late the
// PLC's trigger can reach the controller: the poll period, or the
// publishing interval the OPC UA server granted (which may be longer than
// the one asked for).
func (c *controller) checkMargin() {
	ir, ok := c.plc.(plc.IntervalReporter)
	if !ok {
		return
	}
	margin := c.cfg.Settings.Margin
	if margin == 0 {
		margin = 20 * time.Millisecond
	}
	if iv := ir.PublishingInterval(); iv >= margin {
		c.log.Warn("settings.margin does not cover the PLC's trigger delay: a unit may reach the gate before its verdict (then it is rejected); raise settings.margin",
			"margin", margin, "plc_interval", iv)
	}
}

// connectCameras connects one camera per level, [0] being level 2's;
// name gives a level's camera its device name.
func (c *controller) connectCameras(ctx context.Context, cfgs []cameraopcua.Config, name func(tracecode.Level) string) ([]*cameraopcua.Camera, error) {
	var cams []*cameraopcua.Camera
	for i, cfg := range cfgs {
		cam, err := cameraopcua.New(cfg, c.log)
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, cam.Close)
		n := name(tracecode.Level(i + 2))
		if err := retryConnect(ctx, c.log, n, cam.Connect); err != nil {
			return nil, err
		}
		c.watch.declare(n)
		cams = append(cams, cam)
	}
	return cams, nil
}

// Device names (line.DeviceFault.Device, the overview's device list).
func aggCameraName(l tracecode.Level) string    { return fmt.Sprintf("aggregation-camera-L%d", l) }
func labelScannerName(l tracecode.Level) string { return fmt.Sprintf("label-scanner-%s", l) }

// Run pumps device events into the runner and runs it until ctx ends.
func (c *controller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	pump := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	pump(func() { pumpPLC(ctx, c.plc.Events(), c.watch, c.runner.Post) })
	pump(func() { pumpPrinter(ctx, c.coder.Events(), c.watch, c.runner.Post) })
	pump(func() { pumpCamera(ctx, "camera", c.cam.Events(), c.watch, c.runner.Post) })
	for i, ac := range c.aggCams {
		name := aggCameraName(tracecode.Level(i + 2))
		pump(func() { pumpCamera(ctx, name, ac.Events(), c.watch, c.runner.Post) })
	}
	for i, sc := range c.scanners {
		level := tracecode.Level(i + 2)
		pump(func() { pumpLabelScanner(ctx, level, sc.Events(), c.watch, c.runner.Post) })
	}
	err := c.runner.Run(ctx)
	wg.Wait()
	return err
}

// Close closes every driver, newest first.
func (c *controller) Close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	c.closers = nil
	return errors.Join(errs...)
}

func stamp(t time.Time) line.Stamp {
	if t.IsZero() {
		t = time.Now()
	}
	return line.Stamp{T: t}
}

// pump hands every event from a driver to handle until ctx ends or the
// driver closes its channel.
func pump[E any](ctx context.Context, evs <-chan E, handle func(E)) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-evs:
			if !ok {
				return
			}
			handle(e)
		}
	}
}

func pumpPLC(ctx context.Context, evs <-chan plc.Event, w *devWatch, post func(line.Event)) {
	gateRead := false // the driver's first read of the gate ring is done
	pump(ctx, evs, func(e plc.Event) {
		w.watchPLCEvent(e)
		switch e.Kind {
		case plc.EventItem:
			post(line.Trigger{Stamp: stamp(e.At), Item: e.Item})
		case plc.EventGap:
			// Items From..To are gone unseen; the next item's jump makes
			// the line reject them. Nothing else to do here.
		case plc.EventCounterReset:
			post(line.CounterReset{Stamp: stamp(e.At), Item: e.Item})
		case plc.EventLinkDown:
			post(line.DeviceFault{Stamp: stamp(e.At), Device: "plc", Err: errString(e.Err, "link down")})
		case plc.EventLinkUp:
			post(line.DeviceOK{Stamp: stamp(e.At), Device: "plc"})
		case plc.EventRunning:
		case plc.EventGate:
			gateRead = true
			post(line.GateOutcome{Stamp: stamp(e.At), Item: e.Item, Outcome: line.Gate(e.Outcome)})
		case plc.EventGateGap:
			// The first read of the ring starts with every outcome the PLC
			// counted before it (older than the ring): not lost, just old.
			if gateRead {
				post(line.GateLost{Stamp: stamp(e.At), N: uint64(e.To-e.From) + 1})
			}
		case plc.EventGateReset:
			// The PLC's ring restarted: units waiting for an outcome get
			// none and are resolved as unknown (by a later outcome or the
			// gate timeout).
		case plc.EventGateError:
			// Nonsense from the PLC: hold until the operator acknowledges.
			post(line.DeviceFault{Stamp: stamp(e.At), Device: "gate", Err: "gate outcome: " + errString(e.Err, "nonsense in the gate ring")})
		}
	})
}

// pumpLabelScanner turns a label scanner's results into LabelScan events.
func pumpLabelScanner(ctx context.Context, level tracecode.Level, evs <-chan camera.Event, w *devWatch, post func(line.Event)) {
	name := labelScannerName(level)
	pump(ctx, evs, func(e camera.Event) {
		w.watchCamera(name, e)
		switch e.Kind {
		case camera.EventResult:
			reads := make([]line.Read, 0, len(e.Result.Codes))
			for _, raw := range e.Result.Codes {
				reads = append(reads, parseRead(raw))
			}
			post(line.LabelScan{Stamp: stamp(e.At), Level: level, Reads: reads, Pass: e.Result.Pass})
		case camera.EventGap:
			// Groups passed unscanned: their parents stay unverified and
			// are taken out at batch end, or by the next group's check.
		case camera.EventDown:
			post(line.DeviceFault{Stamp: stamp(e.At), Device: name, Err: errString(e.Err, "link down")})
		case camera.EventUp:
			post(line.DeviceOK{Stamp: stamp(e.At), Device: name})
		case camera.EventReset:
			post(line.DeviceFault{Stamp: stamp(e.At), Device: name, Err: "result counter went backwards (scanner restarted)"})
		}
	})
}

func pumpPrinter(ctx context.Context, evs <-chan printer.Event, w *devWatch, post func(line.Event)) {
	pump(ctx, evs, func(e printer.Event) {
		w.watchPrinter(e)
		switch e.Kind {
		case printer.EventPrinted:
			post(line.Printed{Stamp: stamp(e.At), Code: e.Code})
		case printer.EventGap:
			post(line.PrintGap{Stamp: stamp(e.At), N: e.Lost})
		case printer.EventDown:
			post(line.DeviceFault{Stamp: stamp(e.At), Device: "printer", Err: errString(e.Err, "link down")})
		case printer.EventUp:
			post(line.DeviceOK{Stamp: stamp(e.At), Device: "printer"})
		case printer.EventReset:
			post(line.DeviceFault{Stamp: stamp(e.At), Device: "printer", Err: "print counter went backwards (printer restarted)"})
		}
	})
}

func pumpCamera(ctx context.Context, name string, evs <-chan camera.Event, w *devWatch, post func(line.Event)) {
	pump(ctx, evs, func(e camera.Event) {
		w.watchCamera(name, e)
		switch e.Kind {
		case camera.EventResult:
			r := e.Result
			reads := make([]line.Read, 0, len(r.Codes))
			for _, raw := range r.Codes {
				reads = append(reads, parseRead(raw))
			}
			if r.Level >= 2 {
				post(line.AggRead{Stamp: stamp(e.At), Level: tracecode.Level(r.Level), Reads: reads})
				return
			}
			post(line.CameraResult{Stamp: stamp(e.At), Item: r.Item, Reads: reads, Grade: r.Grade, Pass: r.Pass})
		case camera.EventGap:
			// The units concerned get no result and are rejected at
			// their deadline; nothing else to do.
		case camera.EventDown:
			post(line.DeviceFault{Stamp: stamp(e.At), Device: name, Err: errString(e.Err, "link down")})
		case camera.EventUp:
			post(line.DeviceOK{Stamp: stamp(e.At), Device: name})
		case camera.EventReset:
			post(line.DeviceFault{Stamp: stamp(e.At), Device: name, Err: "result counter went backwards (camera restarted)"})
		}
	})
}

// parseRead runs a camera's raw read through the one parser.
func parseRead(raw string) line.Read {
	p, err := tracecode.Parse(raw)
	if err != nil {
		return line.Read{Err: err.Error()}
	}
	return line.Read{Code: p.Code}
}

func errString(err error, def string) string {
	if err == nil {
		return def
	}
	return err.Error()
}

// plcVerdicts adapts a plc.PLC to the line's VerdictWriter.
type plcVerdicts struct{ p plc.PLC }

func (a plcVerdicts) WriteVerdict(ctx context.Context, item uint32, pass bool, reason uint16) error {
	res := plc.ResultReject
	if pass {
		res = plc.ResultPass
	}
	return a.p.WriteVerdict(ctx, plc.Verdict{Item: item, Result: res, Reason: reason})
}

// plcSignals shows the line's state on the PLC: stop request outside
// Execute, tower light, alarm. Signals the PLC does not map are skipped.
type plcSignals struct{ p plc.PLC }

func (a plcSignals) ShowState(ctx context.Context, st line.State, faults int) error {
	stop, tower := 1, plc.TowerAmber
	switch {
	case st == line.Execute:
		stop, tower = 0, plc.TowerGreen
	case faults > 0 || st == line.Aborted || st == line.Held:
		tower = plc.TowerRed
	}
	alarm := 0
	if faults > 0 {
		alarm = 1
	}
	var errs []error
	for _, o := range []struct {
		out plc.Output
		v   int
	}{{plc.OutStopRequest, stop}, {plc.OutTowerLight, int(tower)}, {plc.OutAlarm, alarm}} {
		if err := a.p.Set(ctx, o.out, o.v); err != nil && !errors.Is(err, plc.ErrNoSignal) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Alive writes the controller's heartbeat (plc.signals.controller_alive).
func (a plcSignals) Alive(ctx context.Context, n uint16) error {
	if err := a.p.Set(ctx, plc.OutControllerAlive, int(n)); err != nil && !errors.Is(err, plc.ErrNoSignal) {
		return err
	}
	return nil
}

// coderAdapter adapts a coding printer to the line's CodePrinter.
type coderAdapter struct{ c printer.Coder }

func (a coderAdapter) Enqueue(ctx context.Context, codes []tracecode.Code) ([]tracecode.Code, error) {
	err := a.c.Send(ctx, codes)
	if err == nil {
		return nil, nil
	}
	var se *printer.SendError
	if errors.As(err, &se) {
		return append(append([]tracecode.Code(nil), se.NotTaken...), se.Uncertain...), err
	}
	return codes, err
}

func (a coderAdapter) Flush(ctx context.Context) ([]tracecode.Code, error) {
	r, err := a.c.Flush(ctx)
	return r.Unconfirmed, err
}

// labelAdapter prints a parent's label with the product and batch on it.
type labelAdapter struct {
	p       printer.Labeler
	product *tracecode.Product
	batch   batchFile
}

func (a *labelAdapter) PrintLabel(ctx context.Context, l tracecode.Level, parent tracecode.Code, children int) error {
	title := l.String()
	if ls, ok := a.product.Level(l); ok && ls.Name != "" {
		title = ls.Name
	}
	name := a.product.GenericName
	if a.product.Strength != "" {
		name += " " + a.product.Strength
	}
	return a.p.PrintLabel(ctx, printer.Label{Code: parent, Title: title, Product: strings.TrimSpace(name),
		Batch: a.batch.ID, Expiry: a.batch.Expiry, Count: children, Level: l})
}

func (a *labelAdapter) PrintRework(ctx context.Context, l tracecode.Level, reason string) error {
	title := "REWORK 返工 " + l.String()
	if ls, ok := a.product.Level(l); ok && ls.Name != "" {
		title = "REWORK 返工 " + ls.Name
	}
	if r := []rune(reason); len(r) > 60 {
		reason = string(r[:60]) + "…"
	}
	return a.p.PrintLabel(ctx, printer.Label{Title: title, Product: reason, Batch: a.batch.ID, Level: l})
}

// codeSource allocates codes to the batch: from the level's pool for
// nmpa20, generated and registered for GS1 (regenerating any the ledger
// already knows — uniqueness across batches, lines and restarts).
type codeSource struct {
	product *tracecode.Product
	store   *aggregation.Store
	batch   string
	mu      sync.Mutex
	gens    map[tracecode.Level]*tracecode.Generator
}

func newCodeSource(p *tracecode.Product, store *aggregation.Store, batch string) (*codeSource, error) {
	cs := &codeSource{product: p, store: store, batch: batch, gens: map[tracecode.Level]*tracecode.Generator{}}
	for _, ls := range p.Levels {
		if !p.Coded(ls.Level) || p.Rule(ls.Level).Scheme == tracecode.SchemeNMPA20 {
			continue
		}
		g, err := tracecode.NewGenerator(p, ls.Level)
		if err != nil {
			return nil, err
		}
		cs.gens[ls.Level] = g
	}
	return cs, nil
}

var lineActor = aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"}

func (s *codeSource) Allocate(ctx context.Context, l tracecode.Level, n int) ([]tracecode.Code, error) {
	s.mu.Lock()
	g := s.gens[l]
	s.mu.Unlock()
	if g == nil {
		return s.store.AllocateFromPool(ctx, s.batch, l, s.product.PoolName(l), n, lineActor)
	}
	var out []tracecode.Code
	for tries := 0; len(out) < n; tries++ {
		if tries == 10 {
			return nil, fmt.Errorf("level %s: generated codes keep colliding with known ones (serial space exhausted?)", l)
		}
		s.mu.Lock()
		codes, err := g.Generate(n - len(out))
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		collided, err := s.store.AllocateGenerated(ctx, s.batch, l, codes, lineActor)
		if err != nil {
			return nil, err
		}
		bad := make(map[tracecode.Code]bool, len(collided))
		for _, c := range collided {
			bad[c] = true
		}
		for _, c := range codes {
			if !bad[c] {
				out = append(out, c)
			}
		}
	}
	return out, nil
}
