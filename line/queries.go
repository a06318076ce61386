package line

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// Read-only questions QA and inspectors ask of the ledger, and the HMI's
// own records: screens ask the Line, never the ledger past it.

// BatchFilter selects batches for the batch list; empty fields match all.
type BatchFilter struct {
	Product string `json:"product,omitempty"` // the batch's product name or master-data key
	Line    string `json:"line,omitempty"`
	State   string `json:"state,omitempty"` // open, complete, released, …
	// From, To bound the production date (YYYY-MM-DD, inclusive).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Validate checks the filter's form.
func (f BatchFilter) Validate() error {
	var errs []error
	for _, d := range []struct{ field, v string }{{"from", f.From}, {"to", f.To}} {
		if d.v == "" {
			continue
		}
		if _, err := time.Parse("2006-01-02", d.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a date YYYY-MM-DD", d.field, d.v))
		}
	}
	if f.State != "" {
		var st aggregation.BatchState
		if err := st.UnmarshalText([]byte(f.State)); err != nil {
			errs = append(errs, fmt.Errorf("state: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Batches lists the ledger's batches that match f, by batch id.
func (l *Line) Batches(ctx context.Context, f BatchFilter) ([]aggregation.BatchSummary, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	ids, err := l.store.Batches(ctx)
	if err != nil {
		return nil, err
	}
	out := []aggregation.BatchSummary{}
	for _, id := range ids {
		s, err := l.store.Summary(ctx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case f.Product != "" && s.Product != f.Product && s.Order.Extra["product_key"] != f.Product:
		case f.Line != "" && s.Line != f.Line:
		case f.State != "" && s.State.String() != f.State:
		case f.From != "" && (s.Order.ProductionDate == "" || s.Order.ProductionDate < f.From):
		case f.To != "" && (s.Order.ProductionDate == "" || s.Order.ProductionDate > f.To):
		default:
			out = append(out, s)
		}
	}
	return out, nil
}

// BatchRecord is what QA reviews of one batch.
type BatchRecord struct {
	Summary aggregation.BatchSummary `json:"summary"`
	Spec    aggregation.BatchSpec    `json:"spec"`
	// Balance lists the conservation equations that do not hold (empty:
	// balanced); ReleaseProblems what stands in the way of a release.
	Balance         []string `json:"balance_problems"`
	ReleaseProblems []string `json:"release_problems"`
	// Trail is the batch's audit trail: its creation, its records
	// (commands, alarms, acknowledgements), every event by a user.
	Trail []aggregation.Event `json:"trail"`
}

// BatchRecord returns a batch's record (errors wrap aggregation.ErrNotFound
// for an unknown batch).
func (l *Line) BatchRecord(ctx context.Context, batch string) (BatchRecord, error) {
	sum, err := l.store.Summary(ctx, batch)
	if err != nil {
		return BatchRecord{}, err
	}
	spec, err := l.store.Spec(ctx, batch)
	if err != nil {
		return BatchRecord{}, err
	}
	rec := BatchRecord{Summary: sum, Spec: spec, Balance: sum.Check(), ReleaseProblems: sum.ReleaseProblems(), Trail: []aggregation.Event{}}
	if rec.Balance == nil {
		rec.Balance = []string{}
	}
	if rec.ReleaseProblems == nil {
		rec.ReleaseProblems = []string{}
	}
	err = l.store.Trail(ctx, batch, func(ev aggregation.Event) error {
		rec.Trail = append(rec.Trail, ev)
		return nil
	})
	return rec, err
}

// maxTreeNodes bounds the codes a lookup lists under a parent or a pallet.
const maxTreeNodes = 20000

// CodeView answers the recall question for one code: what it is, its full
// history, its parents up to the pallet, what is under it, and everything
// else on the same pallet.
type CodeView struct {
	Code      aggregation.CodeInfo `json:"code"`
	Ancestors []tracecode.Code     `json:"ancestors"` // parent first, the top last
	Children  []aggregation.Node   `json:"children"`  // the tree under it (not itself)
	// Top is the outermost parent (itself if in none); SameTop is the tree
	// under it: everything on the same pallet.
	Top       tracecode.Code     `json:"top"`
	SameTop   []aggregation.Node `json:"same_top"`
	Truncated bool               `json:"truncated,omitempty"` // a tree was longer than listed
}

// LookupCode looks up a scanned or typed code in any form tracecode.Parse
// knows (errors: the parser's, or wrapping aggregation.ErrNotFound).
func (l *Line) LookupCode(ctx context.Context, scan string) (CodeView, error) {
	p, err := tracecode.Parse(scan)
	if err != nil {
		return CodeView{}, fmt.Errorf("code %q: %w", scan, err)
	}
	info, err := l.store.Code(ctx, p.Code)
	if err != nil {
		return CodeView{}, fmt.Errorf("code %s: %w", p.Code, err)
	}
	v := CodeView{Code: info, Ancestors: []tracecode.Code{}, Children: []aggregation.Node{}, SameTop: []aggregation.Node{}, Top: p.Code}
	if info.Parent != "" {
		if v.Ancestors, err = l.store.Ancestors(ctx, p.Code); err != nil {
			return v, err
		}
		if len(v.Ancestors) > 0 {
			v.Top = v.Ancestors[len(v.Ancestors)-1]
		}
	}
	tree := func(root tracecode.Code, into *[]aggregation.Node) error {
		if info.Level < 2 && root == p.Code {
			return nil
		}
		return l.store.Tree(ctx, root, func(n aggregation.Node) error {
			if n.Depth == 0 {
				return nil
			}
			if len(*into) >= maxTreeNodes {
				v.Truncated = true
				return errStopWalk
			}
			*into = append(*into, n)
			return nil
		})
	}
	for _, t := range []struct {
		root tracecode.Code
		into *[]aggregation.Node
	}{{p.Code, &v.Children}, {v.Top, &v.SameTop}} {
		if err := tree(t.root, t.into); err != nil && !errors.Is(err, errStopWalk) {
			return v, err
		}
	}
	return v, nil
}

var errStopWalk = errors.New("stop")

// VerifyLedger checks the whole ledger: the hash chain of its journal and
// every invariant (the batch record's "chain status"). It reads every
// event: seconds on a large ledger.
func (l *Line) VerifyLedger(ctx context.Context) (aggregation.VerifyReport, error) {
	return l.store.Verify(ctx)
}

// Record journals one of the HMI's own records (a login, a failed login, a
// logout, an account change, a page an inspector opened) by user ("" for
// the system), in batch's trail if batch is set; v is encoded as JSON.
func (l *Line) Record(ctx context.Context, typ, batch string, v any, user string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record %s: %w", typ, err)
	}
	by := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "hmi"}
	if user != "" {
		by = aggregation.Actor{Kind: aggregation.ActorUser, ID: user}
	}
	return l.rec(ctx, typ, batch, string(b), by)
}

// Health is the controller's readiness: every device linked, the ledger
// answering.
type Health struct {
	Ready    bool     `json:"ready"`
	Problems []string `json:"problems"`
}

// Health reports readiness (for /readyz). The ledger is asked a read: it is
// not written to (that would journal every probe); a write that fails
// faults the line and shows there.
func (l *Line) Health(ctx context.Context) Health {
	h := Health{Problems: []string{}}
	if _, err := l.store.Batches(ctx); err != nil {
		h.Problems = append(h.Problems, "ledger: "+err.Error())
	}
	for _, d := range l.Snapshot().Devices {
		if d.Link == "down" {
			h.Problems = append(h.Problems, fmt.Sprintf("%s: down: %s", d.Name, d.Error))
		}
	}
	h.Ready = len(h.Problems) == 0
	return h
}

// LedgerStats reports the ledger's commit counters (for /metrics: commit
// latency is CommitTime / Groups).
func (l *Line) LedgerStats() aggregation.Stats { return l.store.Stats() }
