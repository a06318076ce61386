package aggregation

import (
	"errors"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

var alice = Actor{Kind: ActorUser, ID: "alice"}

func TestRecordMetaAndTrail(t *testing.T) {
	s, dir := openTest(t)
	cs := commissioned(t, s, "B1", []int{4, 2}, 2)
	seq, err := s.Record(ctx, Record{Type: "login", Key: "account/alice", Value: `{"roles":["qa"]}`}, alice)
	must(t, err)
	if seq != s.Head() {
		t.Fatalf("record seq %d, head %d", seq, s.Head())
	}
	v, at, err := s.Meta(ctx, "account/alice")
	must(t, err)
	if v != `{"roles":["qa"]}` || at != seq {
		t.Fatalf("meta = %q @%d, want the record's value @%d", v, at, seq)
	}
	_, err = s.Record(ctx, Record{Type: "command", Batch: "B1", Value: `{"command":"hold"}`}, alice)
	must(t, err)
	must(t, s.Pack(ctx, cs[1][0], cs[0][:2], PackOpts{}, alice))                  // by a user: in the trail
	must(t, s.Decommission(ctx, cs[0][3], "damaged", alice))                      // no batch in the event: found from the code
	must(t, s.Decommission(ctx, cs[0][2], "damaged", Actor{ActorSystem, "line"})) // by the system: not in the trail
	_, err = s.Record(ctx, Record{Type: "account", Key: "account/bob", Value: "{}"}, alice)
	must(t, err)
	_, err = s.Record(ctx, Record{Type: "account", Key: "account/alice"}, alice) // empty value: deleted
	must(t, err)
	if _, _, err := s.Meta(ctx, "account/alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted meta key: %v, want not found", err)
	}
	var keys []string
	must(t, s.MetaPrefix(ctx, "account/", func(k, v string, _ uint64) error { keys = append(keys, k+"="+v); return nil }))
	if strings.Join(keys, ",") != "account/bob={}" {
		t.Fatalf("meta prefix: %v", keys)
	}
	var trail []string
	must(t, s.Trail(ctx, "B1", func(ev Event) error { trail = append(trail, string(ev.Kind)+":"+ev.Reason); return nil }))
	if got, want := strings.Join(trail, ","), "batch_create:,record:command,pack:,decommission:damaged"; got != want {
		t.Fatalf("trail %s, want %s", got, want)
	}
	if err := s.Trail(ctx, "nope", func(Event) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("trail of an unknown batch: %v", err)
	}
	must(t, s.Close())
	rep, err := VerifyDir(ctx, dir, Options{})
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

func TestRecordBadInputChangesNothing(t *testing.T) {
	s, _ := openTest(t)
	commissioned(t, s, "B1", []int{1})
	head := s.Head()
	for _, r := range []Record{
		{Type: ""}, {Type: "Login"}, {Type: "a b"}, {Type: strings.Repeat("x", 65)},
		{Type: "x", Key: "bad\x01key"}, {Type: "x", Value: strings.Repeat("v", MaxRecordValue+1)},
		{Type: "x", Batch: "unknown"},
	} {
		if _, err := s.Record(ctx, r, alice); err == nil {
			t.Errorf("record %+v accepted", r)
		}
	}
	if _, err := s.Record(ctx, Record{Type: "x"}, Actor{Kind: "robot", ID: "r"}); err == nil {
		t.Error("record by an unknown actor kind accepted")
	}
	if s.Head() != head {
		t.Fatalf("head moved from %d to %d on refused records", head, s.Head())
	}
}

// A schema 7 ledger gets its audit trail index built from the journal on
// upgrade, so that Verify's replay agrees with it.
func TestSchema7UpgradeBuildsTrail(t *testing.T) {
	s, dir := openTest(t)
	cs := commissioned(t, s, "B1", []int{2})
	must(t, s.Decommission(ctx, cs[0][0], "damaged", alice))
	must(t, s.caughtUp())
	must(t, s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(keySchema, []byte("7")); err != nil {
			return err
		}
		var ks [][]byte
		if err := scanPrefix(txn, pfxTrail, func(k, _ []byte) error { ks = append(ks, append([]byte(nil), k...)); return nil }); err != nil {
			return err
		}
		if len(ks) != 2 {
			t.Errorf("trail keys before the downgrade: %d, want 2", len(ks))
		}
		for _, k := range ks {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.Close())
	s, err := Open(dir, Options{NoSync: true})
	must(t, err)
	n := 0
	must(t, s.Trail(ctx, "B1", func(Event) error { n++; return nil }))
	must(t, s.Close())
	if n != 2 {
		t.Fatalf("trail after upgrade: %d events, want 2 (creation, decommission)", n)
	}
	rep, err := VerifyDir(ctx, dir, Options{})
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify after upgrade: %v", rep.Problems)
	}
}
