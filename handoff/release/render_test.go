package release

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracline/tracline/aggregation"
)

var outDir = flag.String("out", "", "also write the rendered record (record.html, record.pdf) to this directory, to look at")

// richRecord is a four-eyes record with a bit of everything: rejects, a
// manual action, an acknowledged and an open alarm, a voided signature.
func richRecord(t *testing.T) *Record {
	t.Helper()
	s := open(t)
	batch(t, s, "B20261201", 30, 6)
	_, err := s.Record(ctx, aggregation.Record{Type: TypeAlarm, Batch: "B20261201", Key: "alarm/1",
		Value: `{"device":"printer-1","text":"喷码机墨水不足 printer ink low; a long alarm text that has to wrap inside its table cell without running over the page border"}`}, sys)
	must(t, err)
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarmAck, Batch: "B20261201", Key: "alarm/1", Value: `{"note":"已更换墨盒 cartridge replaced"}`}, oper)
	must(t, err)
	d := desk(t, s, Config{Signatures: FourEyes})
	verified(t, d)
	_, err = d.Sign(ctx, SignRequest{Batch: "B20261201", User: "alice", Password: "a-pw", Meaning: Released, Comment: "批记录审核完毕，符合放行标准。Reviewed, meets the release criteria."})
	must(t, err)
	_, err = s.Record(ctx, aggregation.Record{Type: TypeAlarm, Batch: "B20261201", Value: `{"device":"camera-2","text":"相机通讯中断 camera link lost"}`}, sys)
	must(t, err)
	rec, err := d.Record(ctx, "B20261201")
	must(t, err)
	return rec
}

func TestRenderHTML(t *testing.T) {
	rec := richRecord(t)
	var b bytes.Buffer
	must(t, WriteHTML(&b, rec))
	html := b.String()
	for _, want := range []string{"批记录 Batch record — B20261201", "阿莫西林胶囊 0.25g", "固体制剂车间", "✗ blocked", "相机通讯中断",
		"Alice Wang 王丽", "作废 void", "changed after", rec.Hash, "grade below C", "damaged at the infeed", "✓"} {
		if !strings.Contains(html, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "http") {
		t.Error("html must be self-contained")
	}
	save(t, "record.html", b.Bytes())
}

func TestRenderPDF(t *testing.T) {
	rec := richRecord(t)
	font, err := LoadFont(DefaultFont)
	if err != nil {
		t.Fatalf("%v (the test command installs fonts-wqy-microhei)", err)
	}
	var b bytes.Buffer
	must(t, WritePDF(&b, rec, font))
	if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) {
		t.Fatal("not a PDF")
	}
	if b.Len() > 2<<20 {
		t.Errorf("PDF of %d bytes: the font should be subset", b.Len())
	}
	path := save(t, "record.pdf", b.Bytes())
	// The text is extractable, Chinese included (poppler-utils, installed
	// by the test command).
	txt, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v (install poppler-utils)", err)
	}
	flat := strings.Join(strings.Fields(string(txt)), " ")
	for _, want := range []string{"批记录 Batch record — B20261201", "阿莫西林胶囊", "固体制剂车间", "相机通讯中断", "王丽", "作废 void", "放行受阻", "grade below C"} {
		if !strings.Contains(flat, want) {
			t.Errorf("pdf text lacks %q", want)
		}
	}
	if err := WritePDF(&b, rec, nil); err == nil {
		t.Error("no font: want an error")
	}
}

func TestExtractFaceErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		frag string
	}{
		{"short", []byte("ttcf"), "too short"},
		{"not a font", []byte("hello world, not a font"), "not a TrueType"},
		{"cff", append([]byte("OTTO"), make([]byte, 20)...), "OpenType/CFF"},
		{"no such face", append([]byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10"), make([]byte, 8)...), "no face 3"},
		{"dir past end", []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\xff\xff"), "past the end"},
	} {
		idx := 0
		if c.name == "no such face" {
			idx = 3
		}
		if _, err := ExtractFace(c.b, idx); err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Errorf("%s: %v, want %q", c.name, err, c.frag)
		}
	}
	if _, err := LoadFont(filepath.Join(t.TempDir(), "none.ttc")); err == nil || !strings.Contains(err.Error(), "fonts-wqy-microhei") {
		t.Errorf("missing font: %v", err)
	}
}

func FuzzExtractFace(f *testing.F) {
	f.Add([]byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00head\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x04abcd"))
	f.Add([]byte("OTTO"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := ExtractFace(b, 0)
		if err == nil && len(out) < 12 {
			t.Fatalf("a font of %d bytes", len(out))
		}
	})
}

func save(t *testing.T, name string, b []byte) string {
	t.Helper()
	dir := *outDir
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, b, 0o644))
	return p
}
