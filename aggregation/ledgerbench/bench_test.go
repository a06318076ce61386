package ledgerbench

import (
	"context"
	"encoding/json"
	"github.com/tracline/tracline/aggregation/ledgerbench/benchstat"
	"strings"
	"testing"

	"github.com/tracline/tracline/aggregation/ledgerbench/pgpeer"
)

// TestRunWithPostgresPeer runs a small benchmark with the PostgreSQL peer
// (a real throwaway cluster): the peer gets our full load's units and
// writers, and the JSON states ours against it.
func TestRunWithPostgresPeer(t *testing.T) {
	if _, err := pgpeer.FindServer(); err != nil {
		t.Fatalf("this test runs a real PostgreSQL server: %v", err)
	}
	cfg := Default()
	cfg.Units, cfg.Ratios, cfg.Writers, cfg.LineRate, cfg.LineSamples, cfg.MemLimitMB = 2000, []int{10}, 32, 1000, 20, 0
	cfg.Peer, cfg.PeerConns = PeerPostgres, 4
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.VerifyOK {
		t.Errorf("our ledger does not verify")
	}
	if w := res.LineWrites; w == nil || w.Writes != uint64(cfg.LineSamples) || w.Stages["total"].P50 <= 0 {
		t.Errorf("line_writes: %+v, want the stages of %d line-load acks", w, cfg.LineSamples)
	}
	if d := res.LineDiskSync; d == nil || d.N != cfg.LineSamples || d.P50ms <= 0 || d.P99ms < d.P50ms {
		t.Errorf("line_disk_sync_ms: %+v, want %d paced fdatasyncs", d, cfg.LineSamples)
	}
	if res.RedoBytesPerTrans < 32 || res.Groups == 0 {
		t.Errorf("redo_bytes_per_transition %v over %d groups: every group's redo record is at least its 32-byte header", res.RedoBytesPerTrans, res.Groups)
	}
	p := res.PostgresPeer
	if p == nil {
		t.Fatal("no postgres_peer in the result")
	}
	if p.Units != 1980 || p.Writers != 32 || p.Conns != 4 || !p.Sync || p.TransitionsPerS <= 0 {
		t.Errorf("peer: %+v", p.Result)
	}
	if want := benchstat.Round(res.TransitionsPerS / p.TransitionsPerS); p.Ratio != want {
		t.Errorf("ratio %v, want %v (%v / %v)", p.Ratio, want, res.TransitionsPerS, p.TransitionsPerS)
	}
	if res.CPUUsPerTransition <= 0 || p.CPUUsPerTransition <= 0 || p.CPURatio != benchstat.Round(p.CPUUsPerTransition/res.CPUUsPerTransition) {
		t.Errorf("CPU per transition: ours %v, peer %v, cpu_ratio %v", res.CPUUsPerTransition, p.CPUUsPerTransition, p.CPURatio)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	pm, ok := m["postgres_peer"].(map[string]any)
	if !ok {
		t.Fatalf("JSON without postgres_peer: %s", b)
	}
	for _, k := range []string{"transitions_per_s", "ack_p50_ms", "ack_p99_ms", "ratio", "cpu_ratio", "cpu_us_per_transition", "connections", "settings"} {
		if _, ok := pm[k]; !ok {
			t.Errorf("postgres_peer has no %q: %s", k, b)
		}
	}
}

func TestValidatePeer(t *testing.T) {
	for _, tc := range []struct {
		peer  string
		conns int
		want  string
	}{
		{"", 0, ""},
		{PeerPostgres, 0, ""},
		{PeerPostgres, 16, ""},
		{"mysql", 0, `--peer "mysql"`},
		{"", 8, "--peer-conns 8 without --peer"},
		{PeerPostgres, 1000, "--peer-conns 1000"},
	} {
		cfg := Default()
		cfg.Peer, cfg.PeerConns = tc.peer, tc.conns
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q/%d: %v", tc.peer, tc.conns, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q/%d: %v, want an error naming %q", tc.peer, tc.conns, err, tc.want)
		}
	}
}
