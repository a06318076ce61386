// Package badinput is the bad-input campaign of issue 13: every parser of
// outside input — scanned codes, code files, product and line config,
// device payloads, receiver answers, the HMI's HTTP bodies — is fed
// mutations of its seed inputs for a fixed budget, and the HMI's API is
// sent requests it must refuse (no session, wrong role, bad CSRF token,
// oversized, malformed, unknown fields, wrong types) while the ledger's
// last sequence number is watched.
//
// The fuzzer is a small deterministic mutator (no coverage feedback): the
// same seed gives the same inputs in the same order, so a failure is
// reproduced by its seed and try number, and the failing input is kept in
// the result. The native `go test -fuzz` targets (FuzzXxx in each parser's
// package) explore with coverage; this campaign runs the same properties
// from a released binary, for a budget a validation team chooses.
//
// Who may import it: cmd/linectl (linectl campaign input) and its tests.
package badinput

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"
)

// Outcome is what a target made of one input.
type Outcome struct {
	// Accepted: the parser took the input (and the target checked what it
	// made of it: round trip, invariants).
	Accepted bool
	// Err is the parser's refusal (nil when accepted).
	Err error
	// Problem, when not empty, is a property that failed: bad input
	// accepted, an error that does not say what was wrong, a value that
	// does not round-trip.
	Problem string
	// Note, when not empty, counts the input under a known limit that is
	// not a failure (Stats.Notes).
	Note string
}

// Target is one parser of outside input.
type Target struct {
	// Name is the row's name: what the input is and which parser reads it.
	Name string
	// Seeds are the starting inputs (valid ones first, then known bad).
	Seeds [][]byte
	// Tokens are strings worth inserting (field names, separators,
	// delimiters of the format).
	Tokens []string
	// MaxLen bounds a mutated input (default 16 KiB).
	MaxLen int
	// Check parses in and checks the properties. It must not keep in.
	Check func(ctx context.Context, in []byte) Outcome
}

// Options bound one fuzzing run.
type Options struct {
	// Seed makes the run reproducible; 0 picks one from the clock (the
	// result names it).
	Seed uint64
	// Budget is the time per target (default 30 s).
	Budget time.Duration
	// Tries, when > 0, caps the inputs per target (the run then is the
	// same on any machine that is fast enough).
	Tries int
}

// Stats is one target's run.
type Stats struct {
	Name     string        `json:"name"`
	Tries    int           `json:"tries"`
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"` // refused with a clear error
	Unclear  int           `json:"unclear"`  // refused, but the error does not say what was wrong
	Problems int           `json:"problems"` // a property failed on an input the parser took
	Panics   int           `json:"panics"`
	Elapsed  time.Duration `json:"elapsed"`
	// Failures are the first few failing inputs (quoted) and why.
	Failures []string `json:"failures,omitempty"`
	// Notes count inputs under a known limit (Outcome.Note).
	Notes map[string]int `json:"notes,omitempty"`
	// Errors are a few distinct error messages seen (a reader judges
	// their clarity).
	Errors []string `json:"sample_errors,omitempty"`
}

// Failed is how many tries failed a check.
func (s Stats) Failed() int { return s.Unclear + s.Problems + s.Panics }

const maxKept = 5

// Fuzz runs t's seeds, then mutations of them, until the budget or the
// tries are spent, or ctx ends. rng is the run's generator; a target run
// alone with the same generator state tries the same inputs.
func Fuzz(ctx context.Context, t Target, o Options, rng *rand.Rand) Stats {
	if o.Budget <= 0 {
		o.Budget = 30 * time.Second
	}
	maxLen := t.MaxLen
	if maxLen <= 0 {
		maxLen = 16 << 10
	}
	st := Stats{Name: t.Name}
	start := time.Now()
	deadline := start.Add(o.Budget)
	corpus := make([][]byte, 0, len(t.Seeds)+64)
	for _, s := range t.Seeds {
		corpus = append(corpus, append([]byte(nil), s...))
	}
	if len(corpus) == 0 {
		corpus = append(corpus, nil)
	}
	m := mutator{rng: rng, tokens: t.Tokens, maxLen: maxLen}
	seen := map[string]bool{}
	for i := 0; ; i++ {
		if o.Tries > 0 && st.Tries >= o.Tries {
			break
		}
		if i >= len(t.Seeds) && (i&15 == 0) && (time.Now().After(deadline) || ctx.Err() != nil) {
			break
		}
		var in []byte
		if i < len(t.Seeds) {
			in = corpus[i]
		} else {
			in = m.mutate(corpus[rng.IntN(len(corpus))], corpus)
		}
		st.Tries++
		out, panicked := run(ctx, t.Check, in)
		switch {
		case panicked != "":
			st.Panics++
			st.keep(fmt.Sprintf("try %d: panic %s on %s", st.Tries, panicked, quote(in)))
		case out.Problem != "":
			st.Problems++
			st.keep(fmt.Sprintf("try %d: %s — input %s", st.Tries, out.Problem, quote(in)))
		case out.Accepted:
			st.Accepted++
			if out.Note != "" {
				if st.Notes == nil {
					st.Notes = map[string]int{}
				}
				st.Notes[out.Note]++
			}
			// Accepted inputs are the interesting ones to mutate further:
			// keep a bounded, rotating set.
			if len(corpus) < cap(corpus) {
				corpus = append(corpus, append([]byte(nil), in...))
			} else {
				corpus[len(t.Seeds)+rng.IntN(len(corpus)-len(t.Seeds))] = append([]byte(nil), in...)
			}
		default:
			if why := unclear(out.Err); why != "" {
				st.Unclear++
				st.keep(fmt.Sprintf("try %d: refused with an unclear error (%s): %q — input %s", st.Tries, why, errText(out.Err), quote(in)))
				break
			}
			st.Rejected++
			if len(st.Errors) < maxKept {
				msg := clip(out.Err.Error(), 160)
				if !seen[msg] {
					seen[msg] = true
					st.Errors = append(st.Errors, msg)
				}
			}
		}
	}
	st.Elapsed = time.Since(start)
	return st
}

func (s *Stats) keep(f string) {
	if len(s.Failures) < maxKept {
		s.Failures = append(s.Failures, f)
	}
}

// run calls check, turning a panic into its message and the top of its
// stack.
func run(ctx context.Context, check func(context.Context, []byte) Outcome, in []byte) (out Outcome, panicked string) {
	defer func() {
		if r := recover(); r != nil {
			stack := string(debug.Stack())
			panicked = fmt.Sprintf("%v at %s", r, panicSite(stack))
		}
	}()
	return check(ctx, in), ""
}

// panicSite is the first frame of the stack below the runtime's panic
// machinery.
func panicSite(stack string) string {
	lines := strings.Split(stack, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "panic(") {
			for j := i + 2; j+1 < len(lines); j += 2 {
				if !strings.HasPrefix(lines[j], "runtime.") {
					site := strings.TrimSpace(lines[j+1])
					if k := strings.LastIndex(site, " +0x"); k > 0 {
						site = site[:k]
					}
					return site
				}
			}
		}
	}
	return "?"
}

// unclear says why err does not tell a user what was wrong ("" when it
// does): no error at all, an empty message, or a bare I/O word.
func unclear(err error) string {
	if err == nil {
		return "refused without an error"
	}
	msg := strings.TrimSpace(err.Error())
	switch {
	case msg == "":
		return "empty message"
	case len(msg) < 5:
		return "too short to name what was wrong"
	case msg == "EOF" || msg == "unexpected EOF":
		return "a bare EOF"
	}
	return ""
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return clip(err.Error(), 200)
}

func quote(in []byte) string {
	const max = 300
	if len(in) > max {
		return fmt.Sprintf("%q… (%d bytes)", in[:max], len(in))
	}
	return fmt.Sprintf("%q", in)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// mutator makes a new input from an old one.
type mutator struct {
	rng    *rand.Rand
	tokens []string
	maxLen int
}

// interesting bytes and strings for any text format.
var (
	magicBytes = []byte{0, 0x1d, 0x1e, 0x04, '\n', '\r', '\t', ' ', '"', '\'', '\\', '{', '}', '[', ']', '(', ')', ':', ',', '-', '+', '.',
		'0', '1', '9', 'e', '%', '&', '=', '?', '/', '#', '*', '!', '|', '>', 0x7f, 0x80, 0xc3, 0xe8, 0xfe, 0xff}
	magicStrings = []string{"null", "true", "false", "-1", "0", "1e309", "-0", "18446744073709551616", "9999999999999999999999",
		"\"\"", "[]", "{}", "NaN", "\u202e", "\ufeff", "𝕏", "中文", "\xed\xa0\x80", "%00", "%zz", "\x00\x00\x00\x00", "                "}
)

func (m mutator) mutate(src []byte, corpus [][]byte) []byte {
	b := append([]byte(nil), src...)
	for n := 1 + m.rng.IntN(4); n > 0; n-- {
		b = m.once(b, corpus)
	}
	if len(b) > m.maxLen {
		b = b[:m.maxLen]
	}
	return b
}

func (m mutator) once(b []byte, corpus [][]byte) []byte {
	r := m.rng
	pos := func() int { return r.IntN(len(b) + 1) }
	switch r.IntN(12) {
	case 0: // flip a bit
		if len(b) > 0 {
			i := r.IntN(len(b))
			b[i] ^= 1 << r.IntN(8)
		}
	case 1: // set a byte to an interesting one
		if len(b) > 0 {
			b[r.IntN(len(b))] = magicBytes[r.IntN(len(magicBytes))]
		}
	case 2: // insert an interesting byte
		i := pos()
		b = append(b[:i], append([]byte{magicBytes[r.IntN(len(magicBytes))]}, b[i:]...)...)
	case 3: // delete a range
		if len(b) > 0 {
			i := r.IntN(len(b))
			j := i + 1 + r.IntN(min(len(b)-i, 16))
			b = append(b[:i], b[j:]...)
		}
	case 4: // duplicate a range
		if len(b) > 0 && len(b) < m.maxLen/2 {
			i := r.IntN(len(b))
			j := i + 1 + r.IntN(min(len(b)-i, 32))
			k := pos()
			chunk := append([]byte(nil), b[i:j]...)
			b = append(b[:k], append(chunk, b[k:]...)...)
		}
	case 5: // insert a format token
		if len(m.tokens) > 0 {
			i := pos()
			b = append(b[:i], append([]byte(m.tokens[r.IntN(len(m.tokens))]), b[i:]...)...)
		}
	case 6: // insert an interesting string
		i := pos()
		b = append(b[:i], append([]byte(magicStrings[r.IntN(len(magicStrings))]), b[i:]...)...)
	case 7: // replace a number with an extreme one
		b = m.replaceNumber(b)
	case 8: // truncate
		if len(b) > 0 {
			b = b[:r.IntN(len(b))]
		}
	case 9: // splice with another input
		o := corpus[r.IntN(len(corpus))]
		if len(o) > 0 {
			i, j := pos(), r.IntN(len(o))
			b = append(b[:i:i], o[j:]...)
		}
	case 10: // repeat a chunk many times (length and nesting limits)
		if len(b) > 0 {
			i := r.IntN(len(b))
			j := i + 1 + r.IntN(min(len(b)-i, 8))
			chunk := bytes.Repeat(b[i:j], 16+r.IntN(512))
			b = append(b[:i], append(chunk, b[j:]...)...)
		}
	case 11: // swap two bytes
		if len(b) > 1 {
			i, j := r.IntN(len(b)), r.IntN(len(b))
			b[i], b[j] = b[j], b[i]
		}
	}
	return b
}

// replaceNumber swaps a run of digits for an extreme or off-by-one value.
func (m mutator) replaceNumber(b []byte) []byte {
	var starts []int
	for i := 0; i < len(b); i++ {
		if b[i] >= '0' && b[i] <= '9' && (i == 0 || b[i-1] < '0' || b[i-1] > '9') {
			starts = append(starts, i)
		}
	}
	if len(starts) == 0 {
		return b
	}
	i := starts[m.rng.IntN(len(starts))]
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	repl := []string{"0", "1", "-1", "255", "256", "65535", "65536", "2147483648", "4294967296", "9223372036854775808", "1e999", "0.5", "00"}[m.rng.IntN(13)]
	return append(b[:i], append([]byte(repl), b[j:]...)...)
}
