package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

func TestRunBatch(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "line.yaml")
	os.WriteFile(cfg, []byte("rate: 6000\nratios: [4]\nlisten: {http: 'off'}\nfaults:\n  - {kind: missing, at: 3}\n"), 0o644)
	gtFile := filepath.Join(dir, "gt.json")
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg, "--units", "30", "--seed", "5", "--fault", "no-read:rate=0.1", "--groundtruth", gtFile}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "plc modbus") || !strings.Contains(errb.String(), "30 units") {
		t.Fatalf("stderr: %s", errb.String())
	}
	b, err := os.ReadFile(gtFile)
	if err != nil {
		t.Fatal(err)
	}
	var gt sim.GroundTruth
	if err := json.Unmarshal(b, &gt); err != nil {
		t.Fatal(err)
	}
	if err := gt.Check(); err != nil {
		t.Fatal(err)
	}
	// No controller: the devsim printer's buffer is empty (nothing printed)
	// and no unit gets a verdict.
	if gt.Seed != 5 || len(gt.Units) != 30 || gt.Summary.Missing != 1 || gt.Summary.Good != 0 || gt.Units[0].Code != "" {
		t.Fatalf("summary %+v", gt.Summary)
	}
}

func TestRunBadConfig(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		{"--fault", "fire:rate=1"},
		{"--rate", "99999"},
		{"--config", "/nonexistent.yaml"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("rate: 600\nratoi: [3]\n"), 0o644)
	if code := run([]string{"--config", cfg}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "ratoi") {
		t.Errorf("unknown key: exit %d: %s", code, errb.String())
	}
}
