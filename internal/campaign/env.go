package campaign

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tracline/tracline/internal/campaign/lineproc"
	"github.com/tracline/tracline/line"
)

// Env is what a line campaign runs with: the two programs, the
// controller's config for a simulated line, a working directory (one
// subdirectory per line) and a progress log.
type Env struct {
	Bins   lineproc.Binaries
	Config lineproc.LineConfig
	Dir    string
	Logf   func(format string, args ...any) // nil: silent
}

func (e Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// BuildInfo is the build that runs a campaign: the module version and the
// VCS revision when the binary carries them.
func BuildInfo() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		// Not stamped (a build inside a git worktree, go run): ask git.
		if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			rev = strings.TrimSpace(string(out))
			if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return bi.Main.Version
	}
	return rev + dirty
}

// HostInfo is the machine in a few words.
func HostInfo() string {
	return fmt.Sprintf("%s/%s, %d CPU, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

// operator acts as the line's operator while a campaign waits on the
// line (tend): a failed challenge test (a random fault on the test unit)
// is repeated with unhold, a line held by a device fault that has cleared
// since (a link that dropped for a moment under load) is unheld, and
// labels out of step with the groups (the labeller's fault, after a label
// printer outage) are purged and acknowledged. The fault campaign's
// operator does only that (a hold that does not clear is what it
// measures); the crash campaign's (lastResort) also purges the labeller
// whatever else is faulted, and takes the last resort of docs/linectl.md
// for a hold whose device fault does not clear by itself (on a loaded
// machine a printer send that timed out): after 30 s, stop, reset, start.
type operator struct {
	lastResort           bool
	unholds, lastResorts int
	held                 string    // the faults of the hold being watched
	since                time.Time // since when
}

// tend waits until cond holds, attending the line meanwhile.
func (o *operator) tend(ctx context.Context, l *lineproc.Line, what string, cond func(line.Snapshot) bool) (line.Snapshot, error) {
	var last line.Snapshot
	err := l.WaitFor(ctx, what, func() (bool, string) {
		s, err := l.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		last = s
		if cond(s) {
			return true, ""
		}
		if did := o.attend(ctx, l, s); did != "" {
			return false, did
		}
		return false, lineproc.Describe(s)
	})
	return last, err
}

// attend does what the line in state s asks of the operator, if anything;
// what it did ("" nothing).
func (o *operator) attend(ctx context.Context, l *lineproc.Line, s line.Snapshot) string {
	if s.State != "Held" {
		o.held = ""
		return ""
	}
	if s.Faults["labeller"] != "" && (o.lastResort || len(s.Faults) == 1) {
		if _, err := l.SimPost(ctx, "/purge", ""); err != nil {
			return err.Error()
		}
		if _, err := l.Command(ctx, "acknowledge"); err != nil {
			return err.Error()
		}
		o.unholds++
		return "labeller purged and acknowledged"
	}
	if len(s.Challenge) > 0 && !s.ChallengeOK || len(s.Faults) == 0 {
		if _, err := l.Command(ctx, "unhold"); err != nil {
			return err.Error()
		}
		o.unholds++
		return "unheld"
	}
	if !o.lastResort {
		return ""
	}
	key := fmt.Sprint(s.Faults)
	if key != o.held {
		o.held, o.since = key, time.Now()
		return ""
	}
	if time.Since(o.since) < 30*time.Second {
		return ""
	}
	o.held = ""
	for _, c := range []string{"stop", "reset", "start"} {
		if c == "reset" {
			if _, err := l.WaitLine(ctx, "Stopped after stop", func(s line.Snapshot) bool { return s.State == "Stopped" }); err != nil {
				return err.Error()
			}
		}
		if _, err := l.Command(ctx, c); err != nil {
			return "last resort: " + err.Error()
		}
	}
	o.lastResorts++
	return "last resort: stop, reset, start"
}

// finish is lineproc's Finish with the operator at hand.
func (o *operator) finish(ctx context.Context, l *lineproc.Line) (lineproc.Finished, error) {
	if _, err := o.tend(ctx, l, "the batch's last unit", func(s line.Snapshot) bool {
		gt, err := l.GroundTruth(ctx)
		return err == nil && gt.Finished && s.State == "Execute"
	}); err != nil {
		return lineproc.Finished{}, err
	}
	return l.Finish(ctx)
}

// tend is operator.tend by the fault campaign's operator, counting its
// unholds in *unholds.
func tend(ctx context.Context, l *lineproc.Line, what string, unholds *int, cond func(line.Snapshot) bool) (line.Snapshot, error) {
	o := &operator{}
	defer func() { *unholds += o.unholds }()
	return o.tend(ctx, l, what, cond)
}

// finishTended is operator.finish by the fault campaign's operator.
func finishTended(ctx context.Context, l *lineproc.Line, unholds *int) (lineproc.Finished, error) {
	o := &operator{}
	defer func() { *unholds += o.unholds }()
	return o.finish(ctx, l)
}

// firstLines is at most n problems, and how many more there were.
func firstLines(problems []string, n int) string {
	if len(problems) <= n {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; … %d more", strings.Join(problems[:n], "; "), len(problems)-n)
}
