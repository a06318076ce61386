package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/tracecode"
)

type testAccounts struct{}

func (testAccounts) Authenticate(_ context.Context, user, pw string) (release.Signer, error) {
	switch {
	case user == "qa1" && pw == "secret one":
		return release.Signer{User: "qa1", FullName: "质量 One", Roles: []string{"qa"}}, nil
	case user == "qa2" && pw == "secret two":
		return release.Signer{User: "qa2", FullName: "质量 Two", Roles: []string{"qa"}}, nil
	case user == "adm" && pw == "admin pw":
		return release.Signer{User: "adm", FullName: "Admin", Roles: []string{"admin"}}, nil
	}
	return release.Signer{}, errors.New("bad credentials")
}

// completeBatch writes batch B: 4 units in 2 boxes, challenge passed,
// completed.
func completeBatch(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	by := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	spec := aggregation.BatchSpec{ID: "B", Product: "P", Line: "L", Levels: []aggregation.LevelSpec{
		{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 2, Scheme: tracecode.SchemeNMPA20}}}
	step(s.CreateBatch(ctx, spec, by))
	step(s.RecordChallenge(ctx, "B", aggregation.Challenge{Passed: true, Steps: []aggregation.ChallengeStep{{Step: "s", Item: 1, Expect: "x", Got: "x", OK: true}}}, by))
	var lv [2][]tracecode.Code
	for l, n := range []int{4, 2} {
		cs := make([]tracecode.Code, n)
		for i := range cs {
			cs[i] = tracecode.Code(fmt.Sprintf("8%06d%013d", 700+l, i))
		}
		step(s.AddToPool(ctx, fmt.Sprint("p", l), cs, "test"))
		a, err := s.AllocateFromPool(ctx, "B", tracecode.Level(l+1), fmt.Sprint("p", l), n, by)
		step(err)
		step(s.MarkSent(ctx, a, by))
		for _, c := range a {
			step(s.Commission(ctx, c, aggregation.UnitInfo{}, by))
		}
		lv[l] = a
	}
	step(s.Pack(ctx, lv[1][0], lv[0][:2], aggregation.PackOpts{}, by))
	step(s.Pack(ctx, lv[1][1], lv[0][2:], aggregation.PackOpts{}, by))
	step(s.Complete(ctx, "B", by))
}

func runRel(t *testing.T, stdin string, args ...string) (error, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, log: slog.New(slog.DiscardHandler)}
	err := runRelease(context.Background(), c, args, func(context.Context, *aggregation.Store, *slog.Logger) (release.Authenticator, error) {
		return testAccounts{}, nil
	})
	return err, out.String(), errb.String()
}

func ledgerState(t *testing.T, dir string) (aggregation.BatchState, uint64) {
	t.Helper()
	s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum, err := s.Summary(context.Background(), "B")
	if err != nil {
		t.Fatal(err)
	}
	return sum.State, s.Head()
}

func TestReleaseCommand(t *testing.T) {
	dir := t.TempDir()
	completeBatch(t, dir)
	// Review only, no verify yet: the verify rule blocks.
	err, out, _ := runRel(t, "", "--data", dir, "--batch", "B", "--verify", "never")
	if err != nil || !strings.Contains(out, "✗ verify") || !strings.Contains(out, "✓ reconciled") {
		t.Fatalf("review: %v\n%s", err, out)
	}
	_, head := ledgerState(t, dir)
	// A wrong password: refused, nothing journaled (the verify is skipped).
	err, _, stderr := runRel(t, "wrong\n", "--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "released", "--comment", "ok", "--verify", "never")
	if !errors.Is(err, exitError{1}) || !strings.Contains(stderr, "password wrong") {
		t.Fatalf("wrong password: %v %s", err, stderr)
	}
	if _, h := ledgerState(t, dir); h != head {
		t.Fatalf("a refused signature journaled something: head %d → %d", head, h)
	}
	// Signed: the ledger verifies first (auto), then releases.
	html, pdf := filepath.Join(t.TempDir(), "r.html"), filepath.Join(t.TempDir(), "r.pdf")
	err, out, stderr = runRel(t, "secret one\n", "--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "released",
		"--comment", "符合放行标准", "--html", html, "--pdf", pdf)
	if err != nil || !strings.Contains(out, "signed released by qa1: the batch is released") || !strings.Contains(stderr, "verify OK") {
		t.Fatalf("release: %v\n%s\n%s", err, out, stderr)
	}
	if st, _ := ledgerState(t, dir); st != aggregation.BatchReleased {
		t.Fatalf("state %s", st)
	}
	for _, p := range []string{html, pdf} {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("B")) || len(b) < 1000 {
			t.Errorf("%s: %v (%d bytes)", p, err, len(b))
		}
	}
	// Activation is its own step.
	err, out, _ = runRel(t, "secret one\n", "--data", dir, "--batch", "B", "--user", "qa1", "--activate")
	if err != nil || !strings.Contains(out, "activated") {
		t.Fatalf("activate: %v %s", err, out)
	}
	if st, _ := ledgerState(t, dir); st != aggregation.BatchActive {
		t.Fatalf("state %s", st)
	}
}

func TestReleaseCommandRejectQuarantines(t *testing.T) {
	dir := t.TempDir()
	completeBatch(t, dir)
	err, out, _ := runRel(t, "secret one\n", "--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "rejected", "--comment", "wrong carton", "--verify", "never")
	if err != nil || !strings.Contains(out, "qa_rejected") {
		t.Fatalf("reject: %v %s", err, out)
	}
	_, head := ledgerState(t, dir)
	if err, _, _ := runRel(t, "secret one\n", "--data", dir, "--batch", "B", "--user", "qa1", "--activate"); err == nil || !aggregation.IsRefused(err) {
		t.Fatalf("activate a rejected batch: %v", err)
	}
	if _, h := ledgerState(t, dir); h != head {
		t.Fatal("refused activation journaled something")
	}
}

func TestReleaseCommandUsage(t *testing.T) {
	dir := t.TempDir()
	completeBatch(t, dir)
	for _, c := range []struct {
		stdin string
		args  []string
		frag  string
	}{
		{"", []string{"--batch", "B"}, "--data"},
		{"", []string{"--data", dir}, "--batch"},
		{"", []string{"--data", dir, "--batch", "B", "--meaning", "released"}, "need --user"},
		{"pw\n", []string{"--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "ok", "--comment", "c"}, "--meaning"},
		{"pw\n", []string{"--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "released"}, "--comment"},
		{"", []string{"--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "released", "--comment", "c"}, "stdin"},
		{"", []string{"--data", dir, "--batch", "B", "--verify", "sometimes"}, "--verify"},
		{"", []string{"--data", dir, "--batch", "B", "--signatures", "three"}, "release.signatures"},
		{"x\n", []string{"--data", dir, "--user", "adm", "--set-policy", "two"}, "release.signatures"},
		{"secret one\n", []string{"--data", dir, "--user", "qa1", "--set-policy", "four-eyes"}, "admin role"},
		{"", []string{"--data", dir, "--batch", "B", "--pdf", "x.pdf", "--font", "/nonexistent.ttc"}, "font"},
		{"", []string{"--data", filepath.Join(dir, "nope"), "--batch", "B"}, "no ledger"},
		{"", []string{"--data", dir, "--batch", "Z"}, "not found"},
	} {
		err, _, _ := runRel(t, c.stdin, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Errorf("%v: %v, want %q", c.args, err, c.frag)
		}
	}
	// Through linectl itself, on the ledger's accounts: a user the ledger
	// does not know is refused, plainly.
	rc, _, stderr := runLinectl(t, "pw\n", "release", "--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "rejected", "--comment", "c", "--verify", "never")
	if rc != 1 || !strings.Contains(stderr, "password wrong") {
		t.Fatalf("linectl release by an unknown user: rc %d, %s", rc, stderr)
	}
}

// linectl release signs with the controller's own accounts (in the
// ledger, as the HMI keeps them): a QA account created by the admin signs.
func TestReleaseCommandWithLedgerAccounts(t *testing.T) {
	dir := t.TempDir()
	completeBatch(t, dir)
	ctx := context.Background()
	s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.Open(ctx, accounts.Config{}, accounts.Ledger(s), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := acc.Setup(ctx, acc.SetupToken(), "admin", "Admin", "admin-password-1", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Create(ctx, admin, accounts.User{ID: "wang", Name: "王质量", Roles: []accounts.Role{"qa"}}, "qa-password-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rc, _, stderr := runLinectl(t, "wrong-password\n", "release", "--data", dir, "--batch", "B", "--user", "wang", "--meaning", "rejected", "--comment", "c", "--verify", "never")
	if rc != 1 {
		t.Fatalf("a wrong password signed: rc %d, %s", rc, stderr)
	}
	rc, out, stderr := runLinectl(t, "qa-password-1\n", "release", "--data", dir, "--batch", "B", "--user", "wang", "--meaning", "rejected", "--comment", "label smudged", "--verify", "never")
	if rc != 0 || !strings.Contains(out+stderr, "王质量") {
		t.Fatalf("linectl release by a QA account: rc %d\n%s\n%s", rc, out, stderr)
	}
}

func TestReleaseCommandFourEyesPolicy(t *testing.T) {
	dir := t.TempDir()
	completeBatch(t, dir)
	err, out, _ := runRel(t, "admin pw\n", "--data", dir, "--user", "adm", "--set-policy", "four-eyes")
	if err != nil || !strings.Contains(out, "four-eyes") {
		t.Fatalf("set policy: %v %s", err, out)
	}
	// The signer cannot ask for less than the ledger's policy.
	err, out, _ = runRel(t, "secret one\n", "--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "released", "--comment", "first", "--signatures", "single")
	if err != nil || !strings.Contains(out, "1 of 2 signatures") {
		t.Fatalf("first of two: %v %s", err, out)
	}
	if st, _ := ledgerState(t, dir); st != aggregation.BatchComplete {
		t.Fatalf("state %s after one of two signatures", st)
	}
	err, _, stderr := runRel(t, "secret one\n", "--data", dir, "--batch", "B", "--user", "qa1", "--meaning", "released", "--comment", "again")
	if !errors.Is(err, exitError{1}) || !strings.Contains(stderr, "another user") {
		t.Fatalf("same user twice: %v %s", err, stderr)
	}
	err, out, _ = runRel(t, "secret two\n", "--data", dir, "--batch", "B", "--user", "qa2", "--meaning", "released", "--comment", "second")
	if err != nil || !strings.Contains(out, "the batch is released") {
		t.Fatalf("second: %v %s", err, out)
	}
}
