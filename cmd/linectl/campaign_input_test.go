package main

import (
	"context"
	"strings"
	"testing"

	"github.com/tracline/tracline/internal/campaign"
)

// TestCampaignInput runs `linectl campaign input` on its fixed CI budget
// for the parts that need the command's wiring: the line config's loader
// and the HMI (a demo line's real HMI and ledger: every refusal category,
// and the request bodies, path parameters and query strings fuzzed), 3 s
// per fuzzed parser. The parsers of
// the packages run in internal/campaign/badinput's TestParsersShortBudget.
func TestCampaignInput(t *testing.T) {
	dir := t.TempDir()
	c, _, stderr := testCLI()
	err := campaignInput(context.Background(), c, []string{"--budget", "3s", "--parsers", "line config,HMI request bodies,HMI path parameters", "--results", dir})
	t.Log(stderr.String())
	if err != nil {
		t.Fatalf("campaign input: %v", err)
	}
	rs, err := campaign.ReadResults(dir)
	if err != nil || len(rs) != 1 {
		t.Fatalf("results %v %v", rs, err)
	}
	r := rs[0]
	if r.Campaign != "input" || !r.Passed() || !strings.Contains(r.Command, "--seed") {
		t.Fatalf("result %+v", r)
	}
	want := []string{"line config", "HMI request bodies", "HMI path parameters and query strings", "HTTP: no session", "HTTP: unknown session cookie", "HTTP: wrong role", "HTTP: bad CSRF",
		"HTTP: foreign Origin", "HTTP: not JSON", "HTTP: oversized", "HTTP: malformed JSON", "HTTP: unknown field", "HTTP: wrong type"}
	if len(r.Rows) != len(want) {
		t.Errorf("%d rows, want %d: %+v", len(r.Rows), len(want), r.Rows)
	}
	for _, w := range want {
		found := false
		for _, row := range r.Rows {
			if strings.HasPrefix(row.What, w) {
				found = true
				if row.Tries == 0 {
					t.Errorf("%s: nothing tried", row.What)
				}
			}
		}
		if !found {
			t.Errorf("no row %q", w)
		}
	}
}
