package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/netsim"
	"github.com/tracline/tracline/cmd/linesim/uasim"
	"github.com/tracline/tracline/internal/netport"
)

// Device names, for Endpoints and link faults.
const (
	DevModbus    = "plc_modbus"
	DevPLCOPCUA  = "plc_opcua"
	DevPrinter   = "printer"
	DevCamera    = "camera"
	DevAggCamera = "agg_camera"
	DevLabel     = "label_printer" // level 2's (or the shared one); higher levels label_printer_3, …
	DevScanner   = "label_scanner"
)

// AggCameraDevice is the device name of the aggregation camera of level
// (2 = agg_camera, 3 = agg_camera_3, …), as in Devices.Targets.
func AggCameraDevice(level int) string { return levelDevice(DevAggCamera, level) }

// LabelScannerDevice is the device name of the label scanner of level
// (2 = label_scanner, 3 = label_scanner_3, …), as in Devices.Targets.
func LabelScannerDevice(level int) string { return levelDevice(DevScanner, level) }

// LabelPrinterDevice is the device name of the label printer of level's
// labeller (2 = label_printer, 3 = label_printer_3, …), as in
// Devices.Targets; with one label printer for every level (Labellers
// shared) it is label_printer.
func LabelPrinterDevice(level int) string { return levelDevice(DevLabel, level) }

func levelDevice(name string, level int) string {
	if level == 2 {
		return name
	}
	return name + "_" + strconv.Itoa(level)
}

// DeviceFactory builds the printer, cameras and label printers once the
// simulator starts, as cfg.Layout() says: an aggregation camera and a
// label scanner per level (len(cfg.Ratios)), a label printer per level or
// one shared.
type DeviceFactory func(ctx context.Context, l Layout) (*Devices, error)

// Option changes how New builds the simulator.
type Option func(*Sim)

// WithDevices sets the device factory (default: StandIns).
func WithDevices(f DeviceFactory) Option { return func(s *Sim) { s.factory = f } }

// ManualInfeed makes the conveyor wait for Feed instead of spawning units
// at the configured rate (for driver tests and benchmarks).
func ManualInfeed() Option { return func(s *Sim) { s.manual = true } }

// Sim is the simulated line.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	factory DeviceFactory
	manual  bool

	plc    *plcModel
	mbSrv  *mb.ModbusServer
	uaSrv  *uasim.Server
	dev    *Devices
	conv   *conveyor
	httpLn net.Listener
	httpS  *http.Server

	mu        sync.Mutex
	proxies   map[string]*netsim.Proxy
	endpoints Endpoints
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	started   bool
	closed    bool
	frozen    atomic.Bool
	done      chan struct{}
}

// Endpoints are the addresses clients connect to (each a netsim proxy).
type Endpoints struct {
	Modbus    string `json:"plc_modbus"` // host:port, unit id 1
	PLCOPCUA  string `json:"plc_opcua"`  // opc.tcp://host:port
	Printer   string `json:"printer"`    // opc.tcp://host:port ("" if no such device)
	Camera    string `json:"camera"`     // opc.tcp://host:port
	AggCamera string `json:"agg_camera"` // opc.tcp://host:port, level 2
	// AggCameras lists every aggregation camera by level: [0] is level 2
	// (= AggCamera), [1] level 3, …
	AggCameras []string `json:"agg_cameras"`
	// LabelPrinter is the level-2 labeller's label printer, host:port (raw
	// ZPL); LabelPrinters lists every level's: [0] is level 2, [1] level 3,
	// … — or, with Labellers shared, the one printer of every level.
	LabelPrinter  string    `json:"label_printer"`
	LabelPrinters []string  `json:"label_printers"`
	Labellers     Labellers `json:"labellers"` // per-level or shared (Config.Labellers)
	// LabelScanner is the level-2 label scanner, opc.tcp://host:port;
	// LabelScanners lists every level's: [0] is level 2, [1] level 3, …
	LabelScanner  string   `json:"label_scanner"`
	LabelScanners []string `json:"label_scanners"`
	HTTP          string   `json:"http"` // http://host:port/groundtruth ("" if off)
}

// New validates cfg and builds the simulator; nothing listens until Start.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Sim{cfg: cfg.WithDefaults(), log: log, proxies: map[string]*netsim.Proxy{}, done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if s.factory == nil {
		s.factory = func(_ context.Context, l Layout) (*Devices, error) { return StandIns(l), nil }
	}
	s.plc = newPLCModel(log.With("dev", "plc"), *s.cfg.ControllerWatchdog)
	s.plc.st.StopRequest = cfg.StartStopped
	return s, nil
}

// Start serves every device and starts the conveyor. It returns once every
// endpoint is listening. The line runs until ctx ends or Close.
func (s *Sim) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("linesim: Start called twice or after Close")
	}
	s.started = true
	s.mu.Unlock()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel

	// PLC over Modbus TCP.
	port, err := freePort()
	if err != nil {
		return err
	}
	mbAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.mbSrv, err = mb.NewServer(&mb.ServerConfiguration{URL: "tcp://" + mbAddr, Timeout: 5 * time.Minute, MaxClients: 16,
		Logger: log.New(io.Discard, "", 0)}, s.plc)
	if err != nil {
		return fmt.Errorf("linesim: modbus server: %w", err)
	}
	if err := s.mbSrv.Start(); err != nil {
		return fmt.Errorf("linesim: modbus server on %s: %w", mbAddr, err)
	}
	// PLC over OPC UA.
	if s.cfg.Listen.PLCOPCUA != "off" {
		s.uaSrv, err = uasim.New(uasim.Config{Name: "linesim PLC", NamespaceURI: PLCNamespace}, s.log.With("dev", "plc-opcua"))
		if err != nil {
			return err
		}
		if err := s.plc.addOPCUA(s.uaSrv); err != nil {
			return fmt.Errorf("linesim: plc opc ua: %w", err)
		}
		if err := s.uaSrv.Start(runCtx); err != nil {
			return err
		}
	}
	// Printer, cameras, label printer.
	s.dev, err = s.factory(runCtx, s.cfg.Layout())
	if err != nil {
		return fmt.Errorf("linesim: devices: %w", err)
	}
	s.conv = newConveyor(s.cfg, s.log.With("dev", "conveyor"), s.plc, s.dev, s, s.done)
	// Proxies in front of everything.
	targets := map[string]string{DevModbus: mbAddr}
	if s.uaSrv != nil {
		targets[DevPLCOPCUA] = s.uaSrv.Addr()
	}
	for k, v := range s.dev.Targets {
		targets[k] = v
	}
	listen := map[string]string{DevModbus: s.cfg.Listen.Modbus, DevPLCOPCUA: s.cfg.Listen.PLCOPCUA, DevPrinter: s.cfg.Listen.Printer,
		DevCamera: s.cfg.Listen.Camera, DevAggCamera: s.cfg.Listen.AggCamera, DevLabel: s.cfg.Listen.Label,
		DevScanner: s.cfg.Listen.LabelScanner}
	addrs := map[string]string{}
	for name, target := range targets {
		if s.cfg.Listen.Proxies == "off" {
			addrs[name] = target
			continue
		}
		p, err := netsim.New(target, s.log.With("proxy", name))
		if err != nil {
			return fmt.Errorf("linesim: proxy %s: %w", name, err)
		}
		if err := p.Start(runCtx, listen[name]); err != nil {
			return fmt.Errorf("linesim: proxy %s on %q: %w", name, listen[name], err)
		}
		s.mu.Lock()
		s.proxies[name] = p
		s.mu.Unlock()
		addrs[name] = p.Addr()
	}
	ep := Endpoints{Modbus: addrs[DevModbus], LabelPrinter: addrs[DevLabel], Labellers: s.cfg.Labellers}
	for name, dst := range map[string]*string{DevPLCOPCUA: &ep.PLCOPCUA, DevPrinter: &ep.Printer, DevCamera: &ep.Camera,
		DevAggCamera: &ep.AggCamera, DevScanner: &ep.LabelScanner} {
		if a := addrs[name]; a != "" {
			*dst = "opc.tcp://" + a
		}
	}
	for lvl := 2; lvl < 2+len(s.cfg.Ratios); lvl++ {
		if a := addrs[AggCameraDevice(lvl)]; a != "" {
			ep.AggCameras = append(ep.AggCameras, "opc.tcp://"+a)
		}
		if a := addrs[LabelScannerDevice(lvl)]; a != "" {
			ep.LabelScanners = append(ep.LabelScanners, "opc.tcp://"+a)
		}
		if lvl-2 >= s.cfg.Layout().LabelPrinters {
			continue
		}
		if a := addrs[LabelPrinterDevice(lvl)]; a != "" {
			ep.LabelPrinters = append(ep.LabelPrinters, a)
		}
	}
	// Ground truth over HTTP.
	if s.cfg.Listen.HTTP != "off" {
		a := s.cfg.Listen.HTTP
		if a == "" {
			a = "127.0.0.1:0"
		}
		s.httpLn, err = net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("linesim: http on %s: %w", a, err)
		}
		s.httpS = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
		ep.HTTP = "http://" + s.httpLn.Addr().String() + "/groundtruth"
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.httpS.Serve(s.httpLn) }()
	}
	s.mu.Lock()
	s.endpoints = ep
	s.mu.Unlock()

	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.conv.run(runCtx, s.manual) }()
	go func() { defer s.wg.Done(); s.heartbeat(runCtx) }()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-runCtx.Done():
		}
	}()
	return nil
}

func (s *Sim) heartbeat(ctx context.Context) {
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !s.frozen.Load() {
				s.plc.beat()
			}
		}
	}
}

// Endpoints returns where each device is served (valid after Start).
func (s *Sim) Endpoints() Endpoints {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpoints
}

// Done is closed when cfg.Units units have all left the line (never, with
// Units 0). Valid after Start.
func (s *Sim) Done() <-chan struct{} { return s.done }

// GroundTruth returns what has physically happened so far.
func (s *Sim) GroundTruth() GroundTruth {
	if s.conv == nil {
		return GroundTruth{Seed: s.cfg.Seed, Rate: s.cfg.Rate, Ratios: s.cfg.Ratios}
	}
	g := s.conv.truth()
	g.PLC = s.plc.State()
	g.summarise()
	return g
}

// PLC returns a snapshot of the simulated PLC.
func (s *Sim) PLC() PLCState { return s.plc.State() }

// LoopLag is how late the simulated line's event loop has run its timed
// events so far (see LoopLag); also served as GET /looplag.
func (s *Sim) LoopLag() LoopLag { return s.conv.lag.snapshot() }

// WaitVerdict waits until the PLC receives a verdict for item (over either
// protocol) and returns it. It sees only verdicts written after the call;
// to time a write, use ExpectVerdict before writing.
func (s *Sim) WaitVerdict(ctx context.Context, item uint32) (PLCVerdict, error) {
	return s.plc.waitVerdict(ctx, item)
}

// ExpectVerdict returns a channel that receives the next verdict written
// for item (over either protocol). Register before writing: it is how
// benchmarks time "write → the PLC has it" without polling.
func (s *Sim) ExpectVerdict(item uint32) <-chan PLCVerdict { return s.plc.expectVerdict(item) }

// Feed puts n units on the belt now (manual infeed; with the automatic
// infeed they come in addition to it).
func (s *Sim) Feed(ctx context.Context, n int) error {
	if s.conv == nil {
		return errors.New("linesim: Feed before Start")
	}
	select {
	case s.conv.feed <- n:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Purge is the operator clearing the line after a controller restart
// (before confirming it with the clear command): groups read by an
// aggregation camera but not labelled yet (at the labeller or on their way
// to it) leave unlabelled for rework, printed labels not yet applied are
// thrown away (which also ends a label-misapply's one-off labels) and the
// reject bin is emptied. Units already past the gate go on as they were.
func (s *Sim) Purge(ctx context.Context) error {
	_, err := s.PurgeLine(ctx)
	return err
}

// PurgeLine is Purge, saying what was taken off the line (POST /purge).
func (s *Sim) PurgeLine(ctx context.Context) (PurgeReport, error) {
	if s.conv == nil {
		return PurgeReport{}, errors.New("linesim: Purge before Start")
	}
	return ask(ctx, s.conv.purgeC)
}

// EmptyBin is the operator emptying the reject bin (POST /bin/empty): a
// full bin (fault bin-full) takes rejects again.
func (s *Sim) EmptyBin(ctx context.Context) (BinReport, error) {
	if s.conv == nil {
		return BinReport{}, errors.New("linesim: EmptyBin before Start")
	}
	return ask(ctx, s.conv.binC)
}

// ask runs a request on the conveyor goroutine and waits for its answer.
func ask[T any](ctx context.Context, c chan chan T) (T, error) {
	var zero T
	done := make(chan T, 1)
	select {
	case c <- done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// GateOutcomes returns the PLC's gate ring: the number of outcomes ever
// recorded and the last (up to GateRingSize), oldest first.
func (s *Sim) GateOutcomes() (count uint32, last []GateRecord) {
	r := s.plc.gateRing()
	n := min(r.count, GateRingSize)
	for i := r.count - n; i < r.count; i++ {
		last = append(last, r.slots[i%GateRingSize])
	}
	return r.count, last
}

// FreezeHeartbeat stops (true) or restarts the PLC's heartbeat while its
// communication stays up — a PLC whose program halted.
func (s *Sim) FreezeHeartbeat(frozen bool) { s.frozen.Store(frozen) }

// Cut drops every connection to the device and refuses new ones.
func (s *Sim) Cut(device string) error { return s.proxyDo(device, (*netsim.Proxy).Cut) }

// Stall keeps the device's connections open but lets no byte through.
func (s *Sim) Stall(device string) error { return s.proxyDo(device, (*netsim.Proxy).Stall) }

// Garble makes the device answer garbage (every byte it sends inverted)
// while its connections stay up.
func (s *Sim) Garble(device string) error { return s.proxyDo(device, (*netsim.Proxy).Garble) }

// Restore ends a Cut, a Stall or a Garble.
func (s *Sim) Restore(device string) error { return s.proxyDo(device, (*netsim.Proxy).Restore) }

// SetDelay makes the device's traffic arrive d late (0 = none).
func (s *Sim) SetDelay(device string, d time.Duration) error {
	return s.proxyDo(device, func(p *netsim.Proxy) { p.SetDelay(d) })
}

// Accepted counts connections the device's proxy accepted (tests use it to
// see a client reconnect).
func (s *Sim) Accepted(device string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.proxies[device]; p != nil {
		return p.Accepted()
	}
	return 0
}

func (s *Sim) proxyDo(device string, f func(*netsim.Proxy)) error {
	s.mu.Lock()
	p := s.proxies[device]
	names := make([]string, 0, len(s.proxies))
	for n := range s.proxies {
		names = append(names, n)
	}
	s.mu.Unlock()
	if p == nil && s.cfg.Listen.Proxies == "off" {
		return fmt.Errorf("linesim: device %q: no proxy to act on (listen.proxies is off)", device)
	}
	if p == nil {
		sort.Strings(names)
		return fmt.Errorf("linesim: no device %q (have %v)", device, names)
	}
	f(p)
	return nil
}

// linkFault applies a configured link fault (conveyor goroutine).
func (s *Sim) linkFault(k FaultKind, on bool, delay time.Duration) {
	var devs []string
	switch k {
	case FaultPLCDown, FaultPLCSlow, FaultPLCStall:
		devs = []string{DevModbus, DevPLCOPCUA}
	case FaultPrinterDown, FaultPrinterSlow, FaultPrinterStall:
		devs = []string{DevPrinter}
	case FaultCameraDown, FaultCameraSlow, FaultCameraStall:
		devs = []string{DevCamera}
		for lvl := 2; lvl < 2+len(s.cfg.Ratios); lvl++ {
			devs = append(devs, AggCameraDevice(lvl))
		}
	case FaultScannerDown, FaultScannerSlow, FaultScannerStall:
		for lvl := 2; lvl < 2+len(s.cfg.Ratios); lvl++ {
			devs = append(devs, LabelScannerDevice(lvl))
		}
	}
	for _, d := range devs {
		var err error
		switch {
		case !on && (k == FaultPLCSlow || k == FaultPrinterSlow || k == FaultCameraSlow || k == FaultScannerSlow):
			err = s.SetDelay(d, 0)
		case !on:
			err = s.Restore(d)
		case k == FaultPLCDown || k == FaultPrinterDown || k == FaultCameraDown || k == FaultScannerDown:
			err = s.Cut(d)
		case k == FaultPLCStall || k == FaultPrinterStall || k == FaultCameraStall || k == FaultScannerStall:
			err = s.Stall(d)
		default:
			err = s.SetDelay(d, delay)
		}
		if err != nil {
			s.log.Debug("link fault on absent device", "device", d, "err", err)
		}
	}
}

func (s *Sim) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /groundtruth", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.GroundTruth())
	})
	mux.HandleFunc("GET /plc", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.PLC()) })
	mux.HandleFunc("GET /looplag", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.LoopLag()) })
	mux.HandleFunc("GET /endpoints", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Endpoints()) })
	mux.HandleFunc("/purge", operatorAction(func(ctx context.Context) (any, error) { return s.PurgeLine(ctx) }))
	mux.HandleFunc("/bin/empty", operatorAction(func(ctx context.Context) (any, error) { return s.EmptyBin(ctx) }))
	mux.HandleFunc("POST /link", s.serveLink)
	return mux
}

// operatorAction serves an operator's action on the line: POST with an
// empty body or an empty JSON object; the answer is what was done, as JSON.
func operatorAction(do func(context.Context) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: only POST", r.Method, r.URL.Path))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxActionBody+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("%s: reading the body: %w", r.URL.Path, err))
			return
		}
		if err := parseActionBody(body); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("%s: %w", r.URL.Path, err))
			return
		}
		res, err := do(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err)
			return
		}
		writeJSON(w, res)
	}
}

const maxActionBody = 4096

// parseActionBody accepts the body of an operator action: nothing, or an
// empty JSON object (the actions take no parameters).
func parseActionBody(b []byte) error {
	if len(b) > maxActionBody {
		return fmt.Errorf("body longer than %d bytes", maxActionBody)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v struct{}
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("body must be empty or {}: %w", err)
	}
	if dec.More() {
		return errors.New("body must be empty or {}: more after the object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body must be empty or {}: more after the object")
	}
	return nil
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Close stops the conveyor and every server. Safe to call more than once
// and after a failed Start.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	proxies := s.proxies
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	if s.httpS != nil {
		errs = append(errs, s.httpS.Close())
	}
	for _, p := range proxies {
		errs = append(errs, p.Close())
	}
	if s.mbSrv != nil {
		errs = append(errs, s.mbSrv.Stop())
	}
	if s.uaSrv != nil {
		errs = append(errs, s.uaSrv.Close())
	}
	if s.dev != nil && s.dev.Close != nil {
		errs = append(errs, s.dev.Close())
	}
	s.plc.close()
	s.wg.Wait()
	return errors.Join(errs...)
}

func freePort() (int, error) {
	p, err := netport.Free("127.0.0.1")
	if err != nil {
		return 0, fmt.Errorf("linesim: %w", err)
	}
	return p, nil
}
