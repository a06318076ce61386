package campaign

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/internal/campaign/lineproc"
	"github.com/tracline/tracline/internal/killpoint"
	"github.com/tracline/tracline/line"
)

// CrashOptions is one crash campaign.
type CrashOptions struct {
	Units int     // the batch (default 3000)
	Rate  float64 // units per minute (default 1200)
	Kills int     // SIGKILLs (default 25)
	Seed  uint64  // kill moments and the simulator's faults (0: from the clock)
	// ReceiverDown is how long the hand-off receivers are down after the
	// release (0: not taken down; the command's default is 30 s, the
	// issue's figure an hour).
	ReceiverDown time.Duration
	// Command is how the campaign was asked for, for the report (the seed
	// is added).
	Command string
}

// A kill's kind: a random moment (SIGKILL from outside) or one of the
// narrow windows (the controller's own kill point, internal/killpoint).
const killRandom = "random"

// crashWindows are the crash campaign's rows, in the report's order.
var crashWindows = []struct{ kind, what string }{
	{killRandom, "SIGKILL at a random moment (uniform over the batch)"},
	{killpoint.JournalPLC, "SIGKILL between journal and PLC write (a pass journaled, not yet sent)"},
	{killpoint.PackLabel, "SIGKILL between pack and label (a parent packed, its label not printed)"},
	{killpoint.LabelJournal, "SIGKILL between label print and its journal (label printed, not journaled)"},
}

// CrashFaults are the crash campaign's unit faults on the simulated line:
// every unit fault at a realistic rate (demo.DefaultFaults' rates), from
// the second unit on — the first is the challenge test's pass unit.
func CrashFaults() []sim.Fault {
	return []sim.Fault{
		{Kind: sim.FaultNoRead, Rate: 0.01, After: 1},
		{Kind: sim.FaultLowGrade, Rate: 0.005, After: 1},
		{Kind: sim.FaultSkipPrint, Rate: 0.003, After: 1},
		{Kind: sim.FaultDuplicate, Rate: 0.002, After: 1},
		{Kind: sim.FaultMissing, Rate: 0.002, After: 1},
		{Kind: sim.FaultCameraLost, Rate: 0.002, After: 1},
	}
}

type plannedKill struct {
	at   uint64 // the PLC's item count at (or after) which to kill
	kind string
}

// planKills spreads k kills uniformly over the batch (one in each of k
// equal slices of its 3 %…93 %, at a random point of the slice) and gives
// each a kind: about half random moments, the rest shared by the windows,
// shuffled over the slices.
func planKills(rng *rand.Rand, units, k int) []plannedKill {
	kinds := make([]string, 0, k)
	nWin := len(crashWindows) - 1
	perWin := k / 2 / nWin
	if perWin == 0 && k > 1 {
		perWin = 1
	}
	for _, w := range crashWindows[1:] {
		for range perWin {
			if len(kinds) < k {
				kinds = append(kinds, w.kind)
			}
		}
	}
	for len(kinds) < k {
		kinds = append(kinds, killRandom)
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	plan := make([]plannedKill, k)
	// The last kill leaves at least 40 units: the batch's triggered count
	// catches up with the units that passed while the controller was down
	// only when a unit triggers after the restart (see the crash
	// campaign's note in docs/linectl.md).
	lo, hi := 0.03*float64(units), min(0.93*float64(units), float64(units-40))
	span := hi - lo
	for i := range plan {
		f := (float64(i) + rng.Float64()) / float64(k)
		plan[i] = plannedKill{at: uint64(lo + f*span), kind: kinds[i]}
	}
	return plan
}

// armFor is the environment that makes the next controller kill itself
// near the planned kill, counting from the PLC's item count now: a pass
// per unit, a parent (and its label) per group of 10.
func armFor(k plannedKill, now uint64) []string {
	if k.kind == killRandom {
		return nil
	}
	ahead := 1
	if k.at > now {
		ahead = int(k.at - now)
	}
	n := ahead
	if k.kind != killpoint.JournalPLC {
		n = max(1, ahead/10)
	}
	return []string{killpoint.Env + "=" + killpoint.Spec(k.kind, n)}
}

// killTry is what one kill did.
type killTry struct {
	kill     plannedKill
	made     bool   // the controller died at the moment planned
	plcAt    uint32 // the PLC's item count once the infeed had stopped
	problems []string
}

// Crash runs the crash campaign: one batch on a separately started
// linesim with the unit faults of CrashFaults, the controller SIGKILLed
// Kills times (random moments, and its own kill points inside the narrow
// windows), each time recovered as an operator would through the API
// (watchdog stop, restart, purge, clear, reset, start). After each kill
// `linectl verify` runs on the ledger the crash left; at the end the batch
// is completed and verify, the ledger against linesim's ground truth unit
// by unit, no code sent twice and every acknowledged pass present are
// checked. A kill survived when its own checks and the end's all held.
func Crash(ctx context.Context, env Env, o CrashOptions) (Result, error) {
	if o.Units == 0 {
		o.Units = 3000
	}
	if o.Rate == 0 {
		o.Rate = 1200
	}
	if o.Kills == 0 {
		o.Kills = 25
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Units < 20*o.Kills {
		return Result{}, fmt.Errorf("crash campaign: %d units for %d kills: give at least 20 units a kill", o.Units, o.Kills)
	}
	res := Result{Campaign: "crash", Title: "SIGKILL under load, recovered through the API", Command: fmt.Sprintf("%s --seed %d", o.Command, o.Seed),
		Build: BuildInfo(), Host: HostInfo(), Started: time.Now().UTC()}
	rng := rand.New(rand.NewPCG(o.Seed, 13))
	plan := planKills(rng, o.Units, o.Kills)
	env.logf("crash campaign: seed %d, %d units at %.0f/min, %d kills", o.Seed, o.Units, o.Rate, o.Kills)

	ho := HandoffOptions{ReceiverDown: o.ReceiverDown, clock: &receiverClock{}}
	rx, err := lineproc.StartReceivers(receiver.Config{Behaviour: receiver.Slow, ProcessFor: receiverProcessing, Clock: ho.clock})
	if err != nil {
		return res, fmt.Errorf("the hand-off receivers: %w", err)
	}
	defer rx.Close()
	l, err := lineproc.Start(ctx, lineproc.Options{Name: "crash", Units: o.Units, Rate: o.Rate, Seed: 1 + rng.Uint64N(1<<20),
		Faults: CrashFaults(), Dir: filepath.Join(env.Dir, "crash"), Bins: env.Bins, Config: env.Config, Logf: env.Logf,
		CtlEnv: armFor(plan[0], 0), Handoff: rx.Endpoints()})
	if err != nil {
		return res, err
	}
	defer l.Close()

	// The operator's rework before `complete`: the loose units of groups
	// a kill left unlabelled are taken out of circulation (rework.go).
	desk := &qaDesk{l: l}
	var off takenOff
	l.BeforeComplete = func(ctx context.Context) error {
		gt, err := l.GroundTruth(ctx)
		if err != nil {
			return err
		}
		off, err = reworkOrphans(ctx, env, desk, gt)
		return err
	}
	op := &operator{lastResort: true}
	var tries []killTry
	var abort string
	if err := l.ResetStart(ctx); err != nil {
		abort = "starting the line: " + err.Error()
		plan = nil
	}
	for i, k := range plan {
		t := killTry{kill: k}
		before, err := crashOnce(ctx, l, k, op)
		if err != nil {
			t.problems = append(t.problems, err.Error())
		} else {
			t.made = true
		}
		env.logf("kill %d/%d (%s, planned at item %d): at triggered %d, passed %d, packed %d; made %t",
			i+1, len(plan), k.kind, k.at, before.Counters.Triggered, before.Counters.Passed, lineproc.PackedTotal(before), t.made)
		if !l.Ctl.Exited() {
			// A kill point not reached (the batch moved on differently than
			// planned): not a kill of its window; kill from outside so the
			// campaign goes on, and say so.
			l.KillController()
		}
		if out, err := l.Verify(ctx); err != nil {
			t.problems = append(t.problems, fmt.Sprintf("verify on the ledger the crash left: %v: %s", err, lastLine(out)))
		}
		var next []string
		if st, err := l.PLC(ctx); err == nil {
			t.plcAt = st.ItemCounter
			if i+1 < len(plan) {
				next = armFor(plan[i+1], uint64(st.ItemCounter))
			}
		}
		if _, err := l.RecoverAfterCrash(ctx, next...); err != nil {
			t.problems = append(t.problems, "recovery: "+err.Error())
			tries = append(tries, t)
			abort = fmt.Sprintf("kill %d: the operator's recovery failed: %v", i+1, err)
			break
		}
		tries = append(tries, t)
	}
	var endProblems []string
	var gt sim.GroundTruth
	var final line.Snapshot
	if abort == "" {
		if _, err := op.tend(ctx, l, "the batch's last units", func(s line.Snapshot) bool { return s.State == "Execute" }); err != nil {
			abort = err.Error()
		}
	}
	if abort == "" {
		var f lineproc.Finished
		f, err = op.finish(ctx, l)
		if err != nil {
			abort = "finishing the batch: " + err.Error()
		} else {
			gt, final = f.Truth, f.Final
			if f.VerifyErr != nil {
				endProblems = append(endProblems, fmt.Sprintf("%v: %s", f.VerifyErr, f.Verify))
			}
			store, err := l.OpenLedger()
			if err != nil {
				endProblems = append(endProblems, "opening the ledger: "+err.Error())
			} else {
				_, p := lineproc.CheckLedgerReworked(ctx, store, l.Batch, gt, off)
				store.Close()
				endProblems = append(endProblems, p...)
			}
			if final.Counters.Triggered != uint64(o.Units) {
				endProblems = append(endProblems, fmt.Sprintf("the batch's triggered count at the end is %d, the PLC counted %d units", final.Counters.Triggered, o.Units))
			}
		}
	}
	if abort != "" {
		res.Failures = append(res.Failures, "campaign stopped: "+abort)
		endProblems = append(endProblems, "the batch was not finished, so the ledger could not be checked against the ground truth")
	}
	res.Failures = append(res.Failures, pointToKills(endProblems, tries)...)

	// The completed batch: QA's release and the hand-off, with their kills.
	var hr handoffRun
	if abort == "" {
		env.logf("crash campaign: the batch's release and hand-off")
		hr = runHandoff(ctx, env, l, desk, rx, rng, ho)
	} else {
		hr.end = []string{"not run: the batch was not finished"}
	}
	for _, p := range hr.end {
		res.Failures = append(res.Failures, "hand-off: "+p)
	}

	// Rows: one per window; a try is a kill made in that window.
	checks := "the kill landed in its window; `linectl verify` on the ledger the crash left; restart comes up Stopped with a purge required and refuses reset; operator recovery through the API; at the batch's end: `linectl verify`, ledger = ground truth unit by unit, batch balances, no code sent twice, every acknowledged pass present"
	for _, w := range crashWindows {
		row := Row{What: w.what, Checks: checks}
		missed := 0
		for i, t := range tries {
			if t.kill.kind != w.kind {
				continue
			}
			if !t.made {
				missed++
				res.Failures = append(res.Failures, fmt.Sprintf("kill %d (%s): %s", i+1, w.kind, strings.Join(t.problems, "; ")))
				continue
			}
			row.Tries++
			if len(t.problems) == 0 && len(endProblems) == 0 {
				row.Survived++
			} else {
				row.Failed++
				if len(t.problems) > 0 {
					res.Failures = append(res.Failures, fmt.Sprintf("kill %d (%s): %s", i+1, w.kind, strings.Join(t.problems, "; ")))
				}
			}
		}
		if missed > 0 {
			row.Notes = fmt.Sprintf("%d planned kill(s) did not land in the window (counted as failures above, not as tries)", missed)
		}
		res.Rows = append(res.Rows, row)
	}
	res.Rows = append(res.Rows, handoffRows(&res, hr, o.ReceiverDown)...)

	made := 0
	for _, t := range tries {
		if t.made {
			made++
		}
	}
	hmade := 0
	for _, t := range hr.tries {
		if t.made {
			hmade++
		}
	}
	res.Figures = []Figure{
		{"batch", fmt.Sprintf("%d units at %.0f/min, ratio 10, unit faults %s", o.Units, o.Rate, faultNames(CrashFaults()))},
		{"kills", fmt.Sprintf("%d planned in production, %d made; %d planned in the release and hand-off, %d made; over %d controller processes", len(plan), made, len(hr.tries), hmade, l.CtlRuns)},
		{"exactly-once rule checked", exactlyOnceRule},
		{"seed", fmt.Sprint(o.Seed)},
		{"unholds by the operator (a challenge test failed by a random fault on its test unit, or a hold on a device fault that cleared by itself; the labeller purged and acknowledged)", fmt.Sprint(op.unholds)},
		{"last resorts by the operator (the line held 30 s by a device fault that did not clear while production was due — a loaded machine's timeouts —: stop, reset, start)", fmt.Sprint(op.lastResorts)},
		{"rework before `complete` (units of groups a kill left unlabelled, sent to rework at the purge: the operator decommissions them; checked decommissioned, not counted as good)", fmt.Sprintf("%d units", len(off))},
	}
	if gt.Finished {
		res.Figures = append(res.Figures,
			Figure{"ground truth", fmt.Sprintf("%d triggered, %d good, %d rejected (%d with no verdict: controller down), %d missing", gt.Summary.Triggered, gt.Summary.Good, gt.Summary.Rejected, gt.Summary.NoVerdict, gt.Summary.Missing)},
			Figure{"ledger", fmt.Sprintf("passed %d, rejected %d, packed parents %v, partial %v, voided %d", final.Counters.Passed, final.Counters.Rejected, final.Counters.Packed, final.Counters.Partial, final.Counters.Voided)})
	}
	res.Figures = append(res.Figures, hr.figures...)
	res.Elapsed = time.Since(res.Started).Seconds()
	return res, nil
}

// crashOnce kills the running controller as planned: from outside once
// the PLC's item count reaches k.at (random), or by its own kill point
// (armed at its start). It returns the last snapshot before the kill.
func crashOnce(ctx context.Context, l *lineproc.Line, k plannedKill, op *operator) (line.Snapshot, error) {
	if k.kind == killRandom {
		before, err := op.tend(ctx, l, fmt.Sprintf("item %d", k.at), func(s line.Snapshot) bool {
			return s.State == "Execute" && s.Counters.Triggered >= k.at
		})
		if err != nil {
			return before, err
		}
		l.KillController()
		return before, nil
	}
	// The controller kills itself; it may exit at any poll.
	l.CtlDown = true
	var before line.Snapshot
	notReached := false
	err := l.WaitFor(ctx, "the kill point "+k.kind, func() (bool, string) {
		if l.Ctl.Exited() {
			return true, ""
		}
		s, err := l.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		before = s
		if did := op.attend(ctx, l, s); did != "" {
			return false, did
		}
		if gt, err := l.GroundTruth(ctx); err == nil && gt.Finished {
			notReached = true
			return true, ""
		}
		return false, lineproc.Describe(s)
	})
	if err != nil {
		return before, err
	}
	if notReached {
		return before, fmt.Errorf("the kill point %s was not reached before the batch's last unit", k.kind)
	}
	if !l.Ctl.Killed() || !strings.Contains(l.Ctl.Log(), "killpoint: SIGKILL at "+k.kind) {
		return before, fmt.Errorf("the controller exited (%v) but not at its kill point %s", l.Ctl.Err(), k.kind)
	}
	return before, nil
}

func faultNames(fs []sim.Fault) string {
	var n []string
	for _, f := range fs {
		n = append(n, fmt.Sprintf("%s %.1f%%", f.Kind, 100*f.Rate))
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

var unitRe = regexp.MustCompile(`\bunit (\d+)\b`)

// pointToKills adds to each end problem about a unit which kill
// interrupted that unit (the first kill after which the PLC's item count
// had reached it), so that a failure can be traced to its window. Every
// end problem still counts against every kill.
func pointToKills(problems []string, tries []killTry) []string {
	out := make([]string, 0, len(problems))
	for _, p := range problems {
		m := unitRe.FindStringSubmatch(p)
		if m == nil {
			out = append(out, p)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		note := " (after the last kill)"
		for i, t := range tries {
			if t.made && t.plcAt > 0 && int(t.plcAt) >= n {
				note = fmt.Sprintf(" (the unit was on the line at kill %d, %s)", i+1, t.kill.kind)
				break
			}
		}
		out = append(out, p+note)
	}
	return out
}
