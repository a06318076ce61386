package line

import (
	"sort"
	"strings"
)

// This file adds, without changing the Engineering interface, what the
// engineer's screen needs to show the configuration as loaded: the line's
// machine settings (from LineConfig.Machine) and each device's settings as
// the wiring reports them (an optional ability of Engineering).

// DeviceConfig is one device's configuration as the wiring loaded it, in
// words an engineer checks against the wiring diagram: plain text, secrets
// (passwords, keys) left out by the wiring.
type DeviceConfig struct {
	Name     string    `json:"name"`               // plc, printer, camera, label_printer, …
	Kind     string    `json:"kind"`               // plc, printer, camera, label-printer, scanner
	Driver   string    `json:"driver,omitempty"`   // modbus, opcua, zpl, sim
	Endpoint string    `json:"endpoint,omitempty"` // address as configured
	Settings []Setting `json:"settings"`           // in the config file's order
}

// Setting is one configured value (a PLC signal's address, a timeout).
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ConfigReporter is an optional ability of Engineering: the devices'
// configuration as loaded.
type ConfigReporter interface {
	DeviceConfig() []DeviceConfig
}

// MachineSettings are the line's settings as loaded (a batch's work order
// adds its ratios and planned quantity).
type MachineSettings struct {
	DeadlineMs        int64    `json:"deadline_ms"`
	PrinterBuffer     int      `json:"printer_buffer"`
	AllocChunk        int      `json:"alloc_chunk"`
	MinGrade          string   `json:"min_grade,omitempty"`
	GateConfirm       bool     `json:"gate_confirm"`
	GateTimeoutMs     int64    `json:"gate_timeout_ms,omitempty"`
	LabelMismatchHold int      `json:"label_mismatch_hold,omitempty"`
	Challenge         []string `json:"challenge"`
	IOTimeoutMs       int64    `json:"io_timeout_ms,omitempty"`
}

// LoadedConfig is the line's configuration as loaded, for the engineer.
type LoadedConfig struct {
	Line    string          `json:"line"`
	Machine MachineSettings `json:"machine"`
	// Devices: as the wiring's Engineering reports them (ConfigReporter);
	// otherwise only the names of the devices wired, with no settings.
	Devices []DeviceConfig `json:"devices"`
	// Reported is false when the wiring reports no device settings.
	Reported bool `json:"reported"`
}

// LoadedConfig returns the line's configuration as loaded.
func (l *Line) LoadedConfig() LoadedConfig {
	m := l.cfg.Machine
	out := LoadedConfig{Line: l.cfg.Line, Machine: MachineSettings{
		DeadlineMs: m.Deadline.Milliseconds(), PrinterBuffer: m.PrinterBuffer, AllocChunk: m.AllocChunk,
		GateConfirm: m.GateConfirm, GateTimeoutMs: m.GateTimeout.Milliseconds(), LabelMismatchHold: m.LabelMismatchHold,
		Challenge: []string{}, IOTimeoutMs: l.cfg.IOTimeout.Milliseconds()}}
	if m.MinGrade != 0 {
		out.Machine.MinGrade = string(rune(m.MinGrade))
	}
	for _, s := range m.Challenge {
		exp := s.Expect.String()
		if s.Expect == ReasonNone {
			exp = "pass"
		}
		step := s.Name + " → " + exp
		if s.Name == "" || s.Name == exp {
			step = exp
		}
		out.Machine.Challenge = append(out.Machine.Challenge, strings.TrimSpace(step))
	}
	if cr, ok := l.cfg.Engineering.(ConfigReporter); ok {
		out.Devices, out.Reported = cr.DeviceConfig(), true
	}
	if out.Devices == nil {
		out.Devices = l.wiredDevices()
	}
	for i := range out.Devices {
		if out.Devices[i].Settings == nil {
			out.Devices[i].Settings = []Setting{}
		}
	}
	return out
}

// wiredDevices names the devices the wiring gave, without settings.
func (l *Line) wiredDevices() []DeviceConfig {
	d := l.cfg.Devices
	var out []DeviceConfig
	add := func(present bool, name, kind string) {
		if present {
			out = append(out, DeviceConfig{Name: name, Kind: kind})
		}
	}
	add(d.PLC != nil, "plc", "plc")
	add(d.Printer != nil, "printer", "printer")
	add(d.Labels != nil, "label_printer", "label-printer")
	add(d.ReworkLabels != nil, "rework_label_printer", "label-printer")
	seen := map[string]bool{"plc": true, "printer": true}
	var names []string
	for n := range l.cfg.Links {
		if !seen[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, DeviceConfig{Name: n})
	}
	return out
}
