package release

import (
	"testing"
)

// BenchmarkRecord builds the batch record of a 10,000-unit batch (1,000
// boxes) and checks the release rules: what a release costs besides the
// signature's two journal writes. The 1,000,000-unit figure is measured on a
// ledger built by `linectl bench ledger` (docs/handoff-release.md).
func BenchmarkRecord(b *testing.B) {
	s := open(b)
	batch(b, s, "BENCH", 10_000, 10)
	d := desk(b, s, Config{})
	verified(b, d)
	b.ResetTimer()
	for b.Loop() {
		rec, err := d.Record(ctx, "BENCH")
		if err != nil {
			b.Fatal(err)
		}
		if !rec.Releasable() {
			b.Fatal(blockers(rec))
		}
	}
}
