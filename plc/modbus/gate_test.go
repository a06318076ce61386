package modbus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/modbus"
)

func wantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The ring as a restarted controller finds it, new outcomes, nonsense from
// the PLC, a PLC restart and outcomes that happened while the link was cut —
// in both tables and word orders, each snapshot read in one request.
func TestGateRing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		table    string
		lowFirst bool
	}{{"input high-first", plc.TableInput, false}, {"holding low-first", plc.TableHolding, true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startTestPLC(t, 4, tc.table, tc.lowFirst)
			// Five outcomes before the controller starts; the ring holds four.
			p.gate(1, plc.GatePassed, plc.GateRejected, plc.GateRejectFailed, plc.GateBinFull, plc.GatePassed)
			d := connect(t, p.profile(""))
			next(t, d, kind(plc.EventLinkUp))
			wantEvents(t, gateEvents(t, d, 5),
				"gate-gap #1..#1",
				"gate #2 item 1002 rejected",
				"gate #3 item 1003 reject-failed",
				"gate #4 item 1004 bin-full",
				"gate #5 item 1005 passed")

			p.gate(6, plc.GateRejected, plc.GatePassed)
			wantEvents(t, gateEvents(t, d, 2), "gate #6 item 1006 rejected", "gate #7 item 1007 passed")

			p.outcome(8, 1008, 9)
			p.count(8)
			e := next(t, d, kind(plc.EventGateError))
			if e.Seq != 8 || e.Item != 1008 || e.Outcome != 0 || !strings.Contains(e.Err.Error(), "value 9") || !strings.Contains(e.Err.Error(), "slot 3") {
				t.Fatalf("nonsense outcome: %+v", e)
			}

			// The PLC restarts its ring.
			p.count(0)
			p.gate(1, plc.GateRejected)
			wantEvents(t, gateEvents(t, d, 2), "gate-reset to count 1", "gate #1 item 1001 rejected")

			// Six outcomes while the link is cut: the last four are still in
			// the ring when it comes back.
			p.proxy.Cut()
			next(t, d, kind(plc.EventLinkDown))
			p.gate(2, plc.GatePassed, plc.GatePassed, plc.GateRejected, plc.GatePassed, plc.GateBinFull, plc.GatePassed)
			p.proxy.Restore()
			next(t, d, kind(plc.EventLinkUp))
			wantEvents(t, gateEvents(t, d, 5),
				"gate-gap #2..#3",
				"gate #4 item 1004 rejected",
				"gate #5 item 1005 passed",
				"gate #6 item 1006 bin-full",
				"gate #7 item 1007 passed")

			if _, _, _, whole, partial := p.snapshot(); whole == 0 || partial != 0 {
				t.Fatalf("%d whole-ring reads, %d partial ones; want every read whole", whole, partial)
			}
		})
	}
}

// A PLC that does not have the ring where the profile says: Connect fails
// and says which signal.
func TestGateRingMissing(t *testing.T) {
	p := startTestPLC(t, 4, plc.TableInput, false)
	cfg := p.profile("")
	s := cfg.Signals[plc.SigGateOutcome]
	s.Address = 250 // 14 registers from 250: past the test PLC's 256
	cfg.Signals[plc.SigGateOutcome] = s
	d, err := modbus.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Connect(t.Context()); err == nil || !strings.Contains(err.Error(), "read gate_outcome") {
		t.Fatalf("Connect: %v", err)
	}
}

// Item 11: with the heartbeat stale (the PLC program halted, the transport
// fine) a verdict is refused at once and not sent; the outputs still go
// through, so that the program sees the stop request when it comes back.
func TestStaleHeartbeatRefusesVerdictsNotOutputs(t *testing.T) {
	p := startTestPLC(t, 4, plc.TableInput, false)
	d := connect(t, p.profile(plc.TypeU16))
	next(t, d, kind(plc.EventLinkUp))
	ctx := t.Context()
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 1, Result: plc.ResultPass}); err != nil {
		t.Fatal(err)
	}
	p.freeze(true)
	if e := next(t, d, kind(plc.EventLinkDown)); !strings.Contains(e.Err.Error(), "heartbeat") {
		t.Fatalf("link down: %v", e.Err)
	}
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 2, Result: plc.ResultReject}); !errors.Is(err, plc.ErrNotConnected) {
		t.Fatalf("verdict with a stale heartbeat: %v, want ErrNotConnected", err)
	}
	if err := d.Set(ctx, plc.OutStopRequest, 1); err != nil {
		t.Fatalf("stop request with a stale heartbeat: %v", err)
	}
	if err := d.Set(ctx, plc.OutControllerAlive, 7); err != nil {
		t.Fatalf("controller_alive with a stale heartbeat: %v", err)
	}
	holding, coils, verdicts, _, _ := p.snapshot()
	if verdicts != 1 || !coils[0] || holding[11] != 7 {
		t.Fatalf("PLC got %d verdicts (want 1), stop request %t, controller_alive %d", verdicts, coils[0], holding[11])
	}
	p.freeze(false)
	next(t, d, kind(plc.EventLinkUp))
	if err := d.WriteVerdict(ctx, plc.Verdict{Item: 3, Result: plc.ResultPass}); err != nil {
		t.Fatalf("verdict after the heartbeat came back: %v", err)
	}
}

// With the transport down, Set fails at once too.
func TestTransportDownRefusesOutputs(t *testing.T) {
	p := startTestPLC(t, 4, plc.TableInput, false)
	d := connect(t, p.profile(plc.TypeU16))
	next(t, d, kind(plc.EventLinkUp))
	p.proxy.Cut()
	next(t, d, kind(plc.EventLinkDown))
	if err := d.Set(t.Context(), plc.OutStopRequest, 1); !errors.Is(err, plc.ErrNotConnected) {
		t.Fatalf("stop request with the transport down: %v", err)
	}
	if err := d.WriteVerdict(t.Context(), plc.Verdict{Item: 1, Result: plc.ResultPass}); !errors.Is(err, plc.ErrNotConnected) {
		t.Fatalf("verdict with the transport down: %v", err)
	}
}

func TestControllerAlive(t *testing.T) {
	p := startTestPLC(t, 4, plc.TableInput, false)
	ctx := t.Context()

	counter := connect(t, p.profile(plc.TypeU16))
	for _, v := range []int{0, 1, 40000, 65535} {
		if err := counter.Set(ctx, plc.OutControllerAlive, v); err != nil {
			t.Fatal(err)
		}
		if h, _, _, _, _ := p.snapshot(); h[11] != uint16(v) {
			t.Fatalf("wrote %d, register holds %d", v, h[11])
		}
	}
	if err := counter.Set(ctx, plc.OutControllerAlive, 65536); err == nil {
		t.Fatal("65536 accepted")
	}

	toggle := connect(t, p.profile(plc.TypeBool))
	for _, v := range []int{1, 2, 3, 65535, 0} {
		if err := toggle.Set(ctx, plc.OutControllerAlive, v); err != nil {
			t.Fatal(err)
		}
		if _, c, _, _, _ := p.snapshot(); c[2] != (v%2 == 1) {
			t.Fatalf("wrote %d, coil holds %t", v, c[2])
		}
	}

	unmapped := connect(t, p.profile(""))
	if err := unmapped.Set(ctx, plc.OutControllerAlive, 1); !errors.Is(err, plc.ErrNoSignal) {
		t.Fatalf("unmapped: %v", err)
	}
	if got := unmapped.PublishingInterval(); got != p.profile("").Modbus.PollPeriod {
		t.Fatalf("PublishingInterval %s, want the poll period", got)
	}
}
