package campaign

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResultRoundTripAndReport(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	soak := Result{Campaign: "soak", Started: at, Rows: []Row{{What: "an hour at 1,200/min", Tries: 1, Survived: 1}}}
	crash := Result{Campaign: "crash", Title: "SIGKILL under load", Command: "linectl campaign crash", Started: at,
		Rows:     []Row{{What: "kill between journal and PLC write", Tries: 5, Survived: 4, Failed: 1, Checks: "verify | ground truth"}},
		Failures: []string{"kill 3: unit 17 commissioned but rejected"}}
	for _, r := range []Result{soak, crash} {
		if err := WriteResult(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Campaign != "crash" || got[1].Campaign != "soak" {
		t.Fatalf("order: %+v", got)
	}
	if got[0].Passed() || !got[1].Passed() {
		t.Fatalf("passed: crash %v soak %v", got[0].Passed(), got[1].Passed())
	}
	var b bytes.Buffer
	if err := Report(&b, got); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"**FAILED**", "| kill between journal and PLC write | 5 | 4 | 1 | verify \\| ground truth |", "kill 3: unit 17", "(#crash-sigkill-under-load)"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestResultRefusesInconsistentCounts(t *testing.T) {
	r := Result{Campaign: "fault", Started: time.Now(), Rows: []Row{{What: "PLC frozen", Tries: 3, Survived: 1, Failed: 1}}}
	err := WriteResult(t.TempDir(), r)
	if err == nil || !strings.Contains(err.Error(), "PLC frozen") {
		t.Fatalf("err = %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.json"), []byte(`{"campaign":"x","started":"2026-12-01T00:00:00Z","bogus":1}`), 0o644)
	if _, err := ReadResults(dir); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field: err = %v", err)
	}
}
