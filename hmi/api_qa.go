package hmi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// QA's screens: the batch list, the batch record and its release (the
// electronic signature, activation, the hand-off), the hand-off documents
// and the code lookup (the recall question). Reading is for QA, admins and
// inspectors (the lookup for every role); everything that changes is QA's
// (a resend also an admin's), CSRF-protected, and journaled with the
// logged-in user by the desk, the ledger or the outbox.

// QAQueries is what QA asks of the line; *line.Line satisfies it.
type QAQueries interface {
	Batches(ctx context.Context, f line.BatchFilter) ([]aggregation.BatchSummary, error)
	LookupCode(ctx context.Context, scan string) (line.CodeView, error)
}

// ReleaseDesk is QA's release desk; *release.Desk satisfies it.
type ReleaseDesk interface {
	Record(ctx context.Context, batch string) (*release.Record, error)
	Sign(ctx context.Context, req release.SignRequest) (*release.Outcome, error)
	Activate(ctx context.Context, batch string, by aggregation.Actor) error
	Verify(ctx context.Context, by aggregation.Actor) (release.VerifyRun, error)
}

// Documents are the hand-off documents; *outbox.Outbox satisfies it.
type Documents interface {
	List(ctx context.Context, batch string) ([]outbox.Document, error)
	Attempts(ctx context.Context, id string) ([]outbox.Attempt, error)
	Resend(ctx context.Context, id string, by aggregation.Actor) (outbox.Document, error)
	Recall(ctx context.Context, code tracecode.Code) (outbox.Recall, error)
}

// Publisher writes an active batch's hand-off documents into the outbox
// (publishing twice adds nothing); *handoff.Publisher satisfies it.
type Publisher interface {
	Publish(ctx context.Context, batch string, by aggregation.Actor) ([]outbox.Document, error)
}

// RecordDoc is a batch record as QA's screen shows it: the record (rules,
// signatures, the hash chain's status), its hand-off documents, and what
// the controller can do with it.
type RecordDoc struct {
	Record    *release.Record   `json:"record"`
	Documents []outbox.Document `json:"documents"`
	// Outbox and HandOff: the documents' outbox and the publisher are wired.
	Outbox  bool `json:"outbox"`
	HandOff bool `json:"handoff"`
	// DocumentsError says why the documents could not be read.
	DocumentsError string `json:"documents_error,omitempty"`
}

// SignReq is an electronic signature: the logged-in QA user re-enters the
// password, chooses the meaning and writes a comment; Hash is the record
// hash the signer was shown (the signature is refused if it changed).
type SignReq struct {
	Password string `json:"password"`
	Meaning  string `json:"meaning"` // released or rejected
	Comment  string `json:"comment"`
	Hash     string `json:"hash"`
}

// check validates a signature request before anything is asked of the
// desk: the meaning, a comment (≤ 2000 bytes of UTF-8), a password.
func (r SignReq) check() (release.Meaning, string, error) {
	m, err := release.ParseMeaning(strings.TrimSpace(r.Meaning))
	if err != nil {
		return "", "", fail(http.StatusBadRequest, "bad_signature_request", err.Error())
	}
	comment := strings.TrimSpace(r.Comment)
	switch {
	case comment == "":
		return "", "", fail(http.StatusBadRequest, "bad_signature_request", "comment")
	case len(comment) > 2000 || !utf8.ValidString(comment):
		return "", "", fail(http.StatusBadRequest, "bad_signature_request", "comment: at most 2000 bytes of UTF-8")
	case r.Password == "":
		return "", "", fail(http.StatusBadRequest, "bad_signature_request", "password")
	}
	return m, comment, nil
}

// ActivateReq activates a released batch; the QA user re-enters the
// password (activation makes the codes live in the network).
type ActivateReq struct {
	Password string `json:"password"`
}

// ReleaseDoc answers a signature, an activation or a hand-off: the record
// now, what the signature did, and the documents written.
type ReleaseDoc struct {
	RecordDoc
	Decided   bool     `json:"decided"`
	Activated bool     `json:"activated"`
	Waiting   string   `json:"waiting,omitempty"` // what is still needed (four-eyes)
	Voided    []uint64 `json:"voided,omitempty"`  // earlier signatures voided now
	// HandOffError: activated, but the documents could not be written
	// (try the hand-off again).
	HandOffError string `json:"handoff_error,omitempty"`
}

// LookupDoc answers the recall question for a code: the line's view (its
// history, parents, children, everything on the same pallet) and the
// network's side (where its batch's documents went, what was answered).
type LookupDoc struct {
	Scan string        `json:"scan"`
	Code line.CodeView `json:"view"`
	// Product, BatchNumber: the code's batch's (empty for a code in a pool).
	Product     string         `json:"product,omitempty"`
	BatchNumber string         `json:"batch_number,omitempty"`
	Recall      *outbox.Recall `json:"recall,omitempty"`
	// RecallError says why the network's side is not shown (no outbox, a
	// code in a pool, not in a batch).
	RecallError string `json:"recall_error,omitempty"`
}

// qaState is what the QA routes keep between calls.
type qaState struct {
	fontMu    sync.Mutex
	font      []byte
	verifying sync.Mutex // one ledger verify at a time
}

var (
	qaReaders = []accounts.Role{accounts.RoleQA, accounts.RoleAdmin, accounts.RoleInspector}
	qaOnly    = []accounts.Role{accounts.RoleQA}
	qaAdmins  = []accounts.Role{accounts.RoleQA, accounts.RoleAdmin}
)

func userActor(u *accounts.User) aggregation.Actor {
	return aggregation.Actor{Kind: aggregation.ActorUser, ID: u.ID}
}

func (s *Server) qaRoutes() []Route {
	st := &qaState{font: s.cfg.RecordFont}
	// A part wired as a nil pointer (e.g. no outbox without endpoints) is
	// a part not wired.
	if isNil(s.cfg.QA) {
		s.cfg.QA = nil
	}
	if isNil(s.cfg.Desk) {
		s.cfg.Desk = nil
	}
	if isNil(s.cfg.Documents) {
		s.cfg.Documents = nil
	}
	if isNil(s.cfg.Publisher) {
		s.cfg.Publisher = nil
	}
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/qa/batches", Roles: qaReaders, Tag: "qa",
			Summary:  "The ledger's batches; query parameters product, line, state (open, complete, released, qa_rejected, active, handed_off), from and to (production date YYYY-MM-DD) filter them",
			Response: []aggregation.BatchSummary{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				if s.cfg.QA == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "batch list")
				}
				f := line.BatchFilter{Product: c.QueryParam("product"), Line: c.QueryParam("line"),
					State: c.QueryParam("state"), From: c.QueryParam("from"), To: c.QueryParam("to")}
				if err := f.Validate(); err != nil {
					return fail(http.StatusBadRequest, "bad_filter", err.Error())
				}
				bs, err := s.cfg.QA.Batches(c.Request().Context(), f)
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, bs)
			}},
		{Method: http.MethodGet, Path: "/api/v1/qa/batches/:id", Roles: qaReaders, Tag: "qa",
			Summary:  "A batch record: header, reconciliation per level, rejects, challenge tests, alarms, manual actions, audit trail with the hash chain's status, release rules, signatures; and its hand-off documents",
			Response: RecordDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				doc, err := s.recordDoc(c.Request().Context(), c.Param("id"))
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, doc)
			}},
		{Method: http.MethodGet, Path: "/api/v1/qa/batches/:id/record.html", Roles: qaReaders, Tag: "qa", ContentType: "text/html",
			Summary: "The batch record as one printable HTML page (A4, no scripts)", Response: "",
			Handler: func(c *echo.Context, _ *accounts.User) error {
				rec, err := s.record(c.Request().Context(), c.Param("id"))
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := release.WriteHTML(&buf, rec); err != nil {
					return err
				}
				// Opened in a tab to print (inline), styled by its own <style>
				// and nothing else: no script, no outside resource.
				h := c.Response().Header()
				h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
				h.Set("Content-Disposition", strings.Replace(attachment(rec.Header.Batch, "html"), "attachment", "inline", 1))
				return c.Blob(http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
			}},
		{Method: http.MethodGet, Path: "/api/v1/qa/batches/:id/record.pdf", Roles: qaReaders, Tag: "qa", ContentType: "application/pdf",
			Summary: "The batch record as an A4 PDF (Chinese text; every page carries the record's SHA-256)", Response: "",
			Handler: func(c *echo.Context, _ *accounts.User) error {
				rec, err := s.record(c.Request().Context(), c.Param("id"))
				if err != nil {
					return err
				}
				font, err := st.pdfFont()
				if err != nil {
					s.log.Error("hmi: the batch record's PDF font", "err", err)
					return fail(http.StatusServiceUnavailable, "no_font", "fonts-wqy-microhei")
				}
				var buf bytes.Buffer
				if err := release.WritePDF(&buf, rec, font); err != nil {
					return err
				}
				c.Response().Header().Set("Content-Disposition", attachment(rec.Header.Batch, "pdf"))
				return c.Blob(http.StatusOK, "application/pdf", buf.Bytes())
			}},
		{Method: http.MethodPost, Path: "/api/v1/qa/batches/:id/sign", Roles: qaOnly, Tag: "qa",
			Summary: "Sign the batch record (electronic signature): the logged-in QA user's password again, meaning released or rejected, a comment; journaled; decides the release when the required signatures are there",
			Request: SignReq{}, Response: ReleaseDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				var req SignReq
				if err := decode(c, &req); err != nil {
					return err
				}
				m, comment, err := req.check()
				if err != nil {
					return err
				}
				if s.cfg.Desk == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "release desk")
				}
				ctx := c.Request().Context()
				out, err := s.cfg.Desk.Sign(ctx, release.SignRequest{Batch: c.Param("id"), User: u.ID, Password: req.Password,
					Meaning: m, Comment: comment, Hash: strings.TrimSpace(req.Hash)})
				if err != nil {
					return signError(err)
				}
				doc := ReleaseDoc{Decided: out.Decided, Activated: out.Activated, Waiting: out.Waiting, Voided: out.Voided}
				if out.Activated {
					doc.HandOffError = s.handOff(ctx, c.Param("id"), u)
				}
				if doc.RecordDoc, err = s.recordDoc(ctx, c.Param("id")); err != nil {
					return err
				}
				return c.JSON(http.StatusOK, doc)
			}},
		{Method: http.MethodPost, Path: "/api/v1/qa/batches/:id/activate", Roles: qaOnly, Tag: "qa",
			Summary: "Activate a released batch (its codes become active; the QA user's password again), then write its hand-off documents into the outbox",
			Request: ActivateReq{}, Response: ReleaseDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				var req ActivateReq
				if err := decode(c, &req); err != nil {
					return err
				}
				if req.Password == "" {
					return fail(http.StatusBadRequest, "bad_signature_request", "password")
				}
				if s.cfg.Desk == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "release desk")
				}
				ctx := c.Request().Context()
				if _, err := s.cfg.Accounts.Authenticate(ctx, u.ID, req.Password); err != nil {
					return fail(http.StatusForbidden, "bad_signature", "")
				}
				if err := s.cfg.Desk.Activate(ctx, c.Param("id"), userActor(u)); err != nil {
					return err
				}
				doc := ReleaseDoc{Activated: true, HandOffError: s.handOff(ctx, c.Param("id"), u)}
				var err error
				if doc.RecordDoc, err = s.recordDoc(ctx, c.Param("id")); err != nil {
					return err
				}
				return c.JSON(http.StatusOK, doc)
			}},
		{Method: http.MethodPost, Path: "/api/v1/qa/batches/:id/handoff", Roles: qaOnly, Tag: "qa",
			Summary:  "Write an active batch's hand-off documents into the outbox (again: publishing twice adds nothing)",
			Response: ReleaseDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				if s.cfg.Publisher == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "hand-off")
				}
				ctx := c.Request().Context()
				if _, err := s.cfg.Publisher.Publish(ctx, c.Param("id"), userActor(u)); err != nil {
					return err
				}
				doc := ReleaseDoc{}
				var err error
				if doc.RecordDoc, err = s.recordDoc(ctx, c.Param("id")); err != nil {
					return err
				}
				return c.JSON(http.StatusOK, doc)
			}},
		{Method: http.MethodPost, Path: "/api/v1/qa/verify", Roles: qaOnly, Tag: "qa",
			Summary:  "Verify the whole ledger (hash chain, replay, invariants) and journal the run, which the release's verify rule reads; takes as long as the ledger is big",
			Response: release.VerifyRun{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				if s.cfg.Desk == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "release desk")
				}
				if !st.verifying.TryLock() {
					return fail(http.StatusConflict, "busy", "verify")
				}
				defer st.verifying.Unlock()
				run, err := s.cfg.Desk.Verify(c.Request().Context(), userActor(u))
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, run)
			}},
		{Method: http.MethodGet, Path: "/api/v1/qa/documents/:id/attempts", Roles: qaReaders, Tag: "qa",
			Summary:  "A hand-off document's every attempt, answer, resend and replacement, in journal order",
			Response: []outbox.Attempt{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				if s.cfg.Documents == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "outbox")
				}
				as, err := s.cfg.Documents.Attempts(c.Request().Context(), c.Param("id"))
				if err != nil {
					return docError(err)
				}
				if as == nil {
					as = []outbox.Attempt{}
				}
				return c.JSON(http.StatusOK, as)
			}},
		{Method: http.MethodPost, Path: "/api/v1/qa/documents/:id/resend", Roles: qaAdmins, Tag: "qa",
			Summary:  "Send a document's failed deliveries again (same id, the idempotency key), after what was wrong outside the document was corrected",
			Response: outbox.Document{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				if s.cfg.Documents == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "outbox")
				}
				d, err := s.cfg.Documents.Resend(c.Request().Context(), c.Param("id"), userActor(u))
				if err != nil {
					return docError(err)
				}
				return c.JSON(http.StatusOK, d)
			}},
		{Method: http.MethodGet, Path: "/api/v1/qa/lookup", Roles: anyone, Tag: "qa",
			Summary:  "The recall question: query parameter code (any scanned or typed form) → product, batch, state, history, parents to the pallet, children, everything on the same pallet, and where its batch's documents went and what was answered",
			Response: LookupDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				if s.cfg.QA == nil {
					return fail(http.StatusServiceUnavailable, "unavailable", "code lookup")
				}
				scan := c.QueryParam("code")
				if strings.TrimSpace(scan) == "" {
					return fail(http.StatusBadRequest, "bad_code", "code is empty")
				}
				p, err := tracecode.Parse(scan)
				if err != nil {
					return fail(http.StatusBadRequest, "bad_code", err.Error())
				}
				ctx := c.Request().Context()
				v, err := s.cfg.QA.LookupCode(ctx, scan)
				if err != nil {
					return err
				}
				doc := LookupDoc{Scan: scan, Code: v}
				if v.Code.Batch != "" {
					// The batch's product: the list holds every batch's summary.
					bs, err := s.cfg.QA.Batches(ctx, line.BatchFilter{})
					if err != nil {
						return err
					}
					for _, b := range bs {
						if b.Batch == v.Code.Batch {
							doc.Product, doc.BatchNumber = b.Product, b.Order.BatchNumber
						}
					}
				}
				switch {
				case s.cfg.Documents == nil:
					doc.RecallError = "no outbox"
				default:
					r, err := s.cfg.Documents.Recall(ctx, p.Code)
					if err != nil {
						doc.RecallError = err.Error()
					} else {
						if r.Documents == nil {
							r.Documents = []outbox.Document{}
						}
						doc.Recall = &r
					}
				}
				return c.JSON(http.StatusOK, doc)
			}},
	}
}

// record builds a batch's record.
func (s *Server) record(ctx context.Context, batch string) (*release.Record, error) {
	if s.cfg.Desk == nil {
		return nil, fail(http.StatusServiceUnavailable, "unavailable", "release desk")
	}
	return s.cfg.Desk.Record(ctx, batch)
}

// recordDoc is the record and its documents.
func (s *Server) recordDoc(ctx context.Context, batch string) (RecordDoc, error) {
	rec, err := s.record(ctx, batch)
	if err != nil {
		return RecordDoc{}, err
	}
	doc := RecordDoc{Record: rec, Documents: []outbox.Document{}, Outbox: s.cfg.Documents != nil, HandOff: s.cfg.Publisher != nil}
	if s.cfg.Documents != nil {
		ds, err := s.cfg.Documents.List(ctx, batch)
		if err != nil {
			doc.DocumentsError = err.Error()
		} else if ds != nil {
			doc.Documents = ds
		}
	}
	return doc, nil
}

// handOff writes an activated batch's documents (the release policy of the
// HMI: activation hands off at once when a publisher is wired); it returns
// what went wrong, "" when all is well.
func (s *Server) handOff(ctx context.Context, batch string, u *accounts.User) string {
	if s.cfg.Publisher == nil {
		return ""
	}
	if _, err := s.cfg.Publisher.Publish(ctx, batch, userActor(u)); err != nil {
		s.log.Error("hmi: hand-off after activation", "batch", batch, "user", u.ID, "err", err)
		return err.Error()
	}
	return ""
}

// signError turns the desk's refusals into answers the signer can act on.
func signError(err error) error {
	switch {
	case errors.Is(err, release.ErrAuth):
		return fail(http.StatusForbidden, "bad_signature", "")
	case errors.Is(err, release.ErrBlocked):
		return fail(http.StatusConflict, "blocked", strings.TrimPrefix(err.Error(), "sign: "))
	case errors.Is(err, aggregation.ErrRefused):
		return fail(http.StatusConflict, "refused", strings.TrimPrefix(err.Error(), "sign: "))
	case errors.Is(err, aggregation.ErrNotFound):
		return err
	}
	return fail(http.StatusConflict, "sign_refused", err.Error())
}

// docError maps the outbox's sentinels.
func docError(err error) error {
	switch {
	case errors.Is(err, outbox.ErrNotFound):
		return fail(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, outbox.ErrRefused):
		return fail(http.StatusConflict, "refused", err.Error())
	}
	return err
}

// pdfFont is the configured face, or the default one read on first use.
func (st *qaState) pdfFont() ([]byte, error) {
	st.fontMu.Lock()
	defer st.fontMu.Unlock()
	if st.font != nil {
		return st.font, nil
	}
	f, err := release.LoadFont(release.DefaultFont)
	if err != nil {
		return nil, err
	}
	st.font = f
	return f, nil
}

// isNil: v is nil, or an interface holding a nil pointer.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

func attachment(batch, ext string) string {
	name := strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r == '/' || r > 0x7e {
			return '_'
		}
		return r
	}, batch)
	return fmt.Sprintf(`attachment; filename="batch-record-%s.%s"`, name, ext)
}
