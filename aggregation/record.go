package aggregation

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tracline/tracline/tracecode"
)

// loc says where a code lives: in a pool (as its entry QSeq), or allocated
// to a batch+level.
// Once allocated, a code never leaves its batch+level (a return puts it back
// in its pool only as available stock for the same pool; see applyReturn).
// A code allocated from a pool keeps its stored location (the pool entry);
// lookup fills in Batch and Level from the pool's allocation ranges (see
// allocatedTo). Only generated codes store a batch location, with Pool "".
type loc struct {
	Pool  string
	QSeq  uint64 // in a pool: its entry there (see poolEntryKey)
	Batch string
	Level tracecode.Level
}

func (l loc) inPool() bool { return l.Batch == "" }

func (l loc) encode() []byte {
	if l.inPool() {
		b := binary.BigEndian.AppendUint64([]byte{'p'}, l.QSeq)
		return append(b, l.Pool...)
	}
	b := make([]byte, 0, 3+len(l.Batch)+len(l.Pool))
	b = append(b, 'b', byte(l.Level))
	b = binary.AppendUvarint(b, uint64(len(l.Batch)))
	b = append(b, l.Batch...)
	return append(b, l.Pool...)
}

func decodeLoc(b []byte) (loc, error) {
	switch {
	case len(b) > 9 && b[0] == 'p':
		return loc{Pool: string(b[9:]), QSeq: binary.BigEndian.Uint64(b[1:9])}, nil
	case len(b) >= 3 && b[0] == 'b':
		n, k := binary.Uvarint(b[2:])
		if k > 0 && n > 0 && n <= uint64(len(b)-2-k) {
			rest := b[2+k:]
			return loc{Batch: string(rest[:n]), Level: tracecode.Level(b[1]), Pool: string(rest[n:])}, nil
		}
	}
	return loc{}, fmt.Errorf("corrupt code location %q", b)
}

const (
	flagGenerated = 1 << iota
	flagPartial
	flagMixed
	flagGatePassed    // level 1: the gate confirmed the unit passed (EvGate passed)
	flagGateRejected  // level 1: the gate said the unit was rejected
	flagLabelPrinted  // parent: its label was printed (EvLabel printed)
	flagLabelVerified // parent: its label was read on its group (EvLabel verified)
)

// rec is the projection of one code allocated to a batch (the pool it came
// from is in its loc).
type rec struct {
	State    CodeState
	Flags    uint8
	Parent   tracecode.Code // current parent, "" if none
	Children uint32         // current number of children
	Seqs     []uint64       // journal events that touched it, oldest first
}

func (r *rec) encode() []byte {
	return r.appendTo(make([]byte, 0, r.sizeHint()))
}

// sizeHint is the usual length of r's encoding (seq deltas under 2^28).
func (r *rec) sizeHint() int { return 16 + len(r.Parent) + 4*len(r.Seqs) }

// appendTo appends r's encoding to b.
func (r *rec) appendTo(b []byte) []byte {
	b = append(b, byte(r.State), r.Flags)
	b = binary.AppendUvarint(b, uint64(len(r.Parent)))
	b = append(b, r.Parent...)
	b = binary.AppendUvarint(b, uint64(r.Children))
	b = binary.AppendUvarint(b, uint64(len(r.Seqs)))
	var prev uint64
	for _, s := range r.Seqs {
		b = binary.AppendUvarint(b, s-prev) // delta: seqs ascend
		prev = s
	}
	return b
}

var errCorrupt = errors.New("corrupt record")

func decodeRec(b []byte) (rec, error) {
	var r rec
	if len(b) < 2 {
		return r, errCorrupt
	}
	r.State, r.Flags = CodeState(b[0]), b[1]
	if int(r.State) >= NumCodeStates || r.State == StateUnknown {
		return r, errCorrupt
	}
	b = b[2:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	num := func() (uint64, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return n, true
	}
	var ok bool
	var parent string
	var n, ch uint64
	if parent, ok = str(); !ok {
		return r, errCorrupt
	}
	r.Parent = tracecode.Code(parent)
	if ch, ok = num(); !ok || ch > 1<<31 {
		return r, errCorrupt
	}
	r.Children = uint32(ch)
	if n, ok = num(); !ok || n > uint64(len(b)) {
		return r, errCorrupt
	}
	r.Seqs = make([]uint64, n)
	var prev uint64
	for i := range r.Seqs {
		d, ok := num()
		if !ok {
			return r, errCorrupt
		}
		prev += d
		r.Seqs[i] = prev
	}
	if len(b) != 0 {
		return r, errCorrupt
	}
	return r, nil
}

// A pool entry's value: the code, then its history as encodeSeqs writes it.
func encodePoolEntry(c tracecode.Code, hist []byte) []byte {
	b := make([]byte, 0, 2+len(c)+len(hist))
	b = binary.AppendUvarint(b, uint64(len(c)))
	b = append(b, c...)
	return append(b, hist...)
}

func decodePoolEntry(v []byte) (tracecode.Code, []byte, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n == 0 || n > uint64(len(v)-k) {
		return "", nil, errCorrupt
	}
	c := tracecode.Code(v[k : k+int(n)])
	hist := v[k+int(n):]
	if _, err := decodeSeqs(hist); err != nil {
		return "", nil, err
	}
	return c, hist, nil
}

func encodeSeqs(seqs []uint64) []byte {
	r := rec{State: StateInPool, Seqs: seqs}
	return r.encode()
}

func decodeSeqs(b []byte) ([]uint64, error) {
	r, err := decodeRec(b)
	return r.Seqs, err
}

// batchRec is the projection of a batch.
type batchRec struct {
	Spec      BatchSpec         `json:"spec"`
	State     BatchState        `json:"state"`
	CreatedAt uint64            `json:"created_seq"`
	Signature *Signature        `json:"signature,omitempty"`
	Documents map[string]string `json:"documents,omitempty"` // hand-off document id → answer
	Challenge *Challenge        `json:"challenge,omitempty"` // the last challenge test run
}

func (b *batchRec) clone() *batchRec {
	c := *b
	if b.Documents != nil {
		c.Documents = make(map[string]string, len(b.Documents))
		for k, v := range b.Documents {
			c.Documents[k] = v
		}
	}
	return &c
}

// levelCounters are a batch+level's counters, kept incrementally. Flow
// counters count transitions ever made; States counts codes now in each state.
type levelCounters struct {
	Allocated      int64 `json:"allocated"`
	Returned       int64 `json:"returned"`
	Sent           int64 `json:"sent"`
	Printed        int64 `json:"printed"`
	Commissioned   int64 `json:"commissioned"` // ever
	Rejected       int64 `json:"rejected"`
	Voided         int64 `json:"voided"`
	Sampled        int64 `json:"sampled"`
	Decommissioned int64 `json:"decommissioned"`
	Packed         int64 `json:"packed"` // now in a parent
	FullParents    int64 `json:"full_parents"`
	PartialParents int64 `json:"partial_parents"`
	MixedParents   int64 `json:"mixed_parents"`
	RejectedUnits  int64 `json:"rejected_units,omitempty"` // reject_unit events (level 1 only)
	// Gate outcomes journaled (level 1): passed, rejected, escaped (a unit
	// to be rejected that went on: reject failed, bin full).
	GatePassed   int64 `json:"gate_passed,omitempty"`
	GateRejected int64 `json:"gate_rejected,omitempty"`
	GateEscaped  int64 `json:"gate_escaped,omitempty"`
	// LastItem is the highest PLC item id journaled for the batch's units
	// (level 1): a line restarting mid-batch counts from it.
	LastItem  uint64 `json:"last_item,omitempty"`
	FirstItem uint64 `json:"first_item,omitempty"` // the lowest
	// Labels of this level's parents printed and verified on their group.
	LabelsPrinted  int64 `json:"labels_printed,omitempty"`
	LabelsVerified int64 `json:"labels_verified,omitempty"`
	// States[s] is how many codes of this batch+level are now in state s.
	States [NumCodeStates]int64 `json:"states"`
}

// move records a code's change of state.
func (c *levelCounters) move(from, to CodeState) {
	if from != StateUnknown && from != StateInPool {
		c.States[from]--
	}
	c.States[to]++
}

// seeItem records a unit's PLC item id in the batch's span of items.
func (c *levelCounters) seeItem(item uint64) {
	if item == 0 {
		return
	}
	c.LastItem = max(c.LastItem, item)
	if c.FirstItem == 0 || item < c.FirstItem {
		c.FirstItem = item
	}
}
