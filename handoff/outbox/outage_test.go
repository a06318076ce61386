package outbox

import (
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/handoff/receiver"
)

// TestReceiverDownForAnHour: with the default retry settings, a receiver
// answering 503 for an hour gets the document by itself once it is back —
// no user resends it — within backoff_max of its return; one down for
// longer than retry_for fails the delivery, and nothing is sent after that.
func TestReceiverDownForAnHour(t *testing.T) {
	defaults := func(c *Config) {
		for i := range c.Endpoints {
			c.Endpoints[i].MaxSends, c.Endpoints[i].BackoffMax, c.Endpoints[i].RetryFor = 0, 0, 0
			c.Endpoints[i].Timeout = 200 * time.Millisecond
		}
	}
	f := newFixture(t, defaults)
	f.capture.SetDefault(receiver.Unavailable)
	d := f.add(FormatEPCISJSON, epcisJSON("B1", f.codes))
	start := f.clk.Now()
	back := start.Add(time.Hour)
	for f.clk.Now().Before(back) {
		next, err := f.ob.Step(ctx)
		must(t, err)
		if next.IsZero() {
			t.Fatalf("at %v into the outage nothing is left to do: %+v", f.clk.Now().Sub(start), f.doc(d.ID).Deliveries)
		}
		f.clk.Set(next)
	}
	dl := f.doc(d.ID).Deliveries[0]
	if dl.State == Failed || dl.State == Delivered {
		t.Fatalf("after an hour down: %s %q", dl.State, dl.Error)
	}
	if dl.Sends < 20 {
		t.Errorf("%d sends in an hour's outage, want the retries to go on (backoff ≤ 2m)", dl.Sends)
	}
	f.capture.SetDefault(receiver.Accept)
	f.drive(100)
	got := f.doc(d.ID)
	dl = got.Deliveries[0]
	if got.State != Delivered || !f.handedOff(d.ID) {
		t.Fatalf("after the receiver came back: %s %+v", got.State, got.Deliveries)
	}
	if lag := dl.Accepted.Sub(back); lag > 2*time.Minute {
		t.Errorf("accepted %v after the receiver came back, want within backoff_max (2m)", lag)
	}
	if sum := f.capture.Summary(); sum.Accepted != 1 {
		t.Errorf("receiver: %s", sum.Text)
	}

	// Down for longer than retry_for (3h here): failed, naming why, and
	// then left alone (QA's resend or replace).
	f = newFixture(t, func(c *Config) {
		defaults(c)
		c.Endpoints[1].RetryFor = 3 * time.Hour
	})
	f.platform.SetDefault(receiver.Unavailable)
	d = f.add(FormatRelation, relationXML("B1", f.codes, -1))
	f.drive(1000)
	got = f.doc(d.ID)
	dl = got.Deliveries[0]
	if got.State != Failed || !strings.Contains(dl.Error, "retry_for 3h0m0s") || !strings.Contains(dl.Error, "503") {
		t.Fatalf("after 3h down: %s %q", got.State, dl.Error)
	}
	if took := dl.Done.Sub(dl.Since); took < 3*time.Hour || took > 3*time.Hour+2*time.Minute {
		t.Errorf("failed %v after the first send, want retry_for (3h) to within one backoff", took)
	}
	n := f.platform.Summary().Received
	f.clk.Set(f.clk.Now().Add(24 * time.Hour))
	f.drive(10)
	if m := f.platform.Summary().Received; m != n {
		t.Errorf("%d sends after the delivery failed", m-n)
	}
}
