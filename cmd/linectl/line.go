package main

// linectl run, demo, bench line and bench soak: a line controller against
// real devices (run) or against the built-in simulator (demo, bench).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tracline/tracline/aggregation"
	cameraopcua "github.com/tracline/tracline/camera/opcua"
	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/plc"
	printeropcua "github.com/tracline/tracline/printer/opcua"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

func cmdRun(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	config := fs.String("config", "", "controller config file (see examples/line-linesim.yaml)")
	data := fs.String("data", "", "the line's data directory (the ledger)")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the line API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" || *data == "" {
		return errors.New("usage: linectl run --config FILE --data DIR [--listen ADDR]")
	}
	f, err := loadLineFile(*config)
	if err != nil {
		return err
	}
	store, err := aggregation.Open(*data, aggregation.Options{Logger: c.log})
	if err != nil {
		return err
	}
	defer store.Close()
	ctrl, err := newController(ctx, f, store, c.log)
	if err != nil {
		return err
	}
	defer ctrl.Close()
	stopAPI, err := serveAPI(ctx, *listen, ctrl, false, c)
	if err != nil {
		return err
	}
	defer stopAPI()
	return ctrl.Run(ctx)
}

// serveAPI serves the HMI on addr until the returned func is called.
func serveAPI(ctx context.Context, addr string, ctrl *controller, demo bool, c *cli) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HMI: %w", err)
	}
	return serveAPIOn(ln, ctrl, demo, c)
}

// serveAPIOn serves the HMI on ln until the returned func is called.
// [hmi hook] The HMI is built from one hmi.Config; accounts live in the
// ledger. Without an admin (production's first run) the one-time setup
// URL is logged.
func serveAPIOn(ln net.Listener, ctrl *controller, demo bool, c *cli) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	acc, err := accounts.Open(ctx, accounts.Config{Demo: demo}, accounts.Ledger(ctrl.store), c.log)
	if err != nil {
		cancel()
		return nil, err
	}
	if tok := acc.SetupToken(); tok != "" {
		c.log.Warn("HMI: no admin account yet; create it at the one-time setup URL",
			"url", "http://"+ln.Addr().String()+"/#/setup/"+tok)
	}
	h, err := hmi.New(hmi.Config{Store: ctrl.store, Line: ctrl.runner, Batch: ctrl.cfg.Batch.ID, Accounts: acc, Demo: demo, Log: c.log})
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.Serve(ctx, ln); err != nil {
			c.log.Error("HMI", "err", err)
		}
	}()
	c.log.Info("HMI", "url", "http://"+ln.Addr().String()+"/")
	return func() {
		cancel()
		<-done
	}, nil
}

// demoOpts is one demo (or bench) run.
type demoOpts struct {
	product  string
	data     string
	units    int
	rate     float64
	seed     uint64
	faults   []sim.Fault
	deadline time.Duration
	labelTO  time.Duration // labeller's wait for a label after a group is read (0: the simulator's 2 s)
	listen   string
	headless bool
	quiet    bool
}

// defaultFaults are the demo's: every unit fault at a realistic rate,
// with the challenge test's test units first.
func defaultFaults() []sim.Fault {
	const after = 4 // items 1..4 are the challenge test units
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

var demoChallenge = []string{"pass", "no-read", "low-grade", "duplicate"}

type faultList []sim.Fault

func (l *faultList) String() string { return fmt.Sprint(*l) }
func (l *faultList) Set(s string) error {
	f, err := sim.ParseFault(s)
	if err != nil {
		return err
	}
	*l = append(*l, f)
	return nil
}

func demoFlags(name string, c *cli) (*flag.FlagSet, *demoOpts, *faultList, *bool) {
	o := &demoOpts{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.StringVar(&o.product, "product", "examples/amoxicillin-gs1.yaml", "product and filed code rules")
	fs.StringVar(&o.data, "data", "", "data directory (default: a fresh temporary one)")
	fs.IntVar(&o.units, "units", 0, "units to run (0: until stopped)")
	fs.Float64Var(&o.rate, "rate", 600, "line speed, units per minute")
	fs.Uint64Var(&o.seed, "seed", 42, "simulator seed (same seed, same faults on the same units)")
	fs.DurationVar(&o.deadline, "gate", 100*time.Millisecond, "trigger photo-eye → reject gate on the simulated belt")
	faults := &faultList{}
	fs.Var(faults, "fault", "extra fault, e.g. plc-disconnect:at=300,for=2s (repeatable)")
	noFaults := fs.Bool("no-default-faults", false, "only the faults given with --fault")
	return fs, o, faults, noFaults
}

func cmdDemo(ctx context.Context, c *cli, args []string) error {
	fs, o, faults, noFaults := demoFlags("demo", c)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the line API")
	fs.BoolVar(&o.headless, "headless", false, "run one batch and exit (needs --units)")
	report := fs.String("report", "", "with --headless: write the batch report (JSON) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.headless && o.units <= 0 {
		return errors.New("--headless needs --units N")
	}
	if !*noFaults {
		o.faults = defaultFaults()
	}
	o.faults = append(o.faults, (*faults)...)
	rep, err := runDemo(ctx, o, c)
	if err != nil {
		return err
	}
	if !o.headless {
		return nil
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	if *report != "" {
		if err := os.WriteFile(*report, append(js, '\n'), 0o644); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.stdout, string(js))
	}
	fmt.Fprintf(c.stderr, "batch %s: %d units, invariants_ok=%t ground_truth_ok=%t deadline_misses=%d verdict p50=%.2fms p99=%.2fms\n",
		rep.Batch, rep.Units, rep.InvariantsOK, rep.GroundTruthOK, rep.DeadlineMisses, rep.Latency.P50ms, rep.Latency.P99ms)
	if !rep.InvariantsOK || !rep.GroundTruthOK || rep.DeadlineMisses > 0 {
		return exitError{1}
	}
	return nil
}

// demoReport is `linectl demo --headless --report`; its JSON keys are part
// of the command-line contract.
type demoReport struct {
	Batch          string                     `json:"batch"`
	Product        string                     `json:"product"`
	Units          int                        `json:"units"`
	Rate           float64                    `json:"rate_per_min"`
	Seed           uint64                     `json:"seed"`
	InvariantsOK   bool                       `json:"invariants_ok"`
	Invariants     []string                   `json:"invariant_problems"`
	GroundTruthOK  bool                       `json:"ground_truth_ok"`
	GroundTruth    []string                   `json:"ground_truth_problems"`
	DeadlineMisses int                        `json:"deadline_misses"`
	Latency        line.StatsReport           `json:"verdict_latency_ms"`
	Counts         map[string]int64           `json:"counts"`
	Levels         []aggregation.LevelSummary `json:"levels"`
	Rejects        map[string]uint64          `json:"rejects_by_reason"`
	Challenge      []line.ChallengeResult     `json:"challenge"`
	ChallengeOK    bool                       `json:"challenge_ok"`
	Sim            sim.Summary                `json:"simulator"`
	State          string                     `json:"line_state"`
	WallSeconds    float64                    `json:"wall_s"`
	CPUSeconds     float64                    `json:"cpu_s"`
	CPUPercent     float64                    `json:"cpu_percent"`
	DataDir        string                     `json:"data_dir"`
}

// demoLine is a simulated line with a controller on it.
type demoLine struct {
	o      *demoOpts
	dir    string
	store  *aggregation.Store
	sim    *sim.Sim
	rework *devsim.LabelPrinter // the rework station's label printer
	file   *lineFile
	ctrl   *controller
	runErr chan error
	cancel context.CancelFunc
}

// startDemo starts the simulator and a controller wired to it, running.
// Close stops both (the controller first, as a crash would).
func startDemo(ctx context.Context, o *demoOpts, c *cli) (_ *demoLine, err error) {
	d := &demoLine{o: o, runErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	product, err := tracecode.LoadProduct(o.product)
	if err != nil {
		return nil, fmt.Errorf("%w (run linectl from the repository root, or give --product)", err)
	}
	if d.dir = o.data; d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "tracline-demo-"); err != nil {
			return nil, err
		}
	}
	if d.store, err = aggregation.Open(filepath.Join(d.dir, "ledger"), aggregation.Options{Logger: c.log}); err != nil {
		return nil, err
	}
	if err := importExamplePools(ctx, product, o.product, d.store); err != nil {
		return nil, err
	}
	var ratios []int
	for l := tracecode.Level(2); l <= product.TopLevel(); l++ {
		ratios = append(ratios, product.Ratio(l))
	}
	d.sim, err = sim.New(sim.Config{Seed: o.seed, Rate: o.rate, Positions: sim.Positions{Gate: o.deadline}, LabelTimeout: o.labelTO, Units: o.units,
		Ratios: ratios, Faults: o.faults, StartStopped: true, Listen: sim.Listen{PLCOPCUA: "off", HTTP: "off"}},
		c.log.With("part", "linesim"), sim.WithDevices(devsim.Factory(devsim.Config{}, c.log.With("part", "devsim"))))
	if err != nil {
		return nil, err
	}
	if err := d.sim.Start(ctx); err != nil {
		return nil, err
	}
	d.file = demoLineFile(product, o, d.sim.Endpoints())
	if d.file.Devices.LabelPrinter != nil {
		// The rework station's own label printer: reprints go there.
		if d.rework, err = devsim.NewLabelPrinter(devsim.LabelPrinterConfig{}, c.log.With("part", "rework-printer")); err != nil {
			return nil, err
		}
		if err := d.rework.Start(ctx); err != nil {
			return nil, err
		}
		rp := *d.file.Devices.LabelPrinter
		rp.Name, rp.Address = "rework_label_printer", d.rework.Addr()
		d.file.Devices.ReworkLabelPrinter = &rp
	}
	return d, d.connect(ctx, c)
}

// connect starts a controller on the demo line (again, after a crash).
func (d *demoLine) connect(ctx context.Context, c *cli) error {
	ctrl, err := newController(ctx, d.file, d.store, c.log)
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

// stopController stops the controller as a crash would: mid-batch, nothing
// completed. The simulated line goes on.
func (d *demoLine) stopController() error {
	if d.ctrl == nil {
		return nil
	}
	d.cancel()
	err := <-d.runErr
	d.ctrl.Close()
	d.ctrl = nil
	return err
}

func (d *demoLine) runner() *line.Runner { return d.ctrl.runner }

// Close stops the controller, the simulator and the ledger.
func (d *demoLine) Close() {
	if d.ctrl != nil {
		d.stopController()
	}
	if d.sim != nil {
		d.sim.Close()
	}
	if d.rework != nil {
		d.rework.Close()
	}
	if d.store != nil {
		d.store.Close()
	}
}

// commands gives commands to the line in turn, as user "demo".
func (d *demoLine) commands(ctx context.Context, cmds ...line.Command) error {
	for _, cmd := range cmds {
		if err := d.runner().Command(ctx, cmd, "demo"); err != nil {
			return err
		}
	}
	return nil
}

// finish waits for the simulator to run out of units, lets the line
// settle, and completes the batch. Headless, nobody clears a hold: a held
// line is an error that says why.
func (d *demoLine) finish(ctx context.Context) error {
	r := d.runner()
	held := time.NewTicker(100 * time.Millisecond)
	defer held.Stop()
wait:
	for {
		select {
		case <-d.sim.Done():
			break wait
		case <-ctx.Done():
			return ctx.Err()
		case err := <-d.runErr:
			d.runErr <- err
			return fmt.Errorf("controller stopped: %v", err)
		case <-held.C:
			if sn := r.Snapshot(); sn.State == "Held" || sn.State == "Aborted" || sn.State == "Stopped" {
				return fmt.Errorf("line %s: %s (faults %v, challenge %v)", sn.State, sn.Why, sn.Faults, sn.Challenge)
			}
		}
	}
	if err := waitLine(ctx, r, func(sn line.Snapshot) bool { return sn.InFlight == 0 && sn.State == "Execute" }); err != nil {
		return err
	}
	if err := d.commands(ctx, line.CmdComplete); err != nil {
		return err
	}
	return waitLine(ctx, r, func(sn line.Snapshot) bool { return sn.State == "Complete" })
}

// report stops the controller (its background journal writes finish) and
// builds the batch report.
func (d *demoLine) report(ctx context.Context, wall, cpu time.Duration) (*demoReport, error) {
	r := d.runner()
	if err := d.stopController(); err != nil {
		return nil, err
	}
	return buildReport(ctx, d.store, r, d.sim.GroundTruth(), d.file, d.o, wall, cpu, d.dir)
}

// runDemo starts the simulator and a controller wired to it. Headless, it
// runs one batch of o.units and returns its report; otherwise it serves the
// line API and runs until ctx ends.
func runDemo(ctx context.Context, o *demoOpts, c *cli) (*demoReport, error) {
	var ln net.Listener
	if !o.headless {
		// Bind first: a busy port fails before anything starts.
		var err error
		if ln, err = net.Listen("tcp", o.listen); err != nil {
			return nil, fmt.Errorf("line API: %w", err)
		}
		defer ln.Close()
	}
	d, err := startDemo(ctx, o, c)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	started, cpu0 := time.Now(), cpuTime()
	if err := d.commands(ctx, line.CmdReset, line.CmdStart); err != nil {
		return nil, err
	}
	if !o.headless {
		stop, err := serveAPIOn(ln, d.ctrl, true, c)
		if err != nil {
			return nil, err
		}
		defer stop()
		fmt.Fprintf(c.stderr, "DEMO — simulated line running; open http://%s/ (operator, qa, engineer, admin; password demo) (Ctrl-C to stop)\n", o.listen)
		<-ctx.Done()
		return nil, nil
	}
	if err := d.finish(ctx); err != nil {
		return nil, err
	}
	return d.report(context.Background(), time.Since(started), cpuTime()-cpu0)
}

// waitLine waits until cond holds for the line's snapshot (up to a minute).
func waitLine(ctx context.Context, r *line.Runner, cond func(line.Snapshot) bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if cond(r.Snapshot()) {
			return nil
		}
		select {
		case <-ctx.Done():
			sn := r.Snapshot()
			return fmt.Errorf("line did not settle: state %s (%s), faults %v, challenge %v", sn.State, sn.Why, sn.Faults, sn.Challenge)
		case <-t.C:
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// demoLineFile is the controller config for the built-in simulator — the
// same as examples/line-linesim.yaml, with the simulator's ports.
func demoLineFile(p *tracecode.Product, o *demoOpts, ep sim.Endpoints) *lineFile {
	f := &lineFile{Line: "demo-line-1", Product: o.product,
		Batch: batchFile{ID: "DEMO-" + time.Now().UTC().Format("20060102-150405"), ProductionDate: time.Now().Format("2006-01-02"),
			Expiry: time.Now().AddDate(2, 0, 0).Format("2006-01-02"), Planned: o.units, Workshop: "固体制剂车间",
			Manager: "demo"},
		Settings: settingsFile{Gate: o.deadline, PrinterBuffer: 8, AllocChunk: 200, Challenge: demoChallenge},
		Devices: devicesFile{PLC: demoPLCProfile(ep.Modbus), Printer: printeropcua.SimProfile(ep.Printer),
			Camera: cameraopcua.SimProfile(ep.Camera, devsim.CameraObject)}}
	for _, a := range ep.AggCameras {
		f.Devices.AggCameras = append(f.Devices.AggCameras, cameraopcua.SimProfile(a, devsim.AggCameraObject))
	}
	if ep.LabelPrinter != "" && p.TopLevel() >= 2 {
		f.Devices.LabelPrinter = &zpl.Config{Address: ep.LabelPrinter, Symbology: labelSymbology(p.Rule(2))}
		for i, a := range ep.LabelScanners {
			if a != "" && i < len(ep.AggCameras) {
				f.Devices.LabelScanners = append(f.Devices.LabelScanners, cameraopcua.SimProfile(a, devsim.LabelScannerObject(i+2)))
			}
		}
	}
	return f
}

// demoPLCProfile is the simulated PLC over Modbus with the reject gate's
// confirmation ring and the controller's heartbeat mapped.
func demoPLCProfile(addr string) plc.Config {
	c := sim.ModbusProfile(addr)
	c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: sim.IRGateCount, Type: plc.TypeGateRing,
		Length: sim.GateRingSize, WordOrder: plc.WordHighFirst}
	c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableHolding, Address: sim.HRControllerAlive, Type: plc.TypeU16}
	return c
}

// labelSymbology is the ZPL symbology for a parent level's filed carrier.
// A ZPL printer draws no QR with FNC1, so a GS1 rule filed as QR is
// labelled in GS1 DataMatrix, the same data in another GS1 carrier.
func labelSymbology(r tracecode.Rule) zpl.Symbology {
	gs1 := r.Scheme != tracecode.SchemeNMPA20
	switch r.Carrier {
	case tracecode.CarrierGS1128:
		return zpl.GS1128
	case tracecode.CarrierCode128:
		return zpl.Code128
	case tracecode.CarrierDataMatrix:
		return zpl.DataMatrix
	}
	if gs1 {
		return zpl.GS1DataMatrix
	}
	return zpl.DataMatrix
}

// importExamplePools fills the pools of nmpa20 levels from the code files
// shipped beside the product file (examples/codes/<product id>-L<n>.txt).
func importExamplePools(ctx context.Context, p *tracecode.Product, productPath string, store *aggregation.Store) error {
	for _, ls := range p.Levels {
		if !p.Coded(ls.Level) || p.Rule(ls.Level).Scheme != tracecode.SchemeNMPA20 {
			continue
		}
		path := filepath.Join(filepath.Dir(productPath), "codes", fmt.Sprintf("%s-L%d.txt", ls.ProductID, ls.Level))
		f, err := tracecode.ReadCodeFile(path, ls.ProductID)
		if err != nil {
			return fmt.Errorf("demo pool for level %s: %w", ls.Level, err)
		}
		if err := tracecode.ImportCodeFile(ctx, store, p.PoolName(ls.Level), f); err != nil {
			var dup *tracecode.DuplicateCodesError
			if errors.As(err, &dup) {
				continue // already imported into this data directory
			}
			return err
		}
	}
	return nil
}

func buildReport(ctx context.Context, store *aggregation.Store, r *line.Runner, gt sim.GroundTruth, lf *lineFile, o *demoOpts, wall, cpu time.Duration, dir string) (*demoReport, error) {
	sum, err := store.Summary(ctx, lf.Batch.ID)
	if err != nil {
		return nil, err
	}
	snap := r.Snapshot()
	rep := &demoReport{Batch: lf.Batch.ID, Product: o.product, Units: o.units, Rate: o.rate, Seed: o.seed,
		Latency: r.Stats(), Counts: map[string]int64{}, Levels: sum.Levels, Rejects: snap.Counters.RejectReason,
		Challenge: snap.Challenge, ChallengeOK: snap.ChallengeOK, Sim: gt.Summary, State: snap.State,
		WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds(), DataDir: dir}
	rep.DeadlineMisses = rep.Latency.DeadlineMisses
	if wall > 0 {
		rep.CPUPercent = 100 * cpu.Seconds() / wall.Seconds()
	}
	for _, l := range sum.Levels {
		for st, n := range l.States {
			rep.Counts[st] += n
		}
	}
	vr, err := store.Verify(ctx)
	if err != nil {
		return nil, err
	}
	rep.Invariants = append([]string{}, vr.Problems...)
	for _, p := range sum.Check() {
		rep.Invariants = append(rep.Invariants, "batch "+lf.Batch.ID+": "+p)
	}
	rep.InvariantsOK = len(rep.Invariants) == 0 && vr.Truncated == 0
	rep.GroundTruth = append([]string{}, compareTruth(ctx, store, lf.Batch.ID, gt)...)
	rep.GroundTruthOK = len(rep.GroundTruth) == 0
	return rep, nil
}

// compareTruth checks the ledger against what physically happened.
func compareTruth(ctx context.Context, store *aggregation.Store, batch string, gt sim.GroundTruth) []string {
	var problems []string
	add := func(format string, a ...any) {
		if len(problems) < 50 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	if !gt.Finished {
		add("simulator did not finish the batch")
	}
	if err := gt.Check(); err != nil {
		add("simulator's own ground truth: %v", err)
	}
	onGood := map[string]uint32{}
	good := 0
	for _, u := range gt.Units {
		switch u.Fate {
		case sim.FateGood:
			good++
			if u.Fault != "" {
				add("unit %d had fault %s but left the line as good", u.Item, u.Fault)
			}
			if u.Code == "" {
				add("unit %d left the line as good without a code", u.Item)
				continue
			}
			if other, dup := onGood[u.Code]; dup {
				add("code %s is on two good units (%d and %d)", u.Code, other, u.Item)
			}
			onGood[u.Code] = u.Item
			p, err := tracecode.Parse(u.Code)
			if err != nil {
				add("unit %d: code %q on it does not parse: %v", u.Item, u.Code, err)
				continue
			}
			info, err := store.Code(ctx, p.Code)
			if err != nil {
				add("unit %d: code %s: %v", u.Item, p.Code, err)
				continue
			}
			if info.State != aggregation.StateCommissioned && info.State != aggregation.StateAggregated {
				add("unit %d left as good but its code %s is %s in the ledger", u.Item, p.Code, info.State)
			}
			anc, err := store.Ancestors(ctx, p.Code)
			if err != nil {
				add("unit %d: ancestors of %s: %v", u.Item, p.Code, err)
				continue
			}
			if len(anc) < len(u.Parents) && divertedLabels(ctx, store, u.Parents[len(anc):]) {
				// The label scanner found the label on this unit's group (or
				// one above) not the group's own: the group was diverted to
				// rework, its parents taken out; the unit is commissioned,
				// loose from that level up, and the labels on it are void.
				u.Parents = u.Parents[:len(anc)]
			}
			if len(anc) != len(u.Parents) {
				add("unit %d: ledger has %d parents %v, the line put it under %d labels %v", u.Item, len(anc), anc, len(u.Parents), u.Parents)
				continue
			}
			for i := range anc {
				if lp, err := tracecode.Parse(u.Parents[i]); err != nil || lp.Code != anc[i] {
					add("unit %d: parent %d is %s in the ledger, label %s on the line", u.Item, i+2, anc[i], u.Parents[i])
				}
			}
		case sim.FateOnLine:
			add("unit %d is still on the line", u.Item)
		}
	}
	// Every commissioned unit code is on a good unit: nothing commissioned
	// that did not ship (sampled or decommissioned codes aside).
	goodCodes := make(map[tracecode.Code]bool, len(onGood))
	for raw := range onGood {
		if p, err := tracecode.Parse(raw); err == nil {
			goodCodes[p.Code] = true
		}
	}
	n := 0
	for _, st := range []aggregation.CodeState{aggregation.StateCommissioned, aggregation.StateAggregated} {
		_ = store.Codes(ctx, batch, 1, st, func(c tracecode.Code) error {
			n++
			if !goodCodes[c] {
				item := "no unit"
				for _, u := range gt.Units {
					if p, err := tracecode.Parse(u.Code); err == nil && p.Code == c {
						item = fmt.Sprintf("unit %d (%s, fault %q, verdict %s)", u.Item, u.Fate, u.Fault, u.Verdict)
					}
				}
				add("code %s is %s in the ledger but on %s", c, st, item)
			}
			return nil
		})
	}
	if n != good {
		add("ledger has %d commissioned unit codes, %d units left the line as good", n, good)
	}
	return problems
}

// divertedLabels reports whether every label is a code the ledger took out
// (decommissioned): a group diverted to rework at the label scanner.
func divertedLabels(ctx context.Context, store *aggregation.Store, labels []string) bool {
	for _, raw := range labels {
		p, err := tracecode.Parse(raw)
		if err != nil {
			return false
		}
		info, err := store.Lookup(ctx, p.Code)
		if err != nil || info.State != aggregation.StateDecommissioned {
			return false
		}
	}
	return true
}

// benchLine finds the highest rate with zero deadline misses (bench line).
func benchLine(ctx context.Context, c *cli, args []string) error {
	fs, o, faults, noFaults := demoFlags("bench line", c)
	rates := fs.String("rates", "600,1200,1800,2400,3000", "rates to try, units/min, ascending")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.units == 0 {
		o.units = 1000
	}
	if !*noFaults {
		o.faults = defaultFaults()
	}
	o.faults = append(o.faults, (*faults)...)
	o.headless, o.quiet = true, true
	type run struct {
		Rate   float64          `json:"rate"`
		OK     bool             `json:"ok"`
		Misses int              `json:"deadline_misses"`
		Lat    line.StatsReport `json:"verdict_latency_ms"`
		// The journal stage's p99 over the disk's raw fdatasync p99 (the mean
		// of probes just before and just after this run; goal ≤ 1.5), and the
		// controller's own share of a verdict at p99 (goal ≤ 2 ms).
		JournalOverSync float64               `json:"journal_p99_over_fdatasync_p99"`
		ControllerP99   float64               `json:"controller_share_p99_ms"`
		Sync            aggregation.SyncStats `json:"disk_fdatasync_ms"`
		SyncAfter       aggregation.SyncStats `json:"disk_fdatasync_after_ms"`
		CPU             float64               `json:"cpu_percent"`
		Err             string                `json:"error,omitempty"`
	}
	var out struct {
		Units   int     `json:"units"`
		MaxRate float64 `json:"max_rate_zero_misses"`
		Runs    []run   `json:"runs"`
	}
	out.Units = o.units
	quiet := *c
	quiet.log = discardLogger()
	for _, rs := range splitComma(*rates) {
		var rate float64
		if _, err := fmt.Sscan(rs, &rate); err != nil || rate <= 0 {
			return fmt.Errorf("--rates: %q is not a rate", rs)
		}
		oo := *o
		oo.rate, oo.data = rate, ""
		ru := run{Rate: rate}
		sync, err := aggregation.ProbeSync(os.TempDir(), 300) // the disk the demo's ledger is on
		if err != nil {
			return err
		}
		ru.Sync = sync
		rep, err := runDemo(ctx, &oo, &quiet)
		if err != nil {
			ru.Err = err.Error()
		} else {
			ru.OK = rep.InvariantsOK && rep.GroundTruthOK && rep.DeadlineMisses == 0
			ru.Misses, ru.Lat, ru.CPU = rep.DeadlineMisses, rep.Latency, rep.CPUPercent
			// The disk's state varies from minute to minute: probe it again
			// after the run and compare with the mean of the two.
			if ru.SyncAfter, err = aggregation.ProbeSync(os.TempDir(), 300); err != nil {
				return err
			}
			if ref := (sync.P99ms + ru.SyncAfter.P99ms) / 2; ref > 0 {
				ru.JournalOverSync = rep.Latency.Stages["journal"][1] / ref
			}
			ru.ControllerP99 = rep.Latency.Stages["controller"][1]
			os.RemoveAll(rep.DataDir)
		}
		out.Runs = append(out.Runs, ru)
		if !ru.OK {
			break
		}
		out.MaxRate = rate
	}
	js, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(c.stdout, string(js))
	return nil
}

// benchSoak runs one long batch at a rate and reports it (bench soak).
func benchSoak(ctx context.Context, c *cli, args []string) error {
	fs, o, faults, noFaults := demoFlags("bench soak", c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.units == 0 {
		o.units = 20000
	}
	if !*noFaults {
		o.faults = defaultFaults()
	}
	o.faults = append(o.faults, (*faults)...)
	o.headless = true
	quiet := *c
	quiet.log = discardLogger()
	rep, err := runDemo(ctx, o, &quiet)
	if err != nil {
		return err
	}
	os.RemoveAll(rep.DataDir)
	js, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Fprintln(c.stdout, string(js))
	return nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
