package line

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/internal/killpoint"
	"github.com/tracline/tracline/tracecode"
)

// The runner's view of the devices: small interfaces owned here, adapted
// from the plc, printer and camera drivers in cmd/linectl. Inputs from the
// devices (triggers, print records, camera results, faults) are not methods:
// the adapters hand them to Runner.Post as events.

// VerdictWriter writes a unit's verdict to the PLC, item id and verdict in
// one atomic write.
type VerdictWriter interface {
	WriteVerdict(ctx context.Context, item uint32, pass bool, reason uint16) error
}

// CodePrinter is the coding printer.
type CodePrinter interface {
	// Enqueue hands codes to the printer's buffer, in order. On error,
	// void lists the codes that are not certainly in the printer (never
	// taken, or uncertain): the line voids them, never sends them again.
	Enqueue(ctx context.Context, codes []tracecode.Code) (void []tracecode.Code, err error)
	// Flush empties the printer's buffer and returns the codes handed over
	// and never printed.
	Flush(ctx context.Context) ([]tracecode.Code, error)
}

// LabelPrinter prints a parent's label (case, pallet), or a rework label
// (no code) on a group the line refused, so that the labeller's labels stay
// in step with the groups.
type LabelPrinter interface {
	PrintLabel(ctx context.Context, level tracecode.Level, parent tracecode.Code, children int) error
	PrintRework(ctx context.Context, level tracecode.Level, reason string) error
}

// CodeSource allocates codes of a level to the batch, durably (from a pool
// for nmpa20, generated and registered for GS1).
type CodeSource interface {
	Allocate(ctx context.Context, level tracecode.Level, n int) ([]tracecode.Code, error)
}

// StateSignaller shows the line's state on the PLC: the stop request that
// halts the infeed outside Execute, the tower light, the alarm.
type StateSignaller interface {
	ShowState(ctx context.Context, st State, faults int) error
}

// AliveSignaller is an optional ability of a StateSignaller: it writes the
// controller's heartbeat to the PLC, whose watchdog stops the infeed when
// the value stops changing (the controller died or hangs).
type AliveSignaller interface {
	Alive(ctx context.Context, n uint16) error
}

// ResultCounter reads where a camera's results stand: the number of its
// last result (an aggregation camera's, for the purge's mark).
type ResultCounter interface {
	ResultCount(ctx context.Context) (uint64, error)
}

// Devices is what the runner drives.
type Devices struct {
	PLC     VerdictWriter
	Printer CodePrinter
	Labels  LabelPrinter // nil: parents are not labelled (manual)
	// ReworkLabels is the rework station's label printer, for reprints.
	// Never the in-line labeller's: a label printed there goes on the next
	// group the labeller sees. nil: reprints are refused.
	ReworkLabels LabelPrinter
	Signals      StateSignaller // nil: the PLC is not told the line's state
	Codes        CodeSource
	// AggCounters are the aggregation cameras by the level of the groups
	// they read; a confirmed purge marks where each one's results stand.
	AggCounters map[tracecode.Level]ResultCounter
}

// RunnerConfig is the runner's plain config.
type RunnerConfig struct {
	Batch   string
	Line    string
	Machine Config
	// Tick is how often deadlines are looked at (default 2 ms).
	Tick time.Duration
	// IOTimeout bounds every device and ledger call (default 2 s).
	IOTimeout time.Duration
	// AlivePeriod is how often the controller's heartbeat is written to the
	// PLC (default 250 ms), if the signaller can (AliveSignaller).
	AlivePeriod time.Duration
}

// Runner does the line's I/O around the Machine: it owns the machine in
// one goroutine, journals every decision before the PLC hears of it, and
// feeds device answers back as events.
type Runner struct {
	cfg   RunnerConfig
	store *aggregation.Store
	dev   Devices
	log   *slog.Logger
	m     *Machine

	events chan Event
	sendQ  chan Action // Send and FlushPrinter, in order
	packQ  chan Action // Pack and Rework: labels, in the order the groups were read
	snapMu sync.Mutex
	snap   Snapshot
	stats  *Stats
	// A print's journal write: printed holds a chan closed once it is
	// durable, printSubmitted one closed just before it is handed to the
	// ledger (tracecode.Code → chan struct{} in both).
	printed, printSubmitted sync.Map
	decided                 doneSet // item → closed when the unit's verdict is journaled (gate confirmation only)
	ledger                  ledgerView
	wg                      sync.WaitGroup
	jwg                     sync.WaitGroup // per-unit journal writes (verdicts, prints, voids) under way
	verdSem                 chan struct{}
	subs                    subscribers
	stateQ                  chan Snapshot // latest state for the PLC's interlock and lights

	recent recentUnits // under snapMu
	// What the restart recovery did (for the purge guide): codes voided,
	// parents taken out for rework.
	restartVoided, restartTakenOut int
	alarms                         chan Alarm // nil: alarms are not forwarded (a Line sets it)
	finished                       func()     // called once the batch is complete in the ledger (a Line sets it)

	failOnce sync.Once
	failed   chan struct{} // closed when a goroutine of the runner panicked
	failErr  error

	// acks: gate outcomes waiting for their journal (the Line's; nil: not acknowledged).
	acks *gateAcks
}

// ErrPanic: the runner stopped because one of its goroutines panicked. The
// line was stopped safely (stop request, red tower light, alarm) before Run
// returned it; the process must exit non-zero so that a supervisor restarts
// it (the restart voids what was uncertain and asks for a purge).
var ErrPanic = errors.New("line runner: internal error (panic)")

// request is an internal event: an operator command waiting for its answer.
type request struct {
	Stamp
	op    Operator
	reply chan error
}

// NewRunner builds a runner for an existing batch in store. If the batch
// has codes that were sent or printed but never settled (the controller
// stopped mid-batch), they are voided now — reason restart — and the line
// starts Stopped, needing the operator to confirm a purge.
func NewRunner(ctx context.Context, cfg RunnerConfig, store *aggregation.Store, dev Devices, log *slog.Logger) (*Runner, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 2 * time.Millisecond
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = 2 * time.Second
	}
	if cfg.AlivePeriod <= 0 {
		cfg.AlivePeriod = 250 * time.Millisecond
	}
	if dev.PLC == nil || dev.Printer == nil || dev.Codes == nil {
		return nil, errors.New("line runner: PLC, printer and code source are required")
	}
	sum, err := store.Summary(ctx, cfg.Batch)
	if err != nil {
		return nil, fmt.Errorf("line runner: batch %q: %w", cfg.Batch, err)
	}
	r := &Runner{cfg: cfg, store: store, dev: dev, log: log, events: make(chan Event, 65536),
		sendQ: make(chan Action, 1024), packQ: make(chan Action, 256), stateQ: make(chan Snapshot, 1), stats: newStats(cfg.Machine.Deadline), verdSem: make(chan struct{}, 64),
		failed: make(chan struct{})}
	unlabelled, unconfirmed, err := r.resolveLabels(ctx, sum)
	if err != nil {
		return nil, err
	}
	voidedCodes, adopted, err := r.recover(ctx, sum)
	if err != nil {
		return nil, err
	}
	voided := len(voidedCodes) + unlabelled
	r.restartVoided, r.restartTakenOut = len(voidedCodes), unlabelled
	if sum, err = store.Summary(ctx, cfg.Batch); err != nil {
		return nil, err
	}
	mcfg := cfg.Machine
	if sum.Challenge != nil && sum.Challenge.Passed {
		// The batch passed its challenge test before the restart; the code
		// rules, printer and camera are unchanged. Documented decision: it
		// is not repeated (the operator can hold and restart a batch to
		// repeat it under a new work order if QA wants one).
		mcfg.Challenge = nil
	}
	m, err := NewMachine(mcfg, voided > 0 || adopted > 0)
	if err != nil {
		return nil, err
	}
	r.m = m
	if err := r.adopt(ctx, sum); err != nil {
		return nil, err
	}
	for _, v := range voidedCodes {
		m.AdoptVoided(v.code, v.level)
	}
	for _, u := range unconfirmed {
		m.AdoptUnconfirmed(u.Code, uint32(u.Item))
	}
	if len(sum.Levels) > 0 && (adopted > 0 || voided > 0 || sum.Levels[0].RejectedUnits > 0) {
		l1 := sum.Levels[0]
		m.Resume(ResumeCounters(countersFrom(sum), uint32(l1.FirstItem), uint32(l1.LastItem)), uint32(l1.LastItem))
	}
	r.snap = m.Snapshot()
	r.snap.Ledger = sum.Levels
	return r, nil
}

var system = aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"}

type levelCode struct {
	code  tracecode.Code
	level tracecode.Level
}

// recover voids codes left sent or printed by a previous run.
func (r *Runner) recover(ctx context.Context, sum aggregation.BatchSummary) (voided []levelCode, adopted int, err error) {
	for _, l := range sum.Levels {
		adopted += int(l.Commissioned)
		for _, st := range []aggregation.CodeState{aggregation.StateSent, aggregation.StatePrinted} {
			var codes []tracecode.Code
			if err := r.store.Codes(ctx, sum.Batch, l.Level, st, func(c tracecode.Code) error {
				codes = append(codes, c)
				return nil
			}); err != nil {
				return nil, 0, fmt.Errorf("line runner: listing %s codes: %w", st, err)
			}
			for _, c := range codes {
				if err := r.store.Void(ctx, c, "restart: sent or printed when the controller stopped; uncertain", system); err != nil {
					return nil, 0, fmt.Errorf("line runner: voiding %s at restart: %w", c, err)
				}
				voided = append(voided, levelCode{c, l.Level})
			}
		}
	}
	if len(voided) > 0 {
		r.log.Warn("restart: voided uncertain codes", "batch", sum.Batch, "codes", len(voided))
	}
	return voided, adopted, nil
}

// voidUncertain voids, at batch end, every code of the batch still sent or
// printed: handed to the printer, maybe on a unit, never verified.
func (r *Runner) voidUncertain(ctx context.Context) error {
	sum, err := r.store.Summary(ctx, r.cfg.Batch)
	if err != nil {
		return err
	}
	for _, l := range sum.Levels {
		for _, st := range []aggregation.CodeState{aggregation.StateSent, aggregation.StatePrinted} {
			var codes []tracecode.Code
			if err := r.store.Codes(ctx, r.cfg.Batch, l.Level, st, func(c tracecode.Code) error {
				codes = append(codes, c)
				return nil
			}); err != nil {
				return err
			}
			for _, c := range codes {
				if err := r.store.Void(ctx, c, "uncertain at batch end: printed or sent, never verified", system); err != nil {
					return fmt.Errorf("void %s: %w", c, err)
				}
			}
		}
	}
	return nil
}

// adopt tells the machine about the batch's commissioned codes.
func (r *Runner) adopt(ctx context.Context, sum aggregation.BatchSummary) error {
	for _, l := range sum.Levels {
		for _, st := range []aggregation.CodeState{aggregation.StateCommissioned, aggregation.StateAggregated} {
			if err := r.store.Codes(ctx, sum.Batch, l.Level, st, func(c tracecode.Code) error {
				r.m.Adopt(c, l.Level, st == aggregation.StateAggregated)
				return nil
			}); err != nil {
				return fmt.Errorf("line runner: adopting %s codes: %w", st, err)
			}
		}
	}
	return nil
}

// Post hands an event from a device to the line. It never blocks the
// device: if the queue is full the event is dropped and the line holds
// (the units concerned are rejected at their deadline).
func (r *Runner) Post(ev Event) {
	select {
	case r.events <- ev:
	default:
		r.log.Error("line event queue full; event dropped", "event", fmt.Sprint(ev))
		select {
		case r.events <- DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "line", Err: "event queue overflow"}:
		default:
		}
	}
}

// Command gives an operator command to the line and returns whether it
// was accepted (errors wrap ErrInvalidCommand).
func (r *Runner) Command(ctx context.Context, cmd Command, user string) error {
	req := request{Stamp: Stamp{T: time.Now()}, op: Operator{Stamp: Stamp{T: time.Now()}, Cmd: cmd, User: user}, reply: make(chan error, 1)}
	select {
	case r.events <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Snapshot returns what the HMI shows, as of the last event.
func (r *Runner) Snapshot() Snapshot {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	return r.snap
}

// Stats returns verdict latency statistics so far.
func (r *Runner) Stats() StatsReport { return r.stats.report() }

// Run drives the line until ctx ends. Device adapters must be posting
// events to Post; Run returns after its workers have finished.
//
// A panic in the runner — in its loop or in any goroutine it started —
// never leaves a process that looks alive and decides nothing: Run stops
// every worker, tells the PLC to stop the line (stop request, red tower
// light, alarm) and returns an error wrapping ErrPanic.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.goSafe("printer feeder", func() { r.printerFeeder(ctx) })
	r.goSafe("packer", func() { r.packer(ctx) })
	r.goSafe("signaller", func() { r.signaller(ctx) })
	if a, ok := r.dev.Signals.(AliveSignaller); ok {
		r.goSafe("heartbeat", func() { r.heartbeat(ctx, a) })
	}
	r.showState(r.m.Snapshot())
	err := r.loop(ctx)
	cancel()
	if err == nil {
		select {
		case <-r.failed:
			err = r.failErr
		default:
		}
	}
	if err == nil {
		r.wg.Wait()
		return nil
	}
	// Bounded: a worker stuck in a device call must not keep the line from
	// being stopped (every device call has its own timeout anyway).
	waited := make(chan struct{})
	go func() { r.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(2 * r.cfg.IOTimeout):
		r.log.Error("line runner: workers still busy after a panic; stopping the line regardless")
	}
	r.safeStop()
	return err
}

// goSafe runs f in a goroutine of the runner, turning a panic into a safe
// stop of the line.
func (r *Runner) goSafe(where string, f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.recoverPanic(where)
		f()
	}()
}

// recoverPanic, deferred, records a panic as the runner's failure.
func (r *Runner) recoverPanic(where string) {
	if p := recover(); p != nil {
		r.fail(where, p)
	}
}

func (r *Runner) fail(where string, p any) {
	err := fmt.Errorf("%w in %s: %v", ErrPanic, where, p)
	r.log.Error("panic in the line runner: stopping the line", "where", where, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	r.failOnce.Do(func() {
		r.failErr = err
		close(r.failed)
	})
}

// safeStop tells the PLC to stop the line, show red and sound the alarm.
func (r *Runner) safeStop() {
	if r.dev.Signals == nil {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), r.cfg.IOTimeout)
	defer cancel()
	if err := r.dev.Signals.ShowState(c, Aborted, 1); err != nil {
		r.log.Error("safe stop: could not tell the PLC to stop the line", "err", err)
	}
}

// loop is the runner's event loop: one goroutine owns the machine.
func (r *Runner) loop(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.fail("event loop", p)
			err = r.failErr
		}
	}()
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	for {
		var ev Event
		select {
		case <-ctx.Done():
			return nil
		case <-r.failed:
			return r.failErr
		case now := <-t.C:
			ev = Tick{Stamp{T: now}}
		case ev = <-r.events:
		}
		var reply chan error
		if req, ok := ev.(request); ok {
			if err := r.m.CommandAllowed(req.op.Cmd); err != nil {
				req.reply <- err
				continue
			}
			ev, reply = req.op, req.reply
		}
		if p, ok := ev.(Printed); ok {
			r.journalPrinted(ctx, p.Code)
		}
		acts := r.m.Step(ev)
		for _, a := range acts {
			r.do(ctx, a)
		}
		if _, tick := ev.(Tick); !tick || len(acts) > 0 || reply != nil {
			s := r.m.Snapshot()
			now := time.Now()
			s.Ledger = r.ledger.get(ctx, r.store, r.cfg.Batch, now)
			r.snapMu.Lock()
			r.snap = s
			r.recent.note(acts, now) // the last units and the rate: a ring write, under the lock taken anyway
			r.snapMu.Unlock()
			if r.alarms != nil {
				r.forwardAlarms(acts)
			}
			r.subs.publish(s, acts)
			for _, a := range acts {
				if _, ok := a.(StateChanged); ok {
					r.showState(s)
					break
				}
				if _, ok := a.(Alarm); ok {
					r.showState(s)
					break
				}
			}
		}
		if reply != nil {
			reply <- nil // after the step: the answer's snapshot shows the command's effect
		}
	}
}

// ioCtx bounds one device or ledger call. It outlives ctx's cancellation:
// a journal write under way when the line stops is finished, not lost.
func (r *Runner) ioCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.cfg.IOTimeout)
}

// journalPrinted records a print durably, off the loop; a verdict on the
// code is submitted after it (see verdict), so that the ledger sees printed
// before commissioned.
//
// The write is deferrable (recordDefer): it rides with the next write that
// cannot wait — usually this code's own verdict, some 20 ms later — rather
// than take a sync of its own just before it.
func (r *Runner) journalPrinted(ctx context.Context, code tracecode.Code) {
	done, submitted := make(chan struct{}), make(chan struct{})
	if _, loaded := r.printed.LoadOrStore(code, done); loaded {
		return // a reprint: the code's print is journaled already
	}
	r.printSubmitted.Store(code, submitted)
	r.jwg.Add(1)
	r.goSafe("journal printed", func() {
		defer r.jwg.Done()
		defer close(done)
		c, cancel := r.ioCtx(ctx)
		defer cancel()
		close(submitted)
		if err := r.store.MarkPrinted(aggregation.Deferrable(c, recordDefer), code, aggregation.Actor{Kind: aggregation.ActorDevice, ID: "printer"}); err != nil && !errors.Is(err, aggregation.ErrRefused) {
			r.log.Error("journal printed", "code", code, "err", err)
		}
	})
}

// recordDefer is how long a record that decides nothing at once (a print
// record, a gate outcome) may wait for a verdict to share its sync: about a
// unit's spacing at 1,200 units/min, well within what waits for them (the
// verdict on the same code comes ≈ 20 ms after its print and only needs the
// print ahead of it in the ledger's queue; the PLC's gate ring holds 32
// outcomes).
const recordDefer = 50 * time.Millisecond

// waitPrinted waits until code's print, if its journal write is pending,
// is durable.
func (r *Runner) waitPrinted(ctx context.Context, code tracecode.Code) {
	if v, ok := r.printed.Load(code); ok {
		select {
		case <-v.(chan struct{}):
		case <-ctx.Done():
		}
		r.printed.Delete(code)
	}
}

// printGrace is how long a verdict waits for its code's print to be
// journaled (see verdict). In the ordinary case the print was journaled
// some 20 ms before the camera's result and nothing waits.
const printGrace = 2 * time.Millisecond

// waitPrintSubmitted waits until code's print, if its journal write is
// pending, has been handed to the ledger — whose single writer then takes a
// later write after it — or giveUp fires.
func (r *Runner) waitPrintSubmitted(ctx context.Context, code tracecode.Code, giveUp <-chan time.Time) {
	if v, ok := r.printSubmitted.Load(code); ok {
		select {
		case <-v.(chan struct{}):
		case <-giveUp:
		case <-ctx.Done():
		}
		r.printSubmitted.Delete(code)
		r.printed.Delete(code)
	}
}

// do carries out one action. The per-unit path (Verdict) never waits for
// anything but its own journal write and PLC write.
func (r *Runner) do(ctx context.Context, a Action) {
	switch a := a.(type) {
	case Send, FlushPrinter:
		select {
		case r.sendQ <- a:
		default:
			r.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "printer", Err: "printer feed queue full"})
		}
	case Verdict:
		done := make(chan struct{})
		if r.cfg.Machine.GateConfirm {
			r.decided.add(a.Item, done)
		}
		r.verdSem <- struct{}{}
		r.jwg.Add(1)
		r.goSafe("verdict", func() {
			defer r.jwg.Done()
			defer func() { <-r.verdSem }()
			r.verdict(ctx, a, done)
		})
	case Allocate:
		r.async(ctx, func(c context.Context) {
			codes, err := r.dev.Codes.Allocate(c, a.Level, a.N)
			ev := Allocated{Stamp: Stamp{T: time.Now()}, Level: a.Level, Codes: codes}
			if err != nil {
				ev.Err = err.Error()
			}
			r.Post(ev)
		})
	case Void:
		r.jwg.Add(1)
		r.async(ctx, func(c context.Context) {
			defer r.jwg.Done()
			for _, code := range a.Codes {
				r.waitPrinted(c, code)
				if err := r.store.Void(c, code, a.Reason, system); err != nil {
					r.log.Error("void", "code", code, "err", err)
				}
			}
		})
	case Pack:
		select {
		case r.packQ <- a:
		default:
			r.Post(Packed{Stamp: Stamp{T: time.Now()}, Parent: a.Parent, Err: "pack queue full"})
		}
	case Finish:
		r.async(ctx, func(c context.Context) {
			r.jwg.Wait() // every decision on a unit is journaled
			err := r.voidUncertain(c)
			n := 0
			if err == nil {
				n, err = r.store.ReturnUnsent(c, r.cfg.Batch, system)
			}
			if err == nil {
				err = r.store.Complete(c, r.cfg.Batch, system)
			}
			if err != nil {
				r.log.Error("finishing batch", "batch", r.cfg.Batch, "err", err)
				r.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "ledger", Err: "finishing batch: " + err.Error()})
				return
			}
			r.log.Info("batch complete", "batch", r.cfg.Batch, "returned_to_pool", n)
			if r.finished != nil {
				r.finished()
			}
		})
	case Rework:
		r.log.Info("line", "action", fmt.Sprint(a))
		if !a.AfterPack {
			select {
			case r.packQ <- a:
			default:
				r.log.Error("label queue full; rework label not printed", "level", a.Level)
			}
		}
	case ChallengeDone:
		r.log.Info("line", "action", fmt.Sprint(a))
		ch := aggregation.Challenge{Passed: a.Passed}
		for _, res := range a.Results {
			ch.Steps = append(ch.Steps, aggregation.ChallengeStep{Step: res.Step, Item: uint64(res.Item), Expect: res.Expect, Got: res.Got, OK: res.OK})
		}
		r.jwg.Add(1)
		r.async(ctx, func(c context.Context) {
			defer r.jwg.Done()
			if err := r.store.RecordChallenge(c, r.cfg.Batch, ch, system); err != nil {
				r.log.Error("journal challenge test", "err", err)
				r.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "ledger", Err: "journal challenge test: " + err.Error()})
			}
		})
	case ConfirmGate, AckGate, TakeBack, LabelOK, Divert:
		r.doConfirm(ctx, a)
	case Alarm, StateChanged:
		r.log.Info("line", "action", fmt.Sprint(a))
	default:
		r.log.Error("unknown action", "action", fmt.Sprintf("%T", a))
	}
}

func (r *Runner) async(ctx context.Context, f func(context.Context)) {
	r.goSafe("ledger", func() {
		c, cancel := r.ioCtx(ctx)
		defer cancel()
		f(c)
	})
}

// verdict journals a decision durably, then writes it to the PLC. If the
// journal refuses or fails, the PLC gets a reject all the same (fail safe).
//
// The journal and the PLC write each have their own IOTimeout budget: the
// PLC's starts after the journal, so a slow sync never hands a driver an
// expired context (which some OPC UA stacks turn into a dropped session).
// The journal write is done (closing done) before the PLC is written, so
// that the unit's gate outcome is journaled after it.
func (r *Runner) verdict(ctx context.Context, v Verdict, done chan struct{}) {
	c, cancel := r.ioCtx(ctx)
	defer cancel()
	journaled := false
	defer func() {
		if !journaled {
			close(done)
		}
	}()
	tStart := time.Now()
	dev := aggregation.Actor{Kind: aggregation.ActorDevice, ID: "camera"}
	var err error
	if v.Code != "" {
		// The print's journal write was submitted when the print record came
		// (journalPrinted), before the camera's result: the ledger's single
		// writer takes requests in order, so a commission submitted now lands
		// after it — in the same group commit (the print's write is
		// deferrable and waits for it), or the next. Waiting for the print to
		// be durable first would put two syncs in series on the verdict's
		// path; so the wait is only a grace for a print record that came just
		// before the result, until its write is handed to the ledger. If the
		// commission should land first all the same, the ledger takes the code
		// sent → commissioned (as when the camera sees a code before the
		// printer reports it) and refuses the late print, which is ignored.
		t := time.NewTimer(printGrace)
		r.waitPrintSubmitted(c, v.Code, t.C)
		t.Stop()
	}
	tPrinted := time.Now()
	if v.Pass && !v.Deadline.IsZero() && !time.Now().Before(v.Deadline) {
		// Ready too late: the unit is at the gate. Fail safe: reject.
		v.Pass, v.Journal, v.Reason = false, JournalReject, ReasonLate
		v.Detail = "pass verdict ready after the unit's deadline"
		r.Post(Overridden{Stamp: Stamp{T: time.Now()}, Item: v.Item, Code: v.Code})
	}
	switch v.Journal {
	case JournalCommission:
		err = r.store.Commission(c, v.Code, aggregation.UnitInfo{ItemID: uint64(v.Item), Grade: gradeString(v.Grade), ReadAt: v.Received}, dev)
	case JournalReject:
		err = r.store.Reject(c, v.Code, v.Reason.String()+detailSuffix(v.Detail), dev)
	case JournalUnitOnly:
		err = r.store.RejectUnit(c, r.cfg.Batch, uint64(v.Item), v.Code, v.Reason.String()+detailSuffix(v.Detail), dev)
	}
	tJournaled := time.Now()
	pass, reason := v.Pass, uint16(v.Reason)
	if pass && err == nil && !v.Deadline.IsZero() && !time.Now().Before(v.Deadline) {
		// Journaled too late to pass: tell the PLC reject, which is certain
		// (a reject, or no verdict at all, rejects at the gate), and take
		// the code back out of circulation.
		pass, reason = false, uint16(ReasonLate)
		if derr := r.store.Decommission(c, v.Code, "pass journaled after the unit's deadline; unit rejected", system); derr != nil {
			r.log.Error("decommission late pass", "code", v.Code, "err", derr)
		}
		r.Post(Overridden{Stamp: Stamp{T: time.Now()}, Item: v.Item, Code: v.Code, Decommissioned: true})
	}
	journaled = true
	close(done)
	cancel()
	c, cancel = r.ioCtx(ctx)
	defer cancel()
	if err != nil {
		pass, reason = false, uint16(ReasonLedger)
		r.log.Error("journal verdict; unit rejected", "item", v.Item, "code", v.Code, "err", err)
		r.Post(Journaled{Stamp: Stamp{T: time.Now()}, Item: v.Item, Err: err.Error()})
	}
	if !pass && v.Pass {
		v.Pass, v.Reason = false, Reason(reason)
	}
	if pass {
		killpoint.Hit(killpoint.JournalPLC) // crash campaign only (inert unless armed)
	}
	werr := r.dev.PLC.WriteVerdict(c, v.Item, pass, reason)
	wrote := time.Now()
	r.stats.add(v, wrote, werr == nil, tStart.Sub(v.Received), tJournaled.Sub(tStart), wrote.Sub(tJournaled), tPrinted.Sub(tStart))
	if !pass {
		// Logged after the PLC write: a log line is no part of the verdict's budget.
		r.log.Info("reject", "item", v.Item, "code", v.Code, "reason", Reason(reason).String(), "detail", v.Detail)
	}

	if werr != nil {
		r.log.Error("write verdict to PLC", "item", v.Item, "err", werr)
		r.Post(DeviceFault{Stamp: Stamp{T: wrote}, Device: "plc", Err: "verdict write: " + werr.Error()})
		if pass && !r.cfg.Machine.GateConfirm {
			// The PLC did not take the pass: the gate rejects the unit. With
			// no gate confirmation to say otherwise, take the code back now
			// rather than leave it commissioned on a rejected unit.
			if derr := r.store.Decommission(c, v.Code, "pass not delivered to the PLC ("+werr.Error()+"); the gate rejects the unit", system); derr != nil {
				r.log.Error("decommission undelivered pass", "code", v.Code, "err", derr)
			}
			r.Post(Overridden{Stamp: Stamp{T: time.Now()}, Item: v.Item, Code: v.Code, Decommissioned: true})
		}
		// With gate confirmation the unit's outcome settles it either way.
	}
}

func gradeString(g byte) string {
	if g == 0 {
		return ""
	}
	return string(g)
}

func detailSuffix(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}

// printerFeeder hands codes to the printer in order, each batch journaled
// as sent before it goes (write-ahead), and runs flushes in the same order.
func (r *Runner) printerFeeder(ctx context.Context) {
	dev := aggregation.Actor{Kind: aggregation.ActorDevice, ID: "printer"}
	for {
		var a Action
		select {
		case <-ctx.Done():
			return
		case a = <-r.sendQ:
		}
		c, cancel := r.ioCtx(ctx)
		switch a := a.(type) {
		case Send:
			jc := c
			if 2*a.Ahead >= r.cfg.Machine.PrinterBuffer {
				// The printer holds half its buffer or more: the refill can
				// share the next verdict's sync (see recordDefer).
				jc = aggregation.Deferrable(c, recordDefer)
			}
			if err := r.store.MarkSent(jc, a.Codes, dev); err != nil {
				// Not journaled as sent: the codes never went; they stay
				// allocated and are returned to the pool at batch end.
				r.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "ledger", Err: "journal sent: " + err.Error()})
				r.Post(SendFailed{Stamp: Stamp{T: time.Now()}, Err: "not journaled"})
			} else if void, err := r.dev.Printer.Enqueue(c, a.Codes); err != nil {
				r.Post(SendFailed{Stamp: Stamp{T: time.Now()}, Codes: void, Err: err.Error()})
			} else {
				r.Post(Delivered{Stamp: Stamp{T: time.Now()}, N: len(a.Codes)})
			}
		case FlushPrinter:
			var marks map[tracecode.Level]uint64
			markErr := ""
			if a.Purge {
				marks, markErr = r.markAggCameras(c)
				if markErr == "" && len(marks) > 0 {
					r.log.Info("purge confirmed: aggregation cameras' reads up to these results were on the line", "results", fmt.Sprint(marks))
				}
			}
			codes, err := r.dev.Printer.Flush(c)
			fl := Flushed{Stamp: Stamp{T: time.Now()}, Codes: codes, Marks: marks, MarkErr: markErr}
			switch {
			case err != nil && a.Probe:
				fl.Err = err.Error() // still not answering: the fault stands
			case err != nil:
				r.log.Error("printer flush", "err", err)
				r.Post(DeviceFault{Stamp: Stamp{T: time.Now()}, Device: "printer", Err: "flush: " + err.Error()})
				fl.Err = err.Error()
			}
			// Whatever the answer, the flush is over: codes it did not name
			// stay uncertain and are voided at batch end.
			r.Post(fl)
		}
		cancel()
	}
}

// markAggCameras reads each aggregation camera's result count for a
// confirmed purge: never nil without an error; errs names every camera that
// did not answer.
func (r *Runner) markAggCameras(ctx context.Context) (map[tracecode.Level]uint64, string) {
	marks := make(map[tracecode.Level]uint64, len(r.dev.AggCounters))
	var errs []string
	for l, rc := range r.dev.AggCounters {
		n, err := rc.ResultCount(ctx)
		if err != nil {
			errs = append(errs, fmt.Sprintf("aggregation camera %s: %v", l, err))
			continue
		}
		marks[l] = n
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, strings.Join(errs, "; ")
	}
	return marks, ""
}

// showState hands the latest state to the signaller, dropping a stale one.
func (r *Runner) showState(s Snapshot) {
	select {
	case <-r.stateQ:
	default:
	}
	r.stateQ <- s
}

// signaller writes the line's state to the PLC, latest first; the PLC's
// stop request halts the infeed whenever the line is not in Execute.
func (r *Runner) signaller(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-r.stateQ:
			if r.dev.Signals == nil {
				continue
			}
			st := Stopped
			for i, n := range stateNames {
				if n == s.State {
					st = State(i)
				}
			}
			c, cancel := r.ioCtx(ctx)
			if err := r.dev.Signals.ShowState(c, st, len(s.Faults)); err != nil {
				r.log.Warn("show line state on PLC", "state", s.State, "err", err)
			}
			cancel()
		}
	}
}

// packer packs groups one at a time, in the order they were read, so that
// labels come out of the label printer in the order the groups wait for them.
func (r *Runner) packer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-r.packQ:
			c, cancel := r.ioCtx(ctx)
			switch a := a.(type) {
			case Pack:
				r.pack(c, a)
			case Rework:
				r.printRework(c, a.Level, a.Reason)
			}
			cancel()
		}
	}
}

// pack journals a parent and its children (all or nothing), tells the
// machine, then prints the parent's label. The ledger comes first so that
// when the labelled parent is read at the next station, it is known packed.
// If the label then fails, the parent is unpacked and decommissioned.
func (r *Runner) pack(ctx context.Context, p Pack) {
	dev := aggregation.Actor{Kind: aggregation.ActorDevice, ID: fmt.Sprintf("aggregation-%s", p.Level)}
	now := func() Stamp { return Stamp{T: time.Now()} }
	failed := func(err error) {
		r.printRework(ctx, p.Level, "packing failed: "+err.Error())
		r.Post(Packed{Stamp: now(), Parent: p.Parent, Err: err.Error()})
	}
	if err := r.store.MarkSent(ctx, []tracecode.Code{p.Parent}, dev); err != nil {
		failed(err)
		return
	}
	if err := r.store.Commission(ctx, p.Parent, aggregation.UnitInfo{ReadAt: time.Now()}, dev); err != nil {
		if verr := r.store.Void(ctx, p.Parent, "parent not commissioned: "+err.Error(), system); verr != nil {
			r.log.Error("void parent", "code", p.Parent, "err", verr)
		}
		failed(err)
		return
	}
	opts := aggregation.PackOpts{Partial: p.Partial}
	if p.Partial {
		opts.Reason = "last group of the batch"
	}
	if err := r.store.Pack(ctx, p.Parent, p.Children, opts, dev); err != nil {
		if derr := r.store.Decommission(ctx, p.Parent, "pack refused, parent empty: "+err.Error(), system); derr != nil {
			r.log.Error("decommission empty parent", "code", p.Parent, "err", derr)
		}
		failed(err)
		return
	}
	r.Post(Packed{Stamp: now(), Parent: p.Parent})
	if r.dev.Labels == nil {
		return
	}
	killpoint.Hit(killpoint.PackLabel) // crash campaign only (inert unless armed)
	err := r.dev.Labels.PrintLabel(ctx, p.Level, p.Parent, len(p.Children))
	// A label printer that did not answer used the whole device budget:
	// what the ledger must record of the label's fate gets its own (the
	// fault campaign found a frozen label printer's parent left packed).
	ctx, cancel := r.ioCtx(ctx)
	defer cancel()
	if err == nil {
		killpoint.Hit(killpoint.LabelJournal)
		// The label's fate is journaled: a restart between pack and print
		// finds a packed parent with no label printed and takes it out.
		if jerr := r.store.RecordLabel(ctx, p.Parent, aggregation.LabelPrinted, dev); jerr != nil {
			r.log.Error("journal label printed", "parent", p.Parent, "err", jerr)
		}
	}
	if err != nil {
		why := "label printer: " + err.Error()
		if uerr := r.store.Unpack(ctx, p.Parent, why, system); uerr != nil {
			r.log.Error("unpack unlabelled parent", "code", p.Parent, "err", uerr)
		} else if derr := r.store.Decommission(ctx, p.Parent, why, system); derr != nil {
			r.log.Error("decommission unlabelled parent", "code", p.Parent, "err", derr)
		}
		r.printRework(ctx, p.Level, why)
		r.Post(Unpacked{Stamp: now(), Parent: p.Parent, Children: p.Children, Err: why})
	}
}

// printRework labels a refused group for rework, if there is a label printer.
func (r *Runner) printRework(ctx context.Context, l tracecode.Level, why string) {
	if r.dev.Labels == nil {
		return
	}
	if err := r.dev.Labels.PrintRework(ctx, l, why); err != nil {
		r.log.Error("rework label", "level", l, "err", err)
	}
}

// StatsReport is the verdict timing of a run.
type StatsReport struct {
	Verdicts       int     `json:"verdicts"`
	DeadlineMisses int     `json:"deadline_misses"`
	P50ms          float64 `json:"p50"`
	P99ms          float64 `json:"p99"`
	MaxMs          float64 `json:"max"`
	WriteErrors    int     `json:"write_errors"`
	// The verdict path's stages, p50/p99 in ms: camera result received →
	// decided and handed to a writer (queue), → journaled durably
	// (journal), → written to the PLC (plc); and the controller's own share
	// of each verdict (controller: all but the journal's wait for the disk
	// and the ledger — queue + plc).
	Stages map[string][2]float64 `json:"stages_p50_p99"`
	// StagesMax is each stage's slowest, in ms. Stage camera is the
	// devices' share before the controller: trigger seen → camera result
	// received; print_wait is the part of the journal stage spent waiting
	// for the code's print to be journaled (it must be before the commission).
	StagesMax map[string]float64 `json:"stages_max"`
	// Missed: where each deadline miss's time went (the first 50).
	Missed []Miss `json:"missed,omitempty"`
}

// stageNames are the verdict path's stages, in Stats.stages order (see
// StatsReport.Stages).
var stageNames = [...]string{"queue", "journal", "plc", "controller", "camera", "print_wait"}

// Stats records verdict latency: camera result received → verdict written.
type Stats struct {
	mu        sync.Mutex
	lat       []time.Duration
	stages    [len(stageNames)][]time.Duration
	deadline  time.Duration // trigger → the unit's deadline (the machine's)
	missed    []Miss
	misses    int
	writeErrs int
}

func newStats(deadline time.Duration) *Stats { return &Stats{deadline: deadline} }

// add records one verdict written at done: its latency and, by stage,
// where the time went (queue, journal, plc as in StatsReport.Stages).
func (s *Stats) add(v Verdict, done time.Time, ok bool, queue, journal, plc, printWait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.writeErrs++
	}
	if v.Late || v.Received.IsZero() {
		return // decided at the deadline: nothing was waiting on the controller
	}
	s.lat = append(s.lat, done.Sub(v.Received))
	camera := v.Received.Sub(v.Deadline.Add(-s.deadline))
	for i, d := range []time.Duration{queue, journal, plc, queue + plc, camera, printWait} {
		s.stages[i] = append(s.stages[i], d)
	}
	if !v.Deadline.IsZero() && done.After(v.Deadline) {
		s.misses++
		if len(s.missed) < 50 {
			s.missed = append(s.missed, Miss{Item: v.Item, CameraMs: ms(camera), ControllerMs: ms(done.Sub(v.Received)),
				QueueMs: ms(queue), JournalMs: ms(journal), PLCMs: ms(plc), Reason: v.Reason.String(),
				JournalAt: v.Received.Add(queue)})
		}
	}
}

// Miss is one verdict that reached the PLC after its unit's deadline, and
// where the time went: trigger → camera result received (the devices'
// share), camera result → verdict written (the controller's, disk
// included), and that by stage.
type Miss struct {
	Item         uint32  `json:"item"`
	CameraMs     float64 `json:"trigger_to_camera_ms"`
	ControllerMs float64 `json:"camera_to_written_ms"`
	QueueMs      float64 `json:"queue_ms"`
	JournalMs    float64 `json:"journal_ms"`
	PLCMs        float64 `json:"plc_ms"`
	Reason       string  `json:"reason"` // as written to the PLC (late: a pass turned into a reject)
	// JournalAt is when the journal stage began (the verdict handed to
	// its writer): a stall of the disk is found beside it.
	JournalAt time.Time `json:"journal_at"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pcts(d []time.Duration) [2]float64 {
	if len(d) == 0 {
		return [2]float64{}
	}
	d = append([]time.Duration(nil), d...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return [2]float64{ms(d[len(d)/2]), ms(d[min(len(d)-1, len(d)*99/100)])}
}

func (s *Stats) report() StatsReport {
	s.mu.Lock()
	lat := append([]time.Duration(nil), s.lat...)
	rep := StatsReport{Verdicts: len(lat), DeadlineMisses: s.misses, WriteErrors: s.writeErrs,
		Stages: map[string][2]float64{}, StagesMax: map[string]float64{},
		Missed: append([]Miss(nil), s.missed...)}
	for i, name := range stageNames {
		rep.Stages[name] = pcts(s.stages[i])
		for _, d := range s.stages[i] {
			rep.StagesMax[name] = max(rep.StagesMax[name], float64(d.Microseconds())/1000)
		}
	}
	s.mu.Unlock()
	if len(lat) == 0 {
		return rep
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rep.P50ms = ms(lat[len(lat)/2])
	rep.P99ms = ms(lat[min(len(lat)-1, len(lat)*99/100)])
	rep.MaxMs = ms(lat[len(lat)-1])
	return rep
}
