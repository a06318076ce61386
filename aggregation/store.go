package aggregation

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/tracline/tracline/tracecode"
)

// Options tunes a Store. The zero value is fine for a line controller.
type Options struct {
	Logger *slog.Logger
	// Now is the clock stamped on events; time.Now if nil.
	Now func() time.Time
	// MaxGroup caps how many requests one synced transaction carries (default 4096).
	MaxGroup int
	// MemTableMB and CacheMB size Badger's memory (defaults 32 and 64). With the
	// defaults the ledger stays within a few hundred MB for a 1M-unit batch.
	MemTableMB int
	CacheMB    int
	// NoSync turns off fsync per group (and the redo log's records). For
	// tests and benchmarks that measure the rest; never on a line.
	NoSync bool

	prefetch int  // codes read ahead from a pool (poolPrefetch; tests make it small)
	inMemory bool // Verify's replay store
	replay   bool // apply given events, write no journal
	// verifyOnly: opened by VerifyDir for Verify alone, which then drops
	// the pages of the ledger's files it has read (see dropMappedPages).
	verifyOnly bool
	// redoSegSize: the size of the redo log's new segments (tests; default
	// redoSegSize, at least redoSegMin).
	redoSegSize int64
	// beforeAnswer, if set, runs when a group has landed, before its
	// callers are answered (tests: the window Close must wait out).
	beforeAnswer func()
	// failGroup, if set, is asked before each group is finished: true
	// fails the group as too big for one transaction (tests: the split and
	// the caches dropped after it).
	failGroup func() bool
}

// Badger's value log: a value longer than valueThreshold is written there
// (not inline in the LSM tree), in files of valueLogFileSize.
const (
	valueThreshold   = 1 << 10
	valueLogFileSize = 16 << 20
)

// chunk is the most codes one event carries; bulk calls are split into
// events of this size so that each fits one Badger transaction.
const chunk = 8192

// Store is the ledger. All its methods are safe for concurrent use. Every
// mutating method is durable when it returns nil: its event and projections
// are in a synced record of the redo log (redo.go), which Badger then takes
// (applier.go); every read sees every write acknowledged before it. A
// method that returns an error other than a refusal (a failed commit) may
// or may not have been made durable.
type Store struct {
	db   *badger.DB
	log  *slog.Logger
	opts Options
	dir  string   // "" in memory
	redo *redoLog // nil in memory

	reqs   chan *request
	stop   chan struct{}
	exited chan struct{}
	once   sync.Once

	mu       sync.RWMutex // guards the caches below; only the committer writes them
	counters map[blKey]*levelCounters
	batches  map[string]*batchRec
	pools    map[string]*tracecode.PoolStat
	seq      uint64
	head     [32]byte
	closed   bool
	stats    Stats
	landedG  uint64                 // the last group landed (applier numbering)
	ap       *applier               // nil in Verify's in-memory replay store
	hot      *hotCache              // written by the committer only; see hotMax
	ahead    map[string]poolAhead   // committer-only; see poolAhead
	allocs   map[string]*allocIndex // committer-only; see allocIndex
	touched  touchLog               // committer-only; see touchLog
	rcache   *replayCache           // Verify's replay store only; committer-only
	fatal    error                  // set when a commit failed in a way that leaves the caches unsure

	// Committer-only pipeline state (see run).
	snap  *badger.Txn // the committer's read-only snapshot: Badger as of group snapG
	snapG uint64
	snapV uint64 // snap's number (applier.takeSnap)
	// pend is the latest write of each key that groups after snapG may
	// have made, in two generations: a write goes to pend, which becomes
	// pendOld once it holds pendGen keys (and pendOld is gone); pendOld
	// goes whole once the snapshot holds its groups (up to pendOldTop).
	// A key's entry stays after Badger has it (it equals what the snapshot
	// holds, or is shadowed by a newer one in pend): nothing is deleted
	// key by key as snapshots advance.
	pend, pendOld map[string]pendW
	pendOldTop    uint64
	pendSpare     map[string]pendW // a cleared generation, for the next
	pendRetired   atomic.Int64     // generations retired (tests)
	sent          []applyGroup     // the groups after snapG, in order (their logs rebuild pend: rebuildPend)
	gseq          uint64           // the last group sent
	lastLog       int              // the last group's writes (newBuilder)
	doneBuf       []applied        // the last builder's done, cleared, for the next (newBuilder)
	scratch       applyScratch     // one request's code views, the committer's (wtx.scratch)
	jbufs         journalBufs      // encoding buffers the flights' seals give back
	overlay       *wtx             // the flight, whose counters, batches and pools are not published yet
	prev          *flight          // the last group sent to Badger
	held          *request         // taken from the queue, for the next group
	nseq          uint64           // last seq applied (s.seq, s.head: last durable)
	nhead         [32]byte         // the hash of event nseq, in replay; else as at Open (the flights chain the rest: seal)
	lsn           uint64           // the redo record the next group sent will be
	timing        struct{ apply, settle, idle, lag atomic.Int64 }
	// idleSince is when the committer's current wait for requests began
	// (UnixNano), 0 when it is not waiting: Stats counts a wait still
	// going on, so that a snapshot taken in a long idle wait (a bench's
	// full load starting after a quiet phase) is not charged with the
	// wait when it ends.
	idleSince atomic.Int64
	drops     atomic.Uint64 // drop's calls (Stats)
	stages    stageRing
	// gathering: how many deferrable requests the committer holds (see
	// gather); 0 when it holds none.
	gathering atomic.Int32
}

type blKey struct {
	batch string
	level tracecode.Level
}

// request is one operation waiting for the committer.
type request struct {
	ev    Event
	pickN int    // AllocateFromPool: codes to pick from the pool
	after []byte // ReturnUnsent: resume the scan after this key
	bulk  bool   // commit alone in its own transaction
	// hints are the codes of ev as the caller read them from a snapshot
	// taken when hintSeq was the last durable event (see Store.hint).
	hints   []codeView
	hintSeq uint64
	err     error
	noop    bool // nothing to do (e.g. a hand-off already recorded)
	// deferUntil: the request may wait until then for a request that
	// cannot wait, to share its sync (see Deferrable); zero: it cannot.
	deferUntil time.Time
	// results
	collided []tracecode.Code
	lastKey  []byte
	done     chan struct{} // room for one signal: answer sends it once
	// spent: submit is done with the request, and the committer will not
	// touch it again (it was answered, or never queued).
	spent bool
	// one and unit hold a single-code event's code and unit (Commission).
	one  [1]tracecode.Code
	unit UnitInfo
	// stages (see stages.go): when r was queued and taken up, and the
	// flight that made it durable.
	submitted, started time.Time
	fl                 *flight
}

// Open opens or creates the ledger in dir and checks its schema version.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.prefetch <= 0 {
		opts.prefetch = poolPrefetch
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 4096
	}
	if opts.MemTableMB <= 0 {
		opts.MemTableMB = 32
	}
	if opts.CacheMB <= 0 {
		opts.CacheMB = 64
	}
	if dir == "" && !opts.inMemory {
		return nil, errors.New("ledger: data directory is empty")
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(opts.inMemory).
		// Durability is the redo log's (redo.go): Badger's own log is a
		// sparse file, each sync of which commits the file system's journal.
		WithSyncWrites(false).
		WithDetectConflicts(false).
		WithMemTableSize(int64(opts.MemTableMB) << 20).
		WithNumMemtables(3).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithBlockCacheSize(int64(opts.CacheMB) << 20).
		WithIndexCacheSize(int64(opts.CacheMB/2) << 20).
		WithValueLogFileSize(valueLogFileSize).
		// A value over 1 KiB — in practice a busy group's journal block,
		// never rewritten — goes to the value log: written once, the LSM
		// tree keeping a pointer, instead of copied into the memtable's
		// arena and log, its L0 table and every compaction after (the
		// journal is most of the ledger's bytes: 27 of 45 MB written at
		// 100k units). Badger syncs nothing per commit (the redo log is
		// the durability point), so the value log's second sync, the
		// reason values were once kept inline, is gone; a checkpoint
		// syncs both logs (syncBadger). Measured in session 9.
		WithValueThreshold(valueThreshold).
		WithNumCompactors(2).
		WithCompression(options.None). // CPU is scarcer than disk on an edge box
		WithLogger(badgerLogger{opts.Logger}).
		WithMetricsEnabled(false)
	if opts.inMemory {
		bo = bo.WithDir("").WithValueDir("")
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: open: %w", dir, err)
	}
	// Before anything reads the store: the redo log's records replayed.
	var rl *redoLog
	if !opts.inMemory {
		size := opts.redoSegSize
		if size <= 0 {
			size = max(redoSegSize, redoSegMin(opts.MemTableMB))
		}
		if rl, err = openRedo(db, dir, !opts.NoSync, roundBlock(size), opts.Logger); err != nil {
			db.Close()
			return nil, fmt.Errorf("ledger %s: %w", dir, err)
		}
	}
	s := &Store{
		db: db, log: opts.Logger, opts: opts, dir: dir, redo: rl,
		reqs: make(chan *request, 1024), stop: make(chan struct{}), exited: make(chan struct{}),
		hot: newHotCache(), ahead: map[string]poolAhead{}, allocs: map[string]*allocIndex{}, counters: map[blKey]*levelCounters{}, batches: map[string]*batchRec{}, pools: map[string]*tracecode.PoolStat{},
	}
	if opts.inMemory {
		s.dir = ""
	}
	if err := s.load(); err != nil {
		if rl != nil {
			rl.close(false)
		}
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", dir, err)
	}
	if rl != nil {
		if err := rl.begin(); err != nil {
			rl.close(false)
			db.Close()
			return nil, fmt.Errorf("ledger %s: %w", dir, err)
		}
	}
	if opts.replay {
		s.rcache = newReplayCache()
	}
	s.touched.reset(s.seq)
	s.nseq, s.nhead = s.seq, s.head
	if rl != nil {
		s.lsn = rl.next
	}
	s.pend = map[string]pendW{}
	s.jbufs = newJournalBufs()
	s.snap = db.NewTransaction(false)
	s.ap = newApplier(s, s.seq)
	if rl != nil {
		rl.mu.Lock()
		rl.hurry = s.ap.hurryFlush
		rl.mu.Unlock()
	}
	go s.run()
	return s, nil
}

// load checks the schema and fills the caches from the projections.
func (s *Store) load() error {
	upgraded := false
	err := s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get(keySchema)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if err := txn.Set(keySchema, []byte(schemaVersion)); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			v, _ := it.ValueCopy(nil)
			switch {
			case string(v) == schemaVersion:
			case slices.Contains(upgradable, string(v)):
				// Schema 7 only added event kinds (gate, label), record flags
				// and counters, all absent from a schema 6 ledger; schema 8
				// only the record event and its tables (r/, R/), absent from
				// both; schema 9 only the trim_pool event and the queue
				// record's base, absent from all; schema 10 only the redo log
				// (redo/, made by openRedo before load: a ledger of an older
				// schema was written with synced commits and has nothing to
				// replay); schema 11 only keyRedo, absent from a schema 10
				// ledger (recovery then replays its log as schema 10 did).
				// Each is upgraded by writing the new version, which
				// older builds then refuse, naming both versions — a build
				// that would ignore the redo log never opens a ledger that
				// has one.
				if err := txn.Set(keySchema, []byte(schemaVersion)); err != nil {
					return err
				}
				upgraded = string(v) == "6" || string(v) == "7" // 8 and later have their trail index already
			default:
				return fmt.Errorf("schema version %q, this build reads %q (and upgrades \"6\" to \"10\"): migrate or use a matching linectl", v, schemaVersion)
			}
		}
		if it, err := txn.Get(keyHead); err == nil {
			v, _ := it.ValueCopy(nil)
			if len(v) != 40 {
				return fmt.Errorf("corrupt journal head (%d bytes)", len(v))
			}
			s.seq = binary.BigEndian.Uint64(v)
			copy(s.head[:], v[8:])
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return scanPrefix(txn, pfxBatch, func(k, v []byte) error {
			var b batchRec
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("batch record %q: %w", k, err)
			}
			s.batches[string(k[len(pfxBatch):])] = &b
			return nil
		}, pfxCounter, func(k, v []byte) error {
			var c levelCounters
			if err := json.Unmarshal(v, &c); err != nil || len(k) < len(pfxCounter)+2 {
				return fmt.Errorf("counter record %q: corrupt", k)
			}
			s.counters[blKey{string(k[len(pfxCounter) : len(k)-2]), tracecode.Level(k[len(k)-1])}] = &c
			return nil
		}, pfxPool, func(k, v []byte) error {
			var p tracecode.PoolStat
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("pool record %q: %w", k, err)
			}
			s.pools[p.Pool] = &p
			return nil
		})
	})
	if err != nil || !upgraded {
		return err
	}
	return s.db.Update(func(txn *badger.Txn) error { return s.migrateTrail(txn) })
}

// scanPrefix calls fn for every key under each prefix (pairs of prefix, fn).
func scanPrefix(txn *badger.Txn, args ...any) error {
	for i := 0; i+1 < len(args); i += 2 {
		pfx := []byte(args[i].(string))
		fn := args[i+1].(func(k, v []byte) error)
		o := badger.DefaultIteratorOptions
		o.Prefix = pfx
		it := txn.NewIterator(o)
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err == nil {
				err = fn(it.Item().KeyCopy(nil), v)
			}
			if err != nil {
				it.Close()
				return err
			}
		}
		it.Close()
	}
	return nil
}

// Close stops the committer after the requests already queued and closes
// the database. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		<-s.exited
		// Badger takes every landed group before the last checkpoint.
		if s.ap != nil {
			err = s.ap.close()
		}
		if s.redo != nil {
			// A last checkpoint, unless a commit failed: then Badger's
			// state is unknown and the log keeps what it has for the next
			// Open to replay.
			err = errors.Join(err, s.redo.close(s.redo.write && s.failed() == nil))
		}
		err = errors.Join(err, s.db.Close())
	})
	return err
}

// submit queues r and waits until it is durable (or refused).
func (s *Store) submit(ctx context.Context, r *request) error {
	if r.done == nil {
		r.done = make(chan struct{}, 1)
	}
	s.mu.RLock()
	closed, fatal := s.closed, s.fatal
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if fatal != nil {
		return fmt.Errorf("ledger stopped accepting writes after a failed commit: %w", fatal)
	}
	if d, ok := ctx.Value(deferKey{}).(time.Duration); ok && d > 0 && !r.bulk {
		r.deferUntil = time.Now().Add(d)
	}
	if r.ev.Actor.Kind == "" && s.opts.replay {
		r.ev.Actor = Actor{ActorSystem, "replay"}
	}
	r.submitted = time.Now()
	// The queue has room nearly always: one try without the three-way
	// select, which locks all three channels (submit's two selects were
	// 4% of the 100k full load's CPU, session 21). A context already ended is
	// refused first; had stop been closed, the select below could also
	// have picked the send, and the wait after it handles that.
	if err := ctx.Err(); err != nil {
		r.spent = true
		return err
	}
	select {
	case s.reqs <- r:
	default:
		select {
		case s.reqs <- r:
		case <-s.stop:
			r.spent = true
			return ErrClosed
		case <-ctx.Done():
			r.spent = true
			return ctx.Err()
		}
	}
	// Once queued, the request will be decided; wait for it even if ctx ends,
	// so that a caller never mistakes a durable event for a failed one.
	select {
	case <-r.done:
	case <-s.exited:
		// Close won the race with this request: the committer is gone.
		select {
		case <-r.done:
		default:
			return ErrClosed // r may still be in the queue: not spent
		}
	}
	r.spent = true
	if r.err == nil {
		s.sample(r, time.Now())
	}
	return r.err
}

// The committer is a two-stage pipeline. While group N's redo record is
// written and synced (its "flight"), the committer already applies group
// N+1, reading Badger's snapshot through s.pend: the latest write of every
// key that N and the groups before it made and Badger may not hold yet
// (applier.go takes landed groups to Badger behind the log). Group N+1 is
// sent only once N is durable, and its callers are answered — refusals
// included — only once N+1 (or, if it wrote nothing, everything before it)
// is durable. A request that scans a key range (return of unsent codes,
// unpack) commits alone and is a barrier: the committer waits until
// Badger holds every group and takes a fresh snapshot first, since an
// iterator cannot see s.pend.
func (s *Store) run() {
	defer close(s.exited)
	for {
		var group []*request
		if s.held != nil {
			group, s.held = append(group, s.held), nil
		} else {
			t0 := time.Now()
			s.idleSince.Store(t0.UnixNano())
			select {
			case r := <-s.reqs:
				// Cleared before the wait is counted: Stats may then
				// miss a wait just ended, never count one twice.
				s.idleSince.Store(0)
				s.timing.idle.Add(int64(time.Since(t0)))
				group = append(group, r)
			case <-s.stop:
				s.idleSince.Store(0)
				s.settle()
				if s.prev != nil {
					// Its callers are answered before the committer is
					// gone: one that sees s.exited first would take a
					// durable write for a refused one (submit).
					<-s.prev.answered
				}
				if s.snap != nil {
					s.snap.Discard()
					s.snap = nil
				}
				s.drainAfterStop()
				return
			}
		}
		if !alone(group[0]) {
			w := group[0].weight()
		fill:
			for len(group) < s.opts.MaxGroup && w < maxGroupCodes {
				select {
				case r := <-s.reqs:
					if alone(r) {
						s.held = r
						break fill
					}
					group = append(group, r)
					w += r.weight()
				default:
					break fill
				}
			}
		}
		if deferrable(group) {
			group = s.gather(group)
		}
		s.process(group)
	}
}

type deferKey struct{}

// Deferrable returns a context under which a write may wait up to d before
// its group is committed, for a write that cannot wait to share its sync:
// for records the line needs durable soon but not at once (a print record,
// a gate outcome), so that they ride with the next verdict's sync instead of
// taking the disk just before it. The call still returns only once the write
// is durable — at most d (plus a sync) later.
func Deferrable(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, deferKey{}, d)
}

// deferrable reports whether every request of group may wait.
func deferrable(group []*request) bool {
	for _, r := range group {
		if r.deferUntil.IsZero() {
			return false
		}
	}
	return true
}

// gather holds a group of deferrable requests until the earliest of their
// deadlines, or until a request that cannot wait joins (it is taken, with
// whatever else is queued by then), a bulk request comes (held for the next
// group), the group is full, or the store stops.
func (s *Store) gather(group []*request) []*request {
	t0 := time.Now()
	s.gathering.Store(int32(len(group)))
	defer func() {
		s.gathering.Store(0)
		s.timing.idle.Add(int64(time.Since(t0)))
	}()
	until, w := group[0].deferUntil, 0
	for _, r := range group {
		if r.deferUntil.Before(until) {
			until = r.deferUntil
		}
		w += r.weight()
	}
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	urgent := false
	for len(group) < s.opts.MaxGroup && w < maxGroupCodes {
		var r *request
		if urgent {
			select {
			case r = <-s.reqs:
			default:
				return group // the urgent one and everything queued with it
			}
		} else {
			select {
			case r = <-s.reqs:
			case <-t.C:
				return group
			case <-s.stop:
				return group
			}
		}
		if r.bulk {
			s.held = r
			return group
		}
		group = append(group, r)
		w += r.weight()
		s.gathering.Store(int32(len(group)))
		if r.deferUntil.IsZero() {
			urgent = true
		} else if r.deferUntil.Before(until) {
			until = r.deferUntil
			t.Reset(time.Until(until))
		}
	}
	return group
}

// maxGroupCodes caps the codes one group touches, so that a group of many
// allocations or packs stays well within Badger's transaction size limit
// rather than failing and being split.
const maxGroupCodes = 16384

// weight is how many codes r touches, roughly.
func (r *request) weight() int { return 1 + len(r.ev.Codes) + r.pickN }

// flight is a group on its way to the disk: its redo record being
// written and synced, then its transaction committed to Badger.
type flight struct {
	group     []*request
	t         *wtx
	seq       uint64
	head      [32]byte
	err       error
	committed time.Time
	// stages (see stages.go): sent to the disk, its redo record synced,
	// landed.
	sent, synced, landed time.Time
	done                 chan struct{} // closed once landed: caches updated (the callers are answered just after)
	answered             chan struct{} // closed once the callers are answered
	ag                   applyGroup    // what Badger takes once it landed (g 0: nothing)
	// jn is the group's journal, sealed into its block by the flight
	// before its redo record is written (nil in replay: the committer
	// chained it); after is the flight before it (nil: none since Open,
	// the chain goes on from s.nhead), whose head the first event links to.
	jn    *groupJournal
	after *flight
}

// seal chains the group's journal to the flight before it and adds the
// block and the new head to the group's writes. The flight before has
// landed (a group is sent only then), so its head is final.
func (fl *flight) seal(base [32]byte) {
	if fl.jn == nil {
		return
	}
	prev := base
	if fl.after != nil {
		prev = fl.after.head
	}
	blk, head := fl.jn.seal(prev)
	fl.head = head
	hv := make([]byte, 40)
	binary.BigEndian.PutUint64(hv, fl.seq)
	copy(hv[8:], head[:])
	fl.ag.log = append(fl.ag.log, written{k: journalKey(fl.seq), v: blk}, written{k: keyHead, v: hv})
	fl.jn, fl.after = nil, nil
}

// drainAfterStop refuses requests that raced with Close.
func (s *Store) drainAfterStop() {
	for {
		select {
		case r := <-s.reqs:
			r.err = ErrClosed
			r.done <- struct{}{}
		default:
			return
		}
	}
}

// settle waits until the group in flight, if any, has landed and returns
// its error.
func (s *Store) settle() error {
	if s.prev == nil {
		return nil
	}
	select {
	case <-s.prev.done:
	default:
		t0 := time.Now()
		<-s.prev.done
		s.timing.settle.Add(int64(time.Since(t0)))
	}
	return s.prev.err
}

// needsScan reports whether applying group iterates over keys (see run).
func (s *Store) needsScan(group []*request) bool {
	for _, r := range group {
		if scans(r) {
			return true
		}
	}
	return false
}

// alone reports whether r is applied in a group of its own: a bulk
// request, or one that scans keys (its iterator sees Badger's snapshot, not
// the group's own writes).
func alone(r *request) bool { return r.bulk || scans(r) }

// scans reports whether applying r iterates over keys whose values the
// group in flight may have changed: returning unsent codes, unpacking.
// (Reading a pool ahead does not count: see refillPool.)
func scans(r *request) bool {
	switch r.ev.Kind {
	case EvReturn:
		return len(r.ev.Codes) == 0
	case EvUnpack:
		return true
	}
	return false
}

// drop discards the committer's caches after a group failed: their
// entries may describe writes that never reached the disk. s.pend is
// rebuilt from the groups sent (the failed group's writes out, as unpend
// does).
func (s *Store) drop() {
	s.drops.Add(1)
	s.hot.clear()
	// The applier held back code records of the cache's codes (deferred):
	// Badger takes them now, and the committer a snapshot that has them.
	// The clear changed the cache's epoch, and the applier holds back no
	// write of an older one, so none waits after this.
	if s.ap != nil && s.ap.flushNow() == nil {
		s.newerSnap()
	}
	// The cache held the last writes of its codes (written.hot): they go
	// back in s.pend (they stay there until Badger has every group, their
	// generation is retired, a newer write replaces them, or the next
	// rebuild); the touch log lacks them, so no hint from before now is
	// trusted.
	s.rebuildPend(true)
	s.touched.reset(s.nseq)
	if s.rcache != nil {
		s.rcache.clear()
	}
	clear(s.ahead)
}

// fresh makes s.snap a snapshot that holds every group sent so far, so
// that s.pend is empty: the group in flight lands, and Badger takes every
// landed group.
func (s *Store) fresh() {
	if s.settle() != nil {
		return
	}
	if s.ap.waitFor(s.gseq) != nil {
		return
	}
	s.newerSnap()
}

// newerSnap takes the applier's newest snapshot, if it is newer than the
// committer's; s.pend forgets what it holds a generation at a time (see
// Store.pend), or all of it once the snapshot holds every group sent.
func (s *Store) newerSnap() { s.newerSnapBuilding(false) }

// newerSnapBuilding is newerSnap while a group is being built (building):
// its writes are in s.pend, not yet in s.sent, and stay even if the
// snapshot holds every group sent; cleared, the next group would read the
// values they replaced (TestLaggingKeepsTheWaitingGroupsWrites).
func (s *Store) newerSnapBuilding(building bool) {
	txn, g, v := s.ap.takeSnap(s.snapV)
	if txn == nil {
		return
	}
	s.snap.Discard()
	s.snap, s.snapG, s.snapV = txn, g, v
	if g >= s.gseq && !building {
		clear(s.pend)
		s.retirePendOld()
		s.sent = s.sent[:0]
		return
	}
	i := 0
	for i < len(s.sent) && s.sent[i].g <= g {
		i++
	}
	s.sent = append(s.sent[:0], s.sent[i:]...)
	if s.pendOld != nil && g >= s.pendOldTop {
		s.retirePendOld()
	}
	if s.pendOld == nil && len(s.pend) >= pendGen {
		// Every write in it is of a group up to the one being built.
		s.pendOld, s.pendOldTop = s.pend, s.gseq+1
		s.pend, s.pendSpare = s.pendSpare, nil
		if s.pend == nil {
			s.pend = make(map[string]pendW, pendGen)
		}
	}
}

// pendGen is the size at which s.pend becomes s.pendOld: with the writes
// made while the snapshot lags (some 40,000 keys at a full load), under
// maxPendKeys, which counts both generations.
var pendGen = 1 << 15 // a variable for tests

// retirePendOld forgets s.pendOld, keeping its table for the next
// generation unless it grew large.
func (s *Store) retirePendOld() {
	if s.pendOld == nil {
		return
	}
	if len(s.pendOld) <= 2*pendGen {
		clear(s.pendOld)
		s.pendSpare = s.pendOld
	}
	s.pendOld = nil
	s.pendRetired.Add(1)
}

// pendLen is the number of keys s.pend's generations hold.
func (s *Store) pendLen() int { return len(s.pend) + len(s.pendOld) }

// unpend takes the writes of a group that was not sent out of s.pend: it
// is rebuilt from the groups sent after the snapshot (rare: a group too
// big for one transaction, a failed read).
func (s *Store) unpend() { s.rebuildPend(false) }

// rebuildPend fills s.pend from the groups sent after the snapshot, with
// the code records the committer's cache holds (written.hot) if withHot.
func (s *Store) rebuildPend(withHot bool) {
	clear(s.pend)
	s.retirePendOld()
	for _, g := range s.sent {
		for _, w := range g.log {
			if !w.hot || withHot {
				s.pend[keyString(w.k)] = pendW{w.v, w.del, g.g}
			}
		}
	}
}

// fail stops the store's writes after Badger failed under the applier.
func (s *Store) fail(err error) {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
	s.log.Error("ledger: Badger failed behind the redo log; store is read-only until reopened (the log keeps the groups)", "err", err)
}

// answer signals every request of group, giving err to those without one.
// A request is answered once, and its done channel has room for the one
// signal (a channel sent to, not closed: a Commission's request and its
// channel are used again, see Commission). After the send the committer
// never touches the request again.
func answer(group []*request, err error) {
	for _, r := range group {
		if err != nil && r.err == nil {
			r.err = err
		}
		r.done <- struct{}{}
	}
}

// process applies a group and sends its redo record to the disk. If the
// group is too big for one Badger transaction, it is split in halves and
// retried.
func (s *Store) process(group []*request) {
	if s.needsScan(group) {
		s.fresh()
	} else {
		s.newerSnap()
	}
	if err := s.failed(); err != nil {
		answer(group, fmt.Errorf("ledger stopped accepting writes after a failed commit: %w", err))
		return
	}
	t := newWtx(s, s.snap)
	t.hot, t.overlay, t.g = true, s.overlay, s.gseq+1
	bl := s.newBuilder(t)
	t0 := time.Now()
	var err error
	for _, r := range group {
		if err = s.add(bl, r); err != nil {
			break
		}
	}
	applying := time.Since(t0)
	// While the flight is in the air, more requests join this group rather
	// than wait for the next: the committer works instead of waiting, and
	// fewer syncs carry more requests. A request that must commit alone or
	// scan keys waits for the next group; so do all requests once one is
	// waiting (s.held holds one at most: a second would be lost).
	if err == nil && s.prev != nil && s.held == nil && !alone(group[0]) {
		t1 := time.Now()
	extend:
		for len(group) < s.opts.MaxGroup && bl.weight < maxGroupCodes {
			select {
			case <-s.prev.done:
				break extend
			case r := <-s.reqs:
				if alone(r) {
					s.held = r
					break extend
				}
				group = append(group, r)
				if err = s.add(bl, r); err != nil {
					break extend
				}
			}
		}
		s.timing.settle.Add(int64(time.Since(t1)))
	}
	if err == nil && s.opts.failGroup != nil && s.opts.failGroup() {
		err = storageErr(badger.ErrTxnTooBig)
	}
	if err == nil {
		t2 := time.Now()
		err = s.finish(bl)
		applying += time.Since(t2)
	}
	s.timing.apply.Add(int64(applying))
	t.overlay = nil // applied: the flight's caches are no longer needed through t
	seq, wrote := bl.seq, bl.wrote
	if err == nil && !wrote && len(t.log) > 0 {
		s.unpend()
	}
	if err != nil {
		s.drop()
		if errors.Is(err, badger.ErrTxnTooBig) && len(group) > 1 {
			h := len(group) / 2
			s.process(group[:h:h]) // capped: its group may grow, and must not overwrite the other half
			s.process(group[h:])
			return
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			err = fmt.Errorf("one operation is too large for a transaction (%d codes): split it", len(group[0].ev.Codes))
		}
		s.settle()
		answer(group, fmt.Errorf("ledger commit: %w", err))
		return
	}
	// Answers and the next group wait until everything before is durable.
	if perr := s.settle(); perr != nil {
		s.drop()
		answer(group, fmt.Errorf("ledger commit: %w", perr))
		return
	}
	if !wrote {
		answer(group, nil) // refusals and no-ops: nothing to write
		return
	}
	// The group's pool allocations join the committer's index before it is
	// sent, so that the next groups find them while Badger lacks them.
	for pool := range t.allocs {
		if _, err := s.allocIndex(pool); err != nil {
			s.drop()
			answer(group, fmt.Errorf("ledger commit: %w", err))
			return
		}
	}
	for pool, rs := range t.allocs {
		s.allocs[pool].add(rs...)
	}
	// Badger may fall behind by a bounded amount only.
	if s.ap.lagging(s.pendLen()) {
		t3 := time.Now()
		for s.ap.lagging(s.pendLen()) {
			s.ap.waitLess()
			s.newerSnapBuilding(true) // this group's writes stay in s.pend
		}
		s.timing.settle.Add(int64(time.Since(t3)))
		s.timing.lag.Add(int64(time.Since(t3)))
	}
	fl := &flight{group: group, t: t, seq: seq, head: bl.head, committed: time.Now(), done: make(chan struct{}), answered: make(chan struct{})}
	if !s.opts.replay {
		fl.jn, fl.after = &bl.jn, s.prev
	}
	base := s.nhead
	if len(t.log) > 0 || fl.jn != nil {
		// Until Badger holds them, the group's writes are read from s.pend
		// (wtx.wrote put them there).
		s.gseq++
		fl.ag = applyGroup{g: s.gseq, seq: seq, log: t.log, count: t.count, size: t.size}
		s.sent = append(s.sent, fl.ag)
	}
	if s.redo != nil && s.redo.write {
		// The group is durable once its redo record is: the record is
		// written (page cache) and fdatasync'ed while the committer
		// applies the next group. Badger takes it after (applier.go).
		lsn := s.lsn
		s.lsn++
		fl.ag.lsn = lsn
		fl.sent = time.Now()
		go func() {
			fl.seal(base)
			err := s.redo.writeRec(fl.ag.log, lsn)
			if err == nil {
				err = s.redo.sync()
			}
			fl.synced = time.Now()
			s.land(fl, err)
		}()
	} else {
		fl.seal(base)
		fl.sent = time.Now()
		fl.synced = fl.sent
		s.land(fl, nil)
	}
	s.overlay, s.prev = t, fl
	s.nseq = seq
	if s.opts.replay {
		s.nhead = bl.head
	}
}

// failed is the error that stopped the store, if any.
func (s *Store) failed() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.fatal
}

// land runs when a flight's redo record is synced and Badger has applied
// it (or, with NoSync, Badger has applied it): it publishes the flight's
// counters and journal head and answers its callers. Readers of the store
// see a group only once it is durable.
func (s *Store) land(fl *flight, err error) {
	s.mu.Lock()
	if err != nil {
		// Badger's state is unknown to us now: refuse further writes rather
		// than risk caches that disagree with the disk.
		s.fatal = err
		s.mu.Unlock()
		s.log.Error("ledger commit failed; store is read-only until reopened", "err", err)
		fl.err = err
		answer(fl.group, fmt.Errorf("ledger commit: %w", err))
		close(fl.done)
		close(fl.answered)
		return
	}
	for k, v := range fl.t.counters {
		s.counters[k] = v
	}
	for k, v := range fl.t.batches {
		s.batches[k] = v
	}
	for k, v := range fl.t.pools {
		s.pools[k] = v
	}
	s.seq, s.head = fl.seq, fl.head
	if fl.ag.g > 0 {
		s.landedG = fl.ag.g
		s.ap.push(fl.ag)
	}
	s.stats.Groups++
	s.stats.Requests += uint64(len(fl.group))
	s.stats.CommitTime += time.Since(fl.committed)
	s.mu.Unlock()
	fl.landed = time.Now()
	for _, r := range fl.group {
		r.fl = fl
	}
	// Wake the committer before the callers: it is then scheduled ahead of
	// the hundreds of goroutines the answers make runnable.
	close(fl.done)
	if s.opts.beforeAnswer != nil {
		s.opts.beforeAnswer()
	}
	answer(fl.group, nil)
	close(fl.answered)
}

// builder is a group being applied to one transaction.
type builder struct {
	t       *wtx
	seq     uint64
	head    [32]byte     // in replay: the chain as of seq (else the flight chains jn)
	scratch []byte       // in replay: one event's bytes
	jn      groupJournal // the group's events, for its journal block
	wrote   bool
	weight  int
	// What the callers learn (codes picked, seq) is set only once the whole
	// group is in the transaction: a group split and retried starts over
	// from the requests as they came.
	done []applied
}

type applied struct {
	r     *request
	codes []tracecode.Code
	seq   uint64
}

func (s *Store) newBuilder(t *wtx) *builder {
	// The write log is sized as the last group's was: it is kept (by the
	// redo record, s.pend and Badger's commit) and so cannot be reused,
	// but need not grow by doubling from nothing either. The journal's
	// encoding buffers are dead once sealed, and go round (journalBufs).
	if t.hot && t.mem == nil && s.lastLog > 0 {
		t.log = make([]written, 0, min(s.lastLog+s.lastLog/4, 1<<14))
	}
	b := &builder{t: t, seq: s.nseq, head: s.nhead}
	b.jn.bufs = s.jbufs
	// done is the committer's alone, and dead once finish has told the
	// callers: the next builder takes it (a failed builder's is lost).
	b.done, s.doneBuf = s.doneBuf[:0], nil
	return b
}

// add applies r. A refusal is r's own (r.err); an error returned means the
// transaction failed and must be discarded.
func (s *Store) add(b *builder, r *request) error {
	if r.started.IsZero() {
		r.started = time.Now()
	}
	b.weight += r.weight()
	r.err, r.noop, r.collided, r.lastKey = nil, false, nil, nil
	ev := r.ev // the retry after a split starts from the caller's request
	if ev.Codes != nil {
		ev.Codes = append([]tracecode.Code(nil), ev.Codes...)
	}
	seq := b.seq
	if !s.opts.replay {
		ev.Seq = seq + 1
		ev.At = s.opts.Now().UTC()
		ev.Prev = "" // the flight links it (seal)
	} else {
		seq = ev.Seq - 1 // replay follows the stored numbering; Verify reports gaps
	}
	t := b.t
	t.hints, t.hintAt, t.hintSeq = r.hints, 0, r.hintSeq
	err := t.apply(&ev, r)
	t.hints = nil
	if errors.Is(err, errNoop) {
		r.noop = true
		return nil
	}
	if err != nil {
		if isTxnErr(err) {
			return err
		}
		r.err = err
		return nil
	}
	if s.opts.replay {
		body, err := appendEvent(b.scratch[:0], &ev)
		if err != nil {
			return err
		}
		b.scratch = body
		b.head = chainHash(b.head, seq, body)
	} else if err := b.jn.add(&ev); err != nil {
		return err
	}
	b.seq = ev.Seq
	b.wrote = true
	b.done = append(b.done, applied{r, ev.Codes, ev.Seq})
	return nil
}

// finish adds the group's counters, journal block and head to the
// transaction (if anything was written) and tells the callers their codes.
func (s *Store) finish(b *builder) error {
	if !b.wrote {
		return nil // everything refused or a no-op: nothing to write
	}
	t := b.t
	if err := t.flush(); err != nil {
		return err
	}
	if s.opts.replay {
		hv := make([]byte, 40)
		binary.BigEndian.PutUint64(hv, b.seq)
		copy(hv[8:], b.head[:])
		if err := t.set(keyHead, hv); err != nil {
			return err
		}
	} else {
		// The journal block and the head are written by the flight once
		// it has chained the events (flight.seal): their room is taken now.
		if err := t.fitsLen(len(journalKey(b.seq)), b.jn.n); err != nil {
			return err
		}
		if err := t.fitsLen(len(keyHead), 40); err != nil {
			return err
		}
	}
	if s.redo != nil && s.redo.write {
		// The group's redo record, as Badger will hold it: recovery tells
		// by it which groups Badger has (redo_open.go, recover).
		if err := t.set(keyRedo, binary.BigEndian.AppendUint64(nil, s.lsn)); err != nil {
			return err
		}
	}
	for _, a := range b.done {
		a.r.ev.Codes, a.r.ev.Seq = a.codes, a.seq
	}
	clear(b.done)
	s.doneBuf = b.done[:0]
	s.lastLog = len(t.log)
	return nil
}

// Stats are the committer's counters since Open.
type Stats struct {
	Groups     uint64        `json:"groups"`   // synced transactions
	Requests   uint64        `json:"requests"` // requests they carried
	CommitTime time.Duration `json:"commit_ns"`
	// Where the committer's time went: applying groups, waiting for the
	// group in flight to land (applying the requests that join meanwhile),
	// waiting for requests.
	ApplyTime  time.Duration `json:"apply_ns"`
	SettleWait time.Duration `json:"settle_wait_ns"`
	IdleWait   time.Duration `json:"idle_wait_ns"`
	// The redo log: records written (one per group) and their bytes
	// (4 KiB blocks), checkpoints taken (Badger synced), and the time
	// groups waited for a checkpoint to free a segment.
	RedoRecords     uint64        `json:"redo_records"`
	RedoBytes       uint64        `json:"redo_bytes"`
	Checkpoints     uint64        `json:"checkpoints"`
	RedoSegmentWait time.Duration `json:"redo_segment_wait_ns"`
	// RedoWriteBacks: the checkpointer's passes starting the write-back
	// of Badger's logs (redo.go, writeBackTick).
	RedoWriteBacks uint64 `json:"redo_write_backs"`
	// Badger behind the log (applier.go): its commits, the groups they
	// took, the groups' writes and those Badger got (a key written by
	// several groups of one commit goes to Badger once), the time the
	// commits took, and the time the committer waited for Badger to catch
	// up (also in SettleWait).
	BadgerCommits  uint64        `json:"badger_commits"`
	BadgerGroups   uint64        `json:"badger_groups"`
	BadgerWritesIn uint64        `json:"badger_writes_in"`
	BadgerWrites   uint64        `json:"badger_writes"`
	BadgerBusy     time.Duration `json:"badger_busy_ns"`
	BadgerLagWait  time.Duration `json:"badger_lag_wait_ns"`
	// Cached code records the applier held back from Badger (each time
	// one was, a later write replacing it or not), and those it wrote
	// when a reader or a checkpoint needed them (applier.go).
	BadgerDeferred uint64 `json:"badger_deferred"`
	BadgerFlushed  uint64 `json:"badger_flushed"`
	// Flushes of every held-back record (a reader, a dropped cache), and
	// the times a failed group emptied the committer's caches (drop).
	BadgerFullFlushes uint64 `json:"badger_full_flushes"`
	CacheDrops        uint64 `json:"cache_drops"`
}

// Stats reports the committer's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	st := s.stats
	s.mu.RUnlock()
	st.ApplyTime = time.Duration(s.timing.apply.Load())
	st.SettleWait = time.Duration(s.timing.settle.Load())
	st.IdleWait = time.Duration(s.timing.idle.Load())
	if since := s.idleSince.Load(); since != 0 {
		st.IdleWait += max(time.Since(time.Unix(0, since)), 0)
	}
	if r := s.redo; r != nil {
		st.RedoRecords, st.RedoBytes, st.Checkpoints = r.records.Load(), r.bytes.Load(), r.checkpoints.Load()
		st.RedoSegmentWait = time.Duration(r.segWait.Load())
		st.RedoWriteBacks = r.writeBacks.Load()
	}
	if a := s.ap; a != nil {
		a.mu.Lock()
		st.BadgerCommits, st.BadgerGroups, st.BadgerWritesIn, st.BadgerWrites, st.BadgerBusy = a.batches, a.groups, a.keysIn, a.keysOut, a.busy
		st.BadgerDeferred, st.BadgerFlushed, st.BadgerFullFlushes = a.deferredIn, a.deferredOut, a.fullFlushes
		a.mu.Unlock()
	}
	st.BadgerLagWait = time.Duration(s.timing.lag.Load())
	st.CacheDrops = s.drops.Load()
	return st
}

func isTxnErr(err error) bool {
	return errors.Is(err, badger.ErrTxnTooBig) || errors.Is(err, badger.ErrConflict) ||
		errors.Is(err, badger.ErrDBClosed) || errors.Is(err, errStorage)
}

var errStorage = errors.New("storage")

// chainHash is SHA-256(previous hash || canonical body). The first event
// chains from 32 zero bytes.
func chainHash(prev [32]byte, prevSeq uint64, body []byte) [32]byte {
	var c chainHasher
	return c.sum(prev, prevSeq, body)
}

// chainHasher computes chainHash for many events into one buffer: the
// digest is taken with sha256.Sum256 on prev || body, so nothing escapes
// (the hash.Hash interface made its output buffer a heap object per event).
type chainHasher struct{ buf []byte }

func (c *chainHasher) sum(prev [32]byte, prevSeq uint64, body []byte) [32]byte {
	c.start(prev, prevSeq)
	c.buf = append(c.buf, body...)
	return c.digest()
}

// start begins c.buf with the hash the next body chains to (zeros for the
// first event); the caller appends the body and takes the digest.
func (c *chainHasher) start(prev [32]byte, prevSeq uint64) {
	if prevSeq == 0 {
		prev = [32]byte{}
	}
	c.buf = append(c.buf[:0], prev[:]...)
}

func (c *chainHasher) digest() [32]byte { return sha256.Sum256(c.buf) }

// badgerLogger sends Badger's warnings and errors to slog; its chatter is dropped.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(string, ...any)  {}
func (b badgerLogger) Debugf(string, ...any) {}
