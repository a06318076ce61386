package tracecode

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const exampleDir = "../examples"

func loadExample(t testing.TB, name string) *Product {
	t.Helper()
	p, err := LoadProduct(filepath.Join(exampleDir, name))
	if err != nil {
		t.Fatalf("LoadProduct(%s): %v", name, err)
	}
	return p
}

func TestLoadExamples(t *testing.T) {
	for _, tt := range []struct {
		file    string
		schemes []Scheme
		pools   []string
	}{
		{"amoxicillin-nmpa20.yaml", []Scheme{SchemeNMPA20, SchemeNMPA20, SchemeNMPA20, SchemeGS1SSCC},
			[]string{"8021762-L1", "8021763-L2", "8021764-L3", "36901234-L4"}},
		{"amoxicillin-gs1.yaml", []Scheme{SchemeGS1SGTIN, SchemeGS1SGTIN, SchemeGS1SGTIN, SchemeGS1SSCC},
			[]string{"06901234567892-L1", "16901234567899-L2", "26901234567896-L3", "36901234-L4"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			p := loadExample(t, tt.file)
			if p.GenericName != "阿莫西林胶囊" || p.TopLevel() != 4 {
				t.Fatalf("got %q with %d levels", p.GenericName, p.TopLevel())
			}
			for i, s := range tt.schemes {
				l := Level(i + 1)
				if got := p.Rule(l).Scheme; got != s {
					t.Errorf("Rule(%s).Scheme = %s, want %s", l, got, s)
				}
				if got := p.PoolName(l); got != tt.pools[i] {
					t.Errorf("PoolName(%s) = %s, want %s", l, got, tt.pools[i])
				}
			}
			wantRatio := []int{0, 1, 10, 20, 40, 0}
			wantUnits := []int{0, 1, 10, 200, 8000, 0}
			for l := 0; l <= 5; l++ {
				if got := p.Ratio(Level(l)); got != wantRatio[l] {
					t.Errorf("Ratio(%d) = %d, want %d", l, got, wantRatio[l])
				}
				if got := p.Units(Level(l)); got != wantUnits[l] {
					t.Errorf("Units(%d) = %d, want %d", l, got, wantUnits[l])
				}
			}
			if p.Rule(5).Scheme != "" || p.Coded(5) || !p.Coded(1) {
				t.Error("level 5 should not exist")
			}
		})
	}
}

// mutate applies old→new to the gs1 example and returns the error of loading it.
func loadMutated(t *testing.T, base, old, new string) error {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(exampleDir, base))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", base, old)
	}
	_, err = ParseProduct("x.yaml", []byte(strings.Replace(s, old, new, 1)))
	return err
}

func TestProductValidation(t *testing.T) {
	const gs1, nmpa = "amoxicillin-gs1.yaml", "amoxicillin-nmpa20.yaml"
	tests := []struct {
		name, base, old, new, want string
	}{
		{"unknown field", gs1, "trade_name:", "trade_nam:", "field trade_nam not found"},
		{"standard code check", gs1, `"86901234678904"`, `"86901234678905"`, "x.yaml: standard_code: \"86901234678905\": check digit is 5, want 4"},
		{"standard code prefix", gs1, `"86901234678904"`, `"12345678901234"`, "starts with 86"},
		{"ean13 prefix", gs1, `ean13: "6901234567892"`, `ean13: "4006381333931"`, "ean13: \"4006381333931\": a Chinese 商品条码 starts with 69"},
		{"ean13 check", gs1, `ean13: "6901234567892"`, `ean13: "6901234567893"`, "check digit is 3, want 2"},
		{"uscc", gs1, "91130100MA0CG5T8XK", "91130100MA0CG5T8XA", "mah.uscc"},
		{"approval", gs1, "国药准字H20053386", "国药准字X2005338", "approval_number"},
		{"gtin check", gs1, `gtin: "16901234567899"`, `gtin: "16901234567890"`, "levels[1].gtin: \"16901234567890\": check digit is 0, want 9"},
		{"gtin dup", gs1, `gtin: "16901234567899"`, `gtin: "06901234567892"`, "also the GTIN of levels[0]"},
		{"level gap", gs1, "level: 3", "level: 5", "levels[2].level: is 5, want 3"},
		{"ratio missing", gs1, "ratio: 20", "ratio: 0", "levels[2].ratio: missing or 0: how many 中包 go into one 箱?"},
		{"level1 ratio", gs1, "ratio: 1\n", "ratio: 2\n", "its ratio must be 1"},
		{"scheme", gs1, "scheme: gs1-sgtin", "scheme: gs2", "levels[0].rule.scheme: unknown code scheme"},
		{"carrier", gs1, "carrier: gs1-datamatrix", "carrier: code128", "levels[0].rule.carrier: \"code128\" cannot carry a gs1-sgtin code"},
		{"grade", gs1, "min_grade: C", "min_grade: G", "levels[0].rule.min_grade"},
		{"serial length", gs1, "length: 12", "length: 21", "levels[0].rule.serial.length: 21"},
		{"serial alphabet", gs1, "alphabet: numeric", "alphabet: hex", "levels[1].rule.serial.alphabet"},
		{"serial chars", gs1, `chars: "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"`, `chars: "23#"`, "'#' is not in the GS1 character set 82"},
		{"carries", gs1, "carries: [batch, expiry]", "carries: [batch, colour]", "levels[0].rule.carries[1]: \"colour\""},
		{"filing", gs1, "filing_ref: GS1-BA-2024-0153-L1", "filing_ref: \"\"", "levels[0].rule.filing_ref: missing"},
		{"sscc prefix", gs1, `company_prefix: "6901234"`, `company_prefix: "69A"`, "sscc.company_prefix"},
		{"sscc ext", gs1, "extension_digit: 3", "extension_digit: 12", "extension_digit: 12: want 0..9"},
		{"nmpa product id", nmpa, `product_id: "8021762"`, `product_id: "802176"`, "levels[0].product_id: \"802176\": 药品标识码 is 7 digits"},
		{"nmpa product id missing", nmpa, `product_id: "8021763"`, `product_id: ""`, "levels[1].product_id: missing"},
		{"nmpa carries", nmpa, "carrier: code128\n      min_grade: C\n  - level: 2", "carrier: code128\n      carries: [batch]\n      min_grade: C\n  - level: 2", "carries no data"},
		{"level 1 uncoded", nmpa, "    rule:\n      scheme: nmpa20\n      filing_ref: MSFX-BA-2024-0153-L1\n      carrier: code128\n      min_grade: C\n", "", "levels[0].rule: missing: level 1"},
		{"two documents", gs1, "generic_name:", "x: 1\n---\ngeneric_name:", "field x not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadMutated(t, tt.base, tt.old, tt.new)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := ParseProduct("e.yaml", nil); err == nil || !strings.Contains(err.Error(), "e.yaml: empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := LoadProduct("does-not-exist.yaml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestMatch(t *testing.T) {
	n := loadExample(t, "amoxicillin-nmpa20.yaml")
	g := loadExample(t, "amoxicillin-gs1.yaml")
	tests := []struct {
		name string
		p    *Product
		l    Level
		raw  string
		want string // "" = matches
	}{
		{"nmpa20 L1", n, 1, "80217629000000001003", ""},
		{"nmpa20 wrong level", n, 2, "80217629000000001003", "product id 8021762, level L2's is 8021763"},
		{"nmpa20 vs gs1", n, 1, "(01)06901234567892(21)ABCDEFGHJKLM(10)B(17)260100", "is a gs1-sgtin code"},
		{"gs1 L1", g, 1, "(01)06901234567892(21)ABCDEFGHJKLM(10)B(17)260100", ""},
		{"gs1 wrong gtin", g, 2, "(01)06901234567892(21)ABCDEFGHJK(10)B(17)260100", "GTIN 06901234567892, level L2's is 16901234567899"},
		{"gs1 serial length", g, 1, "(01)06901234567892(21)ABC(10)B(17)260100", "serial has 3 characters, the rule says 12"},
		{"gs1 serial alphabet", g, 1, "(01)06901234567892(21)ABCDEFGHJKL1(10)B(17)260100", "'1' is not in the rule's alphabet"},
		{"gs1 missing expiry", g, 1, "(01)06901234567892(21)ABCDEFGHJKLM(10)B", "carries expiry (AI 17)"},
		{"sscc", g, 4, "(00)369012340000000017", ""},
		{"sscc other company", g, 4, "(00)306901234000000019", "does not start with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.p.Match(tt.l, &c)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrNotThisProduct) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Match = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGrade(t *testing.T) {
	if !Grade("A").AtLeast("C") || !Grade("C").AtLeast("C") || Grade("D").AtLeast("C") || Grade("X").AtLeast("C") {
		t.Error("grade ordering wrong")
	}
}

func FuzzParseProduct(f *testing.F) {
	for _, n := range []string{"amoxicillin-gs1.yaml", "amoxicillin-nmpa20.yaml"} {
		data, err := os.ReadFile(filepath.Join(exampleDir, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("levels: [{level: 1, name: a, rule: {scheme: gs1-sscc}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProduct("fuzz.yaml", data)
		if err != nil {
			return
		}
		for l := Level(0); l <= p.TopLevel()+1; l++ {
			_ = p.Rule(l)
			_ = p.Units(l)
			_ = p.PoolName(l)
			if g, err := NewGenerator(p, l); err == nil && g.space >= 4 {
				if _, err := g.Next(); err != nil {
					t.Fatalf("level %s: %v", l, err)
				}
			}
		}
	})
}
