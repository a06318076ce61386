// Package tracecode knows what a traceability code is: the filed code rules
// (nmpa20, GS1 SGTIN, GS1 SSCC), product master data, parsing of everything a
// scanner or camera hands over, generation of GS1 serials, code pools and the
// platform's code-file import, and rendering a code in its rule's carrier.
//
// It is the vocabulary of the whole module: every other package may import it;
// it imports none of them. Storage of pools is behind PoolStore, implemented
// by the ledger (package aggregation).
package tracecode
