package export

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"testing"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/tracecode"
)

// TestMixedCase: batch A's case holds one bundle of A and one of B (拼箱).
// A's documents relate the whole case (flag 2) but commission only A's
// codes (B's carry B's lot); B's documents commission B's codes that sit
// under A's case, with A's case as the bundle's parent.
func TestMixedCase(t *testing.T) {
	p := loadProduct(t, nmpaProduct)
	s := openLedger(t, t.TempDir())
	mk := func(batch string, levels int) {
		spec := aggregation.BatchSpec{ID: batch, Product: p.GenericName, Line: "line-1",
			Order: aggregation.WorkOrder{BatchNumber: "LOT-" + batch, Expiry: "2028-10-31"}}
		for l := 1; l <= levels; l++ {
			spec.Levels = append(spec.Levels, aggregation.LevelSpec{Level: tracecode.Level(l), Ratio: map[bool]int{true: 2}[l > 1], Scheme: tracecode.SchemeNMPA20})
		}
		must(t, s.CreateBatch(ctx, spec, line))
	}
	codes := func(batch string, l tracecode.Level, from, n int) []tracecode.Code {
		ls, _ := p.Level(l)
		var cs []tracecode.Code
		for i := 0; i < n; i++ {
			cs = append(cs, tracecode.Code(fmt.Sprintf("%s%013d", ls.ProductID, from+i)))
		}
		pool := fmt.Sprintf("%s-L%d", batch, l)
		must(t, s.AddToPool(ctx, pool, cs, "test"))
		a, err := s.AllocateFromPool(ctx, batch, l, pool, n, line)
		must(t, err)
		must(t, s.MarkSent(ctx, a, line))
		for _, c := range a {
			must(t, s.Commission(ctx, c, aggregation.UnitInfo{}, line))
		}
		return a
	}
	mk("A", 3)
	mk("B", 2)
	aUnits, bUnits := codes("A", 1, 0, 2), codes("B", 1, 100, 2)
	aBundle, bBundle := codes("A", 2, 0, 1)[0], codes("B", 2, 100, 1)[0]
	aCase := codes("A", 3, 0, 1)[0]
	must(t, s.Pack(ctx, aBundle, aUnits, aggregation.PackOpts{}, line))
	must(t, s.Pack(ctx, bBundle, bUnits, aggregation.PackOpts{}, line))
	must(t, s.Pack(ctx, aCase, []tracecode.Code{aBundle, bBundle}, aggregation.PackOpts{Mixed: true, Reason: "拼箱"}, line))
	for _, b := range []string{"A", "B"} {
		must(t, s.Complete(ctx, b, line))
		must(t, s.Release(ctx, b, aggregation.Signature{User: "qa", Meaning: "released", At: relAt}, qa))
		must(t, s.Activate(ctx, b, qa))
	}
	uris := func(cs ...tracecode.Code) []string {
		var out []string
		for _, c := range cs {
			out = append(out, "urn:nmpa20:"+string(c))
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		batch    string
		own      []tracecode.Code
		lot      string
		relation map[tracecode.Code]tracecode.Code // code → parent in the relation file
		flags    map[tracecode.Code]int
	}{
		{"A", append([]tracecode.Code{aCase, aBundle}, aUnits...), "LOT-A",
			map[tracecode.Code]tracecode.Code{aCase: "", aBundle: aCase, bBundle: aCase, aUnits[0]: aBundle, aUnits[1]: aBundle, bUnits[0]: bBundle, bUnits[1]: bBundle},
			map[tracecode.Code]int{aCase: FlagMixed}},
		{"B", append([]tracecode.Code{bBundle}, bUnits...), "LOT-B",
			map[tracecode.Code]tracecode.Code{bBundle: aCase, bUnits[0]: bBundle, bUnits[1]: bBundle}, nil},
	} {
		t.Run(tt.batch, func(t *testing.T) {
			doc, _ := export(t, s, tt.batch, FormatEPCISJSON, Options{Product: p, Now: fixedNow})
			if err := epcisschema.ValidateJSON(doc); err != nil {
				t.Fatal(err)
			}
			var commissioned, activated []string
			for _, e := range parseJSON(t, doc) {
				switch {
				case e.BizStep == "commissioning":
					if e.Lot != tt.lot {
						t.Errorf("commissioning with lot %q, want %q", e.Lot, tt.lot)
					}
					commissioned = append(commissioned, e.EPCs...)
				case e.Disposition == "active":
					activated = append(activated, e.EPCs...)
				}
			}
			slices.Sort(commissioned)
			slices.Sort(activated)
			if want := uris(tt.own...); !slices.Equal(commissioned, want) || !slices.Equal(activated, want) {
				t.Fatalf("commissioned %v, activated %v, want %v", commissioned, activated, want)
			}
			rel, _ := export(t, s, tt.batch, FormatMSFX, Options{Product: p})
			var d msfxDoc
			must(t, xml.NewDecoder(bytes.NewReader(rel)).Decode(&d))
			got := map[tracecode.Code]tracecode.Code{}
			for _, c := range d.Events[0].Relation.Batch.Codes {
				got[tracecode.Code(c.Cur)] = tracecode.Code(c.Parent)
				if c.Flag != tt.flags[tracecode.Code(c.Cur)] {
					t.Errorf("%s flag %d, want %d", c.Cur, c.Flag, tt.flags[tracecode.Code(c.Cur)])
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.relation) {
				t.Fatalf("relation %v, want %v", got, tt.relation)
			}
		})
	}
}
