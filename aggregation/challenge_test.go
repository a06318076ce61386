package aggregation

import (
	"testing"
)

func TestRecordChallenge(t *testing.T) {
	s, _ := openTest(t)
	commissioned(t, s, "CH", []int{1})
	failed := Challenge{Passed: false, Steps: []ChallengeStep{
		{Step: "pass", Item: 1, Expect: "pass", Got: "pass", OK: true},
		{Step: "no-read", Item: 2, Expect: "no-read", Got: "pass", OK: false},
	}}
	must(t, s.RecordChallenge(ctx, "CH", failed, op))
	passed := Challenge{Passed: true, Steps: []ChallengeStep{
		{Step: "pass", Item: 3, Expect: "pass", Got: "pass", OK: true},
		{Step: "no-read", Item: 4, Expect: "no-read", Got: "no-read", OK: true},
	}}
	must(t, s.RecordChallenge(ctx, "CH", passed, op))

	bad := []struct {
		name string
		c    Challenge
	}{
		{"no steps", Challenge{Passed: true}},
		{"ok contradicts outcome", Challenge{Passed: true, Steps: []ChallengeStep{{Step: "x", Expect: "pass", Got: "no-read", OK: true}}}},
		{"passed contradicts steps", Challenge{Passed: true, Steps: []ChallengeStep{{Step: "x", Expect: "pass", Got: "no-read", OK: false}}}},
		{"missing outcome", Challenge{Passed: true, Steps: []ChallengeStep{{Step: "x", Expect: "pass", OK: false}}}},
	}
	for _, tc := range bad {
		if err := s.RecordChallenge(ctx, "CH", tc.c, op); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := s.RecordChallenge(ctx, "nope", passed, op); err == nil {
		t.Error("challenge for an unknown batch accepted")
	}
	sum, err := s.Summary(ctx, "CH")
	must(t, err)
	if sum.Challenge == nil || !sum.Challenge.Passed || sum.Challenge.Steps[1].Item != 4 {
		t.Fatalf("batch record challenge = %+v, want the last (passed) run", sum.Challenge)
	}
	must(t, s.Complete(ctx, "CH", op))
	if err := s.RecordChallenge(ctx, "CH", passed, op); err == nil {
		t.Error("challenge on a completed batch accepted")
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatal(rep.Problems)
	}
}

func TestRecordReprint(t *testing.T) {
	s, _ := openTest(t)
	lv := commissioned(t, s, "RP", []int{4, 2}, 2)
	parent := lv[1][0]
	must(t, s.Pack(ctx, parent, lv[0][:2], PackOpts{}, op))
	must(t, s.RecordReprint(ctx, parent, "label smudged", op))
	if err := s.RecordReprint(ctx, parent, "", op); err == nil {
		t.Error("reprint without a reason accepted")
	}
	if err := s.RecordReprint(ctx, lv[1][1], "x", op); err == nil {
		t.Error("reprint of an empty parent accepted")
	}
	if err := s.RecordReprint(ctx, lv[0][2], "x", op); err == nil {
		t.Error("reprint of a level-1 code accepted")
	}
	info, err := s.Code(ctx, parent)
	must(t, err)
	if last := info.History[len(info.History)-1]; last.Kind != EvReprint || last.Reason != "label smudged" {
		t.Fatalf("last event of %s: %+v", parent, last)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatal(rep.Problems)
	}
}
