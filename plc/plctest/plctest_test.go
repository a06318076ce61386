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
