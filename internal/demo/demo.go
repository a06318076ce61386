// Package demo is linectl's demo and benchmark harness: a simulated line
// (cmd/linesim/sim with its device simulators, a rework station's label
// printer) with a controller wired to it, a batch run on it to the end, the
// batch report, and the comparison of the ledger with what physically
// happened on the line (the simulator's ground truth).
//
// It builds no driver itself: the controller comes from a Wire func the
// command gives (cmd/linectl's wiring), so the devices are connected
// exactly as `linectl run` connects them. The example product, its rules
// and code files come from package examples (embedded), so the demo runs
// from any directory. Imported by cmd/linectl and its tests only.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/examples"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// Options is one demo (or benchmark) run.
type Options struct {
	// Product is a product file on disk (its pools' code files are read
	// from codes/ beside it); "" is the embedded example, examples.GS1Product.
	Product string
	// Data is the data directory (the ledger is Data/ledger); "" makes a
	// fresh temporary one, which Close leaves for the report to name.
	Data  string
	Units int     // units the simulator runs (0: until stopped)
	Rate  float64 // line speed, units per minute
	Seed  uint64  // simulator seed: same seed, same faults on the same units
	// Faults are injected by the simulator (DefaultFaults for the demo's).
	Faults []sim.Fault
	// Gate is the time from the trigger photo-eye to the reject gate on the
	// simulated belt (default 100 ms).
	Gate time.Duration
	// LabelTimeout is the labeller's wait for a label after a group is read
	// (0: the simulator's 2 s).
	LabelTimeout time.Duration
	// Log receives the simulator's and the controller's log (nil: none).
	Log *slog.Logger
	// SimCommand, if set, runs the simulated line in a process of its own
	// started with this command (argv), which must serve it with ServeSim
	// (`linectl bench simproc`); nil runs it in this process. Sim() is then
	// nil: what needs the simulator in-process (Purge) is not available.
	SimCommand []string
	// SimNice is added to the simulator process's niceness (with SimCommand).
	SimNice int
	// SimProxies is the simulator's listen.proxies: "" (on) or "off" (every
	// device served directly; no link faults).
	SimProxies string
	// Handoff, if set, makes a headless run go on after its batch: QA's
	// release, activation, the documents delivered to the stand-in
	// receivers and checked against the ground truth (Report.Handoff).
	Handoff HandoffWire
}

func (o *Options) defaults() {
	if o.Rate == 0 {
		o.Rate = 600
	}
	if o.Gate == 0 {
		o.Gate = 100 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate checks the options a user gives on the command line.
func (o *Options) Validate() error {
	var errs []error
	if o.Units < 0 {
		errs = append(errs, fmt.Errorf("units: %d is negative", o.Units))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate: %g units/min is negative", o.Rate))
	}
	if o.Gate < 0 {
		errs = append(errs, fmt.Errorf("gate: %s is negative", o.Gate))
	}
	return errors.Join(errs...)
}

// DefaultFaults are the demo's: every unit fault at a realistic rate, with
// the challenge test's test units first (items 1..4, see Challenge).
func DefaultFaults() []sim.Fault {
	const after = 4
	return []sim.Fault{
		{Kind: sim.FaultNoRead, At: 2}, {Kind: sim.FaultLowGrade, At: 3}, {Kind: sim.FaultDuplicate, At: 4},
		{Kind: sim.FaultNoRead, Rate: 0.01, After: after},
		{Kind: sim.FaultLowGrade, Rate: 0.005, After: after},
		{Kind: sim.FaultSkipPrint, Rate: 0.003, After: after},
		{Kind: sim.FaultDuplicate, Rate: 0.002, After: after},
		{Kind: sim.FaultMissing, Rate: 0.002, After: after},
		{Kind: sim.FaultCameraLost, Rate: 0.002, After: after},
	}
}

// Challenge is the demo line's challenge test: the expected outcome of
// each test unit, matching DefaultFaults' first three faults.
func Challenge() []string { return []string{"pass", "no-read", "low-grade", "duplicate"} }

// Setup is what a controller is wired to on the simulated line.
type Setup struct {
	Line        string             // the line's name in the ledger
	Product     *tracecode.Product // loaded master data
	ProductKey  string             // its key in the master data (work orders name it)
	ProductFile string             // Options.Product ("" for the embedded example)
	// Devices are the simulator's endpoints; ReworkLabelPrinter is the
	// rework station's label printer (host:port, "" if the product has no
	// labelled level).
	Devices            sim.Endpoints
	ReworkLabelPrinter string
	Gate               time.Duration
	Challenge          []string
	// EPCISReceiver and PlatformReceiver are the stand-in receivers of the
	// hand-off (handoff/receiver), base URLs: the demo's outbox endpoints.
	EPCISReceiver, PlatformReceiver string
	// Batch is the work order of the batch a headless run starts
	// (StartBatch); the interactive demo leaves starting one to the operator.
	Batch line.WorkOrder
}

// Controller is a line controller the wiring built: Run pumps device
// events into its line until ctx ends; Close closes its drivers.
type Controller interface {
	Line() *line.Line
	Run(ctx context.Context) error
	Close() error
}

// Wire builds and connects a controller for s on store. It is called again
// after StopController, on the same Setup.
type Wire func(ctx context.Context, s *Setup, store *aggregation.Store, log *slog.Logger) (Controller, error)

// Line is a simulated line with a controller on it.
type Line struct {
	o      Options
	wire   Wire
	dir    string
	store  *aggregation.Store
	sim    *sim.Sim             // the simulator in this process (nil with Options.SimCommand)
	line   simulator            // the simulator, here or in its own process
	rework *devsim.LabelPrinter // the rework station's label printer
	// The hand-off's stand-in receivers: they check what they get (the
	// EPCIS JSON against the GS1 schema, counts) and say so.
	capture  *receiver.Capture
	platform *receiver.Platform
	setup    *Setup
	ctrl     Controller
	runErr   chan error
	cancel   context.CancelFunc
}

// ProductKey is the master-data key of the product file (the file's name
// without .yaml; the embedded example's for "").
func ProductKey(file string) string {
	if file == "" {
		file = examples.GS1Product
	}
	return strings.TrimSuffix(filepath.Base(file), ".yaml")
}

// LoadProduct loads the product named by Options.Product and the file
// system its pools' code files are in (codes/<product id>-L<n>.txt):
// the embedded examples for "".
func LoadProduct(file string) (*tracecode.Product, fs.FS, error) {
	if file == "" {
		data, err := fs.ReadFile(examples.FS, examples.GS1Product)
		if err != nil {
			return nil, nil, err
		}
		p, err := tracecode.ParseProduct(examples.GS1Product, data)
		return p, examples.FS, err
	}
	p, err := tracecode.LoadProduct(file)
	if err != nil {
		return nil, nil, err
	}
	return p, os.DirFS(filepath.Dir(file)), nil
}

// Start starts the simulator (stopped: the line runs when the controller
// says so) and a controller wired to it, running. Close stops both (the
// controller first, as a crash would).
func Start(ctx context.Context, o Options, wire Wire) (_ *Line, err error) {
	o.defaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d := &Line{o: o, wire: wire, runErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	product, codes, err := LoadProduct(o.Product)
	if err != nil {
		return nil, err
	}
	if d.dir = o.Data; d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "tracline-demo-"); err != nil {
			return nil, err
		}
	}
	if d.store, err = aggregation.Open(d.ledgerDir(), aggregation.Options{Logger: o.Log}); err != nil {
		return nil, err
	}
	if err := ImportPools(ctx, product, codes, d.store); err != nil {
		return nil, err
	}
	var ratios []int
	for l := tracecode.Level(2); l <= product.TopLevel(); l++ {
		ratios = append(ratios, product.Ratio(l))
	}
	scfg := sim.Config{Seed: o.Seed, Rate: o.Rate, Positions: sim.Positions{Gate: o.Gate}, LabelTimeout: o.LabelTimeout,
		Units: o.Units, Ratios: ratios, Faults: o.Faults, StartStopped: true, Listen: sim.Listen{PLCOPCUA: "off", HTTP: "off", Proxies: o.SimProxies}}
	if o.SimCommand != nil {
		p, err := startSimProcess(ctx, o.SimCommand, scfg, o.SimNice)
		if err != nil {
			return nil, err
		}
		d.line = p
	} else {
		if d.sim, err = sim.New(scfg, o.Log.With("part", "linesim"), sim.WithDevices(devsim.Factory(devsim.Config{}, o.Log.With("part", "devsim")))); err != nil {
			return nil, err
		}
		d.line = inProcess{d.sim}
		if err := d.sim.Start(ctx); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	key := ProductKey(o.Product)
	d.setup = &Setup{Line: "demo-line-1", Product: product, ProductKey: key, ProductFile: o.Product, Devices: d.line.Endpoints(),
		Gate: o.Gate, Challenge: Challenge(),
		Batch: line.WorkOrder{Product: key, Batch: "DEMO-" + now.UTC().Format("20060102-150405"), ProductionDate: now.Format("2006-01-02"),
			Expiry: now.AddDate(2, 0, 0).Format("2006-01-02"), Planned: plannedOf(o.Units), Workshop: "固体制剂车间", Manager: "demo",
			Source: "demo"}}
	if d.setup.Devices.LabelPrinter != "" && product.TopLevel() >= 2 {
		// The rework station's own label printer: reprints go there.
		if d.rework, err = devsim.NewLabelPrinter(devsim.LabelPrinterConfig{}, o.Log.With("part", "rework-printer")); err != nil {
			return nil, err
		}
		if err := d.rework.Start(ctx); err != nil {
			return nil, err
		}
		d.setup.ReworkLabelPrinter = d.rework.Addr()
	}
	rc := receiver.Config{ValidateJSON: epcisschema.ValidateJSONReader}
	if d.capture, err = receiver.NewCapture(rc, o.Log.With("part", "epcis-receiver")); err != nil {
		return nil, err
	}
	if err := d.capture.Start(); err != nil {
		return nil, err
	}
	if d.platform, err = receiver.NewPlatform(rc, o.Log.With("part", "platform-receiver")); err != nil {
		return nil, err
	}
	if err := d.platform.Start(); err != nil {
		return nil, err
	}
	d.setup.EPCISReceiver, d.setup.PlatformReceiver = d.capture.URL(), d.platform.URL()
	return d, d.Connect(ctx)
}

// Receivers are the hand-off's stand-in receivers.
func (d *Line) Receivers() (*receiver.Capture, *receiver.Platform) { return d.capture, d.platform }

// plannedOf is the work order's planned quantity for a run of units (0:
// until stopped — the interactive demo's work order plans 1,000).
func plannedOf(units int) int64 {
	if units <= 0 {
		return 1000
	}
	return int64(units)
}

func (d *Line) ledgerDir() string { return filepath.Join(d.dir, "ledger") }

// Connect starts a controller on the line (again, after StopController).
func (d *Line) Connect(ctx context.Context) error {
	if d.ctrl != nil {
		return errors.New("demo: a controller is already running")
	}
	ctrl, err := d.wire(ctx, d.setup, d.store, d.o.Log)
	if err != nil {
		return err
	}
	d.ctrl = ctrl
	rctx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	d.runErr = make(chan error, 1)
	go func() { d.runErr <- ctrl.Run(rctx) }()
	return nil
}

// StopController stops the controller as a crash would: mid-batch,
// nothing completed. The simulated line goes on.
func (d *Line) StopController() error {
	if d.ctrl == nil {
		return nil
	}
	d.cancel()
	err := <-d.runErr
	d.ctrl.Close()
	d.ctrl = nil
	return err
}

// ReopenLedger closes the ledger and opens it again from disk, as a new
// process would. The controller must be stopped.
func (d *Line) ReopenLedger() error {
	if d.ctrl != nil {
		return errors.New("demo: stop the controller before reopening the ledger")
	}
	if err := d.store.Close(); err != nil {
		return err
	}
	var err error
	d.store, err = aggregation.Open(d.ledgerDir(), aggregation.Options{Logger: d.o.Log})
	return err
}

// Line is the running controller's line (nil when stopped).
func (d *Line) Line() *line.Line {
	if d.ctrl == nil {
		return nil
	}
	return d.ctrl.Line()
}

// Snapshot is the current (or last) batch's runner snapshot; zero with no
// controller.
func (d *Line) Snapshot() line.Snapshot {
	l := d.Line()
	if l == nil {
		return line.Snapshot{}
	}
	return Snapshot(l)
}

// Snapshot is l's current (or last) batch's runner snapshot (Stopped,
// "no batch", with none yet).
func Snapshot(l *line.Line) line.Snapshot { return l.RunnerView().Snapshot() }

// StartBatch starts the setup's work order on the line (Stopped: reset and
// start it), as user "demo".
func (d *Line) StartBatch(ctx context.Context) error {
	l := d.Line()
	if l == nil {
		return errors.New("demo: no controller running")
	}
	_, err := l.StartBatch(ctx, d.setup.Batch, "demo")
	return err
}

// Store is the line's ledger.
func (d *Line) Store() *aggregation.Store { return d.store }

// simCPU is the simulator process's CPU time so far (0 in-process: it is
// this process's).
func (d *Line) simCPU() time.Duration {
	if p, ok := d.line.(*simProcess); ok {
		return p.cpuTime()
	}
	return 0
}

// simulatorName says where the simulated line ran, for the report.
func (d *Line) simulatorName() string {
	where := "in the controller's process"
	if d.o.SimCommand != nil {
		where = fmt.Sprintf("a separate process (nice %+d relative to the controller)", d.o.SimNice)
	}
	if d.o.SimProxies == "off" {
		return where + ", devices served directly"
	}
	return where + ", devices behind netsim proxies"
}

// Sim is the simulated line; nil when it runs in a process of its own
// (Options.SimCommand).
func (d *Line) Sim() *sim.Sim { return d.sim }

// SimDone is closed when the simulator's last unit has left the line, in
// this process or its own.
func (d *Line) SimDone() <-chan struct{} { return d.line.Done() }

// Setup is what the controller is wired to.
func (d *Line) Setup() *Setup { return d.setup }

// Dir is the data directory.
func (d *Line) Dir() string { return d.dir }

// Close stops the controller, the simulator and the ledger.
func (d *Line) Close() {
	if d.ctrl != nil {
		d.StopController()
	}
	if d.line != nil {
		d.line.Close()
	}
	if d.rework != nil {
		d.rework.Close()
	}
	if d.capture != nil {
		d.capture.Close()
	}
	if d.platform != nil {
		d.platform.Close()
	}
	if d.store != nil {
		d.store.Close()
	}
}

// Commands gives commands to the line in turn, as user "demo".
func (d *Line) Commands(ctx context.Context, cmds ...line.Command) error {
	r := d.Line()
	if r == nil {
		return errors.New("demo: no controller running")
	}
	for _, cmd := range cmds {
		if err := r.Command(ctx, cmd, "demo"); err != nil {
			return err
		}
	}
	return nil
}

// Finish waits for the simulator to run out of units, lets the line
// settle, and completes the batch. Headless, nobody clears a hold: a held
// or stopped line is an error that says why.
func (d *Line) Finish(ctx context.Context) error {
	r := d.Line()
	if r == nil {
		return errors.New("demo: no controller running")
	}
	held := time.NewTicker(100 * time.Millisecond)
	defer held.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.line.Done():
			done = true
		case err := <-d.runErr:
			d.runErr <- err
			return fmt.Errorf("controller stopped: %v", err)
		case <-held.C:
			if sn := Snapshot(r); sn.State == "Held" || sn.State == "Aborted" || sn.State == "Stopped" {
				return fmt.Errorf("line %s: %s (faults %v, challenge %v)", sn.State, sn.Why, sn.Faults, sn.Challenge)
			}
		}
	}
	if err := WaitLine(ctx, r, func(sn line.Snapshot) bool { return sn.InFlight == 0 && sn.State == "Execute" }); err != nil {
		return err
	}
	if err := d.Commands(ctx, line.CmdComplete); err != nil {
		return err
	}
	return WaitLine(ctx, r, func(sn line.Snapshot) bool { return sn.State == "Complete" })
}

// Report stops the controller (its background journal writes finish) and
// builds the batch report; wall and cpu are the run's times.
func (d *Line) Report(ctx context.Context, wall, cpu time.Duration) (*Report, error) {
	r := d.Line()
	if r == nil {
		return nil, errors.New("demo: no controller running")
	}
	if err := d.StopController(); err != nil {
		return nil, err
	}
	gt, err := d.line.truth()
	if err != nil {
		return nil, err
	}
	rep, err := buildReport(ctx, d.store, r, gt, d.setup, d.o, wall, cpu, d.dir)
	if rep != nil {
		rep.Simulator = d.simulatorName()
	}
	return rep, err
}

// Run starts a simulated line with a controller, runs one batch of
// o.Units to the end and returns its report. The data directory is left
// on disk (Report.DataDir).
func Run(ctx context.Context, o Options, wire Wire) (*Report, error) {
	if o.Units <= 0 {
		return nil, errors.New("demo: a headless run needs a number of units")
	}
	d, err := Start(ctx, o, wire)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	started, cpu0, rt0, simCPU0 := time.Now(), CPUTime(), readRuntime(), d.simCPU()
	ls0 := d.store.Stats()
	if err := d.StartBatch(ctx); err != nil {
		return nil, err
	}
	if err := d.Commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		return nil, err
	}
	if err := d.Finish(ctx); err != nil {
		return nil, err
	}
	rt, simCPU := runtimeDelta(rt0, readRuntime(), o.Units), d.simCPU()-simCPU0
	ls := d.store.Stats()
	if o.Handoff != nil {
		// The release waits for every alarm of the batch to be
		// acknowledged: the demo's operator does it at the batch's end.
		for _, a := range d.Line().Alarms() {
			if a.AckAt == nil {
				if err := d.Line().AcknowledgeAlarm(ctx, a.ID, "operator"); err != nil {
					return nil, fmt.Errorf("demo: acknowledging alarm %d: %w", a.ID, err)
				}
			}
		}
	}
	rep, err := d.Report(context.WithoutCancel(ctx), time.Since(started), CPUTime()-cpu0)
	if err != nil {
		return nil, err
	}
	rep.Runtime = rt
	ws := d.store.WriteStages()
	rep.Ledger = LedgerStats{Groups: ls.Groups - ls0.Groups, Requests: ls.Requests - ls0.Requests, Writes: &ws}
	if o.Units > 0 {
		rep.Ledger.GroupsPerUnit = float64(rep.Ledger.Groups) / float64(o.Units)
	}
	lag, err := d.line.loopLag()
	if err != nil {
		return nil, err
	}
	rep.SimLoop = &lag
	if o.SimCommand != nil && rep.WallSeconds > 0 {
		rep.SimCPUSeconds = simCPU.Seconds()
		rep.SimCPUPercent = 100 * simCPU.Seconds() / rep.WallSeconds
	}
	if o.Handoff == nil {
		return rep, nil
	}
	svc, err := o.Handoff(ctx, d.store, d.setup, d.dir, d.o.Log)
	if err != nil {
		return nil, err
	}
	if rep.Handoff, err = d.handoff(ctx, svc, d.setup.Batch.Batch); err != nil {
		return nil, err
	}
	return rep, nil
}

// WaitLine waits until cond holds for the line's snapshot (up to a
// minute, or until ctx ends).
func WaitLine(ctx context.Context, r *line.Line, cond func(line.Snapshot) bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if cond(Snapshot(r)) {
			return nil
		}
		select {
		case <-ctx.Done():
			sn := Snapshot(r)
			return fmt.Errorf("line did not settle: state %s (%s), faults %v, challenge %v", sn.State, sn.Why, sn.Faults, sn.Challenge)
		case <-t.C:
		}
	}
}

// CPUTime is this process's CPU time so far (user + system).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ImportPools fills the pools of the product's nmpa20 levels from the code
// files in fsys (codes/<product id>-L<n>.txt). A file already imported
// into this ledger is skipped.
func ImportPools(ctx context.Context, p *tracecode.Product, fsys fs.FS, store *aggregation.Store) error {
	for _, ls := range p.Levels {
		if !p.Coded(ls.Level) || p.Rule(ls.Level).Scheme != tracecode.SchemeNMPA20 {
			continue
		}
		name := path.Join("codes", fmt.Sprintf("%s-L%d.txt", ls.ProductID, ls.Level))
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("demo pool for level %s: %w", ls.Level, err)
		}
		f, err := tracecode.ParseCodeFile(path.Base(name), data, ls.ProductID)
		if err != nil {
			return fmt.Errorf("demo pool for level %s: %w", ls.Level, err)
		}
		if err := tracecode.ImportCodeFile(ctx, store, p.PoolName(ls.Level), f); err != nil {
			// Every code of the file already known: imported into this data
			// directory by an earlier run. (Some known, some not: an error.)
			var known *tracecode.CodeFileError
			if errors.As(err, &known) && known.Total == len(f.Lines) {
				continue
			}
			return fmt.Errorf("demo pool for level %s: %w", ls.Level, err)
		}
	}
	return nil
}
