package aggregation

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// An event's canonical bytes, hashed into the chain and stored in the
// journal, are a compact binary encoding (JSON cost more CPU than the rest
// of a commission together). Layout, in order (str = uvarint length + bytes,
// time = varint unix seconds + uvarint nanoseconds + varint zone offset in
// seconds, opt = one byte 0 or 1 then the value if 1):
//
//	byte  format (eventFormat)
//	uvarint seq, time at, byte kind, byte actor kind, str actor id
//	str batch, reason, pool, source; byte level
//	uvarint number of codes, str each
//	str parent, new, read, document, answer
//	opt unit: uvarint item id, str grade, time read at
//	opt pack: byte flags (1 partial, 2 mixed), str reason
//	opt sig: str user, meaning, comment, time at, str hash
//	opt spec, opt challenge: str of their JSON (rare, batch-level events)
//	uvarint upto, for trim_pool events only
//	str prev: 0 or 32 bytes, the previous event's hash
//
// Decoding rejects anything encoding would not produce, trailing bytes included.
const eventFormat = 1

var eventKinds = []EventKind{EvPoolAdd, EvBatchCreate, EvAllocPool, EvAllocGen, EvReturn, EvSent, EvPrinted,
	EvCommission, EvReject, EvRejectUnit, EvChallenge, EvVoid, EvSample, EvDecommission, EvPack, EvUnpack,
	EvReplace, EvComplete, EvRelease, EvActivate, EvHandedOff, EvReprint, EvGate, EvLabel, EvRecord, EvTrimPool} // append only: the index is stored

var actorKinds = []ActorKind{ActorUser, ActorDevice, ActorSystem}

func indexOf[T comparable](list []T, v T) (byte, bool) {
	for i, x := range list {
		if x == v {
			return byte(i), true
		}
	}
	return 0, false
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	_, off := t.Zone()
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	return binary.AppendVarint(b, int64(off))
}

func appendOpt(b []byte, present bool) []byte {
	if present {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendEvent appends ev's canonical bytes to b.
func appendEvent(b []byte, ev *Event) ([]byte, error) {
	b, err := appendEventHead(b, ev)
	if err != nil {
		return nil, err
	}
	var prev []byte
	if ev.Prev != "" {
		p, err := hex.DecodeString(ev.Prev)
		if err != nil || len(p) != 32 {
			return nil, fmt.Errorf("event %d: prev %q is not a SHA-256 in hex", ev.Seq, ev.Prev)
		}
		prev = p
	}
	return appendPrev(b, prev), nil
}

// appendPrev appends an event's last field: the previous event's hash,
// empty (nil) for the ledger's first event.
func appendPrev(b, prev []byte) []byte { return appendStr(b, string(prev)) }

// appendEventHead appends ev's canonical bytes but the last field, the
// previous event's hash (ev.Prev is not read): the committer encodes the
// rest of a group's events, and the flight chains them (journal.go, seal).
func appendEventHead(b []byte, ev *Event) ([]byte, error) {
	kind, ok := indexOf(eventKinds, ev.Kind)
	if !ok {
		return nil, fmt.Errorf("event kind %q has no encoding", ev.Kind)
	}
	ak, ok := indexOf(actorKinds, ev.Actor.Kind)
	if !ok {
		return nil, fmt.Errorf("actor kind %q has no encoding", ev.Actor.Kind)
	}
	b = append(b, eventFormat)
	b = binary.AppendUvarint(b, ev.Seq)
	b = appendTime(b, ev.At)
	b = append(b, kind, ak)
	b = appendStr(b, ev.Actor.ID)
	b = appendStr(b, ev.Batch)
	b = appendStr(b, ev.Reason)
	b = appendStr(b, ev.Pool)
	b = appendStr(b, ev.Source)
	b = append(b, byte(ev.Level))
	b = binary.AppendUvarint(b, uint64(len(ev.Codes)))
	for _, c := range ev.Codes {
		b = appendStr(b, string(c))
	}
	b = appendStr(b, string(ev.Parent))
	b = appendStr(b, string(ev.New))
	b = appendStr(b, ev.Read)
	b = appendStr(b, ev.Document)
	b = appendStr(b, ev.Answer)
	if b = appendOpt(b, ev.Unit != nil); ev.Unit != nil {
		b = binary.AppendUvarint(b, ev.Unit.ItemID)
		b = appendStr(b, ev.Unit.Grade)
		b = appendTime(b, ev.Unit.ReadAt)
	}
	if b = appendOpt(b, ev.Pack != nil); ev.Pack != nil {
		var f byte
		if ev.Pack.Partial {
			f |= 1
		}
		if ev.Pack.Mixed {
			f |= 2
		}
		b = append(b, f)
		b = appendStr(b, ev.Pack.Reason)
	}
	if b = appendOpt(b, ev.Sig != nil); ev.Sig != nil {
		b = appendStr(b, ev.Sig.User)
		b = appendStr(b, ev.Sig.Meaning)
		b = appendStr(b, ev.Sig.Comment)
		b = appendTime(b, ev.Sig.At)
		b = appendStr(b, ev.Sig.Hash)
	}
	if b = appendOpt(b, ev.Spec != nil); ev.Spec != nil {
		j, err := json.Marshal(ev.Spec)
		if err != nil {
			return nil, err
		}
		b = appendStr(b, string(j))
	}
	if b = appendOpt(b, ev.Challenge != nil); ev.Challenge != nil {
		j, err := json.Marshal(ev.Challenge)
		if err != nil {
			return nil, err
		}
		b = appendStr(b, string(j))
	}
	if ev.Kind == EvTrimPool {
		b = binary.AppendUvarint(b, ev.Upto)
	} else if ev.Upto != 0 {
		return nil, fmt.Errorf("event %d: upto is for trim_pool events only", ev.Seq)
	}
	return b, nil
}

var errEventCorrupt = errors.New("corrupt event encoding")

// eventDecoder reads canonical bytes; the first problem sticks in err.
type eventDecoder struct {
	b   []byte
	err error
}

func (d *eventDecoder) fail() {
	if d.err == nil {
		d.err = errEventCorrupt
	}
	d.b = nil
}

func (d *eventDecoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *eventDecoder) uvarint() uint64 {
	n, k := binary.Uvarint(d.b)
	var tmp [binary.MaxVarintLen64]byte
	if k <= 0 || k != binary.PutUvarint(tmp[:], n) {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *eventDecoder) varint() int64 {
	n, k := binary.Varint(d.b)
	var tmp [binary.MaxVarintLen64]byte
	if k <= 0 || k != binary.PutVarint(tmp[:], n) {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *eventDecoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *eventDecoder) time() time.Time {
	sec, nsec, off := d.varint(), d.uvarint(), d.varint()
	if nsec >= 1e9 || off <= -24*3600 || off >= 24*3600 {
		d.fail()
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

func (d *eventDecoder) opt() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

// decodeEvent is the inverse of appendEvent.
func decodeEvent(b []byte) (Event, error) {
	var ev Event
	d := &eventDecoder{b: b}
	if d.byte() != eventFormat {
		return ev, fmt.Errorf("%w: unknown format", errEventCorrupt)
	}
	ev.Seq = d.uvarint()
	ev.At = d.time()
	kind, ak := d.byte(), d.byte()
	if int(kind) >= len(eventKinds) || int(ak) >= len(actorKinds) {
		d.fail()
		return ev, d.err
	}
	ev.Kind, ev.Actor.Kind = eventKinds[kind], actorKinds[ak]
	ev.Actor.ID = d.str()
	ev.Batch = d.str()
	ev.Reason = d.str()
	ev.Pool = d.str()
	ev.Source = d.str()
	ev.Level = tracecode.Level(d.byte())
	if n := d.uvarint(); n > 0 {
		if n > uint64(len(d.b)) {
			d.fail()
			return ev, d.err
		}
		ev.Codes = make([]tracecode.Code, n)
		for i := range ev.Codes {
			ev.Codes[i] = tracecode.Code(d.str())
		}
	}
	ev.Parent = tracecode.Code(d.str())
	ev.New = tracecode.Code(d.str())
	ev.Read = d.str()
	ev.Document = d.str()
	ev.Answer = d.str()
	if d.opt() {
		ev.Unit = &UnitInfo{ItemID: d.uvarint(), Grade: d.str(), ReadAt: d.time()}
	}
	if d.opt() {
		f := d.byte()
		if f > 3 {
			d.fail()
		}
		ev.Pack = &PackOpts{Partial: f&1 != 0, Mixed: f&2 != 0, Reason: d.str()}
	}
	if d.opt() {
		ev.Sig = &Signature{User: d.str(), Meaning: d.str(), Comment: d.str(), At: d.time(), Hash: d.str()}
	}
	if d.opt() {
		ev.Spec = new(BatchSpec)
		if err := json.Unmarshal([]byte(d.str()), ev.Spec); err != nil {
			d.fail()
		}
	}
	if d.opt() {
		ev.Challenge = new(Challenge)
		if err := json.Unmarshal([]byte(d.str()), ev.Challenge); err != nil {
			d.fail()
		}
	}
	if ev.Kind == EvTrimPool {
		ev.Upto = d.uvarint()
	}
	switch prev := d.str(); len(prev) {
	case 0:
	case 32:
		ev.Prev = hex.EncodeToString([]byte(prev))
	default:
		d.fail()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return ev, d.err
}
