package modbus

import (
	"testing"

	"github.com/tracline/tracline/plc"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		sig  plc.Signal
		regs []uint16
		want uint32
	}{
		{"u16", plc.Signal{Type: plc.TypeU16}, []uint16{0xBEEF}, 0xBEEF},
		{"i16 raw", plc.Signal{Type: plc.TypeI16}, []uint16{0xFFFF}, 0xFFFF},
		{"bit 0", plc.Signal{Type: plc.TypeBit, Bit: 0}, []uint16{0b10}, 0},
		{"bit 1", plc.Signal{Type: plc.TypeBit, Bit: 1}, []uint16{0b10}, 1},
		{"bit 15", plc.Signal{Type: plc.TypeBit, Bit: 15}, []uint16{0x8000}, 1},
		{"u32 high first", plc.Signal{Type: plc.TypeU32}, []uint16{0x0001, 0x0002}, 0x00010002},
		{"u32 low first", plc.Signal{Type: plc.TypeU32, WordOrder: plc.WordLowFirst}, []uint16{0x0002, 0x0001}, 0x00010002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(tt.sig, tt.regs)
			if err != nil || got != tt.want {
				t.Fatalf("decode = %#x, %v; want %#x", got, err, tt.want)
			}
		})
	}
	if _, err := decode(plc.Signal{Type: plc.TypeU32}, []uint16{1}); err == nil {
		t.Error("short read accepted")
	}
	if _, err := decode(plc.Signal{Type: plc.TypeString, Length: 2}, []uint16{1}); err == nil {
		t.Error("string decoded as a number")
	}
}

func TestPutU32(t *testing.T) {
	r := make([]uint16, 2)
	putU32(r, 0x12345678, plc.WordHighFirst)
	if r[0] != 0x1234 || r[1] != 0x5678 {
		t.Fatalf("high first %#x", r)
	}
	putU32(r, 0x12345678, plc.WordLowFirst)
	if r[0] != 0x5678 || r[1] != 0x1234 {
		t.Fatalf("low first %#x", r)
	}
}

func TestDecodeString(t *testing.T) {
	if got := DecodeString([]uint16{0x4142, 0x4300, 0x2020}, 6); got != "ABC" {
		t.Fatalf("got %q", got)
	}
	if got := DecodeString([]uint16{0x4142, 0x4344}, 3); got != "ABC" {
		t.Fatalf("length: got %q", got)
	}
}
