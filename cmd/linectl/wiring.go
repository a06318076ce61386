package main

// Wiring of a line controller: the config file of `linectl run`, the
// drivers it names, and the adapters that turn driver events into line
// events. Everything is built here, from decoded config, in one place.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

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

// controller is one line controller: drivers, ledger and runner.
type controller struct {
	cfg      *lineFile
	products map[string]*tracecode.Product
	store    *aggregation.Store
	log      *slog.Logger
	line     *line.Line
	lineCfg  line.LineConfig

	plc      interface{ plc.PLC }
	coder    *printeropcua.Printer
	cam      *cameraopcua.Camera
	aggCams  []*cameraopcua.Camera
	scanners []*cameraopcua.Camera
	labels   printer.Labeler // the labellers' printers: printer.ByLevel, or one *zpl.Printer for every level
	rework   printer.Labeler
	closers  []func() error
	watch    *devWatch              // links, signal values, counters (overview, engineer)
	eng      *engineering           // the engineer's access (test actions)
	disk     *aggregation.DiskGuard // the ledger's disk (nil: an in-memory ledger)
}

// configUser is who starts an old-style config file's batch.
const configUser = "linectl-config"

// newController connects to every device and builds the line on them,
// with products (the config's, loaded by the caller) as its master data.
// The ledger's open batch of this line, if any, is resumed; an old-style
// batch section is started if the ledger does not know it (config.go). On
// error, whatever was opened is closed.
func newController(ctx context.Context, f *lineFile, products map[string]*tracecode.Product, store *aggregation.Store, log *slog.Logger) (_ *controller, err error) {
	c := &controller{cfg: f, products: products, store: store, log: log, watch: newDevWatch()}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	mcfg, err := f.machineConfig()
	if err != nil {
		return nil, err
	}
	if err := f.Devices.checkLabelSymbologies(products); err != nil {
		return nil, err
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	c.checkMargin()
	lc := line.LineConfig{Line: f.Line, Machine: mcfg, Products: products,
		Devices:      line.Devices{PLC: plcVerdicts{c.plc}, Printer: coderAdapter{c.coder}, Signals: plcSignals{p: c.plc}, AggCounters: c.aggCounters()},
		BatchDevices: c.batchDevices, Links: c.links(), Engineering: lineEngineering{c.engineering(), deviceConfigs(f.Devices)}}
	c.lineCfg = lc
	if store.Dir() != "" {
		if c.disk, err = store.DiskGuard(f.Settings.LedgerDisk); err != nil {
			return nil, err
		}
	}
	if c.line, err = line.NewLine(ctx, lc, store, log); err != nil {
		return nil, err
	}
	if f.Batch != nil {
		if err := c.configBatch(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Line is the controller's line.
func (c *controller) Line() *line.Line { return c.line }

// batchDevices gives a batch its devices: its code source, and label
// printers that put its product, number and expiry on the labels.
func (c *controller) batchDevices(ctx context.Context, spec aggregation.BatchSpec) (line.Devices, error) {
	_, p, err := c.lineCfg.ProductOf(spec)
	if err != nil {
		return line.Devices{}, err
	}
	codes, err := line.NewPoolSource(p, c.store, spec.ID)
	if err != nil {
		return line.Devices{}, err
	}
	if c.eng != nil && c.eng.testPrinted.Load() {
		// An engineer's test print may still be in the printer's buffer:
		// never on a unit of this batch.
		if _, err := c.coder.Flush(ctx); err != nil {
			return line.Devices{}, fmt.Errorf("printer: emptying its buffer of test prints: %w", err)
		}
		c.eng.testPrinted.Store(false)
		c.log.Info("printer buffer emptied of test prints before the batch", "batch", spec.ID)
	}
	d := line.Devices{Codes: codes}
	if c.labels != nil {
		d.Labels = &labelAdapter{p: c.labels, product: p, batch: spec.ID, expiry: spec.Order.Expiry}
	}
	if c.rework != nil {
		d.ReworkLabels = &labelAdapter{p: c.rework, product: p, batch: spec.ID, expiry: spec.Order.Expiry}
	}
	return d, nil
}

// configBatch starts an old-style config file's batch section if the
// ledger does not know that batch (see config.go).
func (c *controller) configBatch(ctx context.Context) error {
	b := c.cfg.Batch
	sum, err := c.store.Summary(ctx, b.ID)
	switch {
	case err == nil:
		if sum.State == aggregation.BatchOpen && sum.Line == c.cfg.Line {
			return nil // resumed by the line, as any open batch
		}
		c.log.Warn("the config's batch section is ignored: the ledger has that batch already; remove the section and start the next batch from the HMI",
			"batch", b.ID, "state", sum.State, "line", sum.Line)
		return nil
	case !errors.Is(err, aggregation.ErrNotFound):
		return err
	}
	if ov := c.line.Snapshot(); !ov.Ready && ov.Batch != nil {
		c.log.Warn("the config's batch section is ignored: another batch is open on the line; complete it first",
			"batch", b.ID, "open", ov.Batch.ID)
		return nil
	}
	if _, err := c.line.StartBatch(ctx, c.cfg.workOrder(), configUser); err != nil {
		return fmt.Errorf("batch (the config's batch section): %w", err)
	}
	c.log.Info("started the config's batch section as a work order (old-style config: batches start from the HMI)", "batch", b.ID)
	return nil
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
	if rp := d.reworkPrinter(); rp != nil {
		if c.rework, err = c.connectZPL(ctx, *rp, reworkPrinterName); err != nil {
			return err
		}
	}
	if c.scanners, err = c.connectCameras(ctx, d.LabelScanners, labelScannerName); err != nil {
		return err
	}
	if d.LabelPrinter != nil {
		p, err := c.connectZPL(ctx, *d.LabelPrinter, sharedLabelPrinterName)
		if err != nil {
			return err
		}
		c.labels = p
	}
	if len(d.LabelPrinters) > 0 {
		// A labeller per level: each level's labels on its own printer.
		by := printer.ByLevel{}
		for i, cfg := range d.LabelPrinters {
			level := tracecode.Level(i + 2)
			if cfg.Name == "" {
				cfg.Name = labelPrinterName(level)
			}
			p, err := c.connectZPL(ctx, cfg, cfg.Name)
			if err != nil {
				return err
			}
			by[level] = p
		}
		c.labels = by
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

// connectZPL makes a ZPL label printer, closed with the controller,
// connects it (retrying as every device does) and puts it on the overview
// as dev.
func (c *controller) connectZPL(ctx context.Context, cfg zpl.Config, dev string) (printer.Labeler, error) {
	p, err := zpl.New(cfg, c.log)
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, p.Close)
	if err := retryConnect(ctx, c.log, dev, p.Connect); err != nil {
		return nil, err
	}
	c.watch.declare(dev)
	return watchedLabeler{p, c.watch, dev}, nil
}

// The overview's names of the rework station's printer and of the one
// printer of every level's labels (the older form).
const (
	reworkPrinterName      = "rework-label-printer"
	sharedLabelPrinterName = "label-printer"
)

// labelPrinterName is the name of level l's labeller's printer (in its
// errors, and so in the labeller's alarm) unless its config names it.
func labelPrinterName(l tracecode.Level) string { return fmt.Sprintf("label-printer-%s", l) }

// Run pumps device events into the runner and runs it until ctx ends.
func (c *controller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	pump := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	pump(func() { pumpPLC(ctx, c.plc.Events(), c.watch, c.line.Post) })
	pump(func() { pumpPrinter(ctx, c.coder.Events(), c.watch, c.line.Post) })
	pump(func() { pumpCamera(ctx, "camera", 0, c.cam.Events(), c.watch, c.line.Post) })
	for i, ac := range c.aggCams {
		level := tracecode.Level(i + 2)
		name := aggCameraName(level)
		pump(func() { pumpCamera(ctx, name, level, ac.Events(), c.watch, c.line.Post) })
	}
	for i, sc := range c.scanners {
		level := tracecode.Level(i + 2)
		pump(func() { pumpLabelScanner(ctx, level, sc.Events(), c.watch, c.line.Post) })
	}
	if c.disk != nil {
		pump(func() { c.disk.Run(ctx, c.line.LedgerDisk) })
	}
	err := c.line.Run(ctx)
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
			post(line.GateOutcome{Stamp: stamp(e.At), Item: e.Item, Outcome: line.Gate(e.Outcome), Seq: e.Seq})
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

// pumpCamera posts a camera's events: level is the level of the groups an
// aggregation camera reads (0: the units' vision camera).
func pumpCamera(ctx context.Context, name string, level tracecode.Level, evs <-chan camera.Event, w *devWatch, post func(line.Event)) {
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
				post(line.AggRead{Stamp: stamp(e.At), Level: tracecode.Level(r.Level), Reads: reads, Seq: r.Seq})
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
			if level >= 2 {
				post(line.AggReset{Stamp: stamp(e.At), Level: level})
			}
			post(line.DeviceFault{Stamp: stamp(e.At), Device: name, Err: "result counter went backwards (camera restarted)"})
		}
	})
}

// aggCounters are the aggregation cameras by the level of the groups they
// read, for the purge's marks (nil without any).
func (c *controller) aggCounters() map[tracecode.Level]line.ResultCounter {
	if len(c.aggCams) == 0 {
		return nil
	}
	m := make(map[tracecode.Level]line.ResultCounter, len(c.aggCams))
	for i, ac := range c.aggCams {
		m[tracecode.Level(i+2)] = ac
	}
	return m
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

// AckGate writes the gate ring's acknowledgement (plc.signals.gate_ack):
// the last outcome journaled, mod 65536. A PLC without it: nothing to do.
func (a plcSignals) AckGate(ctx context.Context, seq uint64) error {
	if err := a.p.Set(ctx, plc.OutGateAck, int(seq%65536)); err != nil && !errors.Is(err, plc.ErrNoSignal) {
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
	batch   string
	expiry  string // YYYY-MM-DD
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
		Batch: a.batch, Expiry: a.expiry, Count: children, Level: l})
}

func (a *labelAdapter) PrintRework(ctx context.Context, l tracecode.Level, reason string) error {
	title := "REWORK 返工 " + l.String()
	if ls, ok := a.product.Level(l); ok && ls.Name != "" {
		title = "REWORK 返工 " + ls.Name
	}
	if r := []rune(reason); len(r) > 60 {
		reason = string(r[:60]) + "…"
	}
	return a.p.PrintLabel(ctx, printer.Label{Title: title, Product: reason, Batch: a.batch, Level: l})
}
