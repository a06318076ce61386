package latency

import (
	"errors"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	def := Config{Budget: 100 * time.Millisecond, For: time.Second}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type ex struct{ start, end int } // ms
	for _, tc := range []struct {
		name string
		exs  []ex
		slow bool // after the last exchange
	}{
		{"on time", []ex{{0, 5}, {10, 20}, {30, 130}}, false},
		{"one late answer", []ex{{0, 900}}, false},
		{"late, but not for long enough", []ex{{0, 300}, {300, 600}, {600, 999}}, false},
		{"late for the whole span", []ex{{0, 800}, {800, 1600}}, true},
		{"one late answer lasting the span is not two", []ex{{0, 5000}}, false},
		{"an answer in budget ends the run", []ex{{0, 800}, {800, 1600}, {1600, 1650}}, false},
		{"a new run starts from its own first request", []ex{{0, 800}, {800, 850}, {900, 1700}, {1700, 1800}}, false},
		{"a new run, long enough", []ex{{0, 800}, {800, 850}, {900, 1700}, {1700, 2500}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(Config{}, def)
			var err error
			for _, e := range tc.exs {
				err = w.Observe(at(e.start), at(e.end))
			}
			if got := errors.Is(err, ErrTooSlow); got != tc.slow {
				t.Fatalf("too slow = %v (%v), want %v", got, err, tc.slow)
			}
			if got := errors.Is(w.Err(), ErrTooSlow); got != tc.slow {
				t.Fatalf("Err() too slow = %v, want %v", got, tc.slow)
			}
			w.Reset()
			if w.Err() != nil {
				t.Fatalf("after Reset: %v", w.Err())
			}
		})
	}
}

func TestWatchMessage(t *testing.T) {
	w := New(Config{Budget: 250 * time.Millisecond}, Config{Budget: time.Second, For: time.Second})
	t0 := time.Now()
	w.Observe(t0, t0.Add(800*time.Millisecond))
	err := w.Observe(t0.Add(800*time.Millisecond), t0.Add(1700*time.Millisecond))
	const want = "2 answers in a row later than the 250ms budget, for 1.7s (the last after 900ms): device answers too slowly for the line"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Budget: -1}).Validate("camera.latency"); err == nil || err.Error() != "camera.latency.budget: -1ns is negative" {
		t.Fatalf("got %v", err)
	}
	if err := (Config{}).Validate("x"); err != nil {
		t.Fatal(err)
	}
}
