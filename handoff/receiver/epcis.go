package receiver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"
)

// Capture is a stand-in EPCIS 2.0 capture interface:
//
//	POST /capture            an EPCISDocument (application/ld+json, application/json
//	                         or application/xml) → 202 Accepted, Location: /capture/{id}
//	GET  /capture/{id}       the capture job: captureID, createdAt, finishedAt,
//	                         running, success, captureErrorBehaviour, errors[]
//	GET  /summary            the receiver's Summary as JSON
//
// A document that cannot be read is answered 400 at once; one that reads but
// fails the checks becomes a job that ends with success=false and its errors
// (RFC 7807 problems), under the GS1-Capture-Error-Behaviour asked for
// (rollback, the default: nothing of it is captured).
type Capture struct{ *server }

// NewCapture makes a capture receiver; Start listens.
func NewCapture(cfg Config, log *slog.Logger) (*Capture, error) {
	s, err := newServer("epcis-capture", cfg, log)
	if err != nil {
		return nil, err
	}
	return &Capture{s}, nil
}

// Start listens and serves in the background.
func (c *Capture) Start() error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /capture", c.capture)
	mux.HandleFunc("GET /capture/{id}", c.status)
	mux.HandleFunc("GET /summary", c.serveSummary)
	return c.start(mux)
}

// admit applies the submission's behaviour; false: the request is answered.
func (s *server) admit(w http.ResponseWriter, r *http.Request, fail func(status int, code, msg string)) (Behaviour, bool) {
	if !s.authorized(w, r) {
		return "", false
	}
	b := s.next()
	switch b {
	case Hang:
		s.hang(r)
		return b, false
	case Unavailable:
		s.count(func(m *Summary) { m.Failed++ })
		w.Header().Set("Retry-After", "1")
		fail(http.StatusServiceUnavailable, "unavailable", "the receiver is unavailable (test behaviour 5xx)")
		return b, false
	case Refuse:
		s.count(func(m *Summary) { m.Refused++ })
		reason := s.cfg.RefuseReason
		if reason == "" {
			reason = "the receiver refuses this submission (test behaviour refuse)"
		}
		fail(http.StatusUnprocessableEntity, "refused", reason)
		return b, false
	}
	return b, true
}

// body reads a submission's body, at most MaxBody bytes.
func (s *server) body(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if int64(len(data)) > s.cfg.MaxBody {
		return nil, fmt.Errorf("the body is larger than %d bytes", s.cfg.MaxBody)
	}
	return data, nil
}

func (c *Capture) capture(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) { c.problem(w, status, code, msg) }
	b, ok := c.admit(w, r, fail)
	if !ok {
		return
	}
	mode := r.Header.Get("GS1-Capture-Error-Behaviour")
	switch mode {
	case "":
		mode = "rollback"
	case "rollback", "proceed":
	default:
		c.count(func(m *Summary) { m.Refused++ })
		fail(http.StatusBadRequest, "ValidationException", fmt.Sprintf("GS1-Capture-Error-Behaviour %q, want rollback or proceed", mode))
		return
	}
	data, err := c.body(r)
	if err != nil {
		c.count(func(m *Summary) { m.Refused++ })
		fail(http.StatusRequestEntityTooLarge, "CaptureLimitExceededException", err.Error())
		return
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		key = "sha256:" + sha
	}
	if j := c.lookup(key); j != nil {
		c.note(key, sha, "duplicate")
		c.accepted(w, j.id)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var rep Report
	var ids idSet
	switch ct {
	case "application/ld+json", "application/json":
		rep, ids, err = checkEPCISJSON(data)
		if err == nil && c.cfg.ValidateJSON != nil {
			if verr := c.cfg.ValidateJSON(bytes.NewReader(data)); verr != nil {
				rep.Problems = append(rep.Problems, "EPCIS JSON schema: "+verr.Error())
			}
		}
	case "application/xml", "text/xml":
		rep, ids, err = checkEPCISXML(data)
	default:
		c.count(func(m *Summary) { m.Refused++ })
		c.note(key, sha, "refused")
		fail(http.StatusUnsupportedMediaType, "ValidationException", fmt.Sprintf("content type %q, want application/ld+json, application/json or application/xml", ct))
		return
	}
	if err != nil {
		c.count(func(m *Summary) { m.Refused++ })
		c.note(key, sha, "refused")
		fail(http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	rep.Key = key
	c.mu.Lock()
	rep.finish(c.expected, ids.has)
	c.mu.Unlock()
	j := c.add(key, rep, b, mode)
	c.log.Info("capture", "key", key, "report", rep.Text)
	if b == LoseAnswer {
		c.note(key, sha, "lost-answer")
		c.count(func(m *Summary) { m.Failed++ })
		fail(http.StatusServiceUnavailable, "unavailable", "the answer was lost (test behaviour lose-answer; the document was processed)")
		return
	}
	c.note(key, sha, "new")
	c.accepted(w, j.id)
}

func (c *Capture) accepted(w http.ResponseWriter, id string) {
	w.Header().Set("Location", "/capture/"+id)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]string{"captureID": id})
}

// CaptureJob is the capture job resource of EPCIS 2.0 (JSON binding), plus
// the receiver's plain report.
type CaptureJob struct {
	CaptureID             string    `json:"captureID"`
	CreatedAt             time.Time `json:"createdAt"`
	FinishedAt            time.Time `json:"finishedAt,omitzero"`
	Running               bool      `json:"running"`
	Success               bool      `json:"success"`
	CaptureErrorBehaviour string    `json:"captureErrorBehaviour"`
	Errors                []Problem `json:"errors"`
	Report                string    `json:"report,omitempty"`
}

// Problem is an RFC 7807 problem, as EPCIS 2.0 reports capture errors.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (c *Capture) status(w http.ResponseWriter, r *http.Request) {
	if !c.authorized(w, r) {
		return
	}
	id := r.PathValue("id")
	j, running, ok := c.job(id)
	if !ok {
		c.problem(w, http.StatusNotFound, "NoSuchResourceException", fmt.Sprintf("no capture job %q", id))
		return
	}
	if j.garbage {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{\"captureID\": \"garbage <<< not json")
		return
	}
	cj := CaptureJob{CaptureID: j.id, CreatedAt: j.created, Running: running, CaptureErrorBehaviour: j.mode,
		Errors: []Problem{}}
	if !running {
		cj.FinishedAt = j.readyAt
		cj.Success = j.report.OK
		cj.Report = j.report.Text
		for _, p := range j.report.Problems {
			cj.Errors = append(cj.Errors, Problem{Type: "epcisException:ValidationException", Title: "ValidationException", Status: 400, Detail: p})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(cj)
}
