package hmi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/internal/accounts"
)

const (
	sessionCookie = "tracline_session"
	csrfHeader    = "X-CSRF-Token"
)

// Route is one API route: how it is called, who may call it, how the
// OpenAPI document describes it, and its handler.
type Route struct {
	Method string
	Path   string // echo's form: /api/v1/accounts/:id
	// Roles may call it; nil: anyone, without a session.
	Roles []accounts.Role
	// Summary and Tag describe it in the OpenAPI document.
	Summary, Tag string
	// Request is a value of the JSON body's type (nil: no body).
	Request any
	// Response is a value of the 200 answer's type (nil: no body);
	// ContentType is its media type (default application/json).
	Response    any
	ContentType string
	// Status is the success status (default 200).
	Status int
	// MaxBody, if set, is this route's body limit instead of Config.MaxBody.
	MaxBody int64
	Handler func(c *echo.Context, u *accounts.User) error
}

// session is one logged-in browser.
type session struct {
	id, user, csrf string
	last           time.Time
}

type sessions struct {
	mu   sync.Mutex
	m    map[string]*session
	idle time.Duration
	now  func() time.Time
}

func newSessions(idle time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, idle: idle, now: now}
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

func (ss *sessions) create(user string) *session {
	s := &session{id: token(), user: user, csrf: token(), last: ss.now()}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, o := range ss.m { // sweep the idle ones
		if ss.now().Sub(o.last) > ss.idle {
			delete(ss.m, k)
		}
	}
	ss.m[s.id] = s
	return s
}

var errIdle = errors.New("session idle too long")

// get returns the session and marks it used; an idle one is ended.
func (ss *sessions) get(id string) (session, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return session{}, errors.New("no session")
	}
	now := ss.now()
	if now.Sub(s.last) > ss.idle {
		delete(ss.m, id)
		return *s, errIdle
	}
	s.last = now
	return *s, nil
}

// alive reports whether a session is still open and not idle, without
// marking it used (a live stream is not activity).
func (ss *sessions) alive(id string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	return ok && ss.now().Sub(s.last) <= ss.idle
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	delete(ss.m, id)
	ss.mu.Unlock()
}

// endUser ends every session of a user (disabled, roles changed).
func (ss *sessions) endUser(user string) {
	ss.mu.Lock()
	for k, s := range ss.m {
		if s.user == user {
			delete(ss.m, k)
		}
	}
	ss.mu.Unlock()
}

func (s *Server) setCookie(c *echo.Context, value string, maxAge int) {
	http.SetCookie(c.Response(), &http.Cookie{Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.tls, SameSite: http.SameSiteStrictMode})
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// guard runs before every route: body size limit, same-origin check on
// state-changing requests, security headers.
func (s *Server) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		if s.tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, s.bodyLimit(c)) // the code-file import has its own limit
		}
		if unsafeMethod(r.Method) {
			if o := r.Header.Get("Origin"); o != "" {
				u, err := url.Parse(o)
				if err != nil || u.Host != r.Host {
					return fail(http.StatusForbidden, "bad_origin", "")
				}
			}
		}
		return next(c)
	}
}

// wrap checks a route's session, CSRF token and roles, journals an
// inspector's call, then calls the handler.
func (s *Server) wrap(rt Route) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if rt.Request != nil && unsafeMethod(r.Method) {
			mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if mt != "application/json" {
				return fail(http.StatusUnsupportedMediaType, "unsupported", "")
			}
		}
		if rt.Roles == nil {
			return rt.Handler(c, nil)
		}
		ck, err := r.Cookie(sessionCookie)
		if err != nil {
			return fail(http.StatusUnauthorized, "unauthenticated", "")
		}
		sess, err := s.sessions.get(ck.Value)
		if errors.Is(err, errIdle) {
			s.cfg.Accounts.Logout(r.Context(), sess.user, "idle timeout")
			return fail(http.StatusUnauthorized, "session_expired", "")
		}
		if err != nil {
			return fail(http.StatusUnauthorized, "unauthenticated", "")
		}
		u, err := s.cfg.Accounts.Get(sess.user)
		if err != nil { // expired inspector, disabled, removed
			s.sessions.end(sess.id)
			s.cfg.Accounts.Logout(r.Context(), sess.user, "access ended: "+err.Error())
			return err
		}
		if unsafeMethod(r.Method) {
			got := r.Header.Get(csrfHeader)
			if subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
				return fail(http.StatusForbidden, "csrf", "")
			}
		}
		if !slices.ContainsFunc(rt.Roles, u.Has) {
			return fail(http.StatusForbidden, "forbidden", "")
		}
		if u.Has(accounts.RoleInspector) {
			s.cfg.Accounts.Note(r.Context(), "inspector.view", u.ID,
				map[string]string{"method": r.Method, "path": r.URL.RequestURI()})
		}
		c.Set("session", sess)
		return rt.Handler(c, &u)
	}
}

// Role sets for routes.
var (
	anyone    = []accounts.Role{accounts.RoleOperator, accounts.RoleQA, accounts.RoleEngineer, accounts.RoleAdmin, accounts.RoleInspector}
	operators = []accounts.Role{accounts.RoleOperator}
	admins    = []accounts.Role{accounts.RoleAdmin}
	// staff is everyone but the inspector (writes that concern only oneself).
	staff = []accounts.Role{accounts.RoleOperator, accounts.RoleQA, accounts.RoleEngineer, accounts.RoleAdmin}
)
