package aggregation

import (
	"reflect"
	"testing"
)

func TestRecRoundTrip(t *testing.T) {
	for _, r := range []rec{
		{State: StateAllocated, Pool: "p", Seqs: []uint64{1, 5}},
		{State: StateAggregated, Flags: flagGenerated, Parent: "(00)123456789012345675", Seqs: []uint64{7, 9, 1 << 40}},
		{State: StateCommissioned, Flags: flagPartial | flagMixed, Children: 7, Seqs: []uint64{}},
	} {
		got, err := decodeRec(r.encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
}

// FuzzDecodeRec: records come from disk; a corrupt one must be an error, never a panic.
func FuzzDecodeRec(f *testing.F) {
	f.Add((&rec{State: StateSent, Pool: "pool", Seqs: []uint64{1, 2}}).encode())
	f.Add([]byte{1})
	f.Add([]byte{5, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRec(b)
		if err != nil {
			return
		}
		r2, err := decodeRec(r.encode())
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("decoded %+v does not survive a round trip: %+v, %v", r, r2, err)
		}
		decodeLoc(b)
	})
}
