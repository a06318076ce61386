package export

import (
	"io"
	"testing"

	"github.com/tracline/tracline/handoff/export/exporttest"
)

// BenchmarkExport exports a released, active 20,000-unit batch (units in
// bundles of 10, cases of 10 bundles, pallets of 20 cases: 22,210 codes) in
// every format to io.Discard. Sized for a 2-core machine:
//
//	go test -run - -bench Export -benchtime 3x ./handoff/export/
//
// The 1,000,000-unit figures come from testdata/million (docs/handoff.md).
func BenchmarkExport(b *testing.B) {
	p := loadProduct(b, nmpaProduct)
	s := openLedger(b, b.TempDir())
	const units = 20000
	if _, err := exporttest.Build(ctx, s, p, exporttest.Shape{Batch: "BENCH", Units: units, Ratios: []int{10, 10, 20}}); err != nil {
		b.Fatal(err)
	}
	for _, f := range Formats {
		b.Run(string(f), func(b *testing.B) {
			var bytes int64
			for b.Loop() {
				st, err := Write(ctx, io.Discard, s, "BENCH", f, Options{Product: p})
				if err != nil {
					b.Fatal(err)
				}
				bytes = st.Bytes
			}
			b.ReportMetric(float64(units)*float64(b.N)/b.Elapsed().Seconds(), "units/s")
			b.ReportMetric(float64(bytes), "doc-bytes")
		})
	}
}
