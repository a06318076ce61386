package link

import (
	"errors"
	"testing"
	"time"

	"github.com/tracline/tracline/plc"
)

func TestTracker(t *testing.T) {
	at := time.Unix(0, 0)
	tests := []struct {
		name     string
		bits     int
		readings []uint32
		want     []string
	}{
		{"baseline only", 32, []uint32{7}, nil},
		{"steps", 32, []uint32{7, 8, 9, 9}, []string{"item 8", "item 9"}},
		{"catch up", 32, []uint32{1, 4}, []string{"item 2 (late)", "item 3 (late)", "item 4"}},
		{"gap", 32, []uint32{1, 10}, []string{"gap 2..9", "item 10"}},
		{"reset", 32, []uint32{100, 3, 4}, []string{"counter-reset to 3", "item 4"}},
		{"u16 wrap", 16, []uint32{65535, 1}, []string{"item 0 (late)", "item 1"}},
		{"u32 wrap", 32, []uint32{0xffffffff, 0}, []string{"item 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(4, tt.bits)
			var got []string
			for _, r := range tt.readings {
				for _, e := range tr.Observe(r, at) {
					got = append(got, e.String())
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	t0 := time.Unix(100, 0)
	h := NewHeartbeat(time.Second)
	h.Reset(t0)
	h.Observe(1, t0)
	if err := h.Stale(t0.Add(900 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	h.Observe(1, t0.Add(900*time.Millisecond)) // same value: no change
	if err := h.Stale(t0.Add(1100 * time.Millisecond)); !errors.Is(err, ErrHeartbeat) {
		t.Fatalf("want stale, got %v", err)
	}
	h.Observe(2, t0.Add(1200*time.Millisecond))
	if err := h.Stale(t0.Add(1300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
}

func TestLinkState(t *testing.T) {
	var s LinkState
	n := func(evs []plc.Event) int { return len(evs) }
	if n(s.Up(time.Time{})) != 1 || n(s.Up(time.Time{})) != 0 {
		t.Fatal("up twice")
	}
	if n(s.Down(errors.New("x"), time.Time{})) != 1 || n(s.Down(errors.New("x"), time.Time{})) != 0 {
		t.Fatal("down twice")
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 35 * time.Millisecond}
	want := []time.Duration{10, 20, 35, 35}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("step %d: %s, want %s", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if b.Next() != 10*time.Millisecond {
		t.Fatal("reset")
	}
}
