package tracecode

// GS1 Application Identifier table, character sets and check digits. Only
// the AIs a pharmaceutical packaging line meets are known; any other AI is
// an error rather than a guess, because its length would be a guess.

// aiKind says how an AI's value is checked.
type aiKind uint8

const (
	kindNumeric  aiKind = iota // digits only
	kindGTIN                   // 14 digits, mod-10 check digit
	kindSSCC                   // 18 digits, mod-10 check digit
	kindDate                   // YYMMDD, day 00 allowed (AI 11, 17)
	kindDateTime               // YYMMDDHHMM, day 00 not allowed (AI 7003)
	kindCSet82                 // GS1 AI encodable character set 82
)

// aiDef describes one Application Identifier.
type aiDef struct {
	ai    string // "01", "7003"
	fixed bool   // predefined length: no separator needed after it
	min   int    // value length bounds (min == max when fixed)
	max   int
	kind  aiKind
	title string // GS1 data title, for messages
}

var (
	ai00   = aiDef{"00", true, 18, 18, kindSSCC, "SSCC"}
	ai01   = aiDef{"01", true, 14, 14, kindGTIN, "GTIN"}
	ai02   = aiDef{"02", true, 14, 14, kindGTIN, "CONTENT"}
	ai10   = aiDef{"10", false, 1, 20, kindCSet82, "BATCH/LOT"}
	ai11   = aiDef{"11", true, 6, 6, kindDate, "PROD DATE"}
	ai17   = aiDef{"17", true, 6, 6, kindDate, "USE BY OR EXPIRY"}
	ai21   = aiDef{"21", false, 1, 20, kindCSet82, "SERIAL"}
	ai30   = aiDef{"30", false, 1, 8, kindNumeric, "VAR. COUNT"}
	ai37   = aiDef{"37", false, 1, 8, kindNumeric, "COUNT"}
	ai240  = aiDef{"240", false, 1, 30, kindCSet82, "ADDITIONAL ID"}
	ai241  = aiDef{"241", false, 1, 30, kindCSet82, "CUST. PART No."}
	ai400  = aiDef{"400", false, 1, 30, kindCSet82, "ORDER NUMBER"}
	ai7003 = aiDef{"7003", true, 10, 10, kindDateTime, "EXPIRY TIME"}
	ai710  = aiDef{"710", false, 1, 20, kindCSet82, "NHRN PZN"}
	ai711  = aiDef{"711", false, 1, 20, kindCSet82, "NHRN CIP"}
	ai712  = aiDef{"712", false, 1, 20, kindCSet82, "NHRN CN"}
	ai713  = aiDef{"713", false, 1, 20, kindCSet82, "NHRN DRN"}
	ai714  = aiDef{"714", false, 1, 20, kindCSet82, "NHRN AIM"}
	ai715  = aiDef{"715", false, 1, 20, kindCSet82, "NHRN NDC"}
)

// lookupAI finds the AI that s starts with. It returns nil when s does not
// start with a known AI. No allocation.
func lookupAI(s string) *aiDef {
	if len(s) < 2 {
		return nil
	}
	switch s[:2] {
	case "00":
		return &ai00
	case "01":
		return &ai01
	case "02":
		return &ai02
	case "10":
		return &ai10
	case "11":
		return &ai11
	case "17":
		return &ai17
	case "21":
		return &ai21
	case "30":
		return &ai30
	case "37":
		return &ai37
	}
	if len(s) < 3 {
		return nil
	}
	switch s[:3] {
	case "240":
		return &ai240
	case "241":
		return &ai241
	case "400":
		return &ai400
	case "710":
		return &ai710
	case "711":
		return &ai711
	case "712":
		return &ai712
	case "713":
		return &ai713
	case "714":
		return &ai714
	case "715":
		return &ai715
	}
	if len(s) >= 4 && s[:4] == "7003" {
		return &ai7003
	}
	return nil
}

// lookupAIExact finds an AI given exactly (as in "(17)" or a Digital Link key).
func lookupAIExact(ai string) *aiDef {
	d := lookupAI(ai)
	if d == nil || len(d.ai) != len(ai) {
		return nil
	}
	return d
}

// KnownAI reports whether ai (e.g. "17") is in the AI table, and whether its
// value has a predefined (fixed) length.
func KnownAI(ai string) (known, fixedLength bool) {
	d := lookupAIExact(ai)
	if d == nil {
		return false, false
	}
	return true, d.fixed
}

// cset82 marks the GS1 AI encodable character set 82.
var cset82 = func() (t [256]bool) {
	for _, c := range "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz" {
		t[c] = true
	}
	return t
}()

// InCSet82 reports whether c is in the GS1 AI encodable character set 82,
// the set allowed in serials (AI 21) and batches (AI 10).
func InCSet82(c byte) bool { return cset82[c] }

// CSet82 is the GS1 AI encodable character set 82 in code order.
const CSet82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

// GS1CheckDigit computes the GS1 mod-10 check digit over digits (the data
// without its check digit). ok is false if digits holds a non-digit.
func GS1CheckDigit(digits string) (d byte, ok bool) {
	sum := 0
	w := 3 // the rightmost data digit has weight 3
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		sum += int(c-'0') * w
		w = 4 - w
	}
	return byte('0' + (10-sum%10)%10), true
}

// ValidGS1CheckDigit reports whether s (digits, check digit last) has a
// correct GS1 mod-10 check digit.
func ValidGS1CheckDigit(s string) bool {
	if len(s) < 2 {
		return false
	}
	d, ok := GS1CheckDigit(s[:len(s)-1])
	return ok && d == s[len(s)-1]
}

// validDate checks YYMMDD; day 00 is allowed when allowDay00 (GS1: "only
// year and month known"). Years are taken in the GS1 century window around
// now; within it YY%4 == 0 is exactly a leap year.
func validDate(s string, allowDay00 bool) string {
	for i := 0; i < 6; i++ {
		if s[i] < '0' || s[i] > '9' {
			return "date must be 6 digits YYMMDD"
		}
	}
	yy := int(s[0]-'0')*10 + int(s[1]-'0')
	mm := int(s[2]-'0')*10 + int(s[3]-'0')
	dd := int(s[4]-'0')*10 + int(s[5]-'0')
	if mm < 1 || mm > 12 {
		return "month must be 01..12"
	}
	if dd == 0 {
		if allowDay00 {
			return ""
		}
		return "day 00 is not allowed here"
	}
	if dd > daysIn(yy, mm) {
		return "no such day in that month"
	}
	return ""
}

func daysIn(yy, mm int) int {
	switch mm {
	case 2:
		if yy%4 == 0 {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// checkValue validates one AI value; it returns "" or why it is wrong and
// the offset of the offending character within v (or -1).
func (d *aiDef) checkValue(v string) (string, int) {
	if len(v) < d.min || len(v) > d.max {
		if d.fixed {
			return "must be exactly " + itoa(d.min) + " characters, got " + itoa(len(v)), -1
		}
		return "length must be " + itoa(d.min) + ".." + itoa(d.max) + ", got " + itoa(len(v)), -1
	}
	switch d.kind {
	case kindCSet82:
		for i := 0; i < len(v); i++ {
			if !cset82[v[i]] {
				return "character " + quoteByte(v[i]) + " is not in the GS1 character set 82", i
			}
		}
		return "", -1
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return "must be digits only, found " + quoteByte(v[i]), i
		}
	}
	switch d.kind {
	case kindGTIN, kindSSCC:
		if !ValidGS1CheckDigit(v) {
			want, _ := GS1CheckDigit(v[:len(v)-1])
			return "check digit is " + string(v[len(v)-1]) + ", want " + string(want), len(v) - 1
		}
	case kindDate:
		if msg := validDate(v, true); msg != "" {
			return msg, -1
		}
	case kindDateTime:
		if msg := validDate(v, false); msg != "" {
			return msg, -1
		}
		hh := int(v[6]-'0')*10 + int(v[7]-'0')
		mi := int(v[8]-'0')*10 + int(v[9]-'0')
		if hh > 23 {
			return "hour must be 00..23", 6
		}
		if mi > 59 {
			return "minute must be 00..59", 8
		}
	}
	return "", -1
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

func quoteByte(c byte) string {
	switch {
	case c == 0x1D:
		return "GS (0x1D)"
	case c >= 0x20 && c < 0x7F:
		return "'" + string(rune(c)) + "'"
	}
	const hex = "0123456789ABCDEF"
	return "byte 0x" + string([]byte{hex[c>>4], hex[c&15]})
}
