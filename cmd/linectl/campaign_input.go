package main

// linectl campaign input: the bad-input campaign (internal/campaign/badinput)
// against a demo line's real HMI and ledger, plus the line config's loader.
// Registered in campaign.go's campaignCommands.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tracline/tracline/examples"
	"github.com/tracline/tracline/internal/campaign"
	"github.com/tracline/tracline/internal/campaign/badinput"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/tracecode"
)

func campaignInput(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("campaign input", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	budget := fs.Duration("budget", 30*time.Second, "fuzzing time per parser")
	tries := fs.Int("tries", 0, "at most this many inputs per parser (0: the budget alone)")
	seed := fs.Uint64("seed", 0, "the fuzzer's seed (0: from the clock; the result names it)")
	results := fs.String("results", "", "write the result (input.json) into this directory")
	noHTTP := fs.Bool("no-http", false, "parsers only: no demo line, no HMI")
	parsers := fs.String("parsers", "", "only the parsers whose name holds one of these words, comma-separated (e.g. scan,line config,HMI)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *budget <= 0 || *tries < 0 {
		return errors.New("--budget must be positive and --tries not negative")
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	fmt.Fprintf(c.stderr, "campaign input: seed %d, budget %s per parser\n", *seed, *budget)
	targets, closeTargets := badinput.Targets()
	defer closeTargets()
	lt, closeLT, err := lineConfigTarget()
	if err != nil {
		return err
	}
	defer closeLT()
	targets = append(targets, lt)
	cmd := fmt.Sprintf("linectl campaign input --budget %s --seed %d", *budget, *seed)
	if *tries > 0 {
		cmd += fmt.Sprintf(" --tries %d", *tries)
	}
	if *parsers != "" {
		cmd += fmt.Sprintf(" --parsers %q", *parsers)
	}
	cfg := badinput.Config{Options: badinput.Options{Seed: *seed, Budget: *budget, Tries: *tries}, Targets: targets, Only: splitComma(*parsers),
		Progress: func(s string) { fmt.Fprintln(c.stderr, "  "+s) }}
	if !*noHTTP {
		srv, stop, err := campaignHMI(ctx, c)
		if err != nil {
			return err
		}
		defer stop()
		cfg.Server = srv
	} else {
		cmd += " --no-http"
	}
	cfg.Command = cmd
	res, err := badinput.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.Build, res.Host = buildInfo(), hostInfo()
	return writeCampaign(c, res, *results)
}

// writeCampaign prints the result as JSON, writes it into dir when given,
// and fails (exit 1) when the campaign did not pass.
func writeCampaign(c *cli, res campaign.Result, dir string) error {
	js, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintln(c.stdout, string(js))
	if dir != "" {
		if err := campaign.WriteResult(dir, res); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "campaign %s: result in %s\n", res.Campaign, filepath.Join(dir, res.Campaign+".json"))
	}
	if !res.Passed() {
		fmt.Fprintf(c.stderr, "campaign %s FAILED:\n", res.Campaign)
		for _, f := range res.Failures {
			fmt.Fprintln(c.stderr, "  "+f)
		}
		return exitError{1}
	}
	fmt.Fprintf(c.stderr, "campaign %s passed\n", res.Campaign)
	return nil
}

// campaignHMI starts a demo line (simulators stopped, no batch) with its
// HMI served on loopback exactly as `linectl demo` serves it: the demo
// accounts, the real ledger on disk.
func campaignHMI(ctx context.Context, c *cli) (*badinput.Server, func(), error) {
	quiet := &cli{stdin: c.stdin, stdout: c.stdout, stderr: c.stderr, log: discardLogger()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	d, err := demo.Start(ctx, demo.Options{Log: discardLogger(), Faults: demo.DefaultFaults()}, wireDemo)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	s := d.Setup()
	stopWeb, err := serveWeb(ln, web{Line: d.Line(), Store: d.Store(), Demo: true, Handoff: demoLineFile(s).Handoff,
		Products: map[string]*tracecode.Product{s.ProductKey: s.Product}, Data: d.Dir()}, quiet)
	if err != nil {
		d.Close()
		ln.Close()
		return nil, nil, err
	}
	srv := &badinput.Server{URL: "http://" + ln.Addr().String(), Head: d.Store().Head, Requested: badinput.RequestedEvents(d.Store()), Password: "demo",
		Users: map[string]string{"operator": "operator", "qa": "qa", "engineer": "engineer", "admin": "admin"}}
	return srv, func() {
		stopWeb()
		d.Close()
		os.RemoveAll(d.Dir())
	}, nil
}

// lineConfigTarget is the controller's config file (linectl run --config)
// as a fuzz target: loaded from a file as `linectl run` loads it, and an
// accepted one must give the line's machine config.
func lineConfigTarget() (badinput.Target, func(), error) {
	base, err := examples.FS.ReadFile("line-linesim.yaml")
	if err != nil {
		return badinput.Target{}, nil, err
	}
	dir, err := os.MkdirTemp("", "tracline-campaign-input-")
	if err != nil {
		return badinput.Target{}, nil, err
	}
	// The example names its product file beside it.
	for _, f := range []string{examples.GS1Product, examples.NMPAProduct} {
		b, err := examples.FS.ReadFile(f)
		if err != nil {
			return badinput.Target{}, nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return badinput.Target{}, nil, err
		}
	}
	path := filepath.Join(dir, "line.yaml")
	seeds := [][]byte{base, []byte(""), []byte("line: x\n"), []byte("line: [\n"),
		[]byte("line: x\nproduct: p.yaml\nbatch: {id: B1, planned: -1}\nsettings: {gate: 1ns, margin: 2ns, challenge: [nope], min_grade: ZZ}\n"),
		[]byte("devices:\n  plc: {protocol: modbus, signals: {verdict: {table: coil, address: 70000, type: verdict}}}\n  aggregation_cameras: [{}, {name: x}]\n  label_printer: {}\n"),
		[]byte("devices:\n  aggregation_cameras: [{}, {}]\n  label_printers: [{address: 127.0.0.1:9100}, {address: 127.0.0.1:9100}, {}]\n  label_printer: {address: x}\n"),
		[]byte("a: &a [*a, *a]\nb: *a\n"), []byte(strings.ReplaceAll(string(base), "20ms", "-20ms"))}
	t := badinput.Target{
		Name:   "line config (linectl run --config: the controller's YAML, devices and hand-off included)",
		Seeds:  seeds,
		Tokens: []string{"\n", ": ", "- ", "line:", "product:", "settings:", "devices:", "plc:", "printer:", "camera:", "label_printers:", "handoff:", "hmi:", "gate:", "margin:", "endpoint:", "address:", "ms", "s", "-1", "&a", "*a", "{", "}", "[", "]"},
		MaxLen: 32 << 10,
		Check: func(_ context.Context, in []byte) badinput.Outcome {
			if err := os.WriteFile(path, in, 0o644); err != nil {
				return badinput.Outcome{Problem: "writing the input: " + err.Error()}
			}
			lf, err := loadLineFile(path)
			if err != nil {
				if lf != nil {
					return badinput.Outcome{Err: err, Problem: "a config returned with the error"}
				}
				if !strings.Contains(err.Error(), path) {
					return badinput.Outcome{Err: err, Problem: "the error does not name the file: " + err.Error()}
				}
				return badinput.Outcome{Err: err}
			}
			if _, err := lf.machineConfig(); err != nil {
				return badinput.Outcome{Accepted: true, Problem: "accepted, but its machine config fails: " + err.Error()}
			}
			return badinput.Outcome{Accepted: true}
		},
	}
	return t, func() { os.RemoveAll(dir) }, nil
}

// commit, set at link time (-ldflags "-X main.commit=$(git rev-parse
// --short HEAD)"), names the build where the binary's own VCS stamp is
// missing (built with -buildvcs=false, or outside the repository).
var commit string

// buildInfo is the build's version and commit, as far as the binary knows.
func buildInfo() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return commit
	}
	s := bi.Main.Version
	if commit != "" {
		s += " " + commit
	}
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			if len(kv.Value) > 12 {
				kv.Value = kv.Value[:12]
			}
			s += " " + kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				s += "+dirty"
			}
		}
	}
	return strings.TrimSpace(s + " " + bi.GoVersion)
}

// hostInfo is the machine in a few words.
func hostInfo() string {
	return fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}
