package receiver

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Platform is a stand-in for the traceability platform's relation upload
// (the 码上放心 uploadrelation style; the real API is not public here, so the
// wire format is ours, described in docs/handoff-delivery.md):
//
//	POST /relation/upload          JSON Upload → 202 {"process_id", "status":"pending"}
//	GET  /relation/status/{id}     Status: pending | success | failed, with errors
//	GET  /summary                  the receiver's Summary as JSON
//
// An error answer is {"code": "...", "message": "..."} with a 4xx or 5xx status.
type Platform struct{ *server }

// Upload is the body of POST /relation/upload.
type Upload struct {
	DocID    string `json:"doc_id"`
	Batch    string `json:"batch"`
	Format   string `json:"format"`    // "msfx-xml"
	FileName string `json:"file_name"` // the XML's name inside the zip
	SHA256   string `json:"sha256"`    // hex SHA-256 of the XML (not of the zip)
	File     string `json:"file"`      // base64 (standard, padded) of a zip holding the XML
}

// Status is the answer of GET /relation/status/{id}.
type Status struct {
	ProcessID string        `json:"process_id"`
	Status    string        `json:"status"` // pending, success, failed
	Errors    []StatusError `json:"errors"`
	Report    string        `json:"report,omitempty"`
}

// StatusError is one reason a relation file failed.
type StatusError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewPlatform makes a platform-upload receiver; Start listens.
func NewPlatform(cfg Config, log *slog.Logger) (*Platform, error) {
	s, err := newServer("platform-upload", cfg, log)
	if err != nil {
		return nil, err
	}
	return &Platform{s}, nil
}

// Start listens and serves in the background.
func (p *Platform) Start() error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /relation/upload", p.upload)
	mux.HandleFunc("GET /relation/status/{id}", p.status)
	mux.HandleFunc("GET /summary", p.serveSummary)
	return p.start(mux)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (p *Platform) upload(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) { writeJSON(w, status, StatusError{Code: code, Message: msg}) }
	b, ok := p.admit(w, r, fail)
	if !ok {
		return
	}
	refuse := func(code, msg string) {
		p.count(func(m *Summary) { m.Refused++ })
		fail(http.StatusBadRequest, code, msg)
	}
	data, err := p.body(r)
	if err != nil {
		refuse("too_large", err.Error())
		return
	}
	var up Upload
	if err := json.Unmarshal(data, &up); err != nil {
		refuse("bad_request", "the body is not an upload (JSON): "+err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		key = up.DocID
	}
	if key == "" {
		refuse("bad_request", "neither an Idempotency-Key header nor doc_id")
		return
	}
	xmlData, unpackErr := unpack(up)
	sha := ""
	if unpackErr == nil {
		sum := sha256.Sum256(xmlData)
		sha = hex.EncodeToString(sum[:])
	}
	if j := p.lookup(key); j != nil {
		p.note(key, sha, "duplicate")
		writeJSON(w, http.StatusAccepted, Status{ProcessID: j.id, Status: "pending", Errors: []StatusError{}})
		return
	}
	if up.Format != "msfx-xml" {
		p.note(key, sha, "refused")
		refuse("bad_format", fmt.Sprintf("format %q, want msfx-xml", up.Format))
		return
	}
	if unpackErr != nil {
		p.note(key, sha, "refused")
		refuse("bad_file", unpackErr.Error())
		return
	}
	rep, ids, err := checkRelationXML(xmlData)
	if err != nil {
		p.note(key, sha, "refused")
		refuse("bad_file", err.Error())
		return
	}
	if up.Batch != "" && rep.Batch != "" && up.Batch != rep.Batch {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the upload says batch %q, its file says %q", up.Batch, rep.Batch))
	}
	rep.Key = key
	p.mu.Lock()
	rep.finish(p.expected, ids.has)
	p.mu.Unlock()
	j := p.add(key, rep, b, "")
	p.log.Info("relation upload", "key", key, "report", rep.Text)
	if b == LoseAnswer {
		p.note(key, sha, "lost-answer")
		p.count(func(m *Summary) { m.Failed++ })
		fail(http.StatusServiceUnavailable, "unavailable", "the answer was lost (test behaviour lose-answer; the file was processed)")
		return
	}
	p.note(key, sha, "new")
	writeJSON(w, http.StatusAccepted, Status{ProcessID: j.id, Status: "pending", Errors: []StatusError{}})
}

// unpack decodes the base64 zip and returns its one XML file, checked
// against the upload's SHA-256.
func unpack(up Upload) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(up.File)
	if err != nil {
		return nil, fmt.Errorf("file: not base64: %w", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("file: not a zip: %w", err)
	}
	if len(zr.File) != 1 {
		return nil, fmt.Errorf("file: the zip holds %d files, want 1", len(zr.File))
	}
	f := zr.File[0]
	if up.FileName != "" && f.Name != up.FileName {
		return nil, fmt.Errorf("file: the zip holds %q, the upload names %q", f.Name, up.FileName)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("file: %s: %w", f.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 4<<30))
	if err != nil {
		return nil, fmt.Errorf("file: %s: %w", f.Name, err)
	}
	if up.SHA256 == "" {
		return nil, errors.New("sha256 is missing")
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, up.SHA256) {
		return nil, fmt.Errorf("file: %s has SHA-256 %s, the upload says %s", f.Name, got, up.SHA256)
	}
	return data, nil
}

func (p *Platform) status(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(w, r) {
		return
	}
	id := r.PathValue("id")
	j, running, ok := p.job(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, StatusError{Code: "not_found", Message: fmt.Sprintf("no upload %q", id)})
		return
	}
	if j.garbage {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "<html>502 Bad Gateway</html>")
		return
	}
	st := Status{ProcessID: j.id, Status: "pending", Errors: []StatusError{}}
	if !running {
		st.Report = j.report.Text
		st.Status = "success"
		if !j.report.OK {
			st.Status = "failed"
			for _, pr := range j.report.Problems {
				st.Errors = append(st.Errors, StatusError{Code: "check_failed", Message: pr})
			}
		}
	}
	writeJSON(w, http.StatusOK, st)
}
