package tracecode

import "strings"

// Checks of the product master data codes whose formats are published.

// checkGTIN14 checks a GTIN-14: 14 digits with a GS1 mod-10 check digit.
func checkGTIN14(s string) string {
	if len(s) != 14 || !allDigits(s) {
		return "a GTIN-14 is 14 digits"
	}
	if !ValidGS1CheckDigit(s) {
		d, _ := GS1CheckDigit(s[:13])
		return "check digit is " + s[13:] + ", want " + string(d)
	}
	return ""
}

// checkEAN13 checks a Chinese 69 EAN-13 商品条码.
func checkEAN13(s string) string {
	if len(s) != 13 || !allDigits(s) {
		return "an EAN-13 is 13 digits"
	}
	if s[0] != '6' || s[1] != '9' {
		return "a Chinese 商品条码 starts with 69 (690..699)"
	}
	if !ValidGS1CheckDigit(s) {
		d, _ := GS1CheckDigit(s[:12])
		return "check digit is " + s[12:] + ", want " + string(d)
	}
	return ""
}

// StandardCodeCheckDigit computes the check digit of a 国家药品编码本位码
// over its first 13 digits: GB 18937 / GB/T 17710 (ISO 7064 MOD 11,10).
func StandardCodeCheckDigit(digits13 string) (byte, bool) {
	p := 10
	for i := 0; i < len(digits13); i++ {
		c := digits13[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		s := (p + int(c-'0')) % 10
		if s == 0 {
			s = 10
		}
		p = (s * 2) % 11
	}
	return byte('0' + (11-p)%10), true
}

// checkStandardCode checks a 本位码: 86 (China) 9 (drug) + 10 digits + check.
func checkStandardCode(s string) string {
	if len(s) != 14 || !allDigits(s) {
		return "a 本位码 is 14 digits"
	}
	if !strings.HasPrefix(s, "869") {
		return "a 本位码 starts with 86 (country) 9 (drug)"
	}
	if d, _ := StandardCodeCheckDigit(s[:13]); d != s[13] {
		return "check digit is " + s[13:] + ", want " + string(d)
	}
	return ""
}

// usccChars are the characters of a 统一社会信用代码 (GB 32100), by value.
const usccChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// USCCCheckChar computes the check character of a 统一社会信用代码 over
// its first 17 characters (GB 32100-2015).
func USCCCheckChar(s17 string) (byte, bool) {
	weights := [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}
	if len(s17) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(usccChars, s17[i])
		if v < 0 {
			return 0, false
		}
		sum += v * weights[i]
	}
	return usccChars[(31-sum%31)%31], true
}

func checkUSCC(s string) string {
	if len(s) != 18 {
		return "a 统一社会信用代码 is 18 characters"
	}
	d, ok := USCCCheckChar(s[:17])
	if !ok {
		return "only digits and the letters " + usccChars[10:] + " are allowed"
	}
	if d != s[17] {
		return "check character is " + s[17:] + ", want " + string(d)
	}
	return ""
}

// checkApprovalNumber checks a 批准文号: 国药准字 + H/Z/S/J/B/F + 8 digits.
func checkApprovalNumber(s string) string {
	const pre = "国药准字"
	if !strings.HasPrefix(s, pre) {
		return "a 批准文号 starts with 国药准字"
	}
	r := s[len(pre):]
	if len(r) != 9 || strings.IndexByte("HZSJBF", r[0]) < 0 || !allDigits(r[1:]) {
		return "want 国药准字 + one of H Z S J B F + 8 digits"
	}
	return ""
}

func upperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func printableNoSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7F {
			return false
		}
	}
	return s != ""
}
