// Package ledgerbench measures the ledger (package aggregation) at line
// speed: durable transitions per second with concurrent writers, ack
// latency at line load and at full load, batch summary, pallet tree and
// streaming a whole batch. Only cmd/linectl (bench ledger) and benchmarks
// import it.
package ledgerbench

import (
	"context"
	"fmt"
	"github.com/tracline/tracline/aggregation/ledgerbench/benchstat"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/aggregation/ledgerbench/pgpeer"
	"github.com/tracline/tracline/tracecode"
)

// Config sizes a run.
type Config struct {
	Units       int    // level-1 units (default 100,000; --units 1000000 for the 1M figures)
	Ratios      []int  // box, case, pallet ratios (default 10, 20, 25)
	Writers     int    // concurrent writers at full load (default 1024)
	LineRate    int    // transitions/s at line load (default 30)
	LineSamples int    // transitions measured at line load (default 150)
	Dir         string // ledger directory; a temporary one if empty
	NoSync      bool
	SkipVerify  bool
	MemLimitMB  int // soft Go memory limit for the run (debug.SetMemoryLimit); 0 leaves it alone
	Logger      *slog.Logger
	// Prealloc allocates every level-1 code during setup, so that the full
	// load only sends and commissions (two transitions per code), as in
	// earlier versions of this benchmark.
	Prealloc bool
	// Profile, if set, receives a CPU profile of the full-load phase;
	// HeapProfile a heap profile taken at its end (what the live heap holds).
	// Trace, if set, receives an execution trace (runtime/trace) of the
	// full-load phase, until Badger holds every group.
	Profile     io.Writer
	HeapProfile io.Writer
	Trace       io.Writer
	// Peer, if PeerPostgres, runs the same full load on a throwaway
	// PostgreSQL cluster after ours (package pgpeer) and states ours
	// against it (Result.PostgresPeer).
	Peer      string
	PeerConns int // the peer's connections (0: pgpeer.DefaultConns)
}

// PeerPostgres is the one peer there is: PostgreSQL (package pgpeer).
const PeerPostgres = "postgres"

// Default is the configuration of `linectl bench ledger`.
func Default() Config {
	return Config{Units: 100_000, Ratios: []int{10, 20, 25}, Writers: 1024, LineRate: 30, LineSamples: 150, MemLimitMB: 384}
}

// Validate checks a Config.
func (c Config) Validate() error {
	per := 1
	for _, r := range c.Ratios {
		if r < 1 {
			return fmt.Errorf("ratio %d: want at least 1", r)
		}
		per *= r
	}
	switch {
	case c.Units < per:
		return fmt.Errorf("--units %d is less than one pallet (%d units)", c.Units, per)
	case c.Units%per != 0:
		return fmt.Errorf("--units %d is not a whole number of pallets of %d units", c.Units, per)
	case c.Writers < 1 || c.Writers > 4096:
		return fmt.Errorf("--writers %d out of range 1..4096", c.Writers)
	case c.LineRate < 1 || c.LineRate > 10000:
		return fmt.Errorf("--line-rate %d out of range 1..10000", c.LineRate)
	case c.LineSamples < 0 || c.LineSamples >= c.Units:
		return fmt.Errorf("--line-samples %d out of range 0..units", c.LineSamples)
	case c.Peer != "" && c.Peer != PeerPostgres:
		return fmt.Errorf("--peer %q: the only peer is %q", c.Peer, PeerPostgres)
	case c.Peer == "" && c.PeerConns != 0:
		return fmt.Errorf("--peer-conns %d without --peer %s", c.PeerConns, PeerPostgres)
	}
	if c.Peer == PeerPostgres {
		return c.peerConfig().Validate()
	}
	return nil
}

// Result is the JSON `linectl bench ledger` prints.
type Result struct {
	Units           int     `json:"units"`
	Codes           int     `json:"codes"`
	Writers         int     `json:"writers"`
	Sync            bool    `json:"sync"`
	Prealloc        bool    `json:"prealloc"`
	TransitionsPerS float64 `json:"transitions_per_s"` // durable code transitions at full load: allocated (requests of 64), sent (of 16), commissioned (one per request)
	CommissionsPerS float64 `json:"commissions_per_s"` // of which commissions
	AckP50Ms        float64 `json:"ack_p50_ms"`        // Commission at full load
	AckP99Ms        float64 `json:"ack_p99_ms"`        // at full load
	AckMaxMs        float64 `json:"ack_max_ms"`
	Groups          uint64  `json:"groups"`           // synced transactions at full load
	MeanGroup       float64 `json:"mean_group"`       // requests per synced transaction at full load
	MeanCommitMs    float64 `json:"mean_commit_ms"`   // write and sync of one transaction at full load
	CommitterApply  float64 `json:"committer_apply"`  // share of the full load the committer spent applying groups
	CommitterSettle float64 `json:"committer_settle"` // … waiting for the group in flight to land
	CommitterIdle   float64 `json:"committer_idle"`   // … waiting for requests
	// Badger behind the redo log (aggregation.Stats), counted until it
	// holds every acknowledged group: the time that took after the last
	// ack, the rate with it, its share of that time busy committing,
	// groups per commit, the groups' writes and Badger's per transition (a
	// key several groups of one commit wrote goes to Badger once), and the
	// committer's share waiting for it to catch up.
	BadgerCatchupMs        float64 `json:"badger_catchup_ms"`
	TransitionsPerSSettled float64 `json:"transitions_per_s_badger_settled"`
	BadgerBusy             float64 `json:"badger_busy"`
	BadgerGroupsPerCommit  float64 `json:"badger_groups_per_commit"`
	GroupWritesPerTrans    float64 `json:"group_writes_per_transition"`
	BadgerWritesPerTrans   float64 `json:"badger_writes_per_transition"`
	// Code records the applier held back (a later write of the code
	// replacing them), and those it wrote when a checkpoint or a reader
	// needed them, per transition.
	BadgerDeferredPerTrans float64 `json:"badger_deferred_per_transition"`
	BadgerFlushedPerTrans  float64 `json:"badger_flushed_per_transition"`
	BadgerFullFlushes      uint64  `json:"badger_full_flushes"`
	CacheDrops             uint64  `json:"cache_drops"`
	// The redo log at full load: bytes written per transition (records
	// are padded to 4 KiB) and the checkpoints taken (each syncs Badger).
	RedoBytesPerTrans float64 `json:"redo_bytes_per_transition"`
	Checkpoints       uint64  `json:"checkpoints"`
	// RedoSegmentWaitMs: how long the log's writer waited for a
	// checkpoint to free a segment.
	RedoSegmentWaitMs float64 `json:"redo_segment_wait_ms"`
	BadgerLagWait     float64 `json:"committer_badger_lag_wait"`
	// Writes: where the full load's durable writes spent their time, by
	// stage (the last 65,536 of them; aggregation.Store.WriteStages).
	Writes       *aggregation.WriteStages `json:"writes,omitempty"`
	LineRate     int                      `json:"line_rate_per_s"`
	LineAckP50Ms float64                  `json:"line_ack_p50_ms"`
	LineAckP99Ms float64                  `json:"line_ack_p99_ms"`
	LineAckMaxMs float64                  `json:"line_ack_max_ms"`
	// LineWrites: where the line-load acks' time went, by stage.
	LineWrites *aggregation.WriteStages `json:"line_writes,omitempty"`
	// LineDiskSync: the disk's own fdatasync at the line load's pace, as
	// many as its samples, probed in the ledger's directory right after
	// them (aggregation.ProbeSyncPaced): the floor under a line-load ack,
	// which waits for one such sync.
	LineDiskSync      *aggregation.SyncStats `json:"line_disk_sync_ms,omitempty"`
	PackPerS          float64                `json:"pack_per_s"` // parents per second, concurrent writers: labels allocated and sent in bulk, each commissioned and packed
	SetupS            float64                `json:"setup_s"`    // import, allocate, mark sent
	SummaryMs         float64                `json:"summary_ms"` // Summary of the whole batch, mean of 1000 calls
	PalletTreeMs      float64                `json:"pallet_tree_ms"`
	PalletTreeNodes   int                    `json:"pallet_tree_nodes"`
	StreamMs          float64                `json:"stream_ms"` // Codes(level 1, aggregated) over the whole batch
	StreamCodes       int                    `json:"stream_codes"`
	StreamExtraMB     float64                `json:"stream_extra_mb"` // peak RSS growth while streaming
	VerifyS           float64                `json:"verify_s"`
	VerifyOK          bool                   `json:"verify_ok"`
	DiskMB            float64                `json:"disk_mb"`
	RSSMB             float64                `json:"rss_mb"`      // resident size before verify, incl. page cache of mmapped tables
	AnonMB            float64                `json:"rss_anon_mb"` // of which anonymous (heap, arenas, caches), before verify
	GOMAXPROCS        int                    `json:"gomaxprocs"`
	TotalS            float64                `json:"total_s"`
	ConservationCheck []string               `json:"conservation_check"`

	// CPU of this process at full load (writers, committer, Badger), which
	// other jobs on the machine inflate less than the wall time.
	CPUS               float64 `json:"cpu_s"`
	CPUUsPerTransition float64 `json:"cpu_us_per_transition"`

	// PostgresPeer is the PostgreSQL peer's full load, measured after ours
	// in the same run (--peer postgres).
	PostgresPeer *PeerResult `json:"postgres_peer,omitempty"`
}

// PeerResult is a peer's figures and ours against them.
type PeerResult struct {
	pgpeer.Result
	Ratio    float64 `json:"ratio"`     // our transitions_per_s ÷ the peer's
	CPURatio float64 `json:"cpu_ratio"` // the peer's cpu_us_per_transition ÷ ours
}

var (
	dev = aggregation.Actor{Kind: aggregation.ActorDevice, ID: "bench"}
	qa  = aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"}
)

func code(level, i int) tracecode.Code {
	return tracecode.Code(fmt.Sprintf("8%06d%013d", 900000+level, i))
}

// Run builds one batch of cfg.Units units and measures it; with
// cfg.Peer, it then runs the peer's full load and states ours against it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Peer == PeerPostgres {
		// Before minutes of our own run.
		if _, err := pgpeer.FindServer(); err != nil {
			return Result{}, fmt.Errorf("--peer %s: %w", PeerPostgres, err)
		}
	}
	res, err := runLedger(ctx, cfg)
	if err != nil || cfg.Peer == "" {
		return res, err
	}
	cfg.Logger.Info("bench ledger: postgres peer", "units", cfg.Units-cfg.LineSamples, "writers", cfg.Writers)
	pr, err := pgpeer.Run(ctx, cfg.peerConfig())
	if err != nil {
		return res, err
	}
	res.PostgresPeer = &PeerResult{Result: pr}
	if pr.TransitionsPerS > 0 {
		res.PostgresPeer.Ratio = benchstat.Round(res.TransitionsPerS / pr.TransitionsPerS)
	}
	if res.CPUUsPerTransition > 0 {
		res.PostgresPeer.CPURatio = benchstat.Round(pr.CPUUsPerTransition / res.CPUUsPerTransition)
	}
	return res, nil
}

// peerConfig is the peer's share of cfg: the units of our full load (not
// the line-load samples), as many writers, every ack durable as ours.
func (c Config) peerConfig() pgpeer.Config {
	return pgpeer.Config{Units: c.Units - c.LineSamples, Writers: c.Writers, Conns: c.PeerConns, Prealloc: c.Prealloc, NoSync: c.NoSync, Logger: c.Logger}
}

// runLedger is our own run: the ledger in a directory it removes (if it
// made it) before it returns.
func runLedger(ctx context.Context, cfg Config) (Result, error) {
	t0 := time.Now()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.MemLimitMB > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(cfg.MemLimitMB) << 20))
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "tracline-bench-ledger-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	s, err := aggregation.Open(dir, aggregation.Options{Logger: cfg.Logger, NoSync: cfg.NoSync})
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	res := Result{Units: cfg.Units, Writers: cfg.Writers, Sync: !cfg.NoSync, Prealloc: cfg.Prealloc, LineRate: cfg.LineRate, GOMAXPROCS: runtime.GOMAXPROCS(0)}

	// A batch number of ten characters, as long as real ones (批号) tend to
	// be: key length matters, every key of a code carries its batch.
	batch := fmt.Sprintf("B%09d", time.Now().UnixNano()%1e9)
	spec := aggregation.BatchSpec{ID: batch, Product: "bench", Line: "bench", Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}}}
	counts := []int{cfg.Units}
	for i, r := range cfg.Ratios {
		spec.Levels = append(spec.Levels, aggregation.LevelSpec{Level: tracecode.Level(i + 2), Ratio: r, Scheme: tracecode.SchemeNMPA20})
		counts = append(counts, counts[i]/r)
	}
	if err := s.CreateBatch(ctx, spec, dev); err != nil {
		return res, err
	}
	// Setup: import, allocate and send every code.
	ts := time.Now()
	levels := make([][]tracecode.Code, len(counts)) // the parents' levels; level 1 is units
	var units codeList
	for li, n := range counts {
		cs := make([]tracecode.Code, n)
		for i := range cs {
			cs[i] = code(li+batchSalt(batch), i)
		}
		pool := poolName(batch, li+1)
		if err := s.AddToPool(ctx, pool, cs, "bench"); err != nil {
			return res, fmt.Errorf("import L%d: %w", li+1, err)
		}
		if li == 0 {
			// Level 1 is allocated and sent during the load phases, a few
			// codes at a time, as a line does; the line-load samples first.
			// With Prealloc every code is allocated here, in bulk.
			k := cfg.LineSamples
			if cfg.Prealloc {
				k = n
			}
			var got []tracecode.Code
			if k > 0 {
				var err error
				if got, err = s.AllocateFromPool(ctx, batch, 1, pool, k, dev); err != nil {
					return res, fmt.Errorf("allocate L1: %w", err)
				}
			}
			if cfg.LineSamples > 0 {
				if err := s.MarkSent(ctx, got[:cfg.LineSamples], dev); err != nil {
					return res, err
				}
			}
			units = newCodeList(n, len(cs[0]))
			for i, c := range got {
				if err := units.set(i, c); err != nil {
					return res, err
				}
			}
			res.Codes += n
			continue
		}
		// Parent codes are allocated and sent just before packing, as a
		// line labels its boxes: kept out of the committer's cache while
		// the units run.
		res.Codes += n
	}
	// Setup ends once Badger holds it (it takes groups behind the redo
	// log): the line-load samples then meet the ledger as a line does,
	// not Badger still taking a 1M-code import.
	if err := s.Settled(); err != nil {
		return res, err
	}
	res.SetupS = time.Since(ts).Seconds()
	cfg.Logger.Info("bench ledger: setup done", "elapsed_s", benchstat.Round(time.Since(t0).Seconds()), "rss_mb", benchstat.Round(rssMB()))

	// Line load: one commission every 1/rate s, each timed.
	var lineLat []time.Duration
	mark := s.WritesSampled()
	tick := time.NewTicker(time.Second / time.Duration(cfg.LineRate))
	for i := 0; i < cfg.LineSamples; i++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			tick.Stop()
			return res, ctx.Err()
		}
		st := time.Now()
		if err := s.Commission(ctx, units.at(i), aggregation.UnitInfo{ItemID: uint64(i)}, dev); err != nil {
			tick.Stop()
			return res, err
		}
		lineLat = append(lineLat, time.Since(st))
	}
	tick.Stop()
	res.LineAckP50Ms, res.LineAckP99Ms, res.LineAckMaxMs = benchstat.Pct(lineLat)
	lw := s.WriteStagesSince(mark)
	lw.Events = nil // the full load's list has them
	res.LineWrites = &lw
	if !cfg.NoSync && cfg.LineSamples > 0 {
		ds, err := aggregation.ProbeSyncPaced(dir, cfg.LineSamples, time.Second/time.Duration(cfg.LineRate))
		if err != nil {
			return res, err
		}
		res.LineDiskSync = &ds
	}

	// Full load: the other level-1 units, as cfg.Writers lines would do
	// them, in work items of 64 units: allocate 64 codes from the pool (one
	// request), send them to the printer 16 at a time, and commission each
	// unit (one request per unit). Every code makes three durable
	// transitions: allocated, sent, commissioned.
	rest := cfg.Units - cfg.LineSamples
	pool1 := poolName(batch, 1)
	const alloc, ahead = 64, 16
	lat := make([]time.Duration, rest)
	if cfg.Profile != nil {
		if err := pprof.StartCPUProfile(cfg.Profile); err != nil {
			return res, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if cfg.Trace != nil {
		if err := trace.Start(cfg.Trace); err != nil {
			return res, fmt.Errorf("execution trace: %w", err)
		}
	}
	st0 := s.Stats()
	tf, cpu0 := time.Now(), benchstat.ProcessCPU()
	if err := parallel(ctx, cfg.Writers, (rest+alloc-1)/alloc, func(i int) error {
		from := cfg.LineSamples + i*alloc
		to := min(from+alloc, cfg.Units)
		var item []tracecode.Code
		if cfg.Prealloc {
			item = units.slice(from, to)
		} else {
			var err error
			if item, err = s.AllocateFromPool(ctx, batch, 1, pool1, to-from, dev); err != nil {
				return err
			}
			for j, c := range item {
				if err := units.set(from+j, c); err != nil {
					return err
				}
			}
		}
		for p := 0; p < len(item); p += ahead {
			part := item[p:min(p+ahead, len(item))]
			if err := s.MarkSent(ctx, part, dev); err != nil {
				return err
			}
			for j, c := range part {
				k := i*alloc + p + j
				st := time.Now()
				if err := s.Commission(ctx, c, aggregation.UnitInfo{ItemID: uint64(k)}, dev); err != nil {
					return err
				}
				lat[k] = time.Since(st)
			}
		}
		return nil
	}, nil); err != nil {
		return res, err
	}
	el := time.Since(tf).Seconds()
	if cfg.HeapProfile != nil {
		runtime.GC()
		if err := pprof.Lookup("heap").WriteTo(cfg.HeapProfile, 0); err != nil {
			return res, fmt.Errorf("heap profile: %w", err)
		}
	}
	// Badger takes the acknowledged groups behind the redo log; its work
	// is the full load's too: the CPU and Badger's figures count until it
	// holds them all.
	if err := s.Settled(); err != nil {
		return res, err
	}
	elSettled := time.Since(tf).Seconds()
	cpu := benchstat.ProcessCPU() - cpu0
	if cfg.Profile != nil {
		pprof.StopCPUProfile()
	}
	if cfg.Trace != nil {
		trace.Stop()
	}
	perCode := 3.0 // allocated, sent, commissioned
	if cfg.Prealloc {
		perCode = 2
	}
	res.TransitionsPerS = perCode * float64(rest) / el
	res.TransitionsPerSSettled = perCode * float64(rest) / elSettled
	res.BadgerCatchupMs = benchstat.Round((elSettled - el) * 1000)
	res.CommissionsPerS = float64(rest) / el
	res.CPUS = benchstat.Round(cpu.Seconds())
	res.CPUUsPerTransition = benchstat.Round(cpu.Seconds() * 1e6 / (perCode * float64(rest)))
	res.AckP50Ms, res.AckP99Ms, res.AckMaxMs = benchstat.Pct(lat)
	if st := s.Stats(); st.Groups > st0.Groups {
		res.Groups = st.Groups - st0.Groups
		res.MeanGroup = benchstat.Round(float64(st.Requests-st0.Requests) / float64(res.Groups))
		res.MeanCommitMs = benchstat.Round(float64((st.CommitTime - st0.CommitTime).Microseconds()) / 1000 / float64(res.Groups))
		share := func(d time.Duration) float64 { return benchstat.Round(d.Seconds() / el) }
		res.CommitterApply = share(st.ApplyTime - st0.ApplyTime)
		res.CommitterSettle = share(st.SettleWait - st0.SettleWait)
		res.CommitterIdle = share(st.IdleWait - st0.IdleWait)
		res.BadgerBusy = benchstat.Round((st.BadgerBusy - st0.BadgerBusy).Seconds() / elSettled)
		res.BadgerLagWait = share(st.BadgerLagWait - st0.BadgerLagWait)
		if n := st.BadgerCommits - st0.BadgerCommits; n > 0 {
			res.BadgerGroupsPerCommit = benchstat.Round(float64(st.BadgerGroups-st0.BadgerGroups) / float64(n))
		}
		res.BadgerWritesPerTrans = benchstat.Round(float64(st.BadgerWrites-st0.BadgerWrites) / (perCode * float64(rest)))
		res.GroupWritesPerTrans = benchstat.Round(float64(st.BadgerWritesIn-st0.BadgerWritesIn) / (perCode * float64(rest)))
		res.BadgerDeferredPerTrans = benchstat.Round(float64(st.BadgerDeferred-st0.BadgerDeferred) / (perCode * float64(rest)))
		res.BadgerFlushedPerTrans = benchstat.Round(float64(st.BadgerFlushed-st0.BadgerFlushed) / (perCode * float64(rest)))
		res.BadgerFullFlushes, res.CacheDrops = st.BadgerFullFlushes-st0.BadgerFullFlushes, st.CacheDrops-st0.CacheDrops
		res.RedoBytesPerTrans = benchstat.Round(float64(st.RedoBytes-st0.RedoBytes) / (perCode * float64(rest)))
		res.Checkpoints = st.Checkpoints - st0.Checkpoints
		res.RedoSegmentWaitMs = benchstat.Ms(st.RedoSegmentWait - st0.RedoSegmentWait)
	}
	ws := s.WriteStages()
	res.Writes = &ws
	cfg.Logger.Info("bench ledger: full load done", "elapsed_s", benchstat.Round(time.Since(t0).Seconds()), "rss_mb", benchstat.Round(rssMB()))

	// Level by level: allocate and send the labels, commission each and
	// pack it.
	parents := 0
	tp := time.Now()
	for li := 1; li < len(levels); li++ {
		n := counts[li]
		lv, err := s.AllocateFromPool(ctx, batch, tracecode.Level(li+1), poolName(batch, li+1), n, dev)
		if err != nil {
			return res, fmt.Errorf("allocate L%d: %w", li+1, err)
		}
		if err := parallel(ctx, cfg.Writers, (n+999)/1000, func(i int) error {
			return s.MarkSent(ctx, lv[i*1000:min((i+1)*1000, n)], dev)
		}, nil); err != nil {
			return res, fmt.Errorf("mark sent L%d: %w", li+1, err)
		}
		levels[li] = lv
		r := cfg.Ratios[li-1]
		if err := parallel(ctx, cfg.Writers, len(lv), func(i int) error {
			if err := s.Commission(ctx, lv[i], aggregation.UnitInfo{}, dev); err != nil {
				return err
			}
			var kids []tracecode.Code
			if li == 1 {
				kids = units.slice(i*r, (i+1)*r)
			} else {
				kids = levels[li-1][i*r : (i+1)*r]
			}
			return s.Pack(ctx, lv[i], kids, aggregation.PackOpts{}, dev)
		}, nil); err != nil {
			return res, fmt.Errorf("pack L%d: %w", li+1, err)
		}
		parents += len(lv)
	}
	res.PackPerS = float64(parents) / time.Since(tp).Seconds()
	cfg.Logger.Info("bench ledger: pack done", "elapsed_s", benchstat.Round(time.Since(t0).Seconds()), "rss_mb", benchstat.Round(rssMB()))

	// Summary, O(levels).
	const nsum = 1000
	tsum := time.Now()
	var sum aggregation.BatchSummary
	for i := 0; i < nsum; i++ {
		if sum, err = s.Summary(ctx, batch); err != nil {
			return res, err
		}
	}
	res.SummaryMs = benchstat.Ms(time.Since(tsum)) / nsum
	res.ConservationCheck = sum.Check()
	if res.ConservationCheck == nil {
		res.ConservationCheck = []string{}
	}

	// Tree of one pallet, best of 5.
	top := levels[len(levels)-1][0]
	for i := 0; i < 5; i++ {
		n := 0
		tt := time.Now()
		if err := s.Tree(ctx, top, func(aggregation.Node) error { n++; return nil }); err != nil {
			return res, err
		}
		if d := benchstat.Ms(time.Since(tt)); i == 0 || d < res.PalletTreeMs {
			res.PalletTreeMs = d
		}
		res.PalletTreeNodes = n
	}

	// Stream every level-1 code, watching resident memory.
	runtime.GC()
	rss0 := rssMB()
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := int64(rssMB() * 1024); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	tst := time.Now()
	err = s.Codes(ctx, batch, 1, aggregation.StateAggregated, func(tracecode.Code) error { res.StreamCodes++; return nil })
	res.StreamMs = benchstat.Ms(time.Since(tst))
	close(stop)
	wg.Wait()
	if err != nil {
		return res, err
	}
	res.StreamExtraMB = benchstat.Round(max(0, float64(peak.Load())/1024-rss0))
	cfg.Logger.Info("bench ledger: stream done", "elapsed_s", benchstat.Round(time.Since(t0).Seconds()), "rss_mb", benchstat.Round(rssMB()))

	// Release, then verify the whole ledger.
	if _, err := s.ReturnUnsent(ctx, batch, dev); err != nil {
		return res, err
	}
	if err := s.Release(ctx, batch, aggregation.Signature{User: "qa", Meaning: "released", At: time.Now()}, qa); err != nil {
		return res, err
	}
	res.RSSMB = benchstat.Round(rssMB())
	res.AnonMB = benchstat.Round(anonMB())
	if !cfg.SkipVerify {
		tv := time.Now()
		rep, err := s.Verify(ctx)
		if err != nil {
			return res, err
		}
		res.VerifyS, res.VerifyOK = benchstat.Round(time.Since(tv).Seconds()), rep.OK()
		if !rep.OK() {
			cfg.Logger.Error("verify failed", "problems", strings.Join(rep.Problems[:min(10, len(rep.Problems))], "; "))
		}
	}
	res.DiskMB = benchstat.Round(float64(dirSize(dir)) / (1 << 20))
	res.TotalS = benchstat.Round(time.Since(t0).Seconds())
	res.TransitionsPerS = float64(int(res.TransitionsPerS))
	res.PackPerS = float64(int(res.PackPerS))
	res.CommissionsPerS = float64(int(res.CommissionsPerS))
	res.SetupS = benchstat.Round(res.SetupS)
	return res, nil
}

// codeList holds a level's codes, all of one length, back to back in one
// allocation. The bench keeps its million units between the phases; as a
// million strings they were a million objects for every GC cycle of the
// full load to mark (a third of its GC work at 1M units), which a line
// controller, holding only the codes in flight, never carries.
type codeList struct {
	w   int
	buf []byte
}

func newCodeList(n, w int) codeList { return codeList{w: w, buf: make([]byte, n*w)} }

func (l codeList) set(i int, c tracecode.Code) error {
	if len(c) != l.w {
		return fmt.Errorf("bench: code %q is not %d characters long as the others", c, l.w)
	}
	copy(l.buf[i*l.w:], c)
	return nil
}

func (l codeList) at(i int) tracecode.Code { return tracecode.Code(l.buf[i*l.w : (i+1)*l.w]) }

// slice returns the codes from..to-1 as strings of their own.
func (l codeList) slice(from, to int) []tracecode.Code {
	out := make([]tracecode.Code, to-from)
	for i := range out {
		out[i] = l.at(from + i)
	}
	return out
}

// poolName is the pool of a level's codes in the benchmark batch.
func poolName(batch string, level int) string { return fmt.Sprintf("%s-L%d", batch, level) }

// batchSalt keeps two runs on the same data directory from colliding codes.
func batchSalt(batch string) int {
	h := 0
	for _, c := range batch {
		h = (h*31 + int(c)) % 9000
	}
	return h * 10
}

// parallel runs fn(0..n-1) on w goroutines; lat, if not nil, gets each call's time.
func parallel(ctx context.Context, w, n int, fn func(i int) error, lat []time.Duration) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				st := time.Now()
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
				if lat != nil {
					lat[i] = time.Since(st)
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func rssMB() float64 { return procStatusMB("VmRSS:") }

// anonMB is the resident memory that is not file-backed: the process's own
// heap and Badger's arenas and caches, without the page cache of the
// memory-mapped tables (which the kernel reclaims at will).
func anonMB() float64 { return procStatusMB("RssAnon:") }

func procStatusMB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.Sys) / (1 << 20)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func dirSize(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !fi.IsDir() {
			n += fi.Size()
		}
	}
	return n
}
