package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
)

// Record is the batch record: what QA reviews and signs. Content is the part
// the signatures bind (its canonical bytes hash to Hash); the rest is
// computed when the record is built (the batch's state, the rules, the
// hash chain's status, the signatures and whether each still holds).
type Record struct {
	Content
	// Hash is the hex SHA-256 of Content's canonical bytes (Canonical).
	Hash       string                 `json:"hash"`
	State      aggregation.BatchState `json:"state"`
	Rules      []Rule                 `json:"rules"`
	Chain      ChainStatus            `json:"chain"`
	Signatures []SignatureStatus      `json:"signatures"`
	// Required is how many valid "released" signatures the release needs.
	Required int       `json:"required_signatures"`
	BuiltAt  time.Time `json:"built_at"`
	// After lists the batch's trail after the decision (hand-off documents
	// and attempts, notes): shown, not part of the record as signed.
	After []Entry `json:"after_decision,omitempty"`
	// LastSeq is the batch's last journal event (its codes', its records')
	// that is part of the record as signed: a verify must cover it.
	LastSeq uint64 `json:"last_seq"`
}

// Releasable reports whether every rule is ok.
func (r *Record) Releasable() bool {
	for _, x := range r.Rules {
		if x.Status != RuleOK {
			return false
		}
	}
	return true
}

// Content is the record as signed. Times are RFC 3339 UTC strings so that
// the canonical bytes do not depend on the reader's time zone.
type Content struct {
	Version    int           `json:"version"` // of this layout; 1
	Header     Header        `json:"header"`
	Levels     []Level       `json:"levels"`
	Rejects    []ReasonCount `json:"rejects"`
	Challenges []Challenge   `json:"challenges"`
	Alarms     []Alarm       `json:"alarms"`
	Manual     []Action      `json:"manual_actions"`
	Trail      []Entry       `json:"trail"`
}

// Header is who made what, when and where.
type Header struct {
	Batch          string            `json:"batch"`
	Product        string            `json:"product"`
	Line           string            `json:"line"`
	BatchNumber    string            `json:"batch_number,omitempty"`
	ProductionDate string            `json:"production_date,omitempty"`
	Expiry         string            `json:"expiry,omitempty"`
	PlannedQty     int64             `json:"planned_qty,omitempty"`
	Workshop       string            `json:"workshop,omitempty"`
	Manager        string            `json:"manager,omitempty"`
	OrderExtra     map[string]string `json:"order_extra,omitempty"`
	Levels         string            `json:"levels"` // e.g. "L1, L2 ×10, L3 ×20"
	StartedBy      string            `json:"started_by"`
	StartedAt      string            `json:"started_at"`
	CompletedBy    string            `json:"completed_by,omitempty"`
	CompletedAt    string            `json:"completed_at,omitempty"`
}

// Level is one packaging level's reconciliation: DESIGN.md's conservation
// equations, each with whether it holds, and the counts behind them.
type Level struct {
	Level          string     `json:"level"`
	Ratio          int        `json:"ratio,omitempty"`
	Equations      []Equation `json:"equations"`
	Allocated      int64      `json:"allocated"`
	Returned       int64      `json:"returned"`
	Sent           int64      `json:"sent"`
	Commissioned   int64      `json:"commissioned"`
	Rejected       int64      `json:"rejected"`
	Voided         int64      `json:"voided"`
	Sampled        int64      `json:"sampled"`
	Decommissioned int64      `json:"decommissioned"`
	Packed         int64      `json:"packed"`
	Loose          int64      `json:"loose"`
	Outstanding    int64      `json:"outstanding"`
	InFlight       int64      `json:"in_flight"`
	FullParents    int64      `json:"full_parents"`
	PartialParents int64      `json:"partial_parents"`
	MixedParents   int64      `json:"mixed_parents"`
	RejectedUnits  int64      `json:"rejected_units"`
	GatePassed     int64      `json:"gate_passed"`
	GateRejected   int64      `json:"gate_rejected"`
	GateEscaped    int64      `json:"gate_escaped"`
	LabelsPrinted  int64      `json:"labels_printed"`
	LabelsVerified int64      `json:"labels_verified"`
}

// Equation is one conservation equation with its numbers.
type Equation struct {
	Text string `json:"text"` // "sent 1000 = commissioned 990 + rejected 8 + voided 2 + in flight 0"
	OK   bool   `json:"ok"`
}

// ReasonCount is how many codes or units an event kind took for a reason.
type ReasonCount struct {
	Kind   string `json:"kind"` // reject, reject_unit, void, sample, decommission, gate
	Reason string `json:"reason"`
	N      int64  `json:"n"`
}

// Challenge is one challenge test run.
type Challenge struct {
	Seq    uint64                      `json:"seq"`
	At     string                      `json:"at"`
	By     string                      `json:"by"`
	Passed bool                        `json:"passed"`
	Steps  []aggregation.ChallengeStep `json:"steps"`
}

// Alarm is an alarm of the batch and its acknowledgement.
type Alarm struct {
	Seq     uint64 `json:"seq"`
	At      string `json:"at"`
	Source  string `json:"source"` // device or actor that raised it
	Text    string `json:"text"`
	AckBy   string `json:"ack_by,omitempty"`
	AckAt   string `json:"ack_at,omitempty"`
	AckNote string `json:"ack_note,omitempty"`
	AckSeq  uint64 `json:"ack_seq,omitempty"`
}

// Action is a manual action: an event of the batch by a user.
type Action struct {
	Seq    uint64 `json:"seq"`
	At     string `json:"at"`
	User   string `json:"user"`
	What   string `json:"what"`
	Detail string `json:"detail,omitempty"`
	Why    string `json:"why,omitempty"`
}

// Entry is one event of the batch's audit trail with the hash of the event
// before it (the journal's chain).
type Entry struct {
	Seq    uint64 `json:"seq"`
	At     string `json:"at"`
	Actor  string `json:"actor"` // "user:alice"
	What   string `json:"what"`  // event kind, or the record's type
	Detail string `json:"detail,omitempty"`
	Prev   string `json:"prev"`
}

// ChainStatus is what the last verify of the ledger found, as it bears on
// this batch.
type ChainStatus struct {
	Verified   bool   `json:"verified"` // a verify covering the batch's last event passed
	Text       string `json:"text"`
	VerifySeq  uint64 `json:"verify_seq,omitempty"`  // the record of the run
	VerifyHead uint64 `json:"verify_head,omitempty"` // the journal it covered ended here
	VerifyAt   string `json:"verify_at,omitempty"`
}

// Canonical returns the record as signed in canonical byte form: Content as
// compact JSON, fields in declaration order, map keys sorted, no HTML
// escaping, no trailing newline.
func (c *Content) Canonical() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("batch record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Sum is the hex SHA-256 of the canonical bytes.
func (c *Content) Sum() (string, error) {
	b, err := c.Canonical()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func actorString(a aggregation.Actor) string { return string(a.Kind) + ":" + a.ID }

// unsigned reports whether a trail event stays out of the record as signed:
// the signatures themselves, verify runs, and what follows the decision
// (release, activation, hand-off). Anything else that reaches the batch's
// trail after a signature changes the record's hash.
func unsigned(ev aggregation.Event) bool {
	switch ev.Kind {
	case aggregation.EvRelease, aggregation.EvActivate, aggregation.EvHandedOff:
		return true
	case aggregation.EvRecord:
		switch ev.Reason {
		case TypeSignature, TypeSigVoid, TypeVerify:
			return true
		}
	}
	return false
}

// maxDetailCodes caps the codes an entry names.
const maxDetailCodes = 5

func describe(ev aggregation.Event) string {
	var parts []string
	if ev.Kind == aggregation.EvRecord {
		if ev.Document != "" {
			parts = append(parts, ev.Document)
		}
		if ev.Answer != "" {
			parts = append(parts, clip(ev.Answer, 300))
		}
		return strings.Join(parts, " ")
	}
	if ev.Level != 0 {
		parts = append(parts, ev.Level.String())
	}
	if ev.Parent != "" {
		parts = append(parts, "parent "+string(ev.Parent))
	}
	if n := len(ev.Codes); n > 0 {
		cs := make([]string, 0, maxDetailCodes)
		for _, c := range ev.Codes[:min(n, maxDetailCodes)] {
			cs = append(cs, string(c))
		}
		s := "codes " + strings.Join(cs, ", ")
		if n > maxDetailCodes {
			s += fmt.Sprintf(" … (%d in all)", n)
		}
		parts = append(parts, s)
	}
	if ev.New != "" {
		parts = append(parts, "new "+string(ev.New))
	}
	if ev.Pack != nil {
		if ev.Pack.Partial {
			parts = append(parts, "partial")
		}
		if ev.Pack.Mixed {
			parts = append(parts, "mixed")
		}
	}
	if ev.Sig != nil {
		parts = append(parts, ev.Sig.Meaning+" by "+ev.Sig.User)
	}
	if ev.Document != "" {
		parts = append(parts, "document "+ev.Document)
	}
	return strings.Join(parts, "; ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// cut at a rune boundary
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// scan is what one pass over the batch's journal events collects.
type scan struct {
	created   *aggregation.Event
	completed *aggregation.Event
	reasons   map[[2]string]int64
	chall     []Challenge
	last      uint64
	decided   bool   // the release event was seen
	next      uint64 // the journal event the next pass starts at
}

func (sc *scan) clone() *scan {
	c := *sc
	c.reasons = make(map[[2]string]int64, len(sc.reasons))
	for k, v := range sc.reasons {
		c.reasons[k] = v
	}
	c.chall = append([]Challenge(nil), sc.chall...)
	return &c
}

// scanCache keeps, per batch, what the journal pass found so far, so that
// building the record again (to sign it, to render it) reads only the
// journal's new tail. The journal is append-only: what was read stays true.
type scanCache struct {
	mu sync.Mutex
	m  map[string]*scan
}

const maxCachedScans = 64

func (c *scanCache) get(batch string) *scan {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc := c.m[batch]; sc != nil {
		return sc.clone()
	}
	return nil
}

func (c *scanCache) put(batch string, sc *scan) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*scan{}
	}
	if _, ok := c.m[batch]; !ok && len(c.m) >= maxCachedScans {
		for k := range c.m { // evict any one
			delete(c.m, k)
			break
		}
	}
	c.m[batch] = sc.clone()
}

// Build reads the batch record of batch from the ledger. Rules, chain
// status and signatures are filled in; Required is set from required.
func build(ctx context.Context, l Reader, batch string, required int, now time.Time, cache *scanCache) (*Record, error) {
	sum, err := l.Summary(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("batch record %s: %w", batch, err)
	}
	spec, err := l.Spec(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("batch record %s: %w", batch, err)
	}
	r := &Record{State: sum.State, Required: required, BuiltAt: now.UTC()}
	r.Version = 1
	var trail []aggregation.Event
	if err := l.Trail(ctx, batch, func(ev aggregation.Event) error {
		trail = append(trail, ev)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("batch record %s: audit trail: %w", batch, err)
	}
	if len(trail) == 0 || trail[0].Kind != aggregation.EvBatchCreate {
		return nil, fmt.Errorf("batch record %s: the audit trail does not start with the batch's creation", batch)
	}
	sc := cache.get(batch)
	if sc == nil || sc.created == nil || sc.created.Seq != trail[0].Seq {
		sc = &scan{reasons: map[[2]string]int64{}, next: trail[0].Seq}
	}
	if err := l.Events(ctx, sc.next, func(ev aggregation.Event) error {
		sc.next = ev.Seq + 1
		if ev.Batch != batch {
			return nil
		}
		sc.see(ev)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("batch record %s: journal: %w", batch, err)
	}
	cache.put(batch, sc)
	r.LastSeq = sc.last
	r.Header = header(spec, *sc)
	r.Levels = levels(sum)
	for k, n := range sc.reasons {
		r.Rejects = append(r.Rejects, ReasonCount{Kind: k[0], Reason: k[1], N: n})
	}
	sort.Slice(r.Rejects, func(i, j int) bool {
		a, b := r.Rejects[i], r.Rejects[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Reason < b.Reason
	})
	r.Challenges = sc.chall
	var sigs []sigEvent
	decided := len(trail) // the trail up to the decision is what was signed
	for i, ev := range trail {
		if ev.Kind == aggregation.EvRelease && decided == len(trail) {
			decided = i
		}
		if i > decided {
			if !unsigned(ev) {
				r.After = append(r.After, Entry{Seq: ev.Seq, At: ts(ev.At), Actor: actorString(ev.Actor),
					What: what(ev), Detail: describe(ev), Prev: ev.Prev})
			}
			continue
		}
		if ev.Kind == aggregation.EvRecord && ev.Reason == TypeSignature {
			var s SignatureRecord
			if err := json.Unmarshal([]byte(ev.Answer), &s); err != nil {
				return nil, fmt.Errorf("batch record %s: signature record %d: %w", batch, ev.Seq, err)
			}
			sigs = append(sigs, sigEvent{seq: ev.Seq, rec: s})
		}
		if ev.Kind == aggregation.EvRecord && ev.Reason == TypeSigVoid {
			var v sigVoid
			if err := json.Unmarshal([]byte(ev.Answer), &v); err == nil {
				for i := range sigs {
					if sigs[i].seq == v.Signature {
						sigs[i].voided = voidedPrefix + v.Why
					}
				}
			}
		}
		if unsigned(ev) {
			continue
		}
		r.Trail = append(r.Trail, Entry{Seq: ev.Seq, At: ts(ev.At), Actor: actorString(ev.Actor),
			What: what(ev), Detail: describe(ev), Prev: ev.Prev})
		if ev.Actor.Kind == aggregation.ActorUser && ev.Kind != aggregation.EvRecord && ev.Kind != aggregation.EvBatchCreate {
			r.Manual = append(r.Manual, Action{Seq: ev.Seq, At: ts(ev.At), User: ev.Actor.ID,
				What: string(ev.Kind), Detail: describe(ev), Why: ev.Reason})
		}
	}
	r.Alarms = alarms(trail[:decided])
	if r.Hash, err = r.Content.Sum(); err != nil {
		return nil, err
	}
	r.Signatures = signatureStatus(sigs, r.Hash, sum.State)
	r.Chain = chainStatus(ctx, l, r.LastSeq)
	r.Rules = rules(ctx, l, sum, r)
	return r, nil
}

func what(ev aggregation.Event) string {
	if ev.Kind == aggregation.EvRecord {
		return ev.Reason
	}
	return string(ev.Kind)
}

func (sc *scan) see(ev aggregation.Event) {
	if ev.Kind == aggregation.EvRelease {
		sc.decided = true
	}
	if !unsigned(ev) && !sc.decided {
		sc.last = ev.Seq // signatures, verify runs and what follows the decision are not what a verify must cover
	}
	switch ev.Kind {
	case aggregation.EvBatchCreate:
		if sc.created == nil {
			e := ev
			sc.created = &e
		}
	case aggregation.EvComplete:
		e := ev
		sc.completed = &e
	case aggregation.EvReject, aggregation.EvRejectUnit, aggregation.EvVoid, aggregation.EvSample, aggregation.EvDecommission:
		n := int64(len(ev.Codes))
		if ev.Kind == aggregation.EvRejectUnit {
			n = 1
		}
		sc.reasons[[2]string{string(ev.Kind), ev.Reason}] += n
	case aggregation.EvChallenge:
		if ev.Challenge != nil {
			sc.chall = append(sc.chall, Challenge{Seq: ev.Seq, At: ts(ev.At), By: actorString(ev.Actor),
				Passed: ev.Challenge.Passed, Steps: ev.Challenge.Steps})
		}
	}
}

func header(spec aggregation.BatchSpec, sc scan) Header {
	h := Header{Batch: spec.ID, Product: spec.Product, Line: spec.Line, BatchNumber: spec.Order.BatchNumber,
		ProductionDate: spec.Order.ProductionDate, Expiry: spec.Order.Expiry, PlannedQty: spec.Order.PlannedQty,
		Workshop: spec.Order.Workshop, Manager: spec.Order.Manager, OrderExtra: spec.Order.Extra}
	var lv []string
	for _, l := range spec.Levels {
		s := l.Level.String()
		if l.Ratio > 0 {
			s += " ×" + strconv.Itoa(l.Ratio)
		}
		lv = append(lv, s)
	}
	h.Levels = strings.Join(lv, ", ")
	if sc.created != nil {
		h.StartedBy, h.StartedAt = actorString(sc.created.Actor), ts(sc.created.At)
	}
	if sc.completed != nil {
		h.CompletedBy, h.CompletedAt = actorString(sc.completed.Actor), ts(sc.completed.At)
	}
	return h
}

func levels(sum aggregation.BatchSummary) []Level {
	out := make([]Level, 0, len(sum.Levels))
	for i, l := range sum.Levels {
		top := i == len(sum.Levels)-1
		eq := []Equation{
			{fmt.Sprintf("allocated %d = returned %d + sent %d + outstanding %d", l.Allocated, l.Returned, l.Sent, l.Outstanding),
				l.Allocated == l.Returned+l.Sent+l.Outstanding && l.Outstanding == 0},
			{fmt.Sprintf("sent %d = commissioned %d + rejected %d + voided %d + in flight %d", l.Sent, l.Commissioned, l.Rejected, l.Voided, l.InFlight),
				l.Sent == l.Commissioned+l.Rejected+l.Voided+l.InFlight && l.InFlight == 0},
			{fmt.Sprintf("commissioned %d = packed %d + sampled %d + decommissioned %d + loose %d", l.Commissioned, l.Packed, l.Sampled, l.Decommissioned, l.Loose),
				l.Commissioned == l.Packed+l.Sampled+l.Decommissioned+l.Loose && (top || l.Loose == 0)},
		}
		if !top {
			eq[2].Text += " (loose must be 0 below the top level)"
		}
		out = append(out, Level{Level: l.Level.String(), Ratio: l.Ratio, Equations: eq,
			Allocated: l.Allocated, Returned: l.Returned, Sent: l.Sent, Commissioned: l.Commissioned,
			Rejected: l.Rejected, Voided: l.Voided, Sampled: l.Sampled, Decommissioned: l.Decommissioned,
			Packed: l.Packed, Loose: l.Loose, Outstanding: l.Outstanding, InFlight: l.InFlight,
			FullParents: l.FullParents, PartialParents: l.PartialParents, MixedParents: l.MixedParents,
			RejectedUnits: l.RejectedUnits, GatePassed: l.GatePassed, GateRejected: l.GateRejected,
			GateEscaped: l.GateEscaped, LabelsPrinted: l.LabelsPrinted, LabelsVerified: l.LabelsVerified})
	}
	return out
}

// alarmValue is what this package reads from an alarm or alarm.ack record's
// Value (JSON); every field is optional. An acknowledgement names its alarm
// by the alarm record's Key (the same Key on both records), by "id", or by
// "alarm_seq" (the alarm record's journal sequence number).
type alarmValue struct {
	ID       flexID `json:"id"`
	Cleared  bool   `json:"cleared"`
	AlarmSeq uint64 `json:"alarm_seq"`
	Device   string `json:"device"`
	Text     string `json:"text"`
	Message  string `json:"message"`
	Note     string `json:"note"`
	Comment  string `json:"comment"`
}

// flexID is an alarm id given as a JSON string or number (the line
// journals numbers).
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("alarm id %s: want a string or a number", b)
	}
	*f = flexID(n.String())
	return nil
}

func alarms(trail []aggregation.Event) []Alarm {
	var out []Alarm
	byKey := map[string]int{}
	for _, ev := range trail {
		if ev.Kind != aggregation.EvRecord || (ev.Reason != TypeAlarm && ev.Reason != TypeAlarmAck) {
			continue
		}
		var v alarmValue
		if err := json.Unmarshal([]byte(ev.Answer), &v); err != nil {
			v.Text = ev.Answer // not JSON: shown as it is
		}
		if ev.Reason == TypeAlarm && v.Cleared {
			continue // the condition of an alarm already listed is gone; it still wants its acknowledgement
		}
		if ev.Reason == TypeAlarm {
			text := v.Text
			if text == "" {
				text = v.Message
			}
			if text == "" {
				text = ev.Answer
			}
			src := v.Device
			if src == "" {
				src = actorString(ev.Actor)
			}
			out = append(out, Alarm{Seq: ev.Seq, At: ts(ev.At), Source: src, Text: clip(text, 500)})
			i := len(out) - 1
			byKey["seq:"+strconv.FormatUint(ev.Seq, 10)] = i
			if ev.Document != "" {
				byKey["key:"+ev.Document] = i
			}
			if v.ID != "" {
				byKey["id:"+string(v.ID)] = i
			}
			continue
		}
		i, ok := 0, false
		if ev.Document != "" {
			i, ok = byKey["key:"+ev.Document]
		}
		if !ok && v.ID != "" {
			i, ok = byKey["id:"+string(v.ID)]
		}
		if !ok && v.AlarmSeq != 0 {
			i, ok = byKey["seq:"+strconv.FormatUint(v.AlarmSeq, 10)]
		}
		if !ok || out[i].AckSeq != 0 {
			continue // an acknowledgement of nothing known, or a second one: in the trail only
		}
		note := v.Note
		if note == "" {
			note = v.Comment
		}
		out[i].AckBy, out[i].AckAt, out[i].AckSeq, out[i].AckNote = actorString(ev.Actor), ts(ev.At), ev.Seq, clip(note, 500)
	}
	return out
}

// VerifyRun is the outcome of one ledger verify, journaled under VerifyKey.
type VerifyRun struct {
	OK       bool     `json:"ok"`
	Head     uint64   `json:"head"` // the journal's last event when the run started
	Events   uint64   `json:"events"`
	Problems int      `json:"problems"`
	First    []string `json:"first,omitempty"` // the first few problems
	At       string   `json:"at"`
	Seconds  float64  `json:"seconds"`
}

func chainStatus(ctx context.Context, l Reader, last uint64) ChainStatus {
	v, seq, err := l.Meta(ctx, VerifyKey)
	if err != nil {
		if errors.Is(err, aggregation.ErrNotFound) {
			return ChainStatus{Text: "the ledger has not been verified yet"}
		}
		return ChainStatus{Text: "reading the last verify: " + err.Error()}
	}
	var run VerifyRun
	if err := json.Unmarshal([]byte(v), &run); err != nil {
		return ChainStatus{Text: fmt.Sprintf("the last verify record (%d) is unreadable: %v", seq, err)}
	}
	cs := ChainStatus{VerifySeq: seq, VerifyHead: run.Head, VerifyAt: run.At}
	switch {
	case !run.OK:
		cs.Text = fmt.Sprintf("verify of %s failed: %d problems", run.At, run.Problems)
		if len(run.First) > 0 {
			cs.Text += ": " + strings.Join(run.First, "; ")
		}
	case run.Head < last:
		cs.Text = fmt.Sprintf("verify of %s covered the journal up to event %d; the batch's last event is %d: verify again", run.At, run.Head, last)
	default:
		cs.Verified = true
		cs.Text = fmt.Sprintf("hash chain and invariants verified up to event %d (%s, %d events)", run.Head, run.At, run.Events)
	}
	return cs
}
