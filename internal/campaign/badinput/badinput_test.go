package badinput

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestFuzzCounts: the fuzzer tells a panic, a property failure, an
// unclear refusal, a clear refusal and an acceptance apart, and keeps the
// failing inputs.
func TestFuzzCounts(t *testing.T) {
	tg := Target{
		Name:  "toy",
		Seeds: [][]byte{[]byte("ok"), []byte("panic"), []byte("bad"), []byte("mute"), []byte("no")},
		Check: func(_ context.Context, in []byte) Outcome {
			switch string(in) {
			case "ok":
				return Outcome{Accepted: true}
			case "panic":
				var m map[string]int
				m["x"]++ // a nil map write: a real runtime panic
			case "bad":
				return Outcome{Accepted: true, Problem: "accepted bad"}
			case "mute":
				return Outcome{Err: errors.New("")}
			}
			return Outcome{Err: errors.New("toy: not a word I know")}
		},
	}
	st := Fuzz(context.Background(), tg, Options{Tries: 5}, rand.New(rand.NewPCG(1, 1)))
	if st.Tries != 5 || st.Accepted != 1 || st.Rejected != 1 || st.Unclear != 1 || st.Problems != 1 || st.Panics != 1 || st.Failed() != 3 {
		t.Fatalf("%+v", st)
	}
	if len(st.Failures) != 3 || !strings.Contains(st.Failures[0], `panic assignment to entry in nil map`) || !strings.Contains(st.Failures[0], "badinput_test.go") ||
		!strings.Contains(st.Failures[0], `"panic"`) {
		t.Fatalf("failures %q", st.Failures)
	}
	if row := fuzzRow(st); row.Survived != 2 || row.Failed != 3 || !strings.Contains(row.Notes, "1 PANICS") {
		t.Fatalf("row %+v", row)
	}
}

// TestFuzzDeterministic: the same seed tries the same inputs.
func TestFuzzDeterministic(t *testing.T) {
	ts, closeFn := Targets()
	defer closeFn()
	sum := func(seed uint64) [32]byte {
		h := sha256.New()
		tg := ts[0]
		check := tg.Check
		tg.Check = func(ctx context.Context, in []byte) Outcome {
			h.Write(in)
			h.Write([]byte{0})
			return check(ctx, in)
		}
		Fuzz(context.Background(), tg, Options{Tries: 3000, Budget: time.Hour}, rand.New(rand.NewPCG(seed, 0)))
		var out [32]byte
		copy(out[:], h.Sum(nil))
		return out
	}
	if a, b, c := sum(5), sum(5), sum(6); a != b || a == c {
		t.Fatalf("seed 5 twice: %x %x; seed 6: %x", a[:4], b[:4], c[:4])
	}
}

// TestParsersShortBudget is the campaign's fixed CI budget over the
// parsers reachable from packages: 2 s each (the line config and the
// HMI's bodies run in cmd/linectl's TestCampaignInput). No panic, no
// property broken, every refusal clear; and the seeds reach both sides of
// every parser (something accepted, something refused), or the fuzzing
// would be shallow.
func TestParsersShortBudget(t *testing.T) {
	ts, closeFn := Targets()
	defer closeFn()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (rerun with linectl campaign input --seed %d)", seed, seed)
	for i, tg := range ts {
		st := Fuzz(context.Background(), tg, Options{Budget: 2 * time.Second}, rand.New(rand.NewPCG(seed, uint64(i))))
		t.Logf("%s: %d inputs, %d accepted, %d refused", st.Name, st.Tries, st.Accepted, st.Rejected)
		if st.Failed() > 0 {
			t.Errorf("%s: %d failed: %s", st.Name, st.Failed(), strings.Join(st.Failures, "\n"))
		}
		if st.Accepted == 0 || st.Rejected == 0 {
			t.Errorf("%s: %d accepted, %d refused: the seeds do not reach both sides", st.Name, st.Accepted, st.Rejected)
		}
	}
}

// TestMutatorBounds: mutations stay within the target's length.
func TestMutatorBounds(t *testing.T) {
	m := mutator{rng: rand.New(rand.NewPCG(3, 3)), tokens: []string{"((", "))"}, maxLen: 64}
	corpus := [][]byte{[]byte("0123456789"), nil}
	in := corpus[0]
	for range 10000 {
		in = m.mutate(in, corpus)
		if len(in) > 64 {
			t.Fatalf("len %d", len(in))
		}
	}
}

func TestYAMLBlock(t *testing.T) {
	got := string(yamlBlock([]byte("a:\n  plc:\n    x: 1\n\n    y:\n      z: 2\n  next: 3\n"), "  plc:"))
	if got != "x: 1\ny:\n  z: 2\n" {
		t.Fatalf("%q", got)
	}
}

// TestAnswerCheck: a refusal holds only as a 4xx of the right status and
// code with a message, the ledger unchanged.
func TestAnswerCheck(t *testing.T) {
	ok := answer{status: 403}
	ok.doc.Code, ok.doc.Message = "csrf", "the request lacks a valid security token"
	tests := []struct {
		a        answer
		before   uint64
		after    uint64
		wantFail string
	}{
		{ok, 7, 7, ""},
		{ok, 7, 8, "the ledger changed: last seq 7 → 8"},
		{answer{status: 200}, 7, 7, "HTTP 200, want a 4xx"},
		{answer{status: 500}, 7, 7, "HTTP 500, want a 4xx"},
		{answer{status: 403, docErr: errors.New("invalid character")}, 7, 7, "not {code, message}"},
		{answer{status: 401}, 7, 7, "HTTP 401, want 403"},
		{answer{err: errors.New("EOF")}, 7, 7, "no answer"},
	}
	for _, tc := range tests {
		got := tc.a.check(403, "csrf", tc.before, tc.after)
		if (tc.wantFail == "") != (got == "") || !strings.Contains(got, tc.wantFail) {
			t.Errorf("%+v: %q, want %q", tc.a, got, tc.wantFail)
		}
	}
	wrong := ok
	wrong.doc.Code = "forbidden"
	if got := wrong.check(403, "csrf", 1, 1); !strings.Contains(got, `code "forbidden", want "csrf"`) {
		t.Errorf("wrong code: %q", got)
	}
}
