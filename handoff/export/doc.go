// Package export writes the hand-off documents of a released batch, streamed
// from the ledger to an io.Writer without holding the batch in memory:
//
//   - msfx-xml: the 码上放心-style relation XML (Document / Events / Event
//     Name="RelationCreate" / Relation / Batch / Code), top level first, and
//     its upload packaging (zip, then base64: ZipBase64, Upload);
//   - epcis-json and epcis-xml: EPCIS 2.0 documents per Open-SCS Annex A.4
//     (commissioning, packing, sampling, decommissioning, destroying and
//     activation events), valid against GS1's schemas (see epcisschema).
//
// Only a batch QA has released (state released, active or handed_off) is
// exported; anything else is refused, naming its state. The identifiers,
// event times and chunking are described in docs/handoff.md ("Export
// formats").
//
// It reads the ledger through the small Ledger interface (which
// *aggregation.Store satisfies) and the product's master data
// (tracecode.Product). The outbox, the CLI (linectl export) and the HMI may
// import it; it imports nothing of theirs.
package export
