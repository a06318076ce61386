package lineproc

// The hand-off side of a simulated line: the receivers the controller's
// outbox delivers to (handoff/receiver's stand-ins, in the harness's
// process, behind a front that can be taken down), and QA at the HMI's
// /api/v1 (accounts set up as on a new installation, then sign, activate,
// hand off, resend) — as a person would, through the API.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
)

// Receivers are a line's hand-off receivers: an EPCIS 2.0 capture
// interface (epcis-json and epcis-xml) and the platform's relation upload
// (msfx-xml), each a handoff/receiver stand-in behind a front on a fixed
// loopback address that the harness can take down (Down) and bring back
// (Up) while the receiver keeps what it has seen.
type Receivers struct {
	Capture  *receiver.Capture
	Platform *receiver.Platform
	capture  *front
	platform *front
}

// Down modes of a receiver.
const (
	// DownRefuse: nothing listens on the receiver's address (connection
	// refused), as a receiver that is off.
	DownRefuse = "refuse"
	// Down503: the receiver answers every request 503 with Retry-After,
	// as one in maintenance.
	Down503 = "503"
)

// StartReceivers starts both receivers on loopback ports, with cfg as
// both receivers' configuration (a behaviour, a processing time, a clock);
// give their Endpoints to Start as Options.Handoff.
func StartReceivers(cfg receiver.Config) (*Receivers, error) {
	r := &Receivers{}
	var err error
	if r.Capture, err = receiver.NewCapture(cfg, nil); err != nil {
		return nil, err
	}
	if r.Platform, err = receiver.NewPlatform(cfg, nil); err != nil {
		return nil, err
	}
	if err := r.Capture.Start(); err != nil {
		return nil, err
	}
	if err := r.Platform.Start(); err != nil {
		r.Capture.Close()
		return nil, err
	}
	if r.capture, err = newFront(r.Capture.URL()); err == nil {
		r.platform, err = newFront(r.Platform.URL())
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Endpoints are the outbox endpoints of the receivers (the outbox's
// default timeouts, retries and backoff).
func (r *Receivers) Endpoints() []outbox.Endpoint {
	return []outbox.Endpoint{
		{Name: "epcis", Kind: outbox.KindEPCIS, URL: r.capture.url()},
		{Name: "platform", Kind: outbox.KindPlatform, URL: r.platform.url()},
	}
}

// Down takes both receivers down (DownRefuse or Down503).
func (r *Receivers) Down(mode string) error {
	if mode != DownRefuse && mode != Down503 {
		return fmt.Errorf("receivers: down mode %q: want %s or %s", mode, DownRefuse, Down503)
	}
	for _, f := range []*front{r.capture, r.platform} {
		if err := f.down(mode); err != nil {
			return err
		}
	}
	return nil
}

// Up brings both receivers back.
func (r *Receivers) Up() error {
	for _, f := range []*front{r.capture, r.platform} {
		if err := f.up(); err != nil {
			return err
		}
	}
	return nil
}

// Turned is how many requests the fronts turned away while down (503s;
// refused connections are not seen).
func (r *Receivers) Turned() int { return r.capture.turnedAway() + r.platform.turnedAway() }

// Close stops the fronts and the receivers.
func (r *Receivers) Close() {
	for _, f := range []*front{r.capture, r.platform} {
		if f != nil {
			f.close()
		}
	}
	if r.Capture != nil {
		r.Capture.Close()
	}
	if r.Platform != nil {
		r.Platform.Close()
	}
}

// front is a reverse proxy on a fixed address in front of a receiver.
type front struct {
	addr  string
	proxy http.Handler

	mu     sync.Mutex
	srv    *http.Server
	mode   string // "" up, DownRefuse, Down503
	turned int
}

func newFront(backend string) (*front, error) {
	u, err := url.Parse(backend)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &front{addr: ln.Addr().String(), proxy: httputil.NewSingleHostReverseProxy(u)}
	f.serve(ln)
	return f, nil
}

func (f *front) url() string { return "http://" + f.addr }

func (f *front) serve(ln net.Listener) {
	f.srv = &http.Server{Handler: http.HandlerFunc(f.handle), ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(ln)
}

func (f *front) handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down := f.mode == Down503
	if down {
		f.turned++
	}
	f.mu.Unlock()
	if down {
		io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		w.Header().Set("Retry-After", "10")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"code":"unavailable","message":"the receiver is down for maintenance (crash campaign)"}`)
		return
	}
	f.proxy.ServeHTTP(w, r)
}

func (f *front) down(mode string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mode == DownRefuse && f.mode != DownRefuse {
		f.srv.Close() // the listener and every connection
	}
	if mode == Down503 && f.mode == DownRefuse {
		if err := f.relisten(); err != nil {
			return err
		}
	}
	f.mode = mode
	return nil
}

func (f *front) up() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mode == DownRefuse {
		if err := f.relisten(); err != nil {
			return err
		}
	}
	f.mode = ""
	return nil
}

// relisten listens on the front's address again (f.mu held). The port was
// ours a moment ago (Go's listeners reuse an address in TIME_WAIT); another
// program may have taken it meanwhile, which is an error.
func (f *front) relisten() error {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("receiver front: listening on %s again: %w", f.addr, err)
	}
	f.serve(ln)
	return nil
}

func (f *front) turnedAway() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.turned
}

func (f *front) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.Close()
	}
}

// withHandoff adds a hand-off section with endpoints to a controller
// config (YAML).
func withHandoff(cfg []byte, eps []outbox.Endpoint) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(cfg, &doc); err != nil {
		return nil, fmt.Errorf("the controller's config: %w", err)
	}
	h, _ := doc["handoff"].(map[string]any)
	if h == nil {
		h = map[string]any{}
	}
	h["endpoints"] = eps
	doc["handoff"] = h
	return yaml.Marshal(doc)
}

// QA is a person at the HMI's /api/v1: one logged-in session (cookie and
// CSRF token).
type QA struct {
	base   string
	client *http.Client
	csrf   string
	User   string
}

// HMIBase is the HMI's base URL (http://host:port).
func (l *Line) HMIBase() string { return "http://" + l.apiAddr }

// Accounts of a campaign's line, made on its first release.
const (
	AdminUser = "admin"
	QAUser    = "qa"
	OpUser    = "op1"
	// Password of every campaign account.
	Password = "campaign-password-1"
)

var setupRE = regexp.MustCompile(`#/setup/([0-9A-Za-z_-]+)`)

// SetUpAccounts makes the line's accounts as on a new installation, once:
// the first admin with the one-time setup token the running controller
// logged, then a QA and an operator account. Nothing if the admin exists.
func (l *Line) SetUpAccounts(ctx context.Context) error {
	var sd hmi.SetupDoc
	if err := GetJSON(ctx, l.HMIBase()+"/api/v1/setup", &sd); err != nil {
		return err
	}
	if !sd.Needed {
		return nil
	}
	m := setupRE.FindAllStringSubmatch(l.Ctl.Log(), -1)
	if len(m) == 0 {
		return errors.New("accounts: the controller needs its first admin but logged no setup URL")
	}
	tok := m[len(m)-1][1]
	req, err := json.Marshal(hmi.SetupReq{Token: tok, User: AdminUser, Name: "Campaign Admin", Password: Password})
	if err != nil {
		return err
	}
	code, body, err := PostJSON(ctx, l.HMIBase()+"/api/v1/setup", string(req))
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("accounts: POST /api/v1/setup: HTTP %d %s %v", code, body, err)
	}
	admin, err := l.Login(ctx, AdminUser)
	if err != nil {
		return err
	}
	for _, a := range []hmi.AccountReq{
		{User: QAUser, Name: "QA Campaign 质量", Roles: []accounts.Role{accounts.RoleQA}, Password: Password},
		{User: OpUser, Name: "Operator Campaign", Roles: []accounts.Role{accounts.RoleOperator}, Password: Password},
	} {
		if err := admin.Do(ctx, http.MethodPost, "/api/v1/accounts", a, nil); err != nil {
			return fmt.Errorf("accounts: creating %s: %w", a.User, err)
		}
	}
	return nil
}

// Login logs user in (password Password).
func (l *Line) Login(ctx context.Context, user string) (*QA, error) {
	jar, _ := cookiejar.New(nil)
	q := &QA{base: l.HMIBase(), client: &http.Client{Jar: jar, Timeout: 2 * time.Minute}, User: user}
	var sd hmi.SessionDoc
	if err := q.Do(ctx, http.MethodPost, "/api/v1/session", hmi.LoginReq{User: user, Password: Password}, &sd); err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	q.csrf = sd.CSRF
	return q, nil
}

// HTTPError is an answer other than 2xx.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.Status, strings.TrimSpace(e.Body))
}

// Do makes one request (body as JSON unless nil) and decodes a 2xx answer
// into out (unless nil).
func (q *QA) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, q.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if q.csrf != "" {
		req.Header.Set("X-CSRF-Token", q.csrf)
	}
	resp, err := q.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %w", method, path, &HTTPError{resp.StatusCode, string(b)})
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}
