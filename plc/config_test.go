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
		}, ""},
		{"negative catch-up", modbusCfg, func(c *plc.Config) { c.CatchUp = -1 }, "plc.catch_up"},
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
