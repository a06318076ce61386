package aggregation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/tracecode"
)

func TestRecRoundTrip(t *testing.T) {
	for _, r := range []rec{
		{State: StateAllocated, Seqs: []uint64{1, 5}},
		{State: StateAggregated, Flags: flagGenerated, Parent: "(00)123456789012345675", Seqs: []uint64{7, 9, 1 << 40}},
		{State: StateCommissioned, Flags: flagPartial | flagMixed, Children: 7, Seqs: []uint64{}},
	} {
		got, err := decodeRec(r.encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
}

func TestLocRoundTrip(t *testing.T) {
	for _, l := range []loc{
		{Pool: "P-1"},
		{Pool: "P-1", QSeq: 1<<40 + 7},
		{Batch: "B1", Level: 1},
		{Batch: "B000000001", Level: 3, Pool: "B000000001-L3"},
	} {
		got, err := decodeLoc(l.encode())
		if err != nil || got != l {
			t.Fatalf("round trip of %+v: %+v, %v", l, got, err)
		}
	}
	for _, b := range []string{"", "x", "p", "p\x00\x00\x00\x00\x00\x00\x00\x01", "b\x01", "b\x01\x05B1", "b\x01\x00"} {
		if l, err := decodeLoc([]byte(b)); err == nil {
			t.Errorf("decodeLoc(%q) = %+v, want an error", b, l)
		}
	}
}

func TestPoolEntryRoundTrip(t *testing.T) {
	h := encodeSeqs([]uint64{3, 90})
	c, hist, err := decodePoolEntry(encodePoolEntry("81234560000000010001", h))
	if err != nil || c != "81234560000000010001" || !bytes.Equal(hist, h) {
		t.Fatalf("round trip: %q %x %v", c, hist, err)
	}
	for _, bad := range [][]byte{nil, {0}, {5, 'a'}, append([]byte{1, 'a'}, 0xff)} {
		if c, _, err := decodePoolEntry(bad); err == nil {
			t.Errorf("decodePoolEntry(%x) = %q, want an error", bad, c)
		}
	}
}

// FuzzDecodeRec: records come from disk; a corrupt one must be an error, never a panic.
func FuzzDecodeRec(f *testing.F) {
	f.Add((&rec{State: StateSent, Seqs: []uint64{1, 2}}).encode())
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

func sampleEvents() []Event {
	at := time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC)
	prev := strings.Repeat("ab", 32)
	return []Event{
		{Seq: 1, At: at, Actor: Actor{ActorSystem, "import"}, Kind: EvPoolAdd, Pool: "p", Source: "file.csv", Codes: []tracecode.Code{"81234567890123456789", "81234567890123456790"}},
		{Seq: 2, At: at, Actor: Actor{ActorUser, "op"}, Kind: EvBatchCreate, Batch: "B1", Spec: &BatchSpec{ID: "B1", Product: "P", Levels: []LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}}, Order: WorkOrder{Extra: map[string]string{"a": "b"}}}, Prev: prev},
		{Seq: 3, At: at, Actor: Actor{ActorDevice, "cam"}, Kind: EvCommission, Batch: "B1", Codes: []tracecode.Code{"81234567890123456789"}, Unit: &UnitInfo{ItemID: 7, Grade: "A", ReadAt: at.In(time.FixedZone("", 8*3600))}, Prev: prev},
		{Seq: 4, At: at, Actor: Actor{ActorDevice, "cam"}, Kind: EvRejectUnit, Batch: "B1", Read: "garbage\x00", Unit: &UnitInfo{}, Reason: "no read", Prev: prev},
		{Seq: 5, At: at, Actor: Actor{ActorUser, "op"}, Kind: EvPack, Parent: "X", Codes: []tracecode.Code{"a", "b"}, Pack: &PackOpts{Partial: true, Reason: "end"}, Reason: "end", Prev: prev},
		{Seq: 6, At: at, Actor: Actor{ActorUser, "qa"}, Kind: EvRelease, Batch: "B1", Sig: &Signature{User: "qa", Meaning: "released", At: at, Hash: "h"}, Prev: prev},
		{Seq: 7, At: at, Actor: Actor{ActorUser, "op"}, Kind: EvChallenge, Batch: "B1", Challenge: &Challenge{Passed: true, Steps: []ChallengeStep{{Step: "s", Expect: "x", Got: "x", OK: true}}}, Prev: prev},
		{Seq: 8, At: at, Actor: Actor{ActorUser, "op"}, Kind: EvReplace, Parent: "X", Codes: []tracecode.Code{"a"}, New: "c", Reason: "r", Document: "d", Answer: "ok", Level: 2, Prev: prev},
		{Seq: 9, At: at, Actor: Actor{ActorSystem, "line"}, Kind: EvTrimPool, Pool: "p", Upto: 8192, Reason: "idle", Prev: prev},
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, ev := range sampleEvents() {
		b, err := appendEvent(nil, &ev)
		must(t, err)
		got, err := decodeEvent(b)
		if err != nil || !reflect.DeepEqual(got, ev) {
			t.Fatalf("round trip of %+v:\n got %+v, %v", ev, got, err)
		}
	}
	if _, err := appendEvent(nil, &Event{Kind: "nonsense", Actor: Actor{ActorUser, "u"}}); err == nil {
		t.Fatal("an unknown kind was encoded")
	}
	if _, err := appendEvent(nil, &Event{Kind: EvPack, Upto: 3, Actor: Actor{ActorUser, "u"}}); err == nil {
		t.Fatal("upto was encoded on a pack event (no decoder would read it)")
	}
}

// FuzzDecodeEvent: journal events come from disk; a corrupt one must be an
// error, never a panic, and what decodes encodes back to the same event.
func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range sampleEvents() {
		b, _ := appendEvent(nil, &ev)
		f.Add(b)
	}
	f.Add([]byte{eventFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeEvent(b)
		if err != nil {
			return
		}
		b2, err := appendEvent(nil, &ev)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", ev, err)
		}
		ev2, err := decodeEvent(b2)
		if err != nil || !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("decoded %+v does not survive a round trip: %+v, %v", ev, ev2, err)
		}
	})
}

func TestKeyCodeRoundTrip(t *testing.T) {
	for _, c := range []tracecode.Code{
		"81234560000000010001", // nmpa20: packed
		"001234567890123457",   // SSCC digits: packed
		"7", "12345",           // odd lengths: packed, padded
		"0112345678901231" + "21ABC/def", // GS1 with a serial: raw
		"(00)123456789012345675",         // bracketed: raw
		tracecode.Code(strings.Repeat("9", 200)),
	} {
		k := linkKey(c, c)
		p, rest, err := splitKeyCode(k[len(pfxLink):])
		if err != nil || p != c || len(rest) == 0 || rest[0] != 0 {
			t.Fatalf("parent of %q: %q, rest %q, %v", c, p, rest, err)
		}
		if got, err := keyCode(rest[1:]); err != nil || got != c {
			t.Fatalf("child of %q: %q, %v", c, got, err)
		}
		if got, err := keyCode(locKey(c)[len(pfxLoc):]); err != nil || got != c {
			t.Fatalf("loc key of %q: %q, %v", c, got, err)
		}
		if allDigits(c) && len(locKey(c)) != len(pfxLoc)+2+(len(c)+1)/2 {
			t.Errorf("%q: not packed: %q", c, locKey(c))
		}
	}
	// Packed keys of one length sort as their codes do, so pool order is kept.
	a, b := locKey("81234560000000010009"), locKey("81234560000000010010")
	if bytes.Compare(a, b) >= 0 {
		t.Errorf("packed keys out of order: %x >= %x", a, b)
	}
	for _, bad := range [][]byte{{}, {packedCode}, {packedCode, 0}, {packedCode, 4, 12}, {packedCode, 2, 100}, {packedCode, 1, 15}} {
		if c, err := keyCode(bad); err == nil {
			t.Errorf("keyCode(%x) = %q, want an error", bad, c)
		}
	}
}

// FuzzKeyCode: a code that decodes from a key encodes back to that key.
func FuzzKeyCode(f *testing.F) {
	f.Add(locKey("81234560000000010001")[len(pfxLoc):])
	f.Add([]byte("0112345678901231"))
	f.Add([]byte{packedCode, 3, 99, 90})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := keyCode(b)
		if err != nil || checkCode(c) != nil {
			return
		}
		if again := appendCode(nil, "", c); !bytes.Equal(again, b) && allDigits(c) == (b[0] == packedCode) {
			t.Fatalf("%x decodes to %q, which encodes to %x", b, c, again)
		}
	})
}

// TestSealMatchesTheChain: a block sealed by a flight is byte for byte the
// block built event by event (appendEvent with Prev, chainHash,
// appendJournalEntry), whether it starts the ledger or follows another group,
// and its length is the one the committer reserved.
func TestSealMatchesTheChain(t *testing.T) {
	// The groups share their encoding buffers as the committer's do
	// (journalBufs): the second group encodes into the chunk the first
	// one's seal gave back, and the first group's block must not change.
	bufs := newJournalBufs()
	var blocks, wants [][]byte
	for _, first := range []uint64{1, 41, 97} {
		var before [32]byte
		if first > 1 {
			before = sha256.Sum256([]byte("the group before"))
		}
		j := groupJournal{bufs: bufs}
		var want []byte
		prev := before
		for i, ev := range sampleEvents() {
			ev.Seq = first + uint64(i)
			ev.Prev = ""
			must(t, j.add(&ev))
			if ev.Seq > 1 {
				ev.Prev = hex.EncodeToString(prev[:])
			}
			body, err := appendEvent(nil, &ev)
			must(t, err)
			// The chain hash, independently: SHA-256(prev || body), from
			// 32 zero bytes for the first event.
			h := sha256.New()
			if ev.Seq > 1 {
				h.Write(prev[:])
			} else {
				h.Write(make([]byte, 32))
			}
			h.Write(body)
			copy(prev[:], h.Sum(nil))
			if got := chainHash(prev, 0, nil); got != sha256.Sum256(make([]byte, 32)) {
				t.Fatalf("chainHash of the first event does not start from zeros")
			}
			want = appendJournalEntry(want, prev, body)
		}
		blk, head := j.seal(before)
		if !bytes.Equal(blk, want) || head != prev {
			t.Fatalf("from seq %d: sealed block differs from the chain built event by event", first)
		}
		if j.n != len(blk) {
			t.Fatalf("from seq %d: reserved %d bytes for a block of %d", first, j.n, len(blk))
		}
		if len(bufs.chunks) == 0 {
			t.Fatalf("from seq %d: the seal gave no encoding buffer back", first)
		}
		blocks, wants = append(blocks, blk), append(wants, want)
	}
	for i := range blocks {
		if !bytes.Equal(blocks[i], wants[i]) {
			t.Fatalf("group %d's block changed once a later group was encoded into the buffers its seal gave back", i+1)
		}
	}
}
