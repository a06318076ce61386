package aggregation

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/tracecode"
)

// BenchmarkCommission measures durable (synced) commissions from concurrent
// writers: go test -bench Commission ./aggregation/
func BenchmarkCommission(b *testing.B) {
	for _, w := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			must(b, err)
			defer s.Close()
			must(b, s.CreateBatch(ctx, spec("BB"), op))
			cs := codes(7, 0, b.N)
			for i := 0; i < len(cs); i += chunk {
				part := cs[i:min(i+chunk, len(cs))]
				must(b, s.AddToPool(ctx, "p", part, "bench"))
				got, err := s.AllocateFromPool(ctx, "BB", 1, "p", len(part), op)
				must(b, err)
				for j := 0; j < len(got); j += 1000 {
					must(b, s.MarkSent(ctx, got[j:min(j+1000, len(got))], op))
				}
			}
			st0 := s.Stats()
			b.ResetTimer()
			t0 := time.Now()
			var wg sync.WaitGroup
			next := make(chan tracecode.Code, 1024)
			go func() {
				for _, c := range cs {
					next <- c
				}
				close(next)
			}()
			for g := 0; g < w; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for c := range next {
						if err := s.Commission(ctx, c, UnitInfo{}, op); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			st := s.Stats()
			groups := st.Groups - st0.Groups
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "transitions/s")
			if groups > 0 {
				b.ReportMetric(float64(st.Requests-st0.Requests)/float64(groups), "reqs/group")
				b.ReportMetric(float64((st.CommitTime-st0.CommitTime).Microseconds())/float64(groups), "µs-commit/group")
			}
		})
	}
}

// BenchmarkQueries: Summary (O(levels)), the tree of a case of 200 units and
// streaming a batch level. go test -bench Queries ./aggregation/
func BenchmarkQueries(b *testing.B) {
	s, err := Open(b.TempDir(), Options{NoSync: true})
	must(b, err)
	defer s.Close()
	lv := commissioned(b, s, "Q", []int{2000, 200, 10}, 10, 20)
	for i, box := range lv[1] {
		must(b, s.Pack(ctx, box, lv[0][i*10:(i+1)*10], PackOpts{}, op))
	}
	for i, cs := range lv[2] {
		must(b, s.Pack(ctx, cs, lv[1][i*20:(i+1)*20], PackOpts{}, op))
	}
	b.Run("summary", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Summary(ctx, "Q"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tree-case-221-nodes", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n := 0
			must(b, s.Tree(ctx, lv[2][0], func(Node) error { n++; return nil }))
			if n != 221 {
				b.Fatalf("%d nodes", n)
			}
		}
	})
	b.Run("stream-2000", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			must(b, s.Codes(ctx, "Q", 1, StateAggregated, func(tracecode.Code) error { return nil }))
		}
	})
}

// BenchmarkDurableWrite: one writer, each write its own group, so that
// every call waits for one sync: its latency at p50 and p99 beside the raw
// fdatasync of the same directory, measured just before (SyncStats), and
// their ratio at p99 — the ledger's share of the line's journal stage,
// without the line's scheduling. Run with -benchtime=2000x or so.
func BenchmarkDurableWrite(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw, err := ProbeSync(dir, 300)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Record(ctx, Record{Type: "bench", Key: "bench/" + strconv.Itoa(i%64), Value: "x"}, op); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) }
	b.ReportMetric(p(0.5), "µs-p50")
	b.ReportMetric(p(0.99), "µs-p99")
	b.ReportMetric(raw.P50ms*1000, "µs-fdatasync-p50")
	b.ReportMetric(raw.P99ms*1000, "µs-fdatasync-p99")
	if raw.P99ms > 0 {
		b.ReportMetric(p(0.99)/(raw.P99ms*1000), "p99/fdatasync-p99")
	}
}
