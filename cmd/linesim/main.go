// Command linesim plays a packaging line over real protocols on loopback:
// the PLC (Modbus TCP and OPC UA, with the reject gate's outcome ring and
// the controller watchdog), a coding printer, a vision camera, an
// aggregation camera, a label scanner and a ZPL label printer per level,
// wired to a simulated conveyor with injectable faults. It prints the
// endpoints at start and writes the ground truth (every unit, its code, its
// fate, its gate outcome, its parents; every group and what its label
// scanner read) as JSON on exit; GET /groundtruth serves it while running,
// POST /purge and POST /bin/empty are the operator's hands.
//
//	linesim [--config FILE] [--seed N] [--rate U/min] [--units N]
//	        [--fault KIND:key=val,…]... [--groundtruth FILE|-] [--stay]
//
// Everything is wired here from decoded config; see examples/linesim.yaml
// and docs/devices.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
)

// fileConfig is the linesim config file: the line (sim.Config) at the top
// level and the simulated devices' settings under devices.
type fileConfig struct {
	sim.Config `yaml:",inline"`
	Devices    devsim.Config `yaml:"devices"`
}

func main() {
	// The gopcua server logs through the standard logger; its start-up chatter
	// is not the engineer's business.
	log.SetOutput(io.Discard)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type faultFlags []sim.Fault

func (f *faultFlags) String() string { return fmt.Sprint(len(*f), " faults") }
func (f *faultFlags) Set(s string) error {
	ft, err := sim.ParseFault(s)
	if err != nil {
		return err
	}
	*f = append(*f, ft)
	return nil
}

// lockedWriter serialises writes: the simulator logs from its goroutines
// to the same stderr that run prints to.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func run(args []string, stdout, stderr io.Writer) int {
	stderr = &lockedWriter{w: stderr}
	fs := flag.NewFlagSet("linesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgFile = fs.String("config", "", "line config (YAML, see examples/linesim.yaml)")
		seed    = fs.Uint64("seed", 0, "RNG seed (overrides the config)")
		rate    = fs.Float64("rate", 0, "units per minute (overrides the config)")
		units   = fs.Int("units", -1, "units to run, 0 = until stopped (overrides the config)")
		gtFile  = fs.String("groundtruth", "-", "write the ground truth JSON here on exit (- = stdout)")
		stay    = fs.Bool("stay", false, "keep serving after the last unit left the line (until Ctrl-C)")
		verbose = fs.Bool("v", false, "debug logging")
		faults  faultFlags
	)
	fs.Var(&faults, "fault", "inject a fault, e.g. no-read:rate=0.02 or plc-disconnect:at=100,for=2s (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var fc fileConfig
	if *cfgFile != "" {
		b, err := os.ReadFile(*cfgFile)
		if err != nil {
			fmt.Fprintf(stderr, "linesim: %v\n", err)
			return 2
		}
		if fc, err = decodeConfig(b); err != nil {
			fmt.Fprintf(stderr, "linesim: %s: %v\n", *cfgFile, err)
			return 2
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "seed":
			fc.Seed = *seed
		case "rate":
			fc.Rate = *rate
		case "units":
			fc.Units = *units
		}
	})
	fc.Faults = append(fc.Faults, faults...)
	if err := errors.Join(fc.Config.Validate(), fc.Devices.Validate()); err != nil {
		fmt.Fprintf(stderr, "linesim: config:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := sim.New(fc.Config, log, sim.WithDevices(devsim.Factory(fc.Devices, log)))
	if err != nil {
		fmt.Fprintf(stderr, "linesim: %v\n", err)
		return 2
	}
	if err := s.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "linesim: %v\n", err)
		return 1
	}
	ep := s.Endpoints()
	fmt.Fprintf(stderr, "linesim: serving (seed %d, %g units/min)\n", fc.WithDefaults().Seed, fc.WithDefaults().Rate)
	for _, l := range []struct{ name, addr string }{
		{"plc modbus", ep.Modbus + " (unit id 1)"}, {"plc opc ua", ep.PLCOPCUA}, {"printer", ep.Printer},
		{"camera", ep.Camera}, {"agg cameras", strings.Join(ep.AggCameras, " ")}, {"label printers", strings.Join(ep.LabelPrinters, " ") + " (" + string(ep.Labellers) + ")"},
		{"label scanners", strings.Join(ep.LabelScanners, " ")}, {"ground truth", ep.HTTP},
	} {
		fmt.Fprintf(stderr, "  %-15s %s\n", l.name, l.addr)
	}

	select {
	case <-ctx.Done():
	case <-s.Done():
		log.Info("all units left the line")
		if *stay {
			<-ctx.Done()
		}
	}
	gt := s.GroundTruth()
	s.Close()
	if err := writeGroundTruth(*gtFile, stdout, gt); err != nil {
		fmt.Fprintf(stderr, "linesim: ground truth: %v\n", err)
		return 1
	}
	sum := gt.Summary
	fmt.Fprintf(stderr, "linesim: %d units: %d good, %d rejected (%d without verdict), %d escaped, %d missing, %d on the line\n",
		sum.Triggered, sum.Good, sum.Rejected, sum.NoVerdict, sum.Escaped, sum.Missing, sum.OnLine)
	if err := gt.Check(); err != nil {
		fmt.Fprintf(stderr, "linesim: ground truth inconsistent (simulator bug):\n%v\n", err)
		return 1
	}
	return 0
}

// decodeConfig decodes a config file; unknown keys are errors.
func decodeConfig(b []byte) (fileConfig, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fileConfig{}, err
	}
	return fc, nil
}

func writeGroundTruth(file string, stdout io.Writer, gt sim.GroundTruth) error {
	b, err := json.MarshalIndent(gt, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if file == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
