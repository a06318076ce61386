package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// LinkRequest is the body of POST /link: a fault on one device's link,
// now, until a restore — what a fault campaign does to a separately
// started linesim. Device is a device group (LinkDevices); Fault is one
// of cut (disconnected), stall (frozen: open, nothing through), slow
// (every byte Delay late), garble (answers garbage), freeze-heartbeat
// (plc only: the PLC's program halts, its link stays up), restore.
type LinkRequest struct {
	Device string `json:"device"`
	Fault  string `json:"fault"`
	Delay  string `json:"delay,omitempty"` // slow: a Go duration, e.g. 300ms
}

// LinkDevices are the devices POST /link acts on, by name, and the
// proxies behind each (the PLC's Modbus and OPC UA servers are one PLC;
// agg_camera, label_scanner and label_printer are level 2's —
// label_printer the one of every level with labellers shared — and
// agg_camera_3, label_scanner_3, label_printer_3, … the higher levels').
func (s *Sim) LinkDevices() map[string][]string {
	m := map[string][]string{
		"plc":           {DevModbus, DevPLCOPCUA},
		"printer":       {DevPrinter},
		"camera":        {DevCamera},
		"agg_camera":    {AggCameraDevice(2)},
		"label_printer": {DevLabel},
		"label_scanner": {LabelScannerDevice(2)},
	}
	l := s.cfg.Layout()
	for lvl := 3; lvl < 2+l.Levels; lvl++ {
		for _, d := range []string{AggCameraDevice(lvl), LabelScannerDevice(lvl)} {
			m[d] = []string{d}
		}
	}
	for i := 1; i < l.LabelPrinters; i++ {
		d := LabelPrinterDevice(i + 2)
		m[d] = []string{d}
	}
	return m
}

// LinkFaults are the faults POST /link knows.
var LinkFaults = []string{"cut", "stall", "slow", "garble", "freeze-heartbeat", "restore"}

func (s *Sim) serveLink(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxActionBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("/link: reading the body: %w", err))
		return
	}
	req, err := parseLinkRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("/link: %w", err))
		return
	}
	devs, ok := s.LinkDevices()[req.Device]
	if !ok {
		names := make([]string, 0, 6)
		for n := range s.LinkDevices() {
			names = append(names, n)
		}
		sort.Strings(names)
		writeError(w, http.StatusBadRequest, fmt.Errorf("/link: device %q is unknown (known: %s)", req.Device, strings.Join(names, ", ")))
		return
	}
	var delay time.Duration
	if req.Fault == "slow" {
		if delay, err = time.ParseDuration(req.Delay); err != nil || delay <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("/link: slow needs a delay > 0 such as \"300ms\", got %q", req.Delay))
			return
		}
	}
	if req.Fault == "freeze-heartbeat" && req.Device != "plc" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("/link: freeze-heartbeat is the PLC's (its program halts), not %s's", req.Device))
		return
	}
	done := []string{}
	for _, d := range devs {
		var err error
		switch req.Fault {
		case "cut":
			err = s.Cut(d)
		case "stall":
			err = s.Stall(d)
		case "slow":
			err = s.SetDelay(d, delay)
		case "garble":
			err = s.Garble(d)
		case "freeze-heartbeat":
			s.FreezeHeartbeat(true)
		case "restore":
			if err = s.Restore(d); err == nil {
				err = s.SetDelay(d, 0)
			}
			if req.Device == "plc" {
				s.FreezeHeartbeat(false)
			}
		}
		if err != nil {
			// The PLC's OPC UA server may be off: skip what is absent.
			continue
		}
		done = append(done, d)
	}
	if len(done) == 0 {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("/link: %s has no link to act on", req.Device))
		return
	}
	s.log.Info("link fault", "device", req.Device, "fault", req.Fault, "delay", req.Delay, "proxies", done)
	writeJSON(w, map[string]any{"device": req.Device, "fault": req.Fault, "proxies": done})
}

// parseLinkRequest reads POST /link's body: a JSON object with known keys
// and a known fault.
func parseLinkRequest(b []byte) (LinkRequest, error) {
	var req LinkRequest
	if len(b) > maxActionBody {
		return req, fmt.Errorf("body longer than %d bytes", maxActionBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("body must be {\"device\":…,\"fault\":…}: %w", err)
	}
	if dec.More() {
		return req, fmt.Errorf("more after the object")
	}
	known := false
	for _, f := range LinkFaults {
		known = known || f == req.Fault
	}
	if !known {
		return req, fmt.Errorf("fault %q is unknown (known: %s)", req.Fault, strings.Join(LinkFaults, ", "))
	}
	return req, nil
}
