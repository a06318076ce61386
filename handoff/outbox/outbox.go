package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// Ledger is what the outbox needs of the ledger (*aggregation.Store).
type Ledger interface {
	Record(ctx context.Context, rec aggregation.Record, by aggregation.Actor) (uint64, error)
	Meta(ctx context.Context, key string) (string, uint64, error)
	MetaPrefix(ctx context.Context, prefix string, fn func(key, value string, seq uint64) error) error
	Trail(ctx context.Context, batch string, fn func(aggregation.Event) error) error
	Summary(ctx context.Context, batch string) (aggregation.BatchSummary, error)
	HandedOff(ctx context.Context, batch, documentID, answer string, by aggregation.Actor) error
	Lookup(ctx context.Context, code tracecode.Code) (aggregation.CodeInfo, error)
}

// Clock tells the outbox the time.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options are the outbox's collaborators; all optional.
type Options struct {
	Logger *slog.Logger
	// Clock is time.Now if nil. Run waits in real time; Step uses only it.
	Clock Clock
	// Client is the HTTP client of the built-in adapters.
	Client *http.Client
	// Adapters replace the built-in adapter of a kind (a real platform's).
	Adapters map[Kind]Adapter
	// Jitter returns a number in [0, 1) (math/rand/v2 if nil).
	Jitter func() float64
	// OnChange is called after each journaled change of a document.
	OnChange func(Document)
}

// record types journaled by the outbox.
const (
	recDocument  = "outbox.document"   // a document was added
	recAttempt   = "outbox.attempt"    // a send is about to be made
	recAnswer    = "outbox.answer"     // a send's or status question's answer (or failure)
	recResend    = "outbox.resend"     // a user asked for a failed delivery to be sent again
	recReplaced  = "outbox.replaced"   // a new version replaced the document
	recHandedOff = "outbox.handed-off" // the ledger was told
)

const keyPrefix = "outbox/"

var system = aggregation.Actor{Kind: aggregation.ActorSystem, ID: "outbox"}

// Outbox keeps hand-off documents and delivers them.
type Outbox struct {
	cfg      Config
	eps      map[string]Endpoint
	led      Ledger
	log      *slog.Logger
	clock    Clock
	adapters map[Kind]Adapter
	jitter   func() float64
	onChange func(Document)

	mu     sync.Mutex // serializes read-modify-write of documents
	stepMu sync.Mutex // one Step at a time
	kick   chan struct{}
}

// New checks cfg and makes the outbox directory; it sends nothing.
func New(cfg Config, led Ledger, opt Options) (*Outbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if led == nil {
		return nil, errors.New("outbox: no ledger")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("outbox.dir: %w", err)
	}
	o := &Outbox{cfg: cfg, eps: map[string]Endpoint{}, led: led, log: opt.Logger, clock: opt.Clock,
		adapters: map[Kind]Adapter{}, jitter: opt.Jitter, onChange: opt.OnChange, kick: make(chan struct{}, 1)}
	for _, e := range cfg.Endpoints {
		o.eps[e.Name] = e.withDefaults()
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.clock == nil {
		o.clock = realClock{}
	}
	if o.jitter == nil {
		o.jitter = rand.Float64
	}
	client := opt.Client
	if client == nil {
		client = &http.Client{}
	}
	o.adapters[KindEPCIS] = EPCISAdapter{Client: client}
	o.adapters[KindPlatform] = PlatformAdapter{Client: client}
	for k, a := range opt.Adapters {
		o.adapters[k] = a
	}
	return o, nil
}

// Submission describes a document to add.
type Submission struct {
	Batch  string
	Format string // msfx-xml, epcis-json, epcis-xml
	// BatchNumber is the work order's batch number (批号), which the
	// platform knows the batch by; the ledger's batch id if empty.
	BatchNumber string
	// Replaces, if set, is a failed document this one corrects: the new
	// version goes to the endpoints the old one did not reach, and the old
	// one is superseded (it stays visible).
	Replaces string
}

// Formats lists the document formats at least one endpoint takes, in the
// order msfx-xml, epcis-json, epcis-xml.
func (o *Outbox) Formats() []string {
	var out []string
	for _, f := range []string{FormatRelation, FormatEPCISJSON, FormatEPCISXML} {
		for _, e := range o.eps {
			if e.takes(f) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// Add writes a document durably (file fsynced, then journaled) and queues
// it for every endpoint that takes its format. The document's id is
// derived from its batch, format and content: adding the same content
// again returns the document already there. Only an active (released and
// activated) batch's documents are accepted.
func (o *Outbox) Add(ctx context.Context, sub Submission, content io.Reader, by aggregation.Actor) (Document, error) {
	ext, ok := formatExt[sub.Format]
	if !ok {
		return Document{}, fmt.Errorf("outbox: format %q is not msfx-xml, epcis-json or epcis-xml: %w", sub.Format, ErrRefused)
	}
	sum, err := o.led.Summary(ctx, sub.Batch)
	if err != nil {
		return Document{}, fmt.Errorf("outbox: batch %q: %w", sub.Batch, err)
	}
	if sum.State != aggregation.BatchActive && sum.State != aggregation.BatchHandedOff {
		return Document{}, fmt.Errorf("outbox: batch %s is %s; only a released and activated batch is handed off: %w", sub.Batch, sum.State, ErrRefused)
	}
	var old *Document
	if sub.Replaces != "" {
		d, err := o.Get(ctx, sub.Replaces)
		if err != nil {
			return Document{}, fmt.Errorf("outbox: replaces: %w", err)
		}
		if d.Batch != sub.Batch || d.Format != sub.Format {
			return Document{}, fmt.Errorf("outbox: document %s is %s of batch %s, not %s of batch %s: %w", d.ID, d.Format, d.Batch, sub.Format, sub.Batch, ErrRefused)
		}
		if d.State != Failed {
			return Document{}, fmt.Errorf("outbox: document %s is %s; only a failed document is replaced: %w", d.ID, d.State, ErrRefused)
		}
		for _, dl := range d.Deliveries {
			if dl.State != Failed && dl.State != Delivered {
				return Document{}, fmt.Errorf("outbox: document %s is still %s to %s; replace it once that ends: %w", d.ID, dl.State, dl.Endpoint, ErrRefused)
			}
		}
		old = &d
	}
	var targets []Endpoint
	if old != nil {
		for _, dl := range old.Deliveries {
			if dl.State == Delivered {
				continue
			}
			ep, ok := o.eps[dl.Endpoint]
			if !ok {
				return Document{}, fmt.Errorf("outbox: document %s went to endpoint %q, which is no longer configured: %w", old.ID, dl.Endpoint, ErrRefused)
			}
			targets = append(targets, ep)
		}
	} else {
		for _, e := range o.cfg.Endpoints {
			if ep := o.eps[e.Name]; ep.takes(sub.Format) {
				targets = append(targets, ep)
			}
		}
	}
	if len(targets) == 0 {
		return Document{}, fmt.Errorf("outbox: no endpoint takes %s documents (outbox.endpoints): %w", sub.Format, ErrRefused)
	}

	tmp, size, digest, err := o.writeTemp(content)
	if err != nil {
		return Document{}, err
	}
	defer os.Remove(tmp) // a no-op once renamed
	if size == 0 {
		return Document{}, fmt.Errorf("outbox: the %s document of batch %s is empty: %w", sub.Format, sub.Batch, ErrRefused)
	}
	idSum := sha256.Sum256([]byte(sub.Batch + "\x00" + sub.Format + "\x00" + digest))
	id := sub.Format + "-" + hex.EncodeToString(idSum[:12])

	if id == sub.Replaces {
		return Document{}, fmt.Errorf("outbox: the new version of document %s has the same content; resend it instead: %w", id, ErrRefused)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if d, err := o.get(ctx, id); err == nil {
		return d, nil // the same content again
	} else if !errors.Is(err, ErrNotFound) {
		return Document{}, err
	}
	file := id + ext
	if err := os.Rename(tmp, filepath.Join(o.cfg.Dir, file)); err != nil {
		return Document{}, fmt.Errorf("outbox: %w", err)
	}
	if err := syncDir(o.cfg.Dir); err != nil {
		return Document{}, err
	}
	now := o.clock.Now()
	d := Document{ID: id, Batch: sub.Batch, BatchNumber: sub.BatchNumber, Format: sub.Format, Size: size, SHA256: digest, File: file,
		Created: now, Replaces: sub.Replaces}
	for _, ep := range targets {
		d.Deliveries = append(d.Deliveries, Delivery{Endpoint: ep.Name, Kind: ep.Kind, URL: ep.URL, State: Pending, NextAt: now})
	}
	if err := o.save(ctx, &d, recDocument, by); err != nil {
		return Document{}, err
	}
	if old != nil {
		if err := o.supersede(ctx, old.ID, id, by); err != nil {
			return d, err
		}
	}
	o.Kick()
	return d, nil
}

// supersede marks doc as replaced by newID.
func (o *Outbox) supersede(ctx context.Context, id, newID string, by aggregation.Actor) error {
	d, err := o.get(ctx, id)
	if err != nil {
		return err
	}
	if d.ReplacedBy != "" {
		return nil
	}
	d.ReplacedBy = newID
	d.Last = &Attempt{Op: "replace", At: o.clock.Now(), Outcome: "superseded by " + newID, By: by.ID}
	return o.save(ctx, &d, recReplaced, by)
}

// writeTemp writes content to a new file in the directory, fsynced, and
// returns its path, size and hex SHA-256.
func (o *Outbox) writeTemp(content io.Reader) (string, int64, string, error) {
	f, err := os.CreateTemp(o.cfg.Dir, ".incoming-*")
	if err != nil {
		return "", 0, "", fmt.Errorf("outbox: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, "", fmt.Errorf("outbox: writing the document: %w", err)
	}
	return f.Name(), n, hex.EncodeToString(h.Sum(nil)), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("outbox: syncing %s: %w", dir, err)
	}
	return nil
}

// save journals the document's state under its meta key.
func (o *Outbox) save(ctx context.Context, d *Document, typ string, by aggregation.Actor) error {
	d.summarize()
	b, err := json.Marshal(d)
	if err == nil && len(b) > aggregation.MaxRecordValue {
		for i := range d.Deliveries { // keep the journaled state within bounds
			dl := &d.Deliveries[i]
			if len(dl.Errors) > 5 {
				dl.Errors = append(dl.Errors[:5:5], fmt.Sprintf("… and %d more", len(dl.Errors)-5))
			}
			dl.Answer = cut(dl.Answer, 200)
		}
		b, err = json.Marshal(d)
	}
	if err != nil {
		return fmt.Errorf("outbox: document %s: %w", d.ID, err)
	}
	if _, err := o.led.Record(ctx, aggregation.Record{Type: typ, Batch: d.Batch, Key: keyPrefix + d.ID, Value: string(b)}, by); err != nil {
		return fmt.Errorf("outbox: journaling %s of document %s: %w", typ, d.ID, err)
	}
	if o.onChange != nil {
		o.onChange(*d)
	}
	return nil
}

// get reads a document's current state.
func (o *Outbox) get(ctx context.Context, id string) (Document, error) {
	// An id no document can have (empty, too long for a ledger key, a
	// control character) is not found, not a ledger failure.
	if id == "" || len(keyPrefix)+len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Document{}, fmt.Errorf("outbox: document id %q: %w", id, ErrNotFound)
	}
	v, _, err := o.led.Meta(ctx, keyPrefix+id)
	if errors.Is(err, aggregation.ErrNotFound) {
		return Document{}, fmt.Errorf("outbox: document %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Document{}, fmt.Errorf("outbox: document %s: %w", id, err)
	}
	return decodeDoc(id, v)
}

func decodeDoc(id, v string) (Document, error) {
	var d Document
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		return Document{}, fmt.Errorf("outbox: document %s: its journaled state is unreadable: %w", id, err)
	}
	d.Last = nil
	return d, nil
}

// Get returns a document and its deliveries.
func (o *Outbox) Get(ctx context.Context, id string) (Document, error) { return o.get(ctx, id) }

// List returns the documents of a batch ("" for all), oldest first.
func (o *Outbox) List(ctx context.Context, batch string) ([]Document, error) {
	var out []Document
	err := o.led.MetaPrefix(ctx, keyPrefix, func(key, value string, _ uint64) error {
		d, err := decodeDoc(strings.TrimPrefix(key, keyPrefix), value)
		if err != nil {
			return err
		}
		if batch == "" || d.Batch == batch {
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortDocs(out)
	return out, nil
}

func sortDocs(ds []Document) {
	slices.SortFunc(ds, func(a, b Document) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Attempts returns every attempt, answer and user action journaled for a
// document, in journal order (from the batch's audit trail).
func (o *Outbox) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	d, err := o.get(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []Attempt
	err = o.led.Trail(ctx, d.Batch, func(ev aggregation.Event) error {
		if ev.Kind != aggregation.EvRecord || ev.Document != keyPrefix+id {
			return nil
		}
		var rec Document
		if err := json.Unmarshal([]byte(ev.Answer), &rec); err != nil {
			return fmt.Errorf("outbox: journal event %d: %w", ev.Seq, err)
		}
		a := Attempt{Op: "add", At: ev.At, Outcome: "written", By: ev.Actor.ID}
		if rec.Last != nil {
			a = *rec.Last
		} else if ev.Reason == recHandedOff {
			a = Attempt{Op: "handed-off", At: ev.At, Outcome: "the ledger was told"}
		}
		a.Seq = ev.Seq
		out = append(out, a)
		return nil
	})
	return out, err
}

// Resend queues a document's failed deliveries again, with the same id as
// idempotency key and a fresh retry budget, after what was wrong outside
// the document (an endpoint, a token, a receiver) was corrected. A wrong
// document is replaced instead (Add with Submission.Replaces).
func (o *Outbox) Resend(ctx context.Context, id string, by aggregation.Actor) (Document, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d, err := o.get(ctx, id)
	if err != nil {
		return Document{}, err
	}
	if d.ReplacedBy != "" {
		return d, fmt.Errorf("outbox: document %s was replaced by %s: %w", id, d.ReplacedBy, ErrRefused)
	}
	now := o.clock.Now()
	n := 0
	for i := range d.Deliveries {
		dl := &d.Deliveries[i]
		if dl.State != Failed {
			continue
		}
		n++
		dl.State, dl.Sends, dl.Polls, dl.NextAt, dl.Job, dl.Done = Pending, 0, 0, now, "", time.Time{}
		dl.Since = time.Time{}
		dl.Accepted = time.Time{}
		dl.Error, dl.Errors = "", nil
		if ep, ok := o.eps[dl.Endpoint]; ok {
			dl.URL = ep.URL
		}
	}
	if n == 0 {
		return d, fmt.Errorf("outbox: document %s has no failed delivery: %w", id, ErrRefused)
	}
	d.Last = &Attempt{Op: "resend", At: now, Outcome: fmt.Sprintf("%d failed deliveries queued again", n), By: by.ID}
	if err := o.save(ctx, &d, recResend, by); err != nil {
		return Document{}, err
	}
	o.Kick()
	d.Last = nil
	return d, nil
}

// Recall answers the network side of a recall: for a code, its batch, and
// where each of the batch's documents went and what was answered.
type Recall struct {
	Code       tracecode.Code         `json:"code"`
	Batch      string                 `json:"batch"`
	BatchState aggregation.BatchState `json:"batch_state"`
	Documents  []Document             `json:"documents"`
}

// Recall looks a code up and returns its batch's documents.
func (o *Outbox) Recall(ctx context.Context, code tracecode.Code) (Recall, error) {
	info, err := o.led.Lookup(ctx, code)
	if err != nil {
		return Recall{}, fmt.Errorf("outbox: recall %s: %w", code, err)
	}
	if info.Batch == "" {
		return Recall{}, fmt.Errorf("outbox: recall %s: the code is in pool %s, not in a batch: %w", code, info.Pool, ErrNotFound)
	}
	docs, err := o.List(ctx, info.Batch)
	if err != nil {
		return Recall{}, err
	}
	return Recall{Code: code, Batch: info.Batch, BatchState: info.BatchState, Documents: docs}, nil
}

// Kick makes Run look at the documents now.
func (o *Outbox) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}
