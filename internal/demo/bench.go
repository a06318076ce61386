package demo

import (
	"context"
	"errors"
	"os"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/line"
)

// BenchRun is one rate of BenchLine.
type BenchRun struct {
	Rate   float64          `json:"rate"`
	OK     bool             `json:"ok"`
	Misses int              `json:"deadline_misses"`
	Lat    line.StatsReport `json:"verdict_latency_ms"`
	// JournalOverSync is the journal stage's p99 over the disk's raw
	// fdatasync p99 (the mean of probes just before and just after this
	// run; goal ≤ 1.5); ControllerP99 the controller's own share of a
	// verdict at p99 (goal ≤ 2 ms).
	JournalOverSync float64               `json:"journal_p99_over_fdatasync_p99"`
	ControllerP99   float64               `json:"controller_share_p99_ms"`
	Sync            aggregation.SyncStats `json:"disk_fdatasync_ms"`
	SyncAfter       aggregation.SyncStats `json:"disk_fdatasync_after_ms"`
	CPU             float64               `json:"cpu_percent"`
	Err             string                `json:"error,omitempty"`
}

// BenchLineResult is `linectl bench line`.
type BenchLineResult struct {
	Units   int        `json:"units"`
	MaxRate float64    `json:"max_rate_zero_misses"`
	Runs    []BenchRun `json:"runs"`
}

// BenchLine runs one batch of o.Units at each rate in turn (ascending)
// until one does not reconcile or misses a deadline, and returns the
// highest rate with zero misses. Each run has a fresh temporary data
// directory, removed after it.
func BenchLine(ctx context.Context, o Options, rates []float64, wire Wire) (*BenchLineResult, error) {
	if len(rates) == 0 {
		return nil, errors.New("bench line: no rate to try")
	}
	out := &BenchLineResult{Units: o.Units}
	for _, rate := range rates {
		oo := o
		oo.Rate, oo.Data = rate, ""
		ru := BenchRun{Rate: rate}
		sync, err := aggregation.ProbeSync(os.TempDir(), 300) // the disk the demo's ledger is on
		if err != nil {
			return nil, err
		}
		ru.Sync = sync
		rep, err := Run(ctx, oo, wire)
		if err != nil {
			ru.Err = err.Error()
		} else {
			ru.OK = rep.OK()
			ru.Misses, ru.Lat, ru.CPU = rep.DeadlineMisses, rep.Latency, rep.CPUPercent
			// The disk's state varies from minute to minute: probe it again
			// after the run and compare with the mean of the two.
			if ru.SyncAfter, err = aggregation.ProbeSync(os.TempDir(), 300); err != nil {
				return nil, err
			}
			if ref := (sync.P99ms + ru.SyncAfter.P99ms) / 2; ref > 0 {
				ru.JournalOverSync = rep.Latency.Stages["journal"][1] / ref
			}
			ru.ControllerP99 = rep.Latency.Stages["controller"][1]
			os.RemoveAll(rep.DataDir)
		}
		out.Runs = append(out.Runs, ru)
		if !ru.OK {
			break
		}
		out.MaxRate = rate
	}
	return out, nil
}
