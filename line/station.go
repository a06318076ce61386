package line

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// The manual aggregation station: an operator scans a parent's label, then
// its children one scan at a time (a keyboard-wedge scanner: any form
// tracecode.Parse knows). Each scan is checked on the spot and refused with
// a stable reason; the parent is packed in the ledger, as the operator,
// when the ratio is reached, or closed partial with a reason.

// Scan refusal reasons (ScanError.Reason): stable codes the HMI translates.
const (
	ScanUnreadable      = "unreadable"       // not a code tracecode.Parse knows
	ScanNotOurs         = "not-ours"         // unknown to this ledger
	ScanForeign         = "foreign"          // a code of another batch (or product)
	ScanWrongLevel      = "wrong-level"      // not of the level expected
	ScanDuplicate       = "duplicate"        // scanned already into this parent
	ScanPacked          = "packed"           // already in a parent
	ScanNotCommissioned = "not-commissioned" // never verified, or out of circulation
	ScanParentUsed      = "parent-used"      // the parent's code was used already
	ScanNoParent        = "no-parent"        // scan a parent first
	ScanParentOpen      = "parent-open"      // a parent is open: close or cancel it first
	ScanNoBatch         = "no-batch"         // no batch on the line
	ScanLabelPending    = "label-pending"    // a new parent's label awaits its scan
)

// ErrScanRefused is wrapped by every *ScanError.
var ErrScanRefused = errors.New("scan refused")

// ScanError is a scan the station refused, and why.
type ScanError struct {
	Reason  string         `json:"reason"`
	Scan    string         `json:"scan,omitempty"`
	Code    tracecode.Code `json:"code,omitempty"`
	Message string         `json:"message"`
}

func (e *ScanError) Error() string { return e.Reason + ": " + e.Message }
func (e *ScanError) Unwrap() error { return ErrScanRefused }

func scanErr(reason, scan string, code tracecode.Code, format string, args ...any) *ScanError {
	return &ScanError{Reason: reason, Scan: scan, Code: code, Message: fmt.Sprintf(format, args...)}
}

// StationView is the station's open parent and what was scanned into it.
type StationView struct {
	Batch    string           `json:"batch,omitempty"`
	Parent   tracecode.Code   `json:"parent,omitempty"`
	Level    tracecode.Level  `json:"level,omitempty"`
	Ratio    int              `json:"ratio,omitempty"`
	Children []tracecode.Code `json:"children"`
	User     string           `json:"user,omitempty"`
	// LabelToScan is a parent packed here whose new label was printed and
	// must be applied and scanned (verified) before the next parent: its
	// level has a label check, which the release requires.
	LabelToScan tracecode.Code `json:"label_to_scan,omitempty"`
	// Packed: the last parent packed (when the ratio was reached or it was
	// closed), with its children count and whether it is partial.
	Packed *PackedView `json:"packed,omitempty"`
}

// PackedView is a parent the station packed.
type PackedView struct {
	Parent   tracecode.Code `json:"parent"`
	Children int            `json:"children"`
	Partial  bool           `json:"partial"`
	Labelled bool           `json:"labelled"` // its label was printed on the rework label printer
	Verified bool           `json:"verified"` // its label was scanned on the parent (pre-printed, or the new one applied)
}

type station struct {
	mu       sync.Mutex
	batch    string
	parent   tracecode.Code
	level    tracecode.Level
	ratio    int
	children []tracecode.Code
	user     string
	newLabel bool // the station allocated the parent: print its label at packing
	packed   *PackedView
	toScan   tracecode.Code // a new label printed here, not yet scanned on its parent (StationView.LabelToScan)
}

func (s *station) view() StationView {
	v := StationView{Batch: s.batch, Parent: s.parent, Level: s.level, Ratio: s.ratio, User: s.user,
		Children: append([]tracecode.Code{}, s.children...), LabelToScan: s.toScan}
	if s.packed != nil {
		p := *s.packed
		v.Packed = &p
	}
	return v
}

// Station returns the manual aggregation station's state.
func (l *Line) Station() StationView {
	l.station.mu.Lock()
	defer l.station.mu.Unlock()
	return l.station.view()
}

// parseScan runs a scan through the one parser.
func parseScan(scan string) (tracecode.Code, *ScanError) {
	p, err := tracecode.Parse(scan)
	if err != nil {
		return "", scanErr(ScanUnreadable, scan, "", "%v", err)
	}
	return p.Code, nil
}

// StationBegin opens a parent by scanning its label: a code of this batch,
// of a level the batch aggregates, not used yet. A scan of a parent packed
// at the station whose new label was printed and not yet verified is that
// label's verification instead (the operator applied it and scanned it):
// journaled as verified, no parent opened. While a new label of a level
// with a label check awaits its scan, no other parent is opened.
func (l *Line) StationBegin(ctx context.Context, scan, user string) (StationView, error) {
	v, err := l.stationBegin(ctx, scan, user)
	l.journalStation(ctx, "station.begin", map[string]string{"scan": scan}, user, err)
	return v, err
}

func (l *Line) stationBegin(ctx context.Context, scan, user string) (StationView, error) {
	if err := needUser("manual station", user); err != nil {
		return l.Station(), err
	}
	s := &l.station
	s.mu.Lock()
	defer s.mu.Unlock()
	run := l.current()
	if run == nil {
		return s.view(), scanErr(ScanNoBatch, scan, "", "no batch is running on the line")
	}
	l.stationReset(run)
	if s.parent != "" {
		return s.view(), scanErr(ScanParentOpen, scan, s.parent, "parent %s is open with %d of %d: close or cancel it first", s.parent, len(s.children), s.ratio)
	}
	code, serr := parseScan(scan)
	if serr != nil {
		return s.view(), serr
	}
	info, err := l.store.Lookup(ctx, code)
	if errors.Is(err, aggregation.ErrNotFound) {
		return s.view(), scanErr(ScanNotOurs, scan, code, "%s is not a code of this line's ledger", code)
	} else if err != nil {
		return s.view(), err
	}
	if info.Batch != run.spec.ID {
		return s.view(), foreign(scan, code, info, run)
	}
	if info.Level >= 2 && info.Children > 0 { // a packed parent: its label's scan?
		full, err := l.store.Code(ctx, code) // with its history
		if err != nil {
			return s.view(), err
		}
		if stationLabelUnverified(full) {
			return s.verifyLabel(ctx, l, code, user)
		}
	}
	if err := s.labelPending(scan); err != nil {
		return s.view(), err
	}
	if info.Level < 2 || int(info.Level) > len(run.spec.Levels) {
		return s.view(), scanErr(ScanWrongLevel, scan, code, "%s is a level %s code; a parent is of level 2..%d", code, info.Level, len(run.spec.Levels))
	}
	switch info.State {
	case aggregation.StateAllocated, aggregation.StateSent, aggregation.StatePrinted:
	default:
		return s.view(), scanErr(ScanParentUsed, scan, code, "parent %s is %s: its code was used already", code, info.State)
	}
	s.parent, s.level, s.ratio, s.user, s.newLabel = code, info.Level, run.spec.Levels[info.Level-1].Ratio, user, false
	s.children, s.packed = nil, nil
	l.subs.notify()
	return s.view(), nil
}

// StationBeginNew opens a parent of level with a new code from the batch's
// code source; its label is printed on the rework label printer when the
// parent is packed (with the count on it).
func (l *Line) StationBeginNew(ctx context.Context, level tracecode.Level, user string) (StationView, error) {
	v, err := l.stationBeginNew(ctx, level, user)
	l.journalStation(ctx, "station.begin-new", map[string]any{"level": level}, user, err)
	return v, err
}

func (l *Line) stationBeginNew(ctx context.Context, level tracecode.Level, user string) (StationView, error) {
	if err := needUser("manual station", user); err != nil {
		return l.Station(), err
	}
	s := &l.station
	s.mu.Lock()
	defer s.mu.Unlock()
	run := l.current()
	if run == nil {
		return s.view(), scanErr(ScanNoBatch, "", "", "no batch is running on the line")
	}
	l.stationReset(run)
	if s.parent != "" {
		return s.view(), scanErr(ScanParentOpen, "", s.parent, "parent %s is open with %d of %d: close or cancel it first", s.parent, len(s.children), s.ratio)
	}
	if err := s.labelPending(""); err != nil {
		return s.view(), err
	}
	if level < 2 || int(level) > len(run.spec.Levels) {
		return s.view(), scanErr(ScanWrongLevel, "", "", "batch %s aggregates levels 2..%d, not %s", run.spec.ID, len(run.spec.Levels), level)
	}
	codes, err := run.r.dev.Codes.Allocate(ctx, level, 1)
	if err != nil {
		return s.view(), fmt.Errorf("a new %s parent code: %w", level, err)
	}
	if len(codes) != 1 {
		return s.view(), fmt.Errorf("a new %s parent code: the code source gave %d codes", level, len(codes))
	}
	s.parent, s.level, s.ratio, s.user, s.newLabel = codes[0], level, run.spec.Levels[level-1].Ratio, user, true
	s.children, s.packed = nil, nil
	l.subs.notify()
	return s.view(), nil
}

// stationReset forgets a parent opened for another batch.
func (l *Line) stationReset(run *batchRun) {
	s := &l.station
	if s.batch != run.spec.ID {
		s.batch, s.parent, s.level, s.ratio, s.children, s.user, s.newLabel, s.packed, s.toScan = run.spec.ID, "", 0, 0, nil, "", false, nil, ""
	}
}

// labelPending refuses a new parent while a new label awaits its scan.
func (s *station) labelPending(scan string) error {
	if s.toScan == "" {
		return nil
	}
	return scanErr(ScanLabelPending, scan, s.toScan, "apply the label printed for parent %s and scan it before the next parent (reprint it if it is lost)", s.toScan)
}

// verifyLabel journals the label of parent, packed at the station, as
// verified: its scan. Called with s.mu held.
func (s *station) verifyLabel(ctx context.Context, l *Line, parent tracecode.Code, user string) (StationView, error) {
	by := aggregation.Actor{Kind: aggregation.ActorUser, ID: user}
	if err := l.store.RecordLabel(ctx, parent, aggregation.LabelVerified, by); err != nil {
		return s.view(), fmt.Errorf("label of %s: %w", parent, err)
	}
	if s.toScan == parent {
		s.toScan = ""
	}
	if s.packed != nil && s.packed.Parent == parent {
		s.packed.Verified = true
	}
	l.subs.notify()
	return s.view(), nil
}

// stationLabelUnverified reports whether info is a parent packed by a user
// (at the station) holding children, whose label was printed (or
// reprinted) and never verified.
func stationLabelUnverified(info aggregation.CodeInfo) bool {
	if info.Level < 2 || info.Children == 0 {
		return false
	}
	byUser, printed, verified := false, false, false
	for _, ev := range info.History {
		switch {
		case ev.Kind == aggregation.EvPack && ev.Actor.Kind == aggregation.ActorUser && ev.Parent == info.Code:
			byUser = true
		case ev.Kind == aggregation.EvLabel && ev.Reason == string(aggregation.LabelPrinted), ev.Kind == aggregation.EvReprint:
			printed = true
		case ev.Kind == aggregation.EvLabel && ev.Reason == string(aggregation.LabelVerified):
			verified = true
		}
	}
	return byUser && printed && !verified
}

func foreign(scan string, code tracecode.Code, info aggregation.CodeInfo, run *batchRun) *ScanError {
	if info.Batch == "" {
		return scanErr(ScanNotCommissioned, scan, code, "%s is in pool %s, never allocated to a batch", code, info.Pool)
	}
	return scanErr(ScanForeign, scan, code, "%s is of batch %s, not %s", code, info.Batch, run.spec.ID)
}

// StationAdd checks one scanned child and adds it to the open parent.
// When the ratio is reached the parent is packed (StationView.Packed).
func (l *Line) StationAdd(ctx context.Context, scan, user string) (StationView, error) {
	v, err := l.stationAdd(ctx, scan, user)
	if err != nil {
		// Accepted scans are in the pack's record; a refused one is
		// journaled with its reason.
		l.journalStation(ctx, "station.add", map[string]string{"scan": scan}, user, err)
	}
	return v, err
}

func (l *Line) stationAdd(ctx context.Context, scan, user string) (StationView, error) {
	if err := needUser("manual station", user); err != nil {
		return l.Station(), err
	}
	s := &l.station
	s.mu.Lock()
	defer s.mu.Unlock()
	run := l.current()
	if run == nil {
		return s.view(), scanErr(ScanNoBatch, scan, "", "no batch is running on the line")
	}
	l.stationReset(run)
	if s.parent == "" {
		return s.view(), scanErr(ScanNoParent, scan, "", "scan a parent's label first")
	}
	code, serr := parseScan(scan)
	if serr != nil {
		return s.view(), serr
	}
	if code == s.parent {
		return s.view(), scanErr(ScanDuplicate, scan, code, "%s is the open parent itself", code)
	}
	for _, c := range s.children {
		if c == code {
			return s.view(), scanErr(ScanDuplicate, scan, code, "%s is already in this parent", code)
		}
	}
	info, err := l.store.Lookup(ctx, code)
	if errors.Is(err, aggregation.ErrNotFound) {
		return s.view(), scanErr(ScanNotOurs, scan, code, "%s is not a code of this line's ledger", code)
	} else if err != nil {
		return s.view(), err
	}
	if info.Batch != run.spec.ID {
		return s.view(), foreign(scan, code, info, run)
	}
	if info.Level != s.level-1 {
		return s.view(), scanErr(ScanWrongLevel, scan, code, "%s is a level %s code; parent %s takes level %s", code, info.Level, s.parent, s.level-1)
	}
	switch info.State {
	case aggregation.StateCommissioned:
	case aggregation.StateAggregated:
		return s.view(), scanErr(ScanPacked, scan, code, "%s is already packed in %s", code, info.Parent)
	default:
		return s.view(), scanErr(ScanNotCommissioned, scan, code, "%s is %s, not commissioned", code, info.State)
	}
	s.children = append(s.children, code)
	if len(s.children) >= s.ratio {
		if err := l.stationPack(ctx, run, false, "", user); err != nil {
			if s.parent != "" && len(s.children) > 0 {
				// Nothing was written: the parent stays open without it.
				s.children = s.children[:len(s.children)-1]
			}
			return s.view(), err
		}
	}
	l.subs.notify()
	return s.view(), nil
}

// StationClose packs the open parent short of its ratio (partial), with a
// reason; StationCancel drops it (nothing was written).
func (l *Line) StationClose(ctx context.Context, reason, user string) (StationView, error) {
	v, err := l.stationClose(ctx, reason, user)
	if err != nil {
		l.journalStation(ctx, "station.close", map[string]string{"reason": reason}, user, err)
	}
	return v, err
}

func (l *Line) stationClose(ctx context.Context, reason, user string) (StationView, error) {
	if err := needUser("manual station", user); err != nil {
		return l.Station(), err
	}
	s := &l.station
	s.mu.Lock()
	defer s.mu.Unlock()
	run := l.current()
	if run == nil {
		return s.view(), scanErr(ScanNoBatch, "", "", "no batch is running on the line")
	}
	l.stationReset(run)
	switch {
	case s.parent == "":
		return s.view(), scanErr(ScanNoParent, "", "", "no parent is open")
	case len(s.children) == 0:
		return s.view(), fmt.Errorf("parent %s is empty: cancel it instead: %w", s.parent, aggregation.ErrRefused)
	case strings.TrimSpace(reason) == "":
		return s.view(), fmt.Errorf("closing parent %s with %d of %d: a reason is required: %w", s.parent, len(s.children), s.ratio, aggregation.ErrRefused)
	}
	if err := l.stationPack(ctx, run, true, reason, user); err != nil {
		return s.view(), err
	}
	l.subs.notify()
	return s.view(), nil
}

// StationCancel drops the open parent; nothing was written for it.
func (l *Line) StationCancel(ctx context.Context, user string) StationView {
	s := &l.station
	s.mu.Lock()
	parent := s.parent
	s.parent, s.children, s.level, s.ratio, s.user = "", nil, 0, 0, ""
	v := s.view()
	s.mu.Unlock()
	if parent != "" {
		l.journalStation(ctx, "station.cancel", map[string]string{"parent": string(parent)}, user, nil)
	}
	l.subs.notify()
	return v
}

// stationPack writes the open parent to the ledger as user: its code sent
// and commissioned, the children packed under it; a label printed if the
// station allocated it. On a refusal nothing stays half-done: the parent is
// voided or decommissioned, the children stay loose. Called with s.mu held.
func (l *Line) stationPack(ctx context.Context, run *batchRun, partial bool, reason, user string) error {
	s := &l.station
	by := aggregation.Actor{Kind: aggregation.ActorUser, ID: user}
	info, err := l.store.Lookup(ctx, s.parent)
	if err != nil {
		return err
	}
	if info.State == aggregation.StateAllocated {
		if err := l.store.MarkSent(ctx, []tracecode.Code{s.parent}, by); err != nil {
			return fmt.Errorf("parent %s: %w", s.parent, err)
		}
	}
	if err := l.store.Commission(ctx, s.parent, aggregation.UnitInfo{ReadAt: time.Now()}, by); err != nil {
		if verr := l.store.Void(ctx, s.parent, "manual station: parent not commissioned: "+err.Error(), by); verr != nil {
			l.log.Error("void parent", "code", s.parent, "err", verr)
		}
		s.parent, s.children = "", nil
		return fmt.Errorf("parent %s: %w (the parent's code was voided; scan a new parent)", info.Code, err)
	}
	opts := aggregation.PackOpts{Partial: partial, Reason: reason}
	if !partial {
		opts.Reason = "manual aggregation station"
	}
	if err := l.store.Pack(ctx, s.parent, s.children, opts, by); err != nil {
		if derr := l.store.Decommission(ctx, s.parent, "manual station: pack refused, parent empty: "+err.Error(), by); derr != nil {
			l.log.Error("decommission empty parent", "code", s.parent, "err", derr)
		}
		s.parent, s.children = "", nil
		return fmt.Errorf("pack %s: %w (the parent's code was taken out; its children stay loose)", info.Code, err)
	}
	pv := &PackedView{Parent: s.parent, Children: len(s.children), Partial: partial}
	labels := run.r.dev.ReworkLabels
	if s.newLabel && labels != nil {
		if err := labels.PrintLabel(ctx, s.level, s.parent, len(s.children)); err != nil {
			l.log.Error("manual station: label", "parent", s.parent, "err", err)
		} else {
			pv.Labelled = true
		}
	}
	// The label is on the case: printed (by the station, or before and
	// scanned at the station, which verifies it). A restart must not take
	// the parent out as unlabelled.
	if pv.Labelled || !s.newLabel {
		if err := l.store.RecordLabel(ctx, s.parent, aggregation.LabelPrinted, by); err != nil {
			l.log.Error("manual station: journal label printed", "parent", s.parent, "err", err)
		}
	}
	if !s.newLabel {
		if err := l.store.RecordLabel(ctx, s.parent, aggregation.LabelVerified, by); err != nil {
			l.log.Error("manual station: journal label verified", "parent", s.parent, "err", err)
		} else {
			pv.Verified = true
		}
	} else if run.spec.Levels[s.level-1].LabelCheck {
		// The new label must be applied and scanned before the next parent
		// (StationBegin): unverified, the batch cannot be released.
		s.toScan = s.parent
	}
	run.r.Post(Reworked{Stamp: Stamp{T: time.Now()}, Packed: append([]tracecode.Code(nil), s.children...)})
	s.packed = pv
	s.parent, s.children, s.newLabel = "", nil, false
	return nil
}

func (l *Line) journalStation(ctx context.Context, what string, args any, user string, err error) {
	batch := ""
	if run := l.current(); run != nil {
		batch = run.spec.ID
	}
	l.journalCommand(ctx, batch, what, args, user, err)
}

// StationReprint prints a packed parent's label again on the rework label
// printer (journaled by the ledger as a reprint by user).
func (l *Line) StationReprint(ctx context.Context, parent tracecode.Code, reason, user string) error {
	return l.Rework(ctx, ReworkOp{Kind: ReworkReprint, Code: parent, Reason: reason}, user)
}
