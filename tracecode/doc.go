// Package tracecode knows what a traceability code is: the filed code rules
// (nmpa20, GS1 SGTIN, GS1 SSCC) and product master data (LoadProduct),
// parsing of everything a scanner or camera hands over (Parse), generation
// of GS1 serials (Generator), code pools (PoolStore, MemPoolStore) and the
// platform's code-file import (ReadCodeFile, ImportCodeFile). Rendering a
// code in its rule's carrier is in tracecode/render; the PoolStore
// conformance suite is tracecode/pooltest.
//
// It is the vocabulary of the whole module: every other package may import it;
// it imports none of them. Storage of pools is behind PoolStore, implemented
// by the ledger (package aggregation).
package tracecode
