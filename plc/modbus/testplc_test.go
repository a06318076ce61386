package modbus_test

import (
	"context"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/netsim"
	"github.com/tracline/tracline/plc"
)

// testPLC is a small Modbus PLC of the tests' own (unit id 1), behind a
// netsim proxy so that the link can be cut. Its map:
//
//	input 0-1     item counter u32, high word first
//	input 2       heartbeat, +1 on every read unless frozen
//	discrete 0    running
//	holding 0-3   verdict (item u32 high first, result, reason)
//	holding 11    controller_alive (u16)
//	coil 0        stop request;  coil 2  controller_alive (toggle)
//	ring (input or holding, from ringAddr): count u32, n × (item u32, outcome u16)
//
// The ring's registers are raw: tests put anything there, nonsense too. Any
// read that touches the ring without taking all of it is counted: a driver
// must read the ring in one request.
type testPLC struct {
	n         int
	table     string // plc.TableInput or plc.TableHolding
	lowFirst  bool
	proxy     *netsim.Proxy
	mu        sync.Mutex
	input     [256]uint16
	holding   [256]uint16
	coils     [8]bool
	frozen    bool
	ringReads int // whole-ring reads
	partial   int // reads that took part of the ring
	verdicts  int // verdict writes
}

const ringAddr = 16

func startTestPLC(t *testing.T, n int, table string, lowFirst bool) *testPLC {
	t.Helper()
	p := &testPLC{n: n, table: table, lowFirst: lowFirst}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv, err := mb.NewServer(&mb.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: 8, Logger: log.New(io.Discard, "", 0)}, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	if p.proxy, err = netsim.New(addr, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.proxy.Start(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.proxy.Close() })
	return p
}

// profile maps the test PLC, with the gate ring and both alive variants
// available (alive: plc.TypeU16 or plc.TypeBool; "" leaves it unmapped).
func (p *testPLC) profile(alive string) plc.Config {
	order := plc.WordHighFirst
	if p.lowFirst {
		order = plc.WordLowFirst
	}
	cfg := plc.Config{
		Protocol:         plc.ProtoModbus,
		Modbus:           plc.ModbusConfig{Address: p.proxy.Addr(), PollPeriod: 2 * time.Millisecond, Timeout: 200 * time.Millisecond},
		HeartbeatTimeout: 300 * time.Millisecond,
		ReconnectMin:     5 * time.Millisecond,
		ReconnectMax:     50 * time.Millisecond,
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Table: plc.TableInput, Address: 0, Type: plc.TypeU32},
			plc.SigHeartbeat:   {Table: plc.TableInput, Address: 2, Type: plc.TypeU16},
			plc.SigRunning:     {Table: plc.TableDiscreteInput, Address: 0, Type: plc.TypeBool},
			plc.SigVerdict:     {Table: plc.TableHolding, Address: 0, Type: plc.TypeVerdict},
			plc.SigStopRequest: {Table: plc.TableCoil, Address: 0, Type: plc.TypeBool},
			plc.SigGateOutcome: {Table: p.table, Address: ringAddr, Type: plc.TypeGateRing, Length: p.n, WordOrder: order},
		},
	}
	switch alive {
	case plc.TypeU16:
		cfg.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableHolding, Address: 11, Type: plc.TypeU16}
	case plc.TypeBool:
		cfg.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableCoil, Address: 2, Type: plc.TypeBool}
	}
	return cfg
}

func (p *testPLC) regs(table string) *[256]uint16 {
	if table == plc.TableHolding {
		return &p.holding
	}
	return &p.input
}

func (p *testPLC) put32(r []uint16, v uint32) {
	hi, lo := uint16(v>>16), uint16(v)
	if p.lowFirst {
		r[0], r[1] = lo, hi
		return
	}
	r[0], r[1] = hi, lo
}

// outcome writes ring slot (s-1)%n for outcome number s, raw.
func (p *testPLC) outcome(s uint32, item uint32, raw uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.regs(p.table)[ringAddr+2+3*int((s-1)%uint32(p.n)):]
	p.put32(r, item)
	r[2] = raw
}

// count sets the ring's count.
func (p *testPLC) count(c uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.put32(p.regs(p.table)[ringAddr:], c)
}

// gate records outcomes first.. (item 1000+s) and then the count, as a PLC
// scan would between two reads.
func (p *testPLC) gate(first uint32, outs ...plc.GateOutcome) {
	for i, o := range outs {
		s := first + uint32(i)
		p.outcome(s, 1000+s, uint16(o))
	}
	p.count(first + uint32(len(outs)) - 1)
}

func (p *testPLC) freeze(f bool) {
	p.mu.Lock()
	p.frozen = f
	p.mu.Unlock()
}

func (p *testPLC) snapshot() (holding [256]uint16, coils [8]bool, verdicts, ringReads, partial int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holding, p.coils, p.verdicts, p.ringReads, p.partial
}

func (p *testPLC) noteRead(table string, addr, qty uint16) {
	if table != p.table {
		return
	}
	start, end, rs, re := int(addr), int(addr)+int(qty), ringAddr, ringAddr+2+3*p.n
	switch {
	case end <= rs || start >= re:
	case start == rs && end == re:
		p.ringReads++
	default:
		p.partial++
	}
}

func (p *testPLC) HandleCoils(req *mb.CoilsRequest) ([]bool, error) {
	if req.UnitId != 1 {
		return nil, mb.ErrIllegalFunction
	}
	if int(req.Addr)+int(req.Quantity) > len(p.coils) {
		return nil, mb.ErrIllegalDataAddress
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if req.IsWrite {
		copy(p.coils[req.Addr:], req.Args)
		return nil, nil
	}
	return append([]bool(nil), p.coils[req.Addr:int(req.Addr)+int(req.Quantity)]...), nil
}

func (p *testPLC) HandleDiscreteInputs(req *mb.DiscreteInputsRequest) ([]bool, error) {
	if req.UnitId != 1 {
		return nil, mb.ErrIllegalFunction
	}
	if int(req.Addr)+int(req.Quantity) > 1 {
		return nil, mb.ErrIllegalDataAddress
	}
	return []bool{true}, nil
}

func (p *testPLC) HandleInputRegisters(req *mb.InputRegistersRequest) ([]uint16, error) {
	if req.UnitId != 1 {
		return nil, mb.ErrIllegalFunction
	}
	end := int(req.Addr) + int(req.Quantity)
	if end > len(p.input) {
		return nil, mb.ErrIllegalDataAddress
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(req.Addr) <= 2 && end > 2 && !p.frozen {
		p.input[2]++
	}
	p.noteRead(plc.TableInput, req.Addr, req.Quantity)
	return append([]uint16(nil), p.input[req.Addr:end]...), nil
}

func (p *testPLC) HandleHoldingRegisters(req *mb.HoldingRegistersRequest) ([]uint16, error) {
	if req.UnitId != 1 {
		return nil, mb.ErrIllegalFunction
	}
	end := int(req.Addr) + int(req.Quantity)
	if end > len(p.holding) {
		return nil, mb.ErrIllegalDataAddress
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if req.IsWrite {
		if req.Addr == 0 && req.Quantity == 4 {
			p.verdicts++
		}
		copy(p.holding[req.Addr:], req.Args)
		return nil, nil
	}
	p.noteRead(plc.TableHolding, req.Addr, req.Quantity)
	return append([]uint16(nil), p.holding[req.Addr:end]...), nil
}

// gateEvents collects the next n gate events (of any gate kind), as strings.
func gateEvents(t *testing.T, d plc.PLC, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		e := next(t, d, func(e plc.Event) bool {
			return e.Kind == plc.EventGate || e.Kind == plc.EventGateGap || e.Kind == plc.EventGateReset || e.Kind == plc.EventGateError
		})
		got = append(got, e.String())
	}
	return got
}
