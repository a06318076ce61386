package opcua_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/netsim"
	"github.com/tracline/tracline/cmd/linesim/uasim"
	"github.com/tracline/tracline/plc"
)

// testPLC is a small OPC UA PLC of the tests' own (the uasim toolkit around
// the gopcua server, which guards the server's known crashes), behind a
// netsim proxy so that the link can be cut. Nodes (ns=1): PLC.ItemCounter
// UInt32, PLC.Heartbeat UInt32 (+1 every 10 ms unless frozen), PLC.Running
// Boolean, PLC.Verdict UInt32[3] (writable), PLC.StopRequest Boolean,
// PLC.ControllerAlive UInt16, PLC.AliveToggle Boolean (writable), and
// PLC.GateOutcomes UInt32[1+2n] — raw: tests put anything there.
type testPLC struct {
	n     int
	srv   *uasim.Server
	proxy *netsim.Proxy
	vars  map[string]*uasim.Variable

	frozen atomic.Bool

	mu       sync.Mutex
	ring     []uint32
	verdicts int
	stop     bool
	alive    uint16
	toggle   bool
}

func node(name string) string { return "ns=1;s=" + name }

// startTestPLC starts the PLC; minInterval is the smallest publishing
// interval it grants (0: 1 ms).
func startTestPLC(t *testing.T, n int, minInterval time.Duration) *testPLC {
	t.Helper()
	p := &testPLC{n: n, vars: map[string]*uasim.Variable{}, ring: make([]uint32, 1+2*n)}
	srv, err := uasim.New(uasim.Config{Name: "test PLC", NamespaceURI: "urn:tracline:test:plc", MinPublishingInterval: minInterval}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = srv
	obj, err := srv.AddObject("", "PLC")
	if err != nil {
		t.Fatal(err)
	}
	set := func(f func(v any) bool) uasim.WriteFunc {
		return func(v any) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			if !f(v) {
				return &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("wrong type %T", v)} // BadTypeMismatch
			}
			return nil
		}
	}
	for _, d := range []struct {
		name string
		init any
		w    uasim.WriteFunc
	}{
		{"PLC.ItemCounter", uint32(0), nil},
		{"PLC.Heartbeat", uint32(0), nil},
		{"PLC.Running", true, nil},
		{"PLC.Verdict", []uint32{0, 0, 0}, set(func(v any) bool { _, ok := v.([]uint32); p.verdicts++; return ok })},
		{"PLC.StopRequest", false, set(func(v any) bool { b, ok := v.(bool); p.stop = b; return ok })},
		{"PLC.ControllerAlive", uint16(0), set(func(v any) bool { u, ok := v.(uint16); p.alive = u; return ok })},
		{"PLC.AliveToggle", false, set(func(v any) bool { b, ok := v.(bool); p.toggle = b; return ok })},
		{"PLC.GateOutcomes", append([]uint32(nil), p.ring...), nil},
	} {
		v, err := srv.AddVariable(obj, d.name, d.init, d.w)
		if err != nil {
			t.Fatal(err)
		}
		p.vars[d.name] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// The PLC program's heartbeat: its own clock, not a wait for anything.
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var hb uint32
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if !p.frozen.Load() {
					hb++
					p.vars["PLC.Heartbeat"].Set(hb)
				}
			}
		}
	}()
	if p.proxy, err = netsim.New(srv.Addr(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.proxy.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.proxy.Close() })
	return p
}

// profile maps the test PLC through its proxy (alive: plc.TypeU16,
// plc.TypeBool or "" for unmapped).
func (p *testPLC) profile(endpoint, alive string) plc.Config {
	cfg := plc.Config{
		Protocol:         plc.ProtoOPCUA,
		OPCUA:            plc.OPCUAConfig{Endpoint: endpoint, Timeout: 500 * time.Millisecond},
		HeartbeatTimeout: 300 * time.Millisecond,
		ReconnectMin:     10 * time.Millisecond,
		ReconnectMax:     100 * time.Millisecond,
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Node: node("PLC.ItemCounter"), Type: plc.TypeU32},
			plc.SigHeartbeat:   {Node: node("PLC.Heartbeat"), Type: plc.TypeU32},
			plc.SigRunning:     {Node: node("PLC.Running"), Type: plc.TypeBool},
			plc.SigVerdict:     {Node: node("PLC.Verdict"), Type: plc.TypeVerdict},
			plc.SigStopRequest: {Node: node("PLC.StopRequest"), Type: plc.TypeBool},
			plc.SigGateOutcome: {Node: node("PLC.GateOutcomes"), Type: plc.TypeGateRing, Length: p.n},
		},
	}
	switch alive {
	case plc.TypeU16:
		cfg.Signals[plc.SigControllerAlive] = plc.Signal{Node: node("PLC.ControllerAlive"), Type: plc.TypeU16}
	case plc.TypeBool:
		cfg.Signals[plc.SigControllerAlive] = plc.Signal{Node: node("PLC.AliveToggle"), Type: plc.TypeBool}
	}
	return cfg
}

func (p *testPLC) endpoint() string { return "opc.tcp://" + p.proxy.Addr() }

// gate records outcomes first.. (item 1000+s) and the count in one update
// of the ring node, as a PLC scan does.
func (p *testPLC) gate(first uint32, outs ...plc.GateOutcome) {
	p.mu.Lock()
	for i, o := range outs {
		s := first + uint32(i)
		slot := int((s - 1) % uint32(p.n))
		p.ring[1+2*slot], p.ring[2+2*slot] = 1000+s, uint32(o)
	}
	p.ring[0] = first + uint32(len(outs)) - 1
	ring := append([]uint32(nil), p.ring...)
	p.mu.Unlock()
	p.vars["PLC.GateOutcomes"].Set(ring)
}

// rawRing puts any UInt32 array in the ring node.
func (p *testPLC) rawRing(t *testing.T, v []uint32) {
	t.Helper()
	if err := p.vars["PLC.GateOutcomes"].Set(v); err != nil {
		t.Fatal(err)
	}
}

func (p *testPLC) feed(item uint32) { p.vars["PLC.ItemCounter"].Set(item) }

func (p *testPLC) state() (verdicts int, stop bool, alive uint16, toggle bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verdicts, p.stop, p.alive, p.toggle
}

// strictProxy forwards OPC UA TCP to target and, like a strict server,
// drops the connection when the sequence numbers of a client's MSG chunks
// skip (OPC UA Part 6 §6.7.2.4). Security None only: the sequence header is
// in the clear.
type strictProxy struct {
	target string
	l      net.Listener
	gaps   atomic.Int64
}

func startStrictProxy(t *testing.T, target string) *strictProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sp := &strictProxy{target: target, l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go sp.serve(c)
		}
	}()
	return sp
}

func (sp *strictProxy) endpoint() string { return "opc.tcp://" + sp.l.Addr().String() }

func (sp *strictProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", sp.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() {
		io.Copy(client, server)
		client.Close()
	}()
	var last uint32
	have := false
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(client, hdr); err != nil {
			return
		}
		size := binary.LittleEndian.Uint32(hdr[4:])
		if size < 8 || size > 1<<24 {
			return
		}
		body := make([]byte, size-8)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		switch string(hdr[:3]) {
		case "OPN": // a new or renewed channel: numbering goes on from its own number
			have = false
		case "MSG", "CLO":
			if len(body) < 12 {
				return
			}
			seq := binary.LittleEndian.Uint32(body[8:])
			if have && seq != last+1 {
				sp.gaps.Add(1)
				return // a strict server drops the connection
			}
			last, have = seq, true
		}
		if _, err := server.Write(append(append([]byte(nil), hdr...), body...)); err != nil {
			return
		}
	}
}
