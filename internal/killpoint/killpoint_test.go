package killpoint

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, point string
		n         int
		err       string
	}{
		{"journal-plc:40", JournalPLC, 40, ""},
		{"pack-label:1", PackLabel, 1, ""},
		{"label-journal:3", LabelJournal, 3, ""},
		{"journal-plc", "", 0, "want point:n"},
		{"toaster:3", "", 0, `point "toaster" is unknown`},
		{"pack-label:0", "", 0, "not a whole number ≥ 1"},
		{"pack-label:x", "", 0, "not a whole number ≥ 1"},
	} {
		p, n, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q): err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || p != tc.point || n != tc.n {
			t.Errorf("Parse(%q) = %q, %d, %v", tc.in, p, n, err)
		}
		if Spec(p, n) != tc.in {
			t.Errorf("Spec(%q, %d) = %q", p, n, Spec(p, n))
		}
	}
}

// Unarmed (the test process has no TRACLINE_KILLPOINT), Hit returns.
func TestHitInertUnlessArmed(t *testing.T) {
	t.Setenv(Env, "")
	for range 3 {
		for _, p := range Points {
			Hit(p)
		}
	}
}

// Armed, the process dies by SIGKILL at the n-th hit of its point, not
// before, and other points do not count.
func TestHitKillsAtNth(t *testing.T) {
	if os.Getenv("KILLPOINT_CHILD") == "1" {
		for i := 1; i <= 5; i++ {
			Hit(JournalPLC)
			fmt.Println("hit", i)
			Hit(PackLabel)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHitKillsAtNth$")
	cmd.Env = append(os.Environ(), "KILLPOINT_CHILD=1", Env+"="+Spec(PackLabel, 3))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended with %v, want SIGKILL\n%s", err, out)
	}
	if !strings.Contains(string(out), "hit 3\n") || strings.Contains(string(out), "hit 4") || !strings.Contains(string(out), "killpoint: SIGKILL at pack-label occurrence 3") {
		t.Fatalf("the child's output:\n%s", out)
	}
}
