package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

var (
	ctx    = context.Background()
	dev    = aggregation.Actor{Kind: aggregation.ActorDevice, ID: "camera-1"}
	sys    = aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"}
	alice  = aggregation.Actor{Kind: aggregation.ActorUser, ID: "alice"}
	bob    = aggregation.Actor{Kind: aggregation.ActorUser, ID: "bob"}
	carol  = aggregation.Actor{Kind: aggregation.ActorUser, ID: "carol"}
	oper   = aggregation.Actor{Kind: aggregation.ActorUser, ID: "op1"}
	t0     = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	prefix = 0
)

// fakeAuth is the accounts stand-in: user → password, full name, roles.
type fakeAuth map[string]struct {
	pw    string
	name  string
	roles []string
}

func (f fakeAuth) Authenticate(_ context.Context, user, pw string) (Signer, error) {
	a, ok := f[user]
	if !ok || a.pw != pw {
		return Signer{}, errors.New("bad credentials")
	}
	return Signer{User: user, FullName: a.name, Roles: a.roles}, nil
}

var accounts = fakeAuth{
	"alice": {"a-pw", "Alice Wang 王丽", []string{"qa"}},
	"bob":   {"b-pw", "Bob Li 李波", []string{"qa"}},
	"carol": {"c-pw", "Carol Zhang 张卡", []string{"qa", "admin"}},
	"op1":   {"o-pw", "Operator One", []string{"operator"}},
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func code(p, i int) tracecode.Code { return tracecode.Code(fmt.Sprintf("8%06d%013d", p, i)) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func open(t testing.TB) *aggregation.Store {
	t.Helper()
	s, err := aggregation.Open(t.TempDir(), aggregation.Options{NoSync: true})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// batch builds batch id on s: units level-1 units packed ratio to a box
// (level 2), all commissioned and packed, the challenge test passed, the
// batch completed. It returns the codes per level.
func batch(t testing.TB, s *aggregation.Store, id string, units, ratio int) [][]tracecode.Code {
	t.Helper()
	spec := aggregation.BatchSpec{ID: id, Product: "阿莫西林胶囊 0.25g", Line: "L1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: ratio, Scheme: tracecode.SchemeNMPA20}},
		Order:  aggregation.WorkOrder{BatchNumber: id, ProductionDate: "2026-12-01", Expiry: "2028-11-30", PlannedQty: int64(units), Workshop: "固体制剂车间", Manager: "陈经理"}}
	must(t, s.CreateBatch(ctx, spec, oper))
	must(t, s.RecordChallenge(ctx, id, aggregation.Challenge{Passed: true, Steps: []aggregation.ChallengeStep{
		{Step: "good unit", Item: 1, Expect: "passed", Got: "passed", OK: true},
		{Step: "no-read", Item: 2, Expect: "rejected", Got: "rejected", OK: true}}}, sys))
	out := make([][]tracecode.Code, 2)
	for li, n := range []int{units + 2, units / ratio} {
		prefix++
		cs := make([]tracecode.Code, n)
		for i := range cs {
			cs[i] = code(prefix, i)
		}
		pool := fmt.Sprintf("%s-L%d", id, li+1)
		must(t, s.AddToPool(ctx, pool, cs, "test"))
		got, err := s.AllocateFromPool(ctx, id, tracecode.Level(li+1), pool, n, dev)
		must(t, err)
		for i := 0; i < len(got); i += 4096 {
			must(t, s.MarkSent(ctx, got[i:min(i+4096, len(got))], dev))
		}
		if li == 0 {
			// One unit rejected by the camera, one taken off by hand.
			must(t, s.Reject(ctx, got[n-2], "grade below C", dev))
			must(t, s.Commission(ctx, got[n-1], aggregation.UnitInfo{ItemID: 999}, dev))
			must(t, s.Decommission(ctx, got[n-1], "damaged at the infeed", oper))
			got = got[:n-2]
		}
		for i, c := range got {
			must(t, s.Commission(ctx, c, aggregation.UnitInfo{ItemID: uint64(i + 1)}, dev))
		}
		out[li] = got
	}
	for i, p := range out[1] {
		must(t, s.Pack(ctx, p, out[0][i*ratio:(i+1)*ratio], aggregation.PackOpts{}, dev))
	}
	must(t, s.Complete(ctx, id, sys))
	return out
}

func desk(t testing.TB, s *aggregation.Store, cfg Config) *Desk {
	t.Helper()
	d, err := New(cfg, s, accounts, &clock{t: t0}, nil)
	must(t, err)
	return d
}

func verified(t testing.TB, d *Desk) {
	t.Helper()
	run, err := d.Verify(ctx, sys)
	must(t, err)
	if !run.OK {
		t.Fatalf("verify failed: %v", run.First)
	}
}

func rule(r *Record, id string) Rule {
	for _, x := range r.Rules {
		if x.ID == id {
			return x
		}
	}
	return Rule{}
}

func TestReleaseSingleSignature(t *testing.T) {
	s := open(t)
	batch(t, s, "B1", 6, 3)
	d := desk(t, s, Config{})
	verified(t, d)
	rec, err := d.Record(ctx, "B1")
	must(t, err)
	if !rec.Releasable() {
		t.Fatalf("not releasable: %s", blockers(rec))
	}
	if rec.Header.StartedBy != "user:op1" || rec.Header.CompletedBy != "system:line" || rec.Header.Workshop != "固体制剂车间" {
		t.Errorf("header %+v", rec.Header)
	}
	wantRejects := []ReasonCount{{"decommission", "damaged at the infeed", 1}, {"reject", "grade below C", 1}}
	if fmt.Sprint(rec.Rejects) != fmt.Sprint(wantRejects) {
		t.Errorf("rejects %v, want %v", rec.Rejects, wantRejects)
	}
	if len(rec.Manual) != 1 || rec.Manual[0].User != "op1" || rec.Manual[0].What != "decommission" || rec.Manual[0].Why != "damaged at the infeed" {
		t.Errorf("manual actions %+v", rec.Manual)
	}
	if len(rec.Challenges) != 1 || !rec.Challenges[0].Passed {
		t.Errorf("challenges %+v", rec.Challenges)
	}
	for _, l := range rec.Levels {
		for _, e := range l.Equations {
			if !e.OK {
				t.Errorf("%s: %s not ok", l.Level, e.Text)
			}
		}
	}
	out, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "符合放行标准", Hash: rec.Hash})
	must(t, err)
	if !out.Decided || out.State != aggregation.BatchReleased || out.Activated {
		t.Fatalf("outcome %+v", out)
	}
	sum, err := s.Summary(ctx, "B1")
	must(t, err)
	if sum.Signature == nil || sum.Signature.Hash != rec.Hash || sum.Signature.User != "alice" {
		t.Fatalf("ledger signature %+v", sum.Signature)
	}
	// The record as built now still hashes to what was signed; the
	// signature is shown final, with the signer's full name.
	after, err := d.Record(ctx, "B1")
	must(t, err)
	if after.Hash != rec.Hash {
		t.Errorf("record hash changed by the release itself: %s → %s", rec.Hash, after.Hash)
	}
	if len(after.Signatures) != 1 || after.Signatures[0].State != SigFinal || after.Signatures[0].FullName != "Alice Wang 王丽" ||
		after.Signatures[0].Meaning != Released || after.Signatures[0].At == "" {
		t.Errorf("signatures %+v", after.Signatures)
	}
	// Nothing can be signed again, and activation is a separate step.
	head := s.Head()
	if _, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "bob", Password: "b-pw", Meaning: Rejected, Comment: "late"}); !aggregation.IsRefused(err) {
		t.Errorf("second decision: %v, want refused", err)
	}
	if s.Head() != head {
		t.Errorf("a refused signature journaled something")
	}
	must(t, d.Activate(ctx, "B1", alice))
	sum, _ = s.Summary(ctx, "B1")
	if sum.State != aggregation.BatchActive {
		t.Errorf("state %s after activation", sum.State)
	}
	// What reaches the batch after the decision (the outbox's documents,
	// an alarm) is shown apart and leaves the signed record as it was.
	_, err = s.Record(ctx, aggregation.Record{Type: "outbox.document", Batch: "B1", Key: "outbox/doc-1", Value: `{"id":"doc-1"}`}, sys)
	must(t, err)
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarm, Batch: "B1", Value: `{"text":"late alarm"}`}, sys)
	must(t, err)
	// Code changes are refused by the ledger in a released batch.
	lv := codesOf(t, s, "B1", 1)
	if err := s.Decommission(ctx, lv[0], "after release", oper); !aggregation.IsRefused(err) {
		t.Errorf("decommission in an active batch: %v, want refused", err)
	}
	later, err := d.Record(ctx, "B1")
	must(t, err)
	if later.Hash != rec.Hash || later.Signatures[0].State != SigFinal || len(later.After) != 2 || len(later.Alarms) != 0 || !later.Releasable() {
		t.Errorf("after the decision: hash %s (signed %s), signature %s, after %+v, alarms %d", later.Hash, rec.Hash, later.Signatures[0].State, later.After, len(later.Alarms))
	}
	var html bytes.Buffer
	must(t, WriteHTML(&html, later))
	if !strings.Contains(html.String(), "After the decision") || !strings.Contains(html.String(), "late alarm") {
		t.Error("the html does not show what followed the decision")
	}
}

func codesOf(t *testing.T, s *aggregation.Store, batch string, level tracecode.Level) []tracecode.Code {
	t.Helper()
	var out []tracecode.Code
	must(t, s.Codes(ctx, batch, level, aggregation.StateUnknown, func(c tracecode.Code) error {
		out = append(out, c)
		return nil
	}))
	return out
}

func TestActivateOnRelease(t *testing.T) {
	s := open(t)
	batch(t, s, "B1", 4, 2)
	d := desk(t, s, Config{Activation: ActivateOnRelease})
	verified(t, d)
	out, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "ok"})
	must(t, err)
	if !out.Activated || out.State != aggregation.BatchActive {
		t.Fatalf("outcome %+v", out)
	}
}

func TestRejectedIsQuarantined(t *testing.T) {
	s := open(t)
	batch(t, s, "B1", 4, 2)
	d := desk(t, s, Config{Signatures: FourEyes})
	// Rejection needs no rule to pass (no verify has run) and one signature.
	out, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "bob", Password: "b-pw", Meaning: Rejected, Comment: "标签错误 wrong label stock"})
	must(t, err)
	if !out.Decided || out.State != aggregation.BatchQARejected {
		t.Fatalf("outcome %+v", out)
	}
	head := s.Head()
	if err := d.Activate(ctx, "B1", alice); !aggregation.IsRefused(err) {
		t.Fatalf("activate a rejected batch: %v, want refused", err)
	}
	if err := s.Activate(ctx, "B1", alice); !aggregation.IsRefused(err) {
		t.Fatalf("Store.Activate of a rejected batch: %v, want refused", err)
	}
	if s.Head() != head {
		t.Errorf("refused activation journaled something")
	}
}

func TestBlockedRulesNameWhatBlocks(t *testing.T) {
	s := open(t)
	spec := aggregation.BatchSpec{ID: "B2", Product: "P", Line: "L1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 2, Scheme: tracecode.SchemeNMPA20}}}
	must(t, s.CreateBatch(ctx, spec, oper))
	cs := make([]tracecode.Code, 30)
	for i := range cs {
		cs[i] = code(900, i)
	}
	must(t, s.AddToPool(ctx, "p", cs, "test"))
	got, err := s.AllocateFromPool(ctx, "B2", 1, "p", 30, dev)
	must(t, err)
	must(t, s.MarkSent(ctx, got[:28], dev))
	for _, c := range got[:25] { // 25 loose, 3 in flight, 2 outstanding
		must(t, s.Commission(ctx, c, aggregation.UnitInfo{}, dev))
	}
	must(t, s.RecordChallenge(ctx, "B2", aggregation.Challenge{Passed: false, Steps: []aggregation.ChallengeStep{
		{Step: "bad grade", Item: 7, Expect: "rejected", Got: "passed", OK: false}}}, sys))
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarm, Batch: "B2", Key: "alarm/7", Value: `{"device":"camera-1","text":"相机离线 camera offline"}`}, sys)
	must(t, err)
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarm, Batch: "B2", Value: `{"id":"a8","device":"gate","text":"bin full"}`}, sys)
	must(t, err)
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarmAck, Batch: "B2", Value: `{"id":"a8","note":"emptied"}`}, oper)
	must(t, err)
	// As the line journals them: a numeric id, the condition cleared (not a
	// new alarm), then the acknowledgement by id.
	for _, r := range []struct{ typ, v string }{
		{TypeAlarm, `{"id":41,"device":"printer","text":"printer offline"}`},
		{TypeAlarm, `{"id":41,"device":"printer","cleared":true}`},
		{TypeAlarmAck, `{"id":41,"device":"printer","text":"printer offline"}`},
	} {
		_, err = s.Record(ctx, aggregation.Record{Type: r.typ, Batch: "B2", Value: r.v}, oper)
		must(t, err)
	}
	d := desk(t, s, Config{})
	rec, err := d.Record(ctx, "B2")
	must(t, err)
	want := map[string]string{
		RuleComplete:   "open",
		RuleReconciled: "L1 loose: " + string(got[0]),
		RuleChallenge:  `step "bad grade" (item 7): expected rejected, got passed`,
		RuleAlarms:     "相机离线 camera offline",
		RuleVerify:     "not been verified",
	}
	for id, frag := range want {
		r := rule(rec, id)
		if r.Status != RuleBlocked {
			t.Errorf("rule %s: %s, want blocked", id, r.Status)
			continue
		}
		all := r.Detail + " | " + strings.Join(r.Items, " | ")
		if !strings.Contains(all, frag) {
			t.Errorf("rule %s: %q does not name %q", id, all, frag)
		}
	}
	if r := rule(rec, RuleReconciled); len(r.Items) != MaxItems || r.More == 0 {
		t.Errorf("reconciled items not capped: %d items, %d more", len(r.Items), r.More)
	}
	if len(rec.Alarms) != 3 || rec.Alarms[0].AckSeq != 0 || rec.Alarms[1].AckBy != "user:op1" || rec.Alarms[1].AckNote != "emptied" || rec.Alarms[2].AckSeq == 0 {
		t.Errorf("alarms %+v", rec.Alarms)
	}
	head := s.Head()
	_, err = d.Sign(ctx, SignRequest{Batch: "B2", User: "alice", Password: "a-pw", Meaning: Released, Comment: "go"})
	if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "alarms:") {
		t.Fatalf("sign a blocked batch: %v", err)
	}
	if s.Head() != head {
		t.Fatal("a blocked release journaled something")
	}
	// The ack by Key clears the first alarm's block.
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarmAck, Batch: "B2", Key: "alarm/7", Value: `{"note":"reconnected"}`}, oper)
	must(t, err)
	rec, err = d.Record(ctx, "B2")
	must(t, err)
	if r := rule(rec, RuleAlarms); r.Status != RuleOK {
		t.Errorf("alarms after ack: %+v", r)
	}
	// A code event after the record was built once (the journal pass is
	// cached per batch and read on from where it stopped) is counted.
	must(t, s.Void(ctx, got[25], "line purge", sys))
	rec, err = d.Record(ctx, "B2")
	must(t, err)
	if fmt.Sprint(rec.Rejects) != fmt.Sprint([]ReasonCount{{"void", "line purge", 1}}) {
		t.Errorf("rejects after a void: %v", rec.Rejects)
	}
	fresh, err := desk(t, s, Config{}).Record(ctx, "B2")
	must(t, err)
	if fresh.Hash != rec.Hash {
		t.Errorf("a fresh desk builds another record: %s vs %s", fresh.Hash, rec.Hash)
	}
}

func TestSignRefusals(t *testing.T) {
	s := open(t)
	batch(t, s, "B1", 4, 2)
	d := desk(t, s, Config{})
	verified(t, d)
	rec, err := d.Record(ctx, "B1")
	must(t, err)
	cases := []struct {
		name string
		req  SignRequest
		is   error
		frag string
	}{
		{"wrong password", SignRequest{Batch: "B1", User: "alice", Password: "nope", Meaning: Released, Comment: "c"}, ErrAuth, ""},
		{"unknown user", SignRequest{Batch: "B1", User: "mallory", Password: "x", Meaning: Released, Comment: "c"}, ErrAuth, ""},
		{"no qa role", SignRequest{Batch: "B1", User: "op1", Password: "o-pw", Meaning: Released, Comment: "c"}, ErrAuth, "qa role"},
		{"no comment", SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "  "}, nil, "comment"},
		{"bad meaning", SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: "approved", Comment: "c"}, nil, "meaning"},
		{"stale hash", SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "c", Hash: strings.Repeat("0", 64)}, aggregation.ErrRefused, "changed since"},
		{"unknown batch", SignRequest{Batch: "B9", User: "alice", Password: "a-pw", Meaning: Released, Comment: "c"}, aggregation.ErrNotFound, ""},
	}
	head := s.Head()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.Sign(ctx, c.req)
			if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.frag) {
				t.Fatalf("err %v, want %v containing %q", err, c.is, c.frag)
			}
			if s.Head() != head {
				t.Fatal("a refused signature journaled something")
			}
		})
	}
	_ = rec
}

func TestFourEyesVoidsVisiblyOnChange(t *testing.T) {
	s := open(t)
	batch(t, s, "B1", 6, 3)
	_, err := s.Record(ctx, aggregation.Record{Type: TypeAlarm, Batch: "B1", Key: "alarm/1", Value: `{"text":"printer ribbon low"}`}, sys)
	must(t, err)
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarmAck, Batch: "B1", Key: "alarm/1", Value: `{"note":"replaced"}`}, oper)
	must(t, err)
	d := desk(t, s, Config{Signatures: FourEyes})
	verified(t, d)
	first, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "first"})
	must(t, err)
	if first.Decided || first.State != aggregation.BatchComplete || !strings.Contains(first.Waiting, "second") {
		t.Fatalf("first of two: %+v", first)
	}
	// The same user cannot be the second signer.
	if _, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "again"}); !aggregation.IsRefused(err) {
		t.Fatalf("same user twice: %v", err)
	}
	// Something reaches the batch's trail after the first signature: a
	// note on the batch. The first signature is void, shown with why.
	_, err = s.Record(ctx, aggregation.Record{Type: "note", Batch: "B1", Value: `{"text":"deviation DV-12 closed"}`}, oper)
	must(t, err)
	rec, err := d.Record(ctx, "B1")
	must(t, err)
	if rec.Hash == first.Record.Hash || len(rec.Signatures) != 1 || rec.Signatures[0].State != SigVoid || !strings.Contains(rec.Signatures[0].Why, "changed after") {
		t.Fatalf("after a change: hash %s (was %s), signatures %+v", rec.Hash, first.Record.Hash, rec.Signatures)
	}
	verified(t, d) // the verify covered the journal before the note
	second, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "bob", Password: "b-pw", Meaning: Released, Comment: "second"})
	must(t, err)
	if second.Decided || len(second.Voided) != 1 || second.Voided[0] != first.Signature.Seq {
		t.Fatalf("bob after the void: %+v", second)
	}
	// The void is journaled and stays visible.
	var voids int
	must(t, s.Trail(ctx, "B1", func(ev aggregation.Event) error {
		if ev.Kind == aggregation.EvRecord && ev.Reason == TypeSigVoid {
			voids++
		}
		return nil
	}))
	if voids != 1 {
		t.Errorf("%d signature.void records, want 1", voids)
	}
	third, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "re-signed"})
	must(t, err)
	if !third.Decided || third.State != aggregation.BatchReleased {
		t.Fatalf("third: %+v", third)
	}
	states := map[SigState]int{}
	for _, sg := range third.Record.Signatures {
		states[sg.State]++
	}
	if states[SigFinal] != 2 || states[SigVoid] != 1 {
		t.Errorf("signature states %v", states)
	}
}

func TestTamperedSignatureShowsVoid(t *testing.T) {
	s := open(t)
	batch(t, s, "B1", 4, 2)
	d := desk(t, s, Config{Signatures: FourEyes})
	verified(t, d)
	out, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "ok"})
	must(t, err)
	// A signature record whose fields do not match its binding (written
	// by something other than Sign) is void.
	forged := out.Signature.SignatureRecord
	forged.User, forged.FullName = "bob", "Bob Li 李波"
	v, _ := json.Marshal(forged)
	_, err = s.Record(ctx, aggregation.Record{Type: TypeSignature, Batch: "B1", Value: string(v)}, bob)
	must(t, err)
	rec, err := d.Record(ctx, "B1")
	must(t, err)
	if len(rec.Signatures) != 2 || rec.Signatures[1].State != SigVoid || !strings.Contains(rec.Signatures[1].Why, "binding") {
		t.Fatalf("signatures %+v", rec.Signatures)
	}
}

func TestCanonicalStable(t *testing.T) {
	s := open(t)
	batch(t, s, "B1", 4, 2)
	d := desk(t, s, Config{})
	a, err := d.Record(ctx, "B1")
	must(t, err)
	b, err := d.Record(ctx, "B1")
	must(t, err)
	ca, _ := a.Canonical()
	cb, _ := b.Canonical()
	if string(ca) != string(cb) || a.Hash != b.Hash || len(a.Hash) != 64 {
		t.Fatalf("two builds differ: %s vs %s", a.Hash, b.Hash)
	}
	// A verify run is not part of the record as signed.
	verified(t, d)
	c, err := d.Record(ctx, "B1")
	must(t, err)
	if c.Hash != a.Hash {
		t.Errorf("a verify run changed the record hash")
	}
	if !strings.Contains(string(ca), `"product":"阿莫西林胶囊 0.25g"`) {
		t.Errorf("canonical bytes escape or lose text: %.200s", ca)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		frag string
	}{
		{Config{Signatures: "three"}, "release.signatures"},
		{Config{Activation: "later"}, "release.activation"},
		{Config{Role: "q a"}, "release.role"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Errorf("%+v: %v, want %s", c.cfg, err, c.frag)
		}
	}
	if err := (Config{Signatures: FourEyes, Activation: ActivateOnRelease}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestPolicyInTheLedger(t *testing.T) {
	s := open(t)
	c, err := LoadConfig(ctx, s)
	must(t, err)
	if c != (Config{}) {
		t.Fatalf("default policy %+v", c)
	}
	head := s.Head()
	if err := SetConfig(ctx, s, accounts, "alice", "a-pw", Config{Signatures: FourEyes}); !errors.Is(err, ErrAuth) {
		t.Fatalf("a qa user sets the policy: %v", err)
	}
	if err := SetConfig(ctx, s, accounts, "carol", "c-pw", Config{Signatures: "three"}); err == nil {
		t.Fatal("a bad policy was accepted")
	}
	if s.Head() != head {
		t.Fatal("a refused policy journaled something")
	}
	must(t, SetConfig(ctx, s, accounts, "carol", "c-pw", Config{Signatures: FourEyes}))
	c, err = LoadConfig(ctx, s)
	must(t, err)
	if c.Signatures != FourEyes {
		t.Fatalf("policy %+v", c)
	}
	if got := c.Stricter(Config{Signatures: Single}); got.Signatures != FourEyes {
		t.Errorf("a caller weakened the policy: %+v", got)
	}
	if got := (Config{}).Stricter(Config{Signatures: FourEyes}); got.Signatures != FourEyes {
		t.Errorf("a caller could not strengthen the policy: %+v", got)
	}
}

// cutLedger is the ledger as a crash between a signature and its decision
// leaves it: Release fails (nothing journaled) while cut is set.
type cutLedger struct {
	*aggregation.Store
	cut bool
}

func (c *cutLedger) Release(ctx context.Context, batch string, sig aggregation.Signature, by aggregation.Actor) error {
	if c.cut {
		return errors.New("power cut")
	}
	return c.Store.Release(ctx, batch, sig, by)
}

// A signature journaled whose decision never was (the controller died
// between the two: killpoint release-decision): the signer signs again and
// the release is decided — with the journaled signature, not a second one —
// rather than refused as the same user's second signature, which would
// leave a single-signature batch unreleasable for ever. Under four-eyes the
// same holds once the second signer's signature was journaled.
func TestSignAfterInterruptedDecision(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		first []string // signers before the cut one
	}{
		{"single", Config{}, nil},
		{"four-eyes", Config{Signatures: FourEyes}, []string{"bob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			batch(t, s, "B1", 6, 3)
			cl := &cutLedger{Store: s}
			d, err := New(tc.cfg, cl, accounts, &clock{t: t0}, nil)
			must(t, err)
			verified(t, d)
			pw := map[string]string{"alice": "a-pw", "bob": "b-pw"}
			for _, u := range tc.first {
				out, err := d.Sign(ctx, SignRequest{Batch: "B1", User: u, Password: pw[u], Meaning: Released, Comment: "first"})
				must(t, err)
				if out.Decided {
					t.Fatalf("decided after %s alone", u)
				}
			}
			cl.cut = true
			if _, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "符合放行标准"}); err == nil {
				t.Fatal("the cut decision did not fail")
			}
			cl.cut = false
			sum, err := s.Summary(ctx, "B1")
			must(t, err)
			if sum.State != aggregation.BatchComplete {
				t.Fatalf("state %s after the cut, want complete", sum.State)
			}
			head := s.Head()
			// A wrong password still changes nothing.
			if _, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "nope", Meaning: Released, Comment: "again"}); !errors.Is(err, ErrAuth) {
				t.Fatalf("wrong password: %v", err)
			}
			if s.Head() != head {
				t.Fatal("a refused signature journaled something")
			}
			out, err := d.Sign(ctx, SignRequest{Batch: "B1", User: "alice", Password: "a-pw", Meaning: Released, Comment: "again, after the restart"})
			if err != nil {
				t.Fatalf("signing again after the interrupted decision: %v", err)
			}
			if !out.Decided || out.State != aggregation.BatchReleased {
				t.Fatalf("outcome %+v", out)
			}
			rec, err := d.Record(ctx, "B1")
			must(t, err)
			n := 0
			for _, sg := range rec.Signatures {
				if sg.User == "alice" {
					n++
					if sg.Comment != "符合放行标准" || sg.State != SigFinal {
						t.Errorf("alice's signature %+v, want the journaled one, final", sg)
					}
				}
			}
			if n != 1 {
				t.Errorf("alice has %d signatures on the record, want 1 (the one journaled before the cut)", n)
			}
			sum, _ = s.Summary(ctx, "B1")
			if sum.Signature == nil || sum.Signature.User != "alice" || sum.Signature.Comment != "符合放行标准" {
				t.Errorf("the ledger's decision carries %+v, want alice's journaled signature", sum.Signature)
			}
		})
	}
}
