package line

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tracline/tracline/aggregation"
)

// TestLedgerDiskFullHoldsTheLine: the ledger's disk below its reserve
// holds a producing line with an alarm naming the disk and its free space;
// the line can neither unhold nor start until the space is back, when the
// alarm clears by itself and the operator resumes. A low disk only warns.
func TestLedgerDiskFullHoldsTheLine(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	const MB = 1 << 20
	full := aggregation.DiskReport{Dir: "/data/ledger", Level: aggregation.DiskFull, Free: 3 * MB, Total: 320 * MB, Warn: 172 * MB, Reserve: 86 * MB}
	ok := aggregation.DiskReport{Dir: "/data/ledger", Level: aggregation.DiskOK, Free: 300 * MB, Total: 320 * MB, Warn: 172 * MB, Reserve: 86 * MB}
	low := ok
	low.Level, low.Free = aggregation.DiskLow, 120*MB

	// No batch yet: the disk is full, a batch is started, start is refused.
	rg.line.LedgerDisk(full)
	rg.waitFor("the disk alarm", func(o Overview) bool {
		return len(o.Alarms) > 0 && o.Alarms[0].Device == FaultLedgerDisk && o.Alarms[0].Active
	})
	if _, err := rg.line.StartBatch(ctx, workOrder("D1"), "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.waitFor("Idle", func(o Overview) bool { return o.State == "Idle" })
	if err := rg.line.Command(ctx, CmdStart, "op1"); !errors.Is(err, ErrInvalidCommand) || !strings.Contains(err.Error(), FaultLedgerDisk) {
		t.Fatalf("start on a full ledger disk: %v", err)
	}
	rg.line.LedgerDisk(ok)
	rg.waitFor("the disk alarm cleared", func(o Overview) bool { return len(faultsOf(o)) == 0 })
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	rg.goodUnit(1)

	// Producing: a low disk warns, the line goes on.
	rg.line.LedgerDisk(low)
	rg.waitFor("the low-disk warning", func(o Overview) bool {
		for _, a := range o.Alarms {
			if a.Device == FaultLedgerDisk && !a.Active && strings.Contains(a.Text, "120 MB free") {
				return true
			}
		}
		return false
	})
	if s := rg.line.Snapshot(); s.State != "Execute" {
		t.Fatalf("a low disk stopped the line: %s", s.State)
	}
	// Full: the line holds, naming the disk and its free space.
	rg.line.LedgerDisk(full)
	o := rg.waitFor("Held on the disk", func(o Overview) bool { return o.State == "Held" && faultsOf(o)[FaultLedgerDisk] != "" })
	if f := faultsOf(o)[FaultLedgerDisk]; !strings.Contains(f, "/data/ledger") || !strings.Contains(f, "3 MB free") || !strings.Contains(f, "86 MB reserve") {
		t.Fatalf("the alarm says %q", f)
	}
	if err := rg.line.Command(ctx, CmdUnhold, "op1"); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("unhold on a full disk: %v", err)
	}
	// Space is back: the alarm clears by itself, the operator unholds.
	rg.line.LedgerDisk(ok)
	rg.waitFor("the disk alarm cleared", func(o Overview) bool { return faultsOf(o)[FaultLedgerDisk] == "" })
	rg.command(CmdUnhold)
	rg.waitFor("Execute again", func(o Overview) bool { return o.State == "Execute" })
}

// faultsOf is the runner's faults in an overview (none without a batch).
func faultsOf(o Overview) map[string]string {
	if o.Runner == nil {
		return nil
	}
	return o.Runner.Faults
}
