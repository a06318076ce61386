package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

func runLinectl(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := realMain(args, strings.NewReader(stdin), &out, &errb)
	return rc, out.String(), errb.String()
}

// makeLedger writes a small released batch.
func makeLedger(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	by := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"}
	spec := aggregation.BatchSpec{ID: "B", Product: "P", Line: "L", Levels: []aggregation.LevelSpec{
		{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 2, Scheme: tracecode.SchemeNMPA20}}}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	step(s.CreateBatch(ctx, spec, by))
	var got [2][]tracecode.Code
	for l := 0; l < 2; l++ {
		cs := []tracecode.Code{}
		for i := 0; i < 2/(l+1); i++ {
			cs = append(cs, tracecode.Code("8"+strings.Repeat(string(rune('1'+l)), 6)+"0000000000000"[:12]+string(rune('0'+i))))
		}
		step(s.AddToPool(ctx, "p"+string(rune('1'+l)), cs, "test"))
		a, err := s.AllocateFromPool(ctx, "B", tracecode.Level(l+1), "p"+string(rune('1'+l)), len(cs), by)
		step(err)
		step(s.MarkSent(ctx, a, by))
		for _, c := range a {
			step(s.Commission(ctx, c, aggregation.UnitInfo{}, by))
		}
		got[l] = a
	}
	step(s.Pack(ctx, got[1][0], got[0], aggregation.PackOpts{}, by))
	step(s.Release(ctx, "B", aggregation.Signature{User: "qa", Meaning: "released", At: time.Now()}, by))
}

func TestVerifyBackupRestoreCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	makeLedger(t, dir)
	if rc, out, errs := runLinectl(t, "", "verify", "--data", dir); rc != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("verify rc %d: %s %s", rc, out, errs)
	}
	bk := filepath.Join(t.TempDir(), "b.bak")
	if rc, _, errs := runLinectl(t, "", "backup", "--data", dir, "--out", bk); rc != 0 {
		t.Fatalf("backup rc %d: %s", rc, errs)
	}
	dir2 := filepath.Join(t.TempDir(), "restored")
	if rc, _, errs := runLinectl(t, "", "restore", "--data", dir2, bk); rc != 0 {
		t.Fatalf("restore rc %d: %s", rc, errs)
	}
	if rc, out, _ := runLinectl(t, "", "verify", "--data", dir2); rc != 0 {
		t.Fatalf("verify restored rc %d: %s", rc, out)
	}
	if rc, _, _ := runLinectl(t, "", "restore", "--data", dir2, bk); rc == 0 {
		t.Fatal("restore into a non-empty directory succeeded")
	}
	if rc, _, _ := runLinectl(t, "", "verify", "--data", filepath.Join(t.TempDir(), "none")); rc == 0 {
		t.Fatal("verify of a missing directory succeeded")
	}

	// Flip one byte of a stored event: verify exits 1 naming it.
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	key := append([]byte("j/"), 0, 0, 0, 0, 0, 0, 0, 5)
	err = db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, _ := it.ValueCopy(nil)
		v[40] ^= 0x04
		return txn.Set(key, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	rc, out, _ := runLinectl(t, "", "verify", "--data", dir)
	if rc != 1 || !strings.Contains(out, "event 5: hash mismatch") {
		t.Fatalf("verify of a tampered ledger: rc %d\n%s", rc, out)
	}
}

func TestBenchLedgerSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test")
	}
	rc, out, errs := runLinectl(t, "", "bench", "ledger", "--units", "5000", "--writers", "64", "--line-samples", "5", "--line-rate", "1000", "--nosync")
	if rc != 0 || !strings.Contains(out, `"transitions_per_s"`) || !strings.Contains(out, `"ack_p99_ms"`) || !strings.Contains(out, `"verify_ok": true`) {
		t.Fatalf("rc %d\n%s\n%s", rc, out, errs)
	}
}
