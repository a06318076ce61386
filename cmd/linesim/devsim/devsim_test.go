package devsim

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"depth", Config{Printer: PrinterConfig{Depth: -1}}, false},
		{"ring", Config{Camera: CameraConfig{Ring: 1 << 30}}, false},
		{"grade", Config{Camera: CameraConfig{LowGrade: "Z"}}, false},
		{"listen", Config{LabelPrinter: LabelPrinterConfig{Listen: "nope"}}, false},
		{"port", Config{Printer: PrinterConfig{Listen: "127.0.0.1:99999"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestPrinterBufferAndFaults(t *testing.T) {
	p, err := NewPrinter(PrinterConfig{Depth: 3, Ring: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.enqueue([]string{"A", "B", "C", "D"}); err == nil {
		t.Fatal("enqueue over depth accepted")
	}
	if p.Level() != 0 {
		t.Fatal("rejected enqueue changed the buffer")
	}
	if err := p.enqueue([]string{"A", ""}); err == nil {
		t.Fatal("empty code accepted")
	}
	if err := p.enqueue([]string{"A", "B", "C"}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		f    sim.PrintFault
		want string
	}{
		{sim.PrintOK, "A"},
		{sim.PrintDuplicate, "A"},
		{sim.PrintSkip, ""},
		{sim.PrintOK, "C"},
		{sim.PrintOK, ""}, // underrun
	}
	for i, s := range steps {
		if got := p.PrintOnto(s.f); got != s.want {
			t.Fatalf("step %d (%v): on unit %q, want %q", i, s.f, got, s.want)
		}
	}
	if p.PrintCount() != 4 {
		t.Fatalf("PrintCount = %d, want 4", p.PrintCount())
	}
	ring, _ := p.recs.rings.Get().([]string)
	if len(ring) != 2 {
		t.Fatalf("ring = %v", ring)
	}
	var last PrintRecord
	if err := json.Unmarshal([]byte(ring[1]), &last); err != nil || last.Seq != 4 || last.Code != "C" {
		t.Fatalf("last ring record %q: %+v %v", ring[1], last, err)
	}
	if p.recs.get(4) != ring[1] || p.recs.get(3) != ring[0] || p.recs.get(2) != "" || p.recs.get(5) != "" || p.recs.get(0) != "" {
		t.Fatal("record lookup by seq wrong")
	}
	if got := p.vUnder.Get(); got != uint32(1) {
		t.Fatalf("underruns = %v", got)
	}
	p.enqueue([]string{"X", "Y"})
	removed, count := p.Flush()
	if strings.Join(removed, ",") != "X,Y" || count != 4 || p.Level() != 0 {
		t.Fatalf("flush = %v %d level %d", removed, count, p.Level())
	}
	p.SetHeadFault(true)
	p.enqueue([]string{"Z"})
	if got := p.PrintOnto(sim.PrintOK); got != "" {
		t.Fatalf("printed %q with a head fault", got)
	}
}

func TestCameraResults(t *testing.T) {
	c, err := NewCamera(CameraConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Inspect(1, "CODE1", sim.CameraOK)
	c.Inspect(2, "CODE2", sim.CameraLost)
	c.Inspect(3, "CODE3", sim.CameraNoRead)
	c.Inspect(4, "CODE4", sim.CameraLowGrade)
	c.Inspect(5, "", sim.CameraOK)
	ring, _ := c.recs.rings.Get().([]string)
	want := []ResultRecord{
		{Seq: 1, Item: 1, Codes: []string{"CODE1"}, Grade: "A", Pass: true},
		{Seq: 2, Item: 3, Codes: []string{}, Grade: "", Pass: false},
		{Seq: 3, Item: 4, Codes: []string{"CODE4"}, Grade: "D", Pass: false},
		{Seq: 4, Item: 5, Codes: []string{}, Grade: "", Pass: false},
	}
	if len(ring) != len(want) {
		t.Fatalf("ring has %d records, want %d", len(ring), len(want))
	}
	for i, w := range want {
		var r ResultRecord
		if err := json.Unmarshal([]byte(ring[i]), &r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != w.Seq || r.Item != w.Item || strings.Join(r.Codes, ",") != strings.Join(w.Codes, ",") || r.Grade != w.Grade || r.Pass != w.Pass {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	a, err := NewAggCamera(CameraConfig{}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Read(7, []string{"X", "", "Y"})
	var r ResultRecord
	json.Unmarshal([]byte(a.recs.last.Get().(string)), &r)
	if r.Item != 7 || r.Level != 2 || len(r.Codes) != 2 || !r.Pass {
		t.Fatalf("agg result %+v", r)
	}
	if _, err := Start(context.Background(), Config{}, sim.Layout{Levels: 9, LabelPrinters: 9}, nil); err == nil {
		t.Fatal("9 aggregation levels accepted")
	}
	if _, err := Start(context.Background(), Config{}, sim.Layout{Levels: 1, LabelPrinters: 2}, nil); err == nil || !strings.Contains(err.Error(), "2 label printers for 1 aggregation levels") {
		t.Fatalf("2 label printers for 1 level: %v", err)
	}
	if _, err := NewAggCamera(CameraConfig{}, 1, nil); err == nil {
		t.Fatal("level 1 agg camera accepted")
	}
}

func TestLabelPrinterOverTCP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lp, err := NewLabelPrinter(LabelPrinterConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	c, err := net.Dial("tcp", lp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// A GS1-128 SSCC label split across writes, then a DataMatrix SGTIN label, then ~HS.
	io.WriteString(c, "^XA^FO50,50^A0N,30,30^FDCASE^FS^FO50,100^BY3^BCN,120,Y,N,N,N^FD>;>80006901234")
	io.WriteString(c, "5678901234^FS^XZ\r\n")
	io.WriteString(c, "^XA^FO50,50^BXN,8,200,,,,_^FD_10106901234567892218__x_110ABC^FS^FO50,300^FH_^FDLot _5E1^FS^XZ")
	io.WriteString(c, "~HS")
	r := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(line, "\x02") || !strings.HasSuffix(line, "\x03\r\n") {
			t.Fatalf("~HS line %d = %q", i, line)
		}
	}
	l1, ok := lp.NextLabel()
	if !ok || l1.Code != "(00)069012345678901234" || l1.Text != "CASE" {
		t.Fatalf("label 1 = %+v %v", l1, ok)
	}
	l2, ok := lp.NextLabel()
	if !ok || l2.Code != "(01)06901234567892(21)8_x" || l2.Text != "Lot ^1" {
		t.Fatalf("label 2 = %+v %v (printed %+v)", l2, ok, lp.Printed())
	}
	if _, ok := lp.NextLabel(); ok {
		t.Fatal("a third label appeared")
	}
}

func TestParseFormatTable(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		code     string
	}{
		{"nmpa20 code128", "^XA^FO1,1^BCN,100,Y,N,N^FD>;80217629000000001003^FS^XZ", true, "80217629000000001003"},
		{"literal >", "^XA^BCN^FDA><B^FS^XZ", true, "A>B"},
		{"bad invocation", "^XA^BCN^FDA>ZB^FS^XZ", false, ""},
		{"lone >", "^XA^BCN^FDAB>^FS^XZ", false, ""},
		{"no ^XZ", "^XA^FDX^FS", false, ""},
		{"no ^XA", "^FDX^FS^XZ", false, ""},
		{"bad hex", "^XA^FH^FDa_ZZ^FS^XZ", false, ""},
		{"truncated hex", "^XA^FH^FDa_4^FS^XZ", false, ""},
		{"data without FS", "^XA^FO1,1^FDabc^XZ", false, ""},
		{"dm byte escape", "^XA^BXN,4,200^FD_d065BC^FS^XZ", true, "ABC"},
		{"empty", "^XA^XZ", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseFormat(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil && l.Code() != tc.code {
				t.Fatalf("code = %q, want %q", l.Code(), tc.code)
			}
		})
	}
}

func FuzzParseFormat(f *testing.F) {
	f.Add("^XA^FO50,100^BCN,120,Y,N,N,N^FD>;>800069012345678901234^FS^XZ")
	f.Add("^XA^BXN,8,200,,,,_^FD_10106901234567892218__x_110ABC^FS^FH_^FDa_5E^FS^XZ")
	f.Add("^XA^A0N,20^FDx^FS^XZ")
	f.Add("^XA^BCN^FD>")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseFormat(s)
		if err != nil {
			return
		}
		_ = l.Code()
	})
}

func TestStartDevices(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set, err := Start(ctx, Config{}, sim.Layout{Levels: 1, LabelPrinters: 1}, nil) // one aggregation level: each OPC UA server costs seconds under -race
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	d := set.Devices()
	if AggCameraName(3) != "agg_camera_3" {
		t.Fatalf("AggCameraName(3) = %q", AggCameraName(3))
	}
	for _, k := range []string{NamePrinter, NameCamera, NameLabelPrinter, "agg_camera"} {
		if d.Targets[k] == "" {
			t.Errorf("no target for %s: %v", k, d.Targets)
		}
	}
	if len(d.AggCameras) != 1 {
		t.Fatalf("%d agg cameras", len(d.AggCameras))
	}
}
