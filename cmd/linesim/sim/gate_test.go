package sim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// Each gate fault, played on units with known verdicts: the PLC's gate ring
// read over Modbus (one FC04) and over OPC UA says what physically happened,
// and agrees with the ground truth.
func TestGateFaultsInTheRing(t *testing.T) {
	tests := []struct {
		name     string
		faults   []sim.Fault
		verdicts []uint16 // by item from 1; 0 = none
		want     []string // "item:outcome" per outcome, in order
		fates    map[uint32]sim.Fate
		escaped  uint32
	}{
		{
			name:     "late-pass on the next pass at or after the drawn unit",
			faults:   []sim.Fault{{Kind: sim.FaultLatePass, At: 2}},
			verdicts: []uint16{pass, reject, pass, pass},
			want:     []string{"1:passed", "2:rejected", "3:rejected", "4:passed"},
			fates:    map[uint32]sim.Fate{1: sim.FateGood, 2: sim.FateRejected, 3: sim.FateRejected, 4: sim.FateGood},
		},
		{
			name:     "reject-failed on the next unit to be rejected",
			faults:   []sim.Fault{{Kind: sim.FaultRejectFailed, At: 2}},
			verdicts: []uint16{pass, pass, reject, 0, reject},
			want:     []string{"1:passed", "2:passed", "3:reject-failed", "4:rejected", "5:rejected"},
			fates:    map[uint32]sim.Fate{3: sim.FateEscaped, 4: sim.FateRejected},
			escaped:  1,
		},
		{
			name:     "reject-failed on a unit without a verdict",
			faults:   []sim.Fault{{Kind: sim.FaultRejectFailed, At: 1}},
			verdicts: []uint16{pass, 0, reject},
			want:     []string{"1:passed", "2:reject-failed", "3:rejected"},
			fates:    map[uint32]sim.Fate{2: sim.FateEscaped, 3: sim.FateRejected},
			escaped:  1,
		},
		{
			name:     "bin-full from the drawn unit until emptied",
			faults:   []sim.Fault{{Kind: sim.FaultBinFull, At: 3}},
			verdicts: []uint16{reject, pass, pass, reject, 0, pass},
			want:     []string{"1:rejected", "2:passed", "3:passed", "4:bin-full", "5:bin-full", "6:passed"},
			fates:    map[uint32]sim.Fate{1: sim.FateRejected, 4: sim.FateEscaped, 5: sim.FateEscaped, 6: sim.FateGood},
			escaped:  2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a simulator each; mostly waiting on the ring
			s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Faults: tc.faults})
			ep := s.Endpoints()
			m := modbusClient(t, ep.Modbus)
			u := uaClient(t, ep.PLCOPCUA)
			results := map[uint32]uint16{}
			for i, r := range tc.verdicts {
				results[uint32(i+1)] = r
			}
			writeVerdicts(t, m, results)
			if err := s.Feed(t.Context(), len(tc.verdicts)); err != nil {
				t.Fatal(err)
			}
			n := uint32(len(tc.want))
			waitFor(t, "the outcomes over Modbus", func() bool { c, _ := ringModbus(t, m); return c == n })
			waitFor(t, "the outcomes over OPC UA", func() bool { c, _ := ringOPCUA(t, u); return c == n })
			mc, mring := ringModbus(t, m)
			uc, uring := ringOPCUA(t, u)
			if got := outcomesFromRing(mc, mring, 1); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Modbus ring %v, want %v", got, tc.want)
			}
			if got := outcomesFromRing(uc, uring, 1); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("OPC UA ring %v, want %v", got, tc.want)
			}
			gt := s.GroundTruth()
			if err := gt.Check(); err != nil {
				t.Fatalf("ground truth: %v", err)
			}
			for i, w := range tc.want {
				u := gt.Units[i]
				if got := fmt.Sprintf("%d:%s", u.Item, u.Gate); got != w {
					t.Errorf("ground truth unit %d gate %s, ring says %s", u.Item, got, w)
				}
				if f, ok := tc.fates[u.Item]; ok && u.Fate != f {
					t.Errorf("unit %d fate %s, want %s", u.Item, u.Fate, f)
				}
			}
			if st := s.PLC(); st.Escaped != tc.escaped || st.GateCount != n || int(st.Good+st.Rejected+st.Escaped) != len(tc.want) {
				t.Errorf("PLC counters %+v, want %d escaped of %d", st, tc.escaped, n)
			}
			if gt.Summary.Escaped != int(tc.escaped) {
				t.Errorf("summary escaped %d, want %d", gt.Summary.Escaped, tc.escaped)
			}
		})
	}
}

// The bin stays full until the operator empties it (POST /bin/empty); then
// rejects go into it again.
func TestBinFullUntilEmptied(t *testing.T) {
	s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Listen: sim.Listen{PLCOPCUA: "off"},
		Faults: []sim.Fault{{Kind: sim.FaultBinFull, At: 2}}})
	ep := s.Endpoints()
	m := modbusClient(t, ep.Modbus)
	writeVerdicts(t, m, map[uint32]uint16{1: reject, 2: pass, 3: reject, 4: reject})
	if err := s.Feed(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 outcomes", func() bool { c, _ := ringModbus(t, m); return c == 3 })
	if !s.PLC().BinFull {
		t.Fatal("PLC does not show the bin full")
	}
	base := strings.TrimSuffix(ep.HTTP, "/groundtruth")
	res, err := http.Post(base+"/bin/empty", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var bin sim.BinReport
	if err := json.NewDecoder(res.Body).Decode(&bin); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST /bin/empty: %s %v", res.Status, err)
	}
	if want := (sim.BinReport{Units: 1, Items: []uint32{1}, WasFull: true}); !reflect.DeepEqual(bin, want) {
		t.Fatalf("bin emptied %+v, want %+v", bin, want)
	}
	if s.PLC().BinFull {
		t.Fatal("bin still full after emptying")
	}
	if err := s.Feed(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 outcomes", func() bool { c, _ := ringModbus(t, m); return c == 4 })
	c, ring := ringModbus(t, m)
	if got, want := outcomesFromRing(c, ring, 1), []string{"1:rejected", "2:passed", "3:bin-full", "4:rejected"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ring %v, want %v", got, want)
	}
}

// More outcomes than the ring holds: outcome number s is in slot (s-1)%32,
// and a unit that fell off before the gate has none (so outcome numbers
// and item ids part). One FC04 of the whole ring is one snapshot.
func TestGateRingWraps(t *testing.T) {
	s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Listen: sim.Listen{HTTP: "off"},
		Faults: []sim.Fault{{Kind: sim.FaultMissing, At: 5}}})
	ep := s.Endpoints()
	m := modbusClient(t, ep.Modbus)
	u := uaClient(t, ep.PLCOPCUA)
	const units = 45
	results := map[uint32]uint16{}
	var want []string // every outcome, in order
	for i := uint32(1); i <= units; i++ {
		r := uint16(pass)
		if i%3 == 0 {
			r = reject
		}
		results[i] = r
		if i == 5 {
			continue
		}
		o := sim.GatePassed
		if r == reject {
			o = sim.GateRejected
		}
		want = append(want, fmt.Sprintf("%d:%s", i, o))
	}
	writeVerdicts(t, m, results)
	if err := s.Feed(t.Context(), units); err != nil {
		t.Fatal(err)
	}
	n := uint32(len(want))
	waitFor(t, "every outcome", func() bool { c, _ := ringOPCUA(t, u); return c == n })
	for name, read := range map[string]func() (uint32, [sim.GateRingSize]sim.GateRecord){
		"modbus": func() (uint32, [sim.GateRingSize]sim.GateRecord) { return ringModbus(t, m) },
		"opcua":  func() (uint32, [sim.GateRingSize]sim.GateRecord) { return ringOPCUA(t, u) },
	} {
		c, ring := read()
		if c != n {
			t.Fatalf("%s: count %d, want %d", name, c, n)
		}
		if got := outcomesFromRing(c, ring, c-sim.GateRingSize+1); !reflect.DeepEqual(got, want[len(want)-sim.GateRingSize:]) {
			t.Errorf("%s: last %d outcomes %v, want %v", name, sim.GateRingSize, got, want[len(want)-sim.GateRingSize:])
		}
	}
	count, last := s.GateOutcomes()
	if count != n || len(last) != sim.GateRingSize || last[0].Item != 14 || last[len(last)-1].Item != units {
		t.Fatalf("GateOutcomes() = %d, %v", count, last)
	}
	if err := s.GroundTruth().Check(); err != nil {
		t.Fatal(err)
	}
}

// The Modbus map's bounds: the ring ends at IRCount; holding register 11
// is the controller's alive value, readable back, and 12 is past the end.
func TestModbusMapBounds(t *testing.T) {
	s := startManual(t, sim.Config{Seed: 1, Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off"}})
	m := modbusClient(t, s.Endpoints().Modbus)
	if _, err := m.ReadRegisters(0, sim.IRCount, mb.INPUT_REGISTER); err != nil {
		t.Fatalf("read the whole input table: %v", err)
	}
	if _, err := m.ReadRegisters(sim.IRCount-1, 2, mb.INPUT_REGISTER); err == nil {
		t.Error("read past the input table accepted")
	}
	if err := m.WriteRegisters(sim.HRTowerLight, []uint16{2, 7}); err != nil {
		t.Fatalf("tower light + alive in one FC16: %v", err)
	}
	if err := m.WriteRegisters(sim.HRTowerLight, []uint16{9, 8}); err == nil {
		t.Error("tower light 9 accepted")
	}
	regs, err := m.ReadRegisters(sim.HRTowerLight, 2, mb.HOLDING_REGISTER)
	if err != nil || regs[0] != 2 || regs[1] != 7 {
		t.Fatalf("holding 10..11 = %v %v, want [2 7] (a refused write changes nothing)", regs, err)
	}
	if err := m.WriteRegister(sim.HRCount, 1); err == nil {
		t.Error("write past the holding table accepted")
	}
	if err := m.WriteRegister(5, 1); err == nil {
		t.Error("write to unmapped holding 5 accepted")
	}
	if st := s.PLC(); st.ControllerAlive != 7 || !st.WatchdogArmed || st.TowerLight != 2 {
		t.Fatalf("PLC state %+v", st)
	}
}

// The bodies the operator's actions accept: nothing or {}.
func TestOperatorActionsOverHTTP(t *testing.T) {
	s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Listen: sim.Listen{PLCOPCUA: "off"}})
	m := modbusClient(t, s.Endpoints().Modbus)
	writeVerdicts(t, m, map[uint32]uint16{1: reject, 2: pass, 3: reject})
	if err := s.Feed(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 outcomes", func() bool { return s.PLC().GateCount == 3 })
	base := strings.TrimSuffix(s.Endpoints().HTTP, "/groundtruth")
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: content type %q", method, path, ct)
		}
		var v map[string]any
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return res.StatusCode, v
	}
	tests := []struct {
		method, path, body string
		status             int
		want               string // in the JSON answer
	}{
		{"GET", "/purge", "", http.StatusMethodNotAllowed, "only POST"},
		{"PUT", "/bin/empty", "", http.StatusMethodNotAllowed, "only POST"},
		{"POST", "/purge", `{"force": true}`, http.StatusBadRequest, "unknown field"},
		{"POST", "/bin/empty", `[]`, http.StatusBadRequest, "body must be empty or {}"},
		{"POST", "/bin/empty", `{} {}`, http.StatusBadRequest, "more after the object"},
		{"POST", "/bin/empty", `{}`, http.StatusOK, `"items":[1,3]`},
		{"POST", "/bin/empty", ``, http.StatusOK, `"items":[]`},
		{"POST", "/purge", ``, http.StatusOK, `"groups_reworked":[]`},
	}
	for _, tc := range tests {
		status, v := do(tc.method, tc.path, tc.body)
		b, _ := json.Marshal(v)
		if status != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s %q: %d %s, want %d with %s", tc.method, tc.path, tc.body, status, b, tc.status, tc.want)
		}
	}
}

// A group read by the aggregation camera but still on its way to the
// labeller is taken off by the purge, and the purge says so.
func TestPurgeTakesGroupsOnTheirWay(t *testing.T) {
	s := startManual(t, sim.Config{Seed: 1, Rate: 6000, Ratios: []int{2}, Positions: sim.Positions{Labeler: time.Hour},
		Listen: sim.Listen{HTTP: "off", PLCOPCUA: "off"}})
	m := modbusClient(t, s.Endpoints().Modbus)
	writeVerdicts(t, m, map[uint32]uint16{1: pass, 2: pass, 3: reject})
	if err := s.Feed(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "group 1 read", func() bool {
		gt := s.GroundTruth()
		return len(gt.Groups) == 1 && gt.Groups[0].State == "read" && gt.PLC.GateCount == 3
	})
	rep, err := s.PurgeLine(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in label printer printed group 1's label when it was read.
	if !reflect.DeepEqual(rep.Groups, []uint32{1}) || !reflect.DeepEqual(rep.Bin.Items, []uint32{3}) || !reflect.DeepEqual(rep.Labels, []string{"SIML2-000001"}) {
		t.Fatalf("purge %+v, want group 1, its label and unit 3 from the bin", rep)
	}
	gt := s.GroundTruth()
	if g := gt.Groups[0]; g.State != "done" || g.Label != "" || gt.Summary.Unlabeled != 1 {
		t.Fatalf("purged group %+v", g)
	}
	if err := gt.Check(); err != nil {
		t.Fatal(err)
	}
}
