package pgpeer

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// needServer fails the test (never skips it) when the server binaries are
// missing, saying what to install.
func needServer(t *testing.T) {
	t.Helper()
	if _, err := FindServer(); err != nil {
		t.Fatalf("these tests run a real PostgreSQL server: %v", err)
	}
}

// TestPeerFinalState runs the peer's load on a real throwaway cluster and
// checks the tables afterwards: every code allocated, sent and commissioned
// exactly once and in that order, one item per code, counts that match.
func TestPeerFinalState(t *testing.T) {
	needServer(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		// 2,000 is not a multiple of 64: the last work item is short.
		{"allocate-send-commission", Config{Units: 2000, Writers: 32, Conns: 4, MaxRows: 1000}},
		{"prealloc", Config{Units: 700, Writers: 32, Conns: 3, MaxRows: 100, Prealloc: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := tc.cfg
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			cfg.defaults()
			cl, err := startCluster(ctx, cfg.Conns, false)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			res, err := runLoad(ctx, cl, cfg)
			if err != nil {
				t.Fatalf("runLoad: %v", err)
			}
			if res.TransitionsPerS <= 0 || res.Transactions == 0 || res.MeanTxRows > float64(cfg.MaxRows) {
				t.Errorf("result: %+v", res)
			}
			if res.Settings["fsync"] != "on" || res.Settings["synchronous_commit"] != "on" {
				t.Errorf("durability settings: %v", res.Settings)
			}

			db, err := cl.connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close(ctx)
			n := cfg.Units
			one := func(q string) int {
				t.Helper()
				var v int
				if err := db.QueryRow(ctx, q).Scan(&v); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return v
			}
			checks := []struct {
				what, q string
				want    int
			}{
				{"codes", `SELECT count(*) FROM codes`, n},
				{"codes left in the pool's queue", `SELECT count(*) FROM pool_queue`, 0},
				{"codes both in the queue and allocated", `SELECT count(*) FROM pool_queue q JOIN codes c USING (code)`, 0},
				{"codes commissioned", `SELECT count(*) FROM codes WHERE state = 'commissioned'`, n},
				{"codes with a batch and level 1", `SELECT count(*) FROM codes WHERE batch IS NOT NULL AND level = 1`, n},
				{"distinct items", `SELECT count(DISTINCT item_id) FROM codes`, n},
				{"items in 0..n-1", `SELECT count(*) FROM codes WHERE item_id BETWEEN 0 AND ` + strconv.Itoa(n-1), n},
				{"events", `SELECT count(*) FROM events`, 3 * n},
				{"allocated events", `SELECT count(*) FROM events WHERE transition = 'allocated'`, n},
				{"sent events", `SELECT count(*) FROM events WHERE transition = 'sent'`, n},
				{"commissioned events", `SELECT count(DISTINCT code) FROM events WHERE transition = 'commissioned'`, n},
				{"codes whose history is not allocated, sent, commissioned", `SELECT count(*) FROM (
					SELECT code FROM events GROUP BY code
					HAVING array_agg(transition ORDER BY id) <> '{allocated,sent,commissioned}') x`, 0},
				{"codes whose item differs from their commission event's", `SELECT count(*) FROM codes c
					JOIN events e ON e.code = c.code AND e.transition = 'commissioned' WHERE e.item_id IS DISTINCT FROM c.item_id`, 0},
				{"events of unknown codes", `SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM codes c WHERE c.code = e.code)`, 0},
			}
			for _, c := range checks {
				if got := one(c.q); got != c.want {
					t.Errorf("%s: %d, want %d", c.what, got, c.want)
				}
			}
			// Statistics are flushed asynchronously: logged, not checked.
			var upd, hot int
			if err := db.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'codes'`).Scan(&upd, &hot); err == nil {
				t.Logf("codes: %d updates, of which %d HOT", upd, hot)
			}
		})
	}
}

// TestClusterCancelAndClose cancels the load as soon as it starts: Run's
// pieces return the context's error without hanging, and Close stops the
// server and removes its directory.
func TestClusterCancelAndClose(t *testing.T) {
	needServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Units: 50_000, Writers: 64, Conns: 4, Logger: slog.New(cancelOn{"postgres peer: setup done", cancel})}
	cfg.defaults()
	cl, err := startCluster(ctx, cfg.Conns, false)
	if err != nil {
		t.Fatal(err)
	}
	pid := cl.cmd.Process.Pid
	if _, err := runLoad(ctx, cl, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("runLoad after cancel: %v, want context.Canceled", err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cl.dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still there: %v", cl.dir, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server process %d still there after Close: %v", pid, err)
	}
	if err := cl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestFindServerMissing: without the binaries, the error says what to
// install.
func TestFindServerMissing(t *testing.T) {
	half := t.TempDir() // initdb without postgres is not a server
	if err := os.WriteFile(half+"/initdb", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := findServerIn([]string{t.TempDir(), half, "/nonexistent"})
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "Debian package postgresql") {
		t.Errorf("findServerIn without binaries: %v", err)
	}
	if err := os.WriteFile(half+"/postgres", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := findServerIn([]string{t.TempDir(), half}); err != nil || d != half {
		t.Errorf("findServerIn: %q, %v; want %q", d, err, half)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{Units: 1}, ""},
		{Config{Units: 100_000, Writers: 1024, Conns: 64, MaxRows: 1000}, ""},
		{Config{Units: 0}, "units 0"},
		{Config{Units: 10, Writers: 5000}, "writers 5000"},
		{Config{Units: 10, Conns: -1}, "--peer-conns -1"},
		{Config{Units: 10, MaxRows: 10}, "rows per transaction 10"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want an error naming %q", tc.cfg, err, tc.want)
		}
	}
}

// cancelOn is a log handler that cancels when it sees a message.
type cancelOn struct {
	msg    string
	cancel context.CancelFunc
}

func (h cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOn) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.cancel()
	}
	return nil
}
func (h cancelOn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOn) WithGroup(string) slog.Handler      { return h }
