// Package aggregation is the ledger of a packaging line: the single source of
// truth for every code's state, every parent–child link, every batch's
// counters and every human action, kept in one Badger database per line.
//
// Every change is an event in an append-only, SHA-256 hash-chained journal;
// the projections (code states, hierarchy links, per-batch and per-level
// counters, pools) are updated in the same Badger transaction. A single
// committer goroutine drains concurrent requests into one synced transaction
// (group commit), so every mutating method returns only once its event is on
// disk, at a cost of one sync per group rather than one per unit.
//
// Who may import it: the line (package line), the hand-off (package handoff),
// the HMI for queries, and cmd/linectl for wiring, verify, backup and
// benchmarks. No Badger type crosses this package's boundary.
package aggregation
