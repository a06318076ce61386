package campaign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tracline/tracline/internal/campaign/lineproc"
	"github.com/tracline/tracline/line"
)

// diskFullSize is the tmpfs the disk-full try puts the ledger on. The
// controller's disk guard (aggregation.DiskGuard) holds the line below its
// reserve (86 MB with the default 32 MB memtable) and warns below twice
// that, and the live memtable file is backed with 38 MB: on a disk much
// under 220 MB the line would (rightly) never produce. 320 MB leaves
// some 280 MB free when production starts.
const diskFullSize = "320m"

var ledgerDevice = FaultDevice{"ledger", "ledger disk", []string{"ledger"}}

// diskFull fills the ledger's filesystem while the line produces: the
// ledger is on a tmpfs the campaign mounts (it needs root; without it the
// try is not made and says why), a ballast file takes every free byte,
// and the line must hold naming the ledger (or, if the controller dies
// of it, come back as after a crash) and recover once the ballast is
// gone; the batch's end is checked like every other. The answer: the try
// (nil if it could not be made, with the reason) and the units run.
func diskFull(ctx context.Context, env Env, o FaultOptions) (*faultTry, string, int) {
	dir := filepath.Join(env.Dir, "fault-disk")
	disk := filepath.Join(dir, "disk")
	if err := os.MkdirAll(disk, 0o755); err != nil {
		return nil, err.Error(), 0
	}
	if out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "-o", "size="+diskFullSize, "tmpfs", disk).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("not made: mounting a %s tmpfs for the ledger failed (needs root): %v %s", diskFullSize, err, strings.TrimSpace(string(out))), 0
	}
	defer exec.Command("umount", "-l", disk).Run()
	units := 3*(o.PerTrial+40) + 20
	t := &faultTry{dev: ledgerDevice, kind: FaultKind{Name: "full", Title: "full"}}
	l, err := lineproc.Start(ctx, lineproc.Options{Name: "fault-disk", Units: units, Rate: o.Rate, Seed: o.Seed + 99,
		Dir: dir, Data: filepath.Join(disk, "ledger"), Bins: env.Bins, Config: env.Config, Logf: env.Logf})
	if err != nil {
		t.problems = append(t.problems, "starting the line: "+err.Error())
		return t, "", units
	}
	defer l.Close()
	unholds := 0
	if err := l.ResetStart(ctx); err != nil {
		t.problems = append(t.problems, err.Error())
		return t, "", units
	}
	start, _ := l.State(ctx)
	at := start.Counters.Triggered + uint64(o.PerTrial)
	if _, err := tend(ctx, l, "production before the disk fills", &unholds, func(s line.Snapshot) bool {
		return s.State == "Execute" && s.Counters.Triggered >= at
	}); err != nil {
		t.problems = append(t.problems, err.Error())
		return t, "", units
	}
	// The disk fills.
	ballast := filepath.Join(disk, "ballast")
	filled, err := fill(ballast)
	if err != nil {
		t.problems = append(t.problems, "filling the disk: "+err.Error())
		return t, "", units
	}
	env.logf("disk full: ballast of %d MiB", filled>>20)
	l.CtlDown = true // it may die of it
	hctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	var held line.Snapshot
	died := false
	werr := l.WaitFor(hctx, "a hold naming the ledger", func() (bool, string) {
		if l.Ctl.Exited() {
			died = true
			return true, ""
		}
		s, err := l.State(hctx)
		if err != nil {
			return false, err.Error()
		}
		held = s
		return s.State != "Execute" && names(s, ledgerDevice) != "", lineproc.Describe(s)
	})
	cancel()
	switch {
	case died:
		t.alarm = "the controller exited: " + fmt.Sprint(l.Ctl.Err()) + exitCause(l.Ctl.Log())
		t.problems = append(t.problems, "the controller exited on a full disk instead of holding the line: "+t.alarm)
	case werr != nil:
		t.problems = append(t.problems, "the line did not hold with an alarm naming the ledger within 8 s: "+lineproc.Describe(held))
	default:
		t.alarm = names(held, ledgerDevice) + ": " + held.Faults[names(held, ledgerDevice)]
		if s, err := l.WaitLine(ctx, "no unit in flight", func(s line.Snapshot) bool { return s.InFlight == 0 }); err != nil {
			t.problems = append(t.problems, "units still in flight after the hold: "+lineproc.Describe(s))
		}
	}
	sleep(ctx, o.Hold)
	// Space returns.
	if err := os.Remove(ballast); err != nil {
		t.problems = append(t.problems, "removing the ballast: "+err.Error())
	}
	if died {
		if _, err := l.RecoverAfterCrash(ctx); err != nil {
			t.problems = append(t.problems, "recovery after the exit: "+err.Error())
			return t, "", units
		}
		t.recovery = []string{"restart", "purge", "clear", "reset", "start"}
	} else {
		l.CtlDown = false
		did, err := operatorRecover(ctx, l, ledgerDevice, &unholds)
		t.recovery = did
		if err != nil {
			t.problems = append(t.problems, "recovery: "+err.Error())
			if err := lastResort(ctx, l); err != nil {
				t.problems = append(t.problems, "stop, reset, start: "+err.Error())
				return t, "", units
			}
			t.recovery = append(t.recovery, "(alarm stuck) stop", "reset", "start")
		}
	}
	f, err := finishTended(ctx, l, &unholds)
	if err != nil {
		t.problems = append(t.problems, "finishing the batch: "+err.Error())
		return t, "", units
	}
	if f.VerifyErr != nil {
		t.problems = append(t.problems, fmt.Sprintf("%v: %s", f.VerifyErr, lastLine(f.Verify)))
	}
	store, err := l.OpenLedger()
	if err != nil {
		t.problems = append(t.problems, "opening the ledger: "+err.Error())
		return t, "", units
	}
	defer store.Close()
	_, p := lineproc.CheckLedger(ctx, store, l.Batch, f.Truth)
	t.problems = append(t.problems, p...)
	return t, "", units
}

// fill writes path until the filesystem is full; the bytes written.
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// exitCause is what a dead controller's log says killed it: its fatal
// error or panic line, and the first frame outside the runtime.
func exitCause(log string) string {
	var cause []string
	lines := strings.Split(log, "\n")
	for i, ln := range lines {
		if strings.HasPrefix(ln, "fatal error:") || strings.HasPrefix(ln, "panic:") || strings.HasPrefix(ln, "[signal ") {
			cause = append(cause, strings.TrimSpace(ln))
		}
		if len(cause) > 0 && strings.HasPrefix(ln, "github.com/") && i+1 < len(lines) {
			cause = append(cause, "in "+strings.TrimSpace(ln))
			break
		}
	}
	if len(cause) == 0 {
		return ""
	}
	return ": " + strings.Join(cause, " ")
}
