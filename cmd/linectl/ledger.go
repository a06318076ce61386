package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/aggregation/ledgerbench"
	"github.com/tracline/tracline/tracecode"
)

func newFlags(name string, c *cli) *flag.FlagSet {
	fs := flag.NewFlagSet("linectl "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// cmdVerify: linectl verify --data DIR [--json]
func cmdVerify(ctx context.Context, c *cli, args []string) error {
	fs := newFlags("verify", c)
	data := fs.String("data", "", "ledger data directory (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	cpuprof := fs.String("cpuprofile", "", "write a CPU profile of the verification to this file")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *data == "" {
		return errors.New("--data DIR is required")
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if os.Getenv("GOGC") == "" {
		// Verify's replay table lives outside the Go heap; what is in the
		// heap (Badger's memtable, the events in hand) needs no 100%
		// headroom: at 1M units 50 saved some 45 MB of 455 at no
		// measurable CPU (docs/ledger.md).
		debug.SetGCPercent(50)
	}
	rep, err := aggregation.VerifyDir(ctx, *data, aggregation.Options{Logger: c.log})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(c.stdout, "FAIL", p)
		}
		if rep.Truncated > 0 {
			fmt.Fprintf(c.stdout, "FAIL … and %d more problems\n", rep.Truncated)
		}
		status := "OK"
		if !rep.OK() {
			status = fmt.Sprintf("FAILED (%d problems)", len(rep.Problems)+rep.Truncated)
		}
		fmt.Fprintf(c.stdout, "verify %s: %d events, %d codes, %d batches: %s\n", *data, rep.Events, rep.Codes, rep.Batches, status)
	}
	if !rep.OK() {
		return exitError{1}
	}
	return nil
}

// cmdBackup: linectl backup --data DIR [--out FILE]
func cmdBackup(ctx context.Context, c *cli, args []string) error {
	fs := newFlags("backup", c)
	data := fs.String("data", "", "ledger data directory (required)")
	out := fs.String("out", "", "backup file (default: stdout)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *data == "" {
		return errors.New("--data DIR is required")
	}
	if _, err := os.Stat(*data); err != nil {
		return fmt.Errorf("no ledger at %s: %w", *data, err)
	}
	s, err := aggregation.Open(*data, aggregation.Options{Logger: c.log})
	if err != nil {
		return err
	}
	defer s.Close()
	var w io.Writer = c.stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if err := s.Backup(ctx, f); err != nil {
			f.Close()
			os.Remove(*out)
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return s.Backup(ctx, w)
}

// cmdRestore: linectl restore --data DIR FILE ("-" for stdin)
func cmdRestore(ctx context.Context, c *cli, args []string) error {
	fs := newFlags("restore", c)
	data := fs.String("data", "", "empty data directory to restore into (required)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *data == "" || fs.NArg() != 1 {
		return errors.New("usage: linectl restore --data DIR FILE (FILE may be - for stdin)")
	}
	var r io.Reader = c.stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	if err := aggregation.Restore(ctx, *data, r, aggregation.Options{Logger: c.log}); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "restored into %s; run linectl verify --data %s\n", *data, *data)
	return nil
}

// benchLedger: linectl bench ledger [--units N] [--writers W] [--data DIR] [--line-samples S] [--postgres [--peer-conns N]]
func benchLedger(ctx context.Context, c *cli, args []string) error {
	fs := newFlags("bench ledger", c)
	cfg := ledgerbench.Default()
	fs.IntVar(&cfg.Units, "units", cfg.Units, "level-1 units in the benchmark batch")
	fs.IntVar(&cfg.Writers, "writers", cfg.Writers, "concurrent writers at full load")
	fs.IntVar(&cfg.LineRate, "line-rate", cfg.LineRate, "transitions per second at line load")
	fs.IntVar(&cfg.LineSamples, "line-samples", cfg.LineSamples, "transitions measured at line load")
	fs.StringVar(&cfg.Dir, "data", "", "directory for the benchmark ledger (default: a temporary one, removed after)")
	fs.IntVar(&cfg.MemLimitMB, "memlimit-mb", cfg.MemLimitMB, "soft Go memory limit during the run (0: none)")
	fs.BoolVar(&cfg.SkipVerify, "skip-verify", false, "do not verify the ledger at the end (it replays every event)")
	fs.BoolVar(&cfg.Prealloc, "prealloc", false, "allocate every unit's code during setup: the full load then only sends and commissions")
	fs.BoolVar(&cfg.NoSync, "nosync", false, "skip fsync (measures everything but the disk; never on a line)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the full-load phase to this file")
	heap := fs.String("memprofile", "", "write a heap profile at the end of the full-load phase to this file")
	traceOut := fs.String("trace", "", "write an execution trace (runtime/trace) of the full-load phase to this file")
	fs.StringVar(&cfg.Peer, "peer", "", "after ours, run the same full load on this peer and state ours against it: postgres (a throwaway PostgreSQL cluster)")
	postgres := fs.Bool("postgres", false, "same as --peer postgres")
	fs.IntVar(&cfg.PeerConns, "peer-conns", 0, "the peer's connections, each committing groups of up to 1,000 rows (default: 2 per CPU, 4..64)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *postgres {
		if cfg.Peer != "" && cfg.Peer != ledgerbench.PeerPostgres {
			return fmt.Errorf("--postgres and --peer %s: give one", cfg.Peer)
		}
		cfg.Peer = ledgerbench.PeerPostgres
	}
	cfg.Logger = c.log
	for _, p := range []struct {
		path string
		w    *io.Writer
	}{{*profile, &cfg.Profile}, {*heap, &cfg.HeapProfile}, {*traceOut, &cfg.Trace}} {
		if p.path == "" {
			continue
		}
		f, err := os.Create(p.path)
		if err != nil {
			return err
		}
		defer f.Close()
		*p.w = f
	}
	res, err := ledgerbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// openPoolStore opens the ledger in dir as the pools' store; the returned
// func closes it.
func openPoolStore(ctx context.Context, c *cli, dir string) (tracecode.PoolStore, func() error, error) {
	if dir == "" {
		return nil, nil, errors.New("--data DIR is required")
	}
	s, err := aggregation.Open(dir, aggregation.Options{Logger: c.log})
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}
