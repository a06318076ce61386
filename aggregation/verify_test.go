package aggregation

import (
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
	cases := []struct {
		name   string
		key    []byte
		mutate func(v []byte) []byte
		want   string
	}{
		{"flip a byte in an event body", journalKey(7), func(v []byte) []byte { v[len(v)-20] ^= 0x01; return v }, "event 7: hash mismatch"},
		{"flip a byte in a stored hash", journalKey(3), func(v []byte) []byte { v[0] ^= 0x80; return v }, "event 3: hash mismatch"},
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
