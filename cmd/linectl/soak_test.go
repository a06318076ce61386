package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracline/tracline/internal/campaign"
	"github.com/tracline/tracline/internal/campaign/soak"
)

// TestBenchSoak runs a short soak (two batches of 60 units, whatever the
// machine's speed), the simulated line in its own process (the default:
// this test binary as linectl bench simproc): batch after batch, each
// reconciled with the ground truth; the result and the samples written.
// Whether it passes is not asserted: the deadline and throughput rows are
// timings of this (shared) machine. (--sim inprocess is not run here: its
// simulators' OPC UA servers keep goroutines and ≈ 110 MB for a while after
// they close, so each batch's idle measure waits its minute.)
func TestBenchSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulated line for two batches")
	}
	t.Setenv(asLinectl, "1")
	where := "a separate process"
	dir := t.TempDir()
	c, out, stderr := testCLI()
	err := benchSoak(context.Background(), c, []string{"--rate", "1200", "--batches", "2", "--units", "60", "--interval", "2s", "--results", dir})
	t.Log(stderr.String())
	var ee exitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	var rep soak.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output: %v", err)
	}
	if len(rep.Batches) != 2 {
		t.Fatalf("%d batches", len(rep.Batches))
	}
	for _, b := range rep.Batches {
		if !b.InvariantsOK || !b.GroundTruthOK || b.Units != 60 || !strings.HasPrefix(b.Simulator, where) {
			t.Errorf("batch %+v", b)
		}
	}
	fed := 0
	for _, sm := range rep.Samples {
		fed += sm.Fed
	}
	if fed == 0 {
		t.Errorf("no unit fed in any sample: %+v", rep.Samples)
	}
	if len(rep.Samples) < 5 {
		t.Errorf("%d samples", len(rep.Samples))
	}
	rs, err := campaign.ReadResults(dir)
	if err != nil || len(rs) != 1 || rs[0].Campaign != "soak" {
		t.Fatalf("results %+v %v", rs, err)
	}
	var rows []string
	for _, r := range rs[0].Rows {
		rows = append(rows, r.What)
	}
	for _, want := range []string{"batches of ≤ 60 units at 1200/min, one after another", "verdicts within the deadline", "goroutines with no line running", "open files with no line running",
		"live heap with no line running", "resident memory with no line running"} {
		if !strings.Contains(strings.Join(rows, "\n"), want) {
			t.Errorf("no row %q in %q", want, rows)
		}
	}
	lines, err := os.ReadFile(filepath.Join(dir, "soak-samples.jsonl"))
	if err != nil || strings.Count(string(lines), "\n") != len(rep.Samples) {
		t.Errorf("samples file: %v, %d lines for %d samples", err, strings.Count(string(lines), "\n"), len(rep.Samples))
	}
}
