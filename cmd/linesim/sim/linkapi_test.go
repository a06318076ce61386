package sim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// POST /link: bad requests are refused with what was wrong; a garbled PLC
// answers nothing a Modbus client can read, a restored one answers again.
func TestLinkFaultsOverHTTP(t *testing.T) {
	s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Listen: sim.Listen{PLCOPCUA: "off"}})
	base := strings.TrimSuffix(s.Endpoints().HTTP, "/groundtruth")
	post := func(body string) (int, string) {
		t.Helper()
		res, err := http.Post(base+"/link", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct {
		body, want string
		status     int
	}{
		{`{"device":"toaster","fault":"cut"}`, `device \"toaster\" is unknown`, 400},
		{`{"device":"plc","fault":"melt"}`, `fault \"melt\" is unknown`, 400},
		{`{"device":"plc","fault":"slow"}`, `slow needs a delay`, 400},
		{`{"device":"camera","fault":"freeze-heartbeat"}`, `the PLC's`, 400},
		{`{"device":"plc","fault":"cut","x":1}`, `unknown field`, 400},
		{`{"device":"plc","fault":"cut"} []`, `more after the object`, 400},
	} {
		if status, got := post(tc.body); status != tc.status || !strings.Contains(got, tc.want) {
			t.Errorf("POST /link %s: %d %s, want %d with %s", tc.body, status, got, tc.status, tc.want)
		}
	}
	m := modbusClient(t, s.Endpoints().Modbus)
	if _, err := m.ReadRegister(0, 0); err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	if status, got := post(`{"device":"plc","fault":"garble"}`); status != 200 || !strings.Contains(got, "plc_modbus") {
		t.Fatalf("garble: %d %s", status, got)
	}
	if _, err := m.ReadRegister(0, 0); err == nil {
		t.Fatal("a garbled PLC answered a readable register")
	}
	if status, got := post(`{"device":"plc","fault":"restore"}`); status != 200 {
		t.Fatalf("restore: %d %s", status, got)
	}
	m2 := modbusClient(t, s.Endpoints().Modbus)
	if _, err := m2.ReadRegister(0, 0); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}
