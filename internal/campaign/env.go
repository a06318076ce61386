package campaign

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"

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

// tend waits until cond holds, acting as the operator on what the line
// asks of one: a failed challenge test (a random fault on the test unit)
// is repeated with unhold, a line held by a device fault that has
// cleared since (a link that dropped for a moment under load) is unheld,
// and labels out of step with the groups (the labeller's fault, after a
// label printer outage) are purged and acknowledged. unholds counts them.
func tend(ctx context.Context, l *lineproc.Line, what string, unholds *int, cond func(line.Snapshot) bool) (line.Snapshot, error) {
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
		if s.State == "Held" && len(s.Faults) == 1 && s.Faults["labeller"] != "" {
			// Labels out of step with the groups (after a label printer
			// outage): the operator purges the labeller and acknowledges.
			if _, err := l.SimPost(ctx, "/purge", ""); err != nil {
				return false, err.Error()
			}
			if _, err := l.Command(ctx, "acknowledge"); err != nil {
				return false, err.Error()
			}
			*unholds++
			return false, "labeller purged and acknowledged"
		}
		if s.State == "Held" && (len(s.Challenge) > 0 && !s.ChallengeOK || len(s.Faults) == 0) {
			if _, err := l.Command(ctx, "unhold"); err != nil {
				return false, err.Error()
			}
			*unholds++
		}
		return false, lineproc.Describe(s)
	})
	return last, err
}

// firstLines is at most n problems, and how many more there were.
func firstLines(problems []string, n int) string {
	if len(problems) <= n {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; … %d more", strings.Join(problems[:n], "; "), len(problems)-n)
}
