package plc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/plc"
)

func modbusCfg() plc.Config {
	return plc.Config{
		Protocol: plc.ProtoModbus,
		Modbus:   plc.ModbusConfig{Address: "127.0.0.1:502"},
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Table: plc.TableInput, Address: 0, Type: plc.TypeU32},
			plc.SigHeartbeat:   {Table: plc.TableInput, Address: 2, Type: plc.TypeU16},
			plc.SigRunning:     {Table: plc.TableDiscreteInput, Address: 0, Type: plc.TypeBool},
			plc.SigVerdict:     {Table: plc.TableHolding, Address: 0, Type: plc.TypeVerdict},
			plc.SigStopRequest: {Table: plc.TableCoil, Address: 0, Type: plc.TypeBool},
		},
	}
}

func opcuaCfg() plc.Config {
	return plc.Config{
		Protocol: plc.ProtoOPCUA,
		OPCUA:    plc.OPCUAConfig{Endpoint: "opc.tcp://127.0.0.1:4840"},
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Node: "ns=1;s=PLC.ItemCounter", Type: plc.TypeU32},
			plc.SigHeartbeat:   {Node: "ns=1;s=PLC.Heartbeat", Type: plc.TypeU32},
			plc.SigRunning:     {Node: "ns=1;i=1001", Type: plc.TypeBool},
			plc.SigVerdict:     {Node: "ns=1;s=PLC.Verdict", Type: plc.TypeVerdict},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		base func() plc.Config
		edit func(*plc.Config)
		want string // substring of the error; "" = valid
	}{
		{"modbus ok", modbusCfg, func(*plc.Config) {}, ""},
		{"opcua ok", opcuaCfg, func(*plc.Config) {}, ""},
		{"no protocol", modbusCfg, func(c *plc.Config) { c.Protocol = "" }, "plc.protocol: missing"},
		{"bad protocol", modbusCfg, func(c *plc.Config) { c.Protocol = "profinet" }, `plc.protocol: "profinet" is not modbus or opcua`},
		{"bad address", modbusCfg, func(c *plc.Config) { c.Modbus.Address = "plc" }, `plc.modbus.address: "plc" is not host:port`},
		{"unit id", modbusCfg, func(c *plc.Config) { c.Modbus.UnitID = 300 }, "plc.modbus.unit_id: 300 is outside 0..255"},
		{"poll period", modbusCfg, func(c *plc.Config) { c.Modbus.PollPeriod = time.Microsecond }, "plc.modbus.poll_period"},
		{"missing verdict", modbusCfg, func(c *plc.Config) { delete(c.Signals, plc.SigVerdict) }, "plc.signals.verdict: missing"},
		{"unknown signal", modbusCfg, func(c *plc.Config) { c.Signals["rejekt"] = plc.Signal{} }, "plc.signals.rejekt: unknown signal"},
		{"register as coil", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigStopRequest] = plc.Signal{Table: plc.TableHolding, Address: 40, Type: plc.TypeBool}
		}, "plc.signals.stop_request: address 40 is a register (holding), not a coil"},
		{"bool on coil ok, u16 on coil not", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigAlarm] = plc.Signal{Table: plc.TableCoil, Address: 1, Type: plc.TypeU16}
		}, "plc.signals.alarm: table coil holds single bits; type must be bool"},
		{"output to input register", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigVerdict] = plc.Signal{Table: plc.TableInput, Address: 10, Type: plc.TypeVerdict}
		}, "plc.signals.verdict: table input is read-only"},
		{"wrong direction", modbusCfg, func(c *plc.Config) {
			s := c.Signals[plc.SigRunning]
			s.Direction = "out"
			c.Signals[plc.SigRunning] = s
		}, "plc.signals.running: direction is out, but running is always an in signal"},
		{"wrong type for signal", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigVerdict] = plc.Signal{Table: plc.TableHolding, Address: 0, Type: plc.TypeU16}
		}, "plc.signals.verdict: type u16 cannot carry verdict (use verdict)"},
		{"unknown type", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigHeartbeat] = plc.Signal{Table: plc.TableInput, Address: 2, Type: "float"}
		}, `plc.signals.heartbeat: type "float" is unknown`},
		{"bit out of range", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigRunning] = plc.Signal{Table: plc.TableInput, Address: 3, Type: plc.TypeBit, Bit: 16}
		}, "plc.signals.running: bit 16 is outside 0..15"},
		{"two bits of one register ok", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigRunning] = plc.Signal{Table: plc.TableInput, Address: 5, Type: plc.TypeBit, Bit: 0}
			c.Signals[plc.SigHeartbeat] = plc.Signal{Table: plc.TableInput, Address: 5, Type: plc.TypeBit, Bit: 1}
		}, ""},
		{"overlap", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigHeartbeat] = plc.Signal{Table: plc.TableInput, Address: 1, Type: plc.TypeU16}
		}, "plc.signals.heartbeat: input 1 overlaps plc.signals.item_trigger"},
		{"word order", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigItemTrigger] = plc.Signal{Table: plc.TableInput, Address: 0, Type: plc.TypeU32, WordOrder: "big"}
		}, `plc.signals.item_trigger: word_order "big" is not high-first or low-first`},
		{"past the end", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigVerdict] = plc.Signal{Table: plc.TableHolding, Address: 65534, Type: plc.TypeVerdict}
		}, "plc.signals.verdict: 4 registers from address 65534 run past 65535"},
		{"node on modbus", modbusCfg, func(c *plc.Config) {
			s := c.Signals[plc.SigRunning]
			s.Node = "ns=1;s=X"
			c.Signals[plc.SigRunning] = s
		}, "plc.signals.running: node \"ns=1;s=X\" is an OPC UA setting"},
		{"opcua endpoint", opcuaCfg, func(c *plc.Config) { c.OPCUA.Endpoint = "http://plc:4840" }, "plc.opcua.endpoint"},
		{"opcua missing node", opcuaCfg, func(c *plc.Config) {
			c.Signals[plc.SigRunning] = plc.Signal{Type: plc.TypeBool}
		}, "plc.signals.running: node missing"},
		{"opcua bad node", opcuaCfg, func(c *plc.Config) {
			c.Signals[plc.SigRunning] = plc.Signal{Type: plc.TypeBool, Node: "PLC.Running"}
		}, `plc.signals.running: node "PLC.Running" is not an OPC UA node id`},
		{"opcua table", opcuaCfg, func(c *plc.Config) {
			c.Signals[plc.SigRunning] = plc.Signal{Type: plc.TypeBool, Node: "ns=1;s=R", Table: plc.TableCoil}
		}, "plc.signals.running: table/address are Modbus settings"},
		{"secure without cert", opcuaCfg, func(c *plc.Config) { c.OPCUA.SecurityPolicy = plc.SecPolicyBasic256Sha256 }, "needs certificate and private_key"},
		{"secure mode without policy", opcuaCfg, func(c *plc.Config) { c.OPCUA.SecurityMode = plc.SecModeSign }, "plc.opcua.security_mode: Sign needs a security_policy"},
		{"bad policy", opcuaCfg, func(c *plc.Config) { c.OPCUA.SecurityPolicy = "Basic128Rsa15" }, `plc.opcua.security_policy: "Basic128Rsa15"`},
		{"secure ok", opcuaCfg, func(c *plc.Config) {
			c.OPCUA.SecurityPolicy, c.OPCUA.SecurityMode = plc.SecPolicyBasic256Sha256, plc.SecModeSign
			c.OPCUA.Certificate, c.OPCUA.PrivateKey = "cert.pem", "key.pem"
			c.OPCUA.Trust.Trusted = []string{"server.crt"}
		}, ""},
		{"secure without trust", opcuaCfg, func(c *plc.Config) {
			c.OPCUA.SecurityPolicy, c.OPCUA.SecurityMode = plc.SecPolicyBasic256Sha256, plc.SecModeSign
			c.OPCUA.Certificate, c.OPCUA.PrivateKey = "cert.pem", "key.pem"
		}, "plc.opcua: security_policy Basic256Sha256 needs trust.trusted certificates or trust.pinning: first-use"},
		{"first-use pinning without a pin file", opcuaCfg, func(c *plc.Config) {
			c.OPCUA.SecurityPolicy, c.OPCUA.SecurityMode = plc.SecPolicyBasic256Sha256, plc.SecModeSign
			c.OPCUA.Certificate, c.OPCUA.PrivateKey = "cert.pem", "key.pem"
			c.OPCUA.Trust.Pinning = "first-use"
		}, "plc.opcua.trust.pin_file: must be set"},
		{"negative catch-up", modbusCfg, func(c *plc.Config) { c.CatchUp = -1 }, "plc.catch_up"},

		// gate_outcome: the PLC's ring of gate outcomes.
		{"gate ring in input registers", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: plc.TypeGateRing, Length: 32}
		}, ""},
		{"gate ring in holding registers, low word first, 40 entries", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableHolding, Address: 100, Type: plc.TypeGateRing, Length: 40, WordOrder: plc.WordLowFirst, Direction: "in"}
		}, ""},
		{"gate ring of one", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: plc.TypeGateRing, Length: 1}
		}, ""},
		{"gate outcome as u32", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: plc.TypeU32}
		}, "plc.signals.gate_outcome: type u32 cannot carry gate_outcome (use gate-ring)"},
		{"gate ring for the item trigger", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigItemTrigger] = plc.Signal{Table: plc.TableInput, Address: 0, Type: plc.TypeGateRing, Length: 4}
		}, "plc.signals.item_trigger: type gate-ring cannot carry item_trigger (use u16 or u32)"},
		{"gate ring without length", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: plc.TypeGateRing}
		}, "plc.signals.gate_outcome: length missing: the number of entries in the PLC's gate ring (1..40)"},
		{"gate ring of 41", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: plc.TypeGateRing, Length: 41}
		}, "plc.signals.gate_outcome: length 41 is outside 1..40"},
		{"gate ring of -3", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: plc.TypeGateRing, Length: -3}
		}, "plc.signals.gate_outcome: length -3 is outside 1..40"},
		{"gate ring in coils", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableCoil, Address: 16, Type: plc.TypeGateRing, Length: 8}
		}, "plc.signals.gate_outcome: table coil holds single bits; a gate-ring needs 26 registers (table input or holding)"},
		{"gate ring in discrete inputs", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableDiscreteInput, Address: 16, Type: plc.TypeGateRing, Length: 8}
		}, "plc.signals.gate_outcome: table discrete-input holds single bits"},
		{"gate ring as an output", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableHolding, Address: 16, Type: plc.TypeGateRing, Length: 8, Direction: "out"}
		}, "plc.signals.gate_outcome: direction is out, but gate_outcome is always an in signal"},
		{"gate ring over the item trigger", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 1, Type: plc.TypeGateRing, Length: 2}
		}, "plc.signals.gate_outcome: input 1 overlaps plc.signals.item_trigger"},
		{"register right after the ring is free", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 10, Type: plc.TypeGateRing, Length: 2} // 10..17
			c.Signals[plc.SigHeartbeat] = plc.Signal{Table: plc.TableInput, Address: 18, Type: plc.TypeU16}
		}, ""},
		{"last register of the ring is taken", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 10, Type: plc.TypeGateRing, Length: 2} // 10..17
			c.Signals[plc.SigHeartbeat] = plc.Signal{Table: plc.TableInput, Address: 17, Type: plc.TypeU16}
		}, "plc.signals.gate_outcome: input 10 overlaps plc.signals.heartbeat"},
		{"gate ring past the end", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 65500, Type: plc.TypeGateRing, Length: 40}
		}, "plc.signals.gate_outcome: 122 registers from address 65500 run past 65535"},
		{"gate ring with a bit", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: plc.TypeGateRing, Length: 2, Bit: 3}
		}, "plc.signals.gate_outcome: bit is only for type bit"},
		{"opcua gate ring", opcuaCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Node: "ns=1;s=PLC.GateOutcomes", Type: plc.TypeGateRing, Length: 32}
		}, ""},
		{"opcua gate ring without length", opcuaCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Node: "ns=1;s=PLC.GateOutcomes", Type: plc.TypeGateRing}
		}, "plc.signals.gate_outcome: length missing"},
		{"opcua gate ring of 41", opcuaCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Node: "ns=1;s=PLC.GateOutcomes", Type: plc.TypeGateRing, Length: 41}
		}, "plc.signals.gate_outcome: length 41 is outside 1..40"},

		// controller_alive: the controller's heartbeat to the PLC.
		{"controller alive counter", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableHolding, Address: 11, Type: plc.TypeU16, Direction: "out"}
		}, ""},
		{"controller alive toggle", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableCoil, Address: 5, Type: plc.TypeBool}
		}, ""},
		{"controller alive as i16", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableHolding, Address: 11, Type: plc.TypeI16}
		}, "plc.signals.controller_alive: type i16 cannot carry controller_alive (use u16 or bool)"},
		{"controller alive as a bool register", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableHolding, Address: 11, Type: plc.TypeBool}
		}, "plc.signals.controller_alive: address 11 is a register (holding), not a coil"},
		{"controller alive in an input register", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableInput, Address: 11, Type: plc.TypeU16}
		}, "plc.signals.controller_alive: table input is read-only"},
		{"controller alive as an input", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableHolding, Address: 11, Type: plc.TypeU16, Direction: "in"}
		}, "plc.signals.controller_alive: direction is in, but controller_alive is always an out signal"},
		{"controller alive on the verdict", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableHolding, Address: 3, Type: plc.TypeU16}
		}, "plc.signals.controller_alive: holding 3 overlaps plc.signals.verdict"},
		{"controller alive on the stop request coil", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Table: plc.TableCoil, Address: 0, Type: plc.TypeBool}
		}, "plc.signals.controller_alive: coil 0 overlaps plc.signals.stop_request"},
		{"opcua controller alive", opcuaCfg, func(c *plc.Config) {
			c.Signals[plc.SigControllerAlive] = plc.Signal{Node: "ns=1;s=PLC.ControllerAlive", Type: plc.TypeU16}
		}, ""},
		{"unknown type lists gate-ring", modbusCfg, func(c *plc.Config) {
			c.Signals[plc.SigGateOutcome] = plc.Signal{Table: plc.TableInput, Address: 16, Type: "ring"}
		}, `type "ring" is unknown (bool, bit, u16, i16, u32, i32, string, verdict, gate-ring)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	good := `
protocol: modbus
modbus: {address: "10.0.0.5:502", unit_id: 3, poll_period: 5ms}
heartbeat_timeout: 1s
signals:
  item_trigger: {table: input, address: 0, type: u32, word_order: low-first}
  heartbeat:    {table: input, address: 2, type: u16}
  running:      {table: discrete-input, address: 0, type: bool, direction: in}
  verdict:      {table: holding, address: 100, type: verdict, direction: out}
  tower_light:  {table: holding, address: 110, type: u16}
`
	c, err := plc.DecodeConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Modbus.PollPeriod != 5*time.Millisecond || c.HeartbeatTimeout != time.Second || c.Signals[plc.SigVerdict].Address != 100 {
		t.Fatalf("decoded %+v", c)
	}
	withNew := good + `
  gate_outcome:     {table: input, address: 16, type: gate-ring, length: 32}
  controller_alive: {table: holding, address: 111, type: u16}
`
	c, err = plc.DecodeConfig([]byte(withNew))
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Signals[plc.SigGateOutcome]; g.Length != 32 || g.Registers() != 98 || plc.Direction(plc.SigGateOutcome) != "in" {
		t.Fatalf("gate_outcome decoded %+v", g)
	}
	if plc.Direction(plc.SigControllerAlive) != "out" {
		t.Fatal("controller_alive is not an output")
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty config"},
		{"protocol: modbus\nmodbus: {adress: x}\n", "field adress not found"},
		{"protocol: [", "plc:"},
		{"protocol: modbus\nmodbus: {address: 'a:1', poll_period: soon}\n", "plc:"},
	} {
		_, err := plc.DecodeConfig([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeConfig(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte("protocol: modbus\nmodbus: {address: '1.2.3.4:502'}\nsignals:\n  item_trigger: {table: input, address: 0, type: u32}\n"))
	f.Add([]byte("protocol: opcua\nopcua: {endpoint: 'opc.tcp://h:4840'}\nsignals:\n  verdict: {node: 'ns=1;s=V', type: verdict}\n"))
	f.Add([]byte("signals: {running: {table: coil, address: -1, type: bit, bit: 99}}"))
	f.Add([]byte("protocol: modbus\nsignals: {verdict: {table: holding, address: 65535, type: string, length: 300}}"))
	f.Add([]byte("protocol: modbus\nmodbus: {address: '1.2.3.4:502'}\nsignals:\n  gate_outcome: {table: input, address: 65400, type: gate-ring, length: 40}\n  controller_alive: {table: coil, address: 3, type: bool}\n"))
	f.Add([]byte("protocol: opcua\nsignals: {gate_outcome: {node: 'ns=1;s=G', type: gate-ring, length: -1}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := plc.DecodeConfig(data)
		if err != nil {
			return
		}
		// Whatever decodes must validate again and stay within its map.
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded config does not validate: %v", err)
		}
		for n, s := range c.Signals {
			if c.Protocol == plc.ProtoModbus && s.Address+s.Registers() > 65536 {
				t.Fatalf("%s runs past the address space", n)
			}
		}
	})
}

func TestCheckOutputValue(t *testing.T) {
	tests := []struct {
		o    plc.Output
		v    int
		want string // "" = valid
	}{
		{plc.OutStopRequest, 1, ""},
		{plc.OutStopRequest, 2, "stop_request takes 0 or 1, not 2"},
		{plc.OutTowerLight, 3, ""},
		{plc.OutTowerLight, 4, "tower_light takes 0..3"},
		{plc.OutControllerAlive, 0, ""},
		{plc.OutControllerAlive, 65535, ""},
		{plc.OutControllerAlive, 65536, "controller_alive takes 0..65535 (a counter), not 65536"},
		{plc.OutControllerAlive, -1, "controller_alive takes 0..65535"},
		{plc.Output(99), 0, "unknown output 99"},
	}
	for _, tt := range tests {
		err := plc.CheckOutputValue(tt.o, tt.v)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckOutputValue(%s, %d) = %v, want %q", tt.o, tt.v, err, tt.want)
		}
	}
}

func TestGateStrings(t *testing.T) {
	for o, want := range map[plc.GateOutcome]string{plc.GatePassed: "passed", plc.GateRejected: "rejected",
		plc.GateRejectFailed: "reject-failed", plc.GateBinFull: "bin-full", 0: "GateOutcome(0)", 5: "GateOutcome(5)"} {
		if o.String() != want {
			t.Errorf("%d: %q, want %q", int(o), o, want)
		}
	}
	for e, want := range map[string]plc.Event{
		"gate #7 item 1007 rejected": {Kind: plc.EventGate, Seq: 7, Item: 1007, Outcome: plc.GateRejected},
		"gate-gap #1..#6":            {Kind: plc.EventGateGap, From: 1, To: 6},
		"gate-reset to count 0":      {Kind: plc.EventGateReset},
	} {
		if want.String() != e {
			t.Errorf("%q, want %q", want, e)
		}
	}
	if plc.OutControllerAlive.String() != plc.SigControllerAlive || plc.EventGateError.String() != "gate-error" {
		t.Error("names")
	}
}
