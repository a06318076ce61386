package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/tracecode"
)

// exportLedger writes a released batch "R" (4 units in 2 bundles) and an
// open batch "O" of the nmpa20 example product.
func exportLedger(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	p, err := tracecode.LoadProduct(nmpaProduct)
	if err != nil {
		t.Fatal(err)
	}
	s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	by := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "test"}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"R", "O"} {
		step(s.CreateBatch(ctx, aggregation.BatchSpec{ID: id, Product: p.GenericName, Line: "L",
			Order:  aggregation.WorkOrder{BatchNumber: id, Expiry: "2028-01-31"},
			Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}, {Level: 2, Ratio: 2, Scheme: tracecode.SchemeNMPA20}}}, by))
	}
	var lv [2][]tracecode.Code
	for l, n := range []int{4, 2} {
		ls, _ := p.Level(tracecode.Level(l + 1))
		var cs []tracecode.Code
		for i := 0; i < n; i++ {
			cs = append(cs, tracecode.Code(fmt.Sprintf("%s%013d", ls.ProductID, i)))
		}
		step(s.AddToPool(ctx, ls.ProductID, cs, "test"))
		a, err := s.AllocateFromPool(ctx, "R", tracecode.Level(l+1), ls.ProductID, n, by)
		step(err)
		step(s.MarkSent(ctx, a, by))
		for _, c := range a {
			step(s.Commission(ctx, c, aggregation.UnitInfo{}, by))
		}
		lv[l] = a
	}
	step(s.Pack(ctx, lv[1][0], lv[0][:2], aggregation.PackOpts{}, by))
	step(s.Pack(ctx, lv[1][1], lv[0][2:], aggregation.PackOpts{}, by))
	step(s.Complete(ctx, "R", by))
	step(s.Release(ctx, "R", aggregation.Signature{User: "qa", Meaning: "released", At: time.Now()}, by))
	step(s.Activate(ctx, "R", by))
	return dir
}

func TestExportCommand(t *testing.T) {
	dir := exportLedger(t)
	for _, f := range []string{"msfx-xml", "epcis-json", "epcis-xml"} {
		rc, out, errs := runLinectl(t, "", "export", "--data", dir, "--batch", "R", "--format", f, "--product", nmpaProduct)
		if rc != 0 {
			t.Fatalf("%s: exit %d: %s", f, rc, errs)
		}
		switch f {
		case "msfx-xml":
			if strings.Count(out, "<Code ") != 6 || !strings.Contains(out, `Event Name="RelationCreate"`) {
				t.Errorf("msfx-xml:\n%s", out)
			}
		case "epcis-json":
			if err := epcisschema.ValidateJSON([]byte(out)); err != nil {
				t.Errorf("epcis-json: %v", err)
			}
		case "epcis-xml":
			if err := epcisschema.ValidateXML(context.Background(), []byte(out)); err != nil {
				t.Errorf("epcis-xml: %v", err)
			}
		}
	}
	rc, out, errs := runLinectl(t, "", "export", "--data", dir, "--batch", "R", "--format", "msfx-xml", "--product", nmpaProduct, "--upload")
	if rc != 0 {
		t.Fatalf("upload: exit %d: %s", rc, errs)
	}
	if raw, err := base64.StdEncoding.DecodeString(out); err != nil || !strings.HasPrefix(string(raw), "PK") {
		t.Fatalf("upload is not a base64 zip: %v", err)
	}
}

func TestExportCommandErrors(t *testing.T) {
	dir := exportLedger(t)
	tests := []struct {
		name string
		args []string
		rc   int
		says string
	}{
		{"no flags", nil, 1, "--data, --batch, --format required"},
		{"no product, none of the examples", []string{"--data", dir, "--batch", "R", "--format", "msfx-xml"}, 1, "give the product's master data with --product FILE"},
		{"product and config", []string{"--data", dir, "--batch", "R", "--format", "msfx-xml", "--product", nmpaProduct, "--config", "../../examples/line-linesim.yaml"}, 1, "not both"},
		{"config names another product", []string{"--data", dir, "--batch", "R", "--format", "msfx-xml", "--config", "../../examples/line-linesim.yaml"}, 1, "is not in the loaded master data"},
		{"bad config", []string{"--data", dir, "--batch", "R", "--format", "msfx-xml", "--config", "nope.yaml"}, 1, "nope.yaml"},
		{"bad flag", []string{"--colour", "red"}, 2, "flag provided but not defined"},
		{"bad format", []string{"--data", dir, "--batch", "R", "--format", "csv", "--product", nmpaProduct}, 1, `unknown export format "csv"`},
		{"upload of EPCIS", []string{"--data", dir, "--batch", "R", "--format", "epcis-json", "--product", nmpaProduct, "--upload"}, 1, "--upload packages the msfx-xml"},
		{"open batch", []string{"--data", dir, "--batch", "O", "--format", "epcis-json", "--product", nmpaProduct}, 1, "batch O is open"},
		{"unknown batch", []string{"--data", dir, "--batch", "X", "--format", "epcis-json", "--product", nmpaProduct}, 1, `batch "X" is not in the ledger`},
		{"other product", []string{"--data", dir, "--batch", "R", "--format", "epcis-json", "--product", gs1Product}, 1, "level L1 uses nmpa20 codes"},
		{"no ledger", []string{"--data", dir + "/nope", "--batch", "R", "--format", "epcis-json", "--product", nmpaProduct}, 1, "no ledger at"},
		{"bad chunk", []string{"--data", dir, "--batch", "R", "--format", "epcis-json", "--product", nmpaProduct, "--chunk", "0"}, 1, "--chunk 0: want 1..100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, out, errs := runLinectl(t, "", append([]string{"export"}, tt.args...)...)
			if rc != tt.rc || !strings.Contains(errs, tt.says) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", rc, tt.rc, errs, tt.says)
			}
			if out != "" {
				t.Fatalf("stdout %q for a failed export", out)
			}
		})
	}
}
