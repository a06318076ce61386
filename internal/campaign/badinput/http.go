package badinput

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/hmi"
)

// Server is a running HMI on a real ledger, as `linectl demo` or `linectl
// run` serves it.
type Server struct {
	// URL is its base, e.g. http://127.0.0.1:8080.
	URL string
	// Head is the ledger's last sequence number (aggregation.Store.Head).
	Head func() uint64
	// Requested, when set, lists the events after seq that a request
	// could have caused (those by a user, not the line's own: an alarm a
	// device raises on a loaded machine while the refusals are sent). When
	// the ledger moved during a refusal, the refusal fails only if it lists
	// one. Nil: any move fails.
	Requested func(after uint64) ([]string, error)
	// Users are accounts by role ("operator", "qa", …), all with Password.
	Users    map[string]string
	Password string
}

// route is one operation of the HMI's OpenAPI document.
type route struct {
	method, path string // path with {params} filled in
	roles        []string
	schema       map[string]any // the JSON body's schema (nil: no body)
}

func (r route) String() string { return r.method + " " + r.path }

// Category is one kind of request the HMI must refuse.
type Category struct {
	Name     string
	Tries    int
	Survived int
	// Failures are the first few requests that did not hold, and why.
	Failures []string
	// Codes counts the error codes answered.
	Codes map[string]int
	// Skipped says what could not be tried, and why ("" if nothing).
	Skipped string
}

func (c *Category) fail(f string) {
	if len(c.Failures) < maxKept {
		c.Failures = append(c.Failures, f)
	}
}

// session is one logged-in user.
type session struct {
	user, role, csrf string
	hc               *http.Client
}

// tester talks to one HMI.
type tester struct {
	s        Server
	routes   []route
	sessions map[string]*session // by role
	patterns map[string]bool     // the OpenAPI paths, {params} unfilled
	anon     *http.Client
	mu       sync.Mutex
}

func newTester(ctx context.Context, s Server) (*tester, error) {
	if s.Head == nil || s.URL == "" {
		return nil, errors.New("badinput: the HMI under test needs a URL and the ledger's Head")
	}
	t := &tester{s: s, sessions: map[string]*session{}, patterns: map[string]bool{}, anon: &http.Client{Timeout: 30 * time.Second}}
	if err := t.loadRoutes(ctx); err != nil {
		return nil, err
	}
	roles := make([]string, 0, len(s.Users))
	for r := range s.Users {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		if err := t.login(ctx, r); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// loadRoutes reads the HMI's own OpenAPI document: every operation, its
// roles and its body's schema.
func (t *tester) loadRoutes(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.s.URL+"/api/v1/openapi.json", nil)
	res, err := t.anon.Do(req)
	if err != nil {
		return fmt.Errorf("badinput: the HMI's OpenAPI document: %w", err)
	}
	defer res.Body.Close()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		return fmt.Errorf("badinput: the HMI's OpenAPI document: %w", err)
	}
	for path, ops := range doc.Paths {
		t.patterns[path] = true
		for method, raw := range ops {
			var op struct {
				Security    []map[string][]string `json:"security"`
				RequestBody struct {
					Content map[string]struct {
						Schema map[string]any `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				continue // "parameters" and the like
			}
			r := route{method: strings.ToUpper(method), path: fillParams(path)}
			for _, s := range op.Security {
				r.roles = append(r.roles, s["session"]...)
			}
			if c, ok := op.RequestBody.Content["application/json"]; ok {
				r.schema = resolve(c.Schema, doc.Components.Schemas, 0)
				if r.schema == nil {
					r.schema = map[string]any{"type": "object"}
				}
			}
			t.routes = append(t.routes, r)
		}
	}
	if len(t.routes) == 0 {
		return errors.New("badinput: the HMI's OpenAPI document lists no route")
	}
	sort.Slice(t.routes, func(i, j int) bool { return t.routes[i].String() < t.routes[j].String() })
	return nil
}

// fillParams puts a value that names nothing into each {param}.
func fillParams(p string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		b.WriteString("zz-none")
		p = p[i+j+1:]
	}
}

// resolve follows $ref (to a small depth) in an OpenAPI schema.
func resolve(s map[string]any, comps map[string]map[string]any, depth int) map[string]any {
	if s == nil || depth > 8 {
		return s
	}
	if ref, ok := s["$ref"].(string); ok {
		return resolve(comps[strings.TrimPrefix(ref, "#/components/schemas/")], comps, depth+1)
	}
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	if props, ok := s["properties"].(map[string]any); ok {
		np := map[string]any{}
		for k, v := range props {
			if m, ok := v.(map[string]any); ok {
				np[k] = resolve(m, comps, depth+1)
			}
		}
		out["properties"] = np
	}
	if items, ok := s["items"].(map[string]any); ok {
		out["items"] = resolve(items, comps, depth+1)
	}
	return out
}

// example is a value of the schema's type (strings "x", numbers 1).
func example(s map[string]any, depth int) any {
	switch s["type"] {
	case "string":
		return "x"
	case "integer", "number":
		return 1
	case "boolean":
		return false
	case "array":
		if depth > 4 {
			return []any{}
		}
		items, _ := s["items"].(map[string]any)
		return []any{example(items, depth+1)}
	}
	obj := map[string]any{}
	if depth > 4 {
		return obj
	}
	props, _ := s["properties"].(map[string]any)
	for k, v := range props {
		m, _ := v.(map[string]any)
		obj[k] = example(m, depth+1)
	}
	return obj
}

// wrongType is a value of another type than the schema's.
func wrongType(s map[string]any) any {
	switch s["type"] {
	case "string":
		return 12345
	case "integer", "number":
		return "12"
	case "boolean":
		return "yes"
	case "array":
		return map[string]any{"0": "x"}
	}
	return []any{"x"}
}

func (t *tester) login(ctx context.Context, role string) error {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	user := t.s.Users[role]
	body, _ := json.Marshal(map[string]string{"user": user, "password": t.s.Password})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.s.URL+"/api/v1/session", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("badinput: login as %s: %w", user, err)
	}
	defer res.Body.Close()
	var doc hmi.SessionDoc
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil || res.StatusCode != http.StatusOK || doc.CSRF == "" {
		return fmt.Errorf("badinput: login as %s: HTTP %d (%v)", user, res.StatusCode, err)
	}
	t.mu.Lock()
	t.sessions[role] = &session{user: user, role: role, csrf: doc.CSRF, hc: hc}
	t.mu.Unlock()
	return nil
}

// allowed is a session that may call r ("" role: none needed).
func (t *tester) allowed(r route) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, role := range r.roles {
		if s := t.sessions[role]; s != nil {
			return s
		}
	}
	return nil
}

// outsider is a session whose role may not call r.
func (t *tester) outsider(r route) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	roles := make([]string, 0, len(t.sessions))
	for role := range t.sessions {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		if !contains(r.roles, role) {
			return t.sessions[role]
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// answer is what the HMI said.
type answer struct {
	status int
	doc    hmi.ErrorDoc
	docErr error
	err    error
}

// request sends one request; s nil: no session. csrf "-" leaves the
// header out.
func (t *tester) request(ctx context.Context, s *session, method, path, contentType string, body []byte, hdr map[string]string) answer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.s.URL+path, rd)
	if err != nil {
		return answer{err: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := t.anon
	if s != nil {
		hc = s.hc
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	for k, v := range hdr {
		if v == "-" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode}
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		a.err = err
		return a
	}
	if res.StatusCode >= 400 {
		a.docErr = json.Unmarshal(b, &a.doc)
	}
	return a
}

// check judges one refusal: a 4xx (want, when not 0), a {code, message}
// body (code wantCode, when not ""), and the ledger's last sequence
// number unchanged. It returns "" when every check held.
func (a answer) check(want int, wantCode string, headBefore, headAfter uint64) string {
	var why []string
	switch {
	case a.err != nil:
		why = append(why, "no answer: "+a.err.Error())
	case a.status < 400 || a.status >= 500:
		why = append(why, fmt.Sprintf("HTTP %d, want a 4xx", a.status))
	case want != 0 && a.status != want:
		why = append(why, fmt.Sprintf("HTTP %d, want %d", a.status, want))
	}
	if a.err == nil && a.status >= 400 {
		switch {
		case a.docErr != nil:
			why = append(why, "the body is not {code, message}: "+a.docErr.Error())
		case a.doc.Code == "" || a.doc.Message == "":
			why = append(why, fmt.Sprintf("empty code or message: %+v", a.doc))
		case wantCode != "" && a.doc.Code != wantCode:
			why = append(why, fmt.Sprintf("code %q, want %q", a.doc.Code, wantCode))
		}
	}
	if headAfter != headBefore {
		why = append(why, fmt.Sprintf("the ledger changed: last seq %d → %d", headBefore, headAfter))
	}
	return strings.Join(why, "; ")
}

func unsafe(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// probe is one negative request of a category.
type probe struct {
	r           route
	s           *session
	contentType string
	body        []byte
	hdr         map[string]string
	want        int
	wantCode    string
	label       string
}

// Negative sends every request the HMI must refuse, by category, and
// checks each: a clear 4xx and the ledger unchanged. It waits first for
// the ledger to be quiet (no write for a second), so that a change is
// the request's. The public routes (login, first setup) get the body
// categories too, without a session. head is the ledger's last sequence
// number once quiet, before the first request and after the last; caused
// lists the events between them a request could have caused (with
// Server.Requested; without it, any move is listed).
func Negative(ctx context.Context, s Server) (cats []Category, head [2]uint64, caused []string, err error) {
	t, err := newTester(ctx, s)
	if err != nil {
		return nil, head, nil, err
	}
	if err := quiet(ctx, s.Head); err != nil {
		return nil, head, nil, err
	}
	head[0] = s.Head()
	defer func() {
		head[1] = s.Head()
		switch {
		case head[1] == head[0]:
		case s.Requested == nil:
			caused = []string{fmt.Sprintf("the ledger's last seq moved from %d to %d", head[0], head[1])}
		default:
			// Read now, before anything else writes: the events since
			// head[0] are the run's, the line's own ones left out.
			evs, rerr := s.Requested(head[0])
			if rerr != nil {
				evs = []string{"reading the ledger's events: " + rerr.Error()}
			}
			caused = evs
		}
	}()
	json415 := "application/json"
	var out []Category
	// Over the limit: the HMI's default (64 KiB); a route that takes more
	// (the code-file import) is sent one byte over its own limit.
	over := func(n int) []byte {
		return append(append([]byte(`{"zz":"`), bytes.Repeat([]byte("a"), n-len(`{"zz":""}`)+1)...), `"}`...)
	}
	small, large := over(64<<10), over(hmi.ImportMaxBody)
	add := func(name, skipped string, probes []probe) {
		c := Category{Name: name, Codes: map[string]int{}, Skipped: skipped}
		for _, p := range probes {
			if ctx.Err() != nil {
				break
			}
			before := s.Head()
			var a answer
			if p.wantCode == "too_large" {
				a = t.request(ctx, p.s, p.r.method, p.r.path, p.contentType, small, p.hdr)
				if a.err == nil && a.status != http.StatusRequestEntityTooLarge {
					a = t.request(ctx, p.s, p.r.method, p.r.path, p.contentType, large, p.hdr)
				}
			} else {
				a = t.request(ctx, p.s, p.r.method, p.r.path, p.contentType, p.body, p.hdr)
			}
			after := s.Head()
			c.Tries++
			if a.doc.Code != "" {
				c.Codes[a.doc.Code]++
			}
			var caused []string
			if after != before && s.Requested != nil {
				// The line's own events (alarms, say) do not count.
				evs, err := s.Requested(before)
				switch {
				case err != nil:
					caused = []string{"reading the ledger's events: " + err.Error()}
				case len(evs) == 0:
					after = before
				default:
					caused = evs
				}
			}
			if why := a.check(p.want, p.wantCode, before, after); why != "" {
				if len(caused) > 0 {
					why += " (" + strings.Join(caused, "; ") + ")"
				}
				c.fail(fmt.Sprintf("%s %s: %s", p.r, p.label, why))
				continue
			}
			c.Survived++
		}
		out = append(out, c)
	}
	var noSession, badCookie, csrf, role, origin, ctype, big, malformed, unknown, types []probe
	var noOutsider []string
	for _, r := range t.routes {
		public := r.roles == nil // login, setup, health, the OpenAPI document
		ct := ""
		var body []byte
		if r.schema != nil {
			ct = json415
			body, _ = json.Marshal(example(r.schema, 0))
		}
		in := t.allowed(r) // nil for a public route: no session
		if !public {
			noSession = append(noSession, probe{r: r, contentType: ct, body: body, want: http.StatusUnauthorized, wantCode: "unauthenticated"})
			badCookie = append(badCookie, probe{r: r, contentType: ct, body: body, want: http.StatusUnauthorized, wantCode: "unauthenticated",
				hdr: map[string]string{"Cookie": "tracline_session=" + strings.Repeat("ab", 32)}})
			if o := t.outsider(r); o != nil {
				role = append(role, probe{r: r, s: o, contentType: ct, body: body, want: http.StatusForbidden, wantCode: "forbidden", label: "as " + o.role})
			} else {
				noOutsider = append(noOutsider, r.String())
			}
			if in == nil {
				continue
			}
			if unsafe(r.method) {
				csrf = append(csrf,
					probe{r: r, s: in, contentType: ct, body: body, want: http.StatusForbidden, wantCode: "csrf", hdr: map[string]string{"X-CSRF-Token": "-"}, label: "without a token"},
					probe{r: r, s: in, contentType: ct, body: body, want: http.StatusForbidden, wantCode: "csrf", hdr: map[string]string{"X-CSRF-Token": strings.Repeat("0", 64)}, label: "with a wrong token"})
			}
		}
		if unsafe(r.method) {
			origin = append(origin, probe{r: r, s: in, contentType: ct, body: body, want: http.StatusForbidden, wantCode: "bad_origin",
				hdr: map[string]string{"Origin": "https://evil.example"}})
		}
		if r.schema == nil || !unsafe(r.method) {
			continue
		}
		ctype = append(ctype, probe{r: r, s: in, contentType: "text/plain", body: body, want: http.StatusUnsupportedMediaType, wantCode: "unsupported"})
		big = append(big, probe{r: r, s: in, contentType: ct, want: http.StatusRequestEntityTooLarge, wantCode: "too_large"})
		for _, m := range []string{`{`, `{"a":}`, `not json`, "{\"x\":\"\xff", `{} {}`, `[1,2`, ``, "\x00", `{"a":1,}`} {
			malformed = append(malformed, probe{r: r, s: in, contentType: ct, body: []byte(m), want: http.StatusBadRequest, wantCode: "bad_body", label: fmt.Sprintf("%q", m)})
		}
		if ex, ok := example(r.schema, 0).(map[string]any); ok {
			ex["zz_unknown_field"] = 1
			b, _ := json.Marshal(ex)
			unknown = append(unknown, probe{r: r, s: in, contentType: ct, body: b, want: http.StatusBadRequest, wantCode: "bad_body"})
			props, _ := r.schema["properties"].(map[string]any)
			keys := make([]string, 0, len(props))
			for k := range props {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				m, _ := props[k].(map[string]any)
				ex := example(r.schema, 0).(map[string]any)
				ex[k] = wrongType(m)
				b, _ := json.Marshal(ex)
				types = append(types, probe{r: r, s: in, contentType: ct, body: b, want: http.StatusBadRequest, wantCode: "bad_body", label: k})
			}
		}
	}
	add("no session (every route that needs one)", "", noSession)
	add("unknown session cookie", "", badCookie)
	skip := ""
	if len(noOutsider) > 0 {
		skip = fmt.Sprintf("%d routes every demo role may call", len(noOutsider))
	}
	add("wrong role (a logged-in user whose role may not call it)", skip, role)
	add("bad CSRF token (missing, wrong) on every state-changing route", "", csrf)
	add("foreign Origin on every state-changing route (public ones too)", "", origin)
	add("not JSON (Content-Type text/plain)", "", ctype)
	add("oversized body (64 KiB + 1; the code-file import, 32 MiB + 1)", "", big)
	add("malformed JSON (truncated, trailing data, not JSON, invalid UTF-8, empty)", "", malformed)
	add("unknown field", "", unknown)
	add("wrong type (each field in turn)", "", types)
	return out, head, caused, nil
}

// quiet waits until the ledger has not moved for a second (up to 30 s).
func quiet(ctx context.Context, head func() uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, since := head(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("badinput: the ledger did not stay still for a second within 30 s (last seq %d): something else writes to it", head())
		case <-tick.C:
		}
		if h := head(); h != last {
			last, since = h, time.Now()
		} else if time.Since(since) >= time.Second {
			return nil
		}
	}
}

// HTTPBodies is a fuzz target over every state-changing route with a JSON
// body that a session may call (anonymous ones, login and setup, lock
// accounts and are fuzzed in package hmi): each input goes to the next
// route in turn, as the user of an allowed role, with a valid CSRF token.
// An answer must be a 2xx (accepted) or a 4xx {code, message} (refused);
// a 5xx or a dropped connection is a failure.
func HTTPBodies(ctx context.Context, s Server) (Target, error) {
	t, err := newTester(ctx, s)
	if err != nil {
		return Target{}, err
	}
	var rs []route
	var seeds [][]byte
	tokens := []string{"{", "}", "[", "]", ",", ":", `"`, "null", "true", "false", "-1", "1e400", `"\u0000"`, `"\ud800"`}
	for _, r := range t.routes {
		if r.schema == nil || r.roles == nil || !unsafe(r.method) || t.allowed(r) == nil {
			continue
		}
		rs = append(rs, r)
		b, _ := json.Marshal(example(r.schema, 0))
		seeds = append(seeds, b)
		props, _ := r.schema["properties"].(map[string]any)
		for k := range props {
			tokens = append(tokens, `"`+k+`":`)
		}
	}
	sort.Strings(tokens)
	if len(rs) == 0 {
		return Target{}, errors.New("badinput: no HMI route takes a JSON body")
	}
	// Then {} to every route in the same order (input k goes to route k
	// mod the routes): {} to POST /api/v1/line/rework with no batch on the
	// line answered 500 once (line.ErrNoBatch unclassified), kept as a
	// seed; then a few malformed ones.
	for range rs {
		seeds = append(seeds, []byte(`{}`))
	}
	seeds = append(seeds, []byte(`{`), []byte(`null`), []byte(`[]`), []byte(`{"a":1}{}`))
	var n int
	return Target{
		Name:   fmt.Sprintf("HMI request bodies (/api/v1, %d routes with a JSON body, over HTTP)", len(rs)),
		Seeds:  seeds,
		Tokens: tokens,
		MaxLen: 8 << 10,
		Check: func(ctx context.Context, in []byte) Outcome {
			r := rs[n%len(rs)]
			n++
			sess := t.allowed(r)
			return t.judge(ctx, sess, r.String(), t.request(ctx, sess, r.method, r.path, "application/json", in, nil))
		},
	}, nil
}

// judge is what the HTTP targets make of an answer to a request (what
// names it): after an answer that ended the session — a body that changed
// a role — it logs in again and goes on (a wrong password in a password
// change is a 401 bad_login: the session goes on); a 2xx is accepted, a
// 4xx with {code, message} refused; no answer, a 5xx, or a 4xx without
// {code, message} (a router's 404/405 for a path an escaped "/" or "?"
// made another also answers one) is a problem.
func (t *tester) judge(ctx context.Context, sess *session, what string, a answer) Outcome {
	if a.status == http.StatusUnauthorized && (a.doc.Code == "unauthenticated" || a.doc.Code == "session_expired") && ctx.Err() == nil {
		if err := t.login(ctx, sess.role); err != nil {
			return Outcome{Problem: fmt.Sprintf("%s: logged out, and the login again failed: %v", what, err)}
		}
	}
	switch {
	case a.err != nil && ctx.Err() != nil:
		return Outcome{Err: ctx.Err()}
	case a.err != nil:
		return Outcome{Problem: fmt.Sprintf("%s: no answer (a panic in the server?): %v", what, a.err)}
	case a.status >= 500:
		return Outcome{Problem: fmt.Sprintf("%s: HTTP %d %+v", what, a.status, a.doc)}
	case a.status >= 400:
		if a.docErr != nil || a.doc.Code == "" || a.doc.Message == "" {
			return Outcome{Problem: fmt.Sprintf("%s: HTTP %d without {code, message}: %v", what, a.status, a.docErr)}
		}
		return Outcome{Err: fmt.Errorf("%s: HTTP %d %s: %s", what, a.status, a.doc.Code, a.doc.Message)}
	}
	return Outcome{Accepted: true}
}

// paramRoute is a route whose path parameters or query string carry
// outside input.
type paramRoute struct {
	route
	pattern string // the OpenAPI path, {params} unfilled
	query   bool   // the input is the query string, not the parameters
}

// HTTPParams is a fuzz target over what the HMI reads from URLs: every
// path parameter (batch, document, account and alarm ids, pool names,
// codes) and the query strings of the QA screens' batch list and code
// lookup. Each input goes to the next route in turn, as a user of an
// allowed role with a valid CSRF token (a state-changing route gets its
// schema's example body). An answer must be a 2xx or a 4xx {code,
// message}; a 5xx or a dropped connection is a failure.
func HTTPParams(ctx context.Context, s Server) (Target, error) {
	t, err := newTester(ctx, s)
	if err != nil {
		return Target{}, err
	}
	var rs []paramRoute
	for _, r := range t.routes {
		if r.roles == nil || t.allowed(r) == nil || strings.HasSuffix(r.path, "/live") {
			continue
		}
		pattern := ""
		for p := range t.patterns {
			if fillParams(p) == r.path && strings.Contains(p, "{") {
				pattern = p
			}
		}
		switch {
		case pattern != "":
			rs = append(rs, paramRoute{route: r, pattern: pattern})
		case r.method == http.MethodGet && (strings.HasSuffix(r.path, "/qa/batches") || strings.HasSuffix(r.path, "/qa/lookup")):
			rs = append(rs, paramRoute{route: r, query: true})
		}
	}
	if len(rs) == 0 {
		return Target{}, errors.New("badinput: no HMI route takes path parameters or a query")
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].String() < rs[j].String() })
	seeds := bytesOf([]string{"zz-none", "DEMO-20261201-090000", "../../etc/passwd", "%00", "\x00", "]d2010690123456789221X1",
		"(01)06901234567892(21)X", "1", "-1", "18446744073709551616", "中文", "a/b", "?", "#",
		"product=amoxicillin-gs1&line=demo-line-1&state=open&from=2026-01-01&to=2026-12-31", "from=2026-13-45&to=yesterday",
		"state=nonsense", "code=]d2010690123456789221X1", "code=(01)06901234567892(21)X&code=x", "from=&to=&state=", "%zz=%"})
	var n int
	return Target{
		Name:   fmt.Sprintf("HMI path parameters and query strings (/api/v1, %d routes, over HTTP)", len(rs)),
		Seeds:  seeds,
		Tokens: []string{"&", "=", "%", "/", "..", "?", "#", "+", "product=", "line=", "state=", "from=", "to=", "code=", "2026-01-01", "]d2", "(01)", "(21)"},
		MaxLen: 2 << 10,
		Check: func(ctx context.Context, in []byte) Outcome {
			r := rs[n%len(rs)]
			n++
			path, query := r.path, ""
			if r.query {
				query = queryEscape(in)
			} else {
				path = fillWith(r.pattern, url.PathEscape(string(in)))
			}
			var body []byte
			ct := ""
			if r.schema != nil {
				body, _ = json.Marshal(example(r.schema, 0))
				ct = "application/json"
			}
			if query != "" {
				path += "?" + query
			}
			sess := t.allowed(r.route)
			return t.judge(ctx, sess, r.method+" "+path, t.request(ctx, sess, r.method, path, ct, body, nil))
		},
	}, nil
}

// fillWith puts v into each {param} of an OpenAPI path.
func fillWith(p, v string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '{')
		j := strings.IndexByte(p, '}')
		if i < 0 || j < i {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		b.WriteString(v)
		p = p[j+1:]
	}
}

// queryEscape keeps a raw query's & and = (its structure, which is what
// is fuzzed) and escapes every other byte a URL cannot carry as is.
func queryEscape(in []byte) string {
	var b strings.Builder
	for _, c := range in {
		switch {
		case c == '&' || c == '=' || c == '%' || c == '+' || c == '-' || c == '.' || c == '_' || c == '~' ||
			c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
