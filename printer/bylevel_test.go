package printer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

// TestByLevel: each level's label goes to that level's printer (two
// simulated ZPL printers over TCP, driven by printer/zpl), whatever the
// order they are printed in; a level without a printer is refused and
// nothing is printed anywhere.
func TestByLevel(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sims := map[tracecode.Level]*devsim.LabelPrinter{}
	by := printer.ByLevel{}
	for _, l := range []tracecode.Level{2, 3} {
		lp, err := devsim.NewLabelPrinter(devsim.LabelPrinterConfig{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := lp.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer lp.Close()
		p, err := zpl.New(zpl.Config{Name: "label-printer-" + l.String(), Address: lp.Addr(), Symbology: zpl.GS1DataMatrix}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		sims[l], by[l] = lp, p
	}
	labels := []printer.Label{
		{Code: "(00)069012345678901234", Title: "CASE", Level: 3},
		{Code: "(01)06901234567892(21)B1", Title: "BUNDLE", Level: 2},
		{Code: "(00)069012345678900001", Title: "CASE", Level: 3},
	}
	for _, lb := range labels {
		if err := by.PrintLabel(ctx, lb); err != nil {
			t.Fatal(err)
		}
	}
	want := map[tracecode.Level][]string{2: {"(01)06901234567892(21)B1"}, 3: {"(00)069012345678901234", "(00)069012345678900001"}}
	for l, lp := range sims {
		var got []string
		for _, p := range lp.Printed() {
			got = append(got, p.Code())
		}
		if strings.Join(got, " ") != strings.Join(want[l], " ") {
			t.Errorf("level %s's printer printed %v, want %v", l, got, want[l])
		}
	}
	err := by.PrintLabel(ctx, printer.Label{Code: "(00)069012345678900002", Title: "PALLET", Level: 4})
	if err == nil || !strings.Contains(err.Error(), "no label printer for level L4 (printers for L2, L3)") {
		t.Fatalf("a level-4 label: %v", err)
	}
	if n := len(sims[2].Printed()) + len(sims[3].Printed()); n != 3 {
		t.Fatalf("%d labels printed after the refused one, want 3", n)
	}
}
