package tracecode

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func zipOf(t testing.TB, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		w, err := zw.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadExampleCodeFiles(t *testing.T) {
	for _, tt := range []struct {
		file, pid string
		n         int
	}{
		{"8021762-L1.txt", "8021762", 3000},
		{"8021762-L1-request-20240601.zip", "8021762", 2000},
		{"8021763-L2.txt", "8021763", 300},
		{"8021764-L3.txt", "8021764", 30},
	} {
		f, err := ReadCodeFile(filepath.Join(exampleDir, "codes", tt.file), tt.pid)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if len(f.Lines) != tt.n || len(f.SHA256) != 64 || f.Source != tt.file {
			t.Errorf("%s: %d codes, sha %q, source %q", tt.file, len(f.Lines), f.SHA256, f.Source)
		}
	}
	// The wrong level's product id rejects the whole file.
	_, err := ReadCodeFile(filepath.Join(exampleDir, "codes", "8021764-L3.txt"), "8021762")
	var cfe *CodeFileError
	if !errors.As(err, &cfe) || cfe.Total != 30 || !errors.Is(err, ErrBadCodeFile) {
		t.Fatalf("wrong product id: %v", err)
	}
}

func TestParseCodeFileProblems(t *testing.T) {
	const a, b, c = "80217629000000001003", "80217629000000002004", "80217629000000003005"
	tests := []struct {
		name string
		data []byte
		want []string // problems, in order
	}{
		{"good with BOM, CRLF, blanks", []byte("\xef\xbb\xbf" + a + "\r\n\r\n" + b + "\n  " + c + "  \n"), nil},
		{"short", []byte(a + "\n8021762900000000100\n"), []string{`line 2: "8021762900000000100": 19 digits, want 20`}},
		{"letter", []byte(a + "\n" + b + "\n80217629O00000003005\n"), []string{`line 3: "80217629O00000003005": character 'O' at column 9; a code is 20 digits`}},
		{"leading 8", []byte("70217629000000001003\n"), []string{"line 1: 70217629000000001003: does not start with 8"}},
		{"other product", []byte(a + "\n80217639000000001003\n"), []string{"line 2: 80217639000000001003: product id 8021763, this level's is 8021762"}},
		{"duplicate", []byte(a + "\n" + b + "\n" + a + "\n"), []string{"line 3: duplicate of line 1"}},
		{"several", []byte("x\n" + a + "\n" + a + "\n1\n"), []string{`line 1: "x"`, "line 3: duplicate of line 2", `line 4: "1": 1 digits`}},
		{"empty", []byte("\n\n"), []string{"no codes in the file"}},
		{"long line", []byte(strings.Repeat("8", 5000)), []string{"line 1: line longer than 4096 bytes"}},
		{"zip good", zipOf(t, "a.txt", a+"\n"+b, "dir/", "", "b.txt", c), nil},
		{"zip dup across entries", zipOf(t, "a.txt", a+"\n"+b, "b.txt", c+"\n"+a), []string{"b.txt line 2: duplicate of a.txt line 1"}},
		{"zip bad line", zipOf(t, "a.txt", a, "b.txt", "\n8021762900000000100"), []string{"b.txt line 2: "}},
		{"zip empty", zipOf(t), []string{"zip holds no code files"}},
		{"zip corrupt", []byte("PK\x03\x04garbage"), []string{"not a readable zip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseCodeFile("f.txt", tt.data, "8021762")
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(f.Lines) != 3 || f.Lines[0].Code != a || f.Lines[2].Code != c {
					t.Fatalf("lines = %+v", f.Lines)
				}
				return
			}
			var cfe *CodeFileError
			if !errors.As(err, &cfe) {
				t.Fatalf("err = %v, want *CodeFileError", err)
			}
			if len(cfe.Problems) != len(tt.want) {
				t.Fatalf("problems = %v, want %v", cfe.Problems, tt.want)
			}
			for i, w := range tt.want {
				if got := cfe.Problems[i].String(); !strings.Contains(got, w) {
					t.Errorf("problem %d = %q, want %q", i, got, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "f.txt: ") || !strings.Contains(err.Error(), "nothing imported") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
	if _, err := ParseCodeFile("f.txt", []byte("80217629000000001003"), "802176"); err == nil {
		t.Error("bad product id accepted")
	}
	if _, err := ReadCodeFile("no-such-file.txt", "8021762"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestImportCodeFile(t *testing.T) {
	ctx := context.Background()
	store := NewMemPoolStore()
	f, err := ReadCodeFile(filepath.Join(exampleDir, "codes", "8021762-L1.txt"), "8021762")
	if err != nil {
		t.Fatal(err)
	}
	if err := ImportCodeFile(ctx, store, "8021762-L1", f); err != nil {
		t.Fatal(err)
	}
	// A second file sharing two codes with the first: nothing imported, both lines named.
	g, err := ParseCodeFile("again.txt", []byte("80217629000000001003\n"+string(f.Lines[5].Code)+"\n"+string(f.Lines[7].Code)+"\n"), "8021762")
	if err != nil {
		t.Fatal(err)
	}
	err = ImportCodeFile(ctx, store, "8021762-L1", g)
	var cfe *CodeFileError
	if !errors.As(err, &cfe) || cfe.Total != 2 || cfe.Problems[0].Line != 2 || cfe.Problems[1].Line != 3 ||
		!strings.Contains(cfe.Problems[0].Reason, "already known") {
		t.Fatalf("err = %v", err)
	}
	st, _ := store.Pools(ctx)
	if len(st) != 1 || st[0].Available != 3000 {
		t.Fatalf("Pools = %+v", st)
	}
}

func FuzzParseCodeFile(f *testing.F) {
	for _, n := range []string{"8021764-L3.txt"} {
		data, err := os.ReadFile(filepath.Join(exampleDir, "codes", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("80217629000000001003\n80217629000000001003\nx"))
	f.Add(zipOf(f, "a.txt", "80217629000000001003", "b.txt", "8021762900000000100"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := ParseCodeFile("fuzz", data, "8021762")
		if err != nil {
			var cfe *CodeFileError
			if errors.As(err, &cfe) && (cfe.Total == 0 || len(cfe.Problems) == 0) {
				t.Fatalf("CodeFileError without problems: %v", err)
			}
			return
		}
		seen := map[Code]bool{}
		for _, l := range cf.Lines {
			p, err := Parse(string(l.Code))
			if err != nil || p.ProductID() != "8021762" || seen[l.Code] {
				t.Fatalf("accepted bad line %+v: %v", l, err)
			}
			seen[l.Code] = true
		}
	})
}
