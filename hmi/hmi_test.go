package hmi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
)

const goodCode = "(01)06901234567892(21)X00001"

// pathOf fills a route's parameters.
func pathOf(r hmi.Route) string {
	p := strings.ReplaceAll(r.Path, ":code", url.PathEscape(goodCode))
	return strings.ReplaceAll(p, ":id", "qa")
}

// bodyOf is a well-formed body for a route (its request type's zero value).
func bodyOf(r hmi.Route) string {
	if r.Request == nil {
		return ""
	}
	b, _ := json.Marshal(r.Request)
	return string(b)
}

// TestOpenAPICoversEveryRoute: every route echo serves under /api/v1 (and
// the ops routes) is in the document, and the document is valid.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	rg := newRig(t, rigOpts{})
	doc := rg.openAPI()
	for _, r := range rg.srv.Routes() {
		p := r.Path
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, ":") {
				p = strings.Replace(p, seg, "{"+seg[1:]+"}", 1)
			}
		}
		item := doc.Paths.Value(p)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is not in openapi.json", r.Method, r.Path)
		}
	}
	if n := doc.Paths.Len(); n < 10 {
		t.Errorf("only %d paths", n)
	}
}

// users logs in one client per role (the inspector granted by the admin).
func users(t *testing.T, rg *rig) map[accounts.Role]*client {
	t.Helper()
	admin := rg.login("admin", "demo")
	exp := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	if code, body := admin.do(http.MethodPost, "/api/v1/accounts",
		fmt.Sprintf(`{"user":"insp","name":"NMPA 检查员","roles":["inspector"],"password":"inspect-123","expires":%q}`, exp)); code != http.StatusCreated {
		t.Fatalf("grant inspector: HTTP %d %s", code, body)
	}
	return map[accounts.Role]*client{
		accounts.RoleOperator: rg.login("operator", "demo"), accounts.RoleQA: rg.login("qa", "demo"),
		accounts.RoleEngineer: rg.login("engineer", "demo"), accounts.RoleAdmin: admin,
		accounts.RoleInspector: rg.login("insp", "inspect-123"),
	}
}

func unsafe(m string) bool { return m != http.MethodGet && m != http.MethodHead }

// TestAccess: every protected route refuses no session (401), each role it
// does not name (403), and, when it changes state, a missing or wrong CSRF
// token (403) — each time with nothing journaled.
func TestAccess(t *testing.T) {
	rg := newRig(t, rigOpts{})
	us := users(t, rg)
	anon := rg.anon()
	for _, r := range rg.srv.Routes() {
		if r.Roles == nil || r.ContentType == "text/event-stream" {
			continue
		}
		name := r.Method + " " + r.Path
		path, body := pathOf(r), bodyOf(r)
		refuse := func(who string, c *client, wantCode int, want string, hdr ...string) {
			t.Helper()
			head := rg.store.Head()
			code, b := c.do(r.Method, path, body, hdr...)
			if code != wantCode || errCode(t, b) != want {
				t.Errorf("%s as %s: HTTP %d %s, want %d %s", name, who, code, b, wantCode, want)
			}
			if h := rg.store.Head(); h != head {
				t.Errorf("%s as %s: refused, but the journal moved %d → %d", name, who, head, h)
			}
		}
		refuse("nobody", anon, http.StatusUnauthorized, "unauthenticated")
		for role, c := range us {
			if !slices.Contains(r.Roles, role) {
				refuse(string(role), c, http.StatusForbidden, "forbidden")
			} else if unsafe(r.Method) {
				refuse(string(role)+" without CSRF token", c, http.StatusForbidden, "csrf", "X-CSRF-Token", "")
				refuse(string(role)+" with a wrong CSRF token", c, http.StatusForbidden, "csrf", "X-CSRF-Token", "0123")
				refuse(string(role)+" from another site", c, http.StatusForbidden, "bad_origin", "Origin", "https://evil.example")
			}
		}
	}
}

// TestBadBodies: malformed, mis-shaped, oversized, non-JSON bodies are 4xx
// with nothing changed, on every route that takes a body.
func TestBadBodies(t *testing.T) {
	rg := newRig(t, rigOpts{})
	us := users(t, rg)
	anon := rg.anon()
	big := `{"command":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, body, ctype string
		want              int
	}{
		{"truncated JSON", `{"user":`, "", 400},
		{"an array", `["reset"]`, "", 400},
		{"unknown field", `{"nonsense":1}`, "", 400},
		{"two values", `{} {}`, "", 400},
		{"empty", ``, "", 400},
		{"oversized", big, "", 413},
		{"form-encoded", `user=a`, "application/x-www-form-urlencoded", 415},
		{"text", `{}`, "text/plain", 415},
	}
	for _, r := range rg.srv.Routes() {
		if r.Request == nil {
			continue
		}
		c := anon
		if r.Roles != nil {
			c = us[r.Roles[0]]
		}
		for _, tc := range cases {
			head, snap := rg.store.Head(), rg.runner.Snapshot()
			hdr := []string{"Content-Type", tc.ctype}
			if tc.ctype == "" {
				hdr = []string{"Content-Type", "application/json"}
			}
			body := tc.body
			if tc.name == "oversized" && r.MaxBody > 0 { // a route with its own limit (the code-file import)
				body = `{"name":"` + strings.Repeat("x", int(r.MaxBody)) + `"}`
			}
			if body == "" {
				body = " " // do() sends no body for ""
			}
			code, b := c.do(r.Method, pathOf(r), body, hdr...)
			if code != tc.want {
				t.Errorf("%s %s, %s: HTTP %d %s, want %d", r.Method, r.Path, tc.name, code, b, tc.want)
			}
			if h := rg.store.Head(); h != head {
				t.Errorf("%s %s, %s: the journal moved %d → %d", r.Method, r.Path, tc.name, head, h)
			}
			if s := rg.runner.Snapshot(); s.State != snap.State {
				t.Errorf("%s %s, %s: the line went %s → %s", r.Method, r.Path, tc.name, snap.State, s.State)
			}
		}
	}
}

// TestCommands: the operator drives the line; the state machine's
// refusals come back as 409 in the caller's language; counters rise.
func TestCommands(t *testing.T) {
	rg := newRig(t, rigOpts{})
	op := rg.login("operator", "demo")
	cmd := func(c string) (int, []byte) {
		return op.do(http.MethodPost, "/api/v1/line/commands", fmt.Sprintf(`{"command":%q}`, c))
	}
	code, b := cmd("start")
	if code != http.StatusConflict || errCode(t, b) != "refused" || !strings.Contains(string(b), "start in Stopped") ||
		!strings.Contains(string(b), "产线当前状态不允许此操作") {
		t.Fatalf("start in Stopped: HTTP %d %s", code, b)
	}
	op.lang = "en-GB,en;q=0.9"
	if _, b := cmd("start"); !strings.Contains(string(b), "the line's state does not allow this: start in Stopped") {
		t.Fatalf("in English: %s", b)
	}
	op.lang = ""
	if code, b := op.do(http.MethodPost, "/api/v1/line/commands", `{"command":"reset","user":"mallory"}`); code != 400 {
		t.Fatalf("a user in the body: HTTP %d %s", code, b)
	}
	if code, b := cmd("launch"); code != 400 || errCode(t, b) != "bad_command" {
		t.Fatalf("launch: HTTP %d %s", code, b)
	}
	steps := []struct{ cmd, state string }{{"reset", "Idle"}, {"start", "Execute"}}
	for _, st := range steps {
		if code, b := cmd(st.cmd); code != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", st.cmd, code, b)
		}
		rg.waitLine(st.state, func(s line.Snapshot) bool { return s.State == st.state })
	}
	rg.produce(10)
	rg.waitLine("10 passed", func(s line.Snapshot) bool { return s.Counters.Passed == 10 })
	code, b = op.do(http.MethodGet, "/api/v1/line", "")
	var doc hmi.LineDoc
	if err := json.Unmarshal(b, &doc); code != 200 || err != nil {
		t.Fatalf("GET line: HTTP %d %v", code, err)
	}
	if doc.Line.Counters.Passed != 10 || doc.Batch != batch || !doc.Demo {
		t.Fatalf("overview: passed %d, batch %q, demo %t", doc.Line.Counters.Passed, doc.Batch, doc.Demo)
	}
	for _, st := range []struct{ cmd, state string }{{"hold", "Held"}, {"unhold", "Execute"}} {
		if code, b := cmd(st.cmd); code != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", st.cmd, code, b)
		}
		rg.waitLine(st.state, func(s line.Snapshot) bool { return s.State == st.state })
	}
	// Every command given, refused or not, is in the batch's audit trail
	// with the operator (not the bad ones: unknown, a user in the body).
	var trail []string
	if err := rg.store.Trail(context.Background(), batch, func(e aggregation.Event) error {
		if e.Kind == aggregation.EvRecord && e.Reason == "command" {
			var v struct{ Command, Answer string }
			_ = json.Unmarshal([]byte(e.Answer), &v)
			trail = append(trail, e.Actor.ID+" "+v.Command+" "+v.Answer)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"operator start command not allowed in this state: start in Stopped", "operator start command not allowed in this state: start in Stopped",
		"operator reset accepted", "operator start accepted", "operator hold accepted", "operator unhold accepted"}
	if !slices.Equal(trail, want) {
		t.Fatalf("audit trail:\n%s\nwant\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
}

// TestPageWeight: the overview page — its HTML, shell, strings, module and
// styles — stays under 300 KB (no framework, no fonts).
func TestPageWeight(t *testing.T) {
	rg := newRig(t, rigOpts{})
	total := 0
	for _, p := range []string{"/", "/static/app.js", "/static/i18n.js", "/static/pages/overview.js", "/static/style.css"} {
		res, err := http.Get(rg.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(b) == 0 {
			t.Fatalf("%s: HTTP %d", p, res.StatusCode)
		}
		total += len(b)
	}
	op := rg.login("operator", "demo")
	_, ov := op.do(http.MethodGet, "/api/v1/line", "")
	total += len(ov)
	t.Logf("overview page: %d bytes", total)
	if total >= 300<<10 {
		t.Fatalf("overview page weighs %d bytes", total)
	}
	if res, _ := http.Get(rg.ts.URL + "/static/nothing.js"); res.StatusCode != 404 {
		t.Fatalf("missing asset: HTTP %d", res.StatusCode)
	}
}

// Both of the line's shapes serve the HMI: a batch's runner, and the
// multi-batch line seen as one runner.
var (
	_ hmi.Line = (*line.Runner)(nil)
	_ hmi.Line = line.RunnerView{}
)
