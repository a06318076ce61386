package devsim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParsedLabel is one ^XA…^XZ format as the simulated label printer
// understood it.
type ParsedLabel struct {
	// Barcodes are the barcode fields in order.
	Barcodes []Barcode
	// Texts are the human-readable text fields (^A / plain ^FD) in order.
	Texts []string
}

// Barcode is one barcode field.
type Barcode struct {
	// Symbology is "code128" (^BC) or "datamatrix" (^BX).
	Symbology string
	// GS1 is true when the data starts with FNC1.
	GS1 bool
	// Data is the decoded data: escapes resolved, the leading FNC1 dropped,
	// later FNC1s as GS (0x1D).
	Data string
}

// Code is the label's code in the project's canonical form: for GS1 data
// starting with AI (00) "(00)"+18 digits, with AI (01)+(21)
// "(01)<14>(21)<serial>", otherwise the data as is. "" if the label has no
// barcode.
func (l ParsedLabel) Code() string {
	if len(l.Barcodes) == 0 {
		return ""
	}
	b := l.Barcodes[0]
	if !b.GS1 {
		return b.Data
	}
	d := b.Data
	switch {
	case strings.HasPrefix(d, "00") && len(d) >= 20:
		return "(00)" + d[2:20]
	case strings.HasPrefix(d, "01") && len(d) >= 16:
		rest := d[16:]
		if strings.HasPrefix(rest, "21") {
			serial := rest[2:]
			if i := strings.IndexByte(serial, 0x1D); i >= 0 {
				serial = serial[:i]
			}
			return "(01)" + d[2:16] + "(21)" + serial
		}
		return "(01)" + d[2:16]
	}
	return d
}

// maxFormat bounds one ^XA…^XZ format (bytes).
const maxFormat = 64 << 10

var errIncomplete = errors.New("incomplete")

// ParseFormat parses one ZPL format from "^XA" to "^XZ" (both included) in
// the subset the project's label driver writes: ^FO, ^A…, ^FB, ^BY, ^BC,
// ^BX, ^FH, ^FD, ^FS, ^CI, ^PQ, ^LH, ^LL, ^PW, ^FX (comments). Unknown
// commands are skipped. It never panics on any input.
func ParseFormat(s string) (ParsedLabel, error) {
	var lbl ParsedLabel
	if len(s) > maxFormat {
		return lbl, fmt.Errorf("zpl: format of %d bytes exceeds %d", len(s), maxFormat)
	}
	if !strings.HasPrefix(s, "^XA") {
		return lbl, errors.New("zpl: format does not start with ^XA")
	}
	if !strings.HasSuffix(s, "^XZ") {
		return lbl, errors.New("zpl: format does not end with ^XZ")
	}
	body := s[3 : len(s)-3]
	var (
		field    string // "" text, "BC", "BX"
		escape   byte   // ^BX escape char
		hex      byte   // ^FH indicator, 0 = off
		inField  bool
		haveData bool
		data     string
	)
	reset := func() { field, escape, hex, inField, haveData, data = "", 0, 0, false, false, "" }
	finish := func() error {
		if !haveData {
			reset()
			return nil
		}
		raw := data
		if hex != 0 {
			var err error
			raw, err = unhex(raw, hex)
			if err != nil {
				return err
			}
		}
		switch field {
		case "BC":
			b, err := decodeCode128(raw)
			if err != nil {
				return err
			}
			lbl.Barcodes = append(lbl.Barcodes, b)
		case "BX":
			b, err := decodeDataMatrix(raw, escape)
			if err != nil {
				return err
			}
			lbl.Barcodes = append(lbl.Barcodes, b)
		default:
			lbl.Texts = append(lbl.Texts, raw)
		}
		reset()
		return nil
	}
	i := 0
	for i < len(body) {
		c := body[i]
		if c != '^' && c != '~' {
			i++ // whitespace or stray bytes between commands
			continue
		}
		if i+2 > len(body) {
			return lbl, fmt.Errorf("zpl: truncated command at byte %d", i+3)
		}
		var cmd string
		switch {
		case body[i+1] == 'A': // ^A<font><orientation>,h,w: the font letter follows directly
			cmd = "A"
		case i+3 > len(body):
			return lbl, fmt.Errorf("zpl: truncated command at byte %d", i+3)
		default:
			cmd = strings.ToUpper(body[i+1 : i+3])
		}
		// Parameters run to the next ^ or ~ (^FD data too: ZPL has no quoting).
		j := i + 3
		if cmd == "A" {
			j = i + 2
		}
		end := j
		for end < len(body) && body[end] != '^' && body[end] != '~' {
			end++
		}
		params := body[j:end]
		i = end
		switch cmd {
		case "FO", "FT":
			inField = true
		case "BC":
			field = "BC"
		case "BX":
			field = "BX"
			escape = '_'
			ps := strings.Split(params, ",")
			if len(ps) >= 7 && ps[6] != "" {
				escape = ps[6][0]
			}
		case "FH":
			hex = '_'
			if params != "" {
				hex = params[0]
			}
		case "FD":
			data += params
			haveData = true
		case "FS":
			if err := finish(); err != nil {
				return lbl, err
			}
		case "FX":
			// comment
		default:
			// ^A, ^FB, ^BY, ^CI, ^PQ, ^LH, ^LL, ^PW, ^CF, ... : layout only
		}
	}
	if inField && haveData {
		return lbl, errors.New("zpl: field data without ^FS")
	}
	return lbl, nil
}

// unhex resolves ^FH escapes: the indicator followed by two hex digits.
func unhex(s string, ind byte) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != ind {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("zpl: ^FH escape %q truncated", s[i:])
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("zpl: ^FH escape %q is not two hex digits", s[i:i+3])
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// decodeCode128 resolves ZPL Code 128 invocation codes: >9 >: >; start
// codes (dropped), >8 FNC1, >< a literal '>'.
func decodeCode128(s string) (Barcode, error) {
	b := Barcode{Symbology: "code128"}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '>' {
			out.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return b, errors.New("zpl: ^BC data ends in a lone '>'")
		}
		i++
		switch s[i] {
		case '9', ':', ';', '5', '6', '7':
			// start / code set changes
		case '8':
			if out.Len() == 0 {
				b.GS1 = true
			} else {
				out.WriteByte(0x1D)
			}
		case '<':
			out.WriteByte('>')
		case '0':
			out.WriteByte('>')
		default:
			return b, fmt.Errorf("zpl: ^BC invocation code >%c not supported", s[i])
		}
	}
	b.Data = out.String()
	if b.Data == "" {
		return b, errors.New("zpl: ^BC field has no data")
	}
	return b, nil
}

// decodeDataMatrix resolves quality-200 escapes: <esc>1 FNC1, <esc><esc>
// the escape char itself, <esc>dNNN a byte.
func decodeDataMatrix(s string, esc byte) (Barcode, error) {
	b := Barcode{Symbology: "datamatrix"}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != esc {
			out.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return b, fmt.Errorf("zpl: ^BX data ends in a lone escape %q", esc)
		}
		i++
		switch {
		case s[i] == esc:
			out.WriteByte(esc)
		case s[i] == '1':
			if out.Len() == 0 {
				b.GS1 = true
			} else {
				out.WriteByte(0x1D)
			}
		case s[i] == 'd' && i+3 < len(s):
			v, err := strconv.ParseUint(s[i+1:i+4], 10, 8)
			if err != nil {
				return b, fmt.Errorf("zpl: ^BX escape %cd%s is not a decimal byte", esc, s[i+1:i+4])
			}
			out.WriteByte(byte(v))
			i += 3
		default:
			return b, fmt.Errorf("zpl: ^BX escape %c%c not supported", esc, s[i])
		}
	}
	b.Data = out.String()
	if b.Data == "" {
		return b, errors.New("zpl: ^BX field has no data")
	}
	return b, nil
}
