package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// examples/linesim.yaml decodes, validates and shows the keys of issue 12
// with their defaults; its fault list has no gate or label fault.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../examples/linesim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fc, err := decodeConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(fc.Config.Validate(), fc.Devices.Validate()); err != nil {
		t.Fatal(err)
	}
	if fc.Listen.LabelScanner != "127.0.0.1:4844" || fc.Positions.LabelScanner != 30*time.Millisecond ||
		fc.ControllerWatchdog == nil || *fc.ControllerWatchdog != sim.DefaultControllerWatchdog || fc.Labellers != sim.LabellersPerLevel {
		t.Fatalf("example config %+v", fc.Config)
	}
	for _, f := range fc.Faults {
		if f.Kind.IsGateFault() || f.Kind.IsLabelFault() {
			t.Errorf("example's default faults include %s", f.Kind)
		}
	}
}

func TestDecodeWatchdog(t *testing.T) {
	tests := []struct {
		yaml string
		want time.Duration // -1: the default (nil)
		err  string
	}{
		{"rate: 600\n", -1, ""},
		{"controller_watchdog: 0s\n", 0, ""},
		{"controller_watchdog: 250ms\n", 250 * time.Millisecond, ""},
		{"controller_watchdog: 0\n", 0, "time.Duration"},
		{"controller_watchdog: soon\n", 0, "soon"},
	}
	for _, tc := range tests {
		fc, err := decodeConfig([]byte(tc.yaml))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want < 0 && fc.ControllerWatchdog != nil, tc.want >= 0 && (fc.ControllerWatchdog == nil || *fc.ControllerWatchdog != tc.want):
			t.Errorf("%q: watchdog %v, want %v", tc.yaml, fc.ControllerWatchdog, tc.want)
		}
	}
}

// A gate fault from the command line: without a controller no unit has a
// verdict, so the reject-failed drawn at unit 3 lets unit 3 escape.
func TestRunGateFault(t *testing.T) {
	dir := t.TempDir()
	gtFile := filepath.Join(dir, "gt.json")
	var out, errb bytes.Buffer
	code := run([]string{"--units", "6", "--rate", "6000", "--fault", "reject-failed:at=3", "--groundtruth", gtFile}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "label scanners") || !strings.Contains(errb.String(), "1 escaped") {
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
	if u := gt.Units[2]; u.Fate != sim.FateEscaped || u.Gate != sim.GateRejectFailed || u.GateFault != sim.FaultRejectFailed {
		t.Fatalf("unit 3 %+v", u)
	}
	if !strings.Contains(string(b), `"gate": "reject-failed"`) || gt.PLC.Escaped != 1 || gt.Summary.Gate["rejected"] != 5 {
		t.Fatalf("ground truth JSON: summary %+v", gt.Summary)
	}
}
