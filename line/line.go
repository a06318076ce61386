package line

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// A Line is the long-lived line controller: it owns the devices for the
// process's life and runs one Runner per batch. Batches start from work
// orders (StartBatch, from the HMI or an MES); completing one makes the
// line ready for the next without a restart; at process start it resumes
// the batch of this line the ledger has open (the runner's restart
// recovery, unchanged). Everything a screen shows or does is a method of
// Line: screens never reach a device or the ledger past it.

// LineConfig is a Line's plain config, built by the wiring.
type LineConfig struct {
	// Line names the line (BatchSpec.Line of its batches).
	Line string
	// Machine is the line's settings (deadline, printer buffer, allocation
	// chunk, challenge, gate confirmation, label-checked levels, minimum
	// grade). Per batch, Ratios and Planned come from the work order and
	// the product, LabelCheck keeps only the levels the batch aggregates,
	// and a zero MinGrade takes the product's level-1 rule's.
	Machine Config
	// Products is the loaded master data, by the key a work order names.
	Products map[string]*tracecode.Product
	// Devices are the long-lived devices: PLC (required: with no batch,
	// a trigger gets a reject verdict), Printer, Signals (the state with no
	// batch, and the controller's heartbeat for the process's life),
	// Labels, ReworkLabels. Codes is ignored here.
	Devices Devices
	// BatchDevices gives a batch its devices: at least its code source,
	// and label printers that put its product and batch on the labels.
	// Fields it leaves nil are taken from Devices.
	BatchDevices func(ctx context.Context, spec aggregation.BatchSpec) (Devices, error)
	// Links reports each named device's link state for the overview
	// (optional; devices without one are judged by the events they send).
	Links map[string]LinkReporter
	// Engineering is the wiring's engineering access (optional).
	Engineering Engineering
	// Tick, IOTimeout, AlivePeriod: as in RunnerConfig.
	Tick, IOTimeout, AlivePeriod time.Duration
}

// Validate checks the config; messages name the field.
func (c LineConfig) Validate() error {
	var errs []error
	if c.Line == "" {
		errs = append(errs, errors.New("line: must name the line"))
	}
	if len(c.Products) == 0 {
		errs = append(errs, errors.New("products: no product master data loaded"))
	}
	for k, p := range c.Products {
		if p == nil || k == "" {
			errs = append(errs, fmt.Errorf("products[%q]: empty", k))
		}
	}
	if c.Devices.PLC == nil {
		errs = append(errs, errors.New("devices.plc: required (with no batch, triggers get a reject verdict)"))
	}
	if c.BatchDevices == nil {
		errs = append(errs, errors.New("batch_devices: the wiring must give each batch its devices"))
	}
	m := c.Machine
	m.Ratios, m.LabelCheck = nil, nil
	if err := m.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("machine: %w", err))
	}
	return errors.Join(errs...)
}

// Sentinel errors of the Line.
var (
	// ErrNoBatch: the line has no open batch for this.
	ErrNoBatch = errors.New("no batch is running on the line")
	// ErrBatchOpen: a batch is open; complete it before starting another.
	ErrBatchOpen = errors.New("a batch is open on the line")
	// ErrBadWorkOrder is wrapped by *WorkOrderError.
	ErrBadWorkOrder = errors.New("work order refused")
	// ErrBusy: refused while a batch runs (engineering test actions).
	ErrBusy = errors.New("refused while a batch runs")
)

// Line is the long-lived line controller (see LineConfig).
type Line struct {
	cfg   LineConfig
	store *aggregation.Store
	log   *slog.Logger
	rec   recordFunc

	mu       sync.Mutex // guards starting and batchRun.cancel
	cur      atomic.Pointer[batchRun]
	starting bool
	runq     chan *batchRun
	acks     *gateAcks // the PLC's gate ring: outcomes waiting for their journal

	noBatch         chan uint32 // triggers with no batch: reject verdicts to write
	droppedEvents   atomic.Uint64
	noBatchTriggers atomic.Uint64
	seen            [numSeen]atomic.Int64 // unix ns of the last event of plc, printer, camera, …

	alarms  alarmBook
	trim    context.CancelFunc // the idle trim of the pools, if one runs (guarded by mu)
	faultMu sync.Mutex
	faults  map[string]string // device faults while no batch runs
	subs    lineSubs
	station station
}

// batchRun is one batch on the line and its runner.
type batchRun struct {
	r         *Runner
	spec      aggregation.BatchSpec
	product   *tracecode.Product
	key       string
	startedBy string
	startedAt time.Time
	resumed   bool
	complete  atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{} // the runner's Run returned
}

// NewLine builds the line. If the ledger has a batch of this line open (the
// controller stopped mid-batch), it is resumed: its runner recovers as
// NewRunner does (uncertain codes voided, purge required).
func NewLine(ctx context.Context, cfg LineConfig, store *aggregation.Store, log *slog.Logger) (*Line, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = 2 * time.Second
	}
	if cfg.AlivePeriod <= 0 {
		cfg.AlivePeriod = 250 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Line{cfg: cfg, store: store, log: log, runq: make(chan *batchRun, 4), noBatch: make(chan uint32, 4096), acks: newGateAcks()}
	l.rec = storeRecorder(store)
	if l.cfg.Links == nil {
		// The long-lived devices' own link reports, where they have one.
		l.cfg.Links = map[string]LinkReporter{}
		for name, d := range map[string]any{"plc": cfg.Devices.PLC, "printer": cfg.Devices.Printer,
			"label-printer": cfg.Devices.Labels, "rework-label-printer": cfg.Devices.ReworkLabels} {
			if lr, ok := d.(LinkReporter); ok && d != nil {
				l.cfg.Links[name] = lr
			}
		}
	}
	l.subs.kick = make(chan struct{}, 1)
	// Alarm ids stay unique across restarts (the batch's acknowledgements
	// name them): every alarm is journaled, so the journal's head is past
	// every id an earlier process gave.
	l.alarms.next = store.Head()
	open, err := l.openBatches(ctx)
	if err != nil {
		return nil, err
	}
	if len(open) > 0 {
		// Several open (a ledger of the controller before work orders,
		// whose config named a new batch before the last was complete):
		// the latest created is resumed, the others stay open, named in an
		// alarm.
		latest := open[len(open)-1]
		if len(open) > 1 {
			others := open[:len(open)-1]
			log.Warn("several batches of this line are open; resuming the latest created", "batch", latest, "others", others)
			l.alarms.raise("line", fmt.Sprintf("batches %v of this line were left open; %s is resumed, they stay open", others, latest), "", time.Now(), false)
		}
		spec, err := store.Spec(ctx, latest)
		if err != nil {
			return nil, err
		}
		key, p := l.productOf(spec)
		if p == nil {
			return nil, fmt.Errorf("line %s: batch %s is open, but its product %q is not in the loaded master data", cfg.Line, spec.ID, spec.Product)
		}
		run, err := l.newRun(ctx, spec, p, key)
		if err != nil {
			return nil, fmt.Errorf("line %s: resuming batch %s: %w", cfg.Line, spec.ID, err)
		}
		run.resumed = true
		run.startedBy = spec.Order.Extra["started_by"]
		if err := l.reloadAlarms(ctx, spec.ID); err != nil {
			return nil, fmt.Errorf("line %s: resuming batch %s: alarms: %w", cfg.Line, spec.ID, err)
		}
		l.install(run)
		log.Info("resuming the open batch", "batch", spec.ID)
	}
	// A completed batch's release waits until every alarm of it is
	// acknowledged, and the operator acknowledges them here: those nobody
	// acknowledged before the restart come back too.
	done, err := l.batchesIn(ctx, aggregation.BatchComplete)
	if err != nil {
		return nil, err
	}
	for _, id := range done {
		if err := l.reloadAlarms(ctx, id); err != nil {
			return nil, fmt.Errorf("line %s: completed batch %s: alarms: %w", cfg.Line, id, err)
		}
	}
	return l, nil
}

// openBatches lists the batches of this line the ledger has open, in the
// order they were created.
func (l *Line) openBatches(ctx context.Context) ([]string, error) {
	return l.batchesIn(ctx, aggregation.BatchOpen)
}

// batchesIn lists the batches of this line the ledger has in state st, in
// the order they were created.
func (l *Line) batchesIn(ctx context.Context, st aggregation.BatchState) ([]string, error) {
	ids, err := l.store.Batches(ctx)
	if err != nil {
		return nil, err
	}
	type created struct {
		id  string
		seq uint64
	}
	var open []created
	for _, id := range ids {
		sum, err := l.store.Summary(ctx, id)
		if err != nil {
			return nil, err
		}
		if sum.Line != l.cfg.Line || sum.State != st {
			continue
		}
		c := created{id: id}
		if err := l.store.Trail(ctx, id, func(ev aggregation.Event) error {
			if ev.Kind == aggregation.EvBatchCreate {
				c.seq = ev.Seq
				return errStopWalk
			}
			return nil
		}); err != nil && !errors.Is(err, errStopWalk) {
			return nil, err
		}
		open = append(open, c)
	}
	sort.SliceStable(open, func(i, j int) bool { return open[i].seq < open[j].seq })
	out := make([]string, len(open))
	for i, c := range open {
		out[i] = c.id
	}
	return out, nil
}

// productOf finds a batch's product in the master data: by the key
// journaled with the work order, else (batches created before work orders)
// by its generic name or level-1 pool.
func (l *Line) productOf(spec aggregation.BatchSpec) (string, *tracecode.Product) {
	if k := spec.Order.Extra["product_key"]; k != "" {
		if p := l.cfg.Products[k]; p != nil {
			return k, p
		}
	}
	keys := make([]string, 0, len(l.cfg.Products))
	for k := range l.cfg.Products {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := l.cfg.Products[k]
		if (spec.Product == p.GenericName || spec.Product == p.PoolName(1)) && fits(spec, p) {
			return k, p
		}
	}
	return "", nil
}

// fits reports whether a batch's levels are the product's: same schemes,
// same ratios (two products may share a name: one nmpa20, one GS1).
func fits(spec aggregation.BatchSpec, p *tracecode.Product) bool {
	if len(spec.Levels) == 0 || len(spec.Levels) > int(p.TopLevel()) {
		return false
	}
	for _, ls := range spec.Levels {
		if p.Rule(ls.Level).Scheme != ls.Scheme || (ls.Level > 1 && p.Ratio(ls.Level) != ls.Ratio) {
			return false
		}
	}
	return true
}

// machineConfig is the machine's config for a batch: the line's settings,
// the batch's ratios and planned quantity.
func (l *Line) machineConfig(spec aggregation.BatchSpec, p *tracecode.Product) Config {
	m := l.cfg.Machine
	m.Ratios = map[tracecode.Level]int{}
	m.LabelCheck = nil
	for _, ls := range spec.Levels {
		if ls.Level < 2 {
			continue
		}
		m.Ratios[ls.Level] = ls.Ratio
		if l.cfg.Machine.LabelCheck[ls.Level] {
			if m.LabelCheck == nil {
				m.LabelCheck = map[tracecode.Level]bool{}
			}
			m.LabelCheck[ls.Level] = true
		}
	}
	m.Planned = uint64(max(spec.Order.PlannedQty, 0))
	if m.MinGrade == 0 && p != nil {
		if g := p.Rule(1).MinGrade; g != "" {
			m.MinGrade = string(g)[0]
		}
	}
	return m
}

// newRun builds a batch's runner on its devices.
func (l *Line) newRun(ctx context.Context, spec aggregation.BatchSpec, p *tracecode.Product, key string) (*batchRun, error) {
	dev, err := l.batchDevices(ctx, spec)
	if err != nil {
		return nil, err
	}
	return l.makeRun(ctx, spec, p, key, dev)
}

// makeRun builds a batch's runner.
func (l *Line) makeRun(ctx context.Context, spec aggregation.BatchSpec, p *tracecode.Product, key string, dev Devices) (*batchRun, error) {
	l.mu.Lock()
	if l.trim != nil {
		l.trim() // the line is no longer idle
		l.trim = nil
	}
	l.mu.Unlock()
	rcfg := RunnerConfig{Batch: spec.ID, Line: l.cfg.Line, Machine: l.machineConfig(spec, p), Tick: l.cfg.Tick,
		IOTimeout: l.cfg.IOTimeout, AlivePeriod: l.cfg.AlivePeriod}
	r, err := NewRunner(ctx, rcfg, l.store, dev, l.log.With("batch", spec.ID))
	if err != nil {
		return nil, err
	}
	run := &batchRun{r: r, spec: spec, product: p, key: key, done: make(chan struct{})}
	r.alarms = make(chan Alarm, 1024)
	r.acks = l.acks
	r.finished = func() { l.finished(run) }
	return run, nil
}

// batchDevices merges the batch's devices over the line's.
func (l *Line) batchDevices(ctx context.Context, spec aggregation.BatchSpec) (Devices, error) {
	d, err := l.cfg.BatchDevices(ctx, spec)
	if err != nil {
		return Devices{}, fmt.Errorf("devices for batch %s: %w", spec.ID, err)
	}
	base := l.cfg.Devices
	if d.PLC == nil {
		d.PLC = base.PLC
	}
	if d.Printer == nil {
		d.Printer = base.Printer
	}
	if d.Labels == nil {
		d.Labels = base.Labels
	}
	if d.ReworkLabels == nil {
		d.ReworkLabels = base.ReworkLabels
	}
	if d.Signals == nil {
		d.Signals = base.Signals
	}
	if d.AggCounters == nil {
		d.AggCounters = base.AggCounters
	}
	if d.Signals != nil {
		// The Line writes the heartbeat for the process's life, across
		// batches: the runner must not write a second one.
		d.Signals = stateOnly{d.Signals}
	}
	if d.Codes == nil {
		return Devices{}, fmt.Errorf("devices for batch %s: no code source", spec.ID)
	}
	return d, nil
}

// stateOnly hides a signaller's heartbeat from a runner.
type stateOnly struct{ s StateSignaller }

func (s stateOnly) ShowState(ctx context.Context, st State, faults int) error {
	return s.s.ShowState(ctx, st, faults)
}

// install makes run the line's current batch and hands it to Run.
func (l *Line) install(run *batchRun) {
	l.clearAlarm(context.Background(), "line", "")
	// Devices that faulted while no batch ran are faulted for this one too.
	l.faultMu.Lock()
	for d, e := range l.faults {
		run.r.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: d, Err: e})
	}
	l.faults = nil
	l.faultMu.Unlock()
	l.cur.Store(run)
	l.runq <- run
	l.subs.notify()
}

// finished is called by a runner once its batch is complete in the ledger:
// the line is ready for the next batch. Device events are no longer routed
// to it; its last snapshot stays on the overview until the next batch.
func (l *Line) finished(run *batchRun) {
	faults := run.r.Snapshot().Faults
	l.faultMu.Lock()
	l.faults = map[string]string{}
	for d, e := range faults {
		l.faults[d] = e
	}
	l.faultMu.Unlock()
	run.complete.Store(true)
	l.journal(context.Background(), "command", run.spec.ID, map[string]any{"event": "batch-complete", "batch": run.spec.ID}, "")
	l.mu.Lock()
	cancel := run.cancel
	tctx, trim := context.WithCancel(context.Background())
	l.trim = trim
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	l.subs.notify()
	l.log.Info("batch complete; the line is ready for the next", "batch", run.spec.ID)
	go l.trimPools(tctx)
}

// trimPools deletes the pools' allocated entries while the line is idle
// (aggregation.Store.TrimPools: journaled, a few thousand entries per
// event); the next batch's start stops it between two events.
func (l *Line) trimPools(ctx context.Context) {
	n, err := l.store.TrimPools(ctx, aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"})
	switch {
	case err != nil && ctx.Err() != nil:
		l.log.Info("pool trim stopped: a batch starts", "entries", n)
	case err != nil:
		l.log.Warn("pool trim failed", "entries", n, "err", err)
	case n > 0:
		l.log.Info("pools trimmed of their allocated entries", "entries", n)
	}
}

// current is the batch events go to: nil if none, or it is complete.
func (l *Line) current() *batchRun {
	run := l.cur.Load()
	if run == nil || run.complete.Load() {
		return nil
	}
	return run
}

// Run runs the line until ctx ends: each batch's runner in turn, the
// controller's heartbeat, the verdicts of triggers with no batch, and the
// live updates. It returns an error wrapping ErrPanic if a runner
// panicked (the line was stopped safely; the process must exit non-zero).
func (l *Line) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	goLine := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if a, ok := l.cfg.Devices.Signals.(AliveSignaller); ok {
		goLine(func() { heartbeat(ctx, a, l.cfg.AlivePeriod, l.log) })
	}
	if a, ok := l.cfg.Devices.Signals.(GateAcker); ok {
		goLine(func() { l.acks.run(ctx, a, l.log) })
	}
	goLine(func() { l.rejectNoBatch(ctx) })
	goLine(func() { l.broadcast(ctx) })
	if l.cur.Load() == nil {
		l.showIdle(ctx)
	}
	errc := make(chan error, 1)
	var runs sync.WaitGroup
	defer func() {
		cancel()
		runs.Wait()
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case run := <-l.runq:
			rctx, rcancel := context.WithCancel(ctx)
			l.mu.Lock()
			run.cancel = rcancel
			l.mu.Unlock()
			if run.complete.Load() {
				rcancel()
			}
			runs.Add(1)
			go func() {
				defer runs.Done()
				defer close(run.done)
				stop := make(chan struct{})
				go l.collectAlarms(run, stop)
				err := run.r.Run(rctx)
				close(stop)
				rcancel()
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
				if run.complete.Load() && l.current() == nil {
					l.showIdle(ctx) // unless the next batch started meanwhile
				}
			}()
		}
	}
}

// showIdle tells the PLC the line is stopped (no batch: the infeed halts).
func (l *Line) showIdle(ctx context.Context) {
	if l.cfg.Devices.Signals == nil {
		return
	}
	c, cancel := context.WithTimeout(ctx, l.cfg.IOTimeout)
	defer cancel()
	if err := l.cfg.Devices.Signals.ShowState(c, Stopped, 0); err != nil && ctx.Err() == nil {
		l.log.Warn("show line state on PLC (no batch)", "err", err)
	}
}

// Post routes an event from a device to the current batch's runner. It
// never blocks the device. With no batch running, the event is counted and
// dropped — except a trigger: a unit came with no batch to decide it, and
// the PLC is told reject (reason not-producing) rather than left to its
// default, so that the unit is rejected and the write is logged.
func (l *Line) Post(ev Event) {
	l.sawEvent(ev)
	if run := l.current(); run != nil {
		run.r.Post(ev)
		return
	}
	l.droppedEvents.Add(1)
	switch e := ev.(type) {
	case GateOutcome:
		l.acks.seen(e.Seq) // no batch: nothing to journal
	case DeviceFault, DeviceOK:
		// Rare: with no batch, the Line raises and clears the alarm itself.
		go l.idleFault(e)
	}
	if t, ok := ev.(Trigger); ok {
		l.noBatchTriggers.Add(1)
		select {
		case l.noBatch <- t.Item:
		default: // the PLC rejects a unit without a verdict at the gate anyway
		}
	}
}

// noBatchAlarm is raised when units come with no batch running; it clears
// when a batch starts.
const noBatchAlarm = "units are coming with no batch running: each is rejected (no_batch_triggers counts them)"

// idleFault raises or clears a device's alarm while no batch runs.
func (l *Line) idleFault(ev Event) {
	ctx := context.Background()
	switch e := ev.(type) {
	case DeviceFault:
		l.setIdleFault(e.Device, e.Err)
		l.raiseAlarm(ctx, e.Device, e.Err, "", true)
	case DeviceOK:
		l.setIdleFault(e.Device, "")
		l.clearAlarm(ctx, e.Device, "")
	}
}

func (l *Line) setIdleFault(device, err string) {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	if l.faults == nil {
		l.faults = map[string]string{}
	}
	if err == "" {
		delete(l.faults, device)
	} else {
		l.faults[device] = err
	}
}

// rejectNoBatch writes a reject verdict for every trigger with no batch.
func (l *Line) rejectNoBatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case item := <-l.noBatch:
			l.raiseAlarm(ctx, "line", noBatchAlarm, "", true)
			c, cancel := context.WithTimeout(ctx, l.cfg.IOTimeout)
			if err := l.cfg.Devices.PLC.WriteVerdict(c, item, false, uint16(ReasonNotProducing)); err != nil && ctx.Err() == nil {
				l.log.Warn("reject verdict for a unit with no batch", "item", item, "err", err)
			}
			cancel()
		}
	}
}

// Command gives an operator command to the current batch's line and
// journals it, accepted or refused (with the refusal), under user — whom
// the HMI takes from the session, never from a request body.
func (l *Line) Command(ctx context.Context, cmd Command, user string) error {
	run := l.current()
	err := needUser(cmd.String(), user)
	batch := ""
	if run != nil {
		batch = run.spec.ID
	}
	switch {
	case err != nil:
	case run == nil:
		err = fmt.Errorf("%s: %w", cmd, ErrNoBatch)
	default:
		err = run.r.Command(ctx, cmd, user)
	}
	l.journalCommand(ctx, batch, cmd.String(), nil, user, err)
	l.subs.notify()
	return err
}

// Rework carries out a manual rework on the current batch as user (the
// ledger journals it with the user; a refusal is journaled as a refused
// command).
func (l *Line) Rework(ctx context.Context, op ReworkOp, user string) error {
	op.User = user
	run := l.current()
	err := needUser("rework", user)
	batch := ""
	if run != nil {
		batch = run.spec.ID
	}
	switch {
	case err != nil:
	default:
		if _, ok := l.completedRework(ctx, run, op); ok {
			err = l.reworkCompleted(ctx, op)
			break
		}
		if run == nil {
			err = fmt.Errorf("rework: %w", ErrNoBatch)
			break
		}
		err = run.r.Rework(ctx, op)
	}
	if err != nil {
		l.journalCommand(ctx, batch, "rework", op, user, err)
	}
	l.subs.notify()
	return err
}

// completedRework reports whether op is a decommission or sample of a code
// of a completed batch that is not on the line (run nil, or another
// batch's), and the state it would take. Its loose units block its
// release (the release wants nothing loose below the top level), and the
// line's rework needs the batch on the line: without this a batch
// completed with a loose unit could never be released (decided: taking
// such units out of circulation stays possible, as the operator, until
// the release; packing them needs the batch on the line).
func (l *Line) completedRework(ctx context.Context, run *batchRun, op ReworkOp) (aggregation.CodeState, bool) {
	var to aggregation.CodeState
	switch op.Kind {
	case ReworkDecommission:
		to = aggregation.StateDecommissioned
	case ReworkSample:
		to = aggregation.StateSampled
	default:
		return 0, false
	}
	info, err := l.store.Lookup(ctx, op.Code)
	if err != nil || info.BatchState != aggregation.BatchComplete || (run != nil && info.Batch == run.spec.ID) {
		return 0, false
	}
	return to, true
}

// reworkCompleted carries out a completedRework op in the ledger.
func (l *Line) reworkCompleted(ctx context.Context, op ReworkOp) error {
	if err := op.Validate(); err != nil {
		return err
	}
	by := aggregation.Actor{Kind: aggregation.ActorUser, ID: op.User}
	var err error
	if op.Kind == ReworkSample {
		err = l.store.Sample(ctx, op.Code, op.Reason, by)
	} else {
		err = l.store.Decommission(ctx, op.Code, op.Reason, by)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op.Kind, op.Code, err)
	}
	return nil
}

// Stats returns the current (or last) batch's verdict timing.
func (l *Line) Stats() StatsReport {
	if run := l.cur.Load(); run != nil {
		return run.r.Stats()
	}
	return StatsReport{}
}

// heartbeat writes the controller's heartbeat to the PLC until ctx ends.
func heartbeat(ctx context.Context, a AliveSignaller, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	var n uint16
	failing := false
	for {
		n++
		c, cancel := context.WithTimeout(ctx, period*4)
		err := a.Alive(c, n)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warn("controller heartbeat to the PLC", "err", err)
			failing = true
		case err == nil:
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
