package opcua

import (
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/plc"
)

// Whatever value the ring node carries, the driver makes events of it, and
// nonsense is an error event naming what was wrong, never a panic.
func TestGateEventsOfAnyValue(t *testing.T) {
	cfg := plc.Config{
		Protocol: plc.ProtoOPCUA,
		OPCUA:    plc.OPCUAConfig{Endpoint: "opc.tcp://127.0.0.1:4840"},
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Node: "ns=1;s=I", Type: plc.TypeU32},
			plc.SigHeartbeat:   {Node: "ns=1;s=H", Type: plc.TypeU32},
			plc.SigRunning:     {Node: "ns=1;s=R", Type: plc.TypeBool},
			plc.SigVerdict:     {Node: "ns=1;s=V", Type: plc.TypeVerdict},
			plc.SigGateOutcome: {Node: "ns=1;s=G", Type: plc.TypeGateRing, Length: 2},
		},
	}
	d, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{[]uint32{2, 11, 1, 12, 2}, "gate #1 item 11 passed\ngate #2 item 12 rejected"},
		{[]int32{2, 11, 1, 12, 2}, "gate-error: gate_outcome ns=1;s=G: value is []int32, not UInt32[5] {count, item, outcome, …}"},
		{uint32(2), "gate-error: gate_outcome ns=1;s=G: value is uint32, not UInt32[5]"},
		{nil, "gate-error: gate_outcome ns=1;s=G: value is <nil>"},
		{[]uint32{}, "gate-error: gate_outcome ns=1;s=G: gate ring of 2 entries: array of 0 values, want 5"},
		{[]uint32{2, 11, 0, 12, 5}, "gate-error: gate outcome #1 (ring slot 0, item 11): value 0 is not 1 (passed)"},
	} {
		var got []string
		for _, e := range d.gateEvents(d.newState(), tc.v, time.Now()) {
			got = append(got, e.String())
		}
		if g := strings.Join(got, "\n"); !strings.HasPrefix(g, tc.want) {
			t.Errorf("%#v:\n got %s\nwant %s", tc.v, g, tc.want)
		}
	}
}
