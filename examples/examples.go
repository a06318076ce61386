// Package examples embeds the example product, its filed code rules, the
// platform code files and the line configs of this directory in the binary,
// so that `linectl demo` runs from any directory. It holds data only; any
// package may import it (in practice: internal/demo and the tests).
package examples

import "embed"

// FS holds every example file under its name in this directory:
// amoxicillin-gs1.yaml, amoxicillin-nmpa20.yaml, line-linesim.yaml,
// linesim.yaml and codes/*.
//
//go:embed *.yaml codes
var FS embed.FS

// Product files in FS.
const (
	GS1Product  = "amoxicillin-gs1.yaml"    // L1–L3 GS1 SGTIN, L4 SSCC: the demo's default
	NMPAProduct = "amoxicillin-nmpa20.yaml" // L1–L3 platform nmpa20 codes (pools in codes/), L4 SSCC
)
