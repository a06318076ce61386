package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tracline/tracline/internal/campaign/lineproc"
	"github.com/tracline/tracline/line"
)

// FaultDevice is a device of the fault campaign: its name on linesim's
// POST /link and the names the controller's alarms may give it.
type FaultDevice struct {
	Name    string   // linesim's
	Title   string   // the report's
	Aliases []string // an alarm names the device when its device key is one of these
}

// FaultDevices are every device of the simulated line. The aliases are
// prefixes of the controller's fault keys (plc, printer, camera,
// aggregation-camera-L2, labeller, label-scanner-L2), compared with '_'
// read as '-'.
var FaultDevices = []FaultDevice{
	{"plc", "PLC", []string{"plc"}},
	{"printer", "coding printer", []string{"printer"}},
	{"camera", "vision camera", []string{"camera"}},
	{"agg_camera", "aggregation camera (level 2)", []string{"aggregation-camera", "agg-camera"}},
	{"label_printer", "label printer (level 2)", []string{"label-printer", "labeller"}},
	{"label_scanner", "label scanner (level 2)", []string{"label-scanner", "scanner"}},
}

// FaultKind is a kind of link fault and its words in the report.
type FaultKind struct {
	Name  string // linesim's POST /link fault
	Title string
	Delay string // slow: how late every byte is
	Only  string // the one device it applies to ("": every one)
}

// FaultKinds are the link faults, most important first.
var FaultKinds = []FaultKind{
	{"cut", "disconnected", "", ""},
	{"stall", "frozen (link open, nothing through)", "", ""},
	{"garble", "answering garbage", "", ""},
	{"slow", "slowed (every byte 400 ms late)", "400ms", ""},
	// The PLC's program halts: its link answers, its heartbeat stops.
	{"freeze-heartbeat", "program halted (heartbeat frozen, link up)", "", "plc"},
}

// kindsFor are the kinds of ks that apply to device d.
func kindsFor(d FaultDevice, ks []FaultKind) []FaultKind {
	var out []FaultKind
	for _, k := range ks {
		if k.Only == "" || k.Only == d.Name {
			out = append(out, k)
		}
	}
	return out
}

// FaultOptions is one fault campaign.
type FaultOptions struct {
	Devices []string // linesim device names (default: every one)
	Kinds   []string // fault names (default: every one)
	Rate    float64  // default 1200
	Seed    uint64   // the simulator's (0: from the clock)
	// PerTrial is the units run before each fault (default 40).
	PerTrial int
	// Hold is how long the fault lasts once the line holds (default 5 s):
	// a device that drops out for a moment, not for good.
	Hold time.Duration
	// DiskFull adds the disk-full try (the ledger on a tmpfs the campaign
	// mounts: needs root).
	DiskFull bool
	Command  string // how it was asked for (the seed is added)
}

type faultTry struct {
	dev      FaultDevice
	kind     FaultKind
	problems []string
	alarm    string
	recovery []string // what the operator did
}

// Fault runs the fault campaign: for each device a line (linesim and
// linectl run as processes) runs a batch; each fault kind in turn is put
// on the device's link (linesim POST /link) while the line produces. Each
// try checks that the line holds with an alarm naming the device, that the
// units in flight are decided (rejected: none left in flight), and that
// once the link is restored the operator can bring the line back to
// production through the API. At the end of the device's batch `linectl
// verify` and the ledger against the ground truth unit by unit (counts
// included) are checked; a try survived when its own checks and its
// batch's held.
func Fault(ctx context.Context, env Env, o FaultOptions) (Result, error) {
	if o.Rate == 0 {
		o.Rate = 1200
	}
	if o.PerTrial == 0 {
		o.PerTrial = 40
	}
	if o.Hold == 0 {
		o.Hold = 5 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano() % 1e6)
	}
	devs, err := pick(FaultDevices, o.Devices, func(d FaultDevice) string { return d.Name })
	if err != nil {
		return Result{}, fmt.Errorf("fault campaign: device: %w", err)
	}
	kinds, err := pick(FaultKinds, o.Kinds, func(k FaultKind) string { return k.Name })
	if err != nil {
		return Result{}, fmt.Errorf("fault campaign: fault: %w", err)
	}
	res := Result{Campaign: "fault", Title: "device faults: the line holds naming the device, recovers, reconciles", Command: fmt.Sprintf("%s --seed %d", o.Command, o.Seed),
		Build: BuildInfo(), Host: HostInfo(), Started: time.Now().UTC()}
	var all []faultTry
	units, unholds := 0, 0
	for di, d := range devs {
		tries, endProblems, n := faultDevice(ctx, env, o, d, kindsFor(d, kinds), o.Seed+uint64(di), &unholds)
		units += n
		for i := range tries {
			tries[i].problems = append(tries[i].problems, endProblems...)
		}
		all = append(all, tries...)
	}
	checks := "the line holds with an alarm naming the device; no unit left in flight (all rejected); link restored → the device's alarm clears and the operator's commands through the API bring it back to Execute and producing; at the batch's end `linectl verify`, ledger = ground truth unit by unit, batch balances, L1 commissioned = good units"
	for _, d := range devs {
		for _, k := range kindsFor(d, kinds) {
			row := Row{What: d.Title + " " + k.Title, Checks: checks}
			for _, t := range all {
				if t.dev.Name != d.Name || t.kind.Name != k.Name {
					continue
				}
				row.Tries++
				if len(t.problems) == 0 {
					row.Survived++
				} else {
					row.Failed++
					res.Failures = append(res.Failures, fmt.Sprintf("%s: %s", row.What, firstLines(t.problems, 4)))
				}
				row.Notes = fmt.Sprintf("alarm %q; recovery: %s", t.alarm, strings.Join(t.recovery, ", "))
			}
			res.Rows = append(res.Rows, row)
		}
	}
	// What this campaign does not do yet: rows without tries, so that the
	// report says so.
	for _, k := range FaultKinds {
		if !containsKind(kinds, k.Name) {
			what := "every device " + k.Title
			if k.Only != "" {
				what = k.Only + " " + k.Title
			}
			res.Rows = append(res.Rows, Row{What: what, Notes: "not run in this campaign (--kinds)"})
		}
	}
	res.Rows = append(res.Rows,
		Row{What: "clock jump (wall clock steps forward/back)", Notes: "not a campaign try: stepping the host's clock would disturb every other process on it. The line decides on the monotonic clock: every event's stamp is the receiving process's time.Now() (with its monotonic reading), deadlines and device watchdogs compare those; wall time is only recorded. Covered by tests: line.TestWallClockStepDecidesNothing (the ledger's wall clock steps back 1 h, then forward 1 day, mid-batch: every good unit passes, none late, verify passes) and the drivers' stamps checked for a monotonic reading (plc/modbus TestItemsAndVerdict, camera/opcua and printer/opcua TestSlowLinkIsDown)"},
		Row{What: "hand-off receiver down for an hour", Notes: "not this campaign's: the crash campaign's receiver outage (--receiver-down; an hour of it: docs/reliability/receiver-down-1h)"})
	diskRow := Row{What: "disk full under the ledger (" + diskFullSize + " tmpfs, filled by a ballast file, then freed)", Checks: checks}
	if !o.DiskFull {
		diskRow.Notes = "not run in this campaign (--disk-full=false)"
	} else if t, why, n := diskFull(ctx, env, o); t == nil {
		diskRow.Notes = why
	} else {
		units += n
		diskRow.Tries = 1
		diskRow.Notes = fmt.Sprintf("alarm %q; recovery: %s", t.alarm, strings.Join(t.recovery, ", "))
		if len(t.problems) == 0 {
			diskRow.Survived = 1
		} else {
			diskRow.Failed = 1
			res.Failures = append(res.Failures, fmt.Sprintf("%s: %s", diskRow.What, firstLines(t.problems, 4)))
		}
	}
	res.Rows = append(res.Rows, diskRow)
	res.Figures = []Figure{
		{"lines", fmt.Sprintf("%d (one per device), %d units in all at %.0f/min, %d units of production before each fault", len(devs), units, o.Rate, o.PerTrial)},
		{"seed", fmt.Sprint(o.Seed)},
		{"fault duration once the line held", o.Hold.String()},
		{"unholds by the operator outside the tries (a challenge test failed by a random fault, or a hold on another device's fault that cleared by itself)", fmt.Sprint(unholds)},
	}
	res.Elapsed = time.Since(res.Started).Seconds()
	return res, nil
}

func containsKind(ks []FaultKind, name string) bool {
	for _, k := range ks {
		if k.Name == name {
			return true
		}
	}
	return false
}

// pick is the items named (all when names is empty, none for "none").
func pick[T any](all []T, names []string, name func(T) string) ([]T, error) {
	if len(names) == 0 {
		return all, nil
	}
	if len(names) == 1 && names[0] == "none" {
		return nil, nil
	}
	var out []T
	var known []string
	for _, x := range all {
		known = append(known, name(x))
	}
	for _, n := range names {
		found := false
		for _, x := range all {
			if name(x) == n {
				out = append(out, x)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%q is unknown (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// faultDevice runs one device's batch with every kind of fault in turn.
// The answer: each try, the problems of the batch's end (which count
// against every try), and the units run.
func faultDevice(ctx context.Context, env Env, o FaultOptions, d FaultDevice, kinds []FaultKind, seed uint64, unholds *int) ([]faultTry, []string, int) {
	// Each fault: PerTrial units of production, and up to 40 more that
	// trigger before the line has held (a fault is seen in 0.5–2 s).
	units := (o.PerTrial+40)*(len(kinds)+1) + 20
	for _, k := range kinds {
		if k.Delay != "" {
			units += 170 // a slow link may not hold the line (see faultOnce)
		}
	}
	env.logf("fault campaign: %s, %d fault kind(s), %d units", d.Name, len(kinds), units)
	l, err := lineproc.Start(ctx, lineproc.Options{Name: "fault-" + strings.ReplaceAll(d.Name, "_", ""), Units: units, Rate: o.Rate, Seed: seed,
		Dir: filepath.Join(env.Dir, "fault-"+d.Name), Bins: env.Bins, Config: env.Config, Logf: env.Logf})
	var tries []faultTry
	fail := func(p string) ([]faultTry, []string, int) {
		if len(tries) == 0 || len(tries) < len(kinds) {
			// The tries not reached fail with the batch.
			for _, k := range kinds[len(tries):] {
				tries = append(tries, faultTry{dev: d, kind: k, problems: []string{"not tried: " + p}})
			}
		}
		return tries, []string{p}, units
	}
	if err != nil {
		return fail("starting the line: " + err.Error())
	}
	defer l.Close()
	if err := l.ResetStart(ctx); err != nil {
		return fail("starting the batch: " + err.Error())
	}
	for _, k := range kinds {
		t := faultTry{dev: d, kind: k}
		t.problems, t.alarm, t.recovery = faultOnce(ctx, l, d, k, o.PerTrial, o.Hold, unholds)
		env.logf("fault %s %s: alarm %q, recovery %v, problems %v", d.Name, k.Name, t.alarm, t.recovery, t.problems)
		tries = append(tries, t)
		if len(t.problems) > 0 && l.Ctl.Exited() {
			return fail("the controller exited")
		}
	}
	f, err := finishTended(ctx, l, unholds)
	if err != nil {
		return tries, []string{"finishing the batch: " + err.Error()}, units
	}
	var end []string
	if f.VerifyErr != nil {
		end = append(end, fmt.Sprintf("%v: %s", f.VerifyErr, lastLine(f.Verify)))
	}
	store, err := l.OpenLedger()
	if err != nil {
		return tries, append(end, "opening the ledger: "+err.Error()), units
	}
	defer store.Close()
	_, p := lineproc.CheckLedger(ctx, store, l.Batch, f.Truth)
	end = append(end, p...)
	if f.Final.Counters.Triggered != uint64(units) {
		end = append(end, fmt.Sprintf("the batch's triggered count is %d, the PLC counted %d units", f.Final.Counters.Triggered, units))
	}
	return tries, end, units
}

// faultOnce: production for perTrial units, the fault, the hold, the
// restore, the operator's recovery. The problems found, the alarm, and
// the operator's commands.
func faultOnce(ctx context.Context, l *lineproc.Line, d FaultDevice, k FaultKind, perTrial int, hold time.Duration, unholds *int) (problems []string, alarm string, recovery []string) {
	start, err := l.State(ctx)
	if err != nil {
		return []string{err.Error()}, "", nil
	}
	at := start.Counters.Triggered + uint64(perTrial)
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = tend(pctx, l, fmt.Sprintf("production up to unit %d", at), unholds, func(s line.Snapshot) bool {
		return s.State == "Execute" && s.Counters.Triggered >= at
	})
	cancel()
	if err != nil {
		return []string{"before the fault: " + err.Error()}, "", nil
	}
	body, _ := json.Marshal(map[string]string{"device": d.Name, "fault": k.Name, "delay": k.Delay})
	if _, err := l.SimPost(ctx, "/link", string(body)); err != nil {
		return []string{err.Error()}, "", nil
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			b, _ := json.Marshal(map[string]string{"device": d.Name, "fault": "restore"})
			if _, err := l.SimPost(ctx, "/link", string(b)); err != nil {
				problems = append(problems, "restore: "+err.Error())
			}
		}
	}
	defer restore()

	// The line holds, naming the device.
	// (At most 8 s: 160 units at 1,200/min; the batch has room for one
	// such wait per slow fault.)
	hctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	held, err := l.WaitLine(hctx, "a hold naming "+d.Name, func(s line.Snapshot) bool {
		return (s.State == "Held" || s.State == "Holding" || s.State == "Stopped" || s.State == "Aborted") && names(s, d) != ""
	})
	cancel()
	if err != nil {
		problems = append(problems, fmt.Sprintf("the line did not hold with an alarm naming the %s within 8 s: %s", d.Title, lineproc.Describe(held)))
		if held.State == "" {
			return problems, "", nil
		}
		// The operator sees the rejects and holds the line.
		if held.State == "Execute" {
			if _, err := l.Command(ctx, "hold"); err == nil {
				recovery = append(recovery, "hold (by the operator)")
			}
		}
	} else {
		alarm = names(held, d) + ": " + held.Faults[names(held, d)]
		// Units in flight are decided (rejected) by the hold.
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if s, err := l.WaitLine(fctx, "no unit in flight", func(s line.Snapshot) bool { return s.InFlight == 0 }); err != nil {
			problems = append(problems, "units still in flight after the hold: "+lineproc.Describe(s))
		}
		cancel()
		// The device stays faulty a while (the line stays held: no unit
		// comes, nothing changes in the ledger).
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	restore()
	did, err := operatorRecover(ctx, l, d, unholds)
	recovery = append(recovery, did...)
	if err != nil {
		problems = append(problems, "recovery: "+err.Error())
		// The operator's last resort, so that the next fault can be tried:
		// stop, reset, start.
		if err := lastResort(ctx, l); err != nil {
			problems = append(problems, "stop, reset, start: "+err.Error())
			return problems, alarm, recovery
		}
		recovery = append(recovery, "(alarm stuck) stop", "reset", "start")
	}
	// Producing again.
	now, err := l.State(ctx)
	if err == nil {
		next := now.Counters.Triggered + 3
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = tend(pctx, l, "production after recovery", unholds, func(s line.Snapshot) bool {
			return s.State == "Execute" && s.Counters.Triggered >= next
		})
		cancel()
	}
	if err != nil {
		problems = append(problems, "no production after recovery: "+err.Error())
	}
	return problems, alarm, recovery
}

// names is the fault key naming d in the snapshot, or "".
func names(s line.Snapshot, d FaultDevice) string {
	keys := make([]string, 0, len(s.Faults))
	for k := range s.Faults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		norm := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		for _, a := range d.Aliases {
			if strings.HasPrefix(norm, a) {
				return k
			}
		}
	}
	return ""
}

// operatorRecover brings the line back to Execute the way an operator
// does, through the API, once the device is back: wait until the device's
// alarm clears, then whatever the state asks — purge and clear if a purge
// is required, acknowledge and unhold from Held, clear, reset and start
// from Stopped or Aborted. The answer is the commands given.
func operatorRecover(ctx context.Context, l *lineproc.Line, d FaultDevice, unholds *int) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A link's alarm clears by itself once the device answers again; the
	// labeller's (labels out of step, a label not printed) and the gate's
	// are the operator's to acknowledge.
	if s, err := l.WaitLine(rctx, "the "+d.Title+"'s alarm clears", func(s line.Snapshot) bool {
		k := names(s, d)
		return k == "" || k == "labeller" || k == "gate"
	}); err != nil {
		return nil, fmt.Errorf("the alarm did not clear once the device was back: %s", lineproc.Describe(s))
	}
	var did []string
	do := func(cmd string) {
		if code, _, err := l.TryCommand(rctx, cmd); err == nil && code == http.StatusOK {
			did = append(did, cmd)
		}
	}
	err := l.WaitFor(rctx, "Execute", func() (bool, string) {
		s, err := l.State(rctx)
		if err != nil {
			return false, err.Error()
		}
		switch {
		case s.State == "Execute":
			return true, ""
		case s.PurgeRequired:
			if _, err := l.SimPost(rctx, "/purge", ""); err == nil {
				did = append(did, "purge")
			}
			do("clear")
		case s.State == "Held" && s.Faults["labeller"] != "":
			if _, err := l.SimPost(rctx, "/purge", ""); err == nil {
				did = append(did, "purge")
			}
			do("acknowledge")
		case s.State == "Held" && len(s.Faults) > 0:
			do("acknowledge")
		case s.State == "Held":
			if len(s.Challenge) > 0 && !s.ChallengeOK {
				*unholds++
			}
			do("unhold")
		case s.State == "Stopped" || s.State == "Idle":
			do("reset")
			do("start")
		case s.State == "Aborted":
			do("clear")
		case s.State == "Complete":
			return false, "the batch completed"
		}
		return false, lineproc.Describe(s)
	})
	return did, err
}

// lastResort: stop, reset and start, whatever alarm stands.
func lastResort(ctx context.Context, l *lineproc.Line) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := l.Command(ctx, "stop"); err != nil {
		return err
	}
	if _, err := l.WaitLine(ctx, "Stopped", func(s line.Snapshot) bool { return s.State == "Stopped" }); err != nil {
		return err
	}
	return l.ResetStart(ctx)
}
