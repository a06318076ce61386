package main

// What the wiring sees of each device, for the overview (each device's
// link and the age of its last message) and the engineer's screen (every
// mapped PLC signal with its value and age, printer buffer, camera
// counters), and the engineer's test actions. The drivers report events;
// the pumps and the PLC's output writes record them here. A PLC input's
// value is the last one the driver reported (the item counter, running,
// the gate ring), an output's the last one the controller wrote: the
// drivers have no "read any signal now" call, and none is added for this.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracline/tracline/camera"
	devlatency "github.com/tracline/tracline/internal/latency"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/tracecode"
)

// sigValue is a PLC signal's last value seen or written.
type sigValue struct {
	value string
	at    time.Time
}

// devWatch records device links, PLC signal values and counters. Safe for
// concurrent use; the zero value is not ready (newDevWatch).
type devWatch struct {
	now      func() time.Time
	mu       sync.Mutex
	links    map[string]*line.LinkState
	signals  map[string]sigValue
	counters map[string]map[string]uint64
}

func newDevWatch() *devWatch {
	return &devWatch{now: time.Now, links: map[string]*line.LinkState{}, signals: map[string]sigValue{},
		counters: map[string]map[string]uint64{}}
}

func (w *devWatch) link(dev string) *line.LinkState {
	l := w.links[dev]
	if l == nil {
		l = &line.LinkState{Up: true}
		w.links[dev] = l
	}
	return l
}

// declare names a device before it sends anything (link up: it connected).
func (w *devWatch) declare(dev string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.link(dev)
}

// seen records a message from dev at t.
func (w *devWatch) seen(dev string, t time.Time) {
	if t.IsZero() {
		t = w.now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.link(dev)
	if t.After(l.LastMessage) {
		l.LastMessage = t
	}
}

// down and up record dev's link changes.
func (w *devWatch) down(dev string, err string, t time.Time) {
	w.seen(dev, t)
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.link(dev)
	l.Up, l.Err = false, err
}

func (w *devWatch) up(dev string, t time.Time) {
	w.seen(dev, t)
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.link(dev)
	l.Up, l.Err = true, ""
}

// count adds one to dev's counter.
func (w *devWatch) count(dev, counter string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.counters[dev]
	if c == nil {
		c = map[string]uint64{}
		w.counters[dev] = c
	}
	c[counter]++
}

// signal records a PLC signal's value.
func (w *devWatch) signal(name, value string, t time.Time) {
	if t.IsZero() {
		t = w.now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.signals[name] = sigValue{value: value, at: t}
}

// Links returns every device's link state, by name.
func (w *devWatch) Links() map[string]line.LinkState {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]line.LinkState, len(w.links))
	for n, l := range w.links {
		out[n] = *l
	}
	return out
}

// Counters returns dev's counters as "name=value" pairs, sorted by name.
func (w *devWatch) Counters(dev string) map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for k, v := range w.counters[dev] {
		out[k] = strconv.FormatUint(v, 10)
	}
	return out
}

// Signals lists every signal mapped in cfg with its last value and age.
func (w *devWatch) Signals(cfg plc.Config) []line.SignalValue {
	names := make([]string, 0, len(cfg.Signals))
	for n := range cfg.Signals {
		names = append(names, n)
	}
	sort.Strings(names)
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]line.SignalValue, 0, len(names))
	for _, n := range names {
		v := line.SignalValue{Name: n, Address: signalAddress(cfg.Signals[n]), AgeMs: -1}
		if sv, ok := w.signals[n]; ok {
			v.Value, v.AgeMs = sv.value, now.Sub(sv.at).Milliseconds()
		}
		out = append(out, v)
	}
	return out
}

// signalAddress is where a signal is mapped: an OPC UA node or a Modbus
// table and address.
func signalAddress(s plc.Signal) string {
	if s.Node != "" {
		return s.Node
	}
	a := fmt.Sprintf("%s %d", s.Table, s.Address)
	if s.Type == plc.TypeBool && (s.Table == plc.TableHolding || s.Table == plc.TableInput) {
		a += fmt.Sprintf(".%d", s.Bit)
	}
	return a
}

// watchPLCEvent records what a PLC event says about the PLC's signals and link.
func (w *devWatch) watchPLCEvent(e plc.Event) {
	switch e.Kind {
	case plc.EventItem, plc.EventCounterReset:
		w.signal(plc.SigItemTrigger, strconv.FormatUint(uint64(e.Item), 10), e.At)
	case plc.EventRunning:
		w.signal(plc.SigRunning, strconv.FormatBool(e.Running), e.At)
	case plc.EventGate:
		w.signal(plc.SigGateOutcome, fmt.Sprintf("#%d item %d %s", e.Seq, e.Item, e.Outcome), e.At)
	case plc.EventLinkDown:
		w.down("plc", errString(e.Err, "link down"), e.At)
		return
	case plc.EventLinkUp:
		// The heartbeat is fresh again (or the transport is back).
		w.signal(plc.SigHeartbeat, "alive", e.At)
		w.up("plc", e.At)
		return
	}
	w.seen("plc", e.At)
}

// watchedPLC records the controller's writes to the PLC as signal values.
type watchedPLC struct {
	plc.PLC
	w *devWatch
}

func (p watchedPLC) WriteVerdict(ctx context.Context, v plc.Verdict) error {
	err := p.PLC.WriteVerdict(ctx, v)
	if err == nil {
		p.w.signal(plc.SigVerdict, fmt.Sprintf("item %d %s reason %d", v.Item, v.Result, v.Reason), time.Time{})
	}
	return err
}

func (p watchedPLC) Set(ctx context.Context, o plc.Output, value int) error {
	err := p.PLC.Set(ctx, o, value)
	if err == nil {
		s := strconv.Itoa(value)
		if o == plc.OutTowerLight {
			s = plc.Tower(value).String()
		}
		p.w.signal(o.String(), s, time.Time{})
	}
	return err
}

// errBadTest: a test action the engineer got wrong (an output that is not
// one, a value out of range, an unknown camera, a text too long).
var errBadTest = errors.New("bad test action")

// outputByName is the PLC output an engineer's test action names.
func outputByName(name string) (plc.Output, error) {
	for _, o := range []plc.Output{plc.OutStopRequest, plc.OutAlarm, plc.OutTowerLight, plc.OutControllerAlive} {
		if o.String() == name {
			return o, nil
		}
	}
	return 0, fmt.Errorf("output %q: not a writable signal (stop_request, alarm, tower_light, controller_alive): %w", name, errBadTest)
}

// engineering is the engineer's access to the controller's devices: the
// live view and the test actions (the line refuses those while a batch runs).
type engineering struct {
	// testPrinted: a test print was handed to the coding printer; it stays
	// in the printer's buffer until a unit passes the head, so the next
	// batch empties the buffer before it starts (controller.batchDevices).
	testPrinted atomic.Bool
	w           *devWatch
	plcCfg      plc.Config
	plc         plc.PLC
	coder       interface {
		Send(ctx context.Context, codes []tracecode.Code) error
		Status(ctx context.Context) (printer.Status, error)
	}
	cameras map[string]interface {
		StartSingleJob(ctx context.Context, item uint32) error
	}
}

// monitor reads the live view: signals and counters as recorded, the
// printer's status read now.
func (e *engineering) monitor(ctx context.Context) (line.Monitor, error) {
	m := line.Monitor{Signals: e.w.Signals(e.plcCfg), Printer: e.w.Counters("printer"), Cameras: map[string]string{}}
	if e.coder != nil {
		st, err := e.coder.Status(ctx)
		if err != nil {
			m.Printer["status_error"] = err.Error()
		} else {
			m.Printer["state"] = st.State
			m.Printer["buffer"] = fmt.Sprintf("%d/%d", st.BufferLevel, st.BufferDepth)
			m.Printer["underruns"] = strconv.Itoa(st.Underruns)
			m.Printer["ink_low"] = strconv.FormatBool(st.InkLow)
			m.Printer["head_fault"] = strconv.FormatBool(st.HeadFault)
		}
	}
	names := make([]string, 0, len(e.cameras))
	for n := range e.cameras {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for k, v := range e.w.Counters(n) {
			m.Cameras[n+"."+k] = v
		}
	}
	return m, nil
}

// testCodePrefix starts every test print: never a production code (no
// parser takes it for one).
const testCodePrefix = "TEST "

// test carries out one test action: "output" writes value to a PLC output,
// "print" prints a test text on the coding printer, "camera" triggers one
// inspection of the named camera ("" the unit camera).
func (e *engineering) test(ctx context.Context, kind, output string, value int, text, device string) (string, error) {
	switch kind {
	case "output":
		o, err := outputByName(output)
		if err != nil {
			return "", err
		}
		if err := plc.CheckOutputValue(o, value); err != nil {
			return "", fmt.Errorf("%w: %w", err, errBadTest)
		}
		if err := e.plc.Set(ctx, o, value); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s set to %d", o, value), nil
	case "print":
		if e.coder == nil {
			return "", errors.New("print: no coding printer configured")
		}
		if text == "" {
			text = time.Now().Format("2006-01-02 15:04:05")
		}
		if len(text) > 64 {
			return "", fmt.Errorf("print: test text is %d bytes, at most 64: %w", len(text), errBadTest)
		}
		code := tracecode.Code(testCodePrefix + text)
		e.testPrinted.Store(true)
		if err := e.coder.Send(ctx, []tracecode.Code{code}); err != nil {
			return "", err
		}
		return fmt.Sprintf("sent %q to the printer: it prints on the next item under the head; the next batch empties the printer's buffer before it starts", code), nil
	case "camera":
		if device == "" {
			device = "camera"
		}
		cam, ok := e.cameras[device]
		if !ok {
			return "", fmt.Errorf("camera %q: not a configured camera: %w", device, errBadTest)
		}
		before := e.w.Counters(device)["results"]
		if err := cam.StartSingleJob(ctx, 0); err != nil {
			return "", err
		}
		return fmt.Sprintf("camera %s triggered (results so far: %s); its result shows in the monitor", device, orZero(before)), nil
	}
	return "", fmt.Errorf("test action: kind %q is not output, print or camera: %w", kind, errBadTest)
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// watchCamera records a camera's (or label scanner's) event.
func (w *devWatch) watchCamera(name string, e camera.Event) {
	switch e.Kind {
	case camera.EventResult:
		w.count(name, "results")
		if len(e.Result.Codes) == 0 {
			w.count(name, "no_reads")
		}
		if !e.Result.Pass {
			w.count(name, "failed")
		}
	case camera.EventGap:
		w.count(name, "gaps")
	case camera.EventReset:
		w.count(name, "resets")
	case camera.EventDown:
		w.down(name, errString(e.Err, "link down"), e.At)
		return
	case camera.EventUp:
		w.up(name, e.At)
		return
	}
	w.seen(name, e.At)
}

// watchPrinter records the coding printer's event.
func (w *devWatch) watchPrinter(e printer.Event) {
	switch e.Kind {
	case printer.EventPrinted:
		w.count("printer", "printed")
	case printer.EventGap:
		w.count("printer", "gaps")
	case printer.EventReset:
		w.count("printer", "resets")
	case printer.EventDown:
		w.down("printer", errString(e.Err, "link down"), e.At)
		return
	case printer.EventUp:
		w.up("printer", e.At)
		return
	}
	w.seen("printer", e.At)
}

// watchedLabeler puts a label printer on the overview. A ZPL printer says
// nothing unasked, so its link is as of its last label: up once it took
// one, down with the reason when it did not answer or was not ready (paper
// out, head open, too slow). Any other error (a label it could not render)
// says nothing of the printer; a caller that gave up neither.
type watchedLabeler struct {
	p    printer.Labeler
	w    *devWatch
	name string
}

func (l watchedLabeler) PrintLabel(ctx context.Context, lb printer.Label) error {
	err := l.p.PrintLabel(ctx, lb)
	switch {
	case err == nil:
		l.w.up(l.name, time.Time{})
	case ctx.Err() != nil:
	case errors.Is(err, printer.ErrNotAnswered), errors.Is(err, printer.ErrNotReady), errors.Is(err, devlatency.ErrTooSlow):
		l.w.down(l.name, err.Error(), time.Time{})
	}
	return err
}

// watchLink reports one device's link to the line's overview.
type watchLink struct {
	w    *devWatch
	name string
}

func (l watchLink) Link() line.LinkState { return l.w.Links()[l.name] }

// links are the overview's devices: every device the controller connected.
func (c *controller) links() map[string]line.LinkReporter {
	out := map[string]line.LinkReporter{}
	for n := range c.watch.Links() {
		out[n] = watchLink{c.watch, n}
	}
	return out
}

// engineering is the engineer's access to this controller's devices
// (made once: c.eng).
func (c *controller) engineering() *engineering {
	if c.eng != nil {
		return c.eng
	}
	e := &engineering{w: c.watch, plcCfg: c.cfg.Devices.PLC, plc: c.plc, cameras: map[string]interface {
		StartSingleJob(context.Context, uint32) error
	}{}}
	if c.coder != nil {
		e.coder = c.coder
	}
	if c.cam != nil {
		e.cameras["camera"] = c.cam
	}
	for i, ac := range c.aggCams {
		e.cameras[aggCameraName(tracecode.Level(i+2))] = ac
	}
	for i, sc := range c.scanners {
		e.cameras[labelScannerName(tracecode.Level(i+2))] = sc
	}
	c.eng = e
	return e
}

// lineEngineering is the line's Engineering over the wiring's.
type lineEngineering struct {
	e       *engineering
	devices []line.DeviceConfig // the devices section as loaded (line.ConfigReporter)
}

// DeviceConfig is the devices section as loaded, secrets left out.
func (l lineEngineering) DeviceConfig() []line.DeviceConfig { return l.devices }

func (l lineEngineering) Monitor(ctx context.Context) (line.Monitor, error) { return l.e.monitor(ctx) }

func (l lineEngineering) Test(ctx context.Context, a line.TestAction) (string, error) {
	return l.e.test(ctx, a.Kind, a.Output, a.Value, a.Text, a.Device)
}
