package release

import (
	"context"
	"errors"
	"fmt"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// RuleStatus is a release rule's outcome.
type RuleStatus string

const (
	RuleOK      RuleStatus = "ok"
	RuleBlocked RuleStatus = "blocked"
)

// Rule is one release rule checked on the record: ok, or blocked with what
// blocks it (at most MaxItems items named, More counts the rest).
type Rule struct {
	ID     string     `json:"id"` // complete, reconciled, challenge, alarms, verify
	Title  string     `json:"title"`
	Status RuleStatus `json:"status"`
	Detail string     `json:"detail"`
	Items  []string   `json:"items,omitempty"`
	More   int        `json:"more,omitempty"`
}

// MaxItems caps the codes or events a blocked rule names.
const MaxItems = 10

// Rule ids, in the order they are shown.
const (
	RuleComplete   = "complete"
	RuleReconciled = "reconciled"
	RuleChallenge  = "challenge"
	RuleAlarms     = "alarms"
	RuleVerify     = "verify"
)

func (r *Rule) add(s string) {
	if len(r.Items) < MaxItems {
		r.Items = append(r.Items, s)
	} else {
		r.More++
	}
}

func (r *Rule) block(format string, a ...any) {
	r.Status = RuleBlocked
	if r.Detail != "" {
		r.Detail += "; "
	}
	r.Detail += fmt.Sprintf(format, a...)
}

var errEnough = errors.New("enough")

// rules checks the release rules on a built record.
func rules(ctx context.Context, l Reader, sum aggregation.BatchSummary, rec *Record) []Rule {
	out := []Rule{
		ruleComplete(sum),
		ruleReconciled(ctx, l, sum),
		ruleChallenge(sum),
		ruleAlarms(rec),
		{ID: RuleVerify, Title: "verify passes for the batch", Status: RuleOK, Detail: rec.Chain.Text},
	}
	if !rec.Chain.Verified {
		out[4].Status = RuleBlocked
	}
	return out
}

func ruleComplete(sum aggregation.BatchSummary) Rule {
	r := Rule{ID: RuleComplete, Title: "batch complete", Status: RuleOK}
	switch sum.State {
	case aggregation.BatchComplete:
		r.Detail = "the line completed the batch"
	case aggregation.BatchOpen:
		r.block("the batch is open: the line has not completed it")
	default:
		r.Detail = "the batch is " + sum.State.String()
	}
	return r
}

func ruleReconciled(ctx context.Context, l Reader, sum aggregation.BatchSummary) Rule {
	r := Rule{ID: RuleReconciled, Title: "reconciled: conservation per level, nothing loose below the top level, every uncertain code voided", Status: RuleOK}
	problems := sum.ReleaseProblems()
	if len(problems) == 0 {
		r.Detail = fmt.Sprintf("%d levels balance", len(sum.Levels))
		return r
	}
	r.block("%d problems", len(problems))
	for _, p := range problems {
		r.add(p)
	}
	// Name the codes behind the counts: loose below the top, in flight.
	name := func(level tracecode.Level, st aggregation.CodeState, n int64, what string) {
		if n <= 0 {
			return
		}
		var cs []string
		err := l.Codes(ctx, sum.Batch, level, st, func(c tracecode.Code) error {
			if len(cs) == MaxItems {
				return errEnough
			}
			cs = append(cs, string(c))
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			r.add(fmt.Sprintf("%s %s codes: %v", level, what, err))
			return
		}
		for _, c := range cs {
			r.add(fmt.Sprintf("%s %s: %s", level, what, c))
		}
		if extra := n - int64(len(cs)); extra > 0 {
			r.More += int(extra)
		}
	}
	for i, lv := range sum.Levels {
		if i < len(sum.Levels)-1 {
			name(lv.Level, aggregation.StateCommissioned, lv.Loose, "loose")
		}
		if lv.InFlight > 0 {
			name(lv.Level, aggregation.StateSent, lv.States[aggregation.StateSent.String()], "uncertain (sent, not voided)")
			name(lv.Level, aggregation.StatePrinted, lv.States[aggregation.StatePrinted.String()], "uncertain (printed, not voided)")
		}
	}
	return r
}

func ruleChallenge(sum aggregation.BatchSummary) Rule {
	r := Rule{ID: RuleChallenge, Title: "challenge test passed", Status: RuleOK}
	c := sum.Challenge
	switch {
	case c == nil:
		r.block("no challenge test recorded for the batch")
	case !c.Passed:
		r.block("the last challenge test failed")
		for _, st := range c.Steps {
			if !st.OK {
				r.add(fmt.Sprintf("step %q (item %d): expected %s, got %s", st.Step, st.Item, st.Expect, st.Got))
			}
		}
	default:
		r.Detail = fmt.Sprintf("the last challenge test passed (%d steps)", len(c.Steps))
	}
	return r
}

func ruleAlarms(rec *Record) Rule {
	r := Rule{ID: RuleAlarms, Title: "every alarm and exception acknowledged", Status: RuleOK}
	n := 0
	for _, a := range rec.Alarms {
		if a.AckSeq == 0 {
			n++
			r.add(fmt.Sprintf("alarm (event %d, %s) %s: %s", a.Seq, a.At, a.Source, a.Text))
		}
	}
	if n > 0 {
		r.block("%d of %d alarms not acknowledged", n, len(rec.Alarms))
	} else {
		r.Detail = fmt.Sprintf("%d alarms, all acknowledged", len(rec.Alarms))
	}
	return r
}
