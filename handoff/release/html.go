package release

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"
)

//go:embed record.html.tmpl
var recordHTML string

var htmlTmpl = template.Must(template.New("record").Funcs(template.FuncMap{
	"mark": func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	},
	"short":    shortHash,
	"when":     when,
	"meaning":  meaningZH,
	"sigstate": sigStateZH,
}).Parse(recordHTML))

// when shows an RFC 3339 time to the second, in UTC.
func when(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func shortHash(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func meaningZH(m Meaning) string {
	switch m {
	case Released:
		return "放行 released"
	case Rejected:
		return "不放行 rejected"
	}
	return string(m)
}

func sigStateZH(s SigState) string {
	switch s {
	case SigValid:
		return "有效 valid"
	case SigVoid:
		return "作废 void"
	case SigFinal:
		return "已生效 final"
	}
	return string(s)
}

// WriteHTML renders the record as one printable HTML page (A4, no scripts,
// no outside resources).
func WriteHTML(w io.Writer, rec *Record) error {
	if err := htmlTmpl.Execute(w, rec); err != nil {
		return fmt.Errorf("batch record %s: html: %w", rec.Header.Batch, err)
	}
	return nil
}
