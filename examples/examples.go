// Package examples embeds the example product, its filed code rules, the
// platform code files and the line configs of this directory in the binary,
// so that `linectl demo` runs from any directory, and `linectl export` finds a
// demo batch's product. Any package but tracecode may import it.
package examples

import (
	"embed"
	"fmt"
	"strings"

	"github.com/tracline/tracline/tracecode"
)

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

// Products parses the example products, keyed as work orders name them
// (the file's name without .yaml).
func Products() (map[string]*tracecode.Product, error) {
	out := map[string]*tracecode.Product{}
	for _, f := range []string{GS1Product, NMPAProduct} {
		data, err := FS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		p, err := tracecode.ParseProduct(f, data)
		if err != nil {
			return nil, fmt.Errorf("embedded example %s: %w", f, err)
		}
		out[strings.TrimSuffix(f, ".yaml")] = p
	}
	return out, nil
}
