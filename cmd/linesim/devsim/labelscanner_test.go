package devsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

func TestLabelScannerRecords(t *testing.T) {
	l, err := NewLabelScanner(CameraConfig{}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Scan(7, "LBL7", []string{"A", "", "B"})
	l.Scan(8, "", []string{"C", "D"}) // a REWORK label, or a label-noread
	ring, _ := l.recs.rings.Get().([]string)
	want := []ResultRecord{
		{Seq: 1, Item: 7, Level: 2, Codes: []string{"LBL7", "A", "B"}, Grade: "", Pass: true},
		{Seq: 2, Item: 8, Level: 2, Codes: []string{"C", "D"}, Grade: "", Pass: false},
	}
	if len(ring) != len(want) {
		t.Fatalf("ring %v", ring)
	}
	for i, w := range want {
		var r ResultRecord
		if err := json.Unmarshal([]byte(ring[i]), &r); err != nil {
			t.Fatal(err)
		}
		r.At = time.Time{}
		if !reflect.DeepEqual(r, w) {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	if _, ok := l.srv.Variable("ns=1;s=LabelScanner.LastResult"); !ok {
		t.Error("no node LabelScanner.LastResult")
	}
	if LabelScannerObject(3) != "LabelScanner3" || LabelScannerName(3) != "label_scanner_3" || LabelScannerName(2) != "label_scanner" {
		t.Errorf("names %s %s %s", LabelScannerObject(3), LabelScannerName(3), LabelScannerName(2))
	}
	for _, bad := range []struct {
		cfg   CameraConfig
		level int
	}{{CameraConfig{}, 1}, {CameraConfig{}, 10}, {CameraConfig{Trigger: "method"}, 2}, {CameraConfig{Ring: -1}, 2}} {
		if _, err := NewLabelScanner(bad.cfg, bad.level, nil); err == nil {
			t.Errorf("NewLabelScanner(%+v, %d) accepted", bad.cfg, bad.level)
		}
	}
}

func TestConfigValidateLabelScanner(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{LabelScanner: CameraConfig{Ring: 16, Listen: "127.0.0.1:4844"}}, ""},
		{"method", Config{LabelScanner: CameraConfig{Trigger: "method"}}, "devsim.label_scanner.trigger"},
		{"ring", Config{LabelScanner: CameraConfig{Ring: -2}}, "devsim.label_scanner.ring"},
		{"listen", Config{LabelScanner: CameraConfig{Listen: "4844"}}, "devsim.label_scanner.listen"},
		{"agg camera named", Config{AggCamera: CameraConfig{LowGrade: "Q"}}, "devsim.agg_camera.low_grade"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// scannerResults reads the label scanner's Results ring over OPC UA.
func scannerResults(t *testing.T, c *opcua.Client, object string) []ResultRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rr, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
		NodeID: ua.MustParseNodeID("ns=1;s=" + object + "." + SuffixResults), AttributeID: ua.AttributeIDValue}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := rr.Results[0].Value.Value().([]string)
	var recs []ResultRecord
	for _, s := range raw {
		var r ResultRecord
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// startManual starts a simulated line with a manual infeed on the devices
// factory makes; it closes when the test ends.
func startManual(t *testing.T, cfg sim.Config, factory sim.DeviceFactory) *sim.Sim {
	t.Helper()
	s, err := sim.New(cfg, nil, sim.ManualInfeed(), sim.WithDevices(factory))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// A label falls off group 3 (label-misapply): group 3 takes group 4's
// label and every later group is one off, as the label scanner's records
// over OPC UA show; group 2's label is not read (label-noread). The
// operator's purge (POST /purge) takes the waiting group off and the next
// groups carry their own labels again.
func TestLabelScannerMisapplyAndPurge(t *testing.T) {
	var scanner *LabelScanner
	factory := func(ctx context.Context, layout sim.Layout) (*sim.Devices, error) {
		d := sim.StandIns(layout) // the stand-in label printer prints SIML2-00000N when group N is read
		var err error
		if scanner, err = NewLabelScanner(CameraConfig{}, 2, nil); err != nil {
			return nil, err
		}
		if err := scanner.Start(ctx); err != nil {
			return nil, err
		}
		d.LabelScanners = []sim.LabelScanner{scanner}
		d.Targets[NameLabelScanner] = scanner.Addr()
		d.Close = scanner.Close
		return d, nil
	}
	s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Ratios: []int{2}, LabelTimeout: 30 * time.Second,
		Listen: sim.Listen{PLCOPCUA: "off"},
		Faults: []sim.Fault{{Kind: sim.FaultLabelMisapply, At: 3}, {Kind: sim.FaultLabelNoRead, At: 2}}}, factory)
	ep := s.Endpoints()
	if ep.LabelScanner == "" || len(ep.LabelScanners) != 1 || ep.LabelScanners[0] != ep.LabelScanner {
		t.Fatalf("endpoints %+v", ep)
	}
	m, err := mb.NewClient(&mb.ClientConfiguration{URL: "tcp://" + ep.Modbus, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for item := uint32(1); item <= 14; item++ { // every unit passes: the PLC keeps the verdicts until the units come
		if err := m.WriteRegisters(sim.HRVerdict, []uint16{0, uint16(item), 1, 0}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := opcua.NewClient(ep.LabelScanner, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	group := func(id uint32) sim.GroupTruth {
		for _, g := range s.GroundTruth().Groups {
			if g.ID == id {
				return g
			}
		}
		return sim.GroupTruth{}
	}
	// Ten units: groups 1..5. Group 5 waits at the labeller for a label
	// that is printed only when group 6 is read.
	if err := s.Feed(t.Context(), 10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 scans", func() bool { return len(scannerResults(t, c, "LabelScanner")) == 4 })
	lbl := func(n int) string { return fmt.Sprintf("SIML2-%06d", n) }
	code := func(n int) string { return fmt.Sprintf("SIM%08d", n) }
	type scan struct {
		item  uint32
		codes string
		pass  bool
	}
	want := []scan{
		{1, strings.Join([]string{lbl(1), code(1), code(2)}, ","), true},
		{2, strings.Join([]string{code(3), code(4)}, ","), false}, // label-noread
		{3, strings.Join([]string{lbl(4), code(5), code(6)}, ","), true},
		{4, strings.Join([]string{lbl(5), code(7), code(8)}, ","), true},
	}
	check := func(recs []ResultRecord, want []scan) {
		t.Helper()
		var got []scan
		for _, r := range recs {
			got = append(got, scan{r.Item, strings.Join(r.Codes, ","), r.Pass})
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanner published\n%v\nwant\n%v", got, want)
		}
	}
	check(scannerResults(t, c, "LabelScanner"), want)
	if g := group(3); g.LabelLost != lbl(3) || g.Label != lbl(4) || !g.Misapplied || !reflect.DeepEqual(g.LabelFaults, []sim.FaultKind{sim.FaultLabelMisapply}) {
		t.Fatalf("group 3 %+v", g)
	}
	if g := group(2); g.LabelRead || g.Label != lbl(2) || g.Misapplied || strings.Join(g.Scanned, ",") != want[1].codes {
		t.Fatalf("group 2 %+v", g)
	}
	if g := group(4); !g.Misapplied || !g.LabelRead || g.Scanned[0] != lbl(5) {
		t.Fatalf("group 4 %+v", g)
	}
	if g := group(5); g.State != "read" || g.Label != "" {
		t.Fatalf("group 5 %+v, want waiting at the labeller", g)
	}

	// The operator purges the line.
	res, err := http.Post(strings.TrimSuffix(ep.HTTP, "/groundtruth")+"/purge", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var pr sim.PurgeReport
	err = json.NewDecoder(res.Body).Decode(&pr)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST /purge: %s %v", res.Status, err)
	}
	if !reflect.DeepEqual(pr.Groups, []uint32{5}) || len(pr.Labels) != 0 || pr.Bin.Units != 0 {
		t.Fatalf("purge took %+v, want group 5 and no label", pr)
	}
	// Four more units: groups 6 and 7 carry their own labels again.
	if err := s.Feed(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "6 scans", func() bool { return len(scannerResults(t, c, "LabelScanner")) == 6 })
	check(scannerResults(t, c, "LabelScanner"), append(want,
		scan{6, strings.Join([]string{lbl(6), code(11), code(12)}, ","), true},
		scan{7, strings.Join([]string{lbl(7), code(13), code(14)}, ","), true}))
	gt := s.GroundTruth()
	if err := gt.Check(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{6, 7} {
		if g := group(id); g.Misapplied || g.Label != lbl(int(id)) {
			t.Fatalf("group %d after the purge %+v", id, g)
		}
	}
	if g := group(5); g.State != "done" || g.Label != "" || g.Scanned != nil {
		t.Fatalf("purged group 5 %+v", g)
	}
	sum := gt.Summary
	if sum.Scans != 6 || sum.LabelsLost != 1 || sum.Misapplied != 2 || sum.Unlabeled != 1 ||
		sum.Faults[string(sim.FaultLabelMisapply)] != 1 || sum.Faults[string(sim.FaultLabelNoRead)] != 1 {
		t.Fatalf("summary %+v", sum)
	}
}
