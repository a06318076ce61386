package receiver

import (
	"strings"
	"testing"
)

const goodJSON = `{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2026-12-01T00:00:00Z",
"epcisBody":{"eventList":[
 {"type":"ObjectEvent","eventID":"ni:///1","eventTime":"2026-12-01T00:00:00Z","eventTimeZoneOffset":"+08:00","action":"ADD",
  "epcList":["https://id.example/nmpa/80000010000000000001","https://id.example/nmpa/80000010000000000002"],
  "ilmd":{"cbvmda:lotNumber":"B1"}},
 {"type":"AggregationEvent","eventID":"ni:///2","eventTime":"2026-12-01T00:00:00Z","eventTimeZoneOffset":"+08:00","action":"ADD",
  "parentID":"urn:x:80000020000000000001","childEPCs":["https://id.example/nmpa/80000010000000000001"]}]}}`

const goodXML = `<?xml version="1.0"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" creationDate="2026-12-01T00:00:00Z">
<EPCISBody><EventList>
<ObjectEvent><eventTime>2026-12-01T00:00:00Z</eventTime><eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
<epcList><epc>urn:x:80000010000000000001</epc></epcList><action>ADD</action>
<ilmd><cbvmda:lotNumber xmlns:cbvmda="urn:epcglobal:cbv:mda">B1</cbvmda:lotNumber></ilmd></ObjectEvent>
<AggregationEvent><eventTime>2026-12-01T00:00:00Z</eventTime><parentID>urn:x:80000020000000000001</parentID>
<childEPCs><epc>urn:x:80000010000000000001</epc></childEPCs><action>ADD</action></AggregationEvent>
</EventList></EPCISBody></epcis:EPCISDocument>`

const goodRelation = `<?xml version="1.0" encoding="UTF-8"?>
<Document License="x" Version="1.0"><Events><Event Name="RelationCreate" MainAction="InsertRelation">
<Relation productCode="P1" subTypeNo="1" cascade="2" packageSpec="1:2">
<Batch batchNo="B1" madeDate="2026-12-01" validateDate="2028-11-30" workshop="W" lineName="L1" lineManager="M">
<Code curCode="80000020000000000001" packLayer="2" parentCode="" flag="0"/>
<Code curCode="80000010000000000001" packLayer="1" parentCode="80000020000000000001" flag="0"/>
<Code curCode="80000010000000000002" packLayer="1" parentCode="80000020000000000001" flag="0"/>
</Batch></Relation></Event></Events></Document>`

func TestChecks(t *testing.T) {
	type checker func([]byte) (Report, idSet, error)
	tests := []struct {
		name     string
		check    checker
		doc      string
		err      string // a read error containing this
		problem  string // else: a problem containing this ("" = none)
		batch    string
		codes    int
		has      string
		expected []string
	}{
		{"json good", checkEPCISJSON, goodJSON, "", "", "B1", 3, "80000010000000000002", nil},
		{"json not json", checkEPCISJSON, `{"type":`, "not a JSON document", "", "", 0, "", nil},
		{"json wrong type", checkEPCISJSON, `{"type":"X","schemaVersion":"2.0","@context":[],"epcisBody":{"eventList":[]}}`, "", `type is "X"`, "", 0, "", nil},
		{"json bad action", checkEPCISJSON, strings.Replace(goodJSON, `"action":"ADD"`, `"action":"MAKE"`, 1), "", `action "MAKE"`, "B1", 3, "", nil},
		{"json missing code", checkEPCISJSON, goodJSON, "", "1 of the 2 expected codes", "B1", 3, "", []string{"80000010000000000001", "80000010000000000009"}},
		{"xml good", checkEPCISXML, goodXML, "", "", "B1", 2, "80000020000000000001", nil},
		{"xml broken", checkEPCISXML, goodXML[:200], "not well-formed", "", "", 0, "", nil},
		{"xml wrong root", checkEPCISXML, `<Document/>`, "root element", "", "", 0, "", nil},
		{"relation good", checkRelationXML, goodRelation, "", "", "B1", 3, "80000010000000000002", []string{"80000010000000000001", "80000010000000000002", "80000020000000000001"}},
		{"relation orphan", checkRelationXML, strings.Replace(goodRelation, `parentCode="80000020000000000001" flag="0"/>
<Code curCode="80000010000000000002"`, `parentCode="89999" flag="0"/>
<Code curCode="80000010000000000002"`, 1), "", "parentCode 89999 is not in the document", "B1", 3, "", nil},
		{"relation duplicate", checkRelationXML, strings.Replace(goodRelation, "80000010000000000002", "80000010000000000001", 1), "", "appears twice", "B1", 2, "", nil},
		{"relation bad layer", checkRelationXML, strings.Replace(goodRelation, `packLayer="2"`, `packLayer="x"`, 1), "", "packLayer", "B1", 2, "", nil},
		{"relation wrong root", checkRelationXML, `<EPCISDocument/>`, "root element", "", "", 0, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, ids, err := tc.check([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			exp := map[string][]string{}
			if tc.expected != nil {
				exp["B1"] = tc.expected
			}
			rep.Key = "k"
			rep.finish(exp, ids.has)
			got := strings.Join(rep.Problems, "; ")
			if tc.problem == "" && len(rep.Problems) > 0 || !strings.Contains(got, tc.problem) {
				t.Fatalf("problems %q, want %q", got, tc.problem)
			}
			if rep.OK != (tc.problem == "") {
				t.Errorf("OK %v", rep.OK)
			}
			if rep.Batch != tc.batch || rep.Codes != tc.codes {
				t.Errorf("batch %q codes %d, want %q %d", rep.Batch, rep.Codes, tc.batch, tc.codes)
			}
			if tc.has != "" && !ids.has(tc.has) {
				t.Errorf("%s not found", tc.has)
			}
			if rep.Text == "" {
				t.Error("no text")
			}
		})
	}
}

func FuzzCheckEPCISJSON(f *testing.F) {
	f.Add([]byte(goodJSON))
	f.Add([]byte(`{"type":"EPCISDocument","epcisBody":{"eventList":[{"type":"ObjectEvent"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkEPCISJSON(b) })
}

func FuzzCheckEPCISXML(f *testing.F) {
	f.Add([]byte(goodXML))
	f.Fuzz(func(t *testing.T, b []byte) { checkEPCISXML(b) })
}

func FuzzCheckRelationXML(f *testing.F) {
	f.Add([]byte(goodRelation))
	f.Fuzz(func(t *testing.T, b []byte) { checkRelationXML(b) })
}
