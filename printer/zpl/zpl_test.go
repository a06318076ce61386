package zpl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/netsim"
	"github.com/tracline/tracline/internal/latency"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/tracecode"
)

func TestElementString(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"(00)069012345678901234", "00069012345678901234", true},
		{"(01)06901234567892(21)A7xK2p", "0106901234567892" + "21A7xK2p", true},
		{"(01)06901234567892(21)A7x(10)L1(17)270531", "0106901234567892" + "21A7x\x1d" + "10L1\x1d" + "17270531", true},
		{"(01)06901234567892(17)270531(10)L1", "0106901234567892" + "17270531" + "10L1", true},
		{"80217629000000001003", "", false},
		{"(0A)1", "", false},
		{"(01)", "", false},
		{"(123456)1", "", false},
	}
	for _, tc := range tests {
		got, err := ElementString(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ElementString(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestRenderRoundTrip renders labels and parses them back with the
// simulator's ZPL parser: the barcode must carry the code exactly.
func TestRenderRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		sym   Symbology
		label printer.Label
		code  string
		ok    bool
	}{
		{"sscc gs1-128", GS1128, printer.Label{Code: "(00)069012345678901234", Title: "CASE 箱", Product: "Aspirin_100 ^x~", Batch: "B1", Expiry: "2027-05-31", Count: 20, Level: 3}, "(00)069012345678901234", true},
		{"sscc datamatrix", GS1DataMatrix, printer.Label{Code: "(00)069012345678901234", Title: "PALLET"}, "(00)069012345678901234", true},
		{"sgtin with underscore", GS1DataMatrix, printer.Label{Code: "(01)06901234567892(21)a_b>c"}, "(01)06901234567892(21)a_b>c", true},
		{"sgtin gs1-128 odd", GS1128, printer.Label{Code: "(01)06901234567892(21)A>7"}, "(01)06901234567892(21)A>7", true},
		{"nmpa20 code128", Code128, printer.Label{Code: "80217629000000001003", Title: "箱"}, "80217629000000001003", true},
		{"nmpa20 datamatrix", DataMatrix, printer.Label{Code: "80217629000000001003"}, "80217629000000001003", true},
		{"gs1 symbology, non-gs1 code", GS1128, printer.Label{Code: "80217629000000001003"}, "", false},
		{"plain symbology, gs1 code", Code128, printer.Label{Code: "(00)069012345678901234"}, "", false},
		{"no code, no title", GS1128, printer.Label{Product: "x"}, "", false},
		{"rework notice: title, no code", GS1128, printer.Label{Title: "REWORK 返工 中包", Product: "group refused", Level: 2}, "", true},
		{"caret in code", Code128, printer.Label{Code: "AB^XZ"}, "", false},
		{"bad symbology", "qr", printer.Label{Code: "X"}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			zpl, err := Render(tc.label, tc.sym)
			if (err == nil) != tc.ok {
				t.Fatalf("Render err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			s := strings.TrimSpace(string(zpl))
			lbl, err := devsim.ParseFormat(s)
			if err != nil {
				t.Fatalf("parse back: %v\n%s", err, s)
			}
			if got := lbl.Code(); got != tc.code {
				t.Fatalf("code back = %q, want %q\n%s", got, tc.code, s)
			}
			wantBarcodes := 1
			if tc.code == "" {
				wantBarcodes = 0 // a notice: text only
			}
			if len(lbl.Barcodes) != wantBarcodes || wantBarcodes == 1 && lbl.Barcodes[0].GS1 != tc.sym.GS1() {
				t.Fatalf("barcodes %+v", lbl.Barcodes)
			}
			joined := strings.Join(lbl.Texts, "|")
			for _, want := range []string{tc.label.Title, tc.label.Product, tc.label.Batch} {
				if !strings.Contains(joined, want) {
					t.Fatalf("texts %q miss %q", joined, want)
				}
			}
		})
	}
}

func startLabelPrinter(t *testing.T) (*devsim.LabelPrinter, *netsim.Proxy) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lp, err := devsim.NewLabelPrinter(devsim.LabelPrinterConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lp.Close() })
	px, err := netsim.New(lp.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return lp, px
}

func newDriver(t *testing.T, addr string, check Check) *Printer {
	t.Helper()
	p, err := New(Config{Address: addr, Symbology: GS1128, Check: check, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPrintAgainstSimulator(t *testing.T) {
	lp, px := startLabelPrinter(t)
	p := newDriver(t, px.Addr(), CheckAround)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	codes := []tracecode.Code{"(00)069012345678901234", "(00)069012345678901241"}
	for _, c := range codes {
		if err := p.PrintLabel(ctx, printer.Label{Code: c, Title: "CASE", Count: 10, Level: 3}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range codes {
		l, ok := lp.NextLabel()
		if !ok || l.Code != string(c) {
			t.Fatalf("label %+v %v, want %s", l, ok, c)
		}
	}

	// Not ready: refused before anything is printed.
	lp.SetPaperOut(true)
	err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901258"})
	if !errors.Is(err, printer.ErrNotReady) || !strings.Contains(err.Error(), "paper out") {
		t.Fatalf("paper out: %v", err)
	}
	lp.SetPaperOut(false)
	if len(lp.Printed()) != 2 {
		t.Fatalf("printed %d labels", len(lp.Printed()))
	}

	// A cut link: the next call redials.
	px.Cut()
	px.Restore()
	if err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901265"}); err != nil {
		// The first call after a cut may fail on the dead connection; the one after must work.
		if err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901265"}); err != nil {
			t.Fatalf("after reconnect: %v", err)
		}
	}
	st, err := p.Status(ctx)
	if err != nil || st.Ready() != nil {
		t.Fatalf("status %+v %v", st, err)
	}
}

// TestSymbologyByLevel: one printer for several levels' labels (the
// rework station's) prints each level's code in that level's symbology —
// an nmpa20 box code in Code 128, an SSCC pallet code in GS1-128 — where
// one symbology for all refuses one or the other.
func TestSymbologyByLevel(t *testing.T) {
	lp, px := startLabelPrinter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	box := printer.Label{Code: "81012345678901234567", Title: "BOX", Count: 10, Level: 2}
	pallet := printer.Label{Code: "(00)069012345678901234", Title: "PALLET", Count: 20, Level: 4}
	one, err := New(Config{Address: px.Addr(), Symbology: Code128, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if err := one.PrintLabel(ctx, pallet); err == nil || !strings.Contains(err.Error(), "GS1 code") {
		t.Fatalf("an SSCC in plain Code 128: %v, want refused", err)
	}
	p, err := New(Config{Address: px.Addr(), Symbology: Code128, SymbologyByLevel: []Symbology{Code128, Code128, GS1128}, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, l := range []printer.Label{box, pallet} {
		if err := p.PrintLabel(ctx, l); err != nil {
			t.Fatalf("level %d: %v", l.Level, err)
		}
		got, ok := lp.NextLabel()
		if !ok || got.Code != string(l.Code) {
			t.Fatalf("level %d: printed %+v %v, want %s", l.Level, got, ok, l.Code)
		}
	}
	if got := p.cfg.SymbologyFor(5); got != Code128 {
		t.Fatalf("a level not listed: %s, want the printer's symbology", got)
	}
}

// TestNotAnsweringIsAnErrorByDeadline: a printer that swallows everything
// (muted, or a stalled link) makes the call fail by its deadline.
func TestNotAnsweringIsAnErrorByDeadline(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*devsim.LabelPrinter, *netsim.Proxy)
	}{
		{"printer mute", func(lp *devsim.LabelPrinter, _ *netsim.Proxy) { lp.SetMute(true) }},
		{"link stalled", func(_ *devsim.LabelPrinter, px *netsim.Proxy) { px.Stall() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lp, px := startLabelPrinter(t)
			p := newDriver(t, px.Addr(), CheckAround)
			tc.fault(lp, px)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901234"})
			if !errors.Is(err, printer.ErrNotAnswered) {
				t.Fatalf("err = %v, want ErrNotAnswered", err)
			}
			px.Restore()
		})
	}
}

func TestNothingListening(t *testing.T) {
	p := newDriver(t, "127.0.0.1:1", CheckNever)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901234"}); !errors.Is(err, printer.ErrNotAnswered) {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{Address: "10.0.0.5:9100", Symbology: GS1128}, ""},
		{"no address", Config{Symbology: GS1128}, "label_printer.label_printer.address: must be set"},
		{"bad address", Config{Address: "printer", Symbology: GS1128}, "is not host:port"},
		{"bad port", Config{Address: "h:0", Symbology: GS1128}, "port \"0\""},
		{"no symbology", Config{Address: "h:9100"}, "symbology"},
		{"bad check", Config{Address: "h:9100", Symbology: Code128, Check: "sometimes"}, "check: \"sometimes\""},
		{"negative timeout", Config{Address: "h:9100", Symbology: Code128, Timeout: -1}, "timeout"},
		{"by level", Config{Address: "h:9100", Symbology: Code128, SymbologyByLevel: []Symbology{Code128, GS1128}}, ""},
		{"bad by level", Config{Address: "h:9100", Symbology: Code128, SymbologyByLevel: []Symbology{Code128, "qr"}}, "symbology_by_level[1] (level 3): symbology \"qr\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

const hsOK = "\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"

func TestParseHostStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
		chk  func(HostStatus) bool
	}{
		{"ready", hsOK, true, func(h HostStatus) bool { return h.Ready() == nil && h.LabelLength == 1245 }},
		{"paper out + head up", strings.Replace(strings.Replace(hsOK, "030,0,", "030,1,", 1), "001,0,0,", "001,0,1,", 1), true,
			func(h HostStatus) bool { return h.PaperOut && h.HeadUp && errors.Is(h.Ready(), printer.ErrNotReady) }},
		{"no CRLF", strings.ReplaceAll(hsOK, "\r\n", ""), true, func(h HostStatus) bool { return h.Ready() == nil }},
		{"two strings", hsOK[:strings.LastIndex(hsOK, "\x02")], false, nil},
		{"bad flag", strings.Replace(hsOK, "030,0,", "030,7,", 1), false, nil},
		{"few fields", "\x02030,0\x03\x02a\x03\x02b,c\x03", false, nil},
		{"junk", "hello" + hsOK, false, nil},
		{"empty", "", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHostStatus([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !tc.chk(h) {
				t.Fatalf("status %+v", h)
			}
		})
	}
}

func FuzzParseHostStatus(f *testing.F) {
	f.Add([]byte(hsOK))
	f.Add([]byte("\x02\x03\x02\x03\x02\x03"))
	f.Add([]byte("\x02030,1,1,1245,002,1,0,1,000,1,1,1\x03\x02001,0,1,1,1,2,6,1,00000012,1,000\x03\x021234,0\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHostStatus(b)
		if err != nil && h != (HostStatus{}) {
			t.Fatalf("error with a non-zero status: %+v", h)
		}
	})
}

func FuzzElementString(f *testing.F) {
	f.Add("(01)06901234567892(21)A7x(10)L1(17)270531")
	f.Add("(00)069012345678901234")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ElementString(s)
		if err == nil && es == "" {
			t.Fatalf("empty element string from %q", s)
		}
	})
}

// BenchmarkPrintLabel measures render + ~HS + write + ~HS against the
// simulated label printer on loopback.
func BenchmarkPrintLabel(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lp, _ := devsim.NewLabelPrinter(devsim.LabelPrinterConfig{}, nil)
	lp.Start(ctx)
	defer lp.Close()
	p, _ := New(Config{Address: lp.Addr(), Symbology: GS1DataMatrix}, nil)
	defer p.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901234", Title: "CASE"}); err != nil {
			b.Fatal(err)
		}
		lp.NextLabel()
	}
}

// TestSlowPrinterIsTooSlow: a printer that answers, but every answer
// 400 ms late, fails the label (latency.ErrTooSlow) once its answers have
// been late for the budget's span, and prints again once it answers in
// time.
func TestSlowPrinterIsTooSlow(t *testing.T) {
	lp, px := startLabelPrinter(t)
	p := newDriver(t, px.Addr(), CheckAround)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901234"}); err != nil {
		t.Fatal(err)
	}
	px.SetDelay(400 * time.Millisecond)
	err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901241"})
	if !errors.Is(err, latency.ErrTooSlow) || !strings.Contains(err.Error(), "label_printer") {
		t.Fatalf("slowed printer: %v, want latency.ErrTooSlow naming the printer", err)
	}
	// Still slow: refused before the label is sent.
	n := len(lp.Printed())
	if err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901258"}); !errors.Is(err, latency.ErrTooSlow) {
		t.Fatalf("still slow: %v", err)
	}
	if len(lp.Printed()) != n {
		t.Fatalf("a label was sent to a printer known too slow")
	}
	px.SetDelay(0)
	if err := p.PrintLabel(ctx, printer.Label{Code: "(00)069012345678901265"}); err != nil {
		t.Fatalf("back in time: %v", err)
	}
}
