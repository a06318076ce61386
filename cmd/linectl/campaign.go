package main

// linectl campaign: the proof campaigns of issue 13 (internal/campaign),
// each writing its result into a results directory, and the report that
// renders docs/reliability.md from those results.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/campaign"
	"github.com/tracline/tracline/internal/campaign/lineproc"
)

// campaignCommands are linectl campaign's subcommands. One line each; a
// campaign's flags and wiring live in its own file (campaign_input.go for
// the bad-input campaign).
func campaignCommands() map[string]command {
	return map[string]command{
		"crash":  {"SIGKILL the controller under load, recover through the API, check the ledger against the ground truth", campaignCrash},
		"fault":  {"cut, freeze, slow and garble each device; the line holds naming it, recovers, reconciles", campaignFault},
		"report": {"render docs/reliability.md from the campaigns' result files", campaignReport},
		"input":  {"fuzz every parser of outside input; the HMI's refusals leave the ledger unchanged", campaignInput},
	}
}

func cmdCampaign(ctx context.Context, c *cli, args []string) error {
	subs := campaignCommands()
	if len(args) == 0 || subs[args[0]].run == nil {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		fmt.Fprintf(&b, "usage: linectl campaign %s [flags]", strings.Join(names, "|"))
		for _, n := range names {
			fmt.Fprintf(&b, "\n  %-7s %s", n, subs[n].summary)
		}
		return errors.New(b.String())
	}
	return subs[args[0]].run(ctx, c, args[1:])
}

// defaultResults is where campaigns write their results, and report reads
// them: the repository's docs/reliability/.
const defaultResults = "docs/reliability"

// lineFlags are the flags of a campaign that runs a simulated line.
type lineFlags struct {
	results, work, linesim, config *string
	keep                           *bool
	timeout                        *time.Duration
}

func addLineFlags(fs *flag.FlagSet) lineFlags {
	return lineFlags{
		results: fs.String("results", defaultResults, "directory the result JSON is written to"),
		work:    fs.String("work", "", "working directory for the lines' configs, logs and ledgers (default: a new temporary one)"),
		linesim: fs.String("linesim", "", "the linesim binary (default: next to linectl, then $PATH)"),
		config:  fs.String("config", "examples/line-linesim.yaml", "the controller config the campaign's lines are made from (its devices' addresses are replaced)"),
		keep:    fs.Bool("keep", false, "keep the working directory (logs, ledgers) after a passed run"),
		timeout: fs.Duration("timeout", time.Hour, "give up after this long"),
	}
}

// env resolves the programs and the config into a campaign.Env; done
// removes the working directory unless it is to be kept.
func (f lineFlags) env(c *cli) (env campaign.Env, done func(passed bool), err error) {
	self, err := os.Executable()
	if err != nil {
		return env, nil, err
	}
	sim := *f.linesim
	if sim == "" {
		if p := filepath.Join(filepath.Dir(self), "linesim"); fileExists(p) {
			sim = p
		} else if p, err := exec.LookPath("linesim"); err == nil {
			sim = p
		} else {
			return env, nil, errors.New("linesim not found next to linectl nor in $PATH: build it (go build -o DIR/linesim ./cmd/linesim) and give --linesim DIR/linesim")
		}
	}
	cfg, err := campaignLineConfig(*f.config)
	if err != nil {
		return env, nil, err
	}
	dir := *f.work
	temp := dir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "tracline-campaign-"); err != nil {
			return env, nil, err
		}
	}
	env = campaign.Env{Bins: lineproc.Binaries{Linesim: sim, Linectl: self}, Config: cfg, Dir: dir,
		Logf: func(format string, args ...any) { c.log.Info(fmt.Sprintf(format, args...)) }}
	done = func(passed bool) {
		if temp && passed && !*f.keep {
			os.RemoveAll(dir)
			return
		}
		c.log.Info("campaign: logs and ledgers kept", "dir", dir)
	}
	return env, done, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// campaignLineConfig makes the campaigns' controller config from a config
// file written for linesim (examples/line-linesim.yaml): its devices on
// the addresses a line's linesim serves, an old-style batch section (the
// batch starts at the first start and resumes at every restart), a gate
// 200 ms after the trigger, and a one-unit challenge test (a pass).
func campaignLineConfig(path string) (lineproc.LineConfig, error) {
	base, err := loadLineFile(path)
	if err != nil {
		return nil, err
	}
	if len(base.Devices.AggCameras) != 1 || len(base.Devices.LabelScanners) != 1 || (base.Devices.LabelPrinter == nil && len(base.Devices.LabelPrinters) != 1) {
		return nil, fmt.Errorf("%s: a campaign's line needs one aggregation camera, one label scanner and its label printer (label_printers: [one])", path)
	}
	for _, sig := range []string{"gate_outcome", "gate_ack", "controller_alive"} {
		if _, ok := base.Devices.PLC.Signals[sig]; !ok {
			return nil, fmt.Errorf("%s: plc.signals.%s is not mapped (the campaigns need the gate's confirmation, its acknowledgement and the watchdog)", path, sig)
		}
	}
	files := base.productFiles()
	products := make([]string, len(files))
	for i, p := range files {
		if !filepath.IsAbs(p) {
			p = filepath.Join(base.dir, p)
		}
		if products[i], err = filepath.Abs(p); err != nil {
			return nil, err
		}
	}
	raw, err := yaml.Marshal(base)
	if err != nil {
		return nil, err
	}
	return func(listen sim.Listen, batch string, units int) ([]byte, error) {
		// A fresh copy of the base config for each line.
		var lf lineFile
		if err := yaml.Unmarshal(raw, &lf); err != nil {
			return nil, err
		}
		lf.Product, lf.Products = products[0], nil
		lf.Line = "PROC-L1"
		lf.Batch = &batchFile{ID: batch, ProductionDate: "2026-11-23", Expiry: "2028-11-22", Planned: units, Levels: 2}
		lf.Settings.Gate, lf.Settings.Challenge = 200*time.Millisecond, []string{"pass"}
		lf.Devices.PLC.Modbus.Address = listen.Modbus
		lf.Devices.Printer.Stream.Endpoint = "opc.tcp://" + listen.Printer
		lf.Devices.Camera.Stream.Endpoint = "opc.tcp://" + listen.Camera
		lf.Devices.AggCameras[0].Stream.Endpoint = "opc.tcp://" + listen.AggCamera
		lf.Devices.LabelScanners[0].Stream.Endpoint = "opc.tcp://" + listen.LabelScanner
		if len(lf.Devices.LabelPrinters) == 1 {
			lf.Devices.LabelPrinters[0].Address = listen.Label // level 2's labeller's (linesim.listen.label_printer)
		} else {
			lf.Devices.LabelPrinter.Address = listen.Label
		}
		return yaml.Marshal(lf)
	}, nil
}

func campaignCrash(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("campaign crash", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	lf := addLineFlags(fs)
	units := fs.Int("units", 3000, "units in the batch")
	rate := fs.Float64("rate", 1200, "units per minute")
	kills := fs.Int("kills", 25, "SIGKILLs of the controller over the batch")
	seed := fs.Uint64("seed", 0, "seed of the kill moments and the simulator (0: from the clock; the result records it)")
	down := fs.Duration("receiver-down", 30*time.Second, "how long the hand-off receivers are down after the release (0: not taken down; the issue's figure is 1h, with --timeout 2h)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *down < 0 {
		return fmt.Errorf("--receiver-down %v: want 0 or more", *down)
	}
	env, done, err := lf.env(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *lf.timeout)
	defer cancel()
	res, err := campaign.Crash(ctx, env, campaign.CrashOptions{Units: *units, Rate: *rate, Kills: *kills, Seed: *seed, ReceiverDown: *down,
		Command: fmt.Sprintf("linectl campaign crash --units %d --rate %g --kills %d --receiver-down %v", *units, *rate, *kills, *down)})
	return finishCampaign(c, res, err, *lf.results, done)
}

// finishCampaign writes a campaign's result and says how it went; a
// campaign that ran but failed a check exits 1 after writing its result.
func finishCampaign(c *cli, res campaign.Result, err error, results string, done func(bool)) error {
	if err != nil {
		done(false)
		return err
	}
	if werr := campaign.WriteResult(results, res); werr != nil {
		done(false)
		return werr
	}
	var b bytes.Buffer
	campaign.Report(&b, []campaign.Result{res})
	fmt.Fprintf(c.stdout, "%s\nresult written to %s\n", b.String(), filepath.Join(results, res.Campaign+".json"))
	done(res.Passed())
	if !res.Passed() {
		return exitError{1}
	}
	return nil
}

func campaignReport(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("campaign report", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	results := fs.String("results", defaultResults, "directory of the campaigns' result files")
	out := fs.String("out", "docs/reliability.md", "the report (- = stdout)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	rs, err := campaign.ReadResults(*results)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := campaign.Report(&b, rs); err != nil {
		return err
	}
	if *out == "-" {
		_, err := c.stdout.Write(b.Bytes())
		return err
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: %d campaign result(s) from %s\n", *out, len(rs), *results)
	return nil
}

func campaignFault(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("campaign fault", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	lf := addLineFlags(fs)
	devices := fs.String("devices", "", "comma-separated devices (default every one: plc, printer, camera, agg_camera, label_printer, label_scanner; none: only the disk-full try)")
	kinds := fs.String("kinds", "", "comma-separated link faults (default every one: cut, stall, garble, slow, freeze-heartbeat — the PLC's only)")
	rate := fs.Float64("rate", 1200, "units per minute")
	perTrial := fs.Int("per-fault", 40, "units of production before each fault")
	diskFull := fs.Bool("disk-full", true, "also fill the ledger's disk (a tmpfs the campaign mounts: needs root)")
	seed := fs.Uint64("seed", 0, "the simulator's seed (0: from the clock; the result records it)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	env, done, err := lf.env(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *lf.timeout)
	defer cancel()
	cmdline := fmt.Sprintf("linectl campaign fault --rate %g --per-fault %d --disk-full=%t", *rate, *perTrial, *diskFull)
	if *devices != "" {
		cmdline += " --devices " + *devices
	}
	if *kinds != "" {
		cmdline += " --kinds " + *kinds
	}
	res, err := campaign.Fault(ctx, env, campaign.FaultOptions{Devices: splitComma(*devices), Kinds: splitComma(*kinds), Rate: *rate,
		PerTrial: *perTrial, Seed: *seed, DiskFull: *diskFull, Command: cmdline})
	return finishCampaign(c, res, err, *lf.results, done)
}
