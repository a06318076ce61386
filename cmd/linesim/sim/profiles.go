package sim

import (
	"github.com/tracline/tracline/plc"
)

// ModbusProfile is the plc.Config that maps the simulated PLC over Modbus
// TCP at addr (Endpoints().Modbus) — the same map docs/devices.md gives.
func ModbusProfile(addr string) plc.Config {
	return plc.Config{
		Protocol: plc.ProtoModbus,
		Modbus:   plc.ModbusConfig{Address: addr, UnitID: ModbusUnitID},
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Table: plc.TableInput, Address: IRItemCounter, Type: plc.TypeU32, WordOrder: plc.WordHighFirst},
			plc.SigHeartbeat:   {Table: plc.TableInput, Address: IRHeartbeat, Type: plc.TypeU16},
			plc.SigRunning:     {Table: plc.TableDiscreteInput, Address: DIRunning, Type: plc.TypeBool},
			plc.SigVerdict:     {Table: plc.TableHolding, Address: HRVerdict, Type: plc.TypeVerdict, WordOrder: plc.WordHighFirst},
			plc.SigStopRequest: {Table: plc.TableCoil, Address: CoilStopRequest, Type: plc.TypeBool},
			plc.SigAlarm:       {Table: plc.TableCoil, Address: CoilAlarm, Type: plc.TypeBool},
			plc.SigTowerLight:  {Table: plc.TableHolding, Address: HRTowerLight, Type: plc.TypeU16},
		},
	}
}

// OPCUAProfile is the plc.Config that maps the simulated PLC over OPC UA at
// endpoint (Endpoints().PLCOPCUA), security None.
func OPCUAProfile(endpoint string) plc.Config {
	n := func(name string) string { return "ns=1;s=" + name }
	return plc.Config{
		Protocol: plc.ProtoOPCUA,
		OPCUA:    plc.OPCUAConfig{Endpoint: endpoint},
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Node: n(NodeItemCounter), Type: plc.TypeU32},
			plc.SigHeartbeat:   {Node: n(NodeHeartbeat), Type: plc.TypeU32},
			plc.SigRunning:     {Node: n(NodeRunning), Type: plc.TypeBool},
			plc.SigVerdict:     {Node: n(NodeVerdict), Type: plc.TypeVerdict},
			plc.SigStopRequest: {Node: n(NodeStopRequest), Type: plc.TypeBool},
			plc.SigAlarm:       {Node: n(NodeAlarm), Type: plc.TypeBool},
			plc.SigTowerLight:  {Node: n(NodeTowerLight), Type: plc.TypeU16},
		},
	}
}
