package hmi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/line"
)

// records lists the ledger's journaled records as "type:user".
func records(t *testing.T, rg *rig) []string {
	t.Helper()
	var out []string
	if err := rg.store.Events(context.Background(), 0, func(e aggregation.Event) error {
		if e.Kind == aggregation.EvRecord {
			out = append(out, e.Reason+":"+e.Actor.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// TestLoginSecurity: cookie flags, failed logins journaled, lock-out, and
// the per-address limit that X-Forwarded-For cannot get around.
func TestLoginSecurity(t *testing.T) {
	rg := newRig(t, rigOpts{})
	c := rg.anon()
	req, _ := http.NewRequest(http.MethodPost, rg.ts.URL+"/api/v1/session", strings.NewReader(`{"user":"qa","password":"demo"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ck := res.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Secure || len(ck[0].Value) != 64 {
		t.Fatalf("session cookie %+v", ck)
	}
	// Lock-out: five wrong passwords, then even the right one is refused.
	for i := range 5 {
		code, b := c.do(http.MethodPost, "/api/v1/session", `{"user":"operator","password":"wrong"}`, "X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i))
		want := "bad_login"
		if i == 4 {
			want = "locked"
		}
		if got := errCode(t, b); got != want {
			t.Fatalf("attempt %d: HTTP %d %s, want %s", i, code, b, want)
		}
	}
	if _, b := c.do(http.MethodPost, "/api/v1/session", `{"user":"operator","password":"demo"}`); errCode(t, b) != "locked" {
		t.Fatalf("locked, right password: %s", b)
	}
	rg.clock.add(16 * time.Minute)
	rg.login("operator", "demo")
	// The address limit (20 a minute) counts the peer, whatever
	// X-Forwarded-For claims.
	var last []byte
	for i := range 25 {
		_, last = c.do(http.MethodPost, "/api/v1/session", `{"user":"engineer","password":"x"}`, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
	}
	if errCode(t, last) != "rate_limited" {
		t.Fatalf("25 attempts with forged X-Forwarded-For: last answer %s", last)
	}
	recs := records(t, rg)
	if count(recs, "login.failed:operator") != 6 || count(recs, "login:qa") != 1 || count(recs, "login:operator") != 1 {
		t.Fatalf("journal: %v", recs)
	}
}

// TestTrustedProxy: X-Forwarded-For counts only from a configured proxy.
func TestTrustedProxy(t *testing.T) {
	rg := newRig(t, rigOpts{proxies: []string{"127.0.0.0/8"}})
	c := rg.anon()
	for i := range 25 {
		_, b := c.do(http.MethodPost, "/api/v1/session", `{"user":"engineer","password":"x"}`, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
		if errCode(t, b) == "rate_limited" {
			t.Fatalf("attempt %d from distinct clients behind the proxy rate-limited", i)
		}
	}
	if _, err := hmi.New(hmi.Config{Store: rg.store, Line: rg.runner, Accounts: rg.acc, TrustedProxies: []string{"10.0.0.1"}}); err == nil ||
		!strings.Contains(err.Error(), "hmi.trusted_proxies") {
		t.Fatalf("a proxy without a mask: %v", err)
	}
}

// TestSessionLifecycle: idle timeout, logout, role change ends sessions.
func TestSessionLifecycle(t *testing.T) {
	rg := newRig(t, rigOpts{})
	op := rg.login("operator", "demo")
	if code, _ := op.do(http.MethodGet, "/api/v1/line", ""); code != 200 {
		t.Fatal(code)
	}
	rg.clock.add(14 * time.Minute)
	if code, _ := op.do(http.MethodGet, "/api/v1/session", ""); code != 200 {
		t.Fatalf("used 14 min ago: %d", code)
	}
	rg.clock.add(16 * time.Minute)
	if code, b := op.do(http.MethodGet, "/api/v1/line", ""); code != 401 || errCode(t, b) != "session_expired" {
		t.Fatalf("idle 16 min: HTTP %d %s", code, b)
	}
	qa := rg.login("qa", "demo")
	if code, _ := qa.do(http.MethodDelete, "/api/v1/session", ""); code != 200 {
		t.Fatal(code)
	}
	if code, _ := qa.do(http.MethodGet, "/api/v1/session", ""); code != 401 {
		t.Fatalf("after logout: %d", code)
	}
	eng := rg.login("engineer", "demo")
	admin := rg.login("admin", "demo")
	if code, b := admin.do(http.MethodPut, "/api/v1/accounts/engineer/roles", `{"roles":["engineer","operator"]}`); code != 200 {
		t.Fatalf("role change: HTTP %d %s", code, b)
	}
	if code, _ := eng.do(http.MethodGet, "/api/v1/session", ""); code != 401 {
		t.Fatalf("session survived a role change: %d", code)
	}
	recs := records(t, rg)
	for _, want := range []string{"logout:operator", "logout:qa", "account.roles:admin"} {
		if count(recs, want) != 1 {
			t.Errorf("journal lacks %s: %v", want, recs)
		}
	}
}

// TestInspector: read-only, every call journaled, access ends by itself.
func TestInspector(t *testing.T) {
	rg := newRig(t, rigOpts{})
	us := users(t, rg)
	insp := us["inspector"]
	for _, p := range []string{"/api/v1/line", "/api/v1/session"} {
		if code, b := insp.do(http.MethodGet, p, ""); code != 200 {
			t.Fatalf("%s: HTTP %d %s", p, code, b)
		}
	}
	if code, _ := insp.do(http.MethodPost, "/api/v1/line/commands", `{"command":"reset"}`); code != 403 {
		t.Fatalf("inspector gave a command: %d", code)
	}
	if n := count(records(t, rg), "inspector.view:insp"); n != 2 {
		t.Fatalf("%d inspector views journaled, want 2", n)
	}
	rg.clock.add(11 * time.Minute)
	if code, b := insp.do(http.MethodGet, "/api/v1/line", ""); code != 403 || errCode(t, b) != "expired" {
		t.Fatalf("after the grant: HTTP %d %s", code, b)
	}
}

// TestSetup: production's first run — no default password, the one-time
// token makes the admin, then setup is closed.
func TestSetup(t *testing.T) {
	rg := newRig(t, rigOpts{production: true})
	c := rg.anon()
	if code, b := c.do(http.MethodGet, "/api/v1/setup", ""); code != 200 || !strings.Contains(string(b), `"needed":true`) {
		t.Fatalf("setup: HTTP %d %s", code, b)
	}
	for _, u := range []string{"admin", "operator"} {
		if _, b := c.do(http.MethodPost, "/api/v1/session", fmt.Sprintf(`{"user":%q,"password":"demo"}`, u)); errCode(t, b) != "bad_login" {
			t.Fatalf("production %s/demo: %s", u, b)
		}
	}
	body := func(tok string) string {
		return fmt.Sprintf(`{"token":%q,"user":"wang","name":"王工","password":"a long password"}`, tok)
	}
	if code, b := c.do(http.MethodPost, "/api/v1/setup", body("nope")); code != 403 || errCode(t, b) != "bad_token" {
		t.Fatalf("wrong token: HTTP %d %s", code, b)
	}
	tok := rg.acc.SetupToken()
	if code, b := c.do(http.MethodPost, "/api/v1/setup", body(tok)); code != 200 {
		t.Fatalf("setup: HTTP %d %s", code, b)
	}
	if code, b := c.do(http.MethodPost, "/api/v1/setup", body(tok)); code != 409 || errCode(t, b) != "setup_done" {
		t.Fatalf("second setup: HTTP %d %s", code, b)
	}
	a := rg.login("wang", "a long password")
	if code, b := a.do(http.MethodGet, "/api/v1/accounts", ""); code != 200 || !strings.Contains(string(b), "王工") {
		t.Fatalf("accounts: HTTP %d %s", code, b)
	}
}

// TestOps: health, readiness, metrics, barcode.
func TestOps(t *testing.T) {
	rg := newRig(t, rigOpts{})
	c := rg.anon()
	if code, _ := c.do(http.MethodGet, "/healthz", ""); code != 200 {
		t.Fatal(code)
	}
	if code, b := c.do(http.MethodGet, "/readyz", ""); code != 200 {
		t.Fatalf("readyz: HTTP %d %s", code, b)
	}
	res, err := http.Get(rg.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(res.Body)
	seen := map[string]bool{}
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			seen[strings.SplitN(f[0], "{", 2)[0]] = true
		}
	}
	res.Body.Close()
	for _, m := range []string{"tracline_verdicts_total", "tracline_line_state", "tracline_ledger_commit_seconds_count", "tracline_verdict_deadline_misses_total"} {
		if !seen[m] {
			t.Errorf("metrics lack %s", m)
		}
	}
	op := rg.login("operator", "demo")
	for _, code := range []string{goodCode, "]d2010690123456789221X00001", "(00)069012345678901238"} {
		res, err := op.hc.Get(rg.ts.URL + "/api/v1/codes/" + url.PathEscape(code) + "/barcode.png")
		if err != nil {
			t.Fatal(err)
		}
		var magic [8]byte
		_, _ = res.Body.Read(magic[:])
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || string(magic[1:4]) != "PNG" {
			t.Errorf("barcode of %s: HTTP %d %s", code, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	if code, b := op.do(http.MethodGet, "/api/v1/codes/"+url.PathEscape("not a code")+"/barcode.png", ""); code != 400 || errCode(t, b) != "bad_code" {
		t.Fatalf("bad code: HTTP %d %s", code, b)
	}
}

// TestLive: the SSE stream sends the overview at once and again when the
// line moves.
func TestLive(t *testing.T) {
	rg := newRig(t, rigOpts{})
	op := rg.login("operator", "demo")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rg.ts.URL+"/api/v1/line/live", nil)
	res, err := op.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() hmi.Overview {
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ov hmi.Overview
				if err := json.Unmarshal([]byte(d), &ov); err != nil {
					t.Fatal(err)
				}
				return ov
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return hmi.Overview{}
	}
	if ov := next(); ov.Line.State != "Stopped" || !ov.Demo {
		t.Fatalf("first event: %+v", ov.Line)
	}
	if code, b := op.do(http.MethodPost, "/api/v1/line/commands", `{"command":"reset"}`); code != 200 {
		t.Fatalf("reset: %d %s", code, b)
	}
	for ov := next(); ov.Line.State != "Idle"; ov = next() {
	}
	if rg.srv.Clients() != 1 {
		t.Fatalf("%d clients", rg.srv.Clients())
	}
}

// TestAlarmAck: a device fault raises an alarm on the overview; the
// operator acknowledges it, journaled with who and when.
func TestAlarmAck(t *testing.T) {
	rg := newRig(t, rigOpts{})
	op := rg.login("operator", "demo")
	rg.runner.Post(line.DeviceFault{Stamp: line.Stamp{T: time.Now()}, Device: "camera", Err: "link lost"})
	var al hmi.Alarm
	deadline := time.Now().Add(10 * time.Second)
	for al.ID == "" {
		if time.Now().After(deadline) {
			t.Fatal("no alarm on the overview")
		}
		_, b := op.do(http.MethodGet, "/api/v1/line", "")
		var doc hmi.LineDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Alarms) > 0 {
			al = doc.Alarms[0]
		}
	}
	if al.Device != "camera" || al.AckBy != "" {
		t.Fatalf("alarm %+v", al)
	}
	if code, b := op.do(http.MethodPost, "/api/v1/line/alarms/nope/ack", ""); code != 404 {
		t.Fatalf("unknown alarm: HTTP %d %s", code, b)
	}
	code, b := op.do(http.MethodPost, "/api/v1/line/alarms/"+al.ID+"/ack", "")
	var acked hmi.Alarm
	if err := json.Unmarshal(b, &acked); code != 200 || err != nil || acked.AckBy != "operator" || acked.AckAt.IsZero() {
		t.Fatalf("ack: HTTP %d %s", code, b)
	}
	if n := count(records(t, rg), "alarm.ack:operator"); n != 1 {
		t.Fatalf("%d acks journaled", n)
	}
	if h := rg.ready(t); h.OK || h.Problems["device/camera"] == "" {
		t.Fatalf("readyz with the camera down: %+v", h)
	}
}

func (rg *rig) ready(t *testing.T) hmi.Health {
	t.Helper()
	code, b := rg.anon().do(http.MethodGet, "/readyz", "")
	var h hmi.Health
	if err := json.Unmarshal(b, &h); err != nil || (code == 200) != h.OK {
		t.Fatalf("readyz: HTTP %d %s", code, b)
	}
	return h
}

// TestLiveEndsWithSession: the stream ends when the session idles out.
func TestLiveEndsWithSession(t *testing.T) {
	rg := newRig(t, rigOpts{})
	op := rg.login("operator", "demo")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rg.ts.URL+"/api/v1/line/live", nil)
	res, err := op.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() {
		t.Fatal("no first event")
	}
	rg.clock.add(16 * time.Minute)
	for sc.Scan() { // the hub's next broadcast (≤ 1 s) finds the session idle
	}
	if ctx.Err() != nil {
		t.Fatal("the stream outlived its session")
	}
}
