// Package epcisschema validates EPCIS 2.0 documents against GS1's official
// schemas, embedded here: the JSON schema (EPCIS-JSON-Schema.json, draft-07)
// and the XML schemas (schema/xsd, EPCglobal-epcis-2_0.xsd and the
// StandardBusinessDocumentHeader schemas it imports).
//
// The files are copied unchanged from the public GS1 EPCIS repository
// (github.com/gs1/EPCIS, commit 2b888be) by way of ../shared/epcis; they are
// GS1's, under the disclaimer of that repository's LICENSE and the copyright
// notice each XSD carries (see schema/README.md). They are embedded for
// validation only and are not changed.
//
// JSON is validated in-process (github.com/santhosh-tekuri/jsonschema/v6,
// formats asserted). Go has no XSD validator, so XML is validated by
// xmllint (Debian package libxml2-utils) run over a temporary copy of the
// XSDs; ValidateXML says so plainly when xmllint is missing.
//
// Anything that checks an EPCIS document may import it: the exporters'
// tests, stand-in receivers, the outbox.
package epcisschema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/dlclark/regexp2/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed schema/EPCIS-JSON-Schema.json schema/xsd/*.xsd
var files embed.FS

// SchemaID is the $id of the EPCIS 2.0 JSON schema.
const SchemaID = "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"

// JSONSchema returns the embedded EPCIS 2.0 JSON schema, unchanged.
func JSONSchema() []byte {
	b, err := files.ReadFile("schema/EPCIS-JSON-Schema.json")
	if err != nil {
		panic("epcisschema: embedded JSON schema missing: " + err.Error()) // a build defect, not input
	}
	return b
}

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		return nil, fmt.Errorf("epcis JSON schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseRegexpEngine(ecmaRegexp)
	if err := c.AddResource(SchemaID, doc); err != nil {
		return nil, fmt.Errorf("epcis JSON schema: %w", err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		return nil, fmt.Errorf("epcis JSON schema: %w", err)
	}
	return s, nil
})

// ecmaRegexp compiles the schema's patterns with ECMAScript semantics, as
// JSON Schema asks: GS1's schema uses negative look-ahead ("^(?!(urn:epcglobal:cbv|…))"),
// which Go's regexp (RE2) does not have.
func ecmaRegexp(s string) (jsonschema.Regexp, error) {
	re, err := regexp2.Compile(s, regexp2.ECMAScript)
	if err != nil {
		return nil, err
	}
	return (*ecmaRE)(re), nil
}

type ecmaRE regexp2.Regexp

func (re *ecmaRE) MatchString(s string) bool {
	ok, err := (*regexp2.Regexp)(re).MatchString(s)
	return err == nil && ok
}

func (re *ecmaRE) String() string { return (*regexp2.Regexp)(re).String() }

// Problem is one place where a document fails its schema.
type Problem struct {
	Path    string // JSON pointer ("/epcisBody/eventList/3/epcList") or XML element path
	Line    int    // XML only: the line xmllint reported (0 if none)
	Message string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s (line %d): %s", p.Path, p.Line, p.Message)
	}
	return p.Path + ": " + p.Message
}

// InvalidError is a document that does not validate: every problem found,
// each naming the path in the document that fails.
type InvalidError struct {
	Format   string // "EPCIS JSON" or "EPCIS XML"
	Problems []Problem
}

// ErrInvalid matches every *InvalidError with errors.Is.
var ErrInvalid = errors.New("document does not validate")

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d schema problem(s)", e.Format, len(e.Problems))
	for i, p := range e.Problems {
		if i == 20 {
			fmt.Fprintf(&b, "; … %d more", len(e.Problems)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// ValidateJSONReader is ValidateJSON for a document read from r (the
// signature a receiver's hook takes). The document is decoded whole: a
// large one (a 1,000,000-unit batch is ~143 MB of JSON) needs several
// times its size in memory.
func ValidateJSONReader(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("EPCIS JSON: reading: %w", err)
	}
	return ValidateJSON(b)
}

// ValidateJSON checks doc, an EPCIS 2.0 JSON(-LD) document or event, against
// the official JSON schema. A document that is not JSON, or not valid, gets
// an error naming the path (a JSON pointer) of each failing value; an
// *InvalidError for schema problems.
func ValidateJSON(doc []byte) error {
	sch, err := compiled()
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var inst any
	if err := d.Decode(&inst); err != nil {
		return fmt.Errorf("EPCIS JSON: not JSON: %w", err)
	}
	if d.More() {
		return errors.New("EPCIS JSON: not one JSON value: more data after the first")
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("EPCIS JSON: %w", err)
	}
	p := message.NewPrinter(language.English)
	seen := map[string]bool{}
	var probs []Problem
	var leaves func(e *jsonschema.ValidationError)
	leaves = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				leaves(c)
			}
			return
		}
		pr := Problem{Path: "/" + strings.Join(e.InstanceLocation, "/"), Message: e.ErrorKind.LocalizedString(p)}
		if k := pr.String(); !seen[k] {
			seen[k] = true
			probs = append(probs, pr)
		}
	}
	leaves(ve)
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Path < probs[j].Path })
	return &InvalidError{Format: "EPCIS JSON", Problems: probs}
}
