package aggregation

import (
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// A schema 6 to 9 ledger is upgraded on open (each later schema only
// added event kinds, tables or, in 10, the redo log); an older one is
// refused, naming both versions.
func TestSchemaUpgradeAndRefusal(t *testing.T) {
	for _, tc := range []struct {
		stored, want string
		ok           bool
	}{{"6", schemaVersion, true}, {"7", schemaVersion, true}, {"8", schemaVersion, true}, {"9", schemaVersion, true}, {"10", schemaVersion, true}, {"5", "5", false}} {
		dir := t.TempDir()
		s, err := Open(dir, smallRedo)
		must(t, err)
		must(t, s.caughtUp())
		must(t, s.db.Update(func(txn *badger.Txn) error { return txn.Set(keySchema, []byte(tc.stored)) }))
		must(t, s.Close())
		s, err = Open(dir, smallRedo)
		if !tc.ok {
			if err == nil || !strings.Contains(err.Error(), `"5"`) || !strings.Contains(err.Error(), schemaVersion) {
				t.Fatalf("schema %s: open gave %v, want a refusal naming both versions", tc.stored, err)
			}
			continue
		}
		must(t, err)
		var got string
		must(t, s.caughtUp())
		must(t, s.db.View(func(txn *badger.Txn) error {
			it, err := txn.Get(keySchema)
			if err != nil {
				return err
			}
			v, err := it.ValueCopy(nil)
			got = string(v)
			return err
		}))
		must(t, s.Close())
		if got != tc.want {
			t.Fatalf("schema %s after open: %q, want %q", tc.stored, got, tc.want)
		}
	}
}
