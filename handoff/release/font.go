package release

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
)

// DefaultFont is where Debian's fonts-wqy-microhei puts its font collection:
// the PDF's Chinese and Latin text use its first face, 文泉驿微米黑.
const DefaultFont = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

// LoadFont reads a TrueType font (.ttf) or the first face of a TrueType
// collection (.ttc) from path, returning a standalone .ttf.
func LoadFont(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("font %s: %w (install fonts-wqy-microhei or name a .ttf/.ttc with Chinese glyphs)", path, err)
	}
	ttf, err := ExtractFace(b, 0)
	if err != nil {
		return nil, fmt.Errorf("font %s: %w", path, err)
	}
	return ttf, nil
}

// ExtractFace returns face index of a TrueType collection as a standalone
// TrueType font: its table directory, with the tables it names copied after
// it (the PDF libraries read .ttf, not .ttc). A plain .ttf is returned as is
// (index must be 0). The tables' bytes and checksums are not changed.
func ExtractFace(b []byte, index int) ([]byte, error) {
	if len(b) < 12 {
		return nil, errors.New("not a TrueType font: file too short")
	}
	var dir uint32
	switch tag := string(b[:4]); tag {
	case "ttcf":
		n := binary.BigEndian.Uint32(b[8:12])
		if index < 0 || uint64(index) >= uint64(n) {
			return nil, fmt.Errorf("collection has %d faces, no face %d", n, index)
		}
		at := 12 + 4*uint64(index)
		if at+4 > uint64(len(b)) {
			return nil, errors.New("collection header truncated")
		}
		dir = binary.BigEndian.Uint32(b[at:])
	case "\x00\x01\x00\x00", "true":
		if index != 0 {
			return nil, fmt.Errorf("a single font has no face %d", index)
		}
	case "OTTO":
		return nil, errors.New("an OpenType/CFF font: want TrueType outlines")
	default:
		return nil, fmt.Errorf("not a TrueType font or collection (starts %q)", tag)
	}
	if uint64(dir)+12 > uint64(len(b)) {
		return nil, fmt.Errorf("face %d: table directory at %d is past the end", index, dir)
	}
	hdr := b[dir : dir+12]
	if v := string(hdr[:4]); v != "\x00\x01\x00\x00" && v != "true" {
		return nil, fmt.Errorf("face %d: not TrueType outlines (version %q)", index, v)
	}
	nt := int(binary.BigEndian.Uint16(hdr[4:6]))
	if nt == 0 || nt > 256 {
		return nil, fmt.Errorf("face %d: %d tables", index, nt)
	}
	recs := uint64(dir) + 12
	if recs+16*uint64(nt) > uint64(len(b)) {
		return nil, fmt.Errorf("face %d: table directory truncated", index)
	}
	type table struct {
		tag, sum    [4]byte
		off, length uint32
	}
	tabs := make([]table, nt)
	total := 12 + 16*uint64(nt)
	for i := range tabs {
		r := b[recs+16*uint64(i):]
		t := table{off: binary.BigEndian.Uint32(r[8:]), length: binary.BigEndian.Uint32(r[12:])}
		copy(t.tag[:], r[:4])
		copy(t.sum[:], r[4:8])
		if uint64(t.off)+uint64(t.length) > uint64(len(b)) {
			return nil, fmt.Errorf("face %d: table %q (%d bytes at %d) is past the end", index, t.tag[:], t.length, t.off)
		}
		tabs[i] = t
		total += (uint64(t.length) + 3) &^ 3
	}
	// Table records are sorted by tag, as the format wants.
	sort.Slice(tabs, func(i, j int) bool { return string(tabs[i].tag[:]) < string(tabs[j].tag[:]) })
	out := make([]byte, 0, total)
	out = append(out, hdr...)
	off := uint32(12 + 16*nt)
	for _, t := range tabs {
		out = append(out, t.tag[:]...)
		out = append(out, t.sum[:]...)
		out = binary.BigEndian.AppendUint32(out, off)
		out = binary.BigEndian.AppendUint32(out, t.length)
		off += (t.length + 3) &^ 3
	}
	for _, t := range tabs {
		out = append(out, b[t.off:t.off+t.length]...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out, nil
}
