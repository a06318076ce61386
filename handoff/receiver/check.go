package receiver

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tracline/tracline/tracecode"
)

// The checks below read outside input (whatever a sender posts). A document
// that cannot be read at all is an error (the submission is answered 400);
// one that reads but is wrong gets Problems in its Report (the job fails).

// idSet holds the identifiers a document carries, findable by their whole
// text or by their tail after the last ':' or '/' (so an expected nmpa20
// code is found in "https://…/80012345678901234567" or "urn:…:800…").
type idSet map[string]bool

func (s idSet) add(id string) {
	id = strings.TrimSpace(id)
	if id == "" {
		return
	}
	s[id] = true
	if i := strings.LastIndexAny(id, ":/"); i >= 0 && i+1 < len(id) {
		s["\x00"+id[i+1:]] = true
	}
	// Any form the scan parser knows (a GS1 Digital Link URI, an element
	// string) is also found by its canonical code, as the ledger keeps it.
	if p, err := tracecode.Parse(id); err == nil && string(p.Code) != id {
		s["\x00"+string(p.Code)] = true
	}
}

func (s idSet) has(code string) bool { return s[code] || s["\x00"+code] }

// count is the number of identifiers added (not their tails).
func (s idSet) count() int {
	n := 0
	for k := range s {
		if !strings.HasPrefix(k, "\x00") {
			n++
		}
	}
	return n
}

var epcisEventTypes = map[string]bool{"ObjectEvent": true, "AggregationEvent": true, "TransactionEvent": true,
	"TransformationEvent": true, "AssociationEvent": true}

type jsonEvent struct {
	Type      string         `json:"type"`
	EventID   string         `json:"eventID"`
	EventTime string         `json:"eventTime"`
	Action    string         `json:"action"`
	EPCList   []string       `json:"epcList"`
	ParentID  string         `json:"parentID"`
	ChildEPCs []string       `json:"childEPCs"`
	InputEPCs []string       `json:"inputEPCList"`
	OutEPCs   []string       `json:"outputEPCList"`
	ILMD      map[string]any `json:"ilmd"`
}

type jsonDoc struct {
	Context       json.RawMessage `json:"@context"`
	Type          string          `json:"type"`
	SchemaVersion any             `json:"schemaVersion"`
	Body          *struct {
		EventList []jsonEvent `json:"eventList"`
	} `json:"epcisBody"`
}

// checkEPCISJSON reads an EPCIS 2.0 JSON(-LD) document: its structure, its
// events per type, the identifiers it carries and its lot (ILMD lotNumber).
func checkEPCISJSON(data []byte) (Report, idSet, error) {
	rep := Report{Format: "epcis-json", Events: map[string]int{}}
	var d jsonDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return rep, nil, fmt.Errorf("epcis-json: not a JSON document: %w", err)
	}
	if dec.More() {
		return rep, nil, errors.New("epcis-json: text after the document")
	}
	ids := idSet{}
	problem := func(f string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(f, a...)) }
	if d.Type != "EPCISDocument" {
		problem("type is %q, want EPCISDocument", d.Type)
	}
	if v, _ := d.SchemaVersion.(string); v != "2.0" {
		problem("schemaVersion is %v, want \"2.0\"", d.SchemaVersion)
	}
	if len(d.Context) == 0 {
		problem("@context is missing")
	}
	if d.Body == nil {
		problem("epcisBody is missing")
		return rep, ids, nil
	}
	if len(d.Body.EventList) == 0 {
		problem("epcisBody.eventList is empty")
	}
	seenIDs := map[string]bool{}
	for i, e := range d.Body.EventList {
		at := fmt.Sprintf("eventList[%d]", i)
		if !epcisEventTypes[e.Type] {
			problem("%s: type %q is not an EPCIS event type", at, e.Type)
			continue
		}
		rep.Events[e.Type]++
		if e.EventTime == "" {
			problem("%s: eventTime is missing", at)
		}
		if e.EventID != "" {
			if seenIDs[e.EventID] {
				problem("%s: eventID %s appears twice", at, e.EventID)
			}
			seenIDs[e.EventID] = true
		}
		switch e.Type {
		case "ObjectEvent", "AggregationEvent", "TransactionEvent", "AssociationEvent":
			if e.Action != "ADD" && e.Action != "OBSERVE" && e.Action != "DELETE" {
				problem("%s: action %q, want ADD, OBSERVE or DELETE", at, e.Action)
			}
		}
		if e.Type == "AggregationEvent" && e.Action == "ADD" && (e.ParentID == "" || len(e.ChildEPCs) == 0) {
			problem("%s: an AggregationEvent ADD needs parentID and childEPCs", at)
		}
		for _, l := range [][]string{e.EPCList, e.ChildEPCs, e.InputEPCs, e.OutEPCs, {e.ParentID}} {
			for _, id := range l {
				ids.add(id)
			}
		}
		for k, v := range e.ILMD {
			if s, ok := v.(string); ok && strings.HasSuffix(k, "lotNumber") && rep.Batch == "" {
				rep.Batch = s
			}
		}
	}
	rep.Codes = ids.count()
	return rep, ids, nil
}

// checkEPCISXML reads an EPCIS 2.0 XML document the same way.
func checkEPCISXML(data []byte) (Report, idSet, error) {
	rep := Report{Format: "epcis-xml", Events: map[string]int{}}
	ids := idSet{}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []string
	var text strings.Builder
	var root string
	var ev struct {
		typ    string
		time   bool
		action string
	}
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, nil, fmt.Errorf("epcis-xml: not well-formed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = t.Name.Local
			}
			if epcisEventTypes[t.Name.Local] {
				ev.typ, ev.time, ev.action = t.Name.Local, false, ""
			}
			stack = append(stack, t.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			name := t.Name.Local
			stack = stack[:len(stack)-1]
			v := strings.TrimSpace(text.String())
			switch {
			case epcisEventTypes[name]:
				rep.Events[name]++
				at := fmt.Sprintf("%s #%d", name, n+1)
				n++
				if !ev.time {
					rep.Problems = append(rep.Problems, at+": eventTime is missing")
				}
				if name != "TransformationEvent" && ev.action != "ADD" && ev.action != "OBSERVE" && ev.action != "DELETE" {
					rep.Problems = append(rep.Problems, fmt.Sprintf("%s: action %q, want ADD, OBSERVE or DELETE", at, ev.action))
				}
				ev.typ = ""
			case name == "eventTime":
				ev.time = v != ""
			case name == "action":
				ev.action = v
			case name == "epc" || name == "parentID":
				ids.add(v)
			case strings.HasSuffix(name, "lotNumber") && rep.Batch == "":
				rep.Batch = v
			}
			text.Reset()
		}
	}
	if root != "EPCISDocument" {
		return rep, nil, fmt.Errorf("epcis-xml: the root element is %q, want EPCISDocument", root)
	}
	if n == 0 {
		rep.Problems = append(rep.Problems, "the document has no events")
	}
	rep.Codes = ids.count()
	return rep, ids, nil
}

// checkRelationXML reads a 码上放心-style relation document (Document /
// Events / Event Name="RelationCreate" / Relation / Batch batchNo / Code
// curCode packLayer parentCode flag): codes per level, each code once,
// every parentCode a code of the document one level up or more.
func checkRelationXML(data []byte) (Report, idSet, error) {
	rep := Report{Format: "msfx-xml", Events: map[string]int{}}
	ids := idSet{}
	dec := xml.NewDecoder(bytes.NewReader(data))
	type link struct {
		code, parent string
		layer        int
	}
	var links []link
	layer := map[string]int{}
	root, relationEvents := "", 0
	problem := func(f string, a ...any) {
		if len(rep.Problems) < 50 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(f, a...))
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, nil, fmt.Errorf("msfx-xml: not well-formed XML: %w", err)
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = t.Name.Local
		}
		attr := func(name string) string {
			for _, a := range t.Attr {
				if strings.EqualFold(a.Name.Local, name) {
					return strings.TrimSpace(a.Value)
				}
			}
			return ""
		}
		switch t.Name.Local {
		case "Event":
			if attr("Name") == "RelationCreate" {
				relationEvents++
			}
		case "Batch":
			if rep.Batch == "" {
				rep.Batch = attr("batchNo")
			}
		case "Code":
			c := attr("curCode")
			l, err := strconv.Atoi(attr("packLayer"))
			switch {
			case c == "":
				problem("a Code has no curCode")
				continue
			case err != nil || l < 1:
				problem("code %s: packLayer %q is not a level (1, 2, …)", c, attr("packLayer"))
				continue
			case layer[c] != 0:
				problem("code %s appears twice", c)
				continue
			}
			layer[c] = l
			ids.add(c)
			rep.Events[fmt.Sprintf("L%d", l)]++
			links = append(links, link{c, attr("parentCode"), l})
		}
	}
	if root != "Document" {
		return rep, nil, fmt.Errorf("msfx-xml: the root element is %q, want Document", root)
	}
	if relationEvents == 0 {
		problem(`no Event Name="RelationCreate"`)
	}
	if rep.Batch == "" {
		problem("no Batch batchNo")
	}
	for _, k := range links {
		if k.parent == "" {
			continue
		}
		pl, ok := layer[k.parent]
		switch {
		case !ok:
			problem("code %s: its parentCode %s is not in the document", k.code, k.parent)
		case pl <= k.layer:
			problem("code %s (level %d): its parent %s is at level %d, not above it", k.code, k.layer, k.parent, pl)
		}
	}
	if len(links) == 0 {
		problem("the document has no Code")
	}
	rep.Codes = len(links)
	return rep, ids, nil
}
