package export

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// Relation XML flags (the Code element's flag attribute).
const (
	FlagNormal  = 0 // a unit, or a full parent
	FlagPartial = 1 // a parent short of its ratio (零箱)
	FlagMixed   = 2 // a parent holding codes of other batches (拼箱)
)

// writeMSFX writes the relation XML: every top-level code (and any loose
// code below the top), each followed by its subtree depth first, so a
// parent always comes before its children.
func (x *exporter) writeMSFX(ctx context.Context, w *bufio.Writer) error {
	b := make([]byte, 0, 4096)
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Document Version="3.0">`+"\n<Events>\n"+`<Event Name="RelationCreate">`+"\n"...)
	b = append(b, "<Relation"...)
	b = attr(b, "productCode", x.productCode())
	b = attr(b, "subTypeNo", x.p.StandardCode)
	b = attr(b, "cascade", strconv.Itoa(len(x.spec.Levels)))
	b = attr(b, "packageSpec", x.packageSpec())
	b = attr(b, "comment", strings.TrimSpace(x.p.GenericName+" "+x.p.PackageSpec))
	b = append(b, ">\n<Batch"...)
	o := x.spec.Order
	b = attr(b, "batchNo", firstOf(o.BatchNumber, x.batch))
	b = attr(b, "madeDate", o.ProductionDate)
	b = attr(b, "validateDate", o.Expiry)
	b = attr(b, "workshop", o.Workshop)
	b = attr(b, "lineName", x.spec.Line)
	b = attr(b, "lineManager", o.Manager)
	b = append(b, ">\n"...)
	if _, err := w.Write(b); err != nil {
		return err
	}
	for l := x.top; l >= 1; l-- {
		if x.count(l, aggregation.StateCommissioned) == 0 {
			continue
		}
		err := x.l.Codes(ctx, x.batch, l, aggregation.StateCommissioned, func(root tracecode.Code) error {
			return x.l.Tree(ctx, root, func(n aggregation.Node) error {
				f := FlagNormal
				// A lookup only where the summary says a parent of that
				// level is partial or mixed.
				if n.Level > 1 && x.level(n.Level).PartialParents+x.level(n.Level).MixedParents > 0 {
					ci, err := x.l.Lookup(ctx, n.Code)
					if err != nil {
						return err
					}
					switch {
					case ci.Mixed:
						f = FlagMixed
					case ci.Partial:
						f = FlagPartial
					}
				}
				return x.writeCode(w, &b, n.Code, n.Parent, n.Level, f)
			})
		})
		if err != nil {
			return err
		}
	}
	// Codes of this batch packed under another batch's parent (拼箱).
	err := x.foreignTrees(ctx, func(l tracecode.Level, c, parent tracecode.Code) error {
		return x.writeCode(w, &b, c, parent, l, FlagNormal)
	})
	if err != nil {
		return err
	}
	_, err = w.WriteString("</Batch>\n</Relation>\n</Event>\n</Events>\n</Document>\n")
	return err
}

// writeCode writes one Code element.
func (x *exporter) writeCode(w *bufio.Writer, buf *[]byte, code, parent tracecode.Code, l tracecode.Level, flag int) error {
	b := (*buf)[:0]
	b = append(b, "<Code"...)
	b = attr(b, "curCode", string(code))
	b = attr(b, "packLayer", strconv.Itoa(int(l)))
	b = attr(b, "parentCode", string(parent))
	b = attr(b, "flag", strconv.Itoa(flag))
	b = append(b, "/>\n"...)
	*buf = b
	if l >= 1 && int(l) <= len(x.st.Codes) {
		x.st.Codes[l-1]++
	}
	_, err := w.Write(b)
	return err
}

// productCode is the product's code at the platform: level 1's 药品标识码
// for nmpa20, else its GTIN.
func (x *exporter) productCode() string {
	ls, _ := x.p.Level(1)
	if ls.ProductID != "" {
		return ls.ProductID
	}
	return ls.GTIN
}

// packageSpec is the pack ratio in level-1 units per level, level 1 first
// (1:10:200:8000).
func (x *exporter) packageSpec() string {
	var b strings.Builder
	n := 1
	for i, ls := range x.spec.Levels {
		if i > 0 {
			n *= ls.Ratio
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// attr appends ` name="value"` with value escaped for an XML attribute.
func attr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value)
	return append(b, '"')
}

// appendEscaped appends s escaped for XML text and attributes.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\'':
			esc = "&apos;"
		case '\t':
			esc = "&#9;"
		case '\n':
			esc = "&#10;"
		case '\r':
			esc = "&#13;"
		default:
			if s[i] < 0x20 {
				esc = "\uFFFD" // not representable in XML 1.0
			} else {
				continue
			}
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// ZipBase64 packages a document as the platform's upload takes it: one zip
// entry named name holding what write writes, the zip base64-encoded
// (standard alphabet, padded) onto dst. Streamed: nothing is held whole.
func ZipBase64(dst io.Writer, name string, write func(io.Writer) error) error {
	enc := base64.NewEncoder(base64.StdEncoding, dst)
	zw := zip.NewWriter(enc)
	f, err := zw.Create(name)
	if err != nil {
		return fmt.Errorf("upload zip: %w", err)
	}
	if err := write(f); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("upload zip: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("upload base64: %w", err)
	}
	return nil
}

// Upload writes batch's relation XML packaged for the platform's upload
// (ZipBase64, entry "<batch>.xml").
func Upload(ctx context.Context, dst io.Writer, l Ledger, batch string, o Options) (Stats, error) {
	var st Stats
	err := ZipBase64(dst, uploadName(batch), func(w io.Writer) error {
		var err error
		st, err = Write(ctx, w, l, batch, FormatMSFX, o)
		return err
	})
	return st, err
}

// uploadName is a file name for the batch's XML: characters outside
// [A-Za-z0-9._-] become '_'.
func uploadName(batch string) string {
	b := []byte(batch)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return "relation-" + string(b) + ".xml"
}
