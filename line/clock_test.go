package line

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
)

// steppingClock is a wall clock an operator (or NTP) steps: it reads the
// real time plus an offset changed by step.
type steppingClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *steppingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset).Round(0) // a wall reading, as from a file or the network
}

func (c *steppingClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// TestWallClockStepDecidesNothing: the wall clock the ledger stamps its
// events with steps back an hour, then forward a day, in the middle of a
// batch. The line decides on its events' own stamps (monotonic readings):
// every good unit passes, none is late, the batch completes and the
// ledger verifies — its timestamps going backwards are recorded as they
// are, not taken for a broken chain.
func TestWallClockStepDecidesNothing(t *testing.T) {
	clock := &steppingClock{}
	rg := newLineRigOpts(t, t.TempDir(), aggregation.Options{Now: clock.now}, nil)
	ctx := context.Background()
	wo := workOrder("CLK1")
	wo.Planned = 9
	if _, err := rg.line.StartBatch(ctx, wo, "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	item := uint32(1)
	for _, step := range []time.Duration{0, -time.Hour, 24 * time.Hour} {
		clock.step(step)
		for i := 0; i < 3; i++ {
			rg.goodUnit(item)
			item++
		}
	}
	o := rg.waitFor("9 good units", func(o Overview) bool { return o.Counts.Good == 9 })
	if o.Counts.Rejected != 0 || o.Runner == nil || o.Runner.Counters.Late != 0 {
		t.Fatalf("a wall-clock step mis-decided units: counts %+v", o.Counts)
	}
	rg.command(CmdComplete)
	rg.waitFor("batch complete", func(o Overview) bool { return o.Batch != nil && o.Batch.Complete })
	rep, err := rg.store.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify after wall-clock steps: %+v", rep)
	}
}
