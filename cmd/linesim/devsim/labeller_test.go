package devsim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

// A bundle (level 2) and a case (level 3) wait for their labels together,
// and the labels are printed in the other order than the groups reached
// the labelling: the bundle's first, as a controller does that learns of
// the bundle's aggregation read before the case's (two cameras, two
// links). The labels are printed over ZPL/TCP by the controller's own
// driver (printer/zpl), on the printer of each label's level, through the
// simulator's proxies.
//
// With one label printer and one labeller for every level (shared: the
// simulated line before labellers per level) the case, first at the
// labeller, takes the bundle's label and the bundle the case's: the labels
// cross, as at 6,000 units/min in bench line. With a labeller per level
// each group gets its own level's label.
func TestLabellersPerLevel(t *testing.T) {
	const (
		bundleLabel = "(01)06901234567892(21)BUNDLE1"
		caseLabel   = "(00)069012345678901234"
	)
	tests := []struct {
		labellers         sim.Labellers
		printers          int
		wantCase, wantBdl string // the labels group 2 (the case) and group 3 (the bundle) carry
	}{
		{sim.LabellersShared, 1, bundleLabel, caseLabel}, // crossed
		{sim.LabellersPerLevel, 2, caseLabel, bundleLabel},
	}
	for _, tc := range tests {
		t.Run(string(tc.labellers), func(t *testing.T) {
			var printers []*LabelPrinter
			factory := func(ctx context.Context, layout sim.Layout) (*sim.Devices, error) {
				if layout.Levels != 2 || layout.LabelPrinters != tc.printers {
					t.Errorf("layout %+v, want 2 levels and %d label printers", layout, tc.printers)
				}
				// Stand-ins for the coding printer, the cameras and the
				// scanners; real ZPL label printers (the stand-in label
				// printers, fed by the stand-in aggregation cameras, are
				// left unused).
				d := sim.StandIns(layout)
				d.Labels = nil
				for i := 0; i < layout.LabelPrinters; i++ {
					lp, err := NewLabelPrinter(LabelPrinterConfig{}, nil)
					if err != nil {
						return nil, err
					}
					if err := lp.Start(ctx); err != nil {
						return nil, err
					}
					printers = append(printers, lp)
					d.Labels = append(d.Labels, lp)
					d.Targets[LabelPrinterName(i+2)] = lp.Addr()
				}
				d.Close = func() error {
					for _, lp := range printers {
						lp.Close()
					}
					return nil
				}
				return d, nil
			}
			s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Ratios: []int{2, 1}, LabelTimeout: 30 * time.Second,
				Labellers: tc.labellers, Listen: sim.Listen{PLCOPCUA: "off"}}, factory)
			ep := s.Endpoints()
			if len(ep.LabelPrinters) != tc.printers || ep.LabelPrinter != ep.LabelPrinters[0] || ep.Labellers != tc.labellers {
				t.Fatalf("endpoints %+v", ep)
			}
			// The controller's label printer of each level, as the wiring
			// makes it: level 2's and level 3's, or the one of both.
			labellerOf := map[tracecode.Level]*zpl.Printer{}
			for lvl := tracecode.Level(2); lvl <= 3; lvl++ {
				addr := ep.LabelPrinters[0]
				if tc.printers == 2 {
					addr = ep.LabelPrinters[lvl-2]
				}
				p, err := zpl.New(zpl.Config{Name: "label-printer-" + lvl.String(), Address: addr, Symbology: zpl.GS1DataMatrix}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				labellerOf[lvl] = p
			}
			print := func(lvl tracecode.Level, code string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				if err := labellerOf[lvl].PrintLabel(ctx, printer.Label{Code: tracecode.Code(code), Title: lvl.String(), Level: lvl}); err != nil {
					t.Fatalf("print %s label %s: %v", lvl, code, err)
				}
			}
			m, err := mb.NewClient(&mb.ClientConfiguration{URL: "tcp://" + ep.Modbus, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Open(); err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for item := uint32(1); item <= 4; item++ { // every unit passes
				if err := m.WriteRegisters(sim.HRVerdict, []uint16{0, uint16(item), 1, 0}); err != nil {
					t.Fatal(err)
				}
			}
			group := func(id uint32) sim.GroupTruth {
				for _, g := range s.GroundTruth().Groups {
					if g.ID == id {
						return g
					}
				}
				return sim.GroupTruth{}
			}
			state := func(id uint32, st string) func() bool {
				return func() bool { return group(id).State == st }
			}

			// Bundle 1 (group 1) closes and is labelled; its label closes
			// case 2 (ratio 1), read and on its way to the labelling.
			if err := s.Feed(t.Context(), 2); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "bundle 1 read", state(1, "read"))
			print(2, "(01)06901234567892(21)BUNDLE0")
			waitFor(t, "case 2 read", state(2, "read"))
			// Bundle 3 closes after: it reaches the labelling after case 2
			// (gate and labeller positions later than case 2's read).
			if err := s.Feed(t.Context(), 2); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "bundle 3 read", state(3, "read"))
			// The bundle's label is printed first, then the case's.
			print(2, bundleLabel)
			print(3, caseLabel)
			waitFor(t, "case 2 labelled", state(2, "done"))
			waitFor(t, "bundle 3 labelled", state(3, "done"))

			c, b := group(2), group(3)
			if c.Level != 3 || b.Level != 2 {
				t.Fatalf("group 2 is level %d, group 3 level %d", c.Level, b.Level)
			}
			if c.Label != tc.wantCase || b.Label != tc.wantBdl {
				t.Fatalf("case 2 carries %q, bundle 3 %q; want %q and %q", c.Label, b.Label, tc.wantCase, tc.wantBdl)
			}
			if err := s.GroundTruth().Check(); err != nil {
				t.Fatal(err)
			}

			// A link fault (POST /link) acts on one level's label printer:
			// label_printer is level 2's (or the shared one),
			// label_printer_3 level 3's.
			link := func(device, fault string) (int, string) {
				t.Helper()
				body := fmt.Sprintf(`{"device":%q,"fault":%q}`, device, fault)
				res, err := http.Post(strings.TrimSuffix(ep.HTTP, "/groundtruth")+"/link", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			tryPrint := func(lvl tracecode.Level, code string) error {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				return labellerOf[lvl].PrintLabel(ctx, printer.Label{Code: tracecode.Code(code), Title: lvl.String(), Level: lvl})
			}
			if tc.labellers == sim.LabellersShared {
				if st, body := link("label_printer_3", "cut"); st != http.StatusBadRequest || !strings.Contains(body, "unknown") {
					t.Fatalf("cut label_printer_3 with one shared printer: %d %s", st, body)
				}
				return
			}
			if st, body := link("label_printer_3", "cut"); st != http.StatusOK || !strings.Contains(body, `"label_printer_3"`) {
				t.Fatalf("cut label_printer_3: %d %s", st, body)
			}
			if err := tryPrint(3, "(00)069012345678900001"); err == nil || !strings.Contains(err.Error(), "label-printer-L3") {
				t.Fatalf("printing on the cut level-3 printer: %v", err)
			}
			if err := tryPrint(2, "(01)06901234567892(21)BUNDLE2"); err != nil {
				t.Fatalf("level 2's printer, not cut: %v", err)
			}
			if st, body := link("label_printer_3", "restore"); st != http.StatusOK {
				t.Fatalf("restore: %d %s", st, body)
			}
			if err := tryPrint(3, "(00)069012345678900001"); err != nil {
				t.Fatalf("level 3's printer restored: %v", err)
			}
		})
	}
}
