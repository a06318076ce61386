package line

import (
	"context"
	"sync"
)

// RunnerView shows a Line as a single Runner (Snapshot, Stats, Command,
// Rework, Subscribe with the runner's Updates) that follows the line from
// batch to batch: for code written against a Runner. Commands and
// reworks go through the Line, so they are journaled with the user.
type RunnerView struct{ l *Line }

// RunnerView returns the line's runner view.
func (l *Line) RunnerView() RunnerView { return RunnerView{l: l} }

// Snapshot is the current (or last) batch's runner snapshot; with no batch
// yet, the line is Stopped.
func (v RunnerView) Snapshot() Snapshot {
	if run := v.l.cur.Load(); run != nil {
		return run.r.Snapshot()
	}
	return Snapshot{State: Stopped.String(), Why: "no batch: start one from a work order", Faults: v.l.idleFaults(),
		Challenge: []ChallengeResult{}, Counters: Counters{RejectReason: map[string]uint64{}, Packed: map[string]uint64{}, Partial: map[string]uint64{}}}
}

// Stats is Line.Stats.
func (v RunnerView) Stats() StatsReport { return v.l.Stats() }

// Command is Line.Command.
func (v RunnerView) Command(ctx context.Context, cmd Command, user string) error {
	return v.l.Command(ctx, cmd, user)
}

// Rework is Line.Rework by op.User.
func (v RunnerView) Rework(ctx context.Context, op ReworkOp) error {
	return v.l.Rework(ctx, op, op.User)
}

// Subscribe gives the current batch's runner updates, following the line
// from batch to batch (a batch change sends an update with the new
// batch's snapshot and no actions). A slow subscriber misses updates; it
// never slows the line.
func (v RunnerView) Subscribe() (<-chan Update, func()) {
	out := make(chan Update, 64)
	done := make(chan struct{})
	changes, unsubChanges := v.l.Subscribe()
	go func() {
		defer unsubChanges()
		var (
			run   *batchRun
			upd   <-chan Update
			unsub = func() {}
		)
		defer func() { unsub() }()
		for {
			if cur := v.l.cur.Load(); cur != run {
				unsub()
				run, upd, unsub = cur, nil, func() {}
				if run != nil {
					upd, unsub = run.r.Subscribe()
				}
				select {
				case out <- Update{Snapshot: v.Snapshot()}:
				default:
				}
			}
			select {
			case <-done:
				return
			case <-changes:
			case u := <-upd:
				select {
				case out <- u:
				default:
				}
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done) }) }
}
