package export

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/handoff/export/exporttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden exports a small nmpa20 batch (8 units in bundles of 3 and a
// case of 3 bundles, with a sampled, a decommissioned, a rejected and a
// voided code) made on a fixed clock, and compares every format with its
// golden file. go test ./handoff/export -run Golden -update rewrites them:
// read the diff before committing it.
func TestGolden(t *testing.T) {
	p := loadProduct(t, nmpaProduct)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s, err := aggregation.Open(t.TempDir(), aggregation.Options{NoSync: true, Now: func() time.Time { return at }})
	must(t, err)
	defer s.Close()
	_, err = exporttest.Build(ctx, s, p, exporttest.Shape{Batch: "G1", Units: 8, Ratios: []int{3, 3}, Extras: true})
	must(t, err)
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(ctx, &buf, s, "G1", f, Options{Product: p, Now: fixedNow, Chunk: 5})
			must(t, err)
			switch f {
			case FormatEPCISJSON:
				must(t, epcisschema.ValidateJSON(buf.Bytes()))
			case FormatEPCISXML:
				must(t, epcisschema.ValidateXML(ctx, buf.Bytes()))
			}
			path := filepath.Join("testdata", "golden", "G1."+string(f))
			if *update {
				must(t, os.MkdirAll(filepath.Dir(path), 0o755))
				must(t, os.WriteFile(path, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			must(t, err)
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("%s differs from %s (run with -update and read the diff):\n%s", f, path, buf.Bytes())
			}
		})
	}
}
