package devsim

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// POST /link names every level's aggregation camera and label scanner
// (agg_camera_3, …), not only level 2's, and cuts the one named: level 3's
// camera refuses connections while level 2's still takes them.
func TestLinkFaultsPerLevel(t *testing.T) {
	s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Ratios: []int{5, 4}, Listen: sim.Listen{PLCOPCUA: "off"}}, Factory(Config{}, nil))
	base := strings.TrimSuffix(s.Endpoints().HTTP, "/groundtruth")
	post := func(body string) (int, string) {
		t.Helper()
		res, err := http.Post(base+"/link", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	ep := s.Endpoints()
	if len(ep.AggCameras) < 2 || len(ep.LabelScanners) < 2 {
		t.Fatalf("two aggregated levels, endpoints %+v", ep)
	}
	dial := func(endpoint string) error {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(endpoint, "opc.tcp://"), time.Second)
		if err == nil {
			// The proxy accepts and then closes a cut link: read to see.
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err = c.Read(make([]byte, 1))
			c.Close()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return nil // open, waiting for the client's hello: linked
			}
		}
		return err
	}
	if err := dial(ep.AggCameras[1]); err != nil {
		t.Fatalf("level 3's camera before the fault: %v", err)
	}
	for _, d := range []string{"agg_camera_3", "label_scanner_3"} {
		if status, got := post(`{"device":"` + d + `","fault":"cut"}`); status != 200 || !strings.Contains(got, d) {
			t.Fatalf("cut %s: %d %s", d, status, got)
		}
	}
	if err := dial(ep.AggCameras[1]); err == nil {
		t.Error("level 3's camera still linked after its cut")
	}
	if err := dial(ep.AggCameras[0]); err != nil {
		t.Errorf("level 2's camera cut with level 3's: %v", err)
	}
	if status, got := post(`{"device":"agg_camera_4","fault":"cut"}`); status != 400 || !strings.Contains(got, "agg_camera_3") {
		t.Errorf("a level the line does not have: %d %s, want 400 listing the known devices", status, got)
	}
	if status, got := post(`{"device":"agg_camera_3","fault":"restore"}`); status != 200 {
		t.Fatalf("restore: %d %s", status, got)
	}
	if err := dial(ep.AggCameras[1]); err != nil {
		t.Errorf("level 3's camera after restore: %v", err)
	}
}
