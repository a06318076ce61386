package badinput

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/tracline/tracline/internal/campaign"
)

// Config is one run of the campaign.
type Config struct {
	Options
	// Targets are fuzzed in turn, each with Options' budget (Targets()
	// plus what the command adds: the line config's loader).
	Targets []Target
	// Server, if set, is the HMI the negative requests go to, and whose
	// request bodies are fuzzed (after the negative requests: a fuzzed
	// body may change the ledger).
	Server *Server
	// Command is how to run the campaign again (the result says it).
	Command string
	// Only, if set, keeps the targets whose name contains one of these
	// (case-insensitive), e.g. "scan", "HMI request bodies".
	Only []string
	// Progress, if set, hears each target's and category's end.
	Progress func(string)
}

// Run runs the campaign and returns its result (campaign "input").
func Run(ctx context.Context, cfg Config) (campaign.Result, error) {
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 30 * time.Second
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string) {}
	}
	res := campaign.Result{Campaign: "input", Title: "bad input: parsers fuzzed, HTTP requests that must be refused",
		Command: cfg.Command, Started: time.Now().UTC()}
	targets := append([]Target(nil), cfg.Targets...)
	var cats []Category
	var headBefore, headAfter uint64
	var caused []string
	if cfg.Server != nil {
		var head [2]uint64
		var err error
		if cats, head, caused, err = Negative(ctx, *cfg.Server); err != nil {
			return res, err
		}
		headBefore, headAfter = head[0], head[1]
		for _, c := range cats {
			progress(fmt.Sprintf("%s: %d/%d held", c.Name, c.Survived, c.Tries))
		}
		if chosen("HMI request bodies", cfg.Only) {
			body, err := HTTPBodies(ctx, *cfg.Server)
			if err != nil {
				return res, err
			}
			targets = append(targets, body)
		}
		if chosen("HMI path parameters and query strings", cfg.Only) {
			params, err := HTTPParams(ctx, *cfg.Server)
			if err != nil {
				return res, err
			}
			targets = append(targets, params)
		}
	}
	total, panics := 0, 0
	for i, t := range targets {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if !chosen(t.Name, cfg.Only) {
			continue
		}
		// Each target has its own generator, from the run's seed and its
		// place: a target's inputs do not depend on how far the one
		// before it got in its budget.
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		st := Fuzz(ctx, t, cfg.Options, rng)
		total += st.Tries
		panics += st.Panics
		progress(fmt.Sprintf("%s: %d inputs, %d accepted, %d refused with a clear error, %d failed (%d panics) in %.1f s",
			st.Name, st.Tries, st.Accepted, st.Rejected, st.Failed(), st.Panics, st.Elapsed.Seconds()))
		res.Rows = append(res.Rows, fuzzRow(st))
		for _, f := range st.Failures {
			res.Failures = append(res.Failures, st.Name+": "+f)
		}
	}
	for _, c := range cats {
		res.Rows = append(res.Rows, categoryRow(c))
		for _, f := range c.Failures {
			res.Failures = append(res.Failures, c.Name+": "+f)
		}
	}
	res.Elapsed = time.Since(res.Started).Seconds()
	res.Figures = append(res.Figures,
		campaign.Figure{Name: "fuzzer seed", Value: fmt.Sprint(cfg.Seed)},
		campaign.Figure{Name: "budget per parser", Value: budgetText(cfg.Options)},
		campaign.Figure{Name: "inputs tried", Value: fmt.Sprint(total)},
		campaign.Figure{Name: "panics", Value: fmt.Sprint(panics)})
	if cfg.Server != nil {
		v := fmt.Sprintf("%d / %d", headBefore, headAfter)
		if headAfter != headBefore && len(caused) == 0 {
			v += " (the line's own events: alarms, device events; none by a user)"
		}
		res.Figures = append(res.Figures, campaign.Figure{Name: "ledger last seq before / after the refused requests", Value: v})
		if len(caused) > 0 {
			res.Failures = append(res.Failures, fmt.Sprintf("the ledger's last seq moved from %d to %d during the refused requests: %s", headBefore, headAfter, firstOf(caused, 5)))
		}
	}
	return res, nil
}

func budgetText(o Options) string {
	s := o.Budget.String()
	if o.Tries > 0 {
		s += fmt.Sprintf(" or %d inputs, whichever comes first", o.Tries)
	}
	return s
}

func fuzzRow(st Stats) campaign.Row {
	notes := []string{fmt.Sprintf("%d accepted, %d refused with a clear error", st.Accepted, st.Rejected)}
	if st.Unclear > 0 {
		notes = append(notes, fmt.Sprintf("%d refused with an unclear error", st.Unclear))
	}
	if st.Problems > 0 {
		notes = append(notes, fmt.Sprintf("%d broke a property", st.Problems))
	}
	if st.Panics > 0 {
		notes = append(notes, fmt.Sprintf("%d PANICS", st.Panics))
	}
	keys := make([]string, 0, len(st.Notes))
	for k := range st.Notes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		notes = append(notes, fmt.Sprintf("%d accepted under a known limit: %s", st.Notes[k], k))
	}
	if len(st.Errors) > 0 {
		notes = append(notes, "e.g. «"+clip(st.Errors[0], 120)+"»")
	}
	failed := st.Failed()
	return campaign.Row{What: st.Name, Tries: st.Tries, Survived: st.Tries - failed, Failed: failed,
		Checks: "no panic; a refusal is an error naming what was wrong; what is accepted is consistent (round trip, validation)",
		Notes:  strings.Join(notes, "; ")}
}

func categoryRow(c Category) campaign.Row {
	var notes []string
	keys := make([]string, 0, len(c.Codes))
	for k := range c.Codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var codes []string
	for _, k := range keys {
		codes = append(codes, fmt.Sprintf("%s ×%d", k, c.Codes[k]))
	}
	if len(codes) > 0 {
		notes = append(notes, "answered "+strings.Join(codes, ", "))
	}
	if c.Skipped != "" {
		notes = append(notes, "not tried: "+c.Skipped)
	}
	return campaign.Row{What: "HTTP: " + c.Name, Tries: c.Tries, Survived: c.Survived, Failed: c.Tries - c.Survived,
		Checks: "a 4xx with {code, message} (the category's own code); the ledger's last seq unchanged",
		Notes:  strings.Join(notes, "; ")}
}

func chosen(name string, only []string) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if o != "" && strings.Contains(strings.ToLower(name), strings.ToLower(o)) {
			return true
		}
	}
	return false
}

// firstOf is at most n of l, and how many more there were.
func firstOf(l []string, n int) string {
	if len(l) <= n {
		return strings.Join(l, "; ")
	}
	return fmt.Sprintf("%s; … %d more", strings.Join(l[:n], "; "), len(l)-n)
}
