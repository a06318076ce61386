// Package pgpeer is the PostgreSQL peer of the ledger benchmark: the same
// durable code transitions as `linectl bench ledger`'s full load (allocate
// 64 codes from a pool, send them 16 at a time, commission each unit, every
// ack after its commit), done by the same number of concurrent writers on a
// throwaway PostgreSQL cluster that it starts, measures and removes. Its
// figures give the ledger's a yardstick measured in the same run.
//
// The writers' requests go through a group-commit feeder, as the ledger's
// do: a few connections (Config.Conns) each take queued requests, up to
// Config.MaxRows code rows, and apply them in one transaction (one
// multi-row statement per kind of transition, each journaling its rows in
// the events table in the same statement); every request of the
// transaction is acknowledged once its COMMIT has returned. See
// docs/ledger.md, "The PostgreSQL peer".
//
// Only package ledgerbench and this package's tests import it.
package pgpeer

import (
	"context"
	"fmt"
	"github.com/tracline/tracline/aggregation/ledgerbench/benchstat"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config sizes a peer run.
type Config struct {
	Units    int  // level-1 codes taken through the full load
	Writers  int  // concurrent writers, as the ledger's (default 1024)
	Conns    int  // connections, each committing groups of requests (default DefaultConns)
	MaxRows  int  // code rows per transaction at most (default 1000)
	Prealloc bool // allocate every code during setup: the load then only sends and commissions
	NoSync   bool // fsync and synchronous_commit off (mirrors the ledger's --nosync)
	Logger   *slog.Logger
}

// DefaultConns is the default number of connections: 2 per CPU, from 4 to
// 64. More connections make smaller transactions (on 2 CPUs, 8 connections
// did 15-20% fewer transitions/s than 4); fewer leave the disk idle while
// a transaction is being built (2 did 15% fewer).
func DefaultConns() int { return min(64, max(4, 2*runtime.GOMAXPROCS(0))) }

func (c *Config) defaults() {
	if c.Writers == 0 {
		c.Writers = 1024
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns()
	}
	if c.MaxRows == 0 {
		c.MaxRows = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks a Config (zero fields take their defaults).
func (c Config) Validate() error {
	c.defaults()
	switch {
	case c.Units < 1:
		return fmt.Errorf("postgres peer: units %d: want at least 1", c.Units)
	case c.Writers < 1 || c.Writers > 4096:
		return fmt.Errorf("postgres peer: writers %d out of range 1..4096", c.Writers)
	case c.Conns < 1 || c.Conns > 256:
		return fmt.Errorf("postgres peer: --peer-conns %d out of range 1..256", c.Conns)
	case c.MaxRows < alloc || c.MaxRows > 100_000:
		return fmt.Errorf("postgres peer: rows per transaction %d out of range %d..100000", c.MaxRows, alloc)
	}
	return nil
}

// Result is the peer's part of `linectl bench ledger`'s JSON.
type Result struct {
	Units           int     `json:"units"`
	Writers         int     `json:"writers"`
	Conns           int     `json:"connections"`
	MaxTxRows       int     `json:"max_tx_rows"`
	Sync            bool    `json:"sync"`
	TransitionsPerS float64 `json:"transitions_per_s"` // allocated, sent, commissioned: as the ledger's
	CommissionsPerS float64 `json:"commissions_per_s"`
	AckP50Ms        float64 `json:"ack_p50_ms"` // commission request queued → its transaction committed
	AckP99Ms        float64 `json:"ack_p99_ms"`
	AckMaxMs        float64 `json:"ack_max_ms"`
	Transactions    uint64  `json:"transactions"`     // committed at full load
	MeanTxRows      float64 `json:"mean_tx_rows"`     // code rows per transaction
	MeanTxRequests  float64 `json:"mean_tx_requests"` // requests per transaction
	MeanCommitMs    float64 `json:"mean_commit_ms"`   // BEGIN … COMMIT of one transaction
	// CPU at full load, which other jobs on the machine do not inflate as
	// they do the wall time: the server's processes and this process (the
	// writers and the driver).
	ServerCPUS         float64           `json:"server_cpu_s"`
	ClientCPUS         float64           `json:"client_cpu_s"`
	CPUUsPerTransition float64           `json:"cpu_us_per_transition"` // (server + client) ÷ transitions
	SetupS             float64           `json:"setup_s"`               // initdb, start, schema, import
	ServerVersion      string            `json:"server_version"`
	ServerUser         string            `json:"server_user"` // OS user running the server
	Settings           map[string]string `json:"settings"`    // as the server reports them
	TotalS             float64           `json:"total_s"`
}

// Run starts a throwaway cluster, runs the load on it, and stops and
// removes the cluster, also on error and when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg.defaults()
	t0 := time.Now()
	cl, err := startCluster(ctx, cfg.Conns, cfg.NoSync)
	if err != nil {
		return Result{}, fmt.Errorf("postgres peer: %w", err)
	}
	defer cl.Close()
	start := time.Since(t0).Seconds()
	cfg.Logger.Info("postgres peer: cluster started", "version", cl.version, "user", cl.osUser, "elapsed_s", benchstat.Round(start))
	res, err := runLoad(ctx, cl, cfg)
	if err != nil {
		return res, fmt.Errorf("postgres peer: %w", err)
	}
	if err := cl.Close(); err != nil {
		return res, fmt.Errorf("postgres peer: %w", err)
	}
	res.SetupS = benchstat.Round(res.SetupS + start)
	res.TotalS = benchstat.Round(time.Since(t0).Seconds())
	return res, nil
}

const (
	alloc = 64 // codes allocated per work item, as the ledger's benchmark
	ahead = 16 // codes sent per request
	actor = "device:bench"
)

// Schema is what a careful engineer would give these transitions: the
// pool's queue of codes not yet allocated, one row per allocated code
// carrying its state, and an append-only journal with one row per
// transition (who, when, what), indexed by code for a code's history.
// Allocation moves a code from the queue to codes. No index of codes
// involves its state, and its pages keep room (fillfactor 70), so that a
// send or a commission is a HOT update: no index entry to add. There is no
// foreign key from events to codes: every event row is written by the same
// statement that changed its code's row.
const Schema = `
CREATE TYPE code_state AS ENUM ('allocated', 'sent', 'commissioned');
CREATE TABLE pool_queue (
	pool text NOT NULL,
	seq  bigint NOT NULL,                  -- order of import within the pool
	code text NOT NULL UNIQUE CHECK (code ~ '^8[0-9]{19}$'),
	PRIMARY KEY (pool, seq)
);
CREATE TABLE codes (
	code       text PRIMARY KEY,
	pool       text NOT NULL,
	seq        bigint NOT NULL,
	state      code_state NOT NULL,
	batch      text NOT NULL,
	level      smallint NOT NULL,
	item_id    bigint,
	changed_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);
CREATE TABLE events (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at         timestamptz NOT NULL DEFAULT now(),
	batch      text NOT NULL,
	code       text NOT NULL,
	transition code_state NOT NULL,
	actor      text NOT NULL,
	item_id    bigint
);
CREATE INDEX events_code ON events (code);
`

// Allocation takes the pool's first codes off its queue; SKIP LOCKED lets
// concurrent transactions take disjoint codes without waiting for each
// other's commit. Every statement finds its rows by primary key through
// = ANY (array): with a join instead, the planner, which from the
// statistics taken at import believes no code is allocated or sent, scans
// the whole table once per statement.
const (
	sqlAllocate = `
WITH picked AS (
	DELETE FROM pool_queue WHERE pool = $1 AND seq = ANY (ARRAY (
		SELECT seq FROM pool_queue WHERE pool = $1 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED))
	RETURNING code, seq
), ins AS (
	INSERT INTO codes (code, pool, seq, state, batch, level)
	SELECT code, $1, seq, 'allocated', $3, $4 FROM picked
	RETURNING code, seq
), ev AS (
	INSERT INTO events (batch, code, transition, actor) SELECT $3, code, 'allocated', $5 FROM ins
)
SELECT code FROM ins ORDER BY seq`
	sqlSend = `
WITH upd AS (
	UPDATE codes c SET state = 'sent', changed_at = now()
	WHERE c.code = ANY ($1::text[]) AND c.batch = $2 AND c.state = 'allocated'
	RETURNING c.code
), ev AS (
	INSERT INTO events (batch, code, transition, actor) SELECT $2, code, 'sent', $3 FROM upd
)
SELECT count(*) FROM upd`
	sqlCommission = `
WITH upd AS (
	UPDATE codes c SET state = 'commissioned', item_id = u.item, changed_at = now()
	FROM unnest($1::text[], $2::bigint[]) AS u(code, item)
	WHERE c.code = ANY ($1) AND c.code = u.code AND c.batch = $3 AND c.state = 'sent'
	RETURNING c.code, c.item_id
), ev AS (
	INSERT INTO events (batch, code, transition, actor, item_id) SELECT $3, code, 'commissioned', $4, item_id FROM upd
)
SELECT count(*) FROM upd`
)

type kind int

const (
	kindAllocate kind = iota
	kindSend
	kindCommission
)

// request is one writer's request: it waits on done.
type request struct {
	kind  kind
	batch string
	pool  string // allocate
	level int    // allocate
	n     int    // allocate: how many codes
	codes []string
	item  int64 // commission
	done  chan error
}

func (r *request) rows() int {
	if r.kind == kindAllocate {
		return r.n
	}
	return len(r.codes)
}

// code is the i-th benchmark code: 20 digits starting with 8, as nmpa20
// codes are and as the ledger's benchmark makes them.
func code(i int) string { return fmt.Sprintf("8%06d%013d", 900001, i) }

// runLoad creates the schema, imports the pool and runs the full load.
// res.SetupS is the time of the schema and the import.
func runLoad(ctx context.Context, cl *cluster, cfg Config) (Result, error) {
	t0 := time.Now()
	res := Result{Units: cfg.Units, Writers: cfg.Writers, Conns: cfg.Conns, MaxTxRows: cfg.MaxRows, Sync: !cfg.NoSync, ServerVersion: cl.version, ServerUser: cl.osUser, Settings: map[string]string{}}
	admin, err := cl.connect(ctx)
	if err != nil {
		return res, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	for _, s := range reportedSettings {
		var v string
		if err := admin.QueryRow(ctx, "SELECT current_setting($1)", s).Scan(&v); err != nil {
			return res, fmt.Errorf("setting %s: %w", s, err)
		}
		res.Settings[s] = v
	}
	if _, err := admin.Exec(ctx, Schema); err != nil {
		return res, fmt.Errorf("schema: %w", err)
	}
	const batch, pool = "B000000001", "B000000001-L1"
	if _, err := admin.CopyFrom(ctx, pgx.Identifier{"pool_queue"}, []string{"code", "pool", "seq"}, pgx.CopyFromSlice(cfg.Units, func(i int) ([]any, error) {
		return []any{code(i), pool, int64(i)}, nil
	})); err != nil {
		return res, fmt.Errorf("import the pool: %w", err)
	}
	var pre []string
	if cfg.Prealloc {
		rows, err := admin.Query(ctx, sqlAllocate, pool, cfg.Units, batch, 1, actor)
		if err != nil {
			return res, fmt.Errorf("allocate: %w", err)
		}
		if pre, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return res, fmt.Errorf("allocate: %w", err)
		}
	}
	// Statistics for the planner and a checkpoint, so that the measured
	// phase starts clean.
	for _, q := range []string{"VACUUM ANALYZE pool_queue", "VACUUM ANALYZE codes", "CHECKPOINT"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("%s: %w", q, err)
		}
	}
	res.SetupS = time.Since(t0).Seconds()
	cfg.Logger.Info("postgres peer: setup done", "elapsed_s", benchstat.Round(res.SetupS))

	// The feeder: cfg.Conns committers on their own connections.
	conns := make([]*pgx.Conn, cfg.Conns)
	for i := range conns {
		if conns[i], err = cl.connect(ctx); err != nil {
			return res, err
		}
		defer conns[i].Close(context.WithoutCancel(ctx))
	}
	queue := make(chan *request, cfg.Writers)
	var st stats
	lctx, cancel := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	for _, c := range conns {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			committer(lctx, c, queue, cfg.MaxRows, &st)
		}()
	}

	// The writers, as the ledger's benchmark: work items of 64 units.
	lat := make([]time.Duration, cfg.Units)
	items := (cfg.Units + alloc - 1) / alloc
	var next atomic.Int64
	var once sync.Once
	var first error
	var wwg sync.WaitGroup
	do := func(r *request) error {
		r.done = make(chan error, 1)
		select {
		case queue <- r:
		case <-lctx.Done():
			return lctx.Err()
		}
		select {
		case err := <-r.done:
			return err
		case <-lctx.Done():
			return lctx.Err()
		}
	}
	tl, scpu, ccpu := time.Now(), cl.cpu(), benchstat.ProcessCPU()
	for w := 0; w < cfg.Writers; w++ {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= items || lctx.Err() != nil {
					return
				}
				if err := workItem(i, cfg, batch, pool, pre, lat, do); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wwg.Wait()
	el := time.Since(tl).Seconds()
	scpu, ccpu = cl.cpu()-scpu, benchstat.ProcessCPU()-ccpu
	cancel()
	cwg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		return res, first
	}
	perCode := 3.0
	if cfg.Prealloc {
		perCode = 2
	}
	res.TransitionsPerS = float64(int(perCode * float64(cfg.Units) / el))
	res.CommissionsPerS = float64(int(float64(cfg.Units) / el))
	res.AckP50Ms, res.AckP99Ms, res.AckMaxMs = benchstat.Pct(lat)
	res.ServerCPUS, res.ClientCPUS = benchstat.Round(scpu.Seconds()), benchstat.Round(ccpu.Seconds())
	res.CPUUsPerTransition = benchstat.Round((scpu + ccpu).Seconds() * 1e6 / (perCode * float64(cfg.Units)))
	if n := st.txs.Load(); n > 0 {
		res.Transactions = n
		res.MeanTxRows = benchstat.Round(float64(st.rows.Load()) / float64(n))
		res.MeanTxRequests = benchstat.Round(float64(st.requests.Load()) / float64(n))
		res.MeanCommitMs = benchstat.Round(float64(st.commitNs.Load()) / 1e6 / float64(n))
	}
	cfg.Logger.Info("postgres peer: full load done", "transitions_per_s", res.TransitionsPerS, "elapsed_s", benchstat.Round(el))
	return res, nil
}

// workItem is one work item of the full load: allocate up to 64 codes,
// send them 16 at a time and commission each, timing each commission.
func workItem(i int, cfg Config, batch, pool string, pre []string, lat []time.Duration, do func(*request) error) error {
	lo, hi := i*alloc, min((i+1)*alloc, cfg.Units)
	var item []string
	if cfg.Prealloc {
		item = pre[lo:hi]
	} else {
		r := &request{kind: kindAllocate, batch: batch, pool: pool, level: 1, n: hi - lo}
		if err := do(r); err != nil {
			return err
		}
		item = r.codes
	}
	for p := 0; p < len(item); p += ahead {
		part := item[p:min(p+ahead, len(item))]
		if err := do(&request{kind: kindSend, batch: batch, codes: part}); err != nil {
			return err
		}
		for j, c := range part {
			k := lo + p + j
			st := time.Now()
			if err := do(&request{kind: kindCommission, batch: batch, codes: []string{c}, item: int64(k)}); err != nil {
				return err
			}
			lat[k] = time.Since(st)
		}
	}
	return nil
}

type stats struct {
	txs, rows, requests, commitNs atomic.Uint64
}

// committer takes requests from queue, up to maxRows code rows at a time,
// applies them in one transaction and acknowledges each once it has
// committed (or fails them all with the transaction's error).
func committer(ctx context.Context, conn *pgx.Conn, queue <-chan *request, maxRows int, st *stats) {
	var carry *request
	for {
		var group []*request
		rows := 0
		if carry != nil {
			group, rows, carry = append(group, carry), carry.rows(), nil
		} else {
			select {
			case r := <-queue:
				group, rows = append(group, r), r.rows()
			case <-ctx.Done():
				return
			}
		}
	fill:
		for rows < maxRows {
			select {
			case r := <-queue:
				if rows+r.rows() > maxRows {
					carry = r
					break fill
				}
				group, rows = append(group, r), rows+r.rows()
			default:
				break fill
			}
		}
		t := time.Now()
		err := apply(ctx, conn, group)
		if err == nil {
			st.txs.Add(1)
			st.rows.Add(uint64(rows))
			st.requests.Add(uint64(len(group)))
			st.commitNs.Add(uint64(time.Since(t)))
		}
		for _, r := range group {
			r.done <- err
		}
		if err != nil && ctx.Err() != nil {
			return
		}
	}
}

// apply runs one group of requests in one transaction: one statement per
// kind of transition and batch (or pool), pipelined in one round trip.
func apply(ctx context.Context, conn *pgx.Conn, group []*request) (err error) {
	type allocKey struct {
		pool, batch string
		level       int
	}
	allocs := map[allocKey][]*request{}
	sends := map[string][]string{}
	comms := map[string][]*request{}
	var allocOrder []allocKey
	var sendOrder, commOrder []string
	for _, r := range group {
		switch r.kind {
		case kindAllocate:
			k := allocKey{r.pool, r.batch, r.level}
			if allocs[k] == nil {
				allocOrder = append(allocOrder, k)
			}
			allocs[k] = append(allocs[k], r)
		case kindSend:
			if sends[r.batch] == nil {
				sendOrder = append(sendOrder, r.batch)
			}
			sends[r.batch] = append(sends[r.batch], r.codes...)
		case kindCommission:
			if comms[r.batch] == nil {
				commOrder = append(commOrder, r.batch)
			}
			comms[r.batch] = append(comms[r.batch], r)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	b := &pgx.Batch{}
	for _, k := range allocOrder {
		n := 0
		for _, r := range allocs[k] {
			n += r.n
		}
		b.Queue(sqlAllocate, k.pool, n, k.batch, k.level, actor)
	}
	for _, batch := range sendOrder {
		b.Queue(sqlSend, sends[batch], batch, actor)
	}
	for _, batch := range commOrder {
		rs := comms[batch]
		codes, items := make([]string, 0, len(rs)), make([]int64, 0, len(rs))
		for _, r := range rs {
			codes, items = append(codes, r.codes...), append(items, r.item)
		}
		b.Queue(sqlCommission, codes, items, batch, actor)
	}
	br := tx.SendBatch(ctx, b)
	if err := readBatch(br, allocOrder, allocs, sendOrder, sends, commOrder, comms); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// readBatch reads the results of apply's statements in order: hands the
// allocated codes out to their requests, and checks that every send and
// commission changed as many codes as it named (a code in the wrong state
// or batch fails the whole transaction).
func readBatch[K comparable](br pgx.BatchResults, allocOrder []K, allocs map[K][]*request, sendOrder []string, sends map[string][]string, commOrder []string, comms map[string][]*request) error {
	for _, k := range allocOrder {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("allocate: %w", err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("allocate: %w", err)
		}
		want := 0
		for _, r := range allocs[k] {
			want += r.n
		}
		if len(got) < want {
			return fmt.Errorf("allocate: the pool has %d free codes, %d asked", len(got), want)
		}
		for _, r := range allocs[k] {
			r.codes, got = got[:r.n:r.n], got[r.n:]
		}
	}
	for _, batch := range sendOrder {
		var n int
		if err := br.QueryRow().Scan(&n); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if want := len(sends[batch]); n != want {
			return fmt.Errorf("send: batch %s: %d of %d codes were allocated to it and not yet sent", batch, n, want)
		}
	}
	for _, batch := range commOrder {
		var n int
		if err := br.QueryRow().Scan(&n); err != nil {
			return fmt.Errorf("commission: %w", err)
		}
		if want := len(comms[batch]); n != want {
			return fmt.Errorf("commission: batch %s: %d of %d codes were sent and not yet commissioned", batch, n, want)
		}
	}
	return nil
}
