package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/uasim"
)

// The simulated PLC's Modbus map (unit id 1; 0-based protocol addresses —
// Modicon 40001 is holding 0). docs/devices.md is the reference.
const (
	// Discrete inputs.
	DIRunning   = 0 // line running
	DIHeartbeat = 1 // toggles every heartbeat period
	// Coils.
	CoilStopRequest = 0
	CoilAlarm       = 1
	// Input registers.
	IRItemCounter  = 0  // u32 high word first: id of the last unit past the trigger
	IRHeartbeat    = 2  // u16, +1 every heartbeat period
	IRRunning      = 3  // u16 0/1
	IRGoodCount    = 4  // u32: units passed the gate as good
	IRRejectCount  = 6  // u32: units removed by the gate
	IRNoVerdict    = 8  // u32: units that reached the gate without a verdict (rejected)
	IRLateVerdicts = 10 // u32: verdicts written after their unit passed the gate
	IRLastVerdict  = 12 // u32 item, u16 result, u16 reason (registers 12..15)
	// The gate ring: IRGateCount u32 (high word first) = gate outcomes ever
	// recorded, then GateRingSize entries of 3 registers from IRGateRing:
	// item u32 (high word first), outcome u16 (GateOutcome). Outcome number
	// s (1-based) is in slot (s-1) % GateRingSize, at IRGateRing+3*slot.
	// One read of IRGateCount..IRCount-1 is one consistent snapshot.
	IRGateCount = 16
	IRGateRing  = 18
	IRCount     = IRGateRing + 3*GateRingSize // 114
	// Holding registers.
	HRVerdict         = 0  // 4 registers, one FC16: item u32 (high word first), result u16 (1 pass, 2 reject), reason u16
	HRTowerLight      = 10 // 0 off, 1 green, 2 amber, 3 red
	HRControllerAlive = 11 // u16 the controller changes at least every controller_watchdog
	// HRGateAck: u16, the number (mod 65536) of the last gate outcome the
	// controller has journaled. Once written, the PLC holds the infeed
	// while the outcomes not acknowledged plus the units between trigger
	// and gate would fill the ring: an outcome is never overwritten before
	// the controller has it durably, whatever happens to the controller.
	HRGateAck = 12
	HRCount   = 13
	// ModbusUnitID is the unit id the PLC answers to (others get an exception).
	ModbusUnitID = 1
)

// OPC UA names (namespace index 1, namespace URI PLCNamespace).
const (
	PLCNamespace    = "urn:tracline:linesim:plc"
	NodeItemCounter = "PLC.ItemCounter" // UInt32
	NodeHeartbeat   = "PLC.Heartbeat"   // UInt32
	NodeRunning     = "PLC.Running"     // Boolean
	NodeVerdict     = "PLC.Verdict"     // UInt32[3] {item, result, reason}, writable
	NodeStopRequest = "PLC.StopRequest" // Boolean, writable
	NodeAlarm       = "PLC.Alarm"       // Boolean, writable
	NodeTowerLight  = "PLC.TowerLight"  // UInt16, writable
	NodeGoodCount   = "PLC.GoodCount"   // UInt32
	NodeRejectCount = "PLC.RejectCount" // UInt32
	NodeNoVerdict   = "PLC.NoVerdictCount"
	NodeLate        = "PLC.LateVerdictCount"
	NodeEscaped     = "PLC.EscapedCount" // UInt32: units that went on although they should have been rejected
	// NodeGateOutcomes is the gate ring, UInt32[1+2*GateRingSize] =
	// {count, item_0, outcome_0, …, item_31, outcome_31}, same slot rule as
	// the Modbus ring, updated after each outcome.
	NodeGateOutcomes    = "PLC.GateOutcomes"
	NodeControllerAlive = "PLC.ControllerAlive" // UInt16, writable: the controller's watchdog value
	NodeGateAck         = "PLC.GateAck"         // UInt16, writable: as HRGateAck
)

// PLCVerdict is what the simulated PLC holds for one item.
type PLCVerdict struct {
	Item   uint32 `json:"item"`
	Result uint16 `json:"result"` // 1 pass, 2 reject
	Reason uint16 `json:"reason"`
}

// PLCState is a snapshot of the simulated PLC.
type PLCState struct {
	ItemCounter  uint32     `json:"item_counter"`
	Heartbeat    uint32     `json:"heartbeat"`
	Running      bool       `json:"running"`
	StopRequest  bool       `json:"stop_request"`
	Alarm        bool       `json:"alarm"`
	TowerLight   uint16     `json:"tower_light"`
	Good         uint32     `json:"good"`
	Rejected     uint32     `json:"rejected"`
	NoVerdict    uint32     `json:"no_verdict"`
	LateVerdicts uint32     `json:"late_verdicts"`
	Rewritten    uint32     `json:"rewritten_verdicts"`
	LastVerdict  PLCVerdict `json:"last_verdict"`
	// Escaped counts units that went on although they should have been
	// rejected (gate outcomes reject-failed and bin-full). Good + Rejected +
	// Escaped = units that reached the gate.
	Escaped uint32 `json:"escaped"`
	// GateCount counts gate outcomes ever recorded (the ring's count);
	// LastGate is the newest.
	GateCount uint32     `json:"gate_count"`
	LastGate  GateRecord `json:"last_gate"`
	// BinFull: the reject bin is full (fault bin-full) until emptied.
	BinFull bool `json:"bin_full"`
	// ControllerAlive is the controller's last watchdog value;
	// WatchdogArmed says it has been written at least once;
	// ControllerLost says it has not changed for controller_watchdog, so
	// the infeed is stopped.
	ControllerAlive uint16 `json:"controller_alive"`
	WatchdogArmed   bool   `json:"watchdog_armed"`
	ControllerLost  bool   `json:"controller_lost"`
	// GateAck is the number (mod 65536) of the last gate outcome the
	// controller acknowledged (journaled); GateAckArmed says it has been
	// written at least once. GateRingFull says the infeed is held because
	// the unacknowledged outcomes and the units still on their way to the
	// gate would otherwise overwrite an unacknowledged one.
	GateAck      uint16 `json:"gate_ack"`
	GateAckArmed bool   `json:"gate_ack_armed"`
	GateRingFull bool   `json:"gate_ring_full"`
}

// plcModel is the PLC: trigger counter, shift register of verdicts, outputs.
// Modbus and OPC UA read and write the same state.
type plcModel struct {
	log *slog.Logger

	mu       sync.Mutex
	st       PLCState
	verdicts map[uint32]PLCVerdict // pending, by item
	gateHigh uint32                // highest item that reached the gate
	waiters  map[uint32][]chan PLCVerdict
	ring     gateRing

	watchdog time.Duration // 0 = off
	wdTimer  *time.Timer
	wdGen    uint64
	closed   bool

	ua    *uasim.Server
	nodes map[string]*uasim.Variable
}

func newPLCModel(log *slog.Logger, watchdog time.Duration) *plcModel {
	return &plcModel{log: log, verdicts: map[uint32]PLCVerdict{}, waiters: map[uint32][]chan PLCVerdict{},
		nodes: map[string]*uasim.Variable{}, watchdog: watchdog}
}

// close stops the watchdog timer.
func (m *plcModel) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.wdTimer != nil {
		m.wdTimer.Stop()
	}
}

// State returns a snapshot.
func (m *plcModel) State() PLCState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// trigger: a unit passed the photo-eye.
func (m *plcModel) trigger(item uint32) {
	m.mu.Lock()
	m.st.ItemCounter = item
	m.mu.Unlock()
	m.publish(NodeItemCounter, item)
}

func (m *plcModel) beat() {
	m.mu.Lock()
	m.st.Heartbeat++
	hb := m.st.Heartbeat
	m.mu.Unlock()
	m.publish(NodeHeartbeat, hb)
}

func (m *plcModel) setRunning(r bool) {
	m.mu.Lock()
	m.st.Running = r
	m.mu.Unlock()
	m.publish(NodeRunning, r)
}

// infeedHeld says whether the infeed must stand still: a stop request, the
// controller watchdog has tripped, or one more unit could overwrite a gate
// outcome the controller has not acknowledged.
func (m *plcModel) infeedHeld() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	full := m.ringFull()
	if full != m.st.GateRingFull {
		m.st.GateRingFull = full
		if full {
			m.log.Warn("gate ring: outcomes not acknowledged by the controller would be overwritten, infeed held",
				"count", m.ring.count, "ack", m.st.GateAck, "to_gate", m.st.ItemCounter-m.gateHigh)
		} else {
			m.log.Info("gate ring: outcomes acknowledged, infeed released", "count", m.ring.count, "ack", m.st.GateAck)
		}
	}
	return m.st.StopRequest || m.st.ControllerLost || full
}

// ringFull: the outcomes not acknowledged, plus one for every unit between
// the trigger and the gate (each may add an outcome), leave no slot of the
// ring for another unit. Counted mod 65536, as the acknowledgement is.
func (m *plcModel) ringFull() bool {
	if !m.st.GateAckArmed {
		return false
	}
	unacked := uint32(uint16(m.ring.count) - m.st.GateAck)
	if unacked > GateRingSize {
		unacked = 0 // an acknowledgement from before a ring reset: nothing to protect
	}
	toGate := uint32(0)
	if m.st.ItemCounter > m.gateHigh {
		toGate = m.st.ItemCounter - m.gateHigh
	}
	return unacked+toGate >= GateRingSize
}

// setGateAck takes the controller's acknowledgement from either protocol.
func (m *plcModel) setGateAck(v uint16) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.GateAck, m.st.GateAckArmed = v, true
}

// setAlive takes the controller's watchdog value from either protocol. The
// first write arms the watchdog; every change restarts it and releases a
// tripped one.
func (m *plcModel) setAlive(v uint16) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := !m.st.WatchdogArmed || v != m.st.ControllerAlive
	m.st.ControllerAlive = v
	if m.watchdog == 0 || !changed || m.closed {
		return
	}
	if m.st.ControllerLost {
		m.log.Info("controller watchdog released", "alive", v)
	}
	m.st.WatchdogArmed, m.st.ControllerLost = true, false
	m.wdGen++
	gen := m.wdGen
	if m.wdTimer != nil {
		m.wdTimer.Stop()
	}
	m.wdTimer = time.AfterFunc(m.watchdog, func() { m.watchdogExpired(gen) })
}

func (m *plcModel) watchdogExpired(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.wdGen || m.closed {
		return // the value changed meanwhile
	}
	m.st.ControllerLost = true
	m.log.Warn("controller watchdog: alive value unchanged, infeed stopped", "for", m.watchdog, "alive", m.st.ControllerAlive)
}

// atGate: the unit item reaches the reject gate. It returns the verdict
// held for it (ok false = none) and forgets it; the conveyor decides the
// outcome and records it with gateOutcome if a unit is physically there.
func (m *plcModel) atGate(item uint32) (PLCVerdict, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.verdicts[item]
	delete(m.verdicts, item)
	if item > m.gateHigh {
		m.gateHigh = item
	}
	return v, ok
}

// gateOutcome is the gate's confirmation sensor: what physically happened to
// item (hadVerdict: the PLC held a verdict for it). It counts the outcome and
// adds it to the gate ring.
func (m *plcModel) gateOutcome(item uint32, o GateOutcome, hadVerdict bool) {
	m.mu.Lock()
	if !hadVerdict {
		m.st.NoVerdict++
	}
	switch o {
	case GatePassed:
		m.st.Good++
	case GateRejected:
		m.st.Rejected++
	case GateRejectFailed, GateBinFull:
		m.st.Escaped++
	}
	m.ring.add(GateRecord{Item: item, Outcome: o})
	m.st.GateCount, m.st.LastGate = m.ring.count, m.ring.last()
	good, rej, nov, esc, arr := m.st.Good, m.st.Rejected, m.st.NoVerdict, m.st.Escaped, m.ring.array()
	m.mu.Unlock()
	m.publish(NodeGoodCount, good)
	m.publish(NodeRejectCount, rej)
	m.publish(NodeNoVerdict, nov)
	m.publish(NodeEscaped, esc)
	m.publish(NodeGateOutcomes, arr)
}

// gateRing returns a copy of the gate ring.
func (m *plcModel) gateRing() gateRing {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring
}

func (m *plcModel) setBinFull(full bool) {
	m.mu.Lock()
	m.st.BinFull = full
	m.mu.Unlock()
}

// writeVerdict takes one verdict record from either protocol.
func (m *plcModel) writeVerdict(v PLCVerdict) error {
	if v.Result != 1 && v.Result != 2 {
		return fmt.Errorf("verdict for item %d: result %d is not 1 (pass) or 2 (reject)", v.Item, v.Result)
	}
	m.mu.Lock()
	m.st.LastVerdict = v
	late := v.Item <= m.gateHigh
	if late {
		m.st.LateVerdicts++
	} else if old, ok := m.verdicts[v.Item]; ok {
		m.st.Rewritten++
		if old.Result == 2 { // fail-safe: a reject is never overwritten by a pass
			v.Result, v.Reason = old.Result, old.Reason
		}
		m.verdicts[v.Item] = v
	} else {
		m.verdicts[v.Item] = v
	}
	ws := m.waiters[v.Item]
	delete(m.waiters, v.Item)
	lateN := m.st.LateVerdicts
	m.mu.Unlock()
	for _, w := range ws {
		w <- v
	}
	if late {
		m.publish(NodeLate, lateN)
	}
	return nil
}

// expectVerdict registers interest in the next verdict for item.
func (m *plcModel) expectVerdict(item uint32) <-chan PLCVerdict {
	ch := make(chan PLCVerdict, 1)
	m.mu.Lock()
	m.waiters[item] = append(m.waiters[item], ch)
	m.mu.Unlock()
	return ch
}

// waitVerdict waits until a verdict for item is written (for benchmarks).
func (m *plcModel) waitVerdict(ctx context.Context, item uint32) (PLCVerdict, error) {
	ch := m.expectVerdict(item)
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return PLCVerdict{}, ctx.Err()
	}
}

func (m *plcModel) publish(name string, v any) {
	if m.ua == nil {
		return
	}
	n := m.nodes[name]
	if n == nil {
		return
	}
	if err := n.Set(v); err != nil {
		m.log.Warn("opc ua publish", "node", name, "err", err)
	}
}

// --- Modbus ---

var errIllegalAddr = mb.ErrIllegalDataAddress

func u32(v uint32) []uint16 { return []uint16{uint16(v >> 16), uint16(v)} }

func (m *plcModel) HandleCoils(req *mb.CoilsRequest) ([]bool, error) {
	if req.UnitId != ModbusUnitID {
		return nil, mb.ErrIllegalFunction
	}
	if int(req.Addr)+int(req.Quantity) > 2 {
		return nil, errIllegalAddr
	}
	m.mu.Lock()
	vals := []*bool{&m.st.StopRequest, &m.st.Alarm}
	if req.IsWrite {
		for i, b := range req.Args {
			*vals[int(req.Addr)+i] = b
		}
		stop, alarm := m.st.StopRequest, m.st.Alarm
		m.mu.Unlock()
		// The OPC UA side shows what Modbus wrote: one PLC.
		m.publish(NodeStopRequest, stop)
		m.publish(NodeAlarm, alarm)
		return nil, nil
	}
	out := make([]bool, req.Quantity)
	for i := range out {
		out[i] = *vals[int(req.Addr)+i]
	}
	m.mu.Unlock()
	return out, nil
}

func (m *plcModel) HandleDiscreteInputs(req *mb.DiscreteInputsRequest) ([]bool, error) {
	if req.UnitId != ModbusUnitID {
		return nil, mb.ErrIllegalFunction
	}
	if int(req.Addr)+int(req.Quantity) > 2 {
		return nil, errIllegalAddr
	}
	m.mu.Lock()
	all := []bool{m.st.Running, m.st.Heartbeat%2 == 1}
	m.mu.Unlock()
	return all[req.Addr : req.Addr+req.Quantity], nil
}

func (m *plcModel) HandleInputRegisters(req *mb.InputRegistersRequest) ([]uint16, error) {
	if req.UnitId != ModbusUnitID {
		return nil, mb.ErrIllegalFunction
	}
	if int(req.Addr)+int(req.Quantity) > IRCount {
		return nil, errIllegalAddr
	}
	m.mu.Lock() // one lock: a read of the gate ring is one consistent snapshot
	s := m.st
	ring := m.ring.registers()
	m.mu.Unlock()
	run := uint16(0)
	if s.Running {
		run = 1
	}
	regs := make([]uint16, 0, IRCount)
	regs = append(regs, u32(s.ItemCounter)...)
	regs = append(regs, uint16(s.Heartbeat), run)
	regs = append(regs, u32(s.Good)...)
	regs = append(regs, u32(s.Rejected)...)
	regs = append(regs, u32(s.NoVerdict)...)
	regs = append(regs, u32(s.LateVerdicts)...)
	regs = append(regs, u32(s.LastVerdict.Item)...)
	regs = append(regs, s.LastVerdict.Result, s.LastVerdict.Reason)
	regs = append(regs, ring...)
	return regs[req.Addr : req.Addr+req.Quantity], nil
}

func (m *plcModel) HandleHoldingRegisters(req *mb.HoldingRegistersRequest) ([]uint16, error) {
	if req.UnitId != ModbusUnitID {
		return nil, mb.ErrIllegalFunction
	}
	end := int(req.Addr) + int(req.Quantity)
	if end > HRCount {
		return nil, errIllegalAddr
	}
	if req.IsWrite {
		switch {
		case req.Addr == HRVerdict && req.Quantity == 4:
			v := PLCVerdict{Item: uint32(req.Args[0])<<16 | uint32(req.Args[1]), Result: req.Args[2], Reason: req.Args[3]}
			if err := m.writeVerdict(v); err != nil {
				m.log.Warn("modbus verdict refused", "err", err)
				return nil, mb.ErrIllegalDataValue
			}
			return nil, nil
		case int(req.Addr) < HRVerdict+4 || req.Addr < HRTowerLight:
			// The verdict is only taken whole, in one FC16 of 4 registers;
			// 4..9 are not mapped.
			return nil, errIllegalAddr
		}
		// Tower light and controller alive, one register each or both in
		// one FC16; checked before anything changes.
		for i, a := range req.Args {
			if int(req.Addr)+i == HRTowerLight && a > 3 {
				return nil, mb.ErrIllegalDataValue
			}
		}
		for i, a := range req.Args {
			switch int(req.Addr) + i {
			case HRTowerLight:
				m.mu.Lock()
				m.st.TowerLight = a
				m.mu.Unlock()
				m.publish(NodeTowerLight, a)
			case HRControllerAlive:
				m.setAlive(a)
				m.publish(NodeControllerAlive, a)
			case HRGateAck:
				m.setGateAck(a)
				m.publish(NodeGateAck, a)
			}
		}
		return nil, nil
	}
	m.mu.Lock()
	regs := make([]uint16, HRCount)
	copy(regs, append(u32(m.st.LastVerdict.Item), m.st.LastVerdict.Result, m.st.LastVerdict.Reason))
	regs[HRTowerLight] = m.st.TowerLight
	regs[HRControllerAlive] = m.st.ControllerAlive
	regs[HRGateAck] = m.st.GateAck
	m.mu.Unlock()
	return regs[req.Addr:end], nil
}

// --- OPC UA ---

// addOPCUA creates the PLC object and its variables on srv (before Start).
func (m *plcModel) addOPCUA(srv *uasim.Server) error {
	obj, err := srv.AddObject("", "PLC")
	if err != nil {
		return err
	}
	boolWrite := func(field *bool, name string) uasim.WriteFunc {
		return func(v any) error {
			b, ok := v.(bool)
			if !ok {
				return &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("%s takes a Boolean, not %T", name, v)} // BadTypeMismatch
			}
			m.mu.Lock()
			*field = b
			m.mu.Unlock()
			return nil
		}
	}
	type def struct {
		name string
		init any
		w    uasim.WriteFunc
	}
	defs := []def{
		{NodeItemCounter, uint32(0), nil},
		{NodeHeartbeat, uint32(0), nil},
		{NodeRunning, false, nil},
		{NodeVerdict, []uint32{0, 0, 0}, m.uaVerdict},
		{NodeStopRequest, false, boolWrite(&m.st.StopRequest, NodeStopRequest)},
		{NodeAlarm, false, boolWrite(&m.st.Alarm, NodeAlarm)},
		{NodeTowerLight, uint16(0), m.uaTower},
		{NodeGoodCount, uint32(0), nil},
		{NodeRejectCount, uint32(0), nil},
		{NodeNoVerdict, uint32(0), nil},
		{NodeLate, uint32(0), nil},
		{NodeEscaped, uint32(0), nil},
		{NodeGateOutcomes, (&gateRing{}).array(), nil},
		{NodeControllerAlive, uint16(0), m.uaAlive},
		{NodeGateAck, uint16(0), m.uaGateAck},
	}
	for _, d := range defs {
		v, err := srv.AddVariable(obj, d.name, d.init, d.w)
		if err != nil {
			return fmt.Errorf("plc node %s: %w", d.name, err)
		}
		m.nodes[d.name] = v
	}
	m.ua = srv
	return nil
}

func (m *plcModel) uaVerdict(v any) error {
	a, ok := v.([]uint32)
	if !ok || len(a) != 3 {
		return &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("%s takes UInt32[3] {item, result, reason}, not %T", NodeVerdict, v)}
	}
	if a[1] > 0xffff || a[2] > 0xffff {
		return &uasim.StatusError{Code: 0x803C0000, Msg: "result/reason out of range"} // BadOutOfRange
	}
	if err := m.writeVerdict(PLCVerdict{Item: a[0], Result: uint16(a[1]), Reason: uint16(a[2])}); err != nil {
		return &uasim.StatusError{Code: 0x803C0000, Msg: err.Error()}
	}
	return nil
}

func (m *plcModel) uaTower(v any) error {
	t, ok := v.(uint16)
	if !ok {
		return &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("%s takes a UInt16, not %T", NodeTowerLight, v)}
	}
	if t > 3 {
		return &uasim.StatusError{Code: 0x803C0000, Msg: "tower light is 0..3"}
	}
	m.mu.Lock()
	m.st.TowerLight = t
	m.mu.Unlock()
	return nil
}

func (m *plcModel) uaAlive(v any) error {
	a, ok := v.(uint16)
	if !ok {
		return &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("%s takes a UInt16, not %T", NodeControllerAlive, v)}
	}
	m.setAlive(a)
	return nil
}

func (m *plcModel) uaGateAck(v any) error {
	a, ok := v.(uint16)
	if !ok {
		return &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("%s takes a UInt16, not %T", NodeGateAck, v)}
	}
	m.setGateAck(a)
	return nil
}

var errNoPLC = errors.New("linesim: no PLC")
