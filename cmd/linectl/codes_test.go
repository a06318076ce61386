package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracline/tracline/tracecode"
)

const (
	gs1Product  = "../../examples/amoxicillin-gs1.yaml"
	nmpaProduct = "../../examples/amoxicillin-nmpa20.yaml"
	l1CodeFile  = "../../examples/codes/8021762-L1.txt"
	l1CodeZip   = "../../examples/codes/8021762-L1-request-20240601.zip"
)

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCodesGenerate(t *testing.T) {
	code, out, errs := run(t, "", "codes", "generate", "--rule", gs1Product, "--level", "L1", "--count", "50")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		p, err := tracecode.Parse(l)
		if err != nil || p.Scheme != tracecode.SchemeGS1SGTIN || p.GTIN() != "06901234567892" || len(p.Serial()) != 12 || seen[l] {
			t.Fatalf("bad generated code %q: %v", l, err)
		}
		seen[l] = true
	}

	// Full codes with the data the rule carries, to a file.
	f := filepath.Join(t.TempDir(), "l3.txt")
	code, _, errs = run(t, "", "codes", "generate", "--rule", gs1Product, "--level", "3", "--count", "5",
		"--batch", "B2401", "--expiry", "280100", "--production-date", "260115", "--out", f)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	data, _ := os.ReadFile(f)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(l, "(01)26901234567896(17)280100(11)260115(21)") || !strings.HasSuffix(l, "(10)B2401") {
			t.Fatalf("full code %q", l)
		}
	}

	for _, tt := range []struct {
		args []string
		want string
		exit int
	}{
		{[]string{"--rule", nmpaProduct, "--level", "1", "--count", "5"}, "never generated", 1},
		{[]string{"--rule", gs1Product, "--count", "0"}, "--count 0", 1},
		{[]string{"--rule", gs1Product, "--level", "9", "--count", "1"}, "level", 2},
		{[]string{"--rule", "nope.yaml", "--count", "1"}, "no such file", 1},
		{[]string{"--rule", gs1Product, "--count", "1", "--batch", "B1"}, "carries expiry; none given", 1},
	} {
		code, _, errs := run(t, "", append([]string{"codes", "generate"}, tt.args...)...)
		if code != tt.exit || !strings.Contains(errs, tt.want) {
			t.Errorf("generate %v: exit %d stderr %q, want exit %d and %q", tt.args, code, errs, tt.exit, tt.want)
		}
	}
}

func TestCodesCheck(t *testing.T) {
	in := strings.Join([]string{
		"]d201069012345678922123456789ABCD\x1d10B2401\x1d17280100",
		"8021762-9000000001003",
		"0106901234567893213",
		"",
		"https://id.gs1.org/01/06901234567892/21/X?17=280100",
	}, "\n") + "\r\n"
	code, out, _ := run(t, in, "codes", "check")
	want := "OK (01)06901234567892(21)23456789ABCD(10)B2401(17)280100\n" +
		"OK 80217629000000001003\n" +
		"ERR AI (01) at position 15: GTIN: check digit is 3, want 2\n" +
		"ERR empty input\n" +
		"OK (01)06901234567892(21)X(17)280100\n"
	if code != 1 || out != want {
		t.Fatalf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	code, out, _ = run(t, "80217629000000001003\n(00)369012340000000017", "codes", "check")
	if code != 0 || out != "OK 80217629000000001003\nOK (00)369012340000000017\n" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	// Against the filed rule: right format, wrong level.
	code, out, _ = run(t, "80217629000000001003\n80217639000000001003\n", "codes", "check", "--product", nmpaProduct, "--level", "2")
	if code != 1 || !strings.HasPrefix(out, "ERR ") || !strings.Contains(out, "\nOK 80217639000000001003\n") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestCodesRender(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		product, level, code string
	}{
		{gs1Product, "1", "(01)06901234567892(21)23456789ABCD(17)280100(10)B2401"},
		{gs1Product, "4", "(00)369012340000000017"},
		{nmpaProduct, "1", "80217621475594406924"},
	} {
		out := filepath.Join(dir, "c.png")
		code, stdout, errs := run(t, "", "codes", "render", "--product", tt.product, "--level", tt.level, "--code", tt.code, "--out", out)
		if code != 0 {
			t.Fatalf("render %s: exit %d: %s", tt.code, code, errs)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 20 || !strings.Contains(stdout, "c.png") {
			t.Fatalf("render %s: %v %v", tt.code, err, img.Bounds())
		}
	}
	// The code must be this level's, with the data its rule carries.
	code, _, errs := run(t, "", "codes", "render", "--product", gs1Product, "--level", "1",
		"--code", "(01)06901234567892(21)23456789ABCD", "--out", filepath.Join(dir, "x.png"))
	if code != 1 || !strings.Contains(errs, "carries batch") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.png")); !os.IsNotExist(err) {
		t.Fatal("a failed render left a file")
	}
}

func testCLI() (*cli, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}, &out, &errb
}

// The import and pool logic against the in-memory store (the real store
// is the ledger's; see TestCodesImportStore).
func TestCodesImportInto(t *testing.T) {
	ctx := context.Background()
	store := tracecode.NewMemPoolStore()
	c, out, errb := testCLI()
	f, err := tracecode.ReadCodeFile(l1CodeFile, "8021762")
	if err != nil {
		t.Fatal(err)
	}
	if err := importInto(ctx, c, store, "8021762-L1", f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "imported 3000 codes from 8021762-L1.txt") {
		t.Fatalf("stdout %q", out.String())
	}
	// The same file again: every line is named, nothing imported, exit 1.
	err = importInto(ctx, c, store, "8021762-L1", f)
	if ee, ok := err.(exitError); !ok || ee.code != 1 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(errb.String(), "8021762-L1.txt: line 1: ") || !strings.Contains(errb.String(), "3000 problem(s), nothing imported") {
		t.Fatalf("stderr %q", errb.String()[:200])
	}
	out.Reset()
	if err := writePools(ctx, c, store); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Pools []tracecode.PoolStat `json:"pools"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Pools) != 1 || got.Pools[0].Available != 3000 {
		t.Fatalf("pools %s: %v", out.String(), err)
	}
}

// End to end through realMain and the ledger's store, once openPoolStore
// is built.
func TestCodesImportStore(t *testing.T) {
	dir := t.TempDir()
	if _, closeStore, err := openPoolStore(context.Background(), &cli{log: slog.New(slog.NewTextHandler(io.Discard, nil))}, dir); err != nil {
		t.Skipf("openPoolStore not available: %v", err)
	} else if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "", "codes", "import", "--data", dir, "--product", nmpaProduct, "--level", "1", l1CodeFile)
	if code != 0 || !strings.Contains(out, "into pool 8021762-L1") {
		t.Fatalf("import: exit %d: %s %s", code, out, errs)
	}
	code, out, errs = run(t, "", "codes", "import", "--data", dir, "--product", nmpaProduct, "--level", "1", l1CodeZip)
	if code != 0 || !strings.Contains(out, "imported 2000 codes") {
		t.Fatalf("import zip: exit %d: %s %s", code, out, errs)
	}
	// Again: all-or-nothing, the lines are named.
	code, _, errs = run(t, "", "codes", "import", "--data", dir, "--product", nmpaProduct, "--level", "1", l1CodeZip)
	if code != 1 || !strings.Contains(errs, "8021762_20240601_0001.txt line 1: ") {
		t.Fatalf("re-import: exit %d: %.300s", code, errs)
	}
	code, out, errs = run(t, "", "codes", "pool", "--data", dir)
	var got struct {
		Pools []tracecode.PoolStat `json:"pools"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("pool: exit %d: %s %s", code, out, errs)
	}
	var l1 *tracecode.PoolStat
	for i := range got.Pools {
		if got.Pools[i].Pool == "8021762-L1" {
			l1 = &got.Pools[i]
		}
	}
	if l1 == nil || l1.Available != 5000 {
		t.Fatalf("pools = %+v", got.Pools)
	}
}

func TestCodesImportRejects(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("80217629000000001003\n8021762900000000100\n80217639000000001003\n80217629000000001003\n"), 0o644)
	code, _, errs := run(t, "", "codes", "import", "--data", dir, "--product", nmpaProduct, "--level", "1", bad)
	for _, w := range []string{"bad.txt: line 2: ", "bad.txt: line 3: ", "bad.txt: line 4: duplicate of line 1", "3 problem(s), nothing imported"} {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	code, _, errs = run(t, "", "codes", "import", "--data", dir, "--product", gs1Product, "--level", "1", bad)
	if code != 1 || !strings.Contains(errs, "GS1 codes are generated") {
		t.Errorf("gs1 import: exit %d: %s", code, errs)
	}
	code, _, _ = run(t, "", "codes")
	if code != 2 {
		t.Errorf("bare codes: exit %d", code)
	}
}
