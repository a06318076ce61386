package aggregation

import (
	"errors"
	"fmt"
	"strings"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// parentOf checks that p can hold children and returns it with its ratio.
func (t *wtx) parentOf(p tracecode.Code) (codeView, int, error) {
	cv, err := t.lookup(p)
	if err != nil {
		return cv, 0, fmt.Errorf("parent: %w", err)
	}
	if cv.loc.inPool() {
		return cv, 0, refused("parent %s is in pool %s, not allocated to a batch", p, cv.loc.Pool)
	}
	if cv.loc.Level < 2 {
		return cv, 0, refused("parent %s is a level %s code: it cannot hold children", p, cv.loc.Level)
	}
	if cv.rec.State != StateCommissioned && cv.rec.State != StateAggregated {
		return cv, 0, refused("parent %s is %s, not commissioned", p, cv.rec.State)
	}
	b, err := t.batchIn(cv.loc.Batch, BatchOpen, BatchComplete)
	if err != nil {
		return cv, 0, fmt.Errorf("parent %s: %w", p, err)
	}
	ls, err := t.levelOf(b, cv.loc.Level)
	if err != nil {
		return cv, 0, err
	}
	return cv, ls.Ratio, nil
}

// looseChild checks that c can go into parent.
func (t *wtx) looseChild(c tracecode.Code, parent codeView, mixedOK bool) (codeView, error) {
	cv, err := t.lookup(c)
	if err != nil {
		return cv, fmt.Errorf("child: %w", err)
	}
	if c == parent.code {
		return cv, refused("code %s cannot contain itself", c)
	}
	if cv.loc.inPool() || cv.loc.Level != parent.loc.Level-1 {
		return cv, refused("child %s is level %s, parent %s is level %s (levels never skip)", c, cv.loc.Level, parent.code, parent.loc.Level)
	}
	switch cv.rec.State {
	case StateCommissioned:
	case StateAggregated:
		return cv, refused("child %s is already packed in %s", c, cv.rec.Parent)
	default:
		return cv, refused("child %s is %s, not commissioned", c, cv.rec.State)
	}
	if cv.loc.Batch != parent.loc.Batch && !mixedOK {
		return cv, refused("child %s is of batch %s, parent %s of batch %s (not a mixed case)", c, cv.loc.Batch, parent.code, parent.loc.Batch)
	}
	if cv.loc.Batch != parent.loc.Batch {
		if _, err := t.batchIn(cv.loc.Batch, BatchOpen, BatchComplete); err != nil {
			return cv, fmt.Errorf("child %s: %w", c, err)
		}
	}
	return cv, nil
}

func (t *wtx) applyPack(ev *Event) error {
	opts := PackOpts{}
	if ev.Pack != nil {
		opts = *ev.Pack
	}
	pv, ratio, err := t.parentOf(ev.Parent)
	if err != nil {
		return err
	}
	n := len(ev.Codes)
	switch {
	case pv.rec.Children > 0:
		return refused("parent %s already holds %d children: unpack it first", ev.Parent, pv.rec.Children)
	case n == 0:
		return errors.New("pack: no children")
	case n > ratio:
		return refused("parent %s (level %s) takes at most %d children, %d given", ev.Parent, pv.loc.Level, ratio, n)
	case n < ratio && !opts.Partial:
		return refused("parent %s takes %d children, %d given and not flagged partial", ev.Parent, ratio, n)
	}
	partial := n < ratio
	if partial && opts.Reason == "" && ev.Reason == "" {
		return fmt.Errorf("partial parent %s needs a reason", ev.Parent)
	}
	seen := make(map[tracecode.Code]bool, n)
	kids := make([]codeView, n)
	mixed := false
	for i, c := range ev.Codes {
		if seen[c] {
			return refused("child %s appears twice", c)
		}
		seen[c] = true
		if kids[i], err = t.looseChild(c, pv, opts.Mixed); err != nil {
			return err
		}
		mixed = mixed || kids[i].loc.Batch != pv.loc.Batch
	}
	ev.Batch = pv.loc.Batch
	for i := range kids {
		k := &kids[i]
		k.rec.State, k.rec.Parent = StateAggregated, ev.Parent
		if err := t.putRec(k, ev.Seq); err != nil {
			return err
		}
		if err := t.set(linkKey(ev.Parent, k.code), nil); err != nil {
			return err
		}
		c := t.ctr(k.loc.Batch, k.loc.Level)
		c.Packed++
		c.move(StateCommissioned, StateAggregated)
	}
	pv.rec.Children = uint32(n)
	pv.rec.Flags &^= flagPartial | flagMixed
	pc := t.ctr(pv.loc.Batch, pv.loc.Level)
	if partial {
		pv.rec.Flags |= flagPartial
		pc.PartialParents++
	} else {
		pc.FullParents++
	}
	if mixed {
		pv.rec.Flags |= flagMixed
		pc.MixedParents++
	}
	return t.putRec(&pv, ev.Seq)
}

// children lists a parent's current children from the link table.
func (t *wtx) children(p tracecode.Code) ([]tracecode.Code, error) {
	if t.mem != nil {
		var out []tracecode.Code
		for _, k := range t.mem.children(linkPrefix(p)) {
			c, err := keyCode(k)
			if err != nil {
				return nil, storageErr(fmt.Errorf("children of %s: key %q: %w", p, k, err))
			}
			out = append(out, c)
		}
		return out, nil
	}
	o := badger.DefaultIteratorOptions
	o.PrefetchValues = false
	o.Prefix = linkPrefix(p)
	it := t.txn.NewIterator(o)
	defer it.Close()
	var out []tracecode.Code
	for it.Rewind(); it.Valid(); it.Next() {
		c, err := keyCode(it.Item().Key()[len(o.Prefix):])
		if err != nil {
			return nil, storageErr(fmt.Errorf("children of %s: key %q: %w", p, it.Item().Key(), err))
		}
		out = append(out, c)
	}
	return out, nil
}

func (t *wtx) applyUnpack(ev *Event, live bool) error {
	if ev.Reason == "" {
		return fmt.Errorf("unpack of %s needs a reason", ev.Parent)
	}
	pv, _, err := t.parentOf(ev.Parent)
	if err != nil {
		return err
	}
	if pv.rec.Children == 0 {
		return refused("parent %s holds no children", ev.Parent)
	}
	kids, err := t.children(ev.Parent)
	if err != nil {
		return err
	}
	if len(kids) != int(pv.rec.Children) {
		return storageErr(fmt.Errorf("parent %s: record says %d children, links say %d", ev.Parent, pv.rec.Children, len(kids)))
	}
	if live {
		ev.Codes = kids
	} else if strings.Join(codesStr(ev.Codes), ",") != strings.Join(codesStr(kids), ",") {
		return fmt.Errorf("unpack of %s lists children %v, the ledger has %v", ev.Parent, ev.Codes, kids)
	}
	views := make([]codeView, len(kids))
	for i, c := range kids {
		if views[i], err = t.lookup(c); err != nil {
			return err
		}
		if views[i].rec.State != StateAggregated || views[i].rec.Parent != ev.Parent {
			return storageErr(fmt.Errorf("child %s of %s is %s in %q", c, ev.Parent, views[i].rec.State, views[i].rec.Parent))
		}
	}
	ev.Batch = pv.loc.Batch
	for i := range views {
		k := &views[i]
		k.rec.State, k.rec.Parent = StateCommissioned, ""
		if err := t.putRec(k, ev.Seq); err != nil {
			return err
		}
		if err := t.del(linkKey(ev.Parent, k.code)); err != nil {
			return err
		}
		c := t.ctr(k.loc.Batch, k.loc.Level)
		c.Packed--
		c.move(StateAggregated, StateCommissioned)
	}
	pc := t.ctr(pv.loc.Batch, pv.loc.Level)
	if pv.rec.Flags&flagPartial != 0 {
		pc.PartialParents--
	} else {
		pc.FullParents--
	}
	if pv.rec.Flags&flagMixed != 0 {
		pc.MixedParents--
	}
	pv.rec.Children = 0
	pv.rec.Flags &^= flagPartial | flagMixed
	return t.putRec(&pv, ev.Seq)
}

func codesStr(cs []tracecode.Code) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func (t *wtx) applyReplace(ev *Event) error {
	if ev.Reason == "" {
		return fmt.Errorf("replace in %s needs a reason", ev.Parent)
	}
	if len(ev.Codes) != 1 {
		return errors.New("replace: exactly one old code")
	}
	old := ev.Codes[0]
	pv, _, err := t.parentOf(ev.Parent)
	if err != nil {
		return err
	}
	ov, err := t.lookup(old)
	if err != nil {
		return fmt.Errorf("old child: %w", err)
	}
	if ov.rec.State != StateAggregated || ov.rec.Parent != ev.Parent {
		return refused("code %s is not in %s", old, ev.Parent)
	}
	nv, err := t.looseChild(ev.New, pv, pv.rec.Flags&flagMixed != 0)
	if err != nil {
		return err
	}
	ev.Batch = pv.loc.Batch
	ov.rec.State, ov.rec.Parent = StateCommissioned, ""
	nv.rec.State, nv.rec.Parent = StateAggregated, ev.Parent
	if err := t.putRec(&ov, ev.Seq); err != nil {
		return err
	}
	if err := t.putRec(&nv, ev.Seq); err != nil {
		return err
	}
	if err := t.del(linkKey(ev.Parent, old)); err != nil {
		return err
	}
	if err := t.set(linkKey(ev.Parent, ev.New), nil); err != nil {
		return err
	}
	oc := t.ctr(ov.loc.Batch, ov.loc.Level)
	oc.Packed--
	oc.move(StateAggregated, StateCommissioned)
	nc := t.ctr(nv.loc.Batch, nv.loc.Level)
	nc.Packed++
	nc.move(StateCommissioned, StateAggregated)
	return t.putRec(&pv, ev.Seq)
}

func (t *wtx) applyBatchState(ev *Event) error {
	var b *batchRec
	var err error
	switch ev.Kind {
	case EvComplete:
		if b, err = t.batchIn(ev.Batch, BatchOpen); err != nil {
			return err
		}
		t.batchMut(ev.Batch).State = BatchComplete
	case EvRelease:
		if b, err = t.batchIn(ev.Batch, BatchOpen, BatchComplete); err != nil {
			return err
		}
		if ev.Sig == nil {
			return errors.New("release needs a signature")
		}
		if err := ev.Sig.validate(); err != nil {
			return err
		}
		st := BatchQARejected
		if ev.Sig.Meaning == "released" {
			sum := t.summary(b)
			if p := sum.ReleaseProblems(); len(p) > 0 {
				return refused("batch %s cannot be released: %s", ev.Batch, strings.Join(p, "; "))
			}
			st = BatchReleased
		}
		m := t.batchMut(ev.Batch)
		m.State = st
		sig := *ev.Sig
		m.Signature = &sig
	case EvActivate:
		if _, err = t.batchIn(ev.Batch, BatchReleased); err != nil {
			return err
		}
		t.batchMut(ev.Batch).State = BatchActive
	case EvHandedOff:
		if b, err = t.batchIn(ev.Batch, BatchActive, BatchHandedOff); err != nil {
			return err
		}
		if err := checkName("document id", ev.Document); err != nil {
			return err
		}
		if _, dup := b.Documents[ev.Document]; dup {
			return errNoop
		}
		m := t.batchMut(ev.Batch)
		m.State = BatchHandedOff
		if m.Documents == nil {
			m.Documents = map[string]string{}
		}
		m.Documents[ev.Document] = ev.Answer
	}
	return nil
}

func (s *Signature) validate() error {
	if s.User == "" {
		return errors.New("signature: user is empty")
	}
	if s.Meaning != "released" && s.Meaning != "rejected" {
		return fmt.Errorf("signature: meaning %q, want released or rejected", s.Meaning)
	}
	if s.At.IsZero() {
		return errors.New("signature: time is missing")
	}
	return nil
}

// summary builds a batch's summary from the group's view of the counters.
func (t *wtx) summary(b *batchRec) BatchSummary {
	return buildSummary(b, func(l tracecode.Level) levelCounters { return t.ctrRead(b.Spec.ID, l) })
}

// applyGate journals a unit's gate outcome. A loose commissioned code whose
// unit the gate rejected is decommissioned in the same event: the ledger
// follows what physically happened. Other combinations change no state and
// are kept as evidence (Verify names a commissioned code the gate rejected).
func (t *wtx) applyGate(ev *Event) error {
	g := GateOutcome(ev.Reason)
	if !g.valid() {
		return fmt.Errorf("gate outcome %q is not passed, rejected, reject-failed or bin-full", ev.Reason)
	}
	if ev.Unit == nil || ev.Unit.ItemID == 0 {
		return errors.New("gate outcome without the unit's item id")
	}
	if len(ev.Codes) > 1 {
		return fmt.Errorf("gate outcome for item %d names %d codes (at most one)", ev.Unit.ItemID, len(ev.Codes))
	}
	if _, err := t.batchIn(ev.Batch, BatchOpen, BatchComplete); err != nil {
		return err
	}
	c := t.ctr(ev.Batch, 1)
	c.seeItem(ev.Unit.ItemID)
	switch {
	case g == GatePassed:
		c.GatePassed++
	case g == GateRejected:
		c.GateRejected++
	default:
		c.GateEscaped++
	}
	if len(ev.Codes) == 0 {
		return nil
	}
	code := ev.Codes[0]
	cv, err := t.lookup(code)
	if err != nil {
		return err
	}
	if cv.loc.Batch != ev.Batch || cv.loc.Level != 1 {
		return refused("code %s is not a level 1 code of batch %s", code, ev.Batch)
	}
	st := cv.rec.State
	switch g {
	case GatePassed:
		cv.rec.Flags |= flagGatePassed
		cv.rec.Flags &^= flagGateRejected
	case GateRejected:
		cv.rec.Flags |= flagGateRejected
		cv.rec.Flags &^= flagGatePassed
		if st == StateCommissioned {
			cv.rec.State = StateDecommissioned
			lc := t.ctr(cv.loc.Batch, 1)
			lc.move(st, StateDecommissioned)
			lc.Decommissioned++
		}
	}
	return t.putRec(&cv, ev.Seq)
}

// applyLabel journals a parent's label fate.
func (t *wtx) applyLabel(ev *Event) error {
	f := LabelFate(ev.Reason)
	var flag uint8
	switch f {
	case LabelPrinted:
		flag = flagLabelPrinted
	case LabelVerified:
		flag = flagLabelVerified
	default:
		return fmt.Errorf("label fate %q is not printed or verified", ev.Reason)
	}
	pv, _, err := t.parentOf(ev.Parent)
	if err != nil {
		return err
	}
	if pv.rec.Children == 0 {
		return refused("parent %s holds no children: no label of it is on a group", ev.Parent)
	}
	if ev.Batch != pv.loc.Batch {
		return fmt.Errorf("label of %s names batch %q, the code is of %q", ev.Parent, ev.Batch, pv.loc.Batch)
	}
	if _, err := t.batchIn(ev.Batch, BatchOpen, BatchComplete); err != nil {
		return err
	}
	if pv.rec.Flags&flag == 0 {
		c := t.ctr(pv.loc.Batch, pv.loc.Level)
		if f == LabelPrinted {
			c.LabelsPrinted++
		} else {
			c.LabelsVerified++
		}
	}
	pv.rec.Flags |= flag
	return t.putRec(&pv, ev.Seq)
}
