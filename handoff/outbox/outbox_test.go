package outbox

import (
	"strings"
	"testing"

	"github.com/tracline/tracline/aggregation"
)

func TestDeliverBoth(t *testing.T) {
	f := newFixture(t, nil)
	rel := f.add(FormatRelation, relationXML("B1", f.codes, -1))
	epc := f.add(FormatEPCISJSON, epcisJSON("B1", f.codes))
	exml := f.add(FormatEPCISXML, epcisXML("B1", f.codes))
	if again := f.add(FormatRelation, relationXML("B1", f.codes, -1)); again.ID != rel.ID {
		t.Fatalf("the same content again got id %s, want %s", again.ID, rel.ID)
	}
	if len(rel.Deliveries) != 1 || rel.Deliveries[0].Endpoint != "platform" || epc.Deliveries[0].Endpoint != "epcis" {
		t.Fatalf("deliveries %+v / %+v", rel.Deliveries, epc.Deliveries)
	}
	f.drive(20)
	for _, id := range []string{rel.ID, epc.ID, exml.ID} {
		d := f.doc(id)
		if d.State != Delivered || !d.HandedOff || !f.handedOff(id) {
			t.Fatalf("%s: state %s handed off %v/%v: %+v", id, d.State, d.HandedOff, f.handedOff(id), d.Deliveries)
		}
		if !strings.Contains(d.Deliveries[0].Answer, "all 6 expected codes present") {
			t.Errorf("%s: answer %q", id, d.Deliveries[0].Answer)
		}
	}
	for _, s := range []struct {
		name string
		sum  func() int
	}{{"capture", func() int { return f.capture.Summary().Accepted - 1 }}, {"platform", func() int { return f.platform.Summary().Accepted }}} {
		if s.sum() != 1 {
			t.Errorf("%s accepted %d", s.name, s.sum())
		}
	}
	as, err := f.ob.Attempts(ctx, rel.ID)
	must(t, err)
	var ops []string
	for _, a := range as {
		ops = append(ops, a.Op+":"+a.Outcome)
	}
	want := "add:written send:begun send:accepted poll:success handed-off:the ledger was told"
	if got := strings.Join(ops, " "); got != want {
		t.Errorf("attempts %q, want %q", got, want)
	}
	sum, err := f.led.Summary(ctx, "B1")
	must(t, err)
	if sum.State != aggregation.BatchHandedOff {
		t.Errorf("batch state %s", sum.State)
	}
}
