package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/internal/killpoint"
)

// Signer is an authenticated user, as the Authenticator vouches for them.
type Signer struct {
	User     string   `json:"user"`
	FullName string   `json:"full_name"`
	Roles    []string `json:"roles"`
}

// Authenticator checks a user's password again at the moment of signing
// (the accounts package implements it; tests use a fake). A wrong password
// or an unknown, locked or disabled account is an error; the error text is
// shown to the signer, so it must not say which of these it was.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) (Signer, error)
}

// ErrAuth wraps every authentication failure of Sign.
var ErrAuth = errors.New("signature refused: user or password wrong, or not allowed to sign")

// ErrBlocked: a "released" signature on a record whose rules do not all pass.
var ErrBlocked = errors.New("release blocked")

// Meaning is what a signature means.
type Meaning string

const (
	Released Meaning = "released"
	Rejected Meaning = "rejected"
)

// ParseMeaning accepts "released" or "rejected".
func ParseMeaning(s string) (Meaning, error) {
	switch Meaning(s) {
	case Released, Rejected:
		return Meaning(s), nil
	}
	return "", fmt.Errorf("meaning %q: want released or rejected", s)
}

// Signatures is the release's signature policy.
type Signatures string

const (
	Single   Signatures = "single"    // one QA signature releases
	FourEyes Signatures = "four-eyes" // two, by different users
)

// Activation says when a released batch's codes become active.
type Activation string

const (
	// ActivateSeparately: Activate is its own step (the default): QA
	// triggers it after the release, e.g. when the hand-off may start.
	ActivateSeparately Activation = "separate"
	// ActivateOnRelease: the release activates the batch at once.
	ActivateOnRelease Activation = "on-release"
)

// Config is the release's settings.
type Config struct {
	Signatures Signatures `json:"signatures"` // single (default) or four-eyes
	Role       string     `json:"role"`       // the role a signer must hold; default "qa"
	Activation Activation `json:"activation"` // separate (default) or on-release
}

// Validate checks a Config; messages name the field.
func (c Config) Validate() error {
	switch c.Signatures {
	case "", Single, FourEyes:
	default:
		return fmt.Errorf("release.signatures: %q, want single or four-eyes", c.Signatures)
	}
	switch c.Activation {
	case "", ActivateSeparately, ActivateOnRelease:
	default:
		return fmt.Errorf("release.activation: %q, want separate or on-release", c.Activation)
	}
	if c.Role != "" && (len(c.Role) > 64 || strings.ContainsAny(c.Role, " \t\r\n")) {
		return fmt.Errorf("release.role: %q is not a role name", c.Role)
	}
	return nil
}

func (c Config) required() int {
	if c.Signatures == FourEyes {
		return 2
	}
	return 1
}

// Clock is the time source.
type Clock interface{ Now() time.Time }

type sysClock struct{}

func (sysClock) Now() time.Time { return time.Now() }

// Desk is QA's release desk for one ledger.
type Desk struct {
	cfg   Config
	l     Ledger
	auth  Authenticator
	clock Clock
	log   *slog.Logger
	scans scanCache // the journal pass per batch, read on from where it stopped
}

// New checks cfg and returns a Desk. clock may be nil (the system clock).
func New(cfg Config, l Ledger, auth Authenticator, clock Clock, log *slog.Logger) (*Desk, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if l == nil || auth == nil {
		return nil, errors.New("release: a ledger and an authenticator are required")
	}
	if cfg.Role == "" {
		cfg.Role = "qa"
	}
	if cfg.Signatures == "" {
		cfg.Signatures = Single
	}
	if cfg.Activation == "" {
		cfg.Activation = ActivateSeparately
	}
	if clock == nil {
		clock = sysClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Desk{cfg: cfg, l: l, auth: auth, clock: clock, log: log}, nil
}

// Record builds the batch record with its rules and signatures' status.
func (d *Desk) Record(ctx context.Context, batch string) (*Record, error) {
	return build(ctx, d.l, batch, d.cfg.required(), d.clock.Now(), &d.scans)
}

// Verify runs a full verify of the ledger (hash chain, replay, invariants)
// and journals its outcome under VerifyKey, where the verify rule finds it.
// It takes as long as the ledger is big (minutes for millions of codes): run
// it when the batch completes, not at the signature.
func (d *Desk) Verify(ctx context.Context, by aggregation.Actor) (VerifyRun, error) {
	head := d.l.Head()
	t0 := time.Now()
	rep, err := d.l.Verify(ctx)
	if err != nil {
		return VerifyRun{}, fmt.Errorf("verify: %w", err)
	}
	run := VerifyRun{OK: rep.OK(), Head: head, Events: rep.Events, Problems: len(rep.Problems) + rep.Truncated,
		At: ts(d.clock.Now()), Seconds: time.Since(t0).Seconds()}
	for _, p := range rep.Problems[:min(len(rep.Problems), 5)] {
		run.First = append(run.First, clip(p, 300))
	}
	v, err := json.Marshal(run)
	if err != nil {
		return run, err
	}
	if _, err := d.l.Record(ctx, aggregation.Record{Type: TypeVerify, Key: VerifyKey, Value: string(v)}, by); err != nil {
		return run, fmt.Errorf("journal the verify: %w", err)
	}
	return run, nil
}

// SignRequest is one signature: the user re-enters the password, chooses a
// meaning and writes a comment. Hash, if set, is the record hash the signer
// was shown: the signature is refused if the record changed since.
type SignRequest struct {
	Batch    string
	User     string
	Password string
	Meaning  Meaning
	Comment  string
	Hash     string
}

// SignatureRecord is the journaled signature (Record type "signature"). It
// binds who signed (user, full name), when, what it means, the comment and
// the SHA-256 of the batch record as signed; Binding is the SHA-256 over
// those fields (bindingInput), so that any edit of the journaled JSON shows.
type SignatureRecord struct {
	Batch      string   `json:"batch"`
	User       string   `json:"user"`
	FullName   string   `json:"full_name"`
	Roles      []string `json:"roles"`
	Meaning    Meaning  `json:"meaning"`
	Comment    string   `json:"comment"`
	At         string   `json:"at"` // RFC 3339 UTC
	RecordHash string   `json:"record_hash"`
	Binding    string   `json:"binding"`
}

func (s SignatureRecord) bindingInput() string {
	// Length-prefixed fields: no field can run into the next.
	var b strings.Builder
	for _, f := range []string{"tracline-signature-v1", s.Batch, s.User, s.FullName, string(s.Meaning), s.Comment, s.At, s.RecordHash} {
		fmt.Fprintf(&b, "%d:%s\n", len(f), f)
	}
	return b.String()
}

func (s SignatureRecord) binding() string {
	h := sha256.Sum256([]byte(s.bindingInput()))
	return hex.EncodeToString(h[:])
}

// SigState is a signature's standing on the current record.
type SigState string

const (
	SigValid SigState = "valid" // binds the record as it is now
	SigVoid  SigState = "void"  // the record changed after it, or it was voided
	SigFinal SigState = "final" // part of the decision the ledger holds (released or rejected)
)

// SignatureStatus is a journaled signature as shown on the record.
type SignatureStatus struct {
	SignatureRecord
	Seq   uint64   `json:"seq"`
	State SigState `json:"state"`
	Why   string   `json:"why,omitempty"` // why void
}

type sigEvent struct {
	seq    uint64
	rec    SignatureRecord
	voided string
}

type sigVoid struct {
	Signature uint64 `json:"signature"` // seq of the signature record voided
	Why       string `json:"why"`
}

func signatureStatus(sigs []sigEvent, hash string, st aggregation.BatchState) []SignatureStatus {
	decided := st == aggregation.BatchReleased || st == aggregation.BatchQARejected || st == aggregation.BatchActive || st == aggregation.BatchHandedOff
	out := make([]SignatureStatus, 0, len(sigs))
	for _, s := range sigs {
		ss := SignatureStatus{SignatureRecord: s.rec, Seq: s.seq, State: SigValid}
		switch {
		case s.rec.binding() != s.rec.Binding:
			ss.State, ss.Why = SigVoid, "the signature record does not match its binding hash"
		case s.voided != "":
			ss.State, ss.Why = SigVoid, s.voided
		case s.rec.RecordHash != hash:
			ss.State = SigVoid
			ss.Why = fmt.Sprintf("the batch record changed after this signature (signed %.12s…, now %.12s…): sign again", s.rec.RecordHash, hash)
		case decided:
			ss.State = SigFinal
		}
		out = append(out, ss)
	}
	return out
}

// Outcome is what a Sign did.
type Outcome struct {
	Record    *Record         // the record as signed (with this signature)
	Signature SignatureStatus // the new signature
	Voided    []uint64        // earlier signatures voided now (record changed)
	// Decided: the ledger now holds the batch's release decision
	// (Store.Release); false while a second signature is awaited.
	Decided   bool
	State     aggregation.BatchState
	Activated bool
	Waiting   string // what is still needed, if not decided
}

// Sign authenticates the signer, checks the rules and journals the
// signature; once the required signatures are present it records the
// decision in the ledger (Store.Release) and, with Activation on-release,
// activates a released batch. A "rejected" signature decides at once (the
// batch is quarantined); "released" needs every rule ok and, with
// four-eyes, two valid signatures by different users. Earlier signatures
// that no longer bind the record are voided, journaled and reported.
// Nothing is journaled when Sign refuses. A signer whose own journaled
// "released" signature already completes the required ones while the
// ledger holds no decision (the controller stopped between the two) signs
// again to have that decision recorded: no second signature is journaled.
func (d *Desk) Sign(ctx context.Context, req SignRequest) (*Outcome, error) {
	if req.Batch == "" {
		return nil, errors.New("sign: batch is empty")
	}
	if _, err := ParseMeaning(string(req.Meaning)); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	comment := strings.TrimSpace(req.Comment)
	if comment == "" {
		return nil, errors.New("sign: a comment is required")
	}
	if len(comment) > 2000 || !utf8.ValidString(comment) {
		return nil, errors.New("sign: the comment must be valid UTF-8 of at most 2000 bytes")
	}
	signer, err := d.auth.Authenticate(ctx, req.User, req.Password)
	if err != nil {
		d.log.Warn("release: signature refused", "user", req.User, "batch", req.Batch, "err", err)
		return nil, fmt.Errorf("%w", ErrAuth)
	}
	if signer.User != req.User || !slices.Contains(signer.Roles, d.cfg.Role) {
		return nil, fmt.Errorf("%w (the %s role is required)", ErrAuth, d.cfg.Role)
	}
	if signer.FullName == "" {
		return nil, fmt.Errorf("sign: account %s has no full name: a signature shows it", signer.User)
	}
	rec, err := d.Record(ctx, req.Batch)
	if err != nil {
		return nil, err
	}
	switch rec.State {
	case aggregation.BatchOpen, aggregation.BatchComplete:
	default:
		return nil, fmt.Errorf("sign: batch %s is %s: the decision is taken: %w", req.Batch, rec.State, aggregation.ErrRefused)
	}
	if req.Hash != "" && req.Hash != rec.Hash {
		return nil, fmt.Errorf("sign: the batch record changed since it was shown (shown %.12s…, now %.12s…): review it again: %w", req.Hash, rec.Hash, aggregation.ErrRefused)
	}
	if req.Meaning == Released && !rec.Releasable() {
		return nil, fmt.Errorf("sign: %w: %s", ErrBlocked, blockers(rec))
	}
	var valid []SignatureStatus
	var toVoid []SignatureStatus
	for _, s := range rec.Signatures {
		switch {
		case s.State == SigValid:
			valid = append(valid, s)
		case s.State == SigVoid && !journaledVoid(rec, s.Seq):
			toVoid = append(toVoid, s)
		}
	}
	by := aggregation.Actor{Kind: aggregation.ActorUser, ID: signer.User}
	if req.Meaning == Released {
		for _, s := range valid {
			if s.User != signer.User {
				continue
			}
			if s.Meaning == Released && len(valid) >= d.cfg.required() && len(toVoid) == 0 {
				// The signer's journaled signature already completes the
				// required ones, yet the decision is not in the ledger: the
				// controller stopped between the two. The signer, having
				// authenticated again, has the decision finished with the
				// signatures as journaled (no second one of theirs).
				return d.finishDecision(ctx, req.Batch, s, by)
			}
			return nil, fmt.Errorf("sign: %s already signed this record (event %d): the second signature must be another user's: %w", signer.User, s.Seq, aggregation.ErrRefused)
		}
	}
	out := &Outcome{}
	for _, s := range toVoid {
		v, _ := json.Marshal(sigVoid{Signature: s.Seq, Why: s.Why})
		if _, err := d.l.Record(ctx, aggregation.Record{Type: TypeSigVoid, Batch: req.Batch, Value: string(v)}, by); err != nil {
			return nil, fmt.Errorf("sign: journal the voided signature %d: %w", s.Seq, err)
		}
		out.Voided = append(out.Voided, s.Seq)
		d.log.Info("release: signature voided", "batch", req.Batch, "signature", s.Seq, "why", s.Why)
	}
	now := d.clock.Now().UTC()
	sr := SignatureRecord{Batch: req.Batch, User: signer.User, FullName: signer.FullName, Roles: signer.Roles,
		Meaning: req.Meaning, Comment: comment, At: ts(now), RecordHash: rec.Hash}
	sr.Binding = sr.binding()
	v, err := json.Marshal(sr)
	if err != nil {
		return nil, err
	}
	seq, err := d.l.Record(ctx, aggregation.Record{Type: TypeSignature, Batch: req.Batch, Value: string(v)}, by)
	if err != nil {
		return nil, fmt.Errorf("sign: journal the signature: %w", err)
	}
	out.Signature = SignatureStatus{SignatureRecord: sr, Seq: seq, State: SigValid}
	decide := req.Meaning == Rejected || len(valid)+1 >= d.cfg.required()
	if decide {
		killpoint.Hit(killpoint.ReleaseDecision) // crash campaign only (inert unless armed)
		sig := aggregation.Signature{User: signer.User, Meaning: string(req.Meaning), Comment: comment, At: now, Hash: rec.Hash}
		if err := d.l.Release(ctx, req.Batch, sig, by); err != nil {
			return nil, fmt.Errorf("sign: the signature is journaled (event %d) but the ledger refused the decision: %w", seq, err)
		}
		out.Decided = true
		if req.Meaning == Released && d.cfg.Activation == ActivateOnRelease {
			if err := d.l.Activate(ctx, req.Batch, by); err != nil {
				return nil, fmt.Errorf("sign: released, but activation failed: %w", err)
			}
			out.Activated = true
		}
	} else {
		out.Waiting = fmt.Sprintf("%d of %d signatures: a second QA user must sign this record", len(valid)+1, d.cfg.required())
	}
	if out.Record, err = d.Record(ctx, req.Batch); err != nil {
		return out, err
	}
	out.State = out.Record.State
	for _, s := range out.Record.Signatures {
		if s.Seq == seq {
			out.Signature = s
		}
	}
	d.log.Info("release: signed", "batch", req.Batch, "user", signer.User, "meaning", req.Meaning, "hash", rec.Hash, "decided", out.Decided)
	return out, nil
}

// finishDecision records the release decision a journaled signature made
// but the ledger never got (a crash between the signature and
// Store.Release), and activates as the policy says.
func (d *Desk) finishDecision(ctx context.Context, batch string, s SignatureStatus, by aggregation.Actor) (*Outcome, error) {
	at, err := time.Parse(time.RFC3339Nano, s.At)
	if err != nil {
		return nil, fmt.Errorf("sign: the journaled signature %d has an unreadable time %q: %w", s.Seq, s.At, err)
	}
	sig := aggregation.Signature{User: s.User, Meaning: string(s.Meaning), Comment: s.Comment, At: at, Hash: s.RecordHash}
	if err := d.l.Release(ctx, batch, sig, by); err != nil {
		return nil, fmt.Errorf("sign: finishing the decision of signature %d: %w", s.Seq, err)
	}
	out := &Outcome{Signature: s, Decided: true}
	if s.Meaning == Released && d.cfg.Activation == ActivateOnRelease {
		if err := d.l.Activate(ctx, batch, by); err != nil {
			return nil, fmt.Errorf("sign: released, but activation failed: %w", err)
		}
		out.Activated = true
	}
	if out.Record, err = d.Record(ctx, batch); err != nil {
		return out, err
	}
	out.State = out.Record.State
	for _, x := range out.Record.Signatures {
		if x.Seq == s.Seq {
			out.Signature = x
		}
	}
	d.log.Info("release: an interrupted decision finished", "batch", batch, "signature", s.Seq, "user", s.User, "meaning", s.Meaning)
	return out, nil
}

func journaledVoid(rec *Record, seq uint64) bool {
	for _, s := range rec.Signatures {
		if s.Seq == seq && s.State == SigVoid && strings.HasPrefix(s.Why, voidedPrefix) {
			return true
		}
	}
	return false
}

const voidedPrefix = "voided: "

func blockers(rec *Record) string {
	var parts []string
	for _, r := range rec.Rules {
		if r.Status != RuleOK {
			s := r.ID + ": " + r.Detail
			if len(r.Items) > 0 {
				s += " (" + strings.Join(r.Items, "; ")
				if r.More > 0 {
					s += fmt.Sprintf("; … %d more", r.More)
				}
				s += ")"
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " | ")
}

// Activate makes a released batch's codes active (Store.Activate). The
// ledger refuses any other state: a rejected batch is quarantined.
func (d *Desk) Activate(ctx context.Context, batch string, by aggregation.Actor) error {
	if err := d.l.Activate(ctx, batch, by); err != nil {
		return fmt.Errorf("activate %s: %w", batch, err)
	}
	return nil
}
