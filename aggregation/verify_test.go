package aggregation

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
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
			must(t, s.db.Update(func(txn *badger.Txn) error {
				it, err := txn.Get(tc.key)
				if err != nil {
					return err
				}
				orig, _ = it.ValueCopy(nil)
				return txn.Set(tc.key, tc.mutate(append([]byte(nil), orig...)))
			}))
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
	must(t, s.db.View(func(txn *badger.Txn) error { a = digest(txn); return nil }))
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
	must(t, s.db.Update(func(txn *badger.Txn) error { return txn.Set(k, nil) }))
	rep, err := s.Verify(ctx)
	must(t, err)
	all := strings.Join(rep.Problems, "\n")
	want := fmt.Sprintf("code %s: linked under %s but its record says commissioned", lv[0][2], lv[1][0])
	if !strings.Contains(all, want) {
		t.Fatalf("want %q, got:\n%s", want, all)
	}
	must(t, s.db.Update(func(txn *badger.Txn) error { return txn.Delete(k) }))
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("restored: %v %v", err, rep.Problems)
	}
}
