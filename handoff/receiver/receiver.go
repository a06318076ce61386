package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Behaviour is how a receiver answers a document's submission.
type Behaviour string

const (
	// Accept validates the document and processes it (the default).
	Accept Behaviour = "accept"
	// Refuse answers 422 with Config.RefuseReason; nothing is kept.
	Refuse Behaviour = "refuse"
	// Hang never answers: the handler waits until the client gives up.
	Hang Behaviour = "hang"
	// Unavailable answers 503 without reading the document.
	Unavailable Behaviour = "5xx"
	// LoseAnswer processes the document, then answers 503 as if the answer
	// was lost on the way: the sender resends it, and the idempotency key
	// makes the second submission the same job (counted once).
	LoseAnswer Behaviour = "lose-answer"
	// Slow processes the document in Config.ProcessFor (default one hour)
	// of the receiver's clock; until then the job is pending.
	Slow Behaviour = "slow"
	// Garbage answers the status question (the capture job, the upload's
	// processing status) with a body that is not JSON.
	Garbage Behaviour = "garbage"
)

func (b Behaviour) valid() bool {
	switch b {
	case Accept, Refuse, Hang, Unavailable, LoseAnswer, Slow, Garbage:
		return true
	}
	return false
}

// Clock tells the receiver the time; tests use a settable one.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config configures a stand-in receiver.
type Config struct {
	// Listen is the address; "127.0.0.1:0" (any free port) if empty.
	Listen string
	// Token, if set, is required as "Authorization: Bearer <token>".
	Token string
	// Behaviour is the default answer to a submission (Accept if empty).
	Behaviour Behaviour
	// RefuseReason is what Refuse says.
	RefuseReason string
	// ProcessFor is how long Slow processing takes (one hour if zero).
	ProcessFor time.Duration
	// ValidateJSON, if set, checks an EPCIS JSON document against the
	// EPCIS 2.0 JSON schema (handoff/epcisschema.ValidateJSON); without it
	// the capture receiver checks the structure only.
	ValidateJSON func(io.Reader) error
	// Clock is time.Now if nil.
	Clock Clock
	// MaxBody caps a submission's size (1 GiB if zero).
	MaxBody int64
	// OnSubmission, if set, is called with the behaviour each submission
	// gets, as it arrives (tests wait on it).
	OnSubmission func(Behaviour)
}

// Validate checks a receiver's configuration.
func (c Config) Validate() error {
	if c.Behaviour != "" && !c.Behaviour.valid() {
		return fmt.Errorf("receiver.behaviour: %q is not one of accept, refuse, hang, 5xx, lose-answer, slow, garbage", c.Behaviour)
	}
	if c.ProcessFor < 0 {
		return fmt.Errorf("receiver.process_for: %v is negative", c.ProcessFor)
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("receiver.max_body: %d is negative", c.MaxBody)
	}
	return nil
}

// Report is what a receiver found in one document.
type Report struct {
	Key      string         `json:"key"`    // the idempotency key (the sender's document id)
	Format   string         `json:"format"` // epcis-json, epcis-xml or msfx-xml
	Batch    string         `json:"batch,omitempty"`
	Events   map[string]int `json:"events,omitempty"` // EPCIS: events per type; relation: codes per packLayer ("L1"…)
	Codes    int            `json:"codes"`            // distinct identifiers seen
	Expected int            `json:"expected"`         // codes the receiver was told to expect for the batch
	Missing  []string       `json:"missing,omitempty"`
	// MissingCount is len(Missing) before it was cut to 20.
	MissingCount int      `json:"missing_count,omitempty"`
	Problems     []string `json:"problems,omitempty"`
	OK           bool     `json:"ok"`
	Text         string   `json:"text"` // the report in one plain sentence
}

func (r *Report) finish(expected map[string][]string, seen func(string) bool) {
	want := expected[r.Batch]
	if want == nil && len(expected) == 1 && r.Batch == "" {
		for b, w := range expected {
			r.Batch, want = b, w
		}
	}
	r.Expected = len(want)
	for _, c := range want {
		if !seen(c) {
			r.MissingCount++
			if len(r.Missing) < 20 {
				r.Missing = append(r.Missing, c)
			}
		}
	}
	if r.MissingCount > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d of the %d expected codes of batch %q are missing (first: %s)",
			r.MissingCount, r.Expected, r.Batch, strings.Join(r.Missing, ", ")))
	}
	r.OK = len(r.Problems) == 0
	var b strings.Builder
	fmt.Fprintf(&b, "%s document %s", r.Format, r.Key)
	if r.Batch != "" {
		fmt.Fprintf(&b, " of batch %s", r.Batch)
	}
	fmt.Fprintf(&b, ": %d codes", r.Codes)
	if len(r.Events) > 0 {
		keys := make([]string, 0, len(r.Events))
		for k := range r.Events {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, r.Events[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	switch {
	case !r.OK:
		fmt.Fprintf(&b, "; NOT accepted: %s", strings.Join(r.Problems, "; "))
	case r.Expected > 0:
		fmt.Fprintf(&b, "; all %d expected codes present; accepted", r.Expected)
	default:
		b.WriteString("; accepted (no expected code list to check against)")
	}
	r.Text = b.String()
}

// Summary is what a receiver has seen since it started.
type Summary struct {
	Kind       string `json:"kind"`       // "epcis-capture" or "platform-upload"
	Received   int    `json:"received"`   // submissions past the token check, whatever became of them
	Accepted   int    `json:"accepted"`   // distinct documents processed successfully
	Rejected   int    `json:"rejected"`   // distinct documents whose content failed the checks
	Duplicates int    `json:"duplicates"` // submissions of a key already known (counted once)
	Refused    int    `json:"refused"`    // submissions answered 4xx
	Failed     int    `json:"failed"`     // submissions answered 5xx (or not at all)
	// Conflicts are submissions under a key already known whose content
	// differs from the first one's (a sender that reuses a document id
	// for another document).
	Conflicts int      `json:"conflicts"`
	Reports   []Report `json:"reports"`
	// Submissions are every submission whose content was read, in order.
	Submissions []Submission `json:"submissions"`
	Text        string       `json:"text"`
}

// Submission is one submission whose content the receiver read: its
// idempotency key, the SHA-256 of the document in it (the EPCIS body, the
// relation XML inside the upload's zip) and what became of it.
type Submission struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"` // "" if the content could not be read
	// Became: new (processed: a job made), duplicate (a known key: the
	// same job answered), lost-answer (processed, the answer "lost"),
	// refused (unreadable, answered 4xx).
	Became string `json:"became"`
}

// job is one document's processing, by idempotency key.
type job struct {
	id      string
	key     string
	readyAt time.Time
	created time.Time
	report  Report
	garbage bool   // the status question is answered with garbage
	mode    string // EPCIS: the capture error behaviour asked for
}

// server is what both receivers share: the HTTP server, behaviours, the
// jobs by idempotency key and the summary.
type server struct {
	kind  string
	cfg   Config
	log   *slog.Logger
	clock Clock

	mu       sync.Mutex
	script   []Behaviour
	def      Behaviour
	expected map[string][]string
	jobs     map[string]*job   // by idempotency key
	content  map[string]string // the first content SHA-256 seen per key
	byID     map[string]*job
	sum      Summary
	nextID   int

	ln   net.Listener
	srv  *http.Server
	quit chan struct{}
	done chan struct{}
}

func newServer(kind string, cfg Config, log *slog.Logger) (*server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.ProcessFor == 0 {
		cfg.ProcessFor = time.Hour
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 30
	}
	def := cfg.Behaviour
	if def == "" {
		def = Accept
	}
	return &server{kind: kind, cfg: cfg, log: log, clock: cfg.Clock, def: def,
		expected: map[string][]string{}, jobs: map[string]*job{}, byID: map[string]*job{}, content: map[string]string{},
		sum: Summary{Kind: kind}, quit: make(chan struct{})}, nil
}

func (s *server) start(h http.Handler) error {
	addr := s.cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s receiver: listen %s: %w", s.kind, addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("receiver stopped", "kind", s.kind, "err", err)
		}
	}()
	return nil
}

// URL is the receiver's base URL, e.g. http://127.0.0.1:41234.
func (s *server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server (hanging handlers are released).
func (s *server) Close() error {
	if s.srv == nil {
		return nil
	}
	select {
	case <-s.quit:
		return nil
	default:
		close(s.quit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// Behave queues behaviours: each submission takes the next; once the queue
// is empty the default (Config.Behaviour) applies again.
func (s *server) Behave(b ...Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, b...)
}

// Forget drops every job, as a receiver restarted without its state would:
// status questions about them are answered 404.
func (s *server) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs, s.byID = map[string]*job{}, map[string]*job{}
}

// SetDefault changes the default behaviour.
func (s *server) SetDefault(b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = b
}

// Expect tells the receiver the codes a batch's documents must contain
// (every commissioned code, as it appears in the document).
func (s *server) Expect(batch string, codes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expected[batch] = append([]string(nil), codes...)
}

func (s *server) next() Behaviour {
	s.mu.Lock()
	s.sum.Received++
	b := s.def
	if len(s.script) > 0 {
		b = s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	if s.cfg.OnSubmission != nil {
		s.cfg.OnSubmission(b)
	}
	return b
}

// Summary returns what the receiver has seen.
func (s *server) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sum
	out.Reports = append([]Report(nil), s.sum.Reports...)
	out.Submissions = append([]Submission(nil), s.sum.Submissions...)
	out.Text = fmt.Sprintf("%s receiver: %d submissions, %d documents accepted, %d rejected, %d duplicate submissions counted once, %d refused, %d failed, %d conflicting",
		s.kind, out.Received, out.Accepted, out.Rejected, out.Duplicates, out.Refused, out.Failed, out.Conflicts)
	return out
}

func (s *server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Token == "" || r.Header.Get("Authorization") == "Bearer "+s.cfg.Token {
		return true
	}
	s.count(func(m *Summary) { m.Refused++ })
	s.problem(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
	return false
}

func (s *server) count(f func(*Summary)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.sum)
}

// problem writes an RFC 7807 problem answer.
func (s *server) problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "epcisException:" + title, "title": title, "status": status, "detail": detail})
}

// hang waits until the client gives up or the server closes.
func (s *server) hang(r *http.Request) {
	s.count(func(m *Summary) { m.Failed++ })
	io.Copy(io.Discard, io.LimitReader(r.Body, s.cfg.MaxBody)) // then a client that leaves is noticed
	select {
	case <-r.Context().Done():
	case <-s.quit:
	}
}

// note records a submission's content under its key; a content other than
// the key's first is a conflict.
func (s *server) note(key, sha, became string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, ok := s.content[key]; !ok {
		s.content[key] = sha
	} else if first != sha {
		s.sum.Conflicts++
	}
	s.sum.Submissions = append(s.sum.Submissions, Submission{Key: key, SHA256: sha, Became: became})
}

// lookup returns the job already made for key, counting a duplicate.
// A key whose document was rejected may be submitted again (after the
// sender corrected something outside the document): it gets a new job.
func (s *server) lookup(key string) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[key]
	if j == nil || !j.report.OK {
		return nil
	}
	s.sum.Duplicates++
	return j
}

// add makes a job for a validated document.
func (s *server) add(key string, rep Report, b Behaviour, mode string) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[key]; j != nil && j.report.OK { // raced with a duplicate
		s.sum.Duplicates++
		return j
	}
	s.nextID++
	now := s.clock.Now()
	j := &job{id: fmt.Sprintf("job-%d", s.nextID), key: key, created: now, readyAt: now, report: rep,
		garbage: b == Garbage, mode: mode}
	if b == Slow {
		j.readyAt = now.Add(s.cfg.ProcessFor)
	}
	s.jobs[key] = j
	s.byID[j.id] = j
	if rep.OK {
		s.sum.Accepted++
	} else {
		s.sum.Rejected++
	}
	s.sum.Reports = append(s.sum.Reports, rep)
	return j
}

// job returns a job by id (a copy) and whether it is still running.
func (s *server) job(id string) (job, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.byID[id]
	if j == nil {
		return job{}, false, false
	}
	return *j, s.clock.Now().Before(j.readyAt), true
}

func (s *server) serveSummary(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.Summary())
}
