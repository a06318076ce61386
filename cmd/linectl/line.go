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
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/tracline/tracline/aggregation"
	cameraopcua "github.com/tracline/tracline/camera/opcua"
	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/internal/campaign"
	"github.com/tracline/tracline/internal/campaign/soak"
	"github.com/tracline/tracline/internal/demo"
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
	listen := fs.String("listen", "127.0.0.1:8080", "address of the HMI (and of the local line API)")
	localAPI := fs.Bool("local-api", false, "also serve the unauthenticated line API (/api/line) to this machine's own programs (loopback peers only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" || *data == "" {
		return errors.New("usage: linectl run --config FILE --data DIR [--listen ADDR] [--local-api]")
	}
	f, err := loadLineFile(*config)
	if err != nil {
		return err
	}
	products, err := f.loadProducts()
	if err != nil {
		return err
	}
	store, err := aggregation.Open(*data, aggregation.Options{Logger: c.log})
	if err != nil {
		return err
	}
	defer store.Close()
	ctrl, err := newController(ctx, f, products, store, c.log)
	if err != nil {
		return err
	}
	defer ctrl.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("HMI: %w", err)
	}
	stopAPI, err := serveWeb(ln, web{Line: ctrl.Line(), Store: store, Handoff: f.Handoff, Products: products, Data: *data, LocalAPI: *localAPI, HMI: f.HMI}, c)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopAPI()
	return ctrl.Run(ctx)
}

// wireDemo is the demo's wiring: the controller config for the simulated
// line's devices (demoLineFile), connected as `linectl run` connects one.
func wireDemo(ctx context.Context, s *demo.Setup, store *aggregation.Store, log *slog.Logger) (demo.Controller, error) {
	return newController(ctx, demoLineFile(s), map[string]*tracecode.Product{s.ProductKey: s.Product}, store, log)
}

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

// demoFlags are the flags of demo, bench line and bench soak; finish
// (after Parse) puts the faults into the options.
func demoFlags(name string, c *cli) (fs *flag.FlagSet, o *demo.Options, finish func()) {
	o = &demo.Options{Log: c.log}
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.StringVar(&o.Product, "product", "", "product and filed code rules, a file (default: the embedded example, examples/amoxicillin-gs1.yaml)")
	fs.StringVar(&o.Data, "data", "", "data directory (default: a fresh temporary one)")
	fs.IntVar(&o.Units, "units", 0, "units to run (0: until stopped)")
	fs.Float64Var(&o.Rate, "rate", 600, "line speed, units per minute")
	fs.Uint64Var(&o.Seed, "seed", 42, "simulator seed (same seed, same faults on the same units)")
	fs.DurationVar(&o.Gate, "gate", 100*time.Millisecond, "trigger photo-eye → reject gate on the simulated belt")
	faults := &faultList{}
	fs.Var(faults, "fault", "extra fault, e.g. plc-disconnect:at=300,for=2s (repeatable)")
	noFaults := fs.Bool("no-default-faults", false, "only the faults given with --fault")
	return fs, o, func() {
		if !*noFaults {
			o.Faults = demo.DefaultFaults()
		}
		o.Faults = append(o.Faults, (*faults)...)
	}
}

func cmdDemo(ctx context.Context, c *cli, args []string) error {
	fs, o, finish := demoFlags("demo", c)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the HMI and the line API")
	headless := fs.Bool("headless", false, "run one batch and exit (needs --units)")
	report := fs.String("report", "", "with --headless: write the batch report (JSON) here")
	noHandoff := fs.Bool("no-handoff", false, "with --headless: stop at the batch's end (no QA release, no hand-off to the stand-in receivers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *headless && o.Units <= 0 {
		return errors.New("--headless needs --units N")
	}
	if !*headless && *report != "" {
		return errors.New("--report goes with --headless")
	}
	if err := o.Validate(); err != nil {
		return err
	}
	finish()
	if !*headless {
		return demoInteractive(ctx, c, *o, *listen)
	}
	if !*noHandoff {
		o.Handoff = wireDemoHandoff
	}
	rep, err := demo.Run(ctx, *o, wireDemo)
	if err != nil {
		return err
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
	if h := rep.Handoff; h != nil {
		fmt.Fprintf(c.stderr, "hand-off: ok=%t, %d documents, %d codes expected from the ground truth %v\n", h.OK, len(h.Documents), h.Expected, h.Problems)
	}
	if !rep.OK() {
		return exitError{1}
	}
	return nil
}

// demoInteractive starts the simulated line and its controller, serves
// the HMI and the line API on listen, and runs until ctx ends.
func demoInteractive(ctx context.Context, c *cli, o demo.Options, listen string) error {
	// Bind first: a busy port fails before anything starts.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("line API: %w", err)
	}
	defer ln.Close()
	d, err := demo.Start(ctx, o, wireDemo)
	if err != nil {
		return err
	}
	defer d.Close()
	s := d.Setup()
	stop, err := serveWeb(ln, web{Line: d.Line(), Store: d.Store(), Demo: true, Handoff: demoLineFile(s).Handoff,
		Products: map[string]*tracecode.Product{s.ProductKey: s.Product}, Data: d.Dir(), LocalAPI: true}, c)
	if err != nil {
		return err
	}
	defer stop()
	wo := d.Setup().Batch
	fmt.Fprintf(c.stderr, `DEMO — simulated line up, no batch running; open http://%s/ (operator, qa, engineer, admin; password demo) (Ctrl-C to stop); data in %s
Start a batch from the HMI, or:
  curl -XPOST %s/api/line/batches -d '{"product":%q,"batch":%q,"production_date":%q,"expiry":%q,"planned":%d,"user":"operator"}'
  curl -XPOST %s/api/line/commands -d '{"command":"reset","user":"operator"}'   (then "start")
`, ln.Addr(), d.Dir(), "http://"+ln.Addr().String(), wo.Product, wo.Batch, wo.ProductionDate, wo.Expiry, wo.Planned, "http://"+ln.Addr().String())
	<-ctx.Done()
	return nil
}

// demoCameraInterval is the demo camera's OPC UA publishing interval (see
// demoLineFile; the same in examples/line-linesim.yaml).
const demoCameraInterval = 2 * time.Millisecond

// demoLineFile is the controller config for the simulated line of s — the
// same as examples/line-linesim.yaml, with the simulator's ports.
func demoLineFile(s *demo.Setup) *lineFile {
	p, ep := s.Product, s.Devices
	f := &lineFile{Line: s.Line, Product: s.ProductFile,
		Settings: settingsFile{Gate: s.Gate, PrinterBuffer: 8, AllocChunk: 200, Challenge: s.Challenge},
		Devices: devicesFile{PLC: demoPLCProfile(ep.Modbus), Printer: printeropcua.SimProfile(ep.Printer),
			Camera: cameraopcua.SimProfile(ep.Camera, devsim.CameraObject)}}
	if s.EPCISReceiver != "" && s.PlatformReceiver != "" {
		// The stand-in receivers: an activated batch's documents go there.
		f.Handoff.Endpoints = []outbox.Endpoint{
			{Name: "epcis", Kind: outbox.KindEPCIS, URL: s.EPCISReceiver, PollMin: 200 * time.Millisecond},
			{Name: "platform", Kind: outbox.KindPlatform, URL: s.PlatformReceiver, PollMin: 200 * time.Millisecond}}
	}
	// The vision camera's result is on the verdict's clock (trigger →
	// camera → verdict before the gate): it is published every 2 ms, not
	// the default 10 ms, which would take up to 10 ms of the budget and, at
	// 6,000 units/min, often carry two results in one interval (the
	// second read back from the ring, a round trip more). Aggregation
	// cameras and label scanners keep the default.
	f.Devices.Camera.Stream.PublishingInterval = demoCameraInterval
	for _, a := range ep.AggCameras {
		f.Devices.AggCameras = append(f.Devices.AggCameras, cameraopcua.SimProfile(a, devsim.AggCameraObject))
	}
	if ep.LabelPrinter != "" && p.TopLevel() >= 2 {
		first := zpl.Config{Address: ep.LabelPrinter, Symbology: labelSymbology(p.Rule(2))}
		if ep.Labellers == sim.LabellersShared {
			// One labeller for every level (a simulator asked for it),
			// each level's labels in its own carrier.
			for l := tracecode.Level(2); l <= p.TopLevel(); l++ {
				first.SymbologyByLevel = append(first.SymbologyByLevel, labelSymbology(p.Rule(l)))
			}
			f.Devices.LabelPrinter = &first
		} else {
			// A labeller per level, each printing its level's carrier.
			for i, a := range ep.LabelPrinters {
				if a != "" && i < len(ep.AggCameras) {
					f.Devices.LabelPrinters = append(f.Devices.LabelPrinters,
						zpl.Config{Address: a, Symbology: labelSymbology(p.Rule(tracecode.Level(i + 2)))})
				}
			}
		}
		for i, a := range ep.LabelScanners {
			if a != "" && i < len(ep.AggCameras) {
				f.Devices.LabelScanners = append(f.Devices.LabelScanners, cameraopcua.SimProfile(a, devsim.LabelScannerObject(i+2)))
			}
		}
		if s.ReworkLabelPrinter != "" {
			// The rework station's own label printer: reprints go there.
			rp := first
			rp.Name, rp.Address = "rework_label_printer", s.ReworkLabelPrinter
			f.Devices.ReworkLabelPrinter = &rp
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
	c.Signals[plc.SigGateAck] = plc.Signal{Table: plc.TableHolding, Address: sim.HRGateAck, Type: plc.TypeU16}
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

// benchLine finds the highest rate with zero deadline misses (bench line).
func benchLine(ctx context.Context, c *cli, args []string) error {
	fs, o, finish := demoFlags("bench line", c)
	rates := fs.String("rates", "600,1200,1800,2400,3000", "rates to try, units/min, ascending")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of every run to this file")
	simulator := simFlags(fs, o)
	traceFile := fs.String("trace", "", "write an execution trace (runtime/trace) of every run to this file")
	logFile := fs.String("log", "", "write the controller's log (text, info and above) of every run to this file (default: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Units == 0 {
		o.Units = 1000
	}
	finish()
	o.Log = discardLogger()
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return fmt.Errorf("bench line: --log: %w", err)
		}
		defer f.Close()
		o.Log = slog.New(slog.NewTextHandler(f, nil))
	}
	if err := simulator(); err != nil {
		return err
	}
	stop, err := startProfiles(*cpuprofile, *traceFile)
	if err != nil {
		return err
	}
	defer stop()
	var rs []float64
	for _, r := range splitComma(*rates) {
		var rate float64
		if _, err := fmt.Sscan(r, &rate); err != nil || rate <= 0 {
			return fmt.Errorf("--rates: %q is not a rate", r)
		}
		rs = append(rs, rate)
	}
	out, err := demo.BenchLine(ctx, *o, rs, wireDemo)
	if err != nil {
		return err
	}
	stop()
	js, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(c.stdout, string(js))
	return nil
}

// simFlags adds the flags saying where the simulated line of bench line
// and bench soak runs; check (after Parse) puts them into o.
func simFlags(fs *flag.FlagSet, o *demo.Options) (check func() error) {
	where := fs.String("sim", "process", "where the simulated line runs: process (a separate one, as real devices are other hardware) or inprocess (in the controller's)")
	fs.IntVar(&o.SimNice, "sim-nice", 0, "with --sim process: added to the simulator process's niceness")
	fs.StringVar(&o.SimProxies, "sim-proxies", "off", "on: every device behind a netsim proxy (needed for link faults); off: served directly")
	return func() error {
		switch *where {
		case "process":
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("--sim process: %w", err)
			}
			o.SimCommand = []string{exe, "bench", "simproc"}
		case "inprocess":
			if o.SimNice != 0 {
				return errors.New("--sim-nice goes with --sim process")
			}
		default:
			return fmt.Errorf("--sim: %q is neither process nor inprocess", *where)
		}
		switch o.SimProxies {
		case "on":
			o.SimProxies = ""
		case "off":
		default:
			return fmt.Errorf("--sim-proxies: %q is neither on nor off", o.SimProxies)
		}
		return nil
	}
}

// benchSimProc is the simulated line of `bench line --sim process`, in
// its own process: the request on stdin, the answers on stdout (demo.ServeSim).
func benchSimProc(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("bench simproc: unexpected argument %q (it is started by bench line --sim process)", args[0])
	}
	return demo.ServeSim(ctx, c.stdin, c.stdout, discardLogger())
}

// benchSoak runs the demo line batch after batch at a rate for a duration
// and judges it for growth (internal/campaign/soak): prints its report as
// JSON and, with --results, writes the campaign result (soak.json) and the
// samples (soak-samples.jsonl).
func benchSoak(ctx context.Context, c *cli, args []string) error {
	fs, o, finish := demoFlags("bench soak", c)
	duration := fs.Duration("duration", 10*time.Minute, "how long the line runs (e.g. 10m, 1h)")
	interval := fs.Duration("interval", 0, "sampling period (default: the duration / 60, 5s … 1m)")
	batches := fs.Int("batches", 0, "run exactly this many batches of --units instead of for --duration")
	results := fs.String("results", "", "write soak.json (the campaign result) and soak-samples.jsonl into this directory")
	simulator := simFlags(fs, o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.Validate(); err != nil {
		return err
	}
	finish()
	o.Log = discardLogger()
	if err := simulator(); err != nil {
		return err
	}
	cmd := fmt.Sprintf("linectl bench soak --rate %g --duration %s --seed %d", o.Rate, *duration, o.Seed)
	if o.SimCommand == nil {
		cmd += " --sim inprocess"
	}
	if o.SimProxies == "" {
		cmd += " --sim-proxies on"
	}
	if o.Units > 0 {
		cmd += fmt.Sprintf(" --units %d", o.Units)
	}
	if *batches < 0 || (*batches > 0 && o.Units <= 0) {
		return errors.New("--batches N needs --units (the units per batch)")
	}
	if *batches > 0 {
		cmd += fmt.Sprintf(" --batches %d", *batches)
	}
	rep, err := soak.Run(ctx, soak.Config{Demo: *o, Wire: wireDemo, Duration: *duration, Batches: *batches, Interval: *interval, BatchUnits: o.Units,
		Command: cmd, Progress: func(s string) { fmt.Fprintln(c.stderr, s) }})
	if err != nil {
		return err
	}
	rep.Result.Build, rep.Result.Host = buildInfo(), hostInfo()
	js, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Fprintln(c.stdout, string(js))
	if *results != "" {
		if err := campaign.WriteResult(*results, rep.Result); err != nil {
			return err
		}
		var b strings.Builder
		for _, sm := range rep.Samples {
			line, _ := json.Marshal(sm)
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(*results, "soak-samples.jsonl"), []byte(b.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "soak: result in %s\n", filepath.Join(*results, "soak.json"))
	}
	if !rep.Result.Passed() {
		fmt.Fprintln(c.stderr, "soak FAILED:")
		for _, f := range rep.Result.Failures {
			fmt.Fprintln(c.stderr, "  "+f)
		}
		return exitError{1}
	}
	fmt.Fprintln(c.stderr, "soak passed")
	return nil
}

// startProfiles starts a CPU profile and an execution trace into the files
// named ("" for none); stop ends both (more calls do nothing).
func startProfiles(cpu, tr string) (stop func(), err error) {
	var files []*os.File
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
		for _, f := range files {
			f.Close()
		}
		stops, files = nil, nil
	}
	open := func(name string) (*os.File, error) {
		f, err := os.Create(name)
		if err == nil {
			files = append(files, f)
		}
		return f, err
	}
	if cpu != "" {
		f, err := open(cpu)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		stops = append(stops, pprof.StopCPUProfile)
	}
	if tr != "" {
		f, err := open(tr)
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("--trace: %w", err)
		}
		stops = append(stops, trace.Stop)
	}
	return stop, nil
}

func splitComma(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
