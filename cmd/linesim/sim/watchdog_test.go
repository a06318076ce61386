package sim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	mb "github.com/simonvetter/modbus"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// aliveWriter plays a controller's watchdog output: it changes the alive
// value every 20 ms through write until stopped.
type aliveWriter struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startAlive(t *testing.T, from uint16, write func(uint16) error) *aliveWriter {
	w := &aliveWriter{stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for v := from; ; v++ {
			if err := write(v); err != nil {
				t.Errorf("write alive %d: %v", v, err)
				return
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *aliveWriter) halt() { close(w.stop); w.wg.Wait() }

func uaWriteAlive(c *opcua.Client) func(uint16) error {
	return func(v uint16) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
			NodeID:      ua.MustParseNodeID("ns=1;s=" + sim.NodeControllerAlive),
			AttributeID: ua.AttributeIDValue,
			Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
		}}})
		if err != nil {
			return err
		}
		if res.Results[0] != ua.StatusOK {
			return res.Results[0]
		}
		return nil
	}
}

// The controller watchdog: armed by the first alive write; when the value
// stops changing the infeed stops and the PLC shows controller_lost; a
// change releases it, and the infeed resumes only if no stop is requested.
func TestControllerWatchdog(t *testing.T) {
	wd := 300 * time.Millisecond
	s := startSim(t, sim.Config{Seed: 1, Rate: 3000, ControllerWatchdog: &wd})
	ep := s.Endpoints()
	m := modbusClient(t, ep.Modbus)
	u := uaClient(t, ep.PLCOPCUA)
	running := func() bool {
		di, err := m.ReadDiscreteInputs(sim.DIRunning, 1)
		if err != nil {
			t.Fatal(err)
		}
		return di[0]
	}
	if st := s.PLC(); st.WatchdogArmed || st.ControllerLost {
		t.Fatalf("watchdog armed before any write: %+v", st)
	}

	// A controller writing over Modbus; the line runs.
	w := startAlive(t, 1, func(v uint16) error { return m.WriteRegister(sim.HRControllerAlive, v) })
	waitFor(t, "the line running with the watchdog armed", func() bool {
		st := s.PLC()
		return st.WatchdogArmed && st.ItemCounter >= 3 && running()
	})
	// The controller dies: the value stops changing.
	w.halt()
	waitFor(t, "the watchdog to stop the infeed", func() bool { return s.PLC().ControllerLost && !running() })
	res, err := http.Get(strings.TrimSuffix(ep.HTTP, "/groundtruth") + "/plc")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil || st["controller_lost"] != true {
		t.Fatalf("GET /plc: %v %v", st, err)
	}

	// A new controller writes over OPC UA: released, the infeed resumes.
	stopped := s.PLC().ItemCounter
	w = startAlive(t, 1000, uaWriteAlive(u))
	waitFor(t, "the infeed to resume", func() bool { return s.PLC().ItemCounter > stopped })
	if regs, err := m.ReadRegisters(sim.HRControllerAlive, 1, mb.HOLDING_REGISTER); err != nil || regs[0] < 1000 {
		t.Fatalf("holding 11 = %v %v, want the value written over OPC UA", regs, err)
	}

	// With a stop request, a released watchdog does not restart the infeed.
	if err := m.WriteCoil(sim.CoilStopRequest, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stop request to stop the infeed", func() bool { return !running() })
	w.halt()
	waitFor(t, "the watchdog to trip", func() bool { return s.PLC().ControllerLost })
	if err := uaWriteAlive(u)(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watchdog to release", func() bool { return !s.PLC().ControllerLost })
	// Running is set only where the infeed spawns a unit, and a stop is
	// requested: it cannot be true now.
	if st := s.PLC(); st.Running || !st.StopRequest {
		t.Fatalf("released with a stop request: %+v", st)
	}
	stopped = s.PLC().ItemCounter
	w = startAlive(t, 2000, func(v uint16) error { return m.WriteRegister(sim.HRControllerAlive, v) })
	defer w.halt()
	if err := m.WriteCoil(sim.CoilStopRequest, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the infeed to resume after the stop request is cleared", func() bool { return s.PLC().ItemCounter > stopped && running() })
}

// Off (0) never trips; a wrong type over OPC UA is refused.
func TestControllerWatchdogOffAndBadWrites(t *testing.T) {
	off := time.Duration(0)
	s := startManual(t, sim.Config{Seed: 1, ControllerWatchdog: &off, Listen: sim.Listen{HTTP: "off"}})
	u := uaClient(t, s.Endpoints().PLCOPCUA)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := u.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      ua.MustParseNodeID("ns=1;s=" + sim.NodeControllerAlive),
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(uint32(5))},
	}}})
	if err != nil || res.Results[0] != ua.StatusBadTypeMismatch {
		t.Fatalf("UInt32 write to %s: %v %v, want BadTypeMismatch", sim.NodeControllerAlive, res, err)
	}
	if err := uaWriteAlive(u)(5); err != nil {
		t.Fatal(err)
	}
	if st := s.PLC(); st.ControllerAlive != 5 || st.WatchdogArmed || st.ControllerLost {
		t.Fatalf("watchdog off: %+v", st)
	}
}
