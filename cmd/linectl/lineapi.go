package main

// The web server of `linectl run` and `linectl demo`: the HMI (package
// hmi: screens, accounts, /api/v1) and, beside it on the same address, the
// line API of before (GET /api/line, POST /api/line/commands,
// /api/line/rework) with what batch after batch needs and /api/v1 does not
// offer yet: POST /api/line/batches (a work order), GET /api/line/overview,
// the engineer's GET /api/line/engineering and POST
// /api/line/engineering/test. The line API has no accounts: it is the
// controller box's local automation API (scripted validation runs, the
// separate-process tests), served only when asked for (`linectl run
// --local-api`; always in the demo) and only to loopback peers. Every
// screen and remote client uses /api/v1, with accounts and roles.

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// serveAPIOn serves the HMI and the line API on ln until the returned func
// is called.
// [hmi hook] The HMI is built from one hmi.Config; accounts live in the
// ledger. Without an admin (production's first run) the one-time setup
// URL is logged.
func serveAPIOn(ln net.Listener, l *line.Line, store *aggregation.Store, demo bool, c *cli) (func(), error) {
	return serveWeb(ln, web{Line: l, Store: store, Demo: demo, LocalAPI: true}, c)
}

// web is what the web server serves: the line, its ledger and, with
// Products and Data, the hand-off (release desk, outbox, publisher).
type web struct {
	Line     *line.Line
	Store    *aggregation.Store
	Demo     bool
	Handoff  handoffFile
	Products map[string]*tracecode.Product
	Data     string // the data directory (the outbox's documents go in Data/outbox)
	// LocalAPI serves the unauthenticated line API (/api/line) to loopback
	// peers.
	LocalAPI bool
	// HMI are the web server's security settings.
	HMI hmiFile
}

// serveWeb serves the HMI and the line API on ln, and runs the hand-off's
// outbox, until the returned func is called.
func serveWeb(ln net.Listener, w web, c *cli) (func(), error) {
	l, store, demo := w.Line, w.Store, w.Demo
	ctx, cancel := context.WithCancel(context.Background())
	acc, err := accounts.Open(ctx, accounts.Config{Demo: demo}, accounts.Ledger(store), c.log)
	if err != nil {
		cancel()
		return nil, err
	}
	ho, err := newHandoff(w.Handoff, w.Products, store, acc, w.Data, c.log)
	if err != nil {
		cancel()
		return nil, err
	}
	if tok := acc.SetupToken(); tok != "" {
		c.log.Warn("HMI: no admin account yet; create it at the one-time setup URL",
			"url", webScheme(w.HMI)+"://"+ln.Addr().String()+"/#/setup/"+tok)
	}
	hc := hmi.Config{Store: store, Line: l.RunnerView(), Overview: l, Accounts: acc, Demo: demo, Log: c.log,
		QA: l, Desk: ho.desk, CertFile: w.HMI.TLS.CertFile, KeyFile: w.HMI.TLS.KeyFile,
		TrustedProxies: w.HMI.TrustedProxies, IdleTimeout: w.HMI.IdleTimeout}
	if ho.ob != nil { // nil interfaces, not typed nils: the HMI says "not wired"
		hc.Documents, hc.Publisher = ho.ob, ho.pub
	}
	h, err := hmi.New(hc)
	if err != nil {
		cancel()
		return nil, err
	}
	var local http.Handler
	if w.LocalAPI {
		local = loopbackOnly(newLineAPI(l, demo, c.log))
	}
	srv := &http.Server{Handler: newHMI(h.Handler(), local), ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{}, 3)
	go func() { h.Run(ctx); done <- struct{}{} }() // the HMI's live hub
	go func() {                                    // the hand-off's deliveries
		if err := ho.run(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("outbox", "err", err)
		}
		done <- struct{}{}
	}()
	go func() {
		serve := func() error { return srv.Serve(ln) }
		if hc.CertFile != "" {
			serve = func() error { return srv.ServeTLS(ln, hc.CertFile, hc.KeyFile) }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("HMI", "err", err)
		}
		done <- struct{}{}
	}()
	c.log.Info("HMI", "url", webScheme(w.HMI)+"://"+ln.Addr().String()+"/")
	return func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		<-done
		<-done
		<-done
	}, nil
}

// newHMI is the one place the web server's routes are put together: the
// local line API (if any) under /api/line, everything else the HMI's.
func newHMI(hmiHandler, localAPI http.Handler) http.Handler {
	mux := http.NewServeMux()
	if localAPI != nil {
		mux.Handle("/api/line", localAPI)
		mux.Handle("/api/line/", localAPI)
	}
	if hmiHandler != nil {
		mux.Handle("/", hmiHandler)
	}
	return mux
}

type lineAPI struct {
	l    *line.Line
	demo bool
	log  *slog.Logger
}

// maxAPIBody bounds a request body.
const maxAPIBody = 64 << 10

func newLineAPI(l *line.Line, demo bool, log *slog.Logger) http.Handler {
	a := &lineAPI{l: l, demo: demo, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/line", a.state)
	mux.HandleFunc("GET /api/line/overview", a.overview)
	mux.HandleFunc("POST /api/line/commands", a.command)
	mux.HandleFunc("POST /api/line/rework", a.rework)
	mux.HandleFunc("POST /api/line/batches", a.startBatch)
	mux.HandleFunc("GET /api/line/engineering", a.monitor)
	mux.HandleFunc("POST /api/line/engineering/test", a.test)
	return mux
}

// lineState is GET /api/line: the current (or last) batch's runner
// snapshot under "line" (as before batches came from work orders; with no
// batch yet, Stopped and why), and its verdict latency. It is read from
// memory: poll it freely. The line's overview is GET /api/line/overview.
type lineState struct {
	Demo     bool             `json:"demo"`
	Line     line.Snapshot    `json:"line"`
	Verdicts line.StatsReport `json:"verdict_latency_ms"`
}

func (a *lineAPI) state(w http.ResponseWriter, r *http.Request) {
	a.json(w, http.StatusOK, lineState{Demo: a.demo, Line: a.l.RunnerView().Snapshot(), Verdicts: a.l.Stats()})
}

// overview is GET /api/line/overview: line.Overview (it reads the
// ledger's summary and pools).
func (a *lineAPI) overview(w http.ResponseWriter, r *http.Request) {
	a.json(w, http.StatusOK, a.l.Snapshot())
}

// apiError is an error the client caused; its text is safe to show.
type apiError struct {
	status int
	msg    string
	detail any
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string) error { return &apiError{status: http.StatusBadRequest, msg: msg} }

func (a *lineAPI) decode(w http.ResponseWriter, r *http.Request, v any, want string) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body: want JSON " + want + ": " + err.Error())
	}
	if dec.More() {
		return badRequest("body: one JSON object only")
	}
	return nil
}

func userOf(u string) (string, error) {
	if strings.TrimSpace(u) == "" {
		return "", badRequest("user: must say who gives the command")
	}
	return u, nil
}

func (a *lineAPI) command(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Command string `json:"command"`
		User    string `json:"user"`
	}
	if err := a.decode(w, r, &req, `{"command": "start", "user": "…"}`); err != nil {
		a.fail(w, r, err)
		return
	}
	cmd, err := line.ParseCommand(strings.TrimSpace(req.Command))
	if err != nil {
		a.fail(w, r, badRequest("command: "+err.Error()))
		return
	}
	user, err := userOf(req.User)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.l.Command(r.Context(), cmd, user); err != nil {
		a.fail(w, r, err)
		return
	}
	a.json(w, http.StatusOK, a.l.RunnerView().Snapshot())
}

func (a *lineAPI) rework(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind   string `json:"kind"`
		Code   string `json:"code"`
		Old    string `json:"old"`
		New    string `json:"new"`
		Reason string `json:"reason"`
		User   string `json:"user"`
	}
	if err := a.decode(w, r, &req, `{"kind", "code", "reason", "user"}`); err != nil {
		a.fail(w, r, err)
		return
	}
	op := line.ReworkOp{Kind: line.ReworkKind(strings.TrimSpace(req.Kind)), Reason: req.Reason}
	// Codes as scanned: any form the scan parser knows.
	for _, f := range []struct {
		name string
		raw  string
		dst  *tracecode.Code
	}{{"code", req.Code, &op.Code}, {"old", req.Old, &op.Old}, {"new", req.New, &op.New}} {
		if strings.TrimSpace(f.raw) == "" {
			continue
		}
		p, err := tracecode.Parse(f.raw)
		if err != nil {
			a.fail(w, r, badRequest(f.name+": "+err.Error()))
			return
		}
		*f.dst = p.Code
	}
	user, err := userOf(req.User)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.l.Rework(r.Context(), op, user); err != nil {
		a.fail(w, r, err)
		return
	}
	a.json(w, http.StatusOK, map[string]string{"done": string(op.Kind), "code": string(op.Code)})
}

// startBatch is POST /api/line/batches: a work order (line.WorkOrder's
// JSON) and the user who starts it. The batch is then Stopped: reset and
// start it.
func (a *lineAPI) startBatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		line.WorkOrder
		User string `json:"user"`
	}
	if err := a.decode(w, r, &req, `{"product", "batch", "production_date", "expiry", "planned", "user"}`); err != nil {
		a.fail(w, r, err)
		return
	}
	user, err := userOf(req.User)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if req.Source == "" {
		req.Source = "api"
	}
	spec, err := a.l.StartBatch(r.Context(), req.WorkOrder, user)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.json(w, http.StatusOK, spec)
}

func (a *lineAPI) monitor(w http.ResponseWriter, r *http.Request) {
	m, err := a.l.Monitor(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.json(w, http.StatusOK, m)
}

func (a *lineAPI) test(w http.ResponseWriter, r *http.Request) {
	var req struct {
		line.TestAction
		User string `json:"user"`
	}
	if err := a.decode(w, r, &req, `{"kind": "output|print|camera", "user"}`); err != nil {
		a.fail(w, r, err)
		return
	}
	user, err := userOf(req.User)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := req.TestAction.Validate(); err != nil {
		a.fail(w, r, badRequest(err.Error()))
		return
	}
	out, err := a.l.TestAction(r.Context(), req.TestAction, user)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.json(w, http.StatusOK, map[string]string{"result": out})
}

// fail is the one place errors become HTTP responses.
func (a *lineAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := &apiError{status: http.StatusInternalServerError, msg: "internal error"}
	var ae *apiError
	var woe *line.WorkOrderError
	switch {
	case errors.As(err, &ae):
		e = ae
	case errors.As(err, &woe):
		e = &apiError{status: http.StatusBadRequest, msg: err.Error(), detail: woe.Problems}
	case errors.Is(err, line.ErrInvalidCommand), errors.Is(err, aggregation.ErrRefused), errors.Is(err, line.ErrNoBatch),
		errors.Is(err, line.ErrBatchOpen), errors.Is(err, line.ErrBusy):
		e = &apiError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, line.ErrBadRework):
		e = &apiError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, aggregation.ErrNotFound):
		e = &apiError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, line.ErrNoEngineering):
		e = &apiError{status: http.StatusNotImplemented, msg: err.Error()}
	case errors.Is(err, errBadTest):
		e = &apiError{status: http.StatusBadRequest, msg: err.Error()}
	default:
		a.log.Error("line API", "path", r.URL.Path, "err", err)
	}
	body := map[string]any{"error": e.msg}
	if e.detail != nil {
		body["problems"] = e.detail
	}
	a.json(w, e.status, body)
}

func (a *lineAPI) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		a.log.Debug("line API: writing the answer", "err", err)
	}
}

// loopbackOnly refuses every peer but the controller box itself.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, `{"error":"the local line API answers the controller box only (loopback); use /api/v1"}`, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func webScheme(h hmiFile) string {
	if h.TLS.CertFile != "" {
		return "https"
	}
	return "http"
}
