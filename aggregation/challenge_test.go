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
