package aggregation

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// wtx is one group's view: the Badger transaction plus copy-on-write
// overlays of the cached counters, batches and pools. Apply functions check
// everything first and only then write, so a refused operation leaves both
// the transaction and the overlays untouched.
type wtx struct {
	s        *Store
	txn      *badger.Txn
	hot      bool // the committer's: may use and must maintain s.hot
	counters map[blKey]*levelCounters
	// lastCtr is the entry of counters ctr returned last: nearly every
	// transition counts in the level the one before it counted in, and
	// the map's hash of the batch's ID was 2.6% of the 100k full load's
	// CPU (session 21). Entries of counters are never replaced.
	lastCtrK blKey
	lastCtr  *levelCounters
	batches  map[string]*batchRec
	pools    map[string]*tracecode.PoolStat
	// hints of the request being applied, used in order (see hintOK).
	hints   []codeView
	hintAt  int
	hintSeq uint64
	// log lists the keys this group wrote, in order (its redo record and
	// Badger's writes); each is also in s.pend as group g's (see get).
	// overlay is the group in flight, whose counters, batches and pools
	// are not published yet (see Store.run).
	log     []written
	g       uint64
	overlay *wtx
	// count and size: the group's writes as a Badger transaction counts
	// them (see set); the applier commits whole groups.
	count, size int64
	// allocs lists the pool allocations this group made, in order
	// (committer only; see allocIndex); lastAlloc is the last one read
	// per pool (outside the committer).
	allocs    map[string][]allocRange
	lastAlloc map[string]allocRange
	heads     map[string]uint64 // queue heads read (outside the committer: a snapshot's do not move)
	// mem, in Verify's replay, holds the projections instead of txn (nil:
	// txn is used). Its writes are not logged: no group is in flight.
	mem *memKV
}

func newWtx(s *Store, txn *badger.Txn) *wtx {
	return &wtx{s: s, txn: txn, counters: map[blKey]*levelCounters{},
		batches: map[string]*batchRec{}, pools: map[string]*tracecode.PoolStat{}}
}

func storageErr(err error) error { return fmt.Errorf("%w: %w", errStorage, err) }

// set and del: the committer's group keeps its writes in t.log, which its
// redo record and then Badger take (applier.go; t.txn is a read-only
// snapshot); Verify's replay writes to memory; a migration at Open writes
// to its own Badger transaction.
func (t *wtx) set(k, v []byte) error {
	switch {
	case t.mem != nil:
		t.mem.set(k, v)
		return nil
	case !t.hot:
		if err := t.txn.Set(k, v); err != nil {
			return storageErr(err)
		}
		return nil
	}
	if err := t.fits(k, v); err != nil {
		return err
	}
	t.wrote(k, v, false)
	return nil
}

func (t *wtx) del(k []byte) error {
	switch {
	case t.mem != nil:
		t.mem.del(k)
		return nil
	case !t.hot:
		if err := t.txn.Delete(k); err != nil {
			return storageErr(err)
		}
		return nil
	}
	if err := t.fits(k, nil); err != nil {
		return err
	}
	t.wrote(k, nil, true)
	return nil
}

// fits counts a write as Badger's transaction does (Txn.checkSize: key,
// value, two meta bytes, eight of version and two more) and refuses it with
// Badger's ErrTxnTooBig past Badger's limits: a group is committed to
// Badger in one transaction (with others), and replayed from the redo log
// in one transaction of its own.
func (t *wtx) fits(k, v []byte) error {
	if len(k) == 0 {
		return storageErr(badger.ErrEmptyKey)
	}
	return t.fitsLen(len(k), len(v))
}

// fitsLen counts a write of a key and value of these lengths (see fits).
func (t *wtx) fitsLen(k, v int) error {
	count, size := t.count+1, t.size+int64(k+v)+2+10
	if !txnFits(t.s.db, count, size) {
		return storageErr(badger.ErrTxnTooBig)
	}
	t.count, t.size = count, size
	return nil
}

// A Badger transaction starts out counting one entry and 21 bytes, its
// commit's own (Badger's newTransaction: the entry that marks the end of
// the transaction, "!badger!txn" and ten bytes more).
const (
	txnBaseCount = 1
	txnBaseSize  = int64(len("!badger!txn") + 10)
)

// txnFits reports whether writes that Txn.checkSize counts as count entries
// of size bytes fit one Badger transaction. Badger refuses the write that
// brings its own count, which starts at txnBaseCount, to MaxBatchCount (or
// its size, from txnBaseSize, to MaxBatchSize). Counting from zero, as this
// package did until session 21, let a group or the applier's batch of groups
// end one entry (or up to 21 bytes) past what Badger takes: the applier's
// commit then failed and the store stopped taking writes (seen once in a
// 100k bench run's pack phase), and a record that full could not have been
// replayed.
func txnFits(db *badger.DB, count, size int64) bool {
	return txnBaseCount+count < db.MaxBatchCount() && txnBaseSize+size < db.MaxBatchSize()
}

// written is a key's value as a group left it.
type written struct {
	k, v []byte
	del  bool
	// hot: a code record the committer's cache holds (putRec), left out
	// of s.pend: the committer reads the code from the cache. If the
	// cache is dropped (drop), rebuildPend puts it back. The applier
	// holds it back from Badger until a later write of the key replaces
	// it, unless the cache was dropped since (epoch: applier.go).
	hot   bool
	epoch uint32 // the cache's epoch when hot was written
}

func (t *wtx) wrote(k, v []byte, del bool) {
	t.log = append(t.log, written{k: k, v: v, del: del})
	t.s.pend[keyString(k)] = pendW{v, del, t.g}
}

// get returns the value of k, or nil, false if absent: from this group's
// writes, else the flight's, else the snapshot. Badger's transaction gives
// its own writes before the snapshot, so t.log is consulted only when the
// flight wrote k.
func (t *wtx) get(k []byte) ([]byte, bool, error) {
	if t.mem != nil {
		v, ok := t.mem.get(k)
		return v, ok, nil
	}
	if t.hot {
		// The latest write of k, this group's or one Badger may lack
		// (s.pend), else the snapshot.
		w, ok := t.s.pend[string(k)]
		if !ok && t.s.pendOld != nil {
			w, ok = t.s.pendOld[string(k)]
		}
		if ok {
			if w.del {
				return nil, false, nil
			}
			return w.v, true, nil
		}
	}
	it, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storageErr(err)
	}
	v, err := it.ValueCopy(nil)
	if err != nil {
		return nil, false, storageErr(err)
	}
	return v, true, nil
}

// codeView is a code as the group sees it now.
type codeView struct {
	code tracecode.Code
	loc  loc
	rec  rec // valid when !loc.inPool()
	// slot is the committer's cache entry the view was read from (see
	// hotCache.get), nil if it came from anywhere else; only putRec uses it.
	slot *hotEntry
}

// lookup finds a code; a code unknown to the store is ErrNotFound.
func (t *wtx) lookup(c tracecode.Code) (codeView, error) {
	if err := checkCode(c); err != nil {
		return codeView{}, err
	}
	if t.hot && t.mem == nil { // Verify's replay reads every code from its table
		if cv, ok := t.s.hot.get(c); ok {
			return cv, nil // its Seqs are clipped: putRec's append copies them
		}
		if t.hintAt < len(t.hints) && t.hints[t.hintAt].code == c {
			h := t.hints[t.hintAt]
			t.hintAt++
			if t.s.touched.unchangedSince(c, t.hintSeq) {
				h.rec.Seqs = slices.Clone(h.rec.Seqs)
				return h, nil
			}
		}
		if rc := t.s.rcache; rc != nil {
			if cv, ok := rc.get(c); ok {
				return cv, nil
			}
		}
	}
	v, ok, err := t.get(locKey(c))
	if err != nil {
		return codeView{}, err
	}
	if !ok {
		return codeView{}, fmt.Errorf("code %s is not known to this ledger: %w", c, ErrNotFound)
	}
	l, err := decodeLoc(v)
	if err != nil {
		return codeView{}, storageErr(fmt.Errorf("code %s: %w", c, err))
	}
	cv := codeView{code: c, loc: l}
	if l.inPool() {
		head, err := t.poolHead(l.Pool)
		if err != nil {
			return codeView{}, err
		}
		if l.QSeq >= head {
			cv.rec.State = StateInPool
			return cv, nil
		}
		// Allocated: the code's location still names its pool entry.
		a, err := t.allocatedTo(l.Pool, l.QSeq)
		if err != nil {
			return codeView{}, fmt.Errorf("code %s: %w", c, err)
		}
		cv.loc.Batch, cv.loc.Level = a.batch, a.level
		l = cv.loc
	}
	rv, ok, err := t.get(codeKey(l.Batch, l.Level, c))
	if err != nil {
		return codeView{}, err
	}
	if !ok {
		return codeView{}, storageErr(fmt.Errorf("code %s: location says batch %s %s but it has no record", c, l.Batch, l.Level))
	}
	if cv.rec, err = decodeRec(rv); err != nil {
		return codeView{}, storageErr(fmt.Errorf("code %s: %w", c, err))
	}
	if t.hot && t.s.rcache != nil {
		t.s.rcache.put(cv)
	}
	return cv, nil
}

func (t *wtx) putRec(cv *codeView, seq uint64) error {
	cv.rec.Seqs = append(cv.rec.Seqs, seq)
	// The key and the record in one allocation: they live as long as
	// each other (the group's log, s.pend, the applier).
	kv := make([]byte, 0, codeKeyCap(cv.loc.Batch, cv.code)+cv.rec.sizeHint())
	k := appendCodeKey(kv, cv.loc.Batch, cv.loc.Level, cv.code)
	k = k[:len(k):len(k)]
	v := cv.rec.appendTo(kv[len(k):len(k)])
	if !t.hot || t.mem != nil { // Verify's replay keeps no cache beside its table
		return t.set(k, v)
	}
	if err := t.fits(k, v); err != nil {
		return err
	}
	cached := false
	switch cv.rec.State {
	case StateAllocated, StateSent, StatePrinted:
		// The cache shares the history, clipped: whoever appends to it
		// (the next putRec of the code, a caller) copies it first.
		c := *cv
		c.rec.Seqs = slices.Clip(cv.rec.Seqs)
		cached = t.s.hot.put(c)
	default:
		t.s.hot.del(cv.code)
	}
	if cached {
		// The committer reads a cached code from the cache only (lookup),
		// so neither s.pend nor the touch log need the write: a code
		// leaves the cache through del, which comes here with !cached, or
		// through drop, which rebuilds s.pend and resets the touch log.
		t.log = append(t.log, written{k: k, v: v, hot: true, epoch: t.s.hot.epoch.Load()})
	} else {
		t.wrote(k, v, false)
		t.s.touched.add(cv.code, seq)
	}
	if t.s.rcache != nil {
		t.s.rcache.put(*cv)
	}
	return nil
}

// touchLog remembers which codes recent events wrote, so that the committer
// can trust a code view a caller read from a snapshot (a hint) without
// reading it again: the view is current if no event after the snapshot
// wrote the code. Two generations bound its memory; a hint older than the
// older generation is not used. Every write of a code record or location
// goes through putRec (a pool import writes locations of codes nobody can
// hold a hint for: they were unknown), which records it here unless the
// code stays in the committer's cache: a hint is used only for a code the
// cache lacks, and the write that takes a code out of the cache is
// recorded (drop, which empties the cache, resets the log).
type touchLog struct {
	cur, old map[tracecode.Code]uint64 // code → seq of the last event that wrote it
	curFrom  uint64                    // cur holds every write after this seq
	from     uint64                    // cur and old together hold every write after this seq
}

const touchGen = 1 << 16

func (l *touchLog) reset(seq uint64) {
	l.cur, l.old = map[tracecode.Code]uint64{}, nil
	l.curFrom, l.from = seq, seq
}

func (l *touchLog) add(c tracecode.Code, seq uint64) {
	if len(l.cur) >= touchGen {
		l.old, l.cur = l.cur, make(map[tracecode.Code]uint64, touchGen)
		l.from, l.curFrom = l.curFrom, seq-1
	}
	l.cur[c] = seq
}

// unchangedSince reports whether no event after seq wrote c.
func (l *touchLog) unchangedSince(c tracecode.Code, seq uint64) bool {
	if seq < l.from {
		return false
	}
	if w, ok := l.cur[c]; ok && w > seq {
		return false
	}
	if w, ok := l.old[c]; ok && w > seq {
		return false
	}
	return true
}

// poolPrefetch is how many codes the committer reads ahead from a pool, so
// that allocating a few codes at a time does not read the pool each time.
const poolPrefetch = 8192 // Options.prefetch

// poolAhead is the committer's read-ahead of a pool: the entries from the
// queue's head on, in order, and next, the entry after the last one read
// (valid if set; else the next read starts at the head).
type poolAhead struct {
	queue []pooled
	next  uint64
	set   bool
}

// poolAhead returns pool's read-ahead; outside the committer it is empty.
func (t *wtx) poolAhead(pool string) poolAhead {
	if !t.hot {
		return poolAhead{}
	}
	return t.s.ahead[pool]
}

func (t *wtx) setPoolAhead(pool string, a poolAhead) {
	if t.hot {
		t.s.ahead[pool] = a
	}
}

// allocRange is one allocation from a pool: entries start..end-1 went to
// batch+level.
type allocRange struct {
	start, end uint64
	batch      string
	level      tracecode.Level
}

func (a allocRange) value() []byte {
	v := binary.BigEndian.AppendUint64([]byte{byte(a.level)}, a.start)
	return append(v, a.batch...)
}

func decodeAllocRange(end uint64, v []byte) (allocRange, error) {
	if len(v) < 10 {
		return allocRange{}, errCorrupt
	}
	a := allocRange{binary.BigEndian.Uint64(v[1:9]), end, string(v[9:]), tracecode.Level(v[0])}
	if a.start >= a.end {
		return allocRange{}, errCorrupt
	}
	return a, nil
}

// allocAt decodes the A/ key and value of item, an allocation from pool.
func allocAt(pool string, item *badger.Item) (allocRange, error) {
	k := item.Key()
	pfx := allocPrefix(pool)
	v, err := item.ValueCopy(nil)
	if err != nil {
		return allocRange{}, err
	}
	if len(k) != len(pfx)+8 {
		return allocRange{}, fmt.Errorf("pool %s: corrupt allocation key %q", pool, k)
	}
	a, err := decodeAllocRange(binary.BigEndian.Uint64(k[len(pfx):]), v)
	if err != nil {
		return allocRange{}, fmt.Errorf("pool %s: corrupt allocation %q", pool, k)
	}
	return a, nil
}

// allocIndex is the committer's copy of a pool's allocations (A/ keys),
// including those of groups on their way to the disk: a transaction's
// iterator sees neither the group in flight nor, cheaply, its own writes
// (Badger sorts them each time one is made).
type allocIndex struct{ ranges []allocRange } // ascending end

func (x *allocIndex) add(rs ...allocRange) { x.ranges = append(x.ranges, rs...) }

// find returns the allocation that took entry n.
func (x *allocIndex) find(n uint64) (allocRange, bool) {
	i, _ := slices.BinarySearchFunc(x.ranges, n+1, func(a allocRange, k uint64) int { return cmp.Compare(a.end, k) })
	if i == len(x.ranges) {
		return allocRange{}, false
	}
	return x.ranges[i], true
}

// allocIndex returns pool's index, read on first use from Badger; each
// group sent to Badger since adds its own when sent (Store.process).
func (s *Store) allocIndex(pool string) (x *allocIndex, err error) {
	if x, ok := s.allocs[pool]; ok {
		return x, nil
	}
	if s.db == nil { // Verify's replay: every allocation is indexed when made
		x = &allocIndex{}
		s.allocs[pool] = x
		return x, nil
	}
	defer func() {
		// Badger's iterators panic on a closed database (a store whose
		// database failed under it): an error here, like any storage error.
		if p := recover(); p != nil {
			perr, ok := p.(error)
			if !ok || !errors.Is(perr, badger.ErrDBClosed) {
				panic(p)
			}
			x, err = nil, storageErr(perr)
		}
	}()
	x = &allocIndex{}
	err = s.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.Prefix = allocPrefix(pool)
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			a, err := allocAt(pool, it.Item())
			if err != nil {
				return err
			}
			x.ranges = append(x.ranges, a)
		}
		return nil
	})
	if err != nil {
		return nil, storageErr(err)
	}
	s.allocs[pool] = x
	return x, nil
}

// poolHead is pool's queue head.
func (t *wtx) poolHead(pool string) (uint64, error) {
	if h, ok := t.heads[pool]; ok {
		return h, nil
	}
	head, _, err := t.queue(pool)
	if err == nil && !t.hot {
		if t.heads == nil {
			t.heads = map[string]uint64{}
		}
		t.heads[pool] = head
	}
	return head, err
}

// addAlloc records an allocation from pool.
func (t *wtx) addAlloc(pool string, a allocRange) error {
	if err := t.set(allocKey(pool, a.end), a.value()); err != nil {
		return err
	}
	if t.mem != nil {
		// Verify's replay: one long transaction, nothing in flight; the
		// store's index takes the allocation at once (a list per group
		// would be searched linearly by allocatedTo).
		x, err := t.s.allocIndex(pool)
		if err != nil {
			return err
		}
		x.add(a)
		return nil
	}
	if t.hot {
		if t.allocs == nil {
			t.allocs = map[string][]allocRange{}
		}
		t.allocs[pool] = append(t.allocs[pool], a)
	}
	return nil
}

// allocatedTo finds the allocation that took pool entry n.
func (t *wtx) allocatedTo(pool string, n uint64) (allocRange, error) {
	missing := func() error { // built only when needed: this is on every lookup's path
		return storageErr(fmt.Errorf("pool %s: entry %d is before the head, but no allocation took it", pool, n))
	}
	if t.hot {
		x, err := t.s.allocIndex(pool)
		if err != nil {
			return allocRange{}, err
		}
		if a, ok := x.find(n); ok && a.start <= n { // earlier groups', in flight included
			return a, nil
		}
		for _, a := range t.allocs[pool] { // this group's, ascending
			if a.end > n {
				return a, nil
			}
		}
		return allocRange{}, missing()
	}
	// Outside the committer: the snapshot's A/ keys, the last range found
	// first (a tree or a list reads many codes of one allocation).
	if a, ok := t.lastAlloc[pool]; ok && a.start <= n && n < a.end {
		return a, nil
	}
	o := badger.DefaultIteratorOptions
	o.PrefetchValues = false
	o.Prefix = allocPrefix(pool)
	it := t.txn.NewIterator(o)
	defer it.Close()
	it.Seek(allocKey(pool, n+1))
	if !it.Valid() {
		return allocRange{}, missing()
	}
	a, err := allocAt(pool, it.Item())
	if err != nil {
		return allocRange{}, storageErr(err)
	}
	if n < a.start {
		return allocRange{}, missing()
	}
	if t.lastAlloc == nil {
		t.lastAlloc = map[string]allocRange{}
	}
	t.lastAlloc[pool] = a
	return a, nil
}

// pooled is a pool entry: its number, code and stored history.
type pooled struct {
	n    uint64
	code tracecode.Code
	hist []byte
}

// queue reads pool's head and tail (both 0 for a pool never filled).
func (t *wtx) queue(pool string) (head, tail uint64, err error) {
	q, err := t.queueRec(pool)
	return q.head, q.tail, err
}

// queueRec is a pool's queue record: head, tail and base, the first entry
// still stored (entries before it were trimmed: see applyTrimPool). The
// record is 16 bytes while nothing was trimmed, 24 after.
type queueRec struct{ head, tail, base uint64 }

func (t *wtx) queueRec(pool string) (queueRec, error) {
	if t.hot && t.s.rcache != nil {
		if q, ok := t.s.rcache.queues[pool]; ok {
			return q, nil
		}
	}
	v, ok, err := t.get(queueKey(pool))
	if err != nil || !ok {
		return queueRec{}, err
	}
	if len(v) != 16 && len(v) != 24 {
		return queueRec{}, storageErr(fmt.Errorf("pool %s: corrupt queue record (%d bytes)", pool, len(v)))
	}
	q := queueRec{head: binary.BigEndian.Uint64(v), tail: binary.BigEndian.Uint64(v[8:])}
	if len(v) == 24 {
		q.base = binary.BigEndian.Uint64(v[16:])
	}
	if q.head > q.tail || q.base > q.head || len(v) == 24 && q.base == 0 {
		return queueRec{}, storageErr(fmt.Errorf("pool %s: corrupt queue record (head %d, tail %d, base %d)", pool, q.head, q.tail, q.base))
	}
	if t.hot && t.s.rcache != nil {
		t.s.rcache.queues[pool] = q
	}
	return q, nil
}

// setQueue moves pool's head and tail, keeping its base.
func (t *wtx) setQueue(pool string, head, tail uint64) error {
	q, err := t.queueRec(pool)
	if err != nil {
		return err
	}
	q.head, q.tail = head, tail
	return t.putQueue(pool, q)
}

func (t *wtx) putQueue(pool string, q queueRec) error {
	v := binary.BigEndian.AppendUint64(nil, q.head)
	v = binary.BigEndian.AppendUint64(v, q.tail)
	if q.base > 0 {
		v = binary.BigEndian.AppendUint64(v, q.base)
	}
	if err := t.set(queueKey(pool), v); err != nil {
		return err
	}
	if t.hot && t.s.rcache != nil {
		t.s.rcache.queues[pool] = q
	}
	return nil
}

// appendPool puts codes at the tail of pool, each with its history.
func (t *wtx) appendPool(pool string, codes []tracecode.Code, hist func(i int) []byte) error {
	head, tail, err := t.queue(pool)
	if err != nil {
		return err
	}
	for i, c := range codes {
		n := tail + uint64(i)
		if err := t.set(locKey(c), loc{Pool: pool, QSeq: n}.encode()); err != nil {
			return err
		}
		if t.hot && t.s.rcache != nil {
			t.s.rcache.del(c) // back in its pool: lookup works out its state
		}
		if err := t.set(poolEntryKey(pool, n), encodePoolEntry(c, hist(i))); err != nil {
			return err
		}
	}
	return t.setQueue(pool, head, tail+uint64(len(codes)))
}

// poolEntry reads pool's entry n.
func (t *wtx) poolEntry(pool string, n uint64) (pooled, error) {
	v, ok, err := t.get(poolEntryKey(pool, n))
	if err != nil {
		return pooled{}, err
	}
	if !ok {
		return pooled{}, storageErr(fmt.Errorf("pool %s: entry %d is missing", pool, n))
	}
	c, hist, err := decodePoolEntry(v)
	if err != nil {
		return pooled{}, storageErr(fmt.Errorf("pool %s entry %d: %w", pool, n, err))
	}
	return pooled{n, c, hist}, nil
}

// hotMax bounds the committer's cache of codes allocated, sent or printed:
// the codes on their way to the printer and between the printer and the
// camera, looked up on every send, commission or reject. A line has a few
// hundred in flight; the bound is for runs that allocate far ahead (their
// later codes are read from Badger, slower but the same).
const hotMax = 1 << 17

func (t *wtx) batch(id string) (*batchRec, bool) {
	if b, ok := t.batches[id]; ok {
		return b, true
	}
	if o := t.overlay; o != nil {
		if b, ok := o.batches[id]; ok {
			return b, true
		}
	}
	t.s.mu.RLock()
	b, ok := t.s.batches[id]
	t.s.mu.RUnlock()
	return b, ok
}

// openBatch returns a batch that must exist and accept codes.
func (t *wtx) batchIn(id string, states ...BatchState) (*batchRec, error) {
	b, ok := t.batch(id)
	if !ok {
		return nil, fmt.Errorf("batch %q: %w", id, ErrNotFound)
	}
	for _, s := range states {
		if b.State == s {
			return b, nil
		}
	}
	return nil, refused("batch %s is %s", id, b.State)
}

func (t *wtx) batchMut(id string) *batchRec {
	if b, ok := t.batches[id]; ok {
		return b
	}
	b, _ := t.batch(id)
	c := b.clone()
	t.batches[id] = c
	return c
}

func (t *wtx) ctrRead(batch string, l tracecode.Level) levelCounters {
	k := blKey{batch, l}
	if c, ok := t.counters[k]; ok {
		return *c
	}
	if o := t.overlay; o != nil {
		if c, ok := o.counters[k]; ok {
			return *c
		}
	}
	t.s.mu.RLock()
	defer t.s.mu.RUnlock()
	if c, ok := t.s.counters[k]; ok {
		return *c
	}
	return levelCounters{}
}

func (t *wtx) ctr(batch string, l tracecode.Level) *levelCounters {
	k := blKey{batch, l}
	if t.lastCtr != nil && t.lastCtrK == k {
		return t.lastCtr
	}
	c, ok := t.counters[k]
	if !ok {
		v := t.ctrRead(batch, l)
		c = &v
		t.counters[k] = c
	}
	t.lastCtrK, t.lastCtr = k, c
	return c
}

func (t *wtx) poolRead(name string) (tracecode.PoolStat, bool) {
	if p, ok := t.pools[name]; ok {
		return *p, true
	}
	if o := t.overlay; o != nil {
		if p, ok := o.pools[name]; ok {
			return *p, true
		}
	}
	t.s.mu.RLock()
	defer t.s.mu.RUnlock()
	if p, ok := t.s.pools[name]; ok {
		return *p, true
	}
	return tracecode.PoolStat{Pool: name}, false
}

func (t *wtx) pool(name string) *tracecode.PoolStat {
	if p, ok := t.pools[name]; ok {
		return p
	}
	p, _ := t.poolRead(name)
	t.pools[name] = &p
	return &p
}

// flush writes the overlays into the transaction.
func (t *wtx) flush() error {
	for k, c := range t.counters {
		v, _ := json.Marshal(c)
		if err := t.set(counterKey(k.batch, k.level), v); err != nil {
			return err
		}
	}
	for id, b := range t.batches {
		v, _ := json.Marshal(b)
		if err := t.set(batchKey(id), v); err != nil {
			return err
		}
	}
	for name, p := range t.pools {
		v, _ := json.Marshal(p)
		if err := t.set(poolKey(name), v); err != nil {
			return err
		}
	}
	return nil
}

// checkCode rejects what cannot be a canonical code before it reaches a key.
func checkCode(c tracecode.Code) error {
	if c == "" {
		return errors.New("empty code")
	}
	if len(c) > 200 {
		return fmt.Errorf("code %.20s… is %d bytes long (max 200)", c, len(c))
	}
	for i := 0; i < len(c); i++ {
		if c[i] < 0x20 || c[i] == 0x7f {
			return fmt.Errorf("code %q contains a control character at byte %d", c, i)
		}
	}
	return nil
}

func checkName(what, s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%s must be 1..128 characters", what)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return fmt.Errorf("%s %q contains a control character", what, s)
		}
	}
	return nil
}
