package export

import (
	"encoding/json"
	"unicode/utf8"
)

// GS1's EPCIS 2.0 JSON-LD context.
const gs1Context = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"

// jsonEnc writes EPCIS 2.0 JSON-LD.
type jsonEnc struct{ x *exporter }

func (e jsonEnc) header(b []byte) []byte {
	b = append(b, `{"@context":["`+gs1Context+`",{"tl":"`+ExtensionNS+`"}],"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"`...)
	b = appendTime(b, e.x.now)
	return append(b, `","epcisBody":{"eventList":[`+"\n"...)
}

func (e jsonEnc) sep() string { return ",\n" }

func (e jsonEnc) footer(b []byte) []byte { return append(b, "\n]}}\n"...) }

func (e jsonEnc) appendEvent(b []byte, ev *event) ([]byte, error) {
	b = append(b, '{')
	if ev.kind == aggregationEvent {
		b = append(b, `"type":"AggregationEvent"`...)
	} else {
		b = append(b, `"type":"ObjectEvent"`...)
	}
	b = append(b, `,"eventID":"`...)
	b = append(b, ev.id...)
	b = append(b, `","eventTime":"`...)
	b = appendTime(b, ev.at)
	b = append(b, `","eventTimeZoneOffset":"`...)
	b = append(b, zoneOffset(ev.at)...)
	b = append(b, '"')
	var err error
	if ev.kind == aggregationEvent {
		b = append(b, `,"parentID":"`...)
		if b, err = e.x.appendURI(b, ev.parent); err != nil {
			return b, err
		}
		b = append(b, `","childEPCs":[`...)
	} else {
		b = append(b, `,"epcList":[`...)
	}
	for i, c := range ev.codes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		if b, err = e.x.appendURI(b, c); err != nil {
			return b, err
		}
		b = append(b, '"')
	}
	b = append(b, `],"action":"`...)
	b = append(b, ev.action...)
	b = append(b, '"')
	if ev.bizStep != "" {
		b = append(b, `,"bizStep":"`...)
		b = append(b, ev.bizStep...)
		b = append(b, '"')
	}
	b = append(b, `,"disposition":"`...)
	b = append(b, ev.disposition...)
	b = append(b, '"')
	if rp := e.x.o.ReadPoint; rp != "" {
		b = append(b, `,"readPoint":{"id":`...)
		b = appendJSONString(b, rp)
		b = append(b, '}')
	}
	if bl := e.x.o.BizLocation; bl != "" {
		b = append(b, `,"bizLocation":{"id":`...)
		b = appendJSONString(b, bl)
		b = append(b, '}')
	}
	if ev.ilmd {
		b = append(b, `,"ilmd":{"cbvmda:lotNumber":`...)
		b = appendJSONString(b, e.x.lot())
		if exp := e.x.expiry(); exp != "" {
			b = append(b, `,"cbvmda:itemExpirationDate":`...)
			b = appendJSONString(b, exp)
		}
		b = append(b, '}')
	}
	if ev.reason != "" {
		b = append(b, `,"tl:reason":`...)
		b = appendJSONString(b, ev.reason)
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	plain := utf8.ValidString(s)
	for i := 0; plain && i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// xmlEnc writes EPCIS 2.0 XML.
type xmlEnc struct{ x *exporter }

func (e xmlEnc) sep() string { return "" }

func (e xmlEnc) footer(b []byte) []byte {
	return append(b, "</EventList>\n</EPCISBody>\n</epcis:EPCISDocument>\n"...)
}

func (e xmlEnc) header(b []byte) []byte {
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:cbvmda="urn:epcglobal:cbv:mda" xmlns:tl="`+ExtensionNS+`" schemaVersion="2.0" creationDate="`...)
	b = appendTime(b, e.x.now)
	return append(b, "\">\n<EPCISBody>\n<EventList>\n"...)
}

func (e xmlEnc) appendEvent(b []byte, ev *event) ([]byte, error) {
	el := "ObjectEvent"
	if ev.kind == aggregationEvent {
		el = "AggregationEvent"
	}
	b = append(b, '<')
	b = append(b, el...)
	b = append(b, "><eventTime>"...)
	b = appendTime(b, ev.at)
	b = append(b, "</eventTime><eventTimeZoneOffset>"...)
	b = append(b, zoneOffset(ev.at)...)
	b = append(b, "</eventTimeZoneOffset><eventID>"...)
	b = append(b, ev.id...)
	b = append(b, "</eventID>"...)
	var err error
	list := "epcList"
	if ev.kind == aggregationEvent {
		b = append(b, "<parentID>"...)
		if b, err = e.x.appendURI(b, ev.parent); err != nil {
			return b, err
		}
		b = append(b, "</parentID>"...)
		list = "childEPCs"
	}
	b = append(b, '<')
	b = append(b, list...)
	b = append(b, '>')
	for _, c := range ev.codes {
		b = append(b, "<epc>"...)
		// Nothing to escape: serials are percent-encoded and Options.Validate
		// refuses bases with characters XML or JSON would escape.
		if b, err = e.x.appendURI(b, c); err != nil {
			return b, err
		}
		b = append(b, "</epc>"...)
	}
	b = append(b, "</"...)
	b = append(b, list...)
	b = append(b, "><action>"...)
	b = append(b, ev.action...)
	b = append(b, "</action>"...)
	if ev.bizStep != "" {
		b = append(b, "<bizStep>urn:epcglobal:cbv:bizstep:"...)
		b = append(b, ev.bizStep...)
		b = append(b, "</bizStep>"...)
	}
	b = append(b, "<disposition>urn:epcglobal:cbv:disp:"...)
	b = append(b, ev.disposition...)
	b = append(b, "</disposition>"...)
	if rp := e.x.o.ReadPoint; rp != "" {
		b = append(b, "<readPoint><id>"...)
		b = appendEscaped(b, rp)
		b = append(b, "</id></readPoint>"...)
	}
	if bl := e.x.o.BizLocation; bl != "" {
		b = append(b, "<bizLocation><id>"...)
		b = appendEscaped(b, bl)
		b = append(b, "</id></bizLocation>"...)
	}
	if ev.ilmd {
		b = append(b, "<ilmd><cbvmda:lotNumber>"...)
		b = appendEscaped(b, e.x.lot())
		b = append(b, "</cbvmda:lotNumber>"...)
		if exp := e.x.expiry(); exp != "" {
			b = append(b, "<cbvmda:itemExpirationDate>"...)
			b = appendEscaped(b, exp)
			b = append(b, "</cbvmda:itemExpirationDate>"...)
		}
		b = append(b, "</ilmd>"...)
	}
	if ev.reason != "" {
		b = append(b, "<tl:reason>"...)
		b = appendEscaped(b, ev.reason)
		b = append(b, "</tl:reason>"...)
	}
	b = append(b, "</"...)
	b = append(b, el...)
	return append(b, ">\n"...), nil
}
