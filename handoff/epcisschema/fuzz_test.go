package epcisschema

import (
	"bytes"
	"os"
	"testing"
)

// FuzzValidateJSON: any body a receiver gets is refused or accepted with
// an error, never a panic.
func FuzzValidateJSON(f *testing.F) {
	for _, n := range []string{"ObjectEvent.json", "AggregationEvent.json"} {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"EPCISDocument"}`))
	f.Add([]byte(`[1,2`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_ = ValidateJSON(doc)
	})
}

// FuzzLocate: xmllint's output and the document are outside input to the
// problem locator; it never panics and keeps every problem.
func FuzzLocate(f *testing.F) {
	doc, err := os.ReadFile("testdata/ObjectEvent.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc, "/d/document.xml:11: element actionx: Schemas validity error : Element 'actionx': not expected.\n")
	f.Add([]byte("<a><b></a>"), "/d/document.xml:1: parser error : mismatch\n/d/document.xml:x: junk\n")
	f.Fuzz(func(t *testing.T, doc []byte, lint string) {
		probs := parseLint(lint, "/d/document.xml")
		n := len(probs)
		locate(bytes.NewReader(doc), probs)
		if len(probs) != n || n > maxProblems {
			t.Fatalf("problems %d → %d", n, len(probs))
		}
	})
}
