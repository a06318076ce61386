package hmi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/line"
)

// BenchmarkLiveClients runs the same batch at 1,200 units/min with no live
// client and with 20 (a browser's overview each, over SSE), on a ledger
// that does not sync (on this shared machine the disk's fdatasync varies
// tenfold from run to run and swamps what is measured). It reports the
// line's verdict p99 and, with clients, how long an update took to reach
// them: live-p99-ms from the overview's time (the HMI built it) to a
// client having read it, unit-p99-ms from a unit's verdict time to a
// client having read the overview that shows it.
//
// The clients are browsers: they run in a process of their own (this test
// binary, started again with HMI_BENCH_CLIENTS set), so their work is not
// the controller's process's; they read the SSE stream as EventSource does
// (line by line) and look only at what times it (the overview's "at", the
// newest unit's item and time), not a full JSON parse. HMI_BENCH_NICE=n
// runs that process under nice -n n (a browser is on another machine; on
// a 2-core test machine, nice keeps it off the line's CPU, at the price of
// later reads: its live figures are then an upper bound). HMI_BENCH_IDLE=1
// runs it under SCHED_IDLE (chrt --idle 0): it gets only the CPU the
// controller leaves idle — the closest this machine comes to browsers on
// other machines, leaving the controller's own cost (encoding the overview,
// writing 20 streams).
//
// Interleaved runs: go test -run '^$' -bench LiveClients -benchtime 1x -count 3 ./hmi/
func BenchmarkLiveClients(b *testing.B) {
	const units = 300
	for _, n := range []int{0, 20} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
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

// clientsEnv, set, makes this test binary the benchmark's live clients.
const clientsEnv = "HMI_BENCH_CLIENTS"

func TestMain(m *testing.M) {
	if os.Getenv(clientsEnv) != "" {
		os.Exit(liveClients(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// clientReport is what the clients' process prints when its stdin closes.
type clientReport struct {
	Events int       `json:"events"`
	Live   []float64 `json:"live_ms"`
	Unit   []float64 `json:"unit_ms"`
	Err    string    `json:"err,omitempty"`
}

// liveClients is the clients' process: HMI_BENCH_CLIENTS streams of
// HMI_BENCH_URL with the session cookie HMI_BENCH_COOKIE, until stdin
// closes; then the report on stdout.
func liveClients(stdin io.Reader, stdout io.Writer) int {
	n, err := strconv.Atoi(os.Getenv(clientsEnv))
	if err != nil || n < 1 {
		fmt.Fprintf(stdout, `{"err":"HMI_BENCH_CLIENTS=%q"}`, os.Getenv(clientsEnv))
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu  sync.Mutex
		rep clientReport
		wg  sync.WaitGroup
	)
	for range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, os.Getenv("HMI_BENCH_URL"), nil)
		req.Header.Set("Cookie", os.Getenv("HMI_BENCH_COOKIE"))
		req.Header.Set("Accept", "text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			rep.Err = fmt.Sprintf("connect: %v %v", err, res)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			var seen int64
			var live, unit []float64
			for sc.Scan() {
				d, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
				if !ok {
					continue
				}
				now := time.Now()
				if at, ok := timeAfter(d, 0); ok {
					live = append(live, float64(now.Sub(at).Microseconds())/1000)
				}
				if item, at, ok := newestUnit(d); ok && item > seen {
					seen = item
					unit = append(unit, float64(now.Sub(at).Microseconds())/1000)
				}
			}
			mu.Lock()
			rep.Events += len(live)
			rep.Live = append(rep.Live, live...)
			rep.Unit = append(rep.Unit, unit...)
			mu.Unlock()
		}()
	}
	_, _ = io.Copy(io.Discard, stdin) // the benchmark closes it when done
	cancel()
	wg.Wait()
	_ = json.NewEncoder(stdout).Encode(rep)
	return 0
}

var (
	atKey    = []byte(`"at":"`)
	unitsKey = []byte(`"last_units":[{"item":`)
)

// timeAfter reads the first "at" time in d after offset from.
func timeAfter(d []byte, from int) (time.Time, bool) {
	i := bytes.Index(d[from:], atKey)
	if i < 0 {
		return time.Time{}, false
	}
	s := d[from+i+len(atKey):]
	j := bytes.IndexByte(s, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(s[:j]))
	return t, err == nil
}

// newestUnit reads the newest unit's item and time.
func newestUnit(d []byte) (int64, time.Time, bool) {
	i := bytes.Index(d, unitsKey)
	if i < 0 {
		return 0, time.Time{}, false
	}
	s := d[i+len(unitsKey):]
	j := bytes.IndexByte(s, ',')
	if j < 0 {
		return 0, time.Time{}, false
	}
	item, err := strconv.ParseInt(string(s[:j]), 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	at, ok := timeAfter(d, i)
	return item, at, ok
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

	var (
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   bytes.Buffer
	)
	if clients > 0 {
		u, _ := url.Parse(rg.ts.URL)
		var cookies []string
		for _, c := range op.hc.Jar.Cookies(u) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		args := []string{os.Args[0], "-test.run=^$", "-test.bench=^$"}
		if nice := os.Getenv("HMI_BENCH_NICE"); nice != "" {
			args = append([]string{"nice", "-n", nice}, args...)
		}
		if os.Getenv("HMI_BENCH_IDLE") != "" {
			// SCHED_IDLE: the clients run only on CPU the controller
			// leaves idle, as browsers on their own machines would.
			args = append([]string{"chrt", "--idle", "0"}, args...)
		}
		cmd = exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), clientsEnv+"="+strconv.Itoa(clients), "HMI_BENCH_URL="+rg.ts.URL+"/api/v1/line/live",
			"HMI_BENCH_COOKIE="+strings.Join(cookies, "; "))
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		connected := time.NewTicker(time.Millisecond)
		for rg.srv.Clients() < clients { // the clients connect
			if time.Now().After(deadline) {
				_ = stdin.Close()
				_ = cmd.Wait()
				b.Fatalf("%d of %d clients connected: %s", rg.srv.Clients(), clients, out.String())
			}
			<-connected.C
		}
		connected.Stop()
	}
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
	if clients > 0 {
		_ = stdin.Close() // the report counts what arrived

		if err := cmd.Wait(); err != nil {
			b.Fatalf("clients' process: %v: %s", err, out.String())
		}
		var rep clientReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Err != "" {
			b.Fatalf("clients' report: %v %s", err, out.String())
		}
		slices.Sort(rep.Live)
		slices.Sort(rep.Unit)
		if len(rep.Live) == 0 || len(rep.Unit) == 0 {
			b.Fatal("no live update measured")
		}
		liveP99, unitP99 = rep.Live[len(rep.Live)*99/100], rep.Unit[len(rep.Unit)*99/100]
		b.Logf("clients=%d: %d events read, live p50 %.1f ms p99 %.1f ms, unit p99 %.1f ms", clients, rep.Events,
			rep.Live[len(rep.Live)/2], liveP99, unitP99)
	}
	b.Logf("clients=%d: %d verdicts, %d deadline misses, p50 %.2f ms, p99 %.2f ms, stages p50/p99 %v", clients, st.Verdicts, st.DeadlineMisses, st.P50ms, st.P99ms, st.Stages)
	return st.P99ms, liveP99, unitP99
}
