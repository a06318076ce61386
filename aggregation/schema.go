package aggregation

// The whole key layout of the ledger. Every key starts with a one-letter
// table prefix and a slash; parts are joined with 0x00, which no canonical
// code, pool name or batch id contains. Multi-byte integers are big-endian so
// that keys sort numerically.
//
//	m/schema                           schema version, decimal ASCII
//	m/head                             last journal seq (8) + its SHA-256 (32)
//	j/<last:8>                         journal block: the events of one group (one synced
//	                                   transaction), seqs consecutive and ending at last, each
//	                                   uvarint(len body) + its chain SHA-256 (32) + canonical
//	                                   binary body (journal.go, event_codec.go)
//	x/<code>                           where a code lives (loc): its pool entry (also once allocated:
//	                                   see A/), or, for a generated code, its batch+level
//	c/<batch> 0 <level:1> <code>       code record (rec, binary) of a code allocated to a batch
//	q/<pool> 0 <n:8>                   the pool's n-th entry: a code and its history seqs. A pool
//	                                   is a queue: imports and returns append, allocation takes
//	                                   from the head; entries are never changed, and deleted only
//	                                   once allocated, by a journaled trim (see Q/)
//	Q/<pool>                           the pool's queue: head (8), the next entry to allocate, and
//	                                   tail (8), the next to append; entries head..tail-1 are available;
//	                                   then, once entries were trimmed (trim_pool), base (8): entries
//	                                   before it are deleted, all of them allocated
//	A/<pool> 0 <end:8>                 one allocation from the pool: level (1) + start (8) + batch;
//	                                   it took entries start..end-1. A code
//	                                   allocated from a pool keeps its pool location in x/ (one key
//	                                   less per code); lookup finds its batch here (allocatedTo)
//	P/<pool>                           pool account (JSON tracecode.PoolStat)
//	b/<batch>                          batch record (JSON batchRec)
//	k/<batch> 0 <level:1>              per batch+level counters (JSON levelCounters)
//	h/<parent> 0 <child>               current parent → child link; the child's record holds child → parent
//	r/<key>                            a meta key's current value: seq (8) of the record that set it + value
//	R/<batch> 0 <seq:8>                the batch's audit trail: event seq is of the batch's trail (audit.go)
//
// <code> in a key is packed when it is all digits (see appendCode). The
// journal is the truth; everything else is a projection rebuilt and
// compared by Verify. A change to this layout bumps schemaVersion.
//
// Beside Badger's files, since schema 10, redo/ holds the redo log
// (redo.go): Badger commits unsynced, and a ledger's state is Badger's
// plus the log's records from its checkpoint on, replayed by Open. A build
// that would ignore the log refuses schema 10.

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"github.com/tracline/tracline/tracecode"
)

const schemaVersion = "11"

var (
	keySchema = []byte("m/schema")
	keyHead   = []byte("m/head")
	// keyRedo is the LSN of the redo record of the last group written
	// (schema 11: its commit runs beside the record's sync; see recover).
	keyRedo = []byte("m/redo")
)

const (
	pfxJournal  = "j/"
	pfxLoc      = "x/"
	pfxCode     = "c/"
	pfxPoolCode = "q/"
	pfxPool     = "P/"
	pfxQueue    = "Q/"
	pfxAlloc    = "A/"
	pfxBatch    = "b/"
	pfxCounter  = "k/"
	pfxLink     = "h/"
	pfxMeta     = "r/"
	pfxTrail    = "R/"
)

// projectionPrefixes are the tables Verify rebuilds from the journal.
var projectionPrefixes = []string{pfxLoc, pfxCode, pfxPoolCode, pfxQueue, pfxAlloc, pfxPool, pfxBatch, pfxCounter, pfxLink, pfxMeta, pfxTrail}

// keyString is k as a map key, sharing k's bytes (no copy). A key written
// (wtx.set, wtx.del) is built afresh by the functions below, or is one of
// the fixed keys above, and is never changed after: the maps that index a
// group's writes by key (s.pend, the applier's) use it.
func keyString(k []byte) string { return unsafe.String(unsafe.SliceData(k), len(k)) }

func journalKey(seq uint64) []byte {
	k := make([]byte, 2+8)
	copy(k, pfxJournal)
	binary.BigEndian.PutUint64(k[2:], seq)
	return k
}

func locKey(c tracecode.Code) []byte {
	return appendCode(make([]byte, 0, len(pfxLoc)+2+len(c)), pfxLoc, c)
}

func codePrefix(batch string, level tracecode.Level) []byte {
	return appendCodePrefix(make([]byte, 0, len(pfxCode)+len(batch)+2), batch, level)
}

func appendCodePrefix(b []byte, batch string, level tracecode.Level) []byte {
	b = append(b, pfxCode...)
	b = append(b, batch...)
	return append(b, 0, byte(level))
}

func codeKey(batch string, level tracecode.Level, c tracecode.Code) []byte {
	return appendCodeKey(make([]byte, 0, codeKeyCap(batch, c)), batch, level, c)
}

// codeKeyCap is at least the length of codeKey(batch, _, c).
func codeKeyCap(batch string, c tracecode.Code) int {
	return len(pfxCode) + len(batch) + 2 + 2 + len(c)
}

// appendCodeKey appends codeKey(batch, level, c) to b.
func appendCodeKey(b []byte, batch string, level tracecode.Level, c tracecode.Code) []byte {
	return appendCode(appendCodePrefix(b, batch, level), "", c)
}

func poolCodePrefix(pool string) []byte {
	k := append([]byte(pfxPoolCode), pool...)
	return append(k, 0)
}

func poolEntryKey(pool string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(poolCodePrefix(pool), n)
}

func queueKey(pool string) []byte { return append([]byte(pfxQueue), pool...) }

func allocPrefix(pool string) []byte {
	k := append([]byte(pfxAlloc), pool...)
	return append(k, 0)
}

func allocKey(pool string, end uint64) []byte {
	return binary.BigEndian.AppendUint64(allocPrefix(pool), end)
}

func poolKey(pool string) []byte   { return append([]byte(pfxPool), pool...) }
func batchKey(batch string) []byte { return append([]byte(pfxBatch), batch...) }

func counterKey(batch string, level tracecode.Level) []byte {
	k := append([]byte(pfxCounter), batch...)
	return append(k, 0, byte(level))
}

func linkPrefix(parent tracecode.Code) []byte {
	return append(appendCode(nil, pfxLink, parent), 0)
}

func linkKey(parent, child tracecode.Code) []byte {
	return appendCode(nil, string(linkPrefix(parent)), child)
}

// Codes in keys. A code of digits only — every nmpa20 code, every SSCC —
// is packed two digits to a byte after a marker byte and its length in
// digits: 12 bytes instead of 20 for an nmpa20 code, in the five keys a unit
// writes on its way through the line. Any other code is stored as it is:
// canonical codes are printable ASCII (checkCode), so none starts with the
// marker. A packed code may contain 0x00, so parsers take a code from a key
// with splitKeyCode or keyCode, never by searching for a separator.
const packedCode = 0x01

// appendCode appends pfx and c's key form to b.
func appendCode(b []byte, pfx string, c tracecode.Code) []byte {
	b = append(b, pfx...)
	if !allDigits(c) {
		return append(b, c...)
	}
	b = append(b, packedCode, byte(len(c)))
	for i := 0; i < len(c); i += 2 {
		d := (c[i] - '0') * 10
		if i+1 < len(c) {
			d += c[i+1] - '0'
		}
		b = append(b, d)
	}
	return b
}

func allDigits(c tracecode.Code) bool {
	if len(c) == 0 || len(c) > 255 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return false
		}
	}
	return true
}

var errKeyCode = errors.New("corrupt code in key")

// splitKeyCode decodes the code at the start of b and returns the bytes
// after it: after a raw code, from the first 0x00 on (none if b ends).
func splitKeyCode(b []byte) (tracecode.Code, []byte, error) {
	if len(b) == 0 {
		return "", nil, errKeyCode
	}
	if b[0] != packedCode {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		return tracecode.Code(b[:i]), b[i:], nil
	}
	if len(b) < 2 || b[1] == 0 {
		return "", nil, errKeyCode
	}
	n := int(b[1])
	m := (n + 1) / 2
	if len(b) < 2+m {
		return "", nil, errKeyCode
	}
	out := make([]byte, n)
	for i, d := range b[2 : 2+m] {
		if d > 99 || (2*i+1 == n && d%10 != 0) {
			return "", nil, errKeyCode
		}
		out[2*i] = '0' + d/10
		if 2*i+1 < n {
			out[2*i+1] = '0' + d%10
		}
	}
	return tracecode.Code(out), b[2+m:], nil
}

// keyCode decodes b, which must hold exactly one code.
func keyCode(b []byte) (tracecode.Code, error) {
	c, rest, err := splitKeyCode(b)
	if err == nil && len(rest) > 0 {
		err = errKeyCode
	}
	return c, err
}
