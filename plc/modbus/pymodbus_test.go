package modbus_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/modbus"
)

// The driver against a Modbus TCP server it shares no code with: pymodbus
// (Debian's python3-pymodbus, 3.0.0), run as testdata/pymodbus_server.py.
// The in-process servers of the other tests are built on the driver's own
// library, whose client and server could agree on a mistake; pymodbus is
// strict in the way a PLC is: a request outside its blocks gets exception 2
// (illegal data address), a unit id it does not serve gets no answer.

// debianPython is Debian's python3, where python3-pymodbus installs; not the
// python3 first on PATH, which may be another one (pyenv) without it.
const debianPython = "/usr/bin/python3"

// pyPLC is one run of testdata/pymodbus_server.py; its map is that script's
// doc comment (and pyProfile's).
type pyPLC struct {
	addr   string // 127.0.0.1:port
	cmd    *exec.Cmd
	stdin  *os.File // the script exits when it closes
	lines  chan string
	stderr string // the file the script's stderr goes to
	exited chan struct{}
}

// stderrText is what the script has said on stderr so far.
func (p *pyPLC) stderrText() string {
	b, _ := os.ReadFile(p.stderr)
	return string(b)
}

// startPymodbus starts the script on 127.0.0.1:port (0: a free port) with
// the item counter at items, and waits for its ready line. A missing python3
// or pymodbus fails the test, naming the package: the project's tests need
// it (./scripts/test installs it).
func startPymodbus(t *testing.T, port int, items uint32) *pyPLC {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%v: the pymodbus interoperability test needs Debian's python3 and python3-pymodbus (./scripts/test installs them: apt-get install python3-pymodbus)", err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.CreateTemp(t.TempDir(), "pymodbus-stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close() // the child holds its own descriptor
	p := &pyPLC{stdin: inW, lines: make(chan string, 16), stderr: stderr.Name(), exited: make(chan struct{})}
	// Pipes of our own (not StdoutPipe): the script's output is read to its
	// end whenever cmd.Wait runs.
	p.cmd = exec.Command(debianPython, "-u", "testdata/pymodbus_server.py", "--port", strconv.Itoa(port), "--items", strconv.FormatUint(uint64(items), 10))
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = inR, outW, stderr
	err = p.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatalf("start %s: %v", debianPython, err)
	}
	go func() {
		defer close(p.lines)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	ready := p.line(t)
	var version string
	if _, err := fmt.Sscanf(ready, "ready %s pymodbus %s", &p.addr, &version); err != nil {
		t.Fatalf("pymodbus server said %q, want its ready line", ready)
	}
	t.Logf("pymodbus %s on %s", version, p.addr)
	return p
}

// line returns the script's next line of output; the test fails if none
// comes within 10 s or the script exits first (with what it said on stderr).
func (p *pyPLC) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.exited
			t.Fatalf("pymodbus server exited (%v): %s", p.cmd.ProcessState, strings.TrimSpace(p.stderrText()))
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("pymodbus server: no answer in 10 s; stderr: %s", p.stderrText())
	}
	return ""
}

// do runs one of the script's commands and returns what follows its "ok".
func (p *pyPLC) do(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
		t.Fatalf("pymodbus server: %s: %v", cmd, err)
	}
	l := p.line(t)
	if l != "ok" && !strings.HasPrefix(l, "ok ") {
		t.Fatalf("pymodbus server: %s: %s", cmd, l)
	}
	return strings.TrimPrefix(strings.TrimPrefix(l, "ok"), " ")
}

// want checks what the server holds ("hr 0 4", "co 0 2") after a write.
func (p *pyPLC) want(t *testing.T, what, values string) {
	t.Helper()
	if got := p.do(t, "get "+what); got != values {
		t.Fatalf("pymodbus server holds %s = %s, want %s", what, got, values)
	}
}

// kill ends the server as a crash would: SIGKILL, its sockets closed by the
// kernel. (A link that goes silent without closing is the stalled-link
// tests' case, on the simulator.)
func (p *pyPLC) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// stop closes the script's stdin (it exits) and kills it if it has not
// exited 5 s later; after a failure it logs what pymodbus logged (a
// refused request is logged there with its function code).
func (p *pyPLC) stop(t *testing.T) {
	if log := p.stderrText(); t.Failed() && log != "" && p.addr != "" {
		t.Logf("pymodbus server %s's log:\n%s", p.addr, log)
	}
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.kill()
	}
}

// pyProfile maps testdata/pymodbus_server.py's blocks: every signal the
// driver has, each inside them.
func pyProfile(addr string) plc.Config {
	return plc.Config{
		Protocol:         plc.ProtoModbus,
		Modbus:           plc.ModbusConfig{Address: addr, PollPeriod: 10 * time.Millisecond, Timeout: time.Second},
		HeartbeatTimeout: 2 * time.Second, // the script's heartbeat: +1 every 20 ms
		ReconnectMin:     10 * time.Millisecond,
		ReconnectMax:     100 * time.Millisecond,
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger:     {Table: plc.TableInput, Address: 0, Type: plc.TypeU32},
			plc.SigHeartbeat:       {Table: plc.TableInput, Address: 2, Type: plc.TypeU16},
			plc.SigGateOutcome:     {Table: plc.TableInput, Address: 16, Type: plc.TypeGateRing, Length: 4},
			plc.SigRunning:         {Table: plc.TableDiscreteInput, Address: 0, Type: plc.TypeBool},
			plc.SigVerdict:         {Table: plc.TableHolding, Address: 0, Type: plc.TypeVerdict},
			plc.SigTowerLight:      {Table: plc.TableHolding, Address: 10, Type: plc.TypeU16},
			plc.SigControllerAlive: {Table: plc.TableHolding, Address: 11, Type: plc.TypeU16},
			plc.SigGateAck:         {Table: plc.TableHolding, Address: 12, Type: plc.TypeU16},
			plc.SigStopRequest:     {Table: plc.TableCoil, Address: 0, Type: plc.TypeBool},
			plc.SigAlarm:           {Table: plc.TableCoil, Address: 1, Type: plc.TypeBool},
		},
	}
}

// What the line does with its PLC in production, against pymodbus: inputs
// (running, the item counter, the gate ring) in, the verdict and every
// output out, each landing in the register or coil the profile names.
func TestPymodbusInputsAndOutputs(t *testing.T) {
	p := startPymodbus(t, 0, 0)
	d := connect(t, pyProfile(p.addr))
	ctx := t.Context()
	next(t, d, kind(plc.EventLinkUp))
	if e := next(t, d, kind(plc.EventRunning)); e.Running {
		t.Fatalf("first poll: %v, want running=false", e)
	}
	p.do(t, "running 1")
	if e := next(t, d, kind(plc.EventRunning)); !e.Running {
		t.Fatalf("after running 1: %v", e)
	}

	for want := uint32(1); want <= 3; want++ {
		p.do(t, "feed 1")
		if e := next(t, d, kind(plc.EventItem)); e.Item != want || e.Late {
			t.Fatalf("after feed: %v, want item %d", e, want)
		}
	}

	// item u32 high word first, result, reason: one FC16.
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 2, Result: plc.ResultReject, Reason: 7}); err != nil {
		t.Fatal(err)
	}
	p.want(t, "hr 0 4", "0 2 2 7")
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 70000, Result: plc.ResultPass}); err != nil {
		t.Fatal(err)
	}
	p.want(t, "hr 0 4", "1 4464 1 0") // 70000 = 0x0001_1170

	for _, tc := range []struct {
		out   plc.Output
		value int
		where string
		want  string
	}{
		{plc.OutStopRequest, 1, "co 0 1", "1"},
		{plc.OutAlarm, 1, "co 1 1", "1"},
		{plc.OutTowerLight, int(plc.TowerAmber), "hr 10 1", "2"},
		{plc.OutControllerAlive, 65535, "hr 11 1", "65535"},
		{plc.OutGateAck, 4242, "hr 12 1", "4242"},
		{plc.OutStopRequest, 0, "co 0 2", "0 1"}, // cleared, the alarm beside it untouched
		{plc.OutTowerLight, int(plc.TowerOff), "hr 10 3", "0 65535 4242"},
	} {
		if err := d.Set(ctx, tc.out, tc.value); err != nil {
			t.Fatalf("%s=%d: %v", tc.out, tc.value, err)
		}
		p.want(t, tc.where, tc.want)
	}

	// The gate ring (count, then 4 entries) in one read, through its wrap.
	p.do(t, "gate 1001 2")
	p.do(t, "gate 1002 1")
	wantEvents(t, gateEvents(t, d, 2), "gate #1 item 1001 rejected", "gate #2 item 1002 passed")
	p.do(t, "gate 1003 3")
	p.do(t, "gate 1004 1")
	p.do(t, "gate 1005 4") // slot 0 again
	wantEvents(t, gateEvents(t, d, 3), "gate #3 item 1003 reject-failed", "gate #4 item 1004 passed", "gate #5 item 1005 bin-full")
}

// A profile that names an address the server does not have: the read or the
// write fails with the signal's name and the PLC's exception — never a
// panic, never a zero read as if it were a value — and a failed write
// changes nothing.
func TestPymodbusAddressOutsideTheServer(t *testing.T) {
	p := startPymodbus(t, 0, 0)
	for _, tc := range []struct {
		name string
		sig  string
		s    plc.Signal
		want string
	}{
		{"item counter across the end of the input registers", plc.SigItemTrigger, plc.Signal{Table: plc.TableInput, Address: 31, Type: plc.TypeU32}, "read item_trigger: illegal data address"},
		{"gate ring across the end of the input registers", plc.SigGateOutcome, plc.Signal{Table: plc.TableInput, Address: 20, Type: plc.TypeGateRing, Length: 4}, "read gate_outcome: illegal data address"},
		{"running past the discrete inputs", plc.SigRunning, plc.Signal{Table: plc.TableDiscreteInput, Address: 8, Type: plc.TypeBool}, "read running: illegal data address"},
		{"heartbeat past the holding registers", plc.SigHeartbeat, plc.Signal{Table: plc.TableHolding, Address: 16, Type: plc.TypeU16}, "read heartbeat: illegal data address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pyProfile(p.addr)
			cfg.Signals[tc.sig] = tc.s
			d, err := modbus.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Connect(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Connect: %v; want an error with %q", err, tc.want)
			}
		})
	}

	t.Run("unit id the server does not serve", func(t *testing.T) {
		cfg := pyProfile(p.addr)
		cfg.Modbus.UnitID = 7
		cfg.Modbus.Timeout = 300 * time.Millisecond
		d, err := modbus.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		const want = "read heartbeat: request timed out"
		if err := d.Connect(t.Context()); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Connect to unit 7: %v; want an error with %q", err, want)
		}
	})

	t.Run("outputs", func(t *testing.T) {
		cfg := pyProfile(p.addr)
		cfg.Signals[plc.SigVerdict] = plc.Signal{Table: plc.TableHolding, Address: 13, Type: plc.TypeVerdict} // 13-16: one past the end
		cfg.Signals[plc.SigAlarm] = plc.Signal{Table: plc.TableCoil, Address: 8, Type: plc.TypeBool}
		cfg.Signals[plc.SigTowerLight] = plc.Signal{Table: plc.TableHolding, Address: 100, Type: plc.TypeU16}
		cfg.Signals[plc.SigStopRequest] = plc.Signal{Table: plc.TableCoil, Address: 7, Type: plc.TypeBool} // the last coil: there
		d := connect(t, cfg)
		next(t, d, kind(plc.EventLinkUp))
		ctx := t.Context()
		const want = "verdict item 1: illegal data address"
		if err := d.WriteVerdict(ctx, plc.Verdict{Item: 1, Result: plc.ResultPass, Reason: 3}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("verdict: %v; want an error with %q", err, want)
		}
		p.want(t, "hr 13 3", "0 0 0") // nothing of the verdict written
		for _, tc := range []struct {
			out  plc.Output
			want string
		}{{plc.OutAlarm, "alarm=1: illegal data address"}, {plc.OutTowerLight, "tower_light=1: illegal data address"}} {
			if err := d.Set(ctx, tc.out, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: %v; want an error with %q", tc.out, err, tc.want)
			}
		}
		// The refusals were answers, not a broken link: the next write
		// goes through on the same connection.
		if err := d.Set(ctx, plc.OutStopRequest, 1); err != nil {
			t.Fatalf("stop request after the refused writes: %v", err)
		}
		p.want(t, "co 0 8", "0 0 0 0 0 0 0 1")
	})
}

// The server goes away (killed: its sockets closed by the kernel): the link
// goes down with the reason, writes fail at once, and when a server is back
// on the same port the driver reconnects by itself and recovers the units
// counted meanwhile.
func TestPymodbusServerGoneAndBack(t *testing.T) {
	p := startPymodbus(t, 0, 0)
	d := connect(t, pyProfile(p.addr))
	ctx := t.Context()
	next(t, d, kind(plc.EventLinkUp))
	p.do(t, "feed 1")
	if e := next(t, d, kind(plc.EventItem)); e.Item != 1 {
		t.Fatalf("item %v, want 1", e)
	}

	p.kill()
	down := next(t, d, kind(plc.EventLinkDown))
	if down.Err == nil || !strings.HasPrefix(down.Err.Error(), "read ") {
		t.Fatalf("link down: %v; want the read that failed", down.Err)
	}
	t.Logf("link down: %v", down.Err)
	if err := d.Set(ctx, plc.OutStopRequest, 1); !errors.Is(err, plc.ErrNotConnected) {
		t.Fatalf("stop request with the server gone: %v, want ErrNotConnected", err)
	}
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 1, Result: plc.ResultPass}); !errors.Is(err, plc.ErrNotConnected) {
		t.Fatalf("verdict with the server gone: %v, want ErrNotConnected", err)
	}

	// The PLC back on the same port; its counter is retentive: units 2 and
	// 3 passed while the link was down.
	port, err := strconv.Atoi(p.addr[strings.LastIndexByte(p.addr, ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	p2 := startPymodbus(t, port, 3)
	next(t, d, kind(plc.EventLinkUp))
	if e := next(t, d, kind(plc.EventItem)); e.Item != 2 || !e.Late {
		t.Fatalf("first item after reconnect %v, want 2 (late)", e)
	}
	if e := next(t, d, kind(plc.EventItem)); e.Item != 3 {
		t.Fatalf("second item after reconnect %v, want 3", e)
	}
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 3, Result: plc.ResultReject, Reason: 5}); err != nil {
		t.Fatalf("verdict after reconnect: %v", err)
	}
	p2.want(t, "hr 0 4", "0 3 2 5")
	if err := d.Set(ctx, plc.OutStopRequest, 1); err != nil {
		t.Fatalf("stop request after reconnect: %v", err)
	}
	p2.want(t, "co 0 1", "1")
}
