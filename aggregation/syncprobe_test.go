package aggregation

import (
	"testing"
	"time"
)

func TestProbeSync(t *testing.T) {
	st, err := ProbeSync(t.TempDir(), 20)
	if err != nil {
		t.Fatal(err)
	}
	if st.N != 20 || st.P50ms > st.P99ms || st.P99ms > st.MaxMs {
		t.Fatalf("sync probe: %+v", st)
	}
	st, err = ProbeSyncPaced(t.TempDir(), 5, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if st.N != 5 || st.P50ms > st.P99ms || st.P99ms > st.MaxMs {
		t.Fatalf("paced sync probe: %+v", st)
	}
	if _, err := ProbeSync("/nonexistent-dir-for-probe", 1); err == nil {
		t.Fatal("probe in a missing directory succeeded")
	}
	if _, err := ProbeSync(t.TempDir(), 0); err == nil {
		t.Fatal("probe of 0 syncs accepted")
	}
}
