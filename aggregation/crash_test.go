package aggregation

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tracline/tracline/tracecode"
)

const crashRuns = 4

const crashEnv = "TRACLINE_LEDGER_CRASH_DIR"

// TestCrashRecovery SIGKILLs a writer process under load at random moments,
// several times, and checks after each kill that the ledger verifies and
// holds every event the writer had seen acknowledged.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	t.Parallel() // with TestTrimPools: the writer is a child process, killed at a random moment
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0))
	for run := 1; run <= crashRuns; run++ {
		t0 := time.Now()
		acks := crashOnce(t, dir, run, time.Duration(20+rnd.IntN(400))*time.Millisecond)
		t1 := time.Now()
		s, err := Open(dir, Options{NoSync: true})
		t.Logf("run %d: writer %v, reopen %v", run, t1.Sub(t0), time.Since(t1))
		if err != nil {
			t.Fatalf("run %d: reopen after SIGKILL: %v", run, err)
		}
		rep, err := s.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("run %d: verify after SIGKILL:\n%s", run, strings.Join(rep.Problems, "\n"))
		}
		checkAcked(t, s, run, acks)
		t.Logf("run %d: %d acknowledged events all present, %d journal events verified", run, len(acks), rep.Events)
		must(t, s.Close())
	}
}

// crashOnce starts the writer, kills it after d of load and returns the
// acknowledgements it printed. env is added to the writer's environment.
func crashOnce(t *testing.T, dir string, run int, d time.Duration, env ...string) []string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashEnv+"_RUN="+strconv.Itoa(run))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	ready := make(chan struct{})
	var acks []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if len(line) > 2 && strings.Contains("SCP", line[:1]) && line[1] == ' ' {
				acks = append(acks, line)
				once.Do(func() { close(ready) }) // under load from here on
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		cmd.Wait()
		t.Fatalf("run %d: writer exited before it was ready", run)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run %d: no acknowledgement from the writer after 60 s", run)
	}
	select {
	case <-time.After(d): // the random moment of the kill
	case <-done:
		t.Fatalf("run %d: writer stopped by itself", run)
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	<-done
	cmd.Wait()
	if len(acks) == 0 {
		t.Fatalf("run %d: no acknowledged events before the kill", run)
	}
	return acks
}

// TestCrashChild is the writer process of TestCrashRecovery.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("writer process of TestCrashRecovery")
	}
	run, _ := strconv.Atoi(os.Getenv(crashEnv + "_RUN"))
	o := Options{} // synced, as on a line
	if seg, _ := strconv.ParseInt(os.Getenv(crashEnv+"_REDO_SEG"), 10, 64); seg > 0 {
		o.redoSegSize = seg // TestRedoCrashRecovery: segments that wrap under the storm
	}
	s, err := Open(dir, o)
	must(t, err)
	var outMu sync.Mutex
	say := func(lines ...string) {
		outMu.Lock()
		defer outMu.Unlock()
		os.Stdout.WriteString(strings.Join(lines, "\n") + "\n")
	}
	// Batch after batch until the parent kills this process.
	for round := 0; ; round++ {
		crashBatch(t, s, fmt.Sprintf("CRASH%d-%d", run, round), 1000+run*200+round*2, say)
	}
}

func crashBatch(t *testing.T, s *Store, batch string, prefix int, say func(...string)) {
	must(t, s.CreateBatch(ctx, spec(batch, 10), op))
	const units = 4000
	must(t, s.AddToPool(ctx, batch+"-L1", codes(prefix, 0, units), "crash"))
	must(t, s.AddToPool(ctx, batch+"-L2", codes(prefix+1, 0, units/10), "crash"))
	l1, err := s.AllocateFromPool(ctx, batch, 1, batch+"-L1", units, op)
	must(t, err)
	l2, err := s.AllocateFromPool(ctx, batch, 2, batch+"-L2", units/10, op)
	must(t, err)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(l2) {
					return
				}
				kids, box := l1[i*10:(i+1)*10], l2[i]
				must(t, s.MarkSent(ctx, append([]tracecode.Code{box}, kids...), op))
				acks := []string{"S " + string(box)}
				for _, k := range kids {
					acks = append(acks, "S "+string(k))
				}
				say(acks...)
				for _, c := range append([]tracecode.Code{box}, kids...) {
					must(t, s.Commission(ctx, c, UnitInfo{ItemID: uint64(i)}, op))
					say("C " + string(c))
				}
				must(t, s.Pack(ctx, box, kids, PackOpts{}, op))
				say("P " + string(box))
			}
		}()
	}
	wg.Wait()
}

// checkAcked fails t unless every acknowledged event of a crash child
// ("S code", "C code", "P code": sent, commissioned, packed) is in s.
func checkAcked(t *testing.T, s *Store, run int, acks []string) {
	t.Helper()
	for _, a := range acks {
		ci, err := s.Lookup(ctx, tracecode.Code(a[2:]))
		if err != nil {
			t.Fatalf("run %d: acknowledged %q: %v", run, a, err)
		}
		ok := false
		switch a[0] {
		case 'S':
			ok = ci.State != StateAllocated && ci.State != StateInPool
		case 'C':
			ok = ci.State == StateCommissioned || ci.State == StateAggregated
		case 'P':
			ok = ci.Children > 0
		}
		if !ok {
			t.Fatalf("run %d: acknowledged %q but the ledger says %s with %d children", run, a, ci.State, ci.Children)
		}
	}
}
