// Package outbox delivers a released batch's hand-off documents to the
// traceability network exactly once from the network's point of view.
//
// A document is written durably first: its content in a file under the
// outbox directory (file and directory fsynced), its id, batch, format,
// size, SHA-256 and endpoints journaled in the ledger (Store.Record under
// the meta key "outbox/<doc id>"). It is then delivered to every configured
// endpoint that takes its format, with timeouts, retries with exponential
// backoff and jitter, and the document id as idempotency key. Every attempt
// and every answer is journaled before the outbox acts on it, so that
// delivery survives restarts and a crash between a send and its answer (the
// resend carries the same key, which the receiver recognises). When every
// endpoint has accepted a document the ledger is told (Store.HandedOff).
//
// Receivers are spoken to through an Adapter per endpoint kind: the EPCIS 2.0
// capture interface (POST /capture, capture job polled) and the platform's
// relation upload (the zipped, base64 relation file, its processing status
// polled). See docs/handoff-delivery.md for both wire formats and for the
// document's life.
//
// Who may import it: cmd/linectl (wiring, CLI) and the HMI (status, attempts,
// resend, recall). It imports the ledger (package aggregation).
package outbox
