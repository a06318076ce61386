package tracecode

import (
	"errors"
	"strings"
	"testing"
)

const (
	gtinL1 = "06901234567892"
	gtinL2 = "16901234567899"
	ssccOK = "306901234000000019"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name, raw  string
		scheme     Scheme
		code       Code
		normalized string
		sym        Symbology
		form       Form
	}{
		{"nmpa20 plain", "80217629000000001003", SchemeNMPA20, "80217629000000001003", "80217629000000001003", SymbologyNone, FormNMPA20},
		{"nmpa20 printed dash", "8021762-9000000001003", SchemeNMPA20, "80217629000000001003", "80217629000000001003", SymbologyNone, FormNMPA20},
		{"nmpa20 printed spaces", " 8021762 900000000 1003\r\n", SchemeNMPA20, "80217629000000001003", "80217629000000001003", SymbologyNone, FormNMPA20},
		{"nmpa20 code128 id", "]C080217629000000001003", SchemeNMPA20, "80217629000000001003", "80217629000000001003", SymbologyCode128, FormNMPA20},
		{"nmpa20 datamatrix id", "]d180217629000000001003", SchemeNMPA20, "80217629000000001003", "80217629000000001003", SymbologyDataMatrix, FormNMPA20},
		{"gs1 dm with GS", "]d201" + gtinL1 + "21A7xK2p\x1d10B2401\x1d17261231", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)A7xK2p", "(01)" + gtinL1 + "(21)A7xK2p(10)B2401(17)261231", SymbologyGS1DataMatrix, FormElementString},
		{"gs1 leading GS, scanned order kept", "\x1d17261200" + "10B2401\x1d01" + gtinL1 + "21SER1", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)SER1", "(17)261200(10)B2401(01)" + gtinL1 + "(21)SER1", SymbologyNone, FormElementString},
		{"gs1 no sep after fixed", "01" + gtinL1 + "17280229" + "21X", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)X", "(01)" + gtinL1 + "(17)280229(21)X", SymbologyNone, FormElementString},
		{"gs1 GS after fixed tolerated", "]C101" + gtinL2 + "\x1d21ABC", SchemeGS1SGTIN, "(01)" + gtinL2 + "(21)ABC", "(01)" + gtinL2 + "(21)ABC", SymbologyGS1128, FormElementString},
		{"gs1 raw FNC1 byte", "\xe801" + gtinL1 + "21ABC\xe810L1", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)ABC", "(01)" + gtinL1 + "(21)ABC(10)L1", SymbologyNone, FormElementString},
		{"sscc", "]C100" + ssccOK, SchemeGS1SSCC, "(00)" + ssccOK, "(00)" + ssccOK, SymbologyGS1128, FormElementString},
		{"sscc with content and count", "00" + ssccOK + "02" + gtinL2 + "37200", SchemeGS1SSCC, "(00)" + ssccOK, "(00)" + ssccOK + "(02)" + gtinL2 + "(37)200", SymbologyNone, FormElementString},
		{"bracketed", "(01)" + gtinL1 + "(21)A(B)C(17)261231(10)B1", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)A(B)C", "(01)" + gtinL1 + "(21)A(B)C(17)261231(10)B1", SymbologyNone, FormBracketed},
		{"bracketed all AIs", "(01)" + gtinL1 + "(21)S(11)260100(30)5(240)X(241)Y(400)PO1(7003)2612312359(710)P(711)C(712)N(713)D(714)A", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)S", "(01)" + gtinL1 + "(21)S(11)260100(30)5(240)X(241)Y(400)PO1(7003)2612312359(710)P(711)C(712)N(713)D(714)A", SymbologyNone, FormBracketed},
		{"digital link", "https://id.gs1.org/01/" + gtinL1 + "/21/A%2FB?17=261231&10=B1&linkType=all", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)A/B", "(01)" + gtinL1 + "(21)A/B(17)261231(10)B1", SymbologyNone, FormDigitalLink},
		{"digital link any host, prefix, GTIN-13, upper case", "]Q1HTTPS://EXAMPLE.COM/foo/01/6901234567892/10/B1/21/XY", SchemeGS1SGTIN, "(01)" + gtinL1 + "(21)XY", "(01)" + gtinL1 + "(10)B1(21)XY", SymbologyQR, FormDigitalLink},
		{"digital link sscc", "https://id.example.cn/00/" + ssccOK, SchemeGS1SSCC, "(00)" + ssccOK, "(00)" + ssccOK, SymbologyNone, FormDigitalLink},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			if p.Scheme != tt.scheme || p.Code != tt.code || p.Normalized() != tt.normalized || p.Symbology != tt.sym || p.Form != tt.form {
				t.Errorf("Parse(%q) = scheme %s code %s norm %s sym %s form %s; want %s %s %s %s %s", tt.raw,
					p.Scheme, p.Code, p.Normalized(), p.Symbology, p.Form, tt.scheme, tt.code, tt.normalized, tt.sym, tt.form)
			}
			if s, ok := SchemeOf(p.Code); !ok || s != tt.scheme {
				t.Errorf("SchemeOf(%s) = %s, %v", p.Code, s, ok)
			}
			// The normalized form parses back to the same identity.
			q, err := Parse(p.Normalized())
			if err != nil || q.Code != p.Code || q.Normalized() != p.Normalized() {
				t.Errorf("re-parse of %q: %v %s", p.Normalized(), err, q.Code)
			}
		})
	}
}

func TestParseAccessors(t *testing.T) {
	p, err := Parse("]d201" + gtinL1 + "21SER\x1d10LOT7\x1d17270100")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Batch(); b != "LOT7" {
		t.Errorf("Batch = %q", b)
	}
	if e, _ := p.Expiry(); e != "270100" {
		t.Errorf("Expiry = %q", e)
	}
	if _, ok := p.ProductionDate(); ok {
		t.Error("ProductionDate present")
	}
	if p.GTIN() != gtinL1 || p.Serial() != "SER" {
		t.Errorf("GTIN/Serial = %s %s", p.GTIN(), p.Serial())
	}
	if got, want := p.GS1Data(), "01"+gtinL1+"1727010021SER\x1d10LOT7"; got != want {
		t.Errorf("GS1Data = %q, want %q", got, want)
	}
	if got, want := p.DigitalLink("https://id.gs1.org/"), "https://id.gs1.org/01/"+gtinL1+"/21/SER?10=LOT7&17=270100"; got != want {
		t.Errorf("DigitalLink = %q, want %q", got, want)
	}
	n, _ := Parse("8021762-9000000001003")
	if n.ProductID() != "8021762" || len(n.Elements()) != 0 {
		t.Errorf("nmpa20 ProductID %q elements %v", n.ProductID(), n.Elements())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, raw string
		want      string // substring of the error
	}{
		{"empty", "  \r\n", "empty input"},
		{"nmpa20 short", "8021762900000000100", "19 digits, want 20"},
		{"nmpa20 long", "802176290000000010031", "more than 20 digits"},
		{"nmpa20 letter", "8021762-90000000010O3", "unexpected character 'O'"},
		{"nmpa20 double dash", "8021762--9000000001003", "misplaced separator"},
		{"nmpa20 leading digit", "]C070217629000000001003", "must start with 8"},
		{"unknown symbology", "]X080217629000000001003", "unsupported symbology identifier"},
		{"truncated symbology", "]d", "truncated symbology"},
		{"gtin check digit", "01069012345678932" + "1X", "AI (01) at position 15: GTIN: check digit is 3, want 2"},
		{"sscc check digit", "00306901234000000018", "check digit is 8, want 9"},
		{"gtin short", "]d20106901234", "must be exactly 14 characters, got 8"},
		{"bad month", "01" + gtinL1 + "17261301" + "21X", "AI (17) at position 18: USE BY OR EXPIRY: month must be 01..12"},
		{"bad day", "01" + gtinL1 + "17270230" + "21X", "no such day"},
		{"feb 29 non leap", "01" + gtinL1 + "17280229" + "21X\x1d11250229", "AI (11)"},
		{"7003 day 00", "01" + gtinL1 + "70032612001200" + "21X", "day 00 is not allowed"},
		{"7003 hour", "01" + gtinL1 + "70032612312400" + "21X", "hour must be 00..23"},
		{"serial charset", "01" + gtinL1 + "21AB#C", "AI (21) at position 20: SERIAL: character '#' is not in the GS1 character set 82"},
		{"serial too long", "01" + gtinL1 + "21" + strings.Repeat("A", 21), "length must be 1..20, got 21"},
		{"empty serial", "01" + gtinL1 + "21\x1d10B", "length must be 1..20, got 0"},
		{"duplicate AI", "01" + gtinL1 + "21A\x1d21B", "AI (21) at position 20: AI repeated with a different value"},
		{"unknown AI", "01" + gtinL1 + "21A\x1d99X", "unknown or unsupported GS1 AI at \"99X\""},
		{"trailing separator", "01" + gtinL1 + "21A\x1d", "trailing separator"},
		{"garbage after fixed", "(01)" + gtinL1 + "X(21)A", "must be exactly 14 characters; found more"},
		{"gtin without serial", "01" + gtinL1 + "10B", "without a serial"},
		{"serial without gtin", "21ABC", "without a GTIN"},
		{"sscc and gtin", "00" + ssccOK + "01" + gtinL1 + "21A", "both an SSCC"},
		{"count not numeric", "00" + ssccOK + "37A", "must be digits only"},
		{"bracket unknown AI", "(01)" + gtinL1 + "(99)B", "AI (99) at position 18: unknown or unsupported GS1 AI"},
		{"bracket garbage", "(01" + gtinL1, "expected (AI)"},
		{"dl no key", "https://id.gs1.org/foo/bar", "no /01/{GTIN}"},
		{"dl odd path", "https://id.gs1.org/01/" + gtinL1 + "/21", "ends without a value"},
		{"dl bad escape", "https://id.gs1.org/01/" + gtinL1 + "/21/A%2", "bad percent-encoding"},
		{"dl unknown query AI", "https://id.gs1.org/01/" + gtinL1 + "/21/A?99=1", "unknown or unsupported GS1 AI in Digital Link query"},
		{"non-gs1 symbology with AIs", "]C0010690123456789221A", "unexpected character 'A'"},
		{"non-gs1 symbology letters", "]Q1hello", "is not GS1"},
		{"junk", "hello", "unrecognised input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.raw)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error %q", tt.raw, tt.want)
			}
			if !errors.Is(err, ErrInvalidCode) {
				t.Errorf("error %v does not wrap ErrInvalidCode", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.raw, err, tt.want)
			}
		})
	}
}

func TestSymbologyStrings(t *testing.T) {
	for s := SymbologyNone; s <= SymbologyGS1DataBar; s++ {
		if s.String() == "unknown" {
			t.Errorf("symbology %d has no name", s)
		}
		if s != SymbologyNone {
			if got, ok := symbologyOf(s.String()[1:]); !ok || got != s {
				t.Errorf("symbologyOf(%s) = %v", s, got)
			}
		}
	}
}

var benchScans = []string{
	"]d201" + gtinL1 + "21A7xK2pQ9mZ\x1d10B2401\x1d17261231",
	"80217629000000001003",
	"]C100" + ssccOK,
	"(01)" + gtinL1 + "(21)A7xK2pQ9mZ(17)261231(10)B2401",
	"8021762-9000000001003",
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Parse(benchScans[i%len(benchScans)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseGS1DataMatrix(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchScans[0]); err != nil {
			b.Fatal(err)
		}
	}
}
