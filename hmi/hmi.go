// Package hmi is the controller's web server (echo v5): the operator's,
// QA's and engineer's screens (embedded ES modules, no build step) and the
// JSON API under /api/v1 they use, described by the OpenAPI document at
// /api/v1/openapi.json; plus /healthz, /readyz and /metrics.
//
// Every route is declared once, as a Route: method, path, the roles that
// may call it, its OpenAPI description and its handler. Sessions are
// cookies (HttpOnly, SameSite=Strict, Secure under TLS) with an idle
// timeout; every state-changing request carries the session's CSRF token
// in the X-CSRF-Token header. Errors become {code, message} responses in
// exactly one place (errorHandler), in the caller's language.
//
// It talks to the line only through the Line interface, never to a device.
//
// Who may import it: cmd/linectl.
package hmi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
)

// Line is what the HMI needs of a running line; *line.Runner satisfies it.
type Line interface {
	Snapshot() line.Snapshot
	Stats() line.StatsReport
	Command(ctx context.Context, cmd line.Command, user string) error
	Rework(ctx context.Context, op line.ReworkOp) error
	Subscribe() (<-chan line.Update, func())
}

// LineOverview is the multi-batch line's own overview; *line.Line
// satisfies it. When Config.Overview is set, the overview's batch, rate,
// last units, alarms (journaled by the line, acknowledged through it),
// device links and ages and codes left come from it, and the hub follows
// its Subscribe (work-order header, purge guide, challenge, levels).
type LineOverview interface {
	Snapshot() line.Overview
	Subscribe() (<-chan line.Overview, func())
	AcknowledgeAlarm(ctx context.Context, id uint64, user string) error
}

// Config is everything the server is built from.
type Config struct {
	// Store is the ledger (pools, readiness, metrics). Required.
	Store *aggregation.Store
	// Line is the running line. Required.
	Line Line
	// Overview, optional, is the multi-batch line (line.Line, with Line
	// its RunnerView()).
	Overview LineOverview
	// Batch names the batch the line runs (shown; "" if none; with
	// Overview, the line's current batch).
	Batch string
	// Accounts are the users. Required.
	Accounts *accounts.Accounts
	// Journal records what users do that the line does not journal
	// itself (alarm acknowledgements). Default: the ledger
	// (accounts.Ledger(Store)).
	Journal accounts.Journal
	// Demo shows the DEMO banner on every page.
	Demo bool
	// CertFile and KeyFile, both set, serve HTTPS (and make cookies Secure).
	CertFile, KeyFile string
	// TrustedProxies are the CIDR ranges of reverse proxies whose
	// X-Forwarded-For is believed; empty: the peer's address is the
	// client's (the login rate limit counts by it).
	TrustedProxies []string
	// IdleTimeout ends a session unused this long (default 15 min).
	IdleTimeout time.Duration
	// MaxBody is the largest request body accepted (default 64 KiB).
	MaxBody int64
	// Log is the logger (default: discard).
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// QA's screens (api_qa.go); each optional: a screen whose part is not
	// wired answers 503 "unavailable".
	QA         QAQueries   // batch list and code lookup; *line.Line satisfies it
	Desk       ReleaseDesk // batch record, signatures, activation; *release.Desk
	Documents  Documents   // the hand-off documents; *outbox.Outbox
	Publisher  Publisher   // writes an active batch's documents; *handoff.Publisher
	RecordFont []byte      // TrueType face for the record's PDF (nil: release.DefaultFont, read on first use)
}

// Validate checks the config, naming the hmi.* setting that is wrong. It
// loads the certificate and key (files only, no network) so that a wrong
// path or a mismatched pair is reported at start, not at the first
// browser's handshake.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("hmi: no ledger store")
	case c.Line == nil:
		return errors.New("hmi: no line")
	case c.Accounts == nil:
		return errors.New("hmi: no accounts")
	case c.CertFile != "" && c.KeyFile == "":
		return errors.New("hmi.tls.key_file: required with hmi.tls.cert_file (the certificate's private key, PEM)")
	case c.CertFile == "" && c.KeyFile != "":
		return errors.New("hmi.tls.cert_file: required with hmi.tls.key_file (the server certificate, PEM)")
	case c.IdleTimeout < 0:
		return fmt.Errorf("hmi.idle_timeout: %s is negative", c.IdleTimeout)
	case c.MaxBody < 0:
		return fmt.Errorf("hmi.max_body: %d is negative", c.MaxBody)
	}
	if c.CertFile != "" {
		if err := checkCert(c.CertFile, c.KeyFile, time.Now()); err != nil {
			return err
		}
	}
	for i, p := range c.TrustedProxies {
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return fmt.Errorf("hmi.trusted_proxies[%d]: %q is not a CIDR range (e.g. 10.0.0.0/8, or 192.168.1.10/32 for one proxy)", i, p)
		}
		if ones, _ := n.Mask.Size(); ones == 0 {
			return fmt.Errorf("hmi.trusted_proxies[%d]: %q trusts every address: anyone could set X-Forwarded-For and evade the login rate limit; name the proxies' own addresses", i, p)
		}
	}
	return nil
}

// checkCert loads the certificate and key as the server will.
func checkCert(certFile, keyFile string, now time.Time) error {
	if _, err := os.Stat(certFile); err != nil {
		return fmt.Errorf("hmi.tls.cert_file: %w", err)
	}
	if _, err := os.Stat(keyFile); err != nil {
		return fmt.Errorf("hmi.tls.key_file: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("hmi.tls: cert_file %q with key_file %q: %w", certFile, keyFile, err)
	}
	if leaf := pair.Leaf; leaf != nil && now.After(leaf.NotAfter) {
		return fmt.Errorf("hmi.tls.cert_file: %q expired on %s", certFile, leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return nil
}

// Server is the HMI. Its Handler serves everything; ListenAndServe runs it.
type Server struct {
	cfg      Config
	log      *slog.Logger
	e        *echo.Echo
	routes   []Route
	sessions *sessions
	live     *hub
	tls      bool
	openapi  []byte
}

// New builds the server; it touches no network.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Journal == nil {
		cfg.Journal = accounts.Ledger(cfg.Store)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 10
	}
	s := &Server{cfg: cfg, log: cfg.Log, tls: cfg.CertFile != ""}
	s.sessions = newSessions(cfg.IdleTimeout, cfg.Now)
	s.live = newHub(s)
	e := echo.New()
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Use(s.guard)
	s.e = e
	// Each group of routes is one file; a new screen adds its own group here.
	for _, group := range [][]Route{s.sessionRoutes(), s.accountRoutes(), s.lineRoutes(), s.opsRoutes(), s.qaRoutes(),
		s.operatorRoutes(), s.engineerRoutes()} {
		s.routes = append(s.routes, group...)
	}
	for _, r := range s.routes {
		e.Add(r.Method, r.Path, s.wrap(r))
	}
	doc, err := s.buildOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("hmi: openapi: %w", err)
	}
	s.openapi = doc
	s.staticRoutes()
	return s, nil
}

// ipExtractor: the peer's address, or X-Forwarded-For from trusted proxies only.
func ipExtractor(proxies []string) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		_, n, _ := net.ParseCIDR(p) // checked by Validate
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Handler serves the HMI.
func (s *Server) Handler() http.Handler { return s.e }

// Routes lists the API's routes (for tests and docs).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Run starts the live hub (it follows the line) until ctx ends. Handler
// works without it, but live pages then see no updates.
func (s *Server) Run(ctx context.Context) { s.live.run(ctx) }

// ListenAndServe serves on addr (HTTPS when a certificate is configured)
// until ctx ends, then shuts down.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("hmi: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (HTTPS when a certificate is configured) until ctx
// ends, then shuts down. It runs the live hub too.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.e, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	if s.tls {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	go s.Run(ctx)
	errc := make(chan error, 1)
	go func() {
		if s.tls {
			errc <- srv.ServeTLS(ln, s.cfg.CertFile, s.cfg.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
