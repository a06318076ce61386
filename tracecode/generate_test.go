package tracecode

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestGenerateSGTIN(t *testing.T) {
	p := loadExample(t, "amoxicillin-gs1.yaml")
	for l := Level(1); l <= 3; l++ {
		g, err := NewGenerator(p, l)
		if err != nil {
			t.Fatal(err)
		}
		codes, err := g.Generate(2000)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[Code]bool{}
		for _, c := range codes {
			if seen[c] {
				t.Fatalf("duplicate %s", c)
			}
			seen[c] = true
			parsed, err := Parse(string(c))
			if err != nil {
				t.Fatalf("generated %s does not parse: %v", c, err)
			}
			if parsed.Code != c || parsed.Scheme != SchemeGS1SGTIN {
				t.Fatalf("generated %s parses as %s", c, parsed.Code)
			}
			full, err := p.Compose(l, c, CarriedData{Batch: "B2401", Expiry: "280100", ProductionDate: "260115"})
			if err != nil {
				t.Fatalf("Compose: %v", err)
			}
			if full.Code != c {
				t.Fatalf("Compose changed identity %s → %s", c, full.Code)
			}
			if again, err := Parse("]d2" + full.GS1Data()); err != nil || again.Normalized() != full.Normalized() {
				t.Fatalf("Compose %s: encoded %q normalizes to %q, want %q (%v)", c, full.GS1Data(), again.Normalized(), full.Normalized(), err)
			}
		}
		if g.Made() != 2000 {
			t.Errorf("Made = %d", g.Made())
		}
		// Non-sequential: consecutive serials do not differ only in the last place.
		if a, b := codes[0].String(), codes[1].String(); a[:len(a)-1] == b[:len(b)-1] && codes[2].String()[:len(a)-1] == a[:len(a)-1] {
			t.Errorf("serials look sequential: %s %s %s", codes[0], codes[1], codes[2])
		}
	}
}

func TestGenerateSSCC(t *testing.T) {
	p := loadExample(t, "amoxicillin-nmpa20.yaml")
	g, err := NewGenerator(p, 4)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := g.Generate(500)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		parsed, err := Parse(string(c))
		if err != nil || parsed.Scheme != SchemeGS1SSCC || !strings.HasPrefix(parsed.SSCC(), "36901234") {
			t.Fatalf("SSCC %s: %v", c, err)
		}
		if err := p.Match(4, &parsed); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGenerateRefusesNMPA20(t *testing.T) {
	p := loadExample(t, "amoxicillin-nmpa20.yaml")
	if _, err := NewGenerator(p, 1); err == nil || !strings.Contains(err.Error(), "never generated") {
		t.Fatalf("err = %v", err)
	}
	if _, err := NewGenerator(p, 9); err == nil {
		t.Fatal("level 9 accepted")
	}
}

const tinyRule = `generic_name: t
mah: {name: m}
levels:
  - level: 1
    name: box
    gtin: "06901234567892"
    rule: {scheme: gs1-sgtin, filing_ref: F, serial: {length: 2, alphabet: custom, chars: "AB"}, carrier: gs1-datamatrix, min_grade: C}
`

func TestGenerateSpaceExhausted(t *testing.T) {
	p, err := ParseProduct("tiny.yaml", []byte(tinyRule))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGenerator(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 4 possible serials: half may be made, then the generator says so.
	if _, err := g.Generate(2); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Next(); !errors.Is(err, ErrSerialSpaceExhausted) {
		t.Fatalf("err = %v", err)
	}
}

func TestGenerateRedrawsDuplicates(t *testing.T) {
	p, err := ParseProduct("tiny.yaml", []byte(strings.Replace(tinyRule, "length: 2", "length: 3", 1)))
	if err != nil {
		t.Fatal(err)
	}
	// A random source that repeats itself: AAA, AAA, AAB, …
	src := bytes.Repeat([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1}, 10000)
	g, err := newGenerator(p, 1, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := g.Next()
	b, err := g.Next()
	if err != nil || a == b {
		t.Fatalf("a=%s b=%s err=%v", a, b, err)
	}
	// An exhausted random source is an error, not a panic.
	g, _ = newGenerator(p, 1, bytes.NewReader(nil))
	if _, err := g.Next(); err == nil || !strings.Contains(err.Error(), "random source") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkGenerateMillion: one op = 1,000,000 unique L1 serials
// (12 characters from a 32-character alphabet), uniqueness guaranteed.
func BenchmarkGenerateMillion(b *testing.B) {
	p := loadExample(b, "amoxicillin-gs1.yaml")
	for b.Loop() {
		g, err := NewGenerator(p, 1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Generate(1_000_000); err != nil {
			b.Fatal(err)
		}
	}
}
