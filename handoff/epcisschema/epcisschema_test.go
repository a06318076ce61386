package epcisschema

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateJSON(t *testing.T) {
	obj := string(read(t, "ObjectEvent.json"))
	agg := string(read(t, "AggregationEvent.json"))
	tests := []struct {
		name, doc string
		wantPath  string // "" = valid
	}{
		{"GS1 ObjectEvent", obj, ""},
		{"GS1 AggregationEvent", agg, ""},
		{"bad action", strings.Replace(obj, `"action": "OBSERVE"`, `"action": "WATCH"`, 1), "/action"},
		{"epc not a URI", strings.Replace(obj, `"urn:epc:id:sgtin:0614141.107346.2018"`, `"not a uri"`, 1), "/epcList/1"},
		{"no eventTime", strings.Replace(obj, `"eventTime": "2005-04-03T20:33:31.116000-06:00",`, ``, 1), "/"},
		{"bad time", strings.Replace(obj, `"2005-04-03T20:33:31.116000-06:00"`, `"yesterday"`, 1), "/eventTime"},
		{"document with a bad event", `{"@context":"https://ref.gs1.org/standards/epcis/epcis-context.jsonld","type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2026-12-01T04:00:00Z","epcisBody":{"eventList":[` + strings.Replace(obj, `"action": "OBSERVE"`, `"action": 7`, 1) + `]}}`, "/epcisBody/eventList/0/action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateJSON([]byte(tt.doc))
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an *InvalidError", err)
			}
			for _, p := range ie.Problems {
				if p.Path == tt.wantPath {
					return
				}
			}
			t.Fatalf("no problem at %s in %v", tt.wantPath, err)
		})
	}
}

func TestValidateJSONNotJSON(t *testing.T) {
	for _, doc := range []string{"", "{", "<xml/>", `{"type":"ObjectEvent"} {}`} {
		err := ValidateJSON([]byte(doc))
		if err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "EPCIS JSON") {
			t.Errorf("%q: got %v, want a not-JSON error", doc, err)
		}
	}
}

func TestValidateXML(t *testing.T) {
	ctx := context.Background()
	good := string(read(t, "ObjectEvent.xml"))
	tests := []struct {
		name, doc string
		wantPath  string
		wantLine  int
	}{
		{"valid", good, "", 0},
		{"unknown element", strings.NewReplacer("<action>", "<actionx>", "</action>", "</actionx>").Replace(good),
			"/EPCISDocument/EPCISBody/EventList/ObjectEvent/actionx", 11},
		{"bad action value", strings.Replace(good, "<action>ADD", "<action>PUT", 1),
			"/EPCISDocument/EPCISBody/EventList/ObjectEvent/action", 11},
		{"not well-formed", strings.Replace(good, "</epcList>", "", 1), "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateXML(ctx, []byte(tt.doc))
			if tt.wantLine == 0 {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an *InvalidError", err)
			}
			if tt.wantLine < 0 {
				return
			}
			for _, p := range ie.Problems {
				if p.Path == tt.wantPath && p.Line == tt.wantLine {
					return
				}
			}
			t.Fatalf("no problem at %s line %d in %v", tt.wantPath, tt.wantLine, err)
		})
	}
}

func TestValidateXMLFile(t *testing.T) {
	ctx := context.Background()
	if err := ValidateXMLFile(ctx, "testdata/ObjectEvent.xml"); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(read(t, "ObjectEvent.xml")), "<action>ADD", "<action>PUT", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	var ie *InvalidError
	if err := ValidateXMLFile(ctx, bad); !errors.As(err, &ie) || len(ie.Problems) != 1 ||
		ie.Problems[0].Path != "/EPCISDocument/EPCISBody/EventList/ObjectEvent/action" || ie.Problems[0].Line != 11 {
		t.Fatalf("got %v, want the action element named", err)
	}
}

func TestNoXMLLint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if err := ValidateXML(context.Background(), read(t, "ObjectEvent.xml")); !errors.Is(err, ErrNoXMLLint) {
		t.Fatalf("got %v, want ErrNoXMLLint", err)
	}
}

func TestValidateJSONReader(t *testing.T) {
	if err := ValidateJSONReader(bytes.NewReader(read(t, "ObjectEvent.json"))); err != nil {
		t.Fatal(err)
	}
	if err := ValidateJSONReader(strings.NewReader(`{"type":"ObjectEvent"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
}
