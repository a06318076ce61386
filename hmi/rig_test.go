package hmi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// The API against a real runner over a real ledger (Badger), with
// hand-written fake devices: the PLC accepts every verdict, the printer
// hands every code it is sent to the test's "line" (produce), the code
// source makes GS1 codes and registers them in the ledger.

const batch = "HMI-TEST-1"

type fakePLC struct{}

func (fakePLC) WriteVerdict(ctx context.Context, item uint32, pass bool, reason uint16) error {
	return nil
}

type fakePrinter struct{ sent chan tracecode.Code }

func (p *fakePrinter) Enqueue(ctx context.Context, codes []tracecode.Code) ([]tracecode.Code, error) {
	for _, c := range codes {
		select {
		case p.sent <- c:
		default:
			return nil, fmt.Errorf("fake printer full")
		}
	}
	return nil, nil
}

func (p *fakePrinter) Flush(ctx context.Context) ([]tracecode.Code, error) { return nil, nil }

// fakeCodes generates serials X00001, X00002, … under one GTIN and
// registers them with the batch, as the real code source does.
type fakeCodes struct {
	store *aggregation.Store
	mu    sync.Mutex
	n     int
}

func (s *fakeCodes) Allocate(ctx context.Context, l tracecode.Level, n int) ([]tracecode.Code, error) {
	s.mu.Lock()
	codes := make([]tracecode.Code, n)
	for i := range codes {
		s.n++
		codes[i] = tracecode.Code(fmt.Sprintf("(01)06901234567892(21)X%05d", s.n))
	}
	s.mu.Unlock()
	collided, err := s.store.AllocateGenerated(ctx, batch, l, codes, aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"})
	if err != nil {
		return nil, err
	}
	if len(collided) > 0 {
		return nil, fmt.Errorf("fake codes collided: %v", collided)
	}
	return codes, nil
}

// clock is the HMI's and the accounts' clock, moved by tests.
type clock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.d) }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.d += d
	c.mu.Unlock()
}

type rigOpts struct {
	production bool // no demo accounts: setup needed
	proxies    []string
	sync       bool // the ledger syncs every commit (benchmarks)
	// restarted: a first runner started the batch (codes went to the
	// printer) and stopped as a crash would; the served runner is the
	// second one, which asks for the purge.
	restarted bool
}

type rig struct {
	t       testing.TB
	store   *aggregation.Store
	runner  *line.Runner
	acc     *accounts.Accounts
	srv     *hmi.Server
	ts      *httptest.Server
	printer *fakePrinter
	clock   *clock
	item    uint32
	router  routers.Router
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	store, err := aggregation.Open(t.TempDir(), aggregation.Options{NoSync: !o.sync})
	if err != nil {
		t.Fatal(err)
	}
	spec := aggregation.BatchSpec{ID: batch, Product: "阿莫西林胶囊", Line: "L1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeGS1SGTIN}}}
	if err := store.CreateBatch(ctx, spec, aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"}); err != nil {
		t.Fatal(err)
	}
	pr := &fakePrinter{sent: make(chan tracecode.Code, 1<<16)}
	codes := &fakeCodes{store: store}
	runner := func(ctx context.Context) *line.Runner {
		r, err := line.NewRunner(ctx, line.RunnerConfig{Batch: batch, Line: "L1",
			Machine: line.Config{Deadline: 200 * time.Millisecond, PrinterBuffer: 8, AllocChunk: 64}},
			store, line.Devices{PLC: fakePLC{}, Printer: pr, Codes: codes}, log)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if o.restarted {
		ctx1, cancel1 := context.WithCancel(ctx)
		r1 := runner(ctx1)
		done1 := make(chan error, 1)
		go func() { done1 <- r1.Run(ctx1) }()
		for _, c := range []line.Command{line.CmdReset, line.CmdStart} {
			if err := r1.Command(ctx, c, "operator"); err != nil {
				t.Fatal(err)
			}
		}
		for range 8 { // the printer's buffer filled: codes sent, undecided
			<-pr.sent
		}
		cancel1()
		<-done1
	}
	r := runner(ctx)
	clk := &clock{}
	acc, err := accounts.Open(ctx, accounts.Config{Params: accounts.Params{Time: 1, Memory: 64, Threads: 1},
		Demo: !o.production, Now: clk.now}, accounts.Ledger(store), log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := hmi.New(hmi.Config{Store: store, Line: r, Batch: batch, Accounts: acc, Demo: !o.production,
		TrustedProxies: o.proxies, Log: log, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	hubDone := make(chan struct{})
	go func() { srv.Run(ctx); close(hubDone) }()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		cancel()
		<-hubDone
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
		store.Close()
	})
	rg := &rig{t: t, store: store, runner: r, acc: acc, srv: srv, ts: ts, printer: pr, clock: clk}
	rg.router = rg.openAPIRouter()
	return rg
}

// produce runs n units down the line: each gets the next code the printer
// was sent, is printed and read good.
func (rg *rig) produce(n int) {
	rg.t.Helper()
	for range n {
		var code tracecode.Code
		select {
		case code = <-rg.printer.sent:
		case <-time.After(10 * time.Second):
			rg.t.Fatal("no code reached the printer")
		}
		rg.item++
		now := line.Stamp{T: time.Now()}
		rg.runner.Post(line.Trigger{Stamp: now, Item: rg.item})
		rg.runner.Post(line.Printed{Stamp: now, Code: code})
		rg.runner.Post(line.CameraResult{Stamp: now, Item: rg.item, Reads: []line.Read{{Code: code}}, Grade: 'A', Pass: true})
	}
}

// waitLine waits (10 s at most) until cond holds for the runner's snapshot.
func (rg *rig) waitLine(what string, cond func(line.Snapshot) bool) line.Snapshot {
	rg.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s := rg.runner.Snapshot()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			rg.t.Fatalf("waiting for %s: line is %s (%s)", what, s.State, s.Why)
		}
		<-tick.C
	}
}

func (rg *rig) openAPIRouter() routers.Router {
	rg.t.Helper()
	doc := rg.openAPI()
	doc.Servers = openapi3.Servers{{URL: rg.ts.URL}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		rg.t.Fatal(err)
	}
	return r
}

func (rg *rig) openAPI() *openapi3.T {
	rg.t.Helper()
	res, err := http.Get(rg.ts.URL + "/api/v1/openapi.json")
	if err != nil {
		rg.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		rg.t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		rg.t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// client is a browser: a cookie jar and the session's CSRF token.
type client struct {
	rg   *rig
	hc   *http.Client
	csrf string
	user string
	// lang, when set, is sent as Accept-Language.
	lang string
	// noValidate skips the OpenAPI check (bodies the API refuses).
	noValidate bool
}

func (rg *rig) anon() *client {
	jar, _ := cookiejar.New(nil)
	return &client{rg: rg, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

// login logs in as user (password "demo" for the demo accounts).
func (rg *rig) login(user, password string) *client {
	rg.t.Helper()
	c := rg.anon()
	code, body := c.do(http.MethodPost, "/api/v1/session", fmt.Sprintf(`{"user":%q,"password":%q}`, user, password))
	if code != http.StatusOK {
		rg.t.Fatalf("login %s: HTTP %d %s", user, code, body)
	}
	var s hmi.SessionDoc
	if err := json.Unmarshal(body, &s); err != nil || s.CSRF == "" {
		rg.t.Fatalf("login %s: %v in %s", user, err, body)
	}
	c.csrf, c.user = s.CSRF, user
	return c
}

// do sends a request (a JSON body when body != "") with the CSRF token and
// checks the answer against the OpenAPI document.
func (c *client) do(method, path, body string, hdr ...string) (int, []byte) {
	c.rg.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.rg.ts.URL+path, rd)
	if err != nil {
		c.rg.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.lang != "" {
		req.Header.Set("Accept-Language", c.lang)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.rg.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.rg.t.Fatal(err)
	}
	c.rg.validate(req, res, b)
	return res.StatusCode, b
}

// validate checks a response against the OpenAPI document: the route is
// in it, and the body matches the status's schema. Errors must be
// {code, message}.
func (rg *rig) validate(req *http.Request, res *http.Response, body []byte) {
	rg.t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/") && req.URL.Path != "/healthz" && req.URL.Path != "/readyz" {
		return
	}
	if res.StatusCode >= 400 && req.URL.Path != "/readyz" { // readyz's 503 is its Health
		var e hmi.ErrorDoc
		if err := json.Unmarshal(body, &e); err != nil || e.Code == "" || e.Message == "" {
			rg.t.Errorf("%s %s: HTTP %d with a body that is no {code, message}: %s", req.Method, req.URL.Path, res.StatusCode, body)
		}
		if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusMethodNotAllowed {
			return // no route to validate against
		}
	}
	r2 := req.Clone(context.Background())
	r2.Body = http.NoBody
	route, params, err := rg.router.FindRoute(r2)
	if err != nil {
		rg.t.Errorf("%s %s: not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		rg.t.Errorf("%s %s: HTTP %d does not match the OpenAPI document: %v\n%.400s", req.Method, req.URL.Path, res.StatusCode, err, body)
	}
}

func errCode(t testing.TB, body []byte) string {
	t.Helper()
	var e hmi.ErrorDoc
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an error body: %s", body)
	}
	return e.Code
}

var _ = bytes.NewReader
