package benchstat

import (
	"testing"
	"time"
)

func TestPct(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99, mx := Pct(d)
	if p50 != 51 || p99 != 100 || mx != 100 {
		t.Fatalf("p50 %v p99 %v max %v", p50, p99, mx)
	}
	if a, b, c := Pct(nil); a != 0 || b != 0 || c != 0 {
		t.Fatal("empty")
	}
	if Ms(1500*time.Microsecond) != 1.5 || Round(0.12345) != 0.123 {
		t.Fatal("rounding")
	}
}
