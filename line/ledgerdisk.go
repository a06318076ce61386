package line

import (
	"context"
	"time"

	"github.com/tracline/tracline/aggregation"
)

// FaultLedgerDisk is the device the ledger disk's alarms name.
const FaultLedgerDisk = "ledger-disk"

// LedgerDisk is told what the ledger's disk guard saw
// (aggregation.DiskGuard.Run calls it with its first look and whenever the
// level changes). Full (free space below the reserve, or unknown): a
// device fault naming the disk and the free space — the line holds, and
// neither unholds nor starts until it clears (the one fault that refuses
// start: Machine.CommandAllowed). Low: a warning to
// acknowledge. Out of full: the fault clears by itself, as a device's
// does when it answers again.
func (l *Line) LedgerDisk(r aggregation.DiskReport) {
	now := time.Now()
	switch r.Level {
	case aggregation.DiskFull:
		l.log.Error("ledger disk below its reserve: the line holds", "dir", r.Dir, "free_mb", r.Free>>20, "reserve_mb", r.Reserve>>20, "err", r.Err)
		l.Post(DeviceFault{Stamp: Stamp{T: now}, Device: FaultLedgerDisk, Err: r.Text()})
		return
	case aggregation.DiskLow:
		l.log.Warn("ledger disk low", "dir", r.Dir, "free_mb", r.Free>>20, "warn_mb", r.Warn>>20)
		batch := ""
		if run := l.current(); run != nil {
			batch = run.spec.ID
		}
		l.raiseAlarm(context.Background(), FaultLedgerDisk, r.Text(), batch, false)
	case aggregation.DiskOK:
	}
	l.Post(DeviceOK{Stamp: Stamp{T: now}, Device: FaultLedgerDisk})
}
