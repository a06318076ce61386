// Package release is QA's release of a batch: the batch record built from
// the ledger (header, reconciliation per level, rejects by reason, challenge
// tests, alarms and their acknowledgement, manual actions, the audit trail
// and the hash chain's status), the release rules checked on it, and the
// electronic signature (21 CFR Part 11 / EU GMP Annex 11 style) that binds
// a signer, a meaning and the SHA-256 of the record as signed, journaled in
// the ledger before the ledger's release decision. It renders the record as
// printable HTML and as PDF with Chinese text.
//
// It reads and writes the ledger (package aggregation) only through the
// small Ledger interface below, and verifies passwords only through an
// Authenticator the caller supplies. Who may import it: cmd/linectl and
// the HMI.
package release
