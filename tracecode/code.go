package tracecode

import (
	"fmt"
	"strings"
)

// Code is the identity of one packaging unit's traceability code in canonical
// form. It is what the ledger keys on and what two scans of the same unit
// agree on, whatever the scanner added around it:
//
//   - nmpa20: the 20 digits, e.g. "80217629000000001003"
//   - GS1 SGTIN: "(01)" GTIN-14 "(21)" serial, e.g. "(01)06901234567892(21)A7xK2p"
//   - GS1 SSCC: "(00)" 18 digits, e.g. "(00)069012345678901234"
//
// Data that a code carries but that is not its identity (batch, expiry,
// production date) is not part of Code; see Parsed.
type Code string

func (c Code) String() string { return string(c) }

// Scheme is the family of a filed rule.
type Scheme string

const (
	SchemeNMPA20   Scheme = "nmpa20"    // 20-digit platform codes, imported, never generated
	SchemeGS1SGTIN Scheme = "gs1-sgtin" // AI (01) + AI (21), generated here
	SchemeGS1SSCC  Scheme = "gs1-sscc"  // AI (00), generated here
)

func (s Scheme) String() string { return string(s) }

// Validate reports whether s is a known scheme.
func (s Scheme) Validate() error {
	switch s {
	case SchemeNMPA20, SchemeGS1SGTIN, SchemeGS1SSCC:
		return nil
	}
	return fmt.Errorf("unknown code scheme %q (want nmpa20, gs1-sgtin or gs1-sscc)", string(s))
}

// SchemeOf tells the scheme of a canonical code from its form alone.
func SchemeOf(c Code) (Scheme, bool) {
	s := string(c)
	switch {
	case strings.HasPrefix(s, "(01)") && strings.Contains(s, "(21)"):
		return SchemeGS1SGTIN, true
	case strings.HasPrefix(s, "(00)"):
		return SchemeGS1SSCC, true
	case len(s) == 20 && s[0] == '8' && allDigits(s):
		return SchemeNMPA20, true
	}
	return "", false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Level is a packaging level: 1 is the smallest sales unit, 2 the next
// (box or bundle), and so on up to the pallet. Levels never skip.
type Level uint8

// MaxLevel is the highest level the module handles.
const MaxLevel Level = 8

func (l Level) String() string { return fmt.Sprintf("L%d", uint8(l)) }

// Validate reports whether l is within 1..MaxLevel.
func (l Level) Validate() error {
	if l < 1 || l > MaxLevel {
		return fmt.Errorf("packaging level %d out of range 1..%d", uint8(l), uint8(MaxLevel))
	}
	return nil
}
