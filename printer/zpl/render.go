package zpl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tracline/tracline/printer"
)

// Symbology of the label's barcode.
type Symbology string

const (
	GS1128        Symbology = "gs1-128"        // Code 128 with FNC1 (^BC), for GS1 codes (SSCC…)
	GS1DataMatrix Symbology = "gs1-datamatrix" // Data Matrix ECC 200 with FNC1 (^BX), for GS1 codes
	Code128       Symbology = "code128"        // plain Code 128, for non-GS1 codes (nmpa20)
	DataMatrix    Symbology = "datamatrix"     // plain Data Matrix ECC 200, for non-GS1 codes
)

// Validate reports whether s is known.
func (s Symbology) Validate() error {
	switch s {
	case GS1128, GS1DataMatrix, Code128, DataMatrix:
		return nil
	}
	return fmt.Errorf("symbology %q is not gs1-128, gs1-datamatrix, code128 or datamatrix", string(s))
}

// GS1 reports whether s carries GS1 codes (with FNC1); the others carry
// non-GS1 codes (nmpa20) only.
func (s Symbology) GS1() bool { return s == GS1128 || s == GS1DataMatrix }

// gs is the GS1 separator (FNC1 in the middle of an element string).
const gs = 0x1D

// fixedAI2 are the first two digits of the AIs whose length is predefined
// by the GS1 General Specifications (figure 7.8.5-2): no separator after them.
var fixedAI2 = map[string]bool{
	"00": true, "01": true, "02": true, "03": true, "04": true,
	"11": true, "12": true, "13": true, "14": true, "15": true, "16": true, "17": true, "18": true, "19": true, "20": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "41": true,
}

// ElementString turns a bracketed GS1 code ("(00)0690…", "(01)…(21)…(10)…")
// into the element string a barcode encodes: AIs and values concatenated,
// GS after every variable-length value but the last, no leading FNC1.
func ElementString(bracketed string) (string, error) {
	if !strings.HasPrefix(bracketed, "(") {
		return "", fmt.Errorf("%q is not a bracketed GS1 code", bracketed)
	}
	var b strings.Builder
	rest := bracketed
	for rest != "" {
		if rest[0] != '(' {
			return "", fmt.Errorf("%q: expected '(' at %q", bracketed, rest)
		}
		end := strings.IndexByte(rest, ')')
		if end < 3 || end > 5 {
			return "", fmt.Errorf("%q: bad AI at %q", bracketed, rest)
		}
		ai := rest[1:end]
		if !digits(ai) {
			return "", fmt.Errorf("%q: AI %q is not digits", bracketed, ai)
		}
		rest = rest[end+1:]
		next := strings.IndexByte(rest, '(')
		val := rest
		if next >= 0 {
			val, rest = rest[:next], rest[next:]
		} else {
			rest = ""
		}
		if val == "" {
			return "", fmt.Errorf("%q: AI (%s) has no value", bracketed, ai)
		}
		b.WriteString(ai)
		b.WriteString(val)
		if rest != "" && !fixedAI2[ai[:2]] {
			b.WriteByte(gs)
		}
	}
	return b.String(), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// barcodeData returns what the barcode must encode for l under sym.
func barcodeData(l printer.Label, sym Symbology) (string, error) {
	if l.Code == "" && l.ElementString == "" {
		return "", errors.New("label has no code")
	}
	data := l.ElementString
	if sym.GS1() {
		if data == "" {
			var err error
			if data, err = ElementString(string(l.Code)); err != nil {
				return "", fmt.Errorf("%s needs a GS1 code: %w", sym, err)
			}
		}
	} else {
		if data != "" {
			return "", fmt.Errorf("%s is for non-GS1 codes; use gs1-128 or gs1-datamatrix for element string %q", sym, data)
		}
		data = string(l.Code)
		if strings.HasPrefix(data, "(") {
			return "", fmt.Errorf("%s is for non-GS1 codes; %q is a GS1 code", sym, data)
		}
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '^' || c == '~' || (c < 0x20 && c != gs) || c > 0x7E {
			return "", fmt.Errorf("code %q: byte 0x%02X cannot be printed in a barcode field", data, c)
		}
	}
	if !sym.GS1() && strings.IndexByte(data, gs) >= 0 {
		return "", fmt.Errorf("code %q contains GS but %s has no FNC1", data, sym)
	}
	return data, nil
}

// code128Field renders ^FD data for ^BC: subset C for even-length digit runs,
// subset B otherwise; FNC1 as >8; '>' as ><.
func code128Field(data string, gs1 bool) string {
	allEvenDigits := true
	for _, seg := range strings.Split(data, string(rune(gs))) {
		if !digits(seg) || len(seg)%2 != 0 {
			allEvenDigits = false
		}
	}
	var b strings.Builder
	if allEvenDigits {
		b.WriteString(">;")
	} else {
		b.WriteString(">:")
	}
	if gs1 {
		b.WriteString(">8")
	}
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case gs:
			b.WriteString(">8")
		case '>':
			b.WriteString("><")
		default:
			b.WriteByte(data[i])
		}
	}
	return b.String()
}

// dataMatrixField renders ^FD data for ^BX quality 200 with escape '_':
// FNC1 as _1, '_' as __.
func dataMatrixField(data string, gs1 bool) string {
	var b strings.Builder
	if gs1 {
		b.WriteString("_1")
	}
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case gs:
			b.WriteString("_1")
		case '_':
			b.WriteString("__")
		default:
			b.WriteByte(data[i])
		}
	}
	return b.String()
}

// textField escapes text for ^FH_^FD: '_', '^', '~' and control bytes as
// _XX hex; UTF-8 passes through (the format selects ^CI28).
func textField(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == '^' || c == '~' || c < 0x20 || c == 0x7F {
			fmt.Fprintf(&b, "_%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Render returns the ZPL format (^XA…^XZ) for one label on a 4×6 in label
// at 203 dpi: title, product, batch, expiry, count, the barcode, and the
// code as human-readable text. Bad input is an error and nothing is rendered.
func Render(l printer.Label, sym Symbology) ([]byte, error) {
	if err := sym.Validate(); err != nil {
		return nil, err
	}
	// A label without a code is a notice (e.g. REWORK on a group the line
	// refused): text only, no barcode.
	notice := l.Code == "" && l.ElementString == ""
	if notice && l.Title == "" {
		return nil, errors.New("label has no code and no title")
	}
	var data string
	if !notice {
		var err error
		if data, err = barcodeData(l, sym); err != nil {
			return nil, err
		}
	}
	hr := string(l.Code)
	if hr == "" {
		hr = strings.ReplaceAll(data, string(rune(gs)), " ")
	}
	var b strings.Builder
	b.WriteString("^XA\n^CI28\n^PW812\n^LL1218\n^LH0,0\n")
	text := func(y, h int, s string) {
		if s == "" {
			return
		}
		fmt.Fprintf(&b, "^FO40,%d^A0N,%d,%d^FH_^FD%s^FS\n", y, h, h, textField(s))
	}
	text(40, 64, l.Title)
	text(130, 36, l.Product)
	if l.Batch != "" {
		text(180, 36, "Batch: "+l.Batch)
	}
	if l.Expiry != "" {
		text(230, 36, "Expiry: "+l.Expiry)
	}
	if l.Count > 0 || l.Level > 0 {
		s := ""
		if l.Count > 0 {
			s = "Qty: " + strconv.Itoa(l.Count)
		}
		if l.Level > 0 {
			if s != "" {
				s += "  "
			}
			s += "Level: " + l.Level.String()
		}
		text(280, 36, s)
	}
	switch {
	case notice:
	case sym == GS1128 || sym == Code128:
		fmt.Fprintf(&b, "^FO40,360^BY3^BCN,220,N,N,N^FD%s^FS\n", code128Field(data, sym.GS1()))
	case sym == GS1DataMatrix || sym == DataMatrix:
		fmt.Fprintf(&b, "^FO40,360^BXN,12,200,,,,_^FD%s^FS\n", dataMatrixField(data, sym.GS1()))
	}
	text(700, 40, hr)
	b.WriteString("^PQ1\n^XZ\n")
	return []byte(b.String()), nil
}
