package main

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// deviceConfigs is the devices section as loaded, for the engineer's
// screen (line.ConfigReporter): every device with its settings flattened
// to dotted keys, secrets left out.
func deviceConfigs(d devicesFile) []line.DeviceConfig {
	var out []line.DeviceConfig
	add := func(name, kind, driver, endpoint string, v any) {
		dc := line.DeviceConfig{Name: name, Kind: kind, Driver: driver, Endpoint: endpoint, Settings: []line.Setting{}}
		b, err := yaml.Marshal(v)
		var tree any
		if err == nil {
			err = yaml.Unmarshal(b, &tree)
		}
		if err != nil {
			dc.Settings = append(dc.Settings, line.Setting{Key: "error", Value: err.Error()})
		} else {
			flatten("", tree, &dc.Settings)
		}
		out = append(out, dc)
	}
	plcEndpoint := d.PLC.Modbus.Address
	if d.PLC.Protocol == "opcua" {
		plcEndpoint = d.PLC.OPCUA.Endpoint
	}
	link := d.PLC
	link.Signals = nil
	add("plc", "plc", d.PLC.Protocol, plcEndpoint, link)
	// One line per signal, as an engineer reads a signal map (an address 0
	// is an address: not dropped as YAML's omitempty would).
	names := make([]string, 0, len(d.PLC.Signals))
	for n := range d.PLC.Signals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sg := d.PLC.Signals[n]
		var v string
		if sg.Node != "" {
			v = "node " + sg.Node
		} else {
			v = fmt.Sprintf("%s %d", sg.Table, sg.Address)
			if sg.Bit != 0 {
				v += fmt.Sprintf(".%d", sg.Bit)
			}
			if sg.UnitID != 0 {
				v += fmt.Sprintf(" unit %d", sg.UnitID)
			}
		}
		v += " " + sg.Type
		if sg.WordOrder != "" {
			v += " " + sg.WordOrder
		}
		if sg.Length != 0 {
			v += fmt.Sprintf(" length %d", sg.Length)
		}
		if sg.Direction != "" {
			v += " " + sg.Direction
		}
		out[0].Settings = append(out[0].Settings, line.Setting{Key: "signals." + n, Value: v})
	}
	add("printer", "printer", "opcua", d.Printer.Stream.Endpoint, d.Printer)
	add("camera", "camera", "opcua", d.Camera.Stream.Endpoint, d.Camera)
	for i, c := range d.AggCameras {
		add(fmt.Sprintf("aggregation_camera_L%d", i+2), "camera", "opcua", c.Stream.Endpoint, c)
	}
	for i, c := range d.LabelScanners {
		add(fmt.Sprintf("label_scanner_L%d", i+2), "scanner", "opcua", c.Stream.Endpoint, c)
	}
	if d.LabelPrinter != nil {
		add("label_printer", "label-printer", "zpl", d.LabelPrinter.Address, d.LabelPrinter)
	}
	for i, c := range d.LabelPrinters {
		if c.Name == "" {
			c.Name = labelPrinterName(tracecode.Level(i + 2)) // as wired
		}
		add(fmt.Sprintf("label_printer_L%d", i+2), "label-printer", "zpl", c.Address, c)
	}
	if d.ReworkLabelPrinter != nil {
		add("rework_label_printer", "label-printer", "zpl", d.ReworkLabelPrinter.Address, d.ReworkLabelPrinter)
	}
	return out
}

// secretKey: a setting never shown (passwords, tokens, private keys).
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "secret", "token", "private"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func flatten(prefix string, v any, out *[]line.Setting) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if secretKey(k) {
				continue
			}
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, t[k], out)
		}
	case []any:
		for i, e := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	case nil:
	default:
		s := fmt.Sprint(t)
		if s == "" {
			return
		}
		*out = append(*out, line.Setting{Key: prefix, Value: s})
	}
}
