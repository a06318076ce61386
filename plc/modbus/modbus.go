// Package modbus is the PLC driver over Modbus TCP (simonvetter/modbus
// client): it polls the input signals at the configured period (the gate
// ring, when mapped, in one read of all its registers: an atomic snapshot),
// writes the verdict as one FC16 (write multiple registers) and reconnects
// with backoff — the library itself does not: after the peer goes away it
// answers EOF / broken pipe until the client is closed and opened again.
//
// cmd/ wires it; the line sees only plc.PLC.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/internal/link"
)

// Driver is a plc.PLC over Modbus TCP.
type Driver struct {
	cfg plc.Config
	log *slog.Logger
	out *link.Outbox

	io  chan struct{} // one-slot semaphore: SetUnitId + request on cur, taken with ctx
	cur link.Current[mb.ModbusClient]
	ls  link.LinkState // as reported by events; WriteVerdict checks it

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	started   bool
}

var (
	_ plc.PLC              = (*Driver)(nil)
	_ plc.IntervalReporter = (*Driver)(nil)
)

// New validates cfg (protocol modbus) and builds a driver; it does not touch
// the network.
func New(cfg plc.Config, log *slog.Logger) (*Driver, error) {
	if cfg.Protocol != plc.ProtoModbus {
		return nil, fmt.Errorf("plc/modbus: plc.protocol is %q, not modbus", cfg.Protocol)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Driver{cfg: cfg.WithDefaults(), log: log.With("plc", "modbus"), out: link.NewOutbox(1024), done: make(chan struct{}), io: make(chan struct{}, 1)}, nil
}

// Connect opens the first connection (waiting at most until ctx ends) and
// starts polling. After it returns nil the driver reconnects by itself;
// link losses arrive as events.
func (d *Driver) Connect(ctx context.Context) error {
	if d.started {
		return errors.New("plc/modbus: Connect called twice")
	}
	c, err := d.open(ctx)
	if err != nil {
		return fmt.Errorf("plc/modbus %s: %w", d.cfg.Modbus.Address, err)
	}
	d.cur.Swap(c)
	// The first poll happens here, so that the item counter's baseline is
	// taken before Connect returns: every unit triggered afterwards is an
	// event.
	st := d.newPollState()
	evs, err := d.poll(ctx, st)
	if err != nil && !errors.Is(err, link.ErrHeartbeat) {
		d.cur.Swap(nil)
		c.Close()
		return fmt.Errorf("plc/modbus %s: first poll: %w", d.cfg.Modbus.Address, err)
	}
	d.out.Emit(ctx, append(d.ls.Up(time.Now()), evs...)...)
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel, d.started = cancel, true
	go d.run(runCtx, st)
	return nil
}

// pollState is what the poller keeps across polls and reconnects.
type pollState struct {
	tracker     *link.Tracker
	hb          *link.Heartbeat
	gate        link.GateTracker
	running     bool
	haveRunning bool
}

func (d *Driver) newPollState() *pollState {
	bits := 32
	if d.cfg.Signals[plc.SigItemTrigger].Type == plc.TypeU16 {
		bits = 16
	}
	st := &pollState{tracker: link.NewTracker(d.cfg.CatchUp, bits), hb: link.NewHeartbeat(d.cfg.HeartbeatTimeout)}
	st.hb.Reset(time.Now())
	return st
}

// Events implements plc.PLC.
func (d *Driver) Events() <-chan plc.Event { return d.out.C }

// PublishingInterval implements plc.IntervalReporter: the poll period.
func (d *Driver) PublishingInterval() time.Duration { return d.cfg.Modbus.PollPeriod }

// Close implements plc.PLC.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		if d.started {
			d.cancel()
			<-d.done
		}
		if c := d.cur.Swap(nil); c != nil {
			c.Close()
		}
		close(d.out.C)
	})
	return nil
}

func (d *Driver) open(ctx context.Context) (*mb.ModbusClient, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := mb.NewClient(&mb.ClientConfiguration{
		URL:     "tcp://" + d.cfg.Modbus.Address,
		Timeout: d.cfg.Modbus.Timeout,
		Logger:  log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, err
	}
	type res struct{ err error }
	ch := make(chan res, 1)
	go func() { ch <- res{c.Open()} }()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// WriteVerdict implements plc.PLC: item (u32), result, reason in one FC16.
// While the link is reported down — also with the transport connected and
// the heartbeat stale — it fails at once with plc.ErrNotConnected.
func (d *Driver) WriteVerdict(ctx context.Context, v plc.Verdict) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if !d.ls.IsUp() {
		return fmt.Errorf("plc/modbus: verdict item %d: %w", v.Item, plc.ErrNotConnected)
	}
	s := d.cfg.Signals[plc.SigVerdict]
	regs := make([]uint16, 4)
	putU32(regs, v.Item, s.WordOrder)
	regs[2], regs[3] = uint16(v.Result), v.Reason
	err := d.do(ctx, s, func(c *mb.ModbusClient) error { return c.WriteRegisters(uint16(s.Address), regs) })
	if err != nil {
		return fmt.Errorf("plc/modbus: verdict item %d: %w", v.Item, err)
	}
	return nil
}

// Set implements plc.PLC. It is attempted whenever the transport is
// connected, whatever the heartbeat says. A bool (coil) signal gets
// value%2: 0/1 for the stop request and alarm, the toggle for
// controller_alive.
func (d *Driver) Set(ctx context.Context, o plc.Output, value int) error {
	if err := plc.CheckOutputValue(o, value); err != nil {
		return err
	}
	s, ok := d.cfg.Signals[o.String()]
	if !ok {
		return fmt.Errorf("plc/modbus: %s: %w", o, plc.ErrNoSignal)
	}
	err := d.do(ctx, s, func(c *mb.ModbusClient) error {
		if s.Table == plc.TableCoil {
			return c.WriteCoil(uint16(s.Address), value%2 != 0)
		}
		return c.WriteRegister(uint16(s.Address), uint16(int16(value)))
	})
	if err != nil {
		return fmt.Errorf("plc/modbus: %s=%d: %w", o, value, err)
	}
	return nil
}

// do runs one request on the current client with the signal's unit id.
func (d *Driver) do(ctx context.Context, s plc.Signal, f func(*mb.ModbusClient) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := d.cur.Get()
	if c == nil {
		return plc.ErrNotConnected
	}
	unit := s.UnitID
	if unit == 0 {
		unit = d.cfg.Modbus.UnitID
	}
	select {
	case d.io <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.io }()
	if err := c.SetUnitId(uint8(unit)); err != nil {
		return err
	}
	return f(c)
}

// read returns the signal's value as a number (bools 0/1).
func (d *Driver) read(ctx context.Context, s plc.Signal) (uint32, error) {
	var v uint32
	err := d.do(ctx, s, func(c *mb.ModbusClient) error {
		addr := uint16(s.Address)
		switch s.Table {
		case plc.TableCoil, plc.TableDiscreteInput:
			var bs []bool
			var err error
			if s.Table == plc.TableCoil {
				bs, err = c.ReadCoils(addr, 1)
			} else {
				bs, err = c.ReadDiscreteInputs(addr, 1)
			}
			if err != nil {
				return err
			}
			if len(bs) == 1 && bs[0] {
				v = 1
			}
			return nil
		}
		regs, err := readRegisters(c, s)
		if err != nil {
			return err
		}
		v, err = decode(s, regs)
		return err
	})
	return v, err
}

// readRegisters reads all of a register signal's registers in one request.
func readRegisters(c *mb.ModbusClient, s plc.Signal) ([]uint16, error) {
	rt := mb.HOLDING_REGISTER
	if s.Table == plc.TableInput {
		rt = mb.INPUT_REGISTER
	}
	return c.ReadRegisters(uint16(s.Address), uint16(s.Registers()), rt)
}

// readGate reads the gate ring in one request (an atomic snapshot).
func (d *Driver) readGate(ctx context.Context, s plc.Signal) (link.GateSnapshot, error) {
	var g link.GateSnapshot
	err := d.do(ctx, s, func(c *mb.ModbusClient) error {
		regs, err := readRegisters(c, s)
		if err != nil {
			return err
		}
		g, err = link.GateFromRegisters(regs, s.Length, s.WordOrder == plc.WordLowFirst)
		return err
	})
	return g, err
}

// run polls until ctx ends, reconnecting as needed.
func (d *Driver) run(ctx context.Context, st *pollState) {
	defer close(d.done)
	back := link.Backoff{Min: d.cfg.ReconnectMin, Max: d.cfg.ReconnectMax}
	tick := time.NewTicker(d.cfg.Modbus.PollPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if d.cur.Get() == nil {
			if !back.Wait(ctx) {
				return
			}
			c, err := d.open(ctx)
			if err != nil {
				d.log.Debug("reconnect failed", "err", err)
				continue
			}
			d.log.Info("reconnected", "address", d.cfg.Modbus.Address)
			d.cur.Swap(c)
			st.hb.Reset(time.Now())
		}
		evs, err := d.poll(ctx, st)
		now := time.Now()
		switch {
		case err != nil && !errors.Is(err, link.ErrHeartbeat):
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("link lost", "err", err)
			if c := d.cur.Swap(nil); c != nil {
				c.Close()
			}
			back.Reset()
			evs = append(evs, d.ls.Down(err, now)...)
		case err != nil: // stale heartbeat: connected but the PLC program is not alive
			evs = append(evs, d.ls.Down(err, now)...)
		default:
			back.Reset()
			evs = append(d.ls.Up(now), evs...)
		}
		if !d.out.Emit(ctx, evs...) {
			return
		}
	}
}

// poll reads every input once and returns the events it implies.
func (d *Driver) poll(ctx context.Context, st *pollState) ([]plc.Event, error) {
	tr, hb, running, haveRunning := st.tracker, st.hb, &st.running, &st.haveRunning
	hv, err := d.read(ctx, d.cfg.Signals[plc.SigHeartbeat])
	if err != nil {
		return nil, fmt.Errorf("read heartbeat: %w", err)
	}
	now := time.Now()
	hb.Observe(hv, now)
	rv, err := d.read(ctx, d.cfg.Signals[plc.SigRunning])
	if err != nil {
		return nil, fmt.Errorf("read running: %w", err)
	}
	iv, err := d.read(ctx, d.cfg.Signals[plc.SigItemTrigger])
	if err != nil {
		return nil, fmt.Errorf("read item_trigger: %w", err)
	}
	var gate link.GateSnapshot
	gs, haveGate := d.cfg.Signals[plc.SigGateOutcome]
	if haveGate {
		// Read after the item counter: an outcome's unit is always already
		// reported as an item.
		if gate, err = d.readGate(ctx, gs); err != nil {
			return nil, fmt.Errorf("read gate_outcome: %w", err)
		}
	}
	now = time.Now()
	var evs []plc.Event
	if r := rv != 0; !*haveRunning || r != *running {
		*running, *haveRunning = r, true
		evs = append(evs, plc.Event{Kind: plc.EventRunning, At: now, Running: r})
	}
	evs = append(evs, tr.Observe(iv, now)...)
	if haveGate {
		gevs := st.gate.Observe(gate, now)
		link.LogGate(d.log, gevs)
		evs = append(evs, gevs...)
	}
	return evs, hb.Stale(now)
}

// decode turns raw registers into the signal's value.
func decode(s plc.Signal, regs []uint16) (uint32, error) {
	if len(regs) < s.Registers() {
		return 0, fmt.Errorf("short read: %d registers, want %d", len(regs), s.Registers())
	}
	switch s.Type {
	case plc.TypeBit:
		return uint32(regs[0]>>uint(s.Bit)) & 1, nil
	case plc.TypeU16, plc.TypeI16:
		return uint32(regs[0]), nil
	case plc.TypeU32, plc.TypeI32:
		if s.WordOrder == plc.WordLowFirst {
			return uint32(regs[1])<<16 | uint32(regs[0]), nil
		}
		return uint32(regs[0])<<16 | uint32(regs[1]), nil
	}
	return 0, fmt.Errorf("type %s is not a numeric input", s.Type)
}

// putU32 writes v into regs[0:2] in the word order.
func putU32(regs []uint16, v uint32, order string) {
	hi, lo := uint16(v>>16), uint16(v)
	if order == plc.WordLowFirst {
		regs[0], regs[1] = lo, hi
		return
	}
	regs[0], regs[1] = hi, lo
}

// DecodeString decodes a string signal's registers (two bytes per register,
// first byte high), trimming trailing NULs and spaces.
func DecodeString(regs []uint16, length int) string {
	b := make([]byte, 0, 2*len(regs))
	for _, r := range regs {
		b = append(b, byte(r>>8), byte(r))
	}
	if len(b) > length {
		b = b[:length]
	}
	for len(b) > 0 && (b[len(b)-1] == 0 || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}
