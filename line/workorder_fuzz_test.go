package line

import (
	"context"
	"testing"
)

// FuzzCheckWorkOrder: a work order from a screen or an MES, any content:
// the check answers problems naming fields, never panics, and a work order
// it passes is well-formed.
func FuzzCheckWorkOrder(f *testing.F) {
	f.Add("amox-gs1", "B1", "2026-11-01", "2028-10-31", int64(4), 1)
	f.Add("", "", "", "", int64(0), 0)
	f.Add("amox-nmpa", "B\x00", "2026-02-30", "0000-01-01", int64(-5), -1)
	f.Add("amox-gs1", " B1", "2026-11-01T00:00:00Z", "2028-10-31", int64(1<<62), 99)
	rg := newLineRig(f, f.TempDir())
	f.Fuzz(func(t *testing.T, product, batch, prod, exp string, planned int64, levels int) {
		wo := WorkOrder{Product: product, Batch: batch, ProductionDate: prod, Expiry: exp, Planned: planned, Levels: levels}
		ps := rg.line.CheckWorkOrder(context.Background(), wo)
		for _, p := range ps {
			if p.Field == "" || p.Code == "" || p.Message == "" {
				t.Fatalf("problem without field, code or message: %+v", p)
			}
		}
		if len(ps) == 0 && (wo.Planned < 1 || wo.Batch == "" || rg.line.cfg.Products[wo.Product] == nil) {
			t.Fatalf("work order %+v passed", wo)
		}
	})
}
