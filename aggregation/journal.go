package aggregation

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// The journal is stored in blocks, one per group commit: a block holds the
// events of one synced transaction, keyed by the seq of its last event.
// One Badger entry per group instead of one per event keeps the journal's
// bulk out of the LSM tree (a block is large enough to go to Badger's value
// log), which is most of the write cost at line speed. Each event still
// carries its own chain hash and is checked one by one by Verify.

// journalEntry is one event as stored: its chain hash and canonical body.
type journalEntry struct {
	hash []byte // 32 bytes
	body []byte
}

func appendJournalEntry(blk []byte, h [32]byte, body []byte) []byte {
	blk = binary.AppendUvarint(blk, uint64(len(body)))
	blk = append(blk, h[:]...)
	return append(blk, body...)
}

// groupJournal is a group's events as the committer encoded them, each but
// its last field, the previous event's hash. The flight chains and hashes
// them into the group's journal block (seal) while the committer applies the
// next group: a group's first event links to the group before it, whose last
// hash is known once that group's flight has sealed it.
type groupJournal struct {
	heads  [][]byte // each event's canonical bytes but the prev field (appendEventHead)
	first  uint64   // the first event's seq (the others follow it)
	n      int      // the block's length once sealed
	chunk  []byte   // where the heads are encoded; they alias it
	bufs   journalBufs
	chunks [][]byte // the chunks taken from bufs, given back by seal
}

// journalBufs recycles the buffers a group's events are encoded in. The
// heads are dead once the flight has sealed the group's block (a copy:
// the block is what the redo record and Badger keep), so the committer
// encodes the next groups into them instead of allocating a chunk per
// group. The committer takes, the flights give back: channels, so that a
// chunk's last reader (seal) happens before its next writer (add). At
// full load this was 8% of the bytes the ledger allocated (session 20).
// The zero journalBufs keeps nothing: every chunk is new.
type journalBufs struct {
	chunks chan []byte
	heads  chan [][]byte
}

func newJournalBufs() journalBufs {
	return journalBufs{chunks: make(chan []byte, 8), heads: make(chan [][]byte, 4)}
}

// chunk is a recycled buffer, or a new one of journalChunk bytes.
func (p journalBufs) chunk() []byte {
	select {
	case b := <-p.chunks:
		return b[:0]
	default:
		return make([]byte, 0, journalChunk)
	}
}

func (p journalBufs) headList() [][]byte {
	select {
	case h := <-p.heads:
		return h[:0]
	default:
		return nil
	}
}

// give hands back a sealed group's buffers (dropped if enough are kept).
func (p journalBufs) give(chunks [][]byte, heads [][]byte) {
	for _, b := range chunks {
		select {
		case p.chunks <- b:
		default:
		}
	}
	clear(heads)
	select {
	case p.heads <- heads[:0]:
	default:
	}
}

// journalChunk bounds the buffers a group's events are encoded in.
const journalChunk = 64 << 10

// add encodes ev, whose seq follows the group's last event's.
func (j *groupJournal) add(ev *Event) error {
	if len(j.heads) == 0 {
		j.first = ev.Seq
		if j.heads == nil {
			j.heads = j.bufs.headList()
		}
	}
	if cap(j.chunk)-len(j.chunk) < 1<<10 {
		j.chunk = j.bufs.chunk()
		j.chunks = append(j.chunks, j.chunk)
	}
	start := len(j.chunk)
	b, err := appendEventHead(j.chunk, ev)
	if err != nil {
		return err
	}
	j.chunk = b
	head := b[start:len(b):len(b)]
	j.heads = append(j.heads, head)
	body := len(head) + prevLen(ev.Seq)
	j.n += uvarintLen(uint64(body)) + sha256.Size + body
	return nil
}

// prevLen is the length of the encoded prev field of event seq: the
// previous event's hash, none for the first event (appendPrev).
func prevLen(seq uint64) int {
	if seq > 1 {
		return 1 + sha256.Size
	}
	return 1
}

func uvarintLen(x uint64) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], x)
}

// seal chains the events to prev, the hash of the event before the first
// (ignored for the ledger's first event), and returns the journal block
// and the last event's hash.
func (j *groupJournal) seal(prev [32]byte) ([]byte, [32]byte) {
	blk := make([]byte, 0, j.n)
	var ch chainHasher
	for i, head := range j.heads {
		seq := j.first + uint64(i)
		// The body is built in the hasher's buffer, after prev: hashed
		// and copied into the block without another copy of its own.
		ch.start(prev, seq-1)
		ch.buf = append(ch.buf, head...)
		if seq > 1 {
			ch.buf = appendPrev(ch.buf, prev[:])
		} else {
			ch.buf = appendPrev(ch.buf, nil)
		}
		body := ch.buf[sha256.Size:]
		prev = ch.digest()
		blk = appendJournalEntry(blk, prev, body)
	}
	j.bufs.give(j.chunks, j.heads)
	j.chunks, j.heads, j.chunk = nil, nil, nil
	return blk, prev
}

// parseBlock splits a journal block into its events. The slices alias v.
func parseBlock(v []byte) ([]journalEntry, error) {
	var out []journalEntry
	for len(v) > 0 {
		n, k := binary.Uvarint(v)
		var tmp [binary.MaxVarintLen64]byte
		if k <= 0 || k != binary.PutUvarint(tmp[:], n) || uint64(len(v)-k) < 32 || uint64(len(v)-k-32) < n {
			return out, fmt.Errorf("journal block: entry %d is malformed or truncated", len(out)+1)
		}
		v = v[k:]
		out = append(out, journalEntry{hash: v[:32:32], body: v[32 : 32+n : 32+n]})
		v = v[32+n:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("journal block: empty")
	}
	return out, nil
}

// blockLast reads a journal key's seq, or 0 if the key is malformed.
func blockLast(k []byte) uint64 {
	if len(k) != len(pfxJournal)+8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(pfxJournal):])
}

// journalReader finds events by seq with one iterator, remembering the last
// block it decoded (a code's history often falls in few blocks).
type journalReader struct {
	it          *badger.Iterator
	first, last uint64
	ents        []journalEntry
}

func newJournalReader(txn *badger.Txn) *journalReader {
	o := badger.DefaultIteratorOptions
	o.PrefetchValues = false
	o.Prefix = []byte(pfxJournal)
	return &journalReader{it: txn.NewIterator(o)}
}

func (jr *journalReader) close() { jr.it.Close() }

// entry returns event seq's stored entry.
func (jr *journalReader) entry(seq uint64) (journalEntry, error) {
	if jr.ents == nil || seq < jr.first || seq > jr.last {
		jr.ents = nil
		jr.it.Seek(journalKey(seq))
		if !jr.it.Valid() {
			return journalEntry{}, storageErr(fmt.Errorf("journal event %d missing", seq))
		}
		last := blockLast(jr.it.Item().Key())
		v, err := jr.it.Item().ValueCopy(nil)
		if err != nil {
			return journalEntry{}, storageErr(err)
		}
		ents, err := parseBlock(v)
		if err != nil || last < uint64(len(ents)) {
			return journalEntry{}, storageErr(fmt.Errorf("journal block ending at event %d: corrupt", last))
		}
		jr.ents, jr.first, jr.last = ents, last-uint64(len(ents))+1, last
	}
	if seq < jr.first {
		return journalEntry{}, storageErr(fmt.Errorf("journal event %d missing", seq))
	}
	return jr.ents[seq-jr.first], nil
}
