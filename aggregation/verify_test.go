package aggregation

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

func TestVerifyNamesTamperedEvent(t *testing.T) {
	s, _ := openTest(t)
	lv := commissioned(t, s, "VT", []int{4, 2}, 2)
	must(t, s.Pack(ctx, lv[1][0], lv[0][:2], PackOpts{}, op))
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("clean ledger fails verify: %v", rep.Problems)
	}
	k7, _, end7 := journalSpan(t, s, 7)
	k3, hash3, _ := journalSpan(t, s, 3)
	cases := []struct {
		name   string
		key    []byte
		mutate func(v []byte) []byte
		want   string
	}{
		{"flip a byte in an event body", k7, func(v []byte) []byte { v[end7-20] ^= 0x01; return v }, "event 7: hash mismatch"},
		{"flip a byte in a stored hash", k3, func(v []byte) []byte { v[hash3] ^= 0x80; return v }, "event 3: hash mismatch"},
		{"rewrite a code's state", codeKey("VT", 1, lv[0][3]), func(v []byte) []byte { v[0] = byte(StateSent); return v }, "code " + string(lv[0][3])},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var orig []byte
			must(t, s.caughtUp())
			must(t, s.db.Update(func(txn *badger.Txn) error {
				it, err := txn.Get(tc.key)
				if err != nil {
					return err
				}
				orig, _ = it.ValueCopy(nil)
				return txn.Set(tc.key, tc.mutate(append([]byte(nil), orig...)))
			}))
			must(t, s.caughtUp())
			defer func() { must(t, s.db.Update(func(txn *badger.Txn) error { return txn.Set(tc.key, orig) })) }()
			rep, err := s.Verify(ctx)
			must(t, err)
			all := strings.Join(rep.Problems, "\n")
			if rep.OK() || !strings.Contains(all, tc.want) {
				t.Fatalf("want a problem naming %q, got:\n%s", tc.want, all)
			}
			t.Logf("verify said:\n%s", all)
		})
	}
	rep, err = s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("restored ledger fails verify: %v", rep.Problems)
	}
}

// journalSpan finds event seq: the key of its journal block, and where its
// hash starts and its body ends in the block.
func journalSpan(t *testing.T, s *Store, seq uint64) (key []byte, hashAt, bodyEnd int) {
	t.Helper()
	must(t, s.caughtUp())
	must(t, s.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.Prefix = []byte(pfxJournal)
		it := txn.NewIterator(o)
		defer it.Close()
		it.Seek(journalKey(seq))
		if !it.Valid() {
			return fmt.Errorf("no journal block holds event %d", seq)
		}
		key = it.Item().KeyCopy(nil)
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		ents, err := parseBlock(v)
		if err != nil {
			return err
		}
		first := blockLast(key) - uint64(len(ents)) + 1
		off := 0
		for n := first; n <= seq; n++ {
			l, k := binary.Uvarint(v[off:])
			hashAt, bodyEnd = off+k, off+k+32+int(l)
			off = bodyEnd
		}
		return nil
	}))
	return key, hashAt, bodyEnd
}

func TestBackupRestore(t *testing.T) {
	s, _ := openTest(t)
	lv := commissioned(t, s, "BK", []int{4, 2}, 2)
	must(t, s.Pack(ctx, lv[1][0], lv[0][:2], PackOpts{}, op))
	var buf bytes.Buffer
	must(t, s.Backup(ctx, &buf))
	dir := t.TempDir()
	must(t, Restore(ctx, dir, &buf, Options{NoSync: true}))
	if err := Restore(ctx, dir, bytes.NewReader(nil), Options{}); err == nil {
		t.Fatal("restore into a non-empty directory accepted")
	}
	r, err := Open(dir, Options{NoSync: true})
	must(t, err)
	defer r.Close()
	rep, err := r.Verify(ctx)
	must(t, err)
	if !rep.OK() || rep.Events != s.seq {
		t.Fatalf("restored: %d events (want %d), problems %v", rep.Events, s.seq, rep.Problems)
	}
	var a, b [32]byte
	must(t, s.caughtUp())
	must(t, s.db.View(func(txn *badger.Txn) error { a = digest(txn); return nil }))
	must(t, r.caughtUp())
	must(t, r.db.View(func(txn *badger.Txn) error { b = digest(txn); return nil }))
	if a != b {
		t.Fatal("restored projections differ")
	}
	// The restored ledger goes on where the original stopped.
	must(t, r.Pack(ctx, lv[1][1], lv[0][2:], PackOpts{}, op))
}

// A link whose child's record disagrees is named by the invariant check
// (found by the links' and records' multiset sums, then looked up).
func TestVerifyNamesForeignLink(t *testing.T) {
	s, _ := openTest(t)
	lv := commissioned(t, s, "VL", []int{4, 2}, 2)
	must(t, s.Pack(ctx, lv[1][0], lv[0][:2], PackOpts{}, op))
	k := linkKey(lv[1][0], lv[0][2]) // a commissioned unit, not packed
	must(t, s.caughtUp())
	must(t, s.db.Update(func(txn *badger.Txn) error { return txn.Set(k, nil) }))
	rep, err := s.Verify(ctx)
	must(t, err)
	all := strings.Join(rep.Problems, "\n")
	want := fmt.Sprintf("code %s: linked under %s but its record says commissioned", lv[0][2], lv[1][0])
	if !strings.Contains(all, want) {
		t.Fatalf("want %q, got:\n%s", want, all)
	}
	must(t, s.caughtUp())
	must(t, s.db.Update(func(txn *badger.Txn) error { return txn.Delete(k) }))
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("restored: %v %v", err, rep.Problems)
	}
}

// Every projection table tampered with directly in Badger — a value changed,
// a key added, a key deleted — is named by the comparison with the replay
// (its own phrases, which the invariant check never uses), and the ledger
// verifies again once restored. The ledger holds an unpack and a repack, so
// the replay's children lookup is used.
func TestVerifyNamesTamperedProjections(t *testing.T) {
	s, _ := openTest(t)
	lv := commissioned(t, s, "VP", []int{4, 2}, 2)
	units, boxes := lv[0], lv[1]
	must(t, s.Pack(ctx, boxes[0], units[:2], PackOpts{}, op))
	must(t, s.Pack(ctx, boxes[1], units[2:4], PackOpts{}, op))
	must(t, s.Unpack(ctx, boxes[1], "rework", op))
	must(t, s.Pack(ctx, boxes[1], []tracecode.Code{units[3], units[2]}, PackOpts{}, op))
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("clean ledger: %v %v", err, rep.Problems)
	}
	const (
		differs = "the journal gives"
		extra   = "stored, but no event produced it"
		missing = "missing from the store, the journal produces it"
	)
	jsonEdit := func(field string, f func(any) any) func([]byte) []byte {
		return func(v []byte) []byte {
			var m map[string]any
			must(t, json.Unmarshal(v, &m))
			m[field] = f(m[field])
			out, err := json.Marshal(m)
			must(t, err)
			return out
		}
	}
	plusOne := func(x any) any { return x.(float64) + 1 }
	set := func(v []byte) func([]byte) []byte { return func([]byte) []byte { return v } }
	gone := func([]byte) []byte { return nil }
	cases := []struct {
		name   string
		key    []byte
		mutate func(v []byte) []byte // nil result: delete the key
		want   string
	}{
		{"code state", codeKey("VP", 1, units[3]), func(v []byte) []byte { v[0] = byte(StateSent); return v }, "code " + string(units[3]) + " (batch VP"},
		{"code record deleted", codeKey("VP", 1, units[1]), gone, "code " + string(units[1]) + " (batch VP"},
		{"code record added", codeKey("VP", 1, "12345678901234567890"), set((&rec{State: StateAllocated}).encode()), "code 12345678901234567890 (batch VP"},
		{"counter off by one", counterKey("VP", 1), jsonEdit("commissioned", plusOne), "batch VP"},
		{"link added", linkKey(boxes[0], units[2]), set([]byte{}), "code " + string(units[2]) + " (child of " + string(boxes[0])},
		{"link deleted", linkKey(boxes[1], units[3]), gone, "code " + string(units[3]) + " (child of " + string(boxes[1])},
		{"location", locKey(units[0]), func(v []byte) []byte { return loc{Pool: "VP-L1", QSeq: 3}.encode() }, "code " + string(units[0]) + " (location)"},
		{"pool entry deleted", poolEntryKey("VP-L1", 1), gone, "pool VP-L1 entry 1"},
		{"queue", queueKey("VP-L2"), func(v []byte) []byte { v[7]--; return v }, "pool VP-L2 (queue)"},
		{"allocation deleted", allocKey("VP-L1", 4), gone, "pool VP-L1 allocation ending at entry 4"},
		{"batch record", batchKey("VP"), jsonEdit("state", func(any) any { return "complete" }), "batch VP (record)"},
		{"pool account", poolKey("VP-L1"), jsonEdit("available", plusOne), "pool VP-L1 (account)"},
		{"trail entry added", append(append([]byte(pfxTrail), "VP\x00"...), 0, 0, 0, 0, 0, 0, 0, 2), set(nil), "batch VP audit trail entry 2"},
		{"meta key added", []byte(pfxMeta + "lims/x"), set([]byte("v")), `meta key "lims/x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var orig []byte
			var had bool
			must(t, s.caughtUp())
			must(t, s.db.Update(func(txn *badger.Txn) error {
				it, err := txn.Get(tc.key)
				switch {
				case err == nil:
					had = true
					orig, _ = it.ValueCopy(nil)
				case err != badger.ErrKeyNotFound:
					return err
				}
				v := tc.mutate(append([]byte(nil), orig...))
				if v == nil && had {
					return txn.Delete(tc.key)
				}
				if v == nil {
					v = []byte{}
				}
				return txn.Set(tc.key, v)
			}))
			defer func() {
				must(t, s.caughtUp())
				must(t, s.db.Update(func(txn *badger.Txn) error {
					if had {
						return txn.Set(tc.key, orig)
					}
					return txn.Delete(tc.key)
				}))
				if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
					t.Fatalf("restored: %v %v", err, rep.Problems)
				}
			}()
			rep, err := s.Verify(ctx)
			must(t, err)
			all := strings.Join(rep.Problems, "\n")
			phrase := differs
			switch {
			case !had:
				phrase = extra
			case tc.mutate(append([]byte(nil), orig...)) == nil:
				phrase = missing
			}
			found := false
			for _, p := range rep.Problems {
				if strings.Contains(p, tc.want) && strings.Contains(p, phrase) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want a problem naming %q with %q, got:\n%s", tc.want, phrase, all)
			}
		})
	}
}

// The pages of the ledger's tables dropped from the process's mappings
// (what VerifyDir's store does while Verify runs) are read back intact.
func TestDropMappedPagesKeepsData(t *testing.T) {
	s, dir := openTest(t)
	lv := commissioned(t, s, "DP", []int{4, 2}, 2)
	must(t, s.Pack(ctx, lv[1][0], lv[0][:2], PackOpts{}, op))
	must(t, s.Close())
	v, err := Open(dir, Options{verifyOnly: true, NoSync: true})
	must(t, err)
	defer v.Close()
	var before, after [32]byte
	must(t, v.caughtUp())
	must(t, v.db.View(func(txn *badger.Txn) error { before = digest(txn); return nil }))
	if n := dropMappedPages(dir); n == 0 {
		t.Fatal("no mapping of the ledger's tables found in /proc/self/maps")
	}
	must(t, v.caughtUp())
	must(t, v.db.View(func(txn *badger.Txn) error { after = digest(txn); return nil }))
	if before != after {
		t.Fatal("projections differ after the pages were dropped")
	}
	if rep, err := v.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
}
