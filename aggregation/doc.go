// Package aggregation is the ledger of a packaging line: the single source of
// truth for every code's state, every parent–child link, every batch's
// counters and every human action, kept in one Badger database per line.
//
// Every change is an event in an append-only, SHA-256 hash-chained journal;
// the projections (code states, hierarchy links, per-batch and per-level
// counters, pools) are updated in the same Badger transaction. A single
// committer goroutine drains concurrent requests into one transaction
// (group commit), so every mutating method returns only once its event is on
// disk, at a cost of one sync per group rather than one per unit. The sync
// is the ledger's own redo log's (redo.go): the group's writes as one record
// in a preallocated, zero-filled segment, fdatasync'ed; that makes it
// durable. Badger takes landed groups behind the log (applier.go), several
// at a time and unsynced, and a checkpoint syncs Badger now and then so
// that segments can be reused. Open replays the log from its checkpoint.
//
// The committer is a two-stage pipeline: while one group's record goes to
// the disk, the committer applies the next, reading the writes Badger may
// not hold yet from memory (s.pend) and the rest from its snapshot. The
// second group is sent, and its callers answered, only once the first is
// durable. Readers first wait until Badger holds every group acknowledged
// before they asked. Operations that scan keys commit alone, once Badger
// holds everything. The committer keeps the codes a
// line is about to use (allocated, sent, printed) in memory, and reads
// pools ahead, so the common operations read nothing from Badger.
//
// What a unit costs the writer is kept small: a pool is a queue that
// allocation takes from without deleting, an allocation writes one range
// key rather than each code's location, and codes of digits only are packed
// in keys; see schema.go.
//
// Who may import it: the line (package line), the hand-off (package handoff),
// the HMI for queries, and cmd/linectl for wiring, verify, backup and
// benchmarks. No Badger type crosses this package's boundary.
package aggregation
