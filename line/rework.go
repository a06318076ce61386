package line

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// ReworkKind is a manual rework an operator does through the line's API.
type ReworkKind string

const (
	ReworkDecommission ReworkKind = "decommission" // take a loose unit out of circulation (damaged, …)
	ReworkSample       ReworkKind = "sample"       // QA takes a loose unit
	ReworkUnpack       ReworkKind = "unpack"       // empty a parent; its children become loose
	ReworkReplace      ReworkKind = "replace"      // swap a child in a parent for a loose unit
	ReworkReprint      ReworkKind = "reprint"      // print a parent's label again
)

// ReworkOp is one manual rework. Every rework is journaled with who and why.
type ReworkOp struct {
	Kind   ReworkKind     `json:"kind"`
	Code   tracecode.Code `json:"code,omitempty"` // the unit (decommission, sample) or the parent (unpack, reprint, replace)
	Old    tracecode.Code `json:"old,omitempty"`  // replace: the child taken out
	New    tracecode.Code `json:"new,omitempty"`  // replace: the loose unit put in
	Reason string         `json:"reason"`         // required
	User   string         `json:"user"`           // required: who
}

// ErrBadRework is wrapped by errors in a rework request itself (the
// request is malformed, nothing was tried).
var ErrBadRework = errors.New("bad rework request")

// Validate checks the request's form.
func (w ReworkOp) Validate() error {
	var missing []string
	if strings.TrimSpace(w.User) == "" {
		missing = append(missing, "user")
	}
	if strings.TrimSpace(w.Reason) == "" {
		missing = append(missing, "reason")
	}
	if w.Code == "" {
		missing = append(missing, "code")
	}
	switch w.Kind {
	case ReworkDecommission, ReworkSample, ReworkUnpack, ReworkReprint:
	case ReworkReplace:
		if w.Old == "" {
			missing = append(missing, "old")
		}
		if w.New == "" {
			missing = append(missing, "new")
		}
	default:
		return fmt.Errorf("%w: kind %q is not decommission, sample, unpack, replace or reprint", ErrBadRework, w.Kind)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: %s required", ErrBadRework, w.Kind, strings.Join(missing, ", "))
	}
	return nil
}

// Rework carries out a manual rework: journaled in the ledger (which
// refuses what the rules forbid, with the reason — errors wrap
// aggregation.ErrRefused or ErrNotFound), then the line's view follows.
func (r *Runner) Rework(ctx context.Context, w ReworkOp) error {
	if err := w.Validate(); err != nil {
		return err
	}
	by := aggregation.Actor{Kind: aggregation.ActorUser, ID: w.User}
	info, err := r.store.Lookup(ctx, w.Code)
	if err != nil {
		return fmt.Errorf("code %s: %w", w.Code, err)
	}
	if info.Batch != r.cfg.Batch {
		return fmt.Errorf("code %s is of batch %q, not this line's batch %q: %w", w.Code, info.Batch, r.cfg.Batch, aggregation.ErrRefused)
	}
	ev := Reworked{Stamp: Stamp{T: time.Now()}}
	switch w.Kind {
	case ReworkDecommission:
		err = r.store.Decommission(ctx, w.Code, w.Reason, by)
		ev.Out = []tracecode.Code{w.Code}
	case ReworkSample:
		err = r.store.Sample(ctx, w.Code, w.Reason, by)
		ev.Out = []tracecode.Code{w.Code}
	case ReworkUnpack:
		var children []tracecode.Code
		if err = r.store.Tree(ctx, w.Code, func(n aggregation.Node) error {
			if n.Parent == w.Code {
				children = append(children, n.Code)
			}
			return nil
		}); err == nil {
			err = r.store.Unpack(ctx, w.Code, w.Reason, by)
		}
		ev.Loose = children
	case ReworkReplace:
		err = r.store.Replace(ctx, w.Code, w.Old, w.New, w.Reason, by)
		ev.Loose, ev.Packed = []tracecode.Code{w.Old}, []tracecode.Code{w.New}
	case ReworkReprint:
		if r.dev.ReworkLabels == nil {
			return fmt.Errorf("reprint %s: no rework label printer is configured (devices.rework_label_printer); the in-line labeller's printer would put the label on the next group: %w", w.Code, aggregation.ErrRefused)
		}
		if info.Level < 2 || info.Children == 0 {
			return fmt.Errorf("reprint %s: not a packed parent (level %d, %d children): %w", w.Code, info.Level, info.Children, aggregation.ErrRefused)
		}
		if err = r.store.RecordReprint(ctx, w.Code, w.Reason, by); err == nil {
			err = r.dev.ReworkLabels.PrintLabel(ctx, info.Level, w.Code, info.Children)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", w.Kind, w.Code, err)
	}
	r.Post(ev)
	return nil
}
