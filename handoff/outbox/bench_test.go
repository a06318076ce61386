package outbox

import (
	"bytes"
	"fmt"
	"testing"
)

// bigRelation is a relation document of n units in boxes of 10 (codes
// not in the ledger: the outbox does not read the content).
func bigRelation(n, salt int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- %d -->\n<Document License=\"t\" Version=\"1.0\"><Events><Event Name=\"RelationCreate\" MainAction=\"InsertRelation\">\n"+
		"<Relation productCode=\"P1\" subTypeNo=\"1\" cascade=\"2\" packageSpec=\"1:10\">\n<Batch batchNo=\"B1\" madeDate=\"2026-12-01\" validateDate=\"2028-11-30\" workshop=\"W1\" lineName=\"L1\" lineManager=\"M\">\n", salt)
	for k := 0; k < n/10; k++ {
		fmt.Fprintf(&b, "<Code curCode=\"8%06d%013d\" packLayer=\"2\" parentCode=\"\" flag=\"0\"/>\n", 200, k)
		for u := 0; u < 10; u++ {
			fmt.Fprintf(&b, "<Code curCode=\"8%06d%013d\" packLayer=\"1\" parentCode=\"8%06d%013d\" flag=\"0\"/>\n", 100, k*10+u, 200, k)
		}
	}
	b.WriteString("</Batch></Relation></Event></Events></Document>\n")
	return b.Bytes()
}

// BenchmarkDeliverRelation adds and delivers a 100,000-unit relation
// document to the stand-in platform over loopback (zip, base64, the
// receiver's checks); run with -benchtime 3x.
func BenchmarkDeliverRelation(b *testing.B) {
	f := newFixture(b, nil)
	f.platform.Expect("B1", nil) // the synthetic codes are not the batch's
	n := 0
	var size int64
	for b.Loop() {
		b.StopTimer()
		doc := bigRelation(100_000, n)
		n++
		b.StartTimer()
		d, err := f.ob.Add(ctx, Submission{Batch: "B1", Format: FormatRelation}, bytes.NewReader(doc), qa)
		if err != nil {
			b.Fatal(err)
		}
		size = d.Size
		f.drive(20)
		if got := f.doc(d.ID); got.State != Delivered {
			b.Fatalf("%s %+v", got.State, got.Deliveries)
		}
	}
	b.SetBytes(size)
}
