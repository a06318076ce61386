package hmi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/receiver"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/hmi"
)

func rule(rec *release.Record, id string) release.Rule {
	for _, r := range rec.Rules {
		if r.ID == id {
			return r
		}
	}
	return release.Rule{}
}

// TestQARelease walks QA's day over the API: the batch list and its
// filters, the record, the verify run, a signature refused (wrong
// password, no comment, stale hash) with nothing journaled, the release,
// activation (password again) which hands off at once, the documents
// delivered to the stand-in receivers, a refused delivery resent, the
// lookup with the network's side, the HTML and PDF records, a rejected
// batch quarantined; an inspector reads and changes nothing.
func TestQARelease(t *testing.T) {
	qr := newQARig(t, qaOpts{})
	qa := qr.login("qa", "demo")

	var all []aggregation.BatchSummary
	qa.get("/api/v1/qa/batches", &all)
	if len(all) != 3 {
		t.Fatalf("%d batches, want 3", len(all))
	}
	var done []aggregation.BatchSummary
	qa.get("/api/v1/qa/batches?state=complete&from=2026-11-01&to=2026-11-30", &done)
	if len(done) != 2 || done[0].Batch != doneBatch || done[1].Batch != otherBatch {
		t.Fatalf("complete batches: %+v", done)
	}
	if code, b := qa.do("GET", "/api/v1/qa/batches?from=30.11.2026", ""); code != 400 || errCode(t, b) != "bad_filter" ||
		!strings.Contains(string(b), "from") {
		t.Fatalf("a bad date: HTTP %d %s", code, b)
	}
	if code, _ := qr.login("operator", "demo").do("GET", "/api/v1/qa/batches", ""); code != 403 {
		t.Fatalf("the operator read the batch list: %d", code)
	}

	for _, p := range []string{"/api/v1/qa/batches/NOPE", "/api/v1/qa/batches/NOPE/record.html", "/api/v1/qa/documents/NOPE/attempts"} {
		if code, b := qa.do("GET", p, ""); code != 404 || errCode(t, b) != "not_found" {
			t.Errorf("GET %s: HTTP %d %s", p, code, b)
		}
	}
	path := "/api/v1/qa/batches/" + doneBatch
	var doc hmi.RecordDoc
	qa.get(path, &doc)
	rec := doc.Record
	if rec.Header.Batch != doneBatch || rec.State != aggregation.BatchComplete || len(rec.Levels) != 2 || !doc.Outbox || !doc.HandOff {
		t.Fatalf("record: %+v", rec.Header)
	}
	for _, lv := range rec.Levels {
		for _, eq := range lv.Equations {
			if !eq.OK {
				t.Errorf("%s: %s ✗", lv.Level, eq.Text)
			}
		}
	}
	if len(rec.Alarms) != 1 || rec.Alarms[0].AckBy == "" || rec.Alarms[0].AckNote != "cable re-seated" {
		t.Errorf("alarms %+v", rec.Alarms)
	}
	if len(rec.Manual) == 0 || rec.Manual[0].Why != "damaged at the infeed" {
		t.Errorf("manual actions %+v", rec.Manual)
	}
	if r := rule(rec, release.RuleVerify); r.Status != release.RuleBlocked {
		t.Fatalf("verify rule before a verify run: %+v", r)
	}
	code, b := qa.do("POST", "/api/v1/qa/verify", "")
	if code != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("verify: HTTP %d %s", code, b)
	}
	qa.get(path, &doc)
	if !doc.Record.Releasable() || !doc.Record.Chain.Verified {
		t.Fatalf("not releasable after verify: %+v", doc.Record.Rules)
	}
	hash := doc.Record.Hash

	// Refusals change nothing.
	sign := func(body string) (int, []byte) { return qa.do("POST", path+"/sign", body) }
	refusals := []struct{ name, body, code string }{
		{"wrong password", `{"password":"nope","meaning":"released","comment":"ok","hash":"` + hash + `"}`, "bad_signature"},
		{"no comment", `{"password":"demo","meaning":"released","comment":"  ","hash":"` + hash + `"}`, "bad_signature_request"},
		{"no meaning", `{"password":"demo","meaning":"approved","comment":"ok"}`, "bad_signature_request"},
		{"stale hash", `{"password":"demo","meaning":"released","comment":"ok","hash":"00ff"}`, "refused"},
		{"a user in the body", `{"password":"demo","meaning":"released","comment":"ok","user":"admin"}`, "bad_body"},
	}
	for _, r := range refusals {
		head := qr.store.Head()
		head0 := head
		code, b := sign(r.body)
		if code < 400 || errCode(t, b) != r.code {
			t.Errorf("%s: HTTP %d %s, want %s", r.name, code, b, r.code)
		}
		if r.name == "wrong password" { // a failed re-authentication is journaled as such
			head0++
		}
		if h := qr.store.Head(); h != head0 {
			t.Errorf("%s: the journal moved %d → %d", r.name, head, h)
		}
	}
	if code, b := qr.login("admin", "demo").do("POST", path+"/sign", `{"password":"demo","meaning":"released","comment":"ok"}`); code != 403 {
		t.Fatalf("admin signed: HTTP %d %s", code, b)
	}

	var rel hmi.ReleaseDoc
	code, b = sign(`{"password":"demo","meaning":"released","comment":"批记录审核无误 reviewed","hash":"` + hash + `"}`)
	if code != 200 {
		t.Fatalf("sign: HTTP %d %s", code, b)
	}
	mustJSON(t, b, &rel)
	if !rel.Decided || rel.Activated || rel.Record.State != aggregation.BatchReleased || len(rel.Record.Signatures) != 1 {
		t.Fatalf("signed: %+v", rel)
	}
	if s := rel.Record.Signatures[0]; s.FullName != "Demo qa" || s.Meaning != release.Released || s.State != release.SigFinal || s.RecordHash != hash {
		t.Fatalf("signature %+v", s)
	}
	if code, b := sign(`{"password":"demo","meaning":"released","comment":"again"}`); code != 409 {
		t.Fatalf("a second decision: HTTP %d %s", code, b)
	}

	// Activation: the password again, then the hand-off at once.
	if code, b := qa.do("POST", path+"/activate", `{"password":"nope"}`); code != 403 || errCode(t, b) != "bad_signature" {
		t.Fatalf("activate, wrong password: HTTP %d %s", code, b)
	}
	qr.platform.Behave(receiver.Refuse) // the platform refuses the first document it gets
	code, b = qa.do("POST", path+"/activate", `{"password":"demo"}`)
	if code != 200 {
		t.Fatalf("activate: HTTP %d %s", code, b)
	}
	mustJSON(t, b, &rel)
	if !rel.Activated || rel.HandOffError != "" || len(rel.Documents) != 3 || rel.Record.State != aggregation.BatchActive {
		t.Fatalf("activated: state %s, %d documents, %q", rel.Record.State, len(rel.Documents), rel.HandOffError)
	}
	qr.deliver()
	qa.get(path, &doc)
	var failed string
	for _, d := range doc.Documents {
		switch {
		case d.Format == outbox.FormatRelation && d.State == outbox.Failed:
			failed = d.ID
		case d.State != outbox.Delivered:
			t.Errorf("%s: %s", d.ID, d.State)
		}
	}
	if failed == "" {
		t.Fatalf("the refused relation document is not failed: %+v", doc.Documents)
	}
	var attempts []outbox.Attempt
	qa.get("/api/v1/qa/documents/"+failed+"/attempts", &attempts)
	if len(attempts) < 3 || attempts[len(attempts)-1].Outcome != "refused" {
		t.Fatalf("attempts %+v", attempts)
	}
	if code, b := qa.do("POST", "/api/v1/qa/documents/"+doc.Documents[1].ID+"/resend", ""); code != 409 || errCode(t, b) != "refused" {
		t.Fatalf("resend of a delivered document: HTTP %d %s", code, b)
	}
	if code, b := qa.do("POST", "/api/v1/qa/documents/nope/resend", ""); code != 404 {
		t.Fatalf("resend of no document: HTTP %d %s", code, b)
	}
	if code, b := qa.do("POST", "/api/v1/qa/documents/"+failed+"/resend", ""); code != 200 {
		t.Fatalf("resend: HTTP %d %s", code, b)
	}
	qr.deliver()
	qa.get(path, &doc)
	for _, d := range doc.Documents {
		if d.State != outbox.Delivered || !d.HandedOff {
			t.Errorf("after the resend %s: %s", d.ID, d.State)
		}
	}
	if doc.Record.State != aggregation.BatchHandedOff {
		t.Errorf("state %s, want handed_off", doc.Record.State)
	}

	// The recall question, from a unit's code.
	unit := string(qr.done[doneBatch][0][3])
	var lk hmi.LookupDoc
	qa.get("/api/v1/qa/lookup?code="+url.QueryEscape(unit), &lk)
	if lk.Code.Code.Batch != doneBatch || lk.Product != "阿莫西林胶囊" || lk.BatchNumber != "LOT-QA-DONE" || len(lk.Code.Ancestors) != 1 || lk.Code.Top != qr.done[doneBatch][1][0] ||
		len(lk.Code.SameTop) != 10 || len(lk.Code.Code.History) == 0 {
		t.Fatalf("lookup: %+v", lk.Code)
	}
	if lk.Recall == nil || len(lk.Recall.Documents) != 3 || lk.Recall.Documents[0].Deliveries[0].Answer == "" {
		t.Fatalf("recall: %+v (%s)", lk.Recall, lk.RecallError)
	}
	for _, q := range []struct {
		code string
		want int
	}{{"", 400}, {"not a code", 400}, {"80217620000000999999", 404}} {
		if code, b := qa.do("GET", "/api/v1/qa/lookup?code="+url.QueryEscape(q.code), ""); code != q.want {
			t.Errorf("lookup %q: HTTP %d %s", q.code, code, b)
		}
	}

	// The record to print and to file.
	for _, f := range []struct{ ext, ctype, magic string }{{"html", "text/html", "<!DOCTYPE html>"}, {"pdf", "application/pdf", "%PDF-"}} {
		res, err := qa.hc.Get(qr.ts.URL + path + "/record." + f.ext)
		must(t, err)
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), f.ctype) ||
			!strings.Contains(res.Header.Get("Content-Disposition"), "batch-record-QA-DONE."+f.ext) ||
			f.ext == "html" && !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.HasPrefix(strings.TrimSpace(buf.String()), f.magic) {
			t.Errorf("record.%s: HTTP %d %s %.40q", f.ext, res.StatusCode, res.Header.Get("Content-Type"), buf.String())
		}
	}

	// A rejected batch is quarantined: never activated, never handed off.
	other := "/api/v1/qa/batches/" + otherBatch
	code, b = qa.do("POST", other+"/sign", `{"password":"demo","meaning":"rejected","comment":"label misprint 标签错印"}`)
	mustJSON(t, b, &rel)
	if code != 200 || rel.Record.State != aggregation.BatchQARejected {
		t.Fatalf("reject: HTTP %d %s", code, b)
	}
	head := qr.store.Head()
	if code, b := qa.do("POST", other+"/activate", `{"password":"demo"}`); code != 409 || errCode(t, b) != "refused" {
		t.Fatalf("activate a rejected batch: HTTP %d %s", code, b)
	}
	if code, b := qa.do("POST", other+"/handoff", ""); code != 409 {
		t.Fatalf("hand off a rejected batch: HTTP %d %s", code, b)
	}
	if h := qr.store.Head(); h != head {
		t.Fatalf("refusals journaled: %d → %d", head, h)
	}

	// The inspector reads; every page it opens is journaled.
	us := users(t, qr.rig)
	insp := us["inspector"]
	insp.get(path, &doc)
	insp.get("/api/v1/qa/lookup?code="+url.QueryEscape(unit), &lk)
	if code, _ := insp.do("POST", "/api/v1/qa/verify", ""); code != 403 {
		t.Fatalf("the inspector ran verify: %d", code)
	}
	if n := count(records(t, qr.rig), "inspector.view:insp"); n != 2 { // the refused call is not a view
		t.Fatalf("%d inspector views journaled, want 2", n)
	}
}

// TestQAFourEyes: with four-eyes, the first signature waits for a second
// QA user; the same user cannot sign twice; a change of the record after
// a signature voids it visibly (shown void with why) and the release needs
// two signatures on the new record.
func TestQAFourEyes(t *testing.T) {
	qr := newQARig(t, qaOpts{fourEyes: true})
	admin := qr.login("admin", "demo")
	if code, b := admin.do("POST", "/api/v1/accounts", `{"user":"qa2","name":"李质量","roles":["qa"],"password":"second-qa-pw"}`); code != http.StatusCreated {
		t.Fatalf("qa2: HTTP %d %s", code, b)
	}
	qa := qr.login("qa", "demo")
	if code, b := qa.do("POST", "/api/v1/qa/verify", ""); code != 200 {
		t.Fatalf("verify: %d %s", code, b)
	}
	path := "/api/v1/qa/batches/" + doneBatch
	var rel hmi.ReleaseDoc
	code, b := qa.do("POST", path+"/sign", `{"password":"demo","meaning":"released","comment":"first"}`)
	mustJSON(t, b, &rel)
	if code != 200 || rel.Decided || rel.Waiting == "" || rel.Record.Required != 2 || rel.Record.State != aggregation.BatchComplete {
		t.Fatalf("first signature: HTTP %d %s", code, b)
	}
	if code, b := qa.do("POST", path+"/sign", `{"password":"demo","meaning":"released","comment":"again"}`); code != 409 {
		t.Fatalf("the same user twice: HTTP %d %s", code, b)
	}
	// A change after the first signature voids it visibly: qa2's signature
	// is then the first of two again, and qa may sign the new record.
	_, err := qr.store.Record(context.Background(), aggregation.Record{Type: "note", Batch: doneBatch, Value: `{"text":"label roll changed"}`}, operUser)
	must(t, err)
	var doc hmi.RecordDoc
	qa.get(path, &doc)
	if s := doc.Record.Signatures[0]; s.State != release.SigVoid || !strings.Contains(s.Why, "changed") {
		t.Fatalf("the first signature after a change: %+v", s)
	}
	if code, b := qa.do("POST", "/api/v1/qa/verify", ""); code != 200 {
		t.Fatalf("verify: %d %s", code, b)
	}
	qa2 := qr.login("qa2", "second-qa-pw")
	code, b = qa2.do("POST", path+"/sign", `{"password":"second-qa-pw","meaning":"released","comment":"second"}`)
	mustJSON(t, b, &rel)
	if code != 200 || rel.Decided || len(rel.Voided) != 1 || rel.Record.Signatures[0].State != release.SigVoid {
		t.Fatalf("after the change: HTTP %d %s", code, b)
	}
	code, b = qa.do("POST", path+"/sign", `{"password":"demo","meaning":"released","comment":"second, after the change"}`)
	mustJSON(t, b, &rel)
	if code != 200 || !rel.Decided || rel.Record.State != aggregation.BatchReleased || len(rel.Record.Signatures) != 3 {
		t.Fatalf("second signature: HTTP %d %s", code, b)
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := jsonUnmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// TestQANotWired: QA's parts left out, or wired as nil pointers (no outbox
// without endpoints), answer 503 "unavailable" — never a panic.
func TestQANotWired(t *testing.T) {
	rg := newRig(t, rigOpts{})
	srv, err := hmi.New(hmi.Config{Store: rg.store, Line: rg.runner, Accounts: rg.acc, Demo: true,
		Desk: (*release.Desk)(nil), Documents: (*outbox.Outbox)(nil), Publisher: (*handoff.Publisher)(nil)})
	must(t, err)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	rg.ts = ts
	rg.router = rg.openAPIRouter()
	qa := rg.login("qa", "demo")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/v1/qa/batches", ""}, {"GET", "/api/v1/qa/batches/B1", ""}, {"GET", "/api/v1/qa/batches/B1/record.pdf", ""},
		{"GET", "/api/v1/qa/lookup?code=" + url.QueryEscape(goodCode), ""}, {"GET", "/api/v1/qa/documents/d/attempts", ""},
		{"POST", "/api/v1/qa/documents/d/resend", ""}, {"POST", "/api/v1/qa/verify", ""}, {"POST", "/api/v1/qa/batches/B1/handoff", ""},
		{"POST", "/api/v1/qa/batches/B1/sign", `{"password":"demo","meaning":"released","comment":"ok"}`},
		{"POST", "/api/v1/qa/batches/B1/activate", `{"password":"demo"}`},
	} {
		if code, b := qa.do(r.method, r.path, r.body); code != 503 || errCode(t, b) != "unavailable" {
			t.Errorf("%s %s: HTTP %d %s", r.method, r.path, code, b)
		}
	}
}
