package aggregation

import (
	"bytes"
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

// FuzzParseBlock: journal blocks come from disk; a corrupt one must be an
// error, never a panic, and a block that parses is rebuilt byte for byte
// from its entries.
func FuzzParseBlock(f *testing.F) {
	var h [32]byte
	f.Add(appendJournalEntry(appendJournalEntry(nil, h, []byte(`{"seq":1}`)), h, []byte(`{"seq":2}`)))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ents, err := parseBlock(b)
		if err != nil {
			return
		}
		var again []byte
		for _, e := range ents {
			if len(e.hash) != 32 {
				t.Fatalf("hash of %d bytes", len(e.hash))
			}
			again = appendJournalEntry(again, [32]byte(e.hash), e.body)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("block %x rebuilds as %x", b, again)
		}
	})
}
