package plc

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tracline/tracline/internal/uasec"
)

// Signal names: the keys of Config.Signals.
const (
	SigItemTrigger = "item_trigger" // in: id of the last unit past the trigger (a counter)
	SigRunning     = "running"      // in: line running
	SigHeartbeat   = "heartbeat"    // in: changes at least every heartbeat period
	SigVerdict     = "verdict"      // out: item id + result + reason, one write
	SigStopRequest = "stop_request" // out: ask the PLC to stop the line
	SigAlarm       = "alarm"        // out: alarm bit
	SigTowerLight  = "tower_light"  // out: 0 off, 1 green, 2 amber, 3 red
	// SigGateOutcome (in, optional): the PLC's ring of the last reject-gate
	// outcomes, type gate-ring.
	SigGateOutcome = "gate_outcome"
	// SigControllerAlive (out, optional): the controller's heartbeat to the
	// PLC, a counter (u16) or a toggle (bool).
	SigControllerAlive = "controller_alive"
	// SigGateAck (out, optional): the number (mod 65536) of the last gate
	// outcome the controller has journaled; the PLC holds the infeed rather
	// than overwrite an outcome in its ring not acknowledged.
	SigGateAck = "gate_ack"
)

// Protocols.
const (
	ProtoModbus = "modbus"
	ProtoOPCUA  = "opcua"
)

// Modbus tables.
const (
	TableCoil          = "coil"
	TableDiscreteInput = "discrete-input"
	TableHolding       = "holding"
	TableInput         = "input"
)

// Signal types.
const (
	TypeBool    = "bool"    // coil / discrete input; OPC UA Boolean
	TypeBit     = "bit"     // one bit of a register (bit 0..15); inputs only
	TypeU16     = "u16"     // one register; OPC UA UInt16
	TypeI16     = "i16"     // one register, two's complement; OPC UA Int16
	TypeU32     = "u32"     // two registers (word_order); OPC UA UInt32
	TypeI32     = "i32"     // two registers (word_order); OPC UA Int32
	TypeString  = "string"  // length bytes, two per register, first byte high; OPC UA String
	TypeVerdict = "verdict" // 4 registers: item u32 (word_order), result u16, reason u16; OPC UA UInt32[3] {item, result, reason}
	// TypeGateRing: the PLC's ring of the last length gate outcomes.
	// Modbus: count u32 (word_order), then length entries of 3 registers:
	// item u32 (word_order), outcome u16 — 2+3×length registers read in one
	// request. OPC UA: UInt32[1+2×length] {count, item_0, outcome_0, …}.
	// Outcome number s (1-based, s ≤ count) is in entry (s-1) % length.
	TypeGateRing = "gate-ring"
)

// MaxGateRing is the largest gate-ring length: one Modbus read of
// 2+3×40 = 122 registers (the protocol allows 125) takes the whole ring.
const MaxGateRing = 40

var allTypes = []string{TypeBool, TypeBit, TypeU16, TypeI16, TypeU32, TypeI32, TypeString, TypeVerdict, TypeGateRing}

// Word orders for 32-bit values in two registers.
const (
	WordHighFirst = "high-first" // default: register N holds the high word
	WordLowFirst  = "low-first"
)

// Security settings for OPC UA.
const (
	SecPolicyNone           = "None"
	SecPolicyBasic256Sha256 = "Basic256Sha256"
	SecModeNone             = "None"
	SecModeSign             = "Sign"
	SecModeSignAndEncrypt   = "SignAndEncrypt"
)

// Config is the PLC profile: which protocol, where, and the signal map.
// Decoded from YAML in cmd/; zero durations take the defaults listed.
type Config struct {
	Protocol string       `yaml:"protocol" json:"protocol"` // modbus | opcua
	Modbus   ModbusConfig `yaml:"modbus" json:"modbus"`
	OPCUA    OPCUAConfig  `yaml:"opcua" json:"opcua"`
	// HeartbeatTimeout: the heartbeat input must change within this time or
	// the link is reported down (default 2s).
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout" json:"heartbeat_timeout"`
	// CatchUp: the largest item-counter jump reported as individual (late)
	// items; a larger jump is an EventGap (default 64).
	CatchUp int `yaml:"catch_up" json:"catch_up"`
	// ReconnectMin / ReconnectMax bound the reconnect backoff (100ms / 5s).
	ReconnectMin time.Duration     `yaml:"reconnect_min" json:"reconnect_min"`
	ReconnectMax time.Duration     `yaml:"reconnect_max" json:"reconnect_max"`
	Signals      map[string]Signal `yaml:"signals" json:"signals"`
}

// ModbusConfig is the Modbus TCP link.
type ModbusConfig struct {
	Address    string        `yaml:"address" json:"address"`         // host:port of the PLC
	UnitID     int           `yaml:"unit_id" json:"unit_id"`         // default unit id for signals (0..255; default 1 when unset)
	PollPeriod time.Duration `yaml:"poll_period" json:"poll_period"` // input polling period (default 10ms)
	Timeout    time.Duration `yaml:"timeout" json:"timeout"`         // per-request timeout (default 500ms)
}

// OPCUAConfig is the OPC UA link.
type OPCUAConfig struct {
	Endpoint string `yaml:"endpoint" json:"endpoint"` // opc.tcp://host:port[/path]
	// SecurityPolicy: None (default) or Basic256Sha256.
	SecurityPolicy string `yaml:"security_policy" json:"security_policy"`
	// SecurityMode: None (default with policy None), Sign or SignAndEncrypt.
	SecurityMode string `yaml:"security_mode" json:"security_mode"`
	// Certificate and PrivateKey: the client's application instance
	// certificate and its RSA key, PEM or DER (any file extension), the key
	// PKCS#1 or PKCS#8 and not encrypted; required unless policy is None.
	Certificate string `yaml:"certificate" json:"certificate"`
	PrivateKey  string `yaml:"private_key" json:"private_key"`
	// Trust: which server certificates are accepted (trusted files or
	// folders, and/or pinning on first use); required with Basic256Sha256.
	Trust uasec.TrustConfig `yaml:"trust" json:"trust"`
	// PublishingInterval of the input subscription (default 20ms, minimum 1ms).
	PublishingInterval time.Duration `yaml:"publishing_interval" json:"publishing_interval"`
	// Timeout for each request (default 2s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// Signal maps one named signal to a Modbus location or an OPC UA node.
type Signal struct {
	// Direction is optional; when given it must match the signal (in/out).
	Direction string `yaml:"direction,omitempty" json:"direction,omitempty"`
	Type      string `yaml:"type" json:"type"`
	// Modbus.
	UnitID    int    `yaml:"unit_id,omitempty" json:"unit_id,omitempty"` // 0 = the link's unit id
	Table     string `yaml:"table,omitempty" json:"table,omitempty"`
	Address   int    `yaml:"address,omitempty" json:"address,omitempty"` // protocol address, 0-based (40001 → holding 0)
	Bit       int    `yaml:"bit,omitempty" json:"bit,omitempty"`
	WordOrder string `yaml:"word_order,omitempty" json:"word_order,omitempty"`
	Length    int    `yaml:"length,omitempty" json:"length,omitempty"` // string: bytes; gate-ring: entries (1..40)
	// OPC UA.
	Node string `yaml:"node,omitempty" json:"node,omitempty"` // e.g. ns=2;s=PLC.ItemCounter
}

// signalRule says what each known signal may be.
type signalRule struct {
	dir      string
	required bool
	types    []string
}

var rules = map[string]signalRule{
	SigItemTrigger: {"in", true, []string{TypeU16, TypeU32}},
	SigRunning:     {"in", true, []string{TypeBool, TypeBit, TypeU16}},
	SigHeartbeat:   {"in", true, []string{TypeBool, TypeBit, TypeU16, TypeU32}},
	SigVerdict:     {"out", true, []string{TypeVerdict}},
	SigStopRequest: {"out", false, []string{TypeBool, TypeU16}},
	SigAlarm:       {"out", false, []string{TypeBool, TypeU16}},
	SigTowerLight:  {"out", false, []string{TypeU16, TypeI16}},
	// Optional, newer signals: a profile without them keeps working.
	SigGateOutcome:     {"in", false, []string{TypeGateRing}},
	SigControllerAlive: {"out", false, []string{TypeU16, TypeBool}},
	SigGateAck:         {"out", false, []string{TypeU16}},
}

// KnownSignals lists the signal names in a stable order.
func KnownSignals() []string {
	names := make([]string, 0, len(rules))
	for n := range rules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Direction of a known signal ("in" or "out"; "" if unknown).
func Direction(name string) string { return rules[name].dir }

// WithDefaults returns c with zero settings replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 2 * time.Second
	}
	if c.CatchUp == 0 {
		c.CatchUp = 64
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 100 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 5 * time.Second
	}
	if c.Modbus.UnitID == 0 {
		c.Modbus.UnitID = 1
	}
	if c.Modbus.PollPeriod == 0 {
		c.Modbus.PollPeriod = 10 * time.Millisecond
	}
	if c.Modbus.Timeout == 0 {
		c.Modbus.Timeout = 500 * time.Millisecond
	}
	if c.OPCUA.SecurityPolicy == "" {
		c.OPCUA.SecurityPolicy = SecPolicyNone
	}
	if c.OPCUA.SecurityMode == "" {
		if c.OPCUA.SecurityPolicy == SecPolicyNone {
			c.OPCUA.SecurityMode = SecModeNone
		} else {
			c.OPCUA.SecurityMode = SecModeSignAndEncrypt
		}
	}
	if c.OPCUA.PublishingInterval == 0 {
		c.OPCUA.PublishingInterval = 20 * time.Millisecond
	}
	if c.OPCUA.Timeout == 0 {
		c.OPCUA.Timeout = 2 * time.Second
	}
	return c
}

// Validate checks the profile (after defaults) and names the setting or the
// signal that is wrong, in a PLC engineer's words. All problems are reported,
// joined.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.HeartbeatTimeout < 0 {
		bad("plc.heartbeat_timeout: %s is negative", c.HeartbeatTimeout)
	}
	if c.CatchUp < 0 {
		bad("plc.catch_up: %d is negative", c.CatchUp)
	}
	if c.ReconnectMin < 0 || c.ReconnectMax < c.ReconnectMin {
		bad("plc.reconnect_min/reconnect_max: %s..%s is not a valid range", c.ReconnectMin, c.ReconnectMax)
	}
	switch c.Protocol {
	case ProtoModbus:
		m := c.Modbus
		if _, port, err := net.SplitHostPort(m.Address); err != nil || port == "" {
			bad("plc.modbus.address: %q is not host:port", m.Address)
		}
		if m.UnitID < 0 || m.UnitID > 255 {
			bad("plc.modbus.unit_id: %d is outside 0..255", m.UnitID)
		}
		if m.PollPeriod < time.Millisecond {
			bad("plc.modbus.poll_period: %s is shorter than 1ms", m.PollPeriod)
		}
		if m.Timeout <= 0 {
			bad("plc.modbus.timeout: %s must be positive", m.Timeout)
		}
	case ProtoOPCUA:
		o := c.OPCUA
		if u, err := url.Parse(o.Endpoint); err != nil || u.Scheme != "opc.tcp" || u.Host == "" {
			bad("plc.opcua.endpoint: %q is not opc.tcp://host:port", o.Endpoint)
		}
		switch o.SecurityPolicy {
		case SecPolicyNone:
			if o.SecurityMode != SecModeNone {
				bad("plc.opcua.security_mode: %s needs a security_policy other than None", o.SecurityMode)
			}
		case SecPolicyBasic256Sha256:
			if o.SecurityMode != SecModeSign && o.SecurityMode != SecModeSignAndEncrypt {
				bad("plc.opcua.security_mode: %q with Basic256Sha256 must be Sign or SignAndEncrypt", o.SecurityMode)
			}
			if o.Certificate == "" || o.PrivateKey == "" {
				bad("plc.opcua: security_policy Basic256Sha256 needs certificate and private_key files")
			}
		default:
			bad("plc.opcua.security_policy: %q is not None or Basic256Sha256", o.SecurityPolicy)
		}
		if err := o.Trust.Validate("plc.opcua", o.SecurityPolicy); err != nil {
			errs = append(errs, err)
		}
		if o.PublishingInterval < time.Millisecond {
			bad("plc.opcua.publishing_interval: %s is shorter than 1ms", o.PublishingInterval)
		}
		if o.Timeout <= 0 {
			bad("plc.opcua.timeout: %s must be positive", o.Timeout)
		}
	case "":
		bad("plc.protocol: missing (modbus or opcua)")
	default:
		bad("plc.protocol: %q is not modbus or opcua", c.Protocol)
	}

	names := make([]string, 0, len(c.Signals))
	for n := range c.Signals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := rules[n]; !ok {
			bad("plc.signals.%s: unknown signal (known: %s)", n, strings.Join(KnownSignals(), ", "))
			continue
		}
		if err := c.Signals[n].validate(n, c.Protocol); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range KnownSignals() {
		if _, ok := c.Signals[n]; !ok && rules[n].required {
			bad("plc.signals.%s: missing (the line needs it)", n)
		}
	}
	// Two Modbus signals must not overlap.
	if c.Protocol == ProtoModbus {
		errs = append(errs, overlaps(c)...)
	}
	return errors.Join(errs...)
}

func (s Signal) validate(name, proto string) error {
	r := rules[name]
	p := "plc.signals." + name
	if s.Direction != "" && s.Direction != r.dir {
		if s.Direction != "in" && s.Direction != "out" {
			return fmt.Errorf("%s: direction %q is not in or out", p, s.Direction)
		}
		return fmt.Errorf("%s: direction is %s, but %s is always an %s signal", p, s.Direction, name, r.dir)
	}
	if s.Type == "" {
		return fmt.Errorf("%s: type missing (one of %s)", p, strings.Join(r.types, ", "))
	}
	if !slices.Contains(r.types, s.Type) {
		if !slices.Contains(allTypes, s.Type) {
			return fmt.Errorf("%s: type %q is unknown (%s)", p, s.Type, strings.Join(allTypes, ", "))
		}
		return fmt.Errorf("%s: type %s cannot carry %s (use %s)", p, s.Type, name, strings.Join(r.types, " or "))
	}
	if s.Type == TypeGateRing {
		switch {
		case s.Length == 0:
			return fmt.Errorf("%s: length missing: the number of entries in the PLC's gate ring (1..%d)", p, MaxGateRing)
		case s.Length < 1 || s.Length > MaxGateRing:
			return fmt.Errorf("%s: length %d is outside 1..%d (entries in the gate ring; the whole ring, 2+3×length registers, must fit one Modbus read)", p, s.Length, MaxGateRing)
		}
	}
	switch proto {
	case ProtoModbus:
		if s.Node != "" {
			return fmt.Errorf("%s: node %q is an OPC UA setting, but plc.protocol is modbus", p, s.Node)
		}
		return s.validateModbus(p, r.dir)
	case ProtoOPCUA:
		if s.Table != "" || s.Address != 0 {
			return fmt.Errorf("%s: table/address are Modbus settings, but plc.protocol is opcua", p)
		}
		if s.Node == "" {
			return fmt.Errorf("%s: node missing (e.g. ns=2;s=PLC.ItemCounter)", p)
		}
		if !validNodeID(s.Node) {
			return fmt.Errorf("%s: node %q is not an OPC UA node id (ns=N;s=Name or ns=N;i=123)", p, s.Node)
		}
	}
	return nil
}

func (s Signal) validateModbus(p, dir string) error {
	if s.UnitID < 0 || s.UnitID > 255 {
		return fmt.Errorf("%s: unit_id %d is outside 0..255", p, s.UnitID)
	}
	if s.Address < 0 || s.Address > 65535 {
		return fmt.Errorf("%s: address %d is outside 0..65535 (addresses are 0-based: 40001 is holding 0)", p, s.Address)
	}
	switch s.Table {
	case TableCoil, TableDiscreteInput:
		if s.Type == TypeGateRing {
			return fmt.Errorf("%s: table %s holds single bits; a gate-ring needs %d registers (table input or holding)", p, s.Table, s.Registers())
		}
		if s.Type != TypeBool {
			return fmt.Errorf("%s: table %s holds single bits; type must be bool, not %s", p, s.Table, s.Type)
		}
	case TableHolding, TableInput:
		if s.Type == TypeBool {
			return fmt.Errorf("%s: address %d is a register (%s), not a coil; use type bit with bit: N, or u16", p, s.Address, s.Table)
		}
	case "":
		return fmt.Errorf("%s: table missing (coil, discrete-input, holding or input)", p)
	default:
		return fmt.Errorf("%s: table %q is not coil, discrete-input, holding or input", p, s.Table)
	}
	if dir == "out" && (s.Table == TableDiscreteInput || s.Table == TableInput) {
		return fmt.Errorf("%s: table %s is read-only; an output needs a coil or a holding register", p, s.Table)
	}
	if s.Type == TypeBit && (s.Bit < 0 || s.Bit > 15) {
		return fmt.Errorf("%s: bit %d is outside 0..15", p, s.Bit)
	}
	if s.Type != TypeBit && s.Bit != 0 {
		return fmt.Errorf("%s: bit is only for type bit", p)
	}
	switch s.WordOrder {
	case "", WordHighFirst, WordLowFirst:
	default:
		return fmt.Errorf("%s: word_order %q is not high-first or low-first", p, s.WordOrder)
	}
	if s.Type == TypeString && (s.Length < 1 || s.Length > 250) {
		return fmt.Errorf("%s: string length %d is outside 1..250", p, s.Length)
	}
	if end := s.Address + s.Registers(); end > 65536 {
		return fmt.Errorf("%s: %d registers from address %d run past 65535", p, s.Registers(), s.Address)
	}
	return nil
}

// Registers is the number of registers (or bits, for coils and discrete
// inputs) the signal occupies.
func (s Signal) Registers() int {
	switch s.Type {
	case TypeU32, TypeI32:
		return 2
	case TypeVerdict:
		return 4
	case TypeString:
		return (s.Length + 1) / 2
	case TypeGateRing:
		return 2 + 3*s.Length
	}
	return 1
}

func overlaps(c Config) []error {
	type span struct {
		name       string
		unit       int
		table      string
		start, end int // [start, end)
		bit        int
	}
	var spans []span
	for n, s := range c.Signals {
		if _, ok := rules[n]; !ok {
			continue
		}
		u := s.UnitID
		if u == 0 {
			u = c.Modbus.UnitID
		}
		bit := -1
		if s.Type == TypeBit {
			bit = s.Bit
		}
		spans = append(spans, span{n, u, s.Table, s.Address, s.Address + s.Registers(), bit})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].name < spans[j].name })
	var errs []error
	for i := range spans {
		for j := i + 1; j < len(spans); j++ {
			a, b := spans[i], spans[j]
			if a.unit != b.unit || a.table != b.table || a.start >= b.end || b.start >= a.end {
				continue
			}
			if a.bit >= 0 && b.bit >= 0 && a.bit != b.bit {
				continue // two bits of one register
			}
			errs = append(errs, fmt.Errorf("plc.signals.%s: %s %d overlaps plc.signals.%s", a.name, a.table, a.start, b.name))
		}
	}
	return errs
}

// validNodeID accepts the string forms ns=N;i=|s=|g=|b=… and i=…/s=… (ns 0).
func validNodeID(s string) bool {
	rest := s
	if strings.HasPrefix(rest, "ns=") {
		semi := strings.IndexByte(rest, ';')
		if semi < 4 {
			return false
		}
		for _, r := range rest[3:semi] {
			if r < '0' || r > '9' {
				return false
			}
		}
		rest = rest[semi+1:]
	}
	if len(rest) < 3 || rest[1] != '=' {
		return false
	}
	switch rest[0] {
	case 'i':
		for _, r := range rest[2:] {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	case 's', 'g', 'b':
		return true
	}
	return false
}
