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
//	x/<code>                           where a code lives (loc): a pool, or a batch+level
//	c/<batch> 0 <level:1> <code>       code record (rec, binary) of a code allocated to a batch
//	q/<pool> 0 <code>                  code available in a pool; value: its history seqs
//	P/<pool>                           pool account (JSON tracecode.PoolStat)
//	b/<batch>                          batch record (JSON batchRec)
//	k/<batch> 0 <level:1>              per batch+level counters (JSON levelCounters)
//	h/<parent> 0 <child>               current parent → child link; the child's record holds child → parent
//
// The journal is the truth; everything else is a projection rebuilt and
// compared by Verify. A change to this layout bumps schemaVersion.

import (
	"encoding/binary"

	"github.com/tracline/tracline/tracecode"
)

const schemaVersion = "3"

var (
	keySchema = []byte("m/schema")
	keyHead   = []byte("m/head")
)

const (
	pfxJournal  = "j/"
	pfxLoc      = "x/"
	pfxCode     = "c/"
	pfxPoolCode = "q/"
	pfxPool     = "P/"
	pfxBatch    = "b/"
	pfxCounter  = "k/"
	pfxLink     = "h/"
)

// projectionPrefixes are the tables Verify rebuilds from the journal.
var projectionPrefixes = []string{pfxLoc, pfxCode, pfxPoolCode, pfxPool, pfxBatch, pfxCounter, pfxLink}

func journalKey(seq uint64) []byte {
	k := make([]byte, 2+8)
	copy(k, pfxJournal)
	binary.BigEndian.PutUint64(k[2:], seq)
	return k
}

func locKey(c tracecode.Code) []byte { return append([]byte(pfxLoc), c...) }

func codePrefix(batch string, level tracecode.Level) []byte {
	k := make([]byte, 0, len(pfxCode)+len(batch)+2)
	k = append(k, pfxCode...)
	k = append(k, batch...)
	return append(k, 0, byte(level))
}

func codeKey(batch string, level tracecode.Level, c tracecode.Code) []byte {
	return append(codePrefix(batch, level), c...)
}

func poolCodePrefix(pool string) []byte {
	k := append([]byte(pfxPoolCode), pool...)
	return append(k, 0)
}

func poolCodeKey(pool string, c tracecode.Code) []byte { return append(poolCodePrefix(pool), c...) }

func poolKey(pool string) []byte   { return append([]byte(pfxPool), pool...) }
func batchKey(batch string) []byte { return append([]byte(pfxBatch), batch...) }

func counterKey(batch string, level tracecode.Level) []byte {
	k := append([]byte(pfxCounter), batch...)
	return append(k, 0, byte(level))
}

func linkPrefix(parent tracecode.Code) []byte {
	k := append([]byte(pfxLink), parent...)
	return append(k, 0)
}

func linkKey(parent, child tracecode.Code) []byte { return append(linkPrefix(parent), child...) }
