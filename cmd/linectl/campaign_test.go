package main

// Short versions of the crash and fault campaigns: the same code as
// `linectl campaign crash|fault`, on real processes (linesim, linectl
// run), with fewer kills and faults so that CI can afford them.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/internal/campaign"
)

func campaignEnv(t *testing.T) campaign.Env {
	t.Helper()
	bins := processBinaries(t)
	cfg, err := campaignLineConfig(lineExample)
	if err != nil {
		t.Fatal(err)
	}
	return campaign.Env{Bins: bins, Config: cfg, Dir: t.TempDir(), Logf: t.Logf}
}

// logResult logs a result as the report renders it, and its failures.
func logResult(t *testing.T, res campaign.Result) {
	t.Helper()
	var b strings.Builder
	campaign.Report(&b, []campaign.Result{res})
	t.Logf("%s", b.String())
}

// TestCampaignCrashShort: one kill in each narrow window of production
// (the controller's own kill points), then the batch's release and
// hand-off with every one of their kills and a short receiver outage,
// recovered through the API; every check must hold, every document
// delivered exactly once as the receivers see it.
func TestCampaignCrashShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res, err := campaign.Crash(ctx, campaignEnv(t), campaign.CrashOptions{Units: 240, Rate: 1200, Kills: 3, Seed: 7,
		ReceiverDown: 5 * time.Second, Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	logResult(t, res)
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	tries := 0
	for i, r := range res.Rows {
		tries += r.Tries
		switch {
		case i == 0: // random moments of production: none with 3 kills
		case i <= 3 && r.Tries != 1:
			t.Errorf("row %q: %d tries, want 1 (one kill per window)", r.What, r.Tries)
		case r.Tries == 0:
			t.Errorf("row %q: no try", r.What)
		}
	}
	// 3 in production, 9 in the release and hand-off, the outage.
	if tries != 13 {
		t.Errorf("%d tries, want 13", tries)
	}
	if !res.Passed() {
		t.Errorf("the crash campaign failed:\n%s", strings.Join(res.Failures, "\n"))
	}
}

// TestCampaignFaultShort: the coding printer disconnected and answering
// garbage; each time the line must hold naming the printer, recover once
// it is back, and the batch must end matching the ground truth.
func TestCampaignFaultShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	res, err := campaign.Fault(ctx, campaignEnv(t), campaign.FaultOptions{Devices: []string{"printer"}, Kinds: []string{"cut", "garble"},
		PerTrial: 20, Hold: 2 * time.Second, Seed: 3, Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	logResult(t, res)
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, r := range res.Rows {
		if r.Tries > 0 {
			tried++
			if !strings.HasPrefix(r.What, "coding printer ") || r.Tries != 1 {
				t.Errorf("row %q: %d tries", r.What, r.Tries)
			}
		}
	}
	if tried != 2 {
		t.Errorf("%d faults tried, want 2", tried)
	}
	if !res.Passed() {
		t.Errorf("the fault campaign failed:\n%s", strings.Join(res.Failures, "\n"))
	}
}
