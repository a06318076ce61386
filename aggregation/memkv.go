package aggregation

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"slices"
)

// memKV is Verify's replay store: the projections the journal implies, as
// key → value, in memory, with no Badger under it. A Badger scratch store
// cost most of verify's CPU (writes, compactions, reads back) and gigabytes
// of memory at 1M units; this holds the same keys and values in a few
// hundred bytes per code, none of them pointers for the collector to scan.
//
// Entries live in an arena of fixed-size chunks (no copy of the whole
// arena when it grows); an open-addressing index (linear probing) maps a
// key's hash to its entry. An entry is a header (entryHdr), the key, then
// the value padded to its capacity: a rewritten value that still fits (a code record gains an event
// seq each time) is overwritten in place; one that does not moves to the
// end of the arena, the old entry marked dead. Dead entries are reclaimed
// by compact, which the replay calls between events.
//
// get returns a copy: a caller may hold a value across later writes, as
// with Badger's ValueCopy.
//
// The chunks and the index are mapped outside the Go heap (offheap): the
// collector's heap goal, twice the live heap by default, would otherwise
// double the table's memory. free unmaps them; nothing may use the table
// after.
type memKV struct {
	seed   maphash.Seed
	chunks [][]byte // each memChunk long (or one entry's size if bigger)
	used   int      // bytes used in the last chunk
	slots  []uint64 // 0 empty, 1 deleted, else tag<<48 | offset+2
	n      int      // live keys
	filled int      // slots not empty (live and deleted)
	live   int64    // bytes of live entries
	dead   int64    // bytes of dead entries
	// kids indexes link keys by parent (h/<parent>0 → the child parts of
	// its keys), built on the first children() and kept from then on: a
	// ledger that never unpacks never pays for it.
	kids map[string][][]byte
}

const (
	memChunk    = 4 << 20
	flagDead    = 1
	flagVisited = 2
	flagLong    = 4 // the header's long form
	slotEmpty   = 0
	slotDeleted = 1
	offBits     = 48
	offMask     = 1<<offBits - 1
)

// memCompactMin is the dead bytes below which compact does nothing (a
// variable for tests).
var memCompactMin int64 = 16 << 20

func newMemKV() *memKV {
	return &memKV{seed: maphash.MakeSeed(), slots: offheapSlots(1 << 16)}
}

// free unmaps the table's memory.
func (m *memKV) free() {
	for _, c := range m.chunks {
		if c != nil {
			offheapFree(c)
		}
	}
	offheapFreeSlots(m.slots)
	m.chunks, m.slots, m.kids = nil, nil, nil
}

func newChunk(size int) []byte { return offheap(size) }

// An offset is a chunk index (high 16 bits of the 48) and a position in it.
func memOff(chunk, pos int) uint64 { return uint64(chunk)<<32 | uint64(pos) }

func (m *memKV) entry(off uint64) []byte {
	c := m.chunks[off>>32]
	return c[off&(1<<32-1):]
}

// An entry's header: flags (1 byte), then key length, value length and
// value capacity, one byte each (short form: all three below 256, nearly
// every entry) or 2, 4 and 4 bytes (long form, flagLong). A key is never
// empty, so a zero header marks a chunk's unused tail.
func entryHdr(e []byte) (hdr, kl, vl, vc int) {
	if e[0]&flagLong == 0 {
		return 4, int(e[1]), int(e[2]), int(e[3])
	}
	return 11, int(binary.LittleEndian.Uint16(e[1:])), int(binary.LittleEndian.Uint32(e[3:])), int(binary.LittleEndian.Uint32(e[7:]))
}

func hdrSize(kl, vc int) int {
	if kl < 256 && vc < 256 {
		return 4
	}
	return 11
}

func putHdr(e []byte, kl, vl, vc int) {
	if hdrSize(kl, vc) == 4 {
		e[0], e[1], e[2], e[3] = 0, byte(kl), byte(vl), byte(vc)
		return
	}
	e[0] = flagLong
	binary.LittleEndian.PutUint16(e[1:], uint16(kl))
	binary.LittleEndian.PutUint32(e[3:], uint32(vl))
	binary.LittleEndian.PutUint32(e[7:], uint32(vc))
}

// setVlen sets an entry's value length (at most its capacity).
func setVlen(e []byte, vl int) {
	if e[0]&flagLong == 0 {
		e[2] = byte(vl)
		return
	}
	binary.LittleEndian.PutUint32(e[3:], uint32(vl))
}

func entryKey(e []byte) []byte {
	h, kl, _, _ := entryHdr(e)
	return e[h : h+kl]
}

func entryVal(e []byte) []byte {
	h, kl, vl, _ := entryHdr(e)
	return e[h+kl : h+kl+vl]
}

func entrySize(e []byte) int {
	h, kl, _, vc := entryHdr(e)
	return h + kl + vc
}

// entryEnd reports whether a chunk's entries end at e (its unused tail).
func entryEnd(e []byte) bool { return len(e) < 4 || e[0] == 0 && e[1] == 0 }

func (m *memKV) hash(k []byte) (uint64, uint64) {
	h := maphash.Bytes(m.seed, k)
	return h, h >> offBits
}

// find returns the slot holding k, or -1 and the slot where it would go.
func (m *memKV) find(k []byte) (at int, free int) {
	h, tag := m.hash(k)
	mask := len(m.slots) - 1
	free = -1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := m.slots[i]
		switch {
		case s == slotEmpty:
			if free < 0 {
				free = i
			}
			return -1, free
		case s == slotDeleted:
			if free < 0 {
				free = i
			}
		case s>>offBits == tag && bytes.Equal(entryKey(m.entry(s&offMask-2)), k):
			return i, free
		}
	}
}

// get returns a copy of k's value.
func (m *memKV) get(k []byte) ([]byte, bool) {
	i, _ := m.find(k)
	if i < 0 {
		return nil, false
	}
	return slices.Clone(entryVal(m.entry(m.slots[i]&offMask - 2))), true
}

// slack is the room left after a new value for it to grow in place: code
// records gain a seq per event (up to 3 bytes each) and a parent when
// packed; most end within 48 bytes.
func slack(k, v []byte) int {
	if len(k) > 2 && string(k[:2]) == pfxCode {
		return max(16, 48-len(v))
	}
	return 0
}

func (m *memKV) set(k, v []byte) {
	i, free := m.find(k)
	if i >= 0 {
		e := m.entry(m.slots[i]&offMask - 2)
		h, kl, _, vc := entryHdr(e)
		if len(v) <= vc {
			setVlen(e, len(v))
			copy(e[h+kl:], v)
			return
		}
		m.kill(e)
		m.slots[i] = m.place(k, v, m.slots[i]>>offBits)
		return
	}
	_, tag := m.hash(k)
	if m.slots[free] == slotEmpty {
		m.filled++
	}
	m.slots[free] = m.place(k, v, tag)
	m.n++
	if m.kids != nil && isLinkKey(k) {
		m.addKid(k)
	}
	if m.filled*4 > len(m.slots)*3 {
		m.rehash()
	}
}

func (m *memKV) del(k []byte) {
	i, _ := m.find(k)
	if i < 0 {
		return
	}
	m.kill(m.entry(m.slots[i]&offMask - 2))
	m.slots[i] = slotDeleted
	m.n--
	if m.kids != nil && isLinkKey(k) {
		m.dropKid(k)
	}
}

func (m *memKV) kill(e []byte) {
	e[0] |= flagDead
	sz := int64(entrySize(e))
	m.live -= sz
	m.dead += sz
}

// place appends an entry and returns its slot value.
func (m *memKV) place(k, v []byte, tag uint64) uint64 {
	vc := len(v) + slack(k, v)
	h := hdrSize(len(k), vc)
	sz := h + len(k) + vc
	last := len(m.chunks) - 1
	if last < 0 || m.used+sz > len(m.chunks[last]) {
		m.chunks = append(m.chunks, newChunk(max(memChunk, sz)))
		last, m.used = last+1, 0
	}
	e := m.chunks[last][m.used : m.used+sz]
	putHdr(e, len(k), len(v), vc)
	copy(e[h:], k)
	copy(e[h+len(k):], v)
	off := memOff(last, m.used)
	m.used += sz
	m.live += int64(sz)
	return tag<<offBits | (off + 2)
}

// rehash rebuilds the index, dropping deleted slots, at the smallest power
// of two at least twice the live keys (it is rebuilt when three quarters
// full, deleted slots included).
func (m *memKV) rehash() {
	size := 1 << 16
	for m.n*2 > size {
		size *= 2
	}
	old := m.slots
	m.slots = offheapSlots(size)
	defer offheapFreeSlots(old)
	mask := size - 1
	for _, s := range old {
		if s <= slotDeleted {
			continue
		}
		h, _ := m.hash(entryKey(m.entry(s&offMask - 2)))
		i := int(h) & mask
		for m.slots[i] != slotEmpty {
			i = (i + 1) & mask
		}
		m.slots[i] = s
	}
	m.filled = m.n
}

// compact moves the live entries to new chunks, freeing each old chunk
// once it is copied, when dead entries take a quarter of the live ones'
// room or more (and at least memCompactMin). No value returned by get
// refers to the arena.
func (m *memKV) compact() {
	if m.dead < memCompactMin || m.dead*4 < m.live {
		return
	}
	old := m.chunks
	m.chunks, m.used = nil, 0
	m.live, m.dead = 0, 0
	mask := len(m.slots) - 1
	for ci, c := range old {
		for pos := 0; pos < len(c); {
			e := c[pos:]
			if entryEnd(e) {
				break
			}
			sz := entrySize(e)
			if e[0]&flagDead == 0 {
				k := entryKey(e)
				h, tag := m.hash(k)
				want := tag<<offBits | (memOff(ci, pos) + 2)
				i := int(h) & mask
				for m.slots[i] != want {
					i = (i + 1) & mask
				}
				m.slots[i] = m.placeEntry(e[:sz], tag)
			}
			pos += sz
		}
		offheapFree(c)
		old[ci] = nil
	}
}

// placeEntry copies a whole entry (header included) to the arena's end.
func (m *memKV) placeEntry(e []byte, tag uint64) uint64 {
	last := len(m.chunks) - 1
	if last < 0 || m.used+len(e) > len(m.chunks[last]) {
		m.chunks = append(m.chunks, newChunk(max(memChunk, len(e))))
		last, m.used = last+1, 0
	}
	copy(m.chunks[last][m.used:], e)
	off := memOff(last, m.used)
	m.used += len(e)
	m.live += int64(len(e))
	return tag<<offBits | (off + 2)
}

// visit finds k for the comparison, marks it seen and returns its value
// (in the arena: valid until the next write).
func (m *memKV) visit(k []byte) ([]byte, bool) {
	i, _ := m.find(k)
	if i < 0 {
		return nil, false
	}
	e := m.entry(m.slots[i]&offMask - 2)
	e[0] |= flagVisited
	return entryVal(e), true
}

// each calls fn for every live entry, in arena order.
func (m *memKV) each(fn func(k, v []byte, visited bool)) {
	for _, c := range m.chunks {
		for pos := 0; pos < len(c); {
			e := c[pos:]
			if entryEnd(e) {
				break
			}
			if e[0]&flagDead == 0 {
				fn(entryKey(e), entryVal(e), e[0]&flagVisited != 0)
			}
			pos += entrySize(e)
		}
	}
}

// bytes is the memory the arena and index hold.
func (m *memKV) bytes() int64 {
	var n int64
	for _, c := range m.chunks {
		n += int64(len(c))
	}
	return n + int64(len(m.slots))*8
}

func isLinkKey(k []byte) bool { return len(k) > 2 && string(k[:2]) == pfxLink }

// splitLink splits a link key into its parent prefix (h/<parent>0) and the
// child's part.
func splitLink(k []byte) (string, []byte, bool) {
	_, rest, err := splitKeyCode(k[len(pfxLink):])
	if err != nil || len(rest) < 2 || rest[0] != 0 {
		return "", nil, false
	}
	n := len(k) - len(rest) + 1
	return string(k[:n]), k[n:], true
}

func (m *memKV) addKid(k []byte) {
	if p, c, ok := splitLink(k); ok {
		m.kids[p] = append(m.kids[p], slices.Clone(c))
	}
}

func (m *memKV) dropKid(k []byte) {
	if p, c, ok := splitLink(k); ok {
		l := m.kids[p]
		if i := slices.IndexFunc(l, func(x []byte) bool { return bytes.Equal(x, c) }); i >= 0 {
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == 0 {
			delete(m.kids, p)
		} else {
			m.kids[p] = l
		}
	}
}

// children returns the child parts of the link keys under prefix (a link
// prefix), in key order, as a Badger iterator would.
func (m *memKV) children(prefix []byte) [][]byte {
	if m.kids == nil {
		m.kids = map[string][][]byte{}
		m.each(func(k, _ []byte, _ bool) {
			if isLinkKey(k) {
				m.addKid(k)
			}
		})
	}
	out := slices.Clone(m.kids[string(prefix)])
	slices.SortFunc(out, bytes.Compare)
	return out
}
