package tracecode

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; whatever it accepts has a consistent
// identity and a normalized form that parses back to the same thing.
func FuzzParse(f *testing.F) {
	for _, s := range benchScans {
		f.Add(s)
	}
	for _, s := range []string{
		"", "]", "]d2", "]d2\x1d", "(", "()", "(01)", "https://", "https://a/01/", "https://a/01/1/21/%",
		"8021762-9000000001003", " 8021762 900000000 1003\n", "\xe801" + gtinL1 + "21A\xe8",
		"01" + gtinL1 + "7003261231235921S", "https://id.gs1.org/01/" + gtinL1 + "/21/X?17=260100&10=A%2FB&linkType=all",
		"00" + ssccOK + "02" + gtinL2 + "37200", "(01)" + gtinL1 + "(21)A(B)C(17)261231",
		"https://example.com/01/" + gtinL1 + "/21/ABC%2F1(17)281031",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := Parse(raw)
		if err != nil {
			if p2, ok := err.(*ParseError); !ok || p2.Reason == "" {
				t.Fatalf("error %T %v is not a *ParseError with a reason", err, err)
			}
			return
		}
		s, ok := SchemeOf(p.Code)
		if !ok || s != p.Scheme {
			t.Fatalf("Parse(%q): code %q scheme %s but SchemeOf says %s %v", raw, p.Code, p.Scheme, s, ok)
		}
		norm := p.Normalized()
		// The bracketed form is ambiguous when a value itself holds "(AI)":
		// it may fail to parse, or parse as other elements (a Digital Link
		// serial "ABC/1(17)281031" reads back as serial ABC/1 and expiry
		// 281031). The GS1 data below still round-trips.
		ambiguous := p.Scheme != SchemeNMPA20 && strings.Contains(p.GS1Data(), "(")
		q, err := Parse(norm)
		if err != nil {
			if ambiguous {
				return
			}
			t.Fatalf("normalized %q of %q does not parse: %v", norm, raw, err)
		}
		if q.Code != p.Code && !ambiguous {
			t.Fatalf("normalized %q of %q gives code %q, want %q", norm, raw, q.Code, p.Code)
		}
		if p.Scheme != SchemeNMPA20 {
			r, err := Parse("]d2" + p.GS1Data())
			if err != nil || r.Code != p.Code {
				t.Fatalf("GS1Data %q of %q: %v %q", p.GS1Data(), raw, err, r.Code)
			}
		}
	})
}
