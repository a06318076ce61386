package tracecode

import (
	"errors"
	"strings"
)

// ErrInvalidCode is the identity of every parse failure: errors.Is(err,
// ErrInvalidCode) holds for any error Parse returns. The *ParseError says why.
var ErrInvalidCode = errors.New("invalid code")

// ParseError says exactly why a scan is not a valid trace code.
type ParseError struct {
	Pos    int    // byte offset in the raw input, or -1 when it is about the whole input
	AI     string // the GS1 AI concerned, if any ("17")
	Reason string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.AI != "" {
		b.WriteString("AI (" + e.AI + ")")
	}
	if e.Pos >= 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("at position " + itoa(e.Pos))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (e *ParseError) Unwrap() error { return ErrInvalidCode }

func perr(pos int, ai, reason string) error { return &ParseError{Pos: pos, AI: ai, Reason: reason} }

// Symbology is the AIM symbology identifier a reader put in front of the
// data, if any.
type Symbology uint8

const (
	SymbologyNone          Symbology = iota // no identifier transmitted
	SymbologyGS1DataMatrix                  // ]d2
	SymbologyDataMatrix                     // ]d1 (ECC 200, not GS1)
	SymbologyGS1128                         // ]C1
	SymbologyCode128                        // ]C0
	SymbologyGS1QR                          // ]Q3
	SymbologyQR                             // ]Q1
	SymbologyGS1DataBar                     // ]e0
)

func (s Symbology) String() string {
	switch s {
	case SymbologyNone:
		return "none"
	case SymbologyGS1DataMatrix:
		return "]d2"
	case SymbologyDataMatrix:
		return "]d1"
	case SymbologyGS1128:
		return "]C1"
	case SymbologyCode128:
		return "]C0"
	case SymbologyGS1QR:
		return "]Q3"
	case SymbologyQR:
		return "]Q1"
	case SymbologyGS1DataBar:
		return "]e0"
	}
	return "unknown"
}

// GS1 reports whether the identifier announces GS1 element-string data.
func (s Symbology) GS1() bool {
	switch s {
	case SymbologyGS1DataMatrix, SymbologyGS1128, SymbologyGS1QR, SymbologyGS1DataBar:
		return true
	case SymbologyNone, SymbologyDataMatrix, SymbologyCode128, SymbologyQR:
		return false
	}
	return false
}

func symbologyOf(id string) (Symbology, bool) {
	switch id {
	case "d2":
		return SymbologyGS1DataMatrix, true
	case "d1":
		return SymbologyDataMatrix, true
	case "C1":
		return SymbologyGS1128, true
	case "C0":
		return SymbologyCode128, true
	case "Q3":
		return SymbologyGS1QR, true
	case "Q1":
		return SymbologyQR, true
	case "e0":
		return SymbologyGS1DataBar, true
	}
	return SymbologyNone, false
}

// Form is the textual form a scan arrived in.
type Form uint8

const (
	FormNMPA20        Form = iota + 1 // 20 digits, possibly printed with dash or spaces
	FormElementString                 // GS1 element string with FNC1/GS separators
	FormBracketed                     // GS1 human-readable (01)…(21)…
	FormDigitalLink                   // GS1 Digital Link URI
)

func (f Form) String() string {
	switch f {
	case FormNMPA20:
		return "nmpa20"
	case FormElementString:
		return "element-string"
	case FormBracketed:
		return "bracketed"
	case FormDigitalLink:
		return "digital-link"
	}
	return "unknown"
}

// Element is one GS1 element: an AI and its value.
type Element struct {
	AI    string // "01", "21", "7003"
	Value string
}

// maxElements bounds the element list of one scan.
const maxElements = 16

// Parsed is one scan, understood.
type Parsed struct {
	Code      Code      // the identity; see Code
	Scheme    Scheme    // nmpa20, gs1-sgtin or gs1-sscc
	Symbology Symbology // what the reader said, SymbologyNone if nothing
	Form      Form      // the textual form the scan arrived in
	elems     [maxElements]Element
	n         uint8
}

// Elements lists the GS1 elements in scanned order (nil for nmpa20).
func (p *Parsed) Elements() []Element { return p.elems[:p.n] }

// Get returns the value of AI ai, if the scan carried it.
func (p *Parsed) Get(ai string) (string, bool) {
	for i := 0; i < int(p.n); i++ {
		if p.elems[i].AI == ai {
			return p.elems[i].Value, true
		}
	}
	return "", false
}

// Batch is AI (10), the batch/lot number.
func (p *Parsed) Batch() (string, bool) { return p.Get("10") }

// Expiry is AI (17) as carried, YYMMDD (DD may be 00).
func (p *Parsed) Expiry() (string, bool) { return p.Get("17") }

// ProductionDate is AI (11) as carried, YYMMDD.
func (p *Parsed) ProductionDate() (string, bool) { return p.Get("11") }

// GTIN is AI (01) of an SGTIN, "" otherwise.
func (p *Parsed) GTIN() string { v, _ := p.Get("01"); return v }

// Serial is AI (21) of an SGTIN, "" otherwise.
func (p *Parsed) Serial() string { v, _ := p.Get("21"); return v }

// SSCC is AI (00), "" if the scan is not an SSCC.
func (p *Parsed) SSCC() string { v, _ := p.Get("00"); return v }

// ProductID is the 药品标识码 (first 7 digits) of an nmpa20 code, "" otherwise.
func (p *Parsed) ProductID() string {
	if p.Scheme == SchemeNMPA20 && len(p.Code) == 20 {
		return string(p.Code[:7])
	}
	return ""
}

// Normalized is the scan's canonical text: for GS1 the bracketed element
// string in the order scanned, for nmpa20 its 20 digits.
func (p *Parsed) Normalized() string {
	if p.Scheme == SchemeNMPA20 {
		return string(p.Code)
	}
	n := 0
	for _, e := range p.Elements() {
		n += len(e.AI) + 2 + len(e.Value)
	}
	var b strings.Builder
	b.Grow(n)
	for _, e := range p.Elements() {
		b.WriteByte('(')
		b.WriteString(e.AI)
		b.WriteByte(')')
		b.WriteString(e.Value)
	}
	return b.String()
}

// GS1Data is the element string to encode in a GS1 carrier, without the
// leading FNC1: fixed-length AIs first, then the variable-length ones, with
// a GS (0x1D) after each variable-length element that is not last. It is ""
// for nmpa20.
func (p *Parsed) GS1Data() string {
	if p.n == 0 {
		return ""
	}
	var b strings.Builder
	for _, e := range p.Elements() {
		if d := lookupAIExact(e.AI); d != nil && d.fixed {
			b.WriteString(e.AI)
			b.WriteString(e.Value)
		}
	}
	first := true
	for _, e := range p.Elements() {
		if d := lookupAIExact(e.AI); d == nil || d.fixed {
			continue
		}
		if !first {
			b.WriteByte(0x1D)
		}
		first = false
		b.WriteString(e.AI)
		b.WriteString(e.Value)
	}
	return b.String()
}

// DigitalLink renders the scan as a GS1 Digital Link URI on base (e.g.
// "https://id.gs1.org"): the primary key and serial in the path, other
// elements as query parameters. It is "" for nmpa20.
func (p *Parsed) DigitalLink(base string) string {
	var path, query strings.Builder
	switch p.Scheme {
	case SchemeGS1SGTIN:
		path.WriteString("/01/" + p.GTIN() + "/21/" + dlEscape(p.Serial()))
	case SchemeGS1SSCC:
		path.WriteString("/00/" + p.SSCC())
	default:
		return ""
	}
	for _, e := range p.Elements() {
		if e.AI == "01" || e.AI == "21" || e.AI == "00" {
			continue
		}
		if query.Len() == 0 {
			query.WriteByte('?')
		} else {
			query.WriteByte('&')
		}
		query.WriteString(e.AI + "=" + dlEscape(e.Value))
	}
	return strings.TrimRight(base, "/") + path.String() + query.String()
}

// dlEscape percent-encodes what a URI path segment or query value cannot
// hold literally.
func dlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func (p *Parsed) add(pos int, ai, value string) error {
	for i := 0; i < int(p.n); i++ {
		if p.elems[i].AI == ai {
			if p.elems[i].Value == value {
				return perr(pos, ai, "AI repeated")
			}
			return perr(pos, ai, "AI repeated with a different value")
		}
	}
	if int(p.n) == maxElements {
		return perr(pos, ai, "more than "+itoa(maxElements)+" elements")
	}
	p.elems[p.n] = Element{AI: ai, Value: value}
	p.n++
	return nil
}

// isSep reports a GS1 separator: GS (0x1D), or the raw Data Matrix FNC1
// codeword 0xE8 some readers pass through.
func isSep(c byte) bool { return c == 0x1D || c == 0xE8 }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// Parse understands one raw scan: with or without an AIM symbology
// identifier (]d2 ]d1 ]C1 ]C0 ]Q3 ]Q1 ]e0), a GS1 element string with GS or
// FNC1 separators, the bracketed form (01)…(21)…, a GS1 Digital Link URI on
// any host, or a 20-digit nmpa20 code (also printed with dash or spaces).
// Surrounding whitespace (CR/LF from a reader) is ignored. It never panics;
// every error is a *ParseError wrapping ErrInvalidCode.
//
// Without a symbology identifier, input starting with 8 is read as nmpa20
// and input starting with another digit as a GS1 element string. In the
// bracketed form a variable-length value ends where "(AI)" of a known AI
// begins, so a serial that itself holds such text is ambiguous there (the
// form is for people; scanners transmit element strings).
func Parse(raw string) (Parsed, error) {
	var p Parsed
	err := p.parse(raw)
	return p, err
}

func (p *Parsed) parse(raw string) error {
	lo, hi := 0, len(raw)
	for lo < hi && isSpace(raw[lo]) {
		lo++
	}
	for hi > lo && isSpace(raw[hi-1]) {
		hi--
	}
	if lo == hi {
		return perr(-1, "", "empty input")
	}
	s := raw[lo:hi]
	base := lo
	if s[0] == ']' {
		if len(s) < 3 {
			return perr(base, "", "truncated symbology identifier")
		}
		sym, ok := symbologyOf(s[1:3])
		if !ok {
			return perr(base, "", "unsupported symbology identifier "+strconvQuote(s[:3])+" (want ]d2 ]d1 ]C1 ]C0 ]Q3 ]Q1 ]e0)")
		}
		p.Symbology = sym
		s = s[3:]
		base += 3
		if s == "" {
			return perr(base, "", "no data after symbology identifier "+sym.String())
		}
	}
	switch {
	case p.Symbology.GS1():
		if s[0] == '(' {
			return p.parseBracketed(s, base)
		}
		if isDigitalLink(s) {
			return p.parseDigitalLink(s, base)
		}
		return p.parseElementString(s, base)
	case p.Symbology != SymbologyNone:
		if isDigitalLink(s) {
			return p.parseDigitalLink(s, base)
		}
		if s[0] >= '0' && s[0] <= '9' {
			return p.parseNMPA20(s, base)
		}
		return perr(base, "", "symbology "+p.Symbology.String()+" is not GS1; data is neither a 20-digit nmpa20 code nor a GS1 Digital Link URI")
	}
	switch {
	case s[0] == '(':
		return p.parseBracketed(s, base)
	case isSep(s[0]):
		return p.parseElementString(s, base)
	case s[0] == '8':
		return p.parseNMPA20(s, base)
	case isDigitalLink(s):
		return p.parseDigitalLink(s, base)
	case s[0] >= '0' && s[0] <= '9':
		return p.parseElementString(s, base)
	}
	return perr(base, "", "unrecognised input: starts with "+quoteByte(s[0])+"; want a GS1 element string, (AI) bracketed form, Digital Link URI or 20-digit nmpa20 code")
}

func strconvQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x20 && s[i] < 0x7F && s[i] != '"' {
			b.WriteByte(s[i])
		} else {
			b.WriteString("\\x")
			b.WriteByte("0123456789abcdef"[s[i]>>4])
			b.WriteByte("0123456789abcdef"[s[i]&15])
		}
	}
	b.WriteByte('"')
	return b.String()
}

// parseNMPA20 reads 20 digits starting with 8; dashes and single spaces
// between digits (as printed) are dropped.
func (p *Parsed) parseNMPA20(s string, base int) error {
	p.Form = FormNMPA20
	p.Scheme = SchemeNMPA20
	if len(s) == 20 && allDigits(s) {
		if s[0] != '8' {
			return perr(base, "", "nmpa20 code must start with 8, found "+quoteByte(s[0]))
		}
		p.Code = Code(s)
		return nil
	}
	var buf [20]byte
	n := 0
	prevSep := true // no separator first
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == 20 {
				return perr(base+i, "", "nmpa20 code has more than 20 digits")
			}
			buf[n] = c
			n++
			prevSep = false
		case c == '-' || c == ' ':
			if prevSep {
				return perr(base+i, "", "nmpa20 code: misplaced separator "+quoteByte(c))
			}
			prevSep = true
		default:
			return perr(base+i, "", "nmpa20 code: unexpected character "+quoteByte(c)+" (want digits, dash or space)")
		}
	}
	if n < 20 {
		return perr(-1, "", "nmpa20 code has "+itoa(n)+" digits, want 20")
	}
	if buf[0] != '8' {
		return perr(base, "", "nmpa20 code must start with 8, found "+quoteByte(buf[0]))
	}
	p.Code = Code(buf[:])
	return nil
}

// parseElementString reads AI+value pairs; a variable-length value ends
// at a separator or at the end.
func (p *Parsed) parseElementString(s string, base int) error {
	p.Form = FormElementString
	i := 0
	if isSep(s[0]) {
		i = 1 // leading FNC1
	}
	if i == len(s) {
		return perr(base, "", "no data after FNC1")
	}
	for i < len(s) {
		d := lookupAI(s[i:])
		if d == nil {
			return perr(base+i, "", "unknown or unsupported GS1 AI at "+strconvQuote(prefix(s[i:], 4)))
		}
		start := i + len(d.ai)
		var v string
		if d.fixed {
			end := start + d.max
			if end > len(s) {
				return perr(base+start, d.ai, d.title+" must be exactly "+itoa(d.max)+" characters, got "+itoa(len(s)-start))
			}
			v = s[start:end]
			i = end
		} else {
			end := start
			for end < len(s) && !isSep(s[end]) {
				end++
			}
			v = s[start:end]
			i = end
		}
		if msg, off := d.checkValue(v); msg != "" {
			pos := base + start
			if off >= 0 {
				pos += off
			}
			return perr(pos, d.ai, d.title+": "+msg)
		}
		if err := p.add(base+start-len(d.ai), d.ai, v); err != nil {
			return err
		}
		if i < len(s) && isSep(s[i]) {
			i++
			if i == len(s) {
				return perr(base+i-1, "", "trailing separator after the last element")
			}
		}
	}
	return p.identify()
}

func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// bracketAI reads "(nn…)" at s[i]; it returns the AI and the index after ')'.
func bracketAI(s string, i int) (*aiDef, int) {
	if i >= len(s) || s[i] != '(' {
		return nil, 0
	}
	j := i + 1
	for j < len(s) && j-i <= 5 && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j >= len(s) || s[j] != ')' || j-i-1 < 2 {
		return nil, 0
	}
	d := lookupAIExact(s[i+1 : j])
	if d == nil {
		return nil, 0
	}
	return d, j + 1
}

// parseBracketed reads (AI)value…; a variable-length value ends where the
// next "(AI)" of a known AI begins.
func (p *Parsed) parseBracketed(s string, base int) error {
	p.Form = FormBracketed
	i := 0
	for i < len(s) {
		d, start := bracketAI(s, i)
		if d == nil {
			j := strings.IndexByte(s[i:], ')')
			if s[i] == '(' && j > 0 && j <= 6 {
				return perr(base+i, s[i+1:i+j], "unknown or unsupported GS1 AI")
			}
			return perr(base+i, "", "expected (AI), found "+strconvQuote(prefix(s[i:], 6)))
		}
		var end int
		if d.fixed {
			end = start + d.max
			if end > len(s) {
				end = len(s)
			}
			if end < len(s) && s[end] != '(' {
				return perr(base+end, d.ai, d.title+" must be exactly "+itoa(d.max)+" characters; found more")
			}
		} else {
			end = start
			for end < len(s) {
				if s[end] == '(' {
					if nd, _ := bracketAI(s, end); nd != nil {
						break
					}
				}
				end++
			}
		}
		v := s[start:end]
		if msg, off := d.checkValue(v); msg != "" {
			pos := base + start
			if off >= 0 {
				pos += off
			}
			return perr(pos, d.ai, d.title+": "+msg)
		}
		if err := p.add(base+i, d.ai, v); err != nil {
			return err
		}
		i = end
	}
	return p.identify()
}

func isDigitalLink(s string) bool {
	return hasPrefixFold(s, "https://") || hasPrefixFold(s, "http://")
}

func hasPrefixFold(s, pre string) bool {
	if len(s) < len(pre) {
		return false
	}
	for i := 0; i < len(pre); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != pre[i] {
			return false
		}
	}
	return true
}

// parseDigitalLink reads https://host[/prefix]/01/{gtin}[/…]/21/{serial}?17=…&10=…
// (or /00/{sscc}). Query keys that are not digits (linkType, …) are ignored.
func (p *Parsed) parseDigitalLink(s string, base int) error {
	p.Form = FormDigitalLink
	i := strings.Index(s, "://") + 3
	slash := strings.IndexByte(s[i:], '/')
	if slash <= 0 {
		return perr(base+i, "", "Digital Link URI has no host or no path")
	}
	i += slash
	end := len(s)
	if h := strings.IndexByte(s[i:], '#'); h >= 0 {
		end = i + h
	}
	q := -1
	if k := strings.IndexByte(s[i:end], '?'); k >= 0 {
		q = i + k
	}
	pathEnd := end
	if q >= 0 {
		pathEnd = q
	}
	// Find the primary key segment "/01/" or "/00/".
	path := s[i:pathEnd]
	k := -1
	for j := 0; j+3 < len(path); j++ {
		if path[j] == '/' && path[j+1] == '0' && (path[j+2] == '1' || path[j+2] == '0') && path[j+3] == '/' {
			k = j
			break
		}
	}
	if k < 0 {
		return perr(base+i, "", "Digital Link path has no /01/{GTIN} or /00/{SSCC}")
	}
	j := i + k + 1
	for j < pathEnd {
		segEnd := j
		for segEnd < pathEnd && s[segEnd] != '/' {
			segEnd++
		}
		ai := s[j:segEnd]
		d := lookupAIExact(ai)
		if d == nil {
			return perr(base+j, ai, "unknown or unsupported GS1 AI in Digital Link path")
		}
		if segEnd >= pathEnd {
			return perr(base+j, ai, "Digital Link path ends without a value")
		}
		vs := segEnd + 1
		ve := vs
		for ve < pathEnd && s[ve] != '/' {
			ve++
		}
		if err := p.addDL(base+vs, d, s[vs:ve]); err != nil {
			return err
		}
		j = ve + 1
	}
	if q >= 0 {
		j = q + 1
		for j < end {
			pe := j
			for pe < end && s[pe] != '&' {
				pe++
			}
			pair := s[j:pe]
			if eq := strings.IndexByte(pair, '='); eq > 0 && allDigits(pair[:eq]) {
				d := lookupAIExact(pair[:eq])
				if d == nil {
					return perr(base+j, pair[:eq], "unknown or unsupported GS1 AI in Digital Link query")
				}
				if err := p.addDL(base+j+eq+1, d, pair[eq+1:]); err != nil {
					return err
				}
			} else if allDigits(pair) && pair != "" {
				return perr(base+j, pair, "Digital Link query AI without a value")
			}
			j = pe + 1
		}
	}
	return p.identify()
}

func (p *Parsed) addDL(pos int, d *aiDef, raw string) error {
	v, ok := percentDecode(raw)
	if !ok {
		return perr(pos, d.ai, d.title+": bad percent-encoding")
	}
	if d.kind == kindGTIN && (len(v) == 8 || len(v) == 12 || len(v) == 13) && allDigits(v) {
		v = "00000000000000"[:14-len(v)] + v // GTIN-8/12/13 in a Digital Link
	}
	if msg, off := d.checkValue(v); msg != "" {
		if off >= 0 && v == raw {
			pos += off
		}
		return perr(pos, d.ai, d.title+": "+msg)
	}
	return p.add(pos-len(d.ai)-1, d.ai, v)
}

func percentDecode(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		h, ok1 := unhex(s[i+1])
		l, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, h<<4|l)
		i += 2
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// identify derives the scheme and the identity Code from the elements.
func (p *Parsed) identify() error {
	gtin, has01 := p.Get("01")
	serial, has21 := p.Get("21")
	sscc, has00 := p.Get("00")
	switch {
	case has00 && (has01 || has21):
		return perr(-1, "00", "both an SSCC (00) and a GTIN/serial (01)/(21): which unit is it?")
	case has00:
		p.Scheme = SchemeGS1SSCC
		p.Code = Code("(00)" + sscc)
	case has01 && has21:
		p.Scheme = SchemeGS1SGTIN
		p.Code = Code("(01)" + gtin + "(21)" + serial)
	case has01:
		return perr(-1, "21", "GTIN (01) without a serial (21) is not a unit's trace code")
	case has21:
		return perr(-1, "01", "serial (21) without a GTIN (01)")
	default:
		return perr(-1, "", "no identity: want (01)+(21) or (00)")
	}
	return nil
}
