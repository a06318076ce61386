package tracecode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Product is a product's master data and its filed code rules, one per
// coded packaging level, as the MAH filed them (编码规则备案, 多码关联).
// Load it with LoadProduct; a loaded Product is valid and read-only.
type Product struct {
	GenericName          string      `yaml:"generic_name"`           // 通用名
	TradeName            string      `yaml:"trade_name"`             // 商品名
	DosageForm           string      `yaml:"dosage_form"`            // 剂型
	Strength             string      `yaml:"strength"`               // 规格
	PackageSpec          string      `yaml:"package_spec"`           // 包装规格, e.g. 0.25g×24粒/盒
	MAH                  MAH         `yaml:"mah"`                    // 上市许可持有人
	ApprovalNumber       string      `yaml:"approval_number"`        // 批准文号, 国药准字H20053386
	StandardCode         string      `yaml:"standard_code"`          // 本位码, 14 digits, checked
	EAN13                string      `yaml:"ean13"`                  // 69 商品条码, checked
	MedicalInsuranceCode string      `yaml:"medical_insurance_code"` // 医保药品代码
	YPID                 string      `yaml:"ypid"`                   // 药品唯一标识 YPID (stored)
	Levels               []LevelSpec `yaml:"levels"`                 // level 1 first, no gaps

	source string
}

// MAH is the marketing-authorisation holder.
type MAH struct {
	Name string `yaml:"name"`
	USCC string `yaml:"uscc"` // 统一社会信用代码, 18 characters, checked
}

// LevelSpec is one packaging level of a product.
type LevelSpec struct {
	Level     Level  `yaml:"level"`
	Name      string `yaml:"name"`       // 盒, 中包, 箱, 托盘
	Ratio     int    `yaml:"ratio"`      // units of the level below per unit of this level (1 for level 1)
	ProductID string `yaml:"product_id"` // 药品标识码 of this level (7 digits), for nmpa20
	GTIN      string `yaml:"gtin"`       // GTIN-14 of this level, for gs1-sgtin
	Rule      *Rule  `yaml:"rule"`       // the filed rule; nil: this level carries no code
}

// Carrier is the symbol a code is printed in.
type Carrier string

const (
	CarrierGS1DataMatrix Carrier = "gs1-datamatrix"
	CarrierGS1128        Carrier = "gs1-128"
	CarrierQR            Carrier = "qr" // GS1 schemes: a GS1 Digital Link URI
	CarrierCode128       Carrier = "code128"
	CarrierDataMatrix    Carrier = "datamatrix" // plain ECC 200, for nmpa20
)

func (c Carrier) String() string { return string(c) }

// Data names a datum a GS1 code carries besides its identity.
type Data string

const (
	DataBatch          Data = "batch"           // AI (10)
	DataExpiry         Data = "expiry"          // AI (17)
	DataProductionDate Data = "production-date" // AI (11)
)

func (d Data) String() string { return string(d) }

// AI is the GS1 AI that carries d.
func (d Data) AI() string {
	switch d {
	case DataBatch:
		return "10"
	case DataExpiry:
		return "17"
	case DataProductionDate:
		return "11"
	}
	return ""
}

// Grade is an ISO/IEC 15415/15416 print quality grade, A (best) to F.
type Grade string

func (g Grade) String() string { return string(g) }

// Validate reports whether g is one of A B C D F (E is accepted as a
// synonym some verifiers use between D and F).
func (g Grade) Validate() error {
	switch g {
	case "A", "B", "C", "D", "E", "F":
		return nil
	}
	return fmt.Errorf("grade %q is not one of A, B, C, D, E, F", string(g))
}

// AtLeast reports whether g is as good as min or better. Invalid grades
// are never good enough.
func (g Grade) AtLeast(min Grade) bool {
	if g.Validate() != nil || min.Validate() != nil {
		return false
	}
	return g[0] <= min[0]
}

// Rule is a filed code rule of one product and level.
type Rule struct {
	Scheme   Scheme     `yaml:"scheme"`
	Filing   string     `yaml:"filing_ref"` // the filing's reference at the platform
	Serial   SerialSpec `yaml:"serial"`     // gs1-sgtin
	SSCC     SSCCSpec   `yaml:"sscc"`       // gs1-sscc
	Carries  []Data     `yaml:"carries"`    // gs1-sgtin: batch, expiry, production-date
	Carrier  Carrier    `yaml:"carrier"`
	MinGrade Grade      `yaml:"min_grade"`
	// DigitalLinkBase is the URI base for GS1 codes in QR (default
	// https://id.gs1.org).
	DigitalLinkBase string `yaml:"digital_link_base"`
}

// SerialSpec is how GS1 serials (AI 21) are formed.
type SerialSpec struct {
	Length   int    `yaml:"length"`   // 1..20
	Alphabet string `yaml:"alphabet"` // numeric | upper-alnum | alnum | cset82 | custom
	Chars    string `yaml:"chars"`    // the characters, when alphabet is custom
}

// Charset is the serial's character set, in a fixed order.
func (s SerialSpec) Charset() string {
	switch s.Alphabet {
	case "numeric":
		return "0123456789"
	case "upper-alnum":
		return "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	case "alnum":
		return "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	case "cset82":
		return CSet82
	case "custom":
		return s.Chars
	}
	return ""
}

// SSCCSpec is how SSCCs are formed: extension digit + GS1 company prefix +
// serial reference (random) + check digit.
type SSCCSpec struct {
	ExtensionDigit *int   `yaml:"extension_digit"` // 0..9
	CompanyPrefix  string `yaml:"company_prefix"`  // 6..12 digits
}

// LoadProduct reads and validates a product file (YAML). Errors name the
// file, the field and what is wrong.
func LoadProduct(path string) (*Product, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("product file: %w", err)
	}
	return ParseProduct(path, data)
}

// ParseProduct decodes and validates a product from YAML; name is used in
// error messages.
func ParseProduct(name string, data []byte) (*Product, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Product
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty product file", name)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document; want one product per file", name)
	}
	p.source = name
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Source is the file the product was loaded from.
func (p *Product) Source() string { return p.source }

// Validate checks the master data and every rule; the error lists every
// problem, one per line, as "file: field: what is wrong".
func (p *Product) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if p.source != "" {
			errs = append(errs, fmt.Errorf("%s: %s: %s", p.source, field, msg))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", field, msg))
		}
	}
	if strings.TrimSpace(p.GenericName) == "" {
		bad("generic_name", "missing (通用名)")
	}
	if strings.TrimSpace(p.MAH.Name) == "" {
		bad("mah.name", "missing (上市许可持有人)")
	}
	if p.MAH.USCC != "" {
		if msg := checkUSCC(p.MAH.USCC); msg != "" {
			bad("mah.uscc", "%q: %s", p.MAH.USCC, msg)
		}
	}
	if p.ApprovalNumber != "" {
		if msg := checkApprovalNumber(p.ApprovalNumber); msg != "" {
			bad("approval_number", "%q: %s", p.ApprovalNumber, msg)
		}
	}
	if p.StandardCode != "" {
		if msg := checkStandardCode(p.StandardCode); msg != "" {
			bad("standard_code", "%q: %s", p.StandardCode, msg)
		}
	}
	if p.EAN13 != "" {
		if msg := checkEAN13(p.EAN13); msg != "" {
			bad("ean13", "%q: %s", p.EAN13, msg)
		}
	}
	if c := p.MedicalInsuranceCode; c != "" {
		if len(c) < 20 || len(c) > 27 || (c[0] != 'X' && c[0] != 'Z') || !upperAlnum(c) {
			bad("medical_insurance_code", "%q: want 20..27 upper-case letters and digits starting with X (西药) or Z (中药)", c)
		}
	}
	if y := p.YPID; y != "" {
		if len(y) > 64 || !printableNoSpace(y) {
			bad("ypid", "%q: want 1..64 printable ASCII characters without spaces", y)
		}
	}
	if len(p.Levels) == 0 {
		bad("levels", "missing: a product needs at least level 1")
	}
	if len(p.Levels) > int(MaxLevel) {
		bad("levels", "%d levels, at most %d", len(p.Levels), MaxLevel)
	}
	names := map[string]int{}
	ids := map[string]int{}
	gtins := map[string]int{}
	coded := 0
	for i := range p.Levels {
		l := &p.Levels[i]
		f := fmt.Sprintf("levels[%d]", i)
		if int(l.Level) != i+1 {
			bad(f+".level", "is %d, want %d: levels are listed 1, 2, 3, … without gaps", l.Level, i+1)
		}
		if strings.TrimSpace(l.Name) == "" {
			bad(f+".name", "missing (e.g. 盒, 中包, 箱)")
		} else if j, dup := names[l.Name]; dup {
			bad(f+".name", "%q is also the name of levels[%d]", l.Name, j)
		} else {
			names[l.Name] = i
		}
		switch {
		case i == 0 && l.Ratio == 0:
			l.Ratio = 1
		case i == 0 && l.Ratio != 1:
			bad(f+".ratio", "level 1 is the smallest unit; its ratio must be 1 (or omitted), got %d", l.Ratio)
		case i > 0 && l.Ratio < 1:
			bad(f+".ratio", "missing or %d: how many %s go into one %s?", l.Ratio, p.Levels[i-1].Name, l.Name)
		}
		if l.ProductID != "" {
			if len(l.ProductID) != 7 || !allDigits(l.ProductID) || l.ProductID[0] != '8' {
				bad(f+".product_id", "%q: 药品标识码 is 7 digits starting with 8", l.ProductID)
			} else if j, dup := ids[l.ProductID]; dup {
				bad(f+".product_id", "%q is also the product id of levels[%d]; each level has its own", l.ProductID, j)
			} else {
				ids[l.ProductID] = i
			}
		}
		if l.GTIN != "" {
			if msg := checkGTIN14(l.GTIN); msg != "" {
				bad(f+".gtin", "%q: %s", l.GTIN, msg)
			} else if j, dup := gtins[l.GTIN]; dup {
				bad(f+".gtin", "%q is also the GTIN of levels[%d]; each level has its own", l.GTIN, j)
			} else {
				gtins[l.GTIN] = i
			}
		}
		if l.Rule == nil {
			if i == 0 {
				bad(f+".rule", "missing: level 1, the sales unit, must carry a code (一物一码)")
			}
			continue
		}
		coded++
		l.Rule.validate(f+".rule", l, bad)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

func (r *Rule) validate(f string, l *LevelSpec, bad func(field, format string, a ...any)) {
	if err := r.Scheme.Validate(); err != nil {
		bad(f+".scheme", "%v", err)
		return
	}
	if strings.TrimSpace(r.Filing) == "" {
		bad(f+".filing_ref", "missing: the reference of the filed code rule (编码规则备案)")
	}
	if err := r.MinGrade.Validate(); err != nil {
		bad(f+".min_grade", "%v", err)
	}
	carriers := map[Scheme][]Carrier{
		SchemeNMPA20:   {CarrierCode128, CarrierDataMatrix, CarrierQR},
		SchemeGS1SGTIN: {CarrierGS1DataMatrix, CarrierGS1128, CarrierQR},
		SchemeGS1SSCC:  {CarrierGS1128, CarrierGS1DataMatrix, CarrierQR},
	}[r.Scheme]
	okCarrier := false
	for _, c := range carriers {
		okCarrier = okCarrier || c == r.Carrier
	}
	if !okCarrier {
		names := make([]string, len(carriers))
		for i, c := range carriers {
			names[i] = string(c)
		}
		bad(f+".carrier", "%q cannot carry a %s code; want one of %s", string(r.Carrier), r.Scheme, strings.Join(names, ", "))
	}
	noSerial := r.Serial == (SerialSpec{})
	noSSCC := r.SSCC.ExtensionDigit == nil && r.SSCC.CompanyPrefix == ""
	switch r.Scheme {
	case SchemeNMPA20:
		if l.ProductID == "" {
			bad(strings.TrimSuffix(f, ".rule")+".product_id", "missing: an nmpa20 level needs its 药品标识码")
		}
		if !noSerial || !noSSCC {
			bad(f, "nmpa20 codes come from the platform: serial and sscc do not apply")
		}
		if len(r.Carries) > 0 {
			bad(f+".carries", "an nmpa20 code is 20 digits and carries no data; print batch and expiry as text")
		}
	case SchemeGS1SGTIN:
		if l.GTIN == "" {
			bad(strings.TrimSuffix(f, ".rule")+".gtin", "missing: a gs1-sgtin level needs its GTIN-14")
		}
		if !noSSCC {
			bad(f+".sscc", "does not apply to gs1-sgtin")
		}
		if r.Serial.Length < 1 || r.Serial.Length > 20 {
			bad(f+".serial.length", "%d: a GS1 serial (AI 21) is 1..20 characters", r.Serial.Length)
		}
		cs := r.Serial.Charset()
		switch {
		case r.Serial.Alphabet == "custom" && len(cs) < 2:
			bad(f+".serial.chars", "%q: a custom alphabet needs at least 2 characters", cs)
		case cs == "":
			bad(f+".serial.alphabet", "%q: want numeric, upper-alnum, alnum, cset82 or custom (with chars)", r.Serial.Alphabet)
		case r.Serial.Alphabet != "custom" && r.Serial.Chars != "":
			bad(f+".serial.chars", "only with alphabet: custom")
		default:
			seen := map[byte]bool{}
			for i := 0; i < len(cs); i++ {
				if !InCSet82(cs[i]) {
					bad(f+".serial.chars", "%s is not in the GS1 character set 82", quoteByte(cs[i]))
				} else if seen[cs[i]] {
					bad(f+".serial.chars", "%s appears twice", quoteByte(cs[i]))
				}
				seen[cs[i]] = true
			}
		}
		seen := map[Data]bool{}
		for i, d := range r.Carries {
			if d.AI() == "" {
				bad(fmt.Sprintf("%s.carries[%d]", f, i), "%q: want batch, expiry or production-date", string(d))
			} else if seen[d] {
				bad(fmt.Sprintf("%s.carries[%d]", f, i), "%q listed twice", string(d))
			}
			seen[d] = true
		}
	case SchemeGS1SSCC:
		if !noSerial {
			bad(f+".serial", "does not apply to gs1-sscc (the serial reference fills the SSCC)")
		}
		if len(r.Carries) > 0 {
			bad(f+".carries", "an SSCC carries no batch or dates")
		}
		if r.SSCC.ExtensionDigit == nil {
			bad(f+".sscc.extension_digit", "missing (0..9)")
		} else if d := *r.SSCC.ExtensionDigit; d < 0 || d > 9 {
			bad(f+".sscc.extension_digit", "%d: want 0..9", d)
		}
		if cp := r.SSCC.CompanyPrefix; len(cp) < 6 || len(cp) > 12 || !allDigits(cp) {
			bad(f+".sscc.company_prefix", "%q: a GS1 company prefix is 6..12 digits", cp)
		}
	}
	if r.DigitalLinkBase != "" && !isDigitalLink(r.DigitalLinkBase+"/") {
		bad(f+".digital_link_base", "%q: want an http(s):// URI", r.DigitalLinkBase)
	}
	if r.DigitalLinkBase == "" && r.Scheme != SchemeNMPA20 {
		r.DigitalLinkBase = "https://id.gs1.org"
	}
}

// Level returns the spec of level l.
func (p *Product) Level(l Level) (LevelSpec, bool) {
	if l < 1 || int(l) > len(p.Levels) {
		return LevelSpec{}, false
	}
	return p.Levels[l-1], true
}

// TopLevel is the highest packaging level.
func (p *Product) TopLevel() Level { return Level(len(p.Levels)) }

// Coded reports whether level l carries codes.
func (p *Product) Coded(l Level) bool {
	ls, ok := p.Level(l)
	return ok && ls.Rule != nil
}

// Rule is the filed rule of level l; the zero Rule (Scheme "") if the
// level carries no code or does not exist.
func (p *Product) Rule(l Level) Rule {
	ls, ok := p.Level(l)
	if !ok || ls.Rule == nil {
		return Rule{}
	}
	return *ls.Rule
}

// Ratio is the number of level l-1 units in one unit of level l (1 for
// level 1, 0 for a level the product does not have).
func (p *Product) Ratio(l Level) int {
	ls, ok := p.Level(l)
	if !ok {
		return 0
	}
	return ls.Ratio
}

// Units is the number of level-1 units in one full unit of level l.
func (p *Product) Units(l Level) int {
	n := 1
	for k := Level(2); k <= l; k++ {
		n *= p.Ratio(k)
	}
	if _, ok := p.Level(l); !ok {
		return 0
	}
	return n
}

// PoolName is the conventional pool of level l's codes: the level's
// product id (nmpa20), GTIN (gs1-sgtin) or extension digit + company
// prefix (gs1-sscc), then "-L<level>", e.g. "8021762-L1".
func (p *Product) PoolName(l Level) string {
	ls, ok := p.Level(l)
	if !ok || ls.Rule == nil {
		return ""
	}
	switch ls.Rule.Scheme {
	case SchemeNMPA20:
		return ls.ProductID + "-" + l.String()
	case SchemeGS1SGTIN:
		return ls.GTIN + "-" + l.String()
	case SchemeGS1SSCC:
		return fmt.Sprintf("%d%s-%s", *ls.Rule.SSCC.ExtensionDigit, ls.Rule.SSCC.CompanyPrefix, l)
	}
	return ""
}

// ErrNotThisProduct is wrapped by Match when a valid code does not belong
// to the product and level.
var ErrNotThisProduct = errors.New("code does not belong to this product and level")

// Match checks that a parsed code is one of level l's codes under its
// filed rule: scheme, product id / GTIN / company prefix, serial length
// and alphabet, and the data the rule says the code carries.
func (p *Product) Match(l Level, c *Parsed) error {
	ls, ok := p.Level(l)
	if !ok || ls.Rule == nil {
		return fmt.Errorf("level %s of %s carries no code: %w", l, p.GenericName, ErrNotThisProduct)
	}
	r := ls.Rule
	if c.Scheme != r.Scheme {
		return fmt.Errorf("%s is a %s code, level %s uses %s: %w", c.Code, c.Scheme, l, r.Scheme, ErrNotThisProduct)
	}
	switch r.Scheme {
	case SchemeNMPA20:
		if c.ProductID() != ls.ProductID {
			return fmt.Errorf("%s: product id %s, level %s's is %s: %w", c.Code, c.ProductID(), l, ls.ProductID, ErrNotThisProduct)
		}
	case SchemeGS1SGTIN:
		if c.GTIN() != ls.GTIN {
			return fmt.Errorf("%s: GTIN %s, level %s's is %s: %w", c.Code, c.GTIN(), l, ls.GTIN, ErrNotThisProduct)
		}
		s := c.Serial()
		if len(s) != r.Serial.Length {
			return fmt.Errorf("%s: serial has %d characters, the rule says %d: %w", c.Code, len(s), r.Serial.Length, ErrNotThisProduct)
		}
		cs := r.Serial.Charset()
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(cs, s[i]) < 0 {
				return fmt.Errorf("%s: serial character %s is not in the rule's alphabet: %w", c.Code, quoteByte(s[i]), ErrNotThisProduct)
			}
		}
		for _, d := range r.Carries {
			if _, ok := c.Get(d.AI()); !ok {
				return fmt.Errorf("%s: the rule says it carries %s (AI %s), the scan has none: %w", c.Code, d, d.AI(), ErrNotThisProduct)
			}
		}
	case SchemeGS1SSCC:
		want := fmt.Sprintf("%d%s", *r.SSCC.ExtensionDigit, r.SSCC.CompanyPrefix)
		if !strings.HasPrefix(c.SSCC(), want) {
			return fmt.Errorf("%s: SSCC does not start with extension digit and company prefix %s: %w", c.Code, want, ErrNotThisProduct)
		}
	}
	return nil
}
