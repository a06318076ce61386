package plctest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/plctest"
)

func TestFake(t *testing.T) {
	p := plctest.New(8)
	p.Items(1, 2)
	if e := <-p.Events(); e.Kind != plc.EventItem || e.Item != 1 {
		t.Fatalf("got %v", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go p.WriteVerdict(ctx, plc.Verdict{Item: 1, Result: plc.ResultPass})
	calls, err := p.WaitWrites(ctx, 1)
	if err != nil || len(calls) != 1 || calls[0].String() != "verdict item 1 pass reason 0" {
		t.Fatalf("calls %v err %v", calls, err)
	}
	boom := errors.New("boom")
	p.FailWrites(boom)
	if err := p.Set(ctx, plc.OutAlarm, 1); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if err := p.Set(ctx, plc.OutAlarm, 5); err == nil {
		t.Fatal("bad value accepted")
	}
	p.Close()
	p.Close()
	if err := p.WriteVerdict(ctx, plc.Verdict{Item: 2, Result: plc.ResultReject}); !errors.Is(err, plc.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestFakeGateAndLink(t *testing.T) {
	p := plctest.New(16)
	defer p.Close()
	ctx := t.Context()
	p.GateGap(1, 3)
	p.GateRing(4, plctest.Outcome{Item: 14, Outcome: plc.GatePassed}, plctest.Outcome{Item: 15, Outcome: plc.GateBinFull})
	p.GateReset(0)
	p.GateError(1, 21, 9)
	want := []string{"gate-gap #1..#3", "gate #4 item 14 passed", "gate #5 item 15 bin-full", "gate-reset to count 0"}
	for _, w := range want {
		if e := <-p.Events(); e.String() != w || e.At.IsZero() {
			t.Fatalf("got %v, want %s", e, w)
		}
	}
	if e := <-p.Events(); e.Kind != plc.EventGateError || e.Seq != 1 || e.Item != 21 || e.Err == nil {
		t.Fatalf("got %+v", e)
	}

	p.LinkDown(nil)
	<-p.Events()
	if err := p.WriteVerdict(ctx, plc.Verdict{Item: 1, Result: plc.ResultPass}); !errors.Is(err, plc.ErrNotConnected) {
		t.Fatalf("verdict while down: %v", err)
	}
	if err := p.Set(ctx, plc.OutControllerAlive, 7); err != nil {
		t.Fatalf("set while down: %v", err)
	}
	p.LinkUp()
	<-p.Events()
	if err := p.WriteVerdict(ctx, plc.Verdict{Item: 1, Result: plc.ResultPass}); err != nil {
		t.Fatalf("verdict after up: %v", err)
	}
	if cs := p.Calls(); len(cs) != 2 || cs[0].String() != "set controller_alive=7" || cs[1].Verdict == nil {
		t.Fatalf("calls %v", cs)
	}
}
