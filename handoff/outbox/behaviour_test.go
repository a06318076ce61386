package outbox

import (
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/receiver"
)

// TestBehaviours delivers to each receiver over loopback HTTP in each of
// its behaviours.
func TestBehaviours(t *testing.T) {
	type check func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary)
	tests := []struct {
		name   string
		script []receiver.Behaviour
		def    receiver.Behaviour
		want   State
		check  check
	}{
		{"accept", nil, "", Delivered, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			if sum.Received != 1 || sum.Accepted != 1 {
				t.Errorf("receiver: %s", sum.Text)
			}
		}},
		{"refuse", []receiver.Behaviour{receiver.Refuse}, "", Failed, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			dl := d.Deliveries[0]
			if !strings.Contains(dl.Error, "refused") || !strings.Contains(dl.Error, "HTTP 422") || !strings.Contains(dl.Error, "not today") {
				t.Errorf("error %q", dl.Error)
			}
			if dl.Sends != 1 || f.handedOff(d.ID) {
				t.Errorf("sends %d, handed off %v", dl.Sends, f.handedOff(d.ID))
			}
			// corrected outside the document (the receiver accepts again): resend
			r, err := f.ob.Resend(ctx, d.ID, qa)
			must(t, err)
			if r.Deliveries[0].State != Pending {
				t.Fatalf("after resend: %+v", r.Deliveries[0])
			}
			f.drive(30)
			if d := f.doc(d.ID); d.State != Delivered || !f.handedOff(d.ID) {
				t.Errorf("after resend: %s %+v", d.State, d.Deliveries)
			}
			as, _ = f.ob.Attempts(ctx, d.ID)
			found := false
			for _, a := range as {
				found = found || a.Op == "resend" && a.By == "qa"
			}
			if !found {
				t.Errorf("no resend by qa in %+v", as)
			}
			if _, err := f.ob.Resend(ctx, d.ID, qa); err == nil {
				t.Error("resend of a delivered document accepted")
			}
		}},
		{"time out", []receiver.Behaviour{receiver.Hang}, "", Delivered, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			if d.Deliveries[0].Sends != 2 {
				t.Errorf("sends %d", d.Deliveries[0].Sends)
			}
			if !hasAttempt(as, "send", "error", "no answer within 200ms") {
				t.Errorf("attempts %+v", as)
			}
		}},
		{"5xx then accept", []receiver.Behaviour{receiver.Unavailable, receiver.Unavailable}, "", Delivered, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			n := 0
			for _, a := range as {
				if a.Op == "send" && a.Outcome == "error" && a.Status == 503 {
					n++
				}
			}
			if n != 2 || d.Deliveries[0].Sends != 3 {
				t.Errorf("%d 503 answers, %d sends: %+v", n, d.Deliveries[0].Sends, as)
			}
		}},
		{"5xx always", nil, receiver.Unavailable, Failed, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			if e := d.Deliveries[0].Error; !strings.Contains(e, "gave up after 4 sends") || !strings.Contains(e, "503") {
				t.Errorf("error %q", e)
			}
			if sum.Received != 4 {
				t.Errorf("receiver: %s", sum.Text)
			}
		}},
		{"answer lost, sent twice", []receiver.Behaviour{receiver.LoseAnswer}, "", Delivered, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			if sum.Received != 2 || sum.Accepted != 1 || sum.Duplicates != 1 {
				t.Errorf("receiver: %s", sum.Text)
			}
			// the ledger was told once
			n := 0
			must(t, f.led.Trail(ctx, "B1", func(ev aggregation.Event) error {
				if ev.Kind == aggregation.EvHandedOff && ev.Document == d.ID {
					n++
				}
				return nil
			}))
			if n != 1 {
				t.Errorf("%d hand-off events", n)
			}
		}},
		{"an hour to process", []receiver.Behaviour{receiver.Slow}, "", Delivered, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			dl := d.Deliveries[0]
			if took := dl.Done.Sub(dl.Accepted); took < time.Hour {
				t.Errorf("delivered %v after acceptance", took)
			}
			if dl.Polls < 5 || dl.Polls > 30 || sum.Received != 1 {
				t.Errorf("%d polls, receiver: %s", dl.Polls, sum.Text)
			}
		}},
		{"garbage status", []receiver.Behaviour{receiver.Garbage}, "", Failed, func(t *testing.T, f *fixture, d Document, as []Attempt, sum receiver.Summary) {
			e := d.Deliveries[0].Error
			if !strings.Contains(e, "bad answer") || !strings.Contains(e, "not JSON") || !strings.Contains(e, "gave up after 4 status questions") {
				t.Errorf("error %q", e)
			}
			if !hasAttempt(as, "poll", "error", "bad answer") {
				t.Errorf("attempts %+v", as)
			}
		}},
	}
	for _, kind := range []Kind{KindEPCIS, KindPlatform} {
		for _, tc := range tests {
			t.Run(string(kind)+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t, func(c *Config) {
					for i := range c.Endpoints {
						c.Endpoints[i].Timeout = 200 * time.Millisecond
					}
				})
				rc := receiverOf(f, kind)
				rc.Behave(tc.script...)
				if tc.def != "" {
					rc.SetDefault(tc.def)
				}
				var d Document
				if kind == KindEPCIS {
					d = f.add(FormatEPCISJSON, epcisJSON("B1", f.codes))
				} else {
					d = f.add(FormatRelation, relationXML("B1", f.codes, -1))
				}
				if _, err := f.ob.Step(ctx); err != nil {
					t.Fatal(err)
				}
				// one step does not wait for a slow receiver: it only asked
				if tc.name == "an hour to process" {
					if st := f.doc(d.ID).Deliveries[0].State; st != Processing {
						t.Fatalf("after one step: %s", st)
					}
				}
				rc.SetDefault(receiver.Accept)
				if tc.def != "" {
					rc.SetDefault(tc.def)
				}
				f.drive(100)
				d = f.doc(d.ID)
				if d.State != tc.want {
					t.Fatalf("state %s, want %s: %+v", d.State, tc.want, d.Deliveries)
				}
				if (d.State == Delivered) != f.handedOff(d.ID) {
					t.Errorf("state %s, handed off %v", d.State, f.handedOff(d.ID))
				}
				as, err := f.ob.Attempts(ctx, d.ID)
				must(t, err)
				if tc.name == "refuse" {
					rc.SetDefault(receiver.Accept)
				}
				tc.check(t, f, d, as, rc.Summary())
			})
		}
	}
}

type behaving interface {
	Behave(...receiver.Behaviour)
	SetDefault(receiver.Behaviour)
	Summary() receiver.Summary
}

func receiverOf(f *fixture, k Kind) behaving {
	if k == KindEPCIS {
		return f.capture
	}
	return f.platform
}

func hasAttempt(as []Attempt, op, outcome, errPart string) bool {
	for _, a := range as {
		if a.Op == op && a.Outcome == outcome && strings.Contains(a.Error, errPart) {
			return true
		}
	}
	return false
}
