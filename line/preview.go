package line

import (
	"context"
	"errors"
	"fmt"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// CodeChange is one code's change a rework would make.
type CodeChange struct {
	Code   tracecode.Code `json:"code"`
	From   string         `json:"from"`
	To     string         `json:"to"`
	Parent tracecode.Code `json:"parent,omitempty"` // the parent it leaves or joins
}

// ReworkPreview is what a rework would change, shown to the operator
// before it is confirmed. Refusal, if set, is why the line or the ledger
// would refuse it (the ledger has the last word when it is carried out).
type ReworkPreview struct {
	Kind    ReworkKind   `json:"kind"`
	Changes []CodeChange `json:"changes"`
	Labels  int          `json:"labels,omitempty"` // labels it would print
	Refusal string       `json:"refusal,omitempty"`
}

// PreviewRework says what a rework would change, changing nothing. The
// user is not needed to preview (it is when the rework is carried out).
func (l *Line) PreviewRework(ctx context.Context, op ReworkOp) (ReworkPreview, error) {
	op.User = "preview"
	if err := op.Validate(); err != nil {
		return ReworkPreview{}, err
	}
	p := ReworkPreview{Kind: op.Kind, Changes: []CodeChange{}}
	refuse := func(format string, args ...any) (ReworkPreview, error) {
		p.Refusal = fmt.Sprintf(format, args...)
		p.Changes = []CodeChange{}
		return p, nil
	}
	run := l.current()
	if kind, ok := l.completedRework(ctx, run, op); ok {
		// A loose code of a completed batch, not released yet.
		info, err := l.store.Lookup(ctx, op.Code)
		if err != nil {
			return ReworkPreview{}, err
		}
		if info.State != aggregation.StateCommissioned || info.Children > 0 {
			return refuse("%s is %s with %d children, not a loose commissioned code", op.Code, info.State, info.Children)
		}
		p.Changes = append(p.Changes, CodeChange{Code: op.Code, From: info.State.String(), To: kind.String()})
		return p, nil
	}
	if run == nil {
		return refuse("no batch is running on the line (a completed batch's loose codes can be decommissioned or sampled until its release)")
	}
	lookup := func(c tracecode.Code) (aggregation.CodeInfo, string) {
		info, err := l.store.Lookup(ctx, c)
		switch {
		case errors.Is(err, aggregation.ErrNotFound):
			return info, fmt.Sprintf("%s is not a code of this line's ledger", c)
		case err != nil:
			return info, err.Error()
		case info.Batch != run.spec.ID:
			return info, fmt.Sprintf("%s is of batch %q, not this line's batch %s", c, info.Batch, run.spec.ID)
		}
		return info, ""
	}
	info, why := lookup(op.Code)
	if why != "" {
		return refuse("%s", why)
	}
	loose := func(info aggregation.CodeInfo) string {
		switch {
		case info.State != aggregation.StateCommissioned:
			return fmt.Sprintf("%s is %s, not a loose commissioned code", info.Code, info.State)
		case info.Children > 0:
			return fmt.Sprintf("%s holds %d children: unpack it first", info.Code, info.Children)
		}
		return ""
	}
	switch op.Kind {
	case ReworkDecommission, ReworkSample:
		if why := loose(info); why != "" {
			return refuse("%s", why)
		}
		to := aggregation.StateDecommissioned
		if op.Kind == ReworkSample {
			to = aggregation.StateSampled
		}
		p.Changes = append(p.Changes, CodeChange{Code: op.Code, From: info.State.String(), To: to.String()})
	case ReworkUnpack:
		if info.Children == 0 {
			return refuse("%s holds no children", op.Code)
		}
		if err := l.store.Tree(ctx, op.Code, func(n aggregation.Node) error {
			if n.Parent == op.Code && n.Depth == 1 {
				p.Changes = append(p.Changes, CodeChange{Code: n.Code, From: aggregation.StateAggregated.String(), To: aggregation.StateCommissioned.String(), Parent: op.Code})
			}
			return nil
		}); err != nil {
			return ReworkPreview{}, err
		}
	case ReworkReplace:
		oldInfo, why := lookup(op.Old)
		if why != "" {
			return refuse("%s", why)
		}
		if oldInfo.Parent != op.Code {
			return refuse("%s is not in %s", op.Old, op.Code)
		}
		newInfo, why := lookup(op.New)
		if why != "" {
			return refuse("%s", why)
		}
		if why := loose(newInfo); why != "" {
			return refuse("%s", why)
		}
		if newInfo.Level != oldInfo.Level {
			return refuse("%s is of level %s, %s of level %s", op.New, newInfo.Level, op.Old, oldInfo.Level)
		}
		p.Changes = append(p.Changes,
			CodeChange{Code: op.Old, From: oldInfo.State.String(), To: aggregation.StateCommissioned.String(), Parent: op.Code},
			CodeChange{Code: op.New, From: newInfo.State.String(), To: aggregation.StateAggregated.String(), Parent: op.Code})
	case ReworkReprint:
		if run.r.dev.ReworkLabels == nil {
			return refuse("no rework label printer is configured")
		}
		if info.Level < 2 || info.Children == 0 {
			return refuse("%s is not a packed parent", op.Code)
		}
		p.Labels = 1
	}
	return p, nil
}
