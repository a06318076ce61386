package outbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/handoff/receiver"
)

// TestWrongTokenThenResend: a receiver refuses a wrong token (401); the
// token is corrected in the config and the document resent.
func TestWrongTokenThenResend(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Endpoints[1].Token = "wrong" })
	d := f.add(FormatRelation, relationXML("B1", f.codes, -1))
	f.drive(10)
	got := f.doc(d.ID)
	if got.State != Failed || !strings.Contains(got.Deliveries[0].Error, "HTTP 401") {
		t.Fatalf("%s %+v", got.State, got.Deliveries)
	}
	f.cfg.Endpoints[1].Token = "secret"
	var err error
	f.ob, err = New(f.cfg, f.led, f.opt)
	must(t, err)
	_, err = f.ob.Resend(ctx, d.ID, qa)
	must(t, err)
	f.drive(10)
	if got := f.doc(d.ID); got.State != Delivered || !f.handedOff(d.ID) {
		t.Fatalf("after the resend: %s %+v", got.State, got.Deliveries)
	}
}

// TestFileChangedOnDisk: a document's file that no longer matches its
// journaled SHA-256 is not sent.
func TestFileChangedOnDisk(t *testing.T) {
	f := newFixture(t, nil)
	d := f.add(FormatRelation, relationXML("B1", f.codes, -1))
	must(t, os.WriteFile(filepath.Join(f.cfg.Dir, d.File), []byte("<Document/>"), 0o600))
	f.drive(10)
	got := f.doc(d.ID)
	if got.State != Failed || !strings.Contains(got.Deliveries[0].Error, "changed on disk") {
		t.Fatalf("%s %+v", got.State, got.Deliveries)
	}
	if s := f.platform.Summary(); s.Received != 0 {
		t.Errorf("receiver: %s", s.Text)
	}
}

// TestJobLost: the receiver forgets its jobs (a restart without state);
// the status question gets 404 and the document is sent again.
func TestJobLost(t *testing.T) {
	for _, kind := range []Kind{KindEPCIS, KindPlatform} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t, nil)
			rc := receiverOf(f, kind).(interface {
				behaving
				Forget()
			})
			rc.Behave(receiver.Slow)
			d := f.addKind(kind)
			f.drive(2)
			rc.Forget()
			f.drive(30)
			got := f.doc(d.ID)
			if got.State != Delivered || got.Deliveries[0].Sends != 2 {
				t.Fatalf("%s %+v", got.State, got.Deliveries)
			}
			as, err := f.ob.Attempts(ctx, d.ID)
			must(t, err)
			if !hasOutcome(as, "poll", "lost") {
				t.Errorf("attempts %+v", as)
			}
		})
	}
}

// TestRetryAfter: a 503 with Retry-After: 1 waits at least a second
// (the backoff alone would be 0.75 s here).
func TestRetryAfter(t *testing.T) {
	f := newFixture(t, nil)
	f.platform.Behave(receiver.Unavailable)
	d := f.add(FormatRelation, relationXML("B1", f.codes, -1))
	f.drive(10)
	as, err := f.ob.Attempts(ctx, d.ID)
	must(t, err)
	var sends []time.Time
	for _, a := range as {
		if a.Op == "send" && strings.HasPrefix(a.Outcome, "begun") {
			sends = append(sends, a.At)
		}
	}
	if len(sends) != 2 || sends[1].Sub(sends[0]) < time.Second {
		t.Fatalf("sends at %v", sends)
	}
}
