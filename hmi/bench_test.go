package hmi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/line"
)

// BenchmarkLiveClients runs the same batch at 1,200 units/min with no live
// client and with 20 (a browser's overview each, over SSE), on a ledger
// that does not sync (on this shared machine the disk's fdatasync varies
// tenfold from run to run and swamps what is measured). It reports the line's verdict p99 and, with
// clients, how long an update took to reach them: live-p99-ms from the
// line's update reaching the HMI to a client having parsed it (coalescing
// included), unit-p99-ms from a unit's camera result to a client having
// parsed the overview that shows its verdict (the line's verdict path
// included).
// Run it once: go test -run '^$' -bench LiveClients -benchtime 1x ./hmi/
func BenchmarkLiveClients(b *testing.B) {
	const units = 300
	for _, n := range []int{0, 20} {
		b.Run(map[int]string{0: "clients=0", 20: "clients=20"}[n], func(b *testing.B) {
			for range b.N {
				verdictP99, liveP99, unitP99 := liveRun(b, n, units)
				b.ReportMetric(verdictP99, "verdict-p99-ms")
				if n > 0 {
					b.ReportMetric(liveP99, "live-p99-ms")
					b.ReportMetric(unitP99, "unit-p99-ms")
				}
			}
		})
	}
}

func liveRun(b *testing.B, clients, units int) (verdictP99, liveP99, unitP99 float64) {
	rg := newRig(b, rigOpts{})
	op := rg.login("operator", "demo")
	for _, c := range []string{"reset", "start"} {
		if code, body := op.do(http.MethodPost, "/api/v1/line/commands", `{"command":"`+c+`"}`); code != 200 {
			b.Fatalf("%s: %d %s", c, code, body)
		}
	}
	rg.waitLine("Execute", func(s line.Snapshot) bool { return s.State == "Execute" })
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var lat, ulat []float64
	var wg sync.WaitGroup
	for range clients {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rg.ts.URL+"/api/v1/line/live", nil)
		res, err := op.hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			var seen uint32
			for sc.Scan() {
				d, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				// A browser parses on its own machine: here the client
				// reads only the overview's time and its newest unit, so
				// that the clients' work does not load the line's CPU.
				now := time.Now()
				var ov struct {
					At        time.Time
					LastUnits []hmi.Unit `json:"last_units"`
				}
				head := d
				if i := strings.Index(d, `,"line":`); i > 0 {
					head = d[:i] + "}"
				}
				if err := json.Unmarshal([]byte(head), &ov); err != nil {
					return
				}
				if i := strings.Index(d, `"last_units":[`); i > 0 {
					if j := strings.Index(d[i:], "}"); j > 0 {
						var u hmi.Unit
						if json.Unmarshal([]byte(d[i+len(`"last_units":[`):i+j+1]), &u) == nil {
							ov.LastUnits = []hmi.Unit{u}
						}
					}
				}
				mu.Lock()
				lat = append(lat, float64(now.Sub(ov.At).Microseconds())/1000)
				for _, u := range ov.LastUnits {
					if u.Item > seen && !u.At.IsZero() {
						ulat = append(ulat, float64(now.Sub(u.At).Microseconds())/1000)
					}
				}
				mu.Unlock()
				if len(ov.LastUnits) > 0 && ov.LastUnits[0].Item > seen {
					seen = ov.LastUnits[0].Item
				}
			}
		}()
	}
	connected := time.NewTicker(time.Millisecond)
	for rg.srv.Clients() < clients { // the clients connect
		<-connected.C
	}
	connected.Stop()
	b.ResetTimer()
	tick := time.NewTicker(50 * time.Millisecond) // 1,200 units/min
	for range units {
		<-tick.C
		rg.produce(1)
	}
	tick.Stop()
	rg.waitLine("every verdict", func(s line.Snapshot) bool { return s.Counters.Passed+s.Counters.Rejected >= uint64(units) })
	b.StopTimer()
	st := rg.runner.Stats()
	cancel()
	wg.Wait()
	if clients > 0 {
		slices.Sort(lat)
		slices.Sort(ulat)
		if len(lat) == 0 || len(ulat) == 0 {
			b.Fatal("no live update measured")
		}
		liveP99, unitP99 = lat[len(lat)*99/100], ulat[len(ulat)*99/100]
	}
	b.Logf("clients=%d: %d verdicts, %d deadline misses, p50 %.2f ms, p99 %.2f ms, stages p50/p99 %v", clients, st.Verdicts, st.DeadlineMisses, st.P50ms, st.P99ms, st.Stages)
	return st.P99ms, liveP99, unitP99
}
