package aggregation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// VerifyReport is what Verify found. Problems name every failing event or
// code; an empty list means the ledger is intact and balanced.
type VerifyReport struct {
	Events   uint64   `json:"events"`
	Codes    int64    `json:"codes"`
	Batches  int      `json:"batches"`
	Problems []string `json:"problems"`
	// Truncated counts problems beyond the first MaxProblems not listed.
	Truncated int `json:"truncated,omitempty"`
}

// MaxProblems caps the problems a report lists.
const MaxProblems = 10000

// OK reports whether nothing failed.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 && r.Truncated == 0 }

func (r *VerifyReport) add(format string, a ...any) {
	if len(r.Problems) >= MaxProblems {
		r.Truncated++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

// VerifyDir opens the ledger in dir, verifies it and closes it.
func VerifyDir(ctx context.Context, dir string, opts Options) (VerifyReport, error) {
	if _, err := os.Stat(dir); err != nil {
		return VerifyReport{}, fmt.Errorf("no ledger at %s: %w", dir, err)
	}
	opts.verifyOnly = true
	s, err := Open(dir, opts)
	if err != nil {
		return VerifyReport{}, err
	}
	defer s.Close()
	return s.Verify(ctx)
}

// Verify checks the ledger as of one snapshot: it walks the journal checking
// the hash chain, replays every event with the same apply rules into an
// in-memory table of the projections the journal implies (memKV: no Badger
// store under the replay), compares them with the stored projections key by
// key, and checks invariants 1–5 on the stored projections. An error is
// returned only when the check itself could not run.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	if s.opts.verifyOnly && s.dir != "" {
		// A store of its own (VerifyDir), no line's: the pages of the
		// ledger it has read are dropped from its resident set as it goes.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					dropMappedPages(s.dir)
				}
			}
		}()
		defer func() { close(stop); <-done }()
	}
	if err := s.caughtUp(); err != nil {
		return rep, err
	}
	err := s.db.View(func(txn *badger.Txn) error {
		return withInvariants(ctx, txn, &rep, func() error {
			m := newMemReplay(s.log)
			defer m.kv.free()
			err := s.verifyJournal(ctx, txn, &rep, func(ev *Event) { m.apply(ev, &rep) }, nil)
			if err == nil {
				err = m.finish()
			}
			if err == nil {
				err = compareMem(ctx, txn, m.kv, &rep)
			}
			return err
		})
	})
	if err == nil && verifyCrossCheck {
		err = crossCheck(ctx, s, rep)
	}
	return rep, err
}

// verifyCrossCheck (tests only) makes Verify also run verifyScratch, the
// replay through a scratch Badger store, and fail if their problems differ.
var verifyCrossCheck = false

func crossCheck(ctx context.Context, s *Store, rep VerifyReport) error {
	old, err := s.verifyScratch(ctx)
	if err != nil {
		return err
	}
	a, b := slices.Sorted(slices.Values(rep.Problems)), slices.Sorted(slices.Values(old.Problems))
	if !slices.Equal(a, b) || rep.Events != old.Events || rep.Truncated != old.Truncated {
		return fmt.Errorf("verify: the in-memory replay says (%d events)\n%s\nthe scratch store's replay says (%d events)\n%s",
			rep.Events, strings.Join(a, "\n"), old.Events, strings.Join(b, "\n"))
	}
	return nil
}

// verifyScratch is Verify as it was before the in-memory replay: the
// events replayed into a scratch Badger store on disk (in TMPDIR), whose
// projections are then merged with the stored ones. Kept for tests only,
// as a second replay to check Verify's verdicts against: at 1M units it
// took minutes of CPU and gigabytes of memory (docs/ledger.md).
func (s *Store) verifyScratch(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	scratch, err := os.MkdirTemp("", "tracline-verify-")
	if err != nil {
		return rep, fmt.Errorf("verify: scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	rs, err := Open(scratch, Options{replay: true, NoSync: true, Logger: s.log, MemTableMB: 16, CacheMB: 32})
	if err != nil {
		return rep, fmt.Errorf("verify: scratch store: %w", err)
	}
	defer rs.Close()
	if err := s.caughtUp(); err != nil {
		return rep, err
	}
	err = s.db.View(func(txn *badger.Txn) error {
		return withInvariants(ctx, txn, &rep, func() error {
			g := &scratchReplay{rs: rs, rep: &rep}
			err := s.verifyJournal(ctx, txn, &rep, g.add, g.flush)
			if err == nil {
				err = compareProjections(ctx, txn, rs, &rep)
			}
			return err
		})
	})
	return rep, err
}

// withInvariants runs check (the journal walk, replay and comparison) with
// the invariant check alongside on the same read-only snapshot (a Badger
// transaction serves concurrent iterators); the invariants' problems are
// listed after check's.
func withInvariants(ctx context.Context, txn *badger.Txn, rep *VerifyReport, check func() error) error {
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inv VerifyReport
	invDone := make(chan error, 1)
	go func() { invDone <- checkInvariants(ictx, txn, &inv) }()
	if err := check(); err != nil {
		cancel()
		<-invDone
		return err
	}
	if err := <-invDone; err != nil {
		return err
	}
	rep.merge(inv)
	return nil
}

// merge adds o's problems and counts to r's.
func (r *VerifyReport) merge(o VerifyReport) {
	r.Codes += o.Codes
	r.Batches += o.Batches
	for _, p := range o.Problems {
		r.add("%s", p)
	}
	r.Truncated += o.Truncated
}

// replayGroupCodes caps the codes one replayed group touches, as
// maxGroupCodes does for the line's groups, for the scratch store's smaller
// memtables.
const replayGroupCodes = 4096

// scratchReplay groups events for the scratch store's committer.
type scratchReplay struct {
	rs     *Store
	rep    *VerifyReport
	group  []*request
	weight int
}

func (g *scratchReplay) add(ev *Event) {
	r := &request{ev: *ev, done: make(chan struct{}, 1)}
	if alone(r) {
		// Its scan reads Badger, which holds every group before it once
		// they are flushed (Store.fresh), and not its group's own writes.
		g.flush()
		g.group, g.weight = append(g.group, r), r.weight()
		g.flush()
		return
	}
	g.group = append(g.group, r)
	g.weight += r.weight()
	// A group stays within the scratch store's transaction size: one
	// too big is applied, discarded and split by the committer, which
	// also empties the replay's caches (see Store.drop).
	if len(g.group) == 2048 || g.weight >= replayGroupCodes {
		g.flush() // each request keeps its own verdict: a refusal names exactly its event
	}
}

func (g *scratchReplay) flush() {
	if len(g.group) == 0 {
		return
	}
	g.rs.process(g.group)
	for _, r := range g.group {
		<-r.done
	}
	for _, r := range g.group {
		if r.err != nil {
			g.rep.add("event %d (%s): replay refused it: %v", r.ev.Seq, r.ev.Kind, r.err)
		}
	}
	g.rs.mu.RLock()
	fatal := g.rs.fatal
	g.rs.mu.RUnlock()
	if fatal != nil {
		g.rep.add("replay stopped: %v", fatal)
	}
	g.group, g.weight = nil, 0 // the committer may still hold the old slice
}

// verifyJournal walks the journal checking the hash chain and hands every
// readable event to replay, in order; end, if set, runs after the last one,
// before the journal head is checked.
func (s *Store) verifyJournal(ctx context.Context, txn *badger.Txn, rep *VerifyReport, replay func(*Event), end func()) error {
	o := badger.DefaultIteratorOptions
	o.Prefix = []byte(pfxJournal)
	it := txn.NewIterator(o)
	defer it.Close()
	var prev, prevAlt [32]byte
	var ch chainHasher
	var seq uint64
	for it.Rewind(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Item().Key()
		last := blockLast(k)
		if last == 0 {
			rep.add("journal key %x is malformed", k)
			continue
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		ents, perr := parseBlock(v)
		if perr != nil || last < uint64(len(ents)) {
			rep.add("journal block ending at event %d: unreadable (%v): its events cannot be checked", last, perr)
			seq = last
			continue
		}
		first := last - uint64(len(ents)) + 1
		if first != seq+1 {
			rep.add("event %d: journal jumps from event %d (events %d..%d missing)", first, seq, seq+1, first-1)
		}
		for i, e := range ents {
			n := first + uint64(i)
			seq = n
			var stored [32]byte
			copy(stored[:], e.hash)
			body := e.body
			ev, perr := decodeEvent(body)
			// Chain from whichever of the previous event's stored or recomputed
			// hash this event names, so that one altered event (body or hash) is
			// named once, not again in its successor.
			if perr == nil && n > 1 && ev.Prev == hex.EncodeToString(prevAlt[:]) {
				prev = prevAlt
			}
			want := ch.sum(prev, n-1, body)
			if want != stored {
				rep.add("event %d: hash mismatch: stored event altered (stored %x…, computed %x…)", n, stored[:6], want[:6])
			}
			if perr != nil {
				rep.add("event %d: unreadable: %v", n, perr)
				prev, prevAlt = stored, want
				continue
			}
			wantPrev := ""
			if n > 1 {
				wantPrev = hex.EncodeToString(prev[:])
			}
			if ev.Seq != n {
				rep.add("event %d: body says seq %d", n, ev.Seq)
			}
			if ev.Prev != wantPrev {
				rep.add("event %d: prev hash %.12s… does not chain to event %d (%.12s…)", n, ev.Prev, n-1, wantPrev)
			}
			prev, prevAlt = stored, want
			rep.Events++
			replay(&ev)
		}
	}
	if end != nil {
		end()
	}
	hv, err := txn.Get(keyHead)
	switch {
	case err == badger.ErrKeyNotFound:
		if seq != 0 {
			rep.add("journal head missing while %d events exist", seq)
		}
	case err != nil:
		return err
	default:
		v, _ := hv.ValueCopy(nil)
		if len(v) != 40 || binary.BigEndian.Uint64(v) != seq || !bytes.Equal(v[8:], prev[:]) {
			rep.add("journal head does not match the last event %d (events after it lost, or head altered)", seq)
		}
	}
	return nil
}

// compareProjections merges the stored and the replayed projection tables.
func compareProjections(ctx context.Context, txn *badger.Txn, rs *Store, rep *VerifyReport) error {
	if err := rs.caughtUp(); err != nil {
		return err
	}
	return rs.db.View(func(rtx *badger.Txn) error {
		for _, pfx := range projectionPrefixes {
			a, b := iter(txn, pfx), iter(rtx, pfx)
			for a.Valid() || b.Valid() {
				if err := ctx.Err(); err != nil {
					a.Close()
					b.Close()
					return err
				}
				var ka, kb []byte
				if a.Valid() {
					ka = a.Item().Key()
				}
				if b.Valid() {
					kb = b.Item().Key()
				}
				switch c := cmpKeys(ka, kb); {
				case c < 0:
					rep.add("%s: stored, but no event produced it", describeKey(ka))
					a.Next()
				case c > 0:
					rep.add("%s: missing from the store, the journal produces it", describeKey(kb))
					b.Next()
				default:
					va, _ := a.Item().ValueCopy(nil)
					vb, _ := b.Item().ValueCopy(nil)
					if !sameValue(pfx, va, vb) {
						rep.add("%s: stored %s, the journal gives %s", describeKey(ka), describeVal(pfx, va), describeVal(pfx, vb))
					}
					a.Next()
					b.Next()
				}
			}
			a.Close()
			b.Close()
		}
		return nil
	})
}

func iter(txn *badger.Txn, pfx string) *badger.Iterator {
	o := badger.DefaultIteratorOptions
	o.Prefix = []byte(pfx)
	it := txn.NewIterator(o)
	it.Rewind()
	return it
}

// cmpKeys orders keys with nil (an exhausted iterator) last.
func cmpKeys(a, b []byte) int {
	switch {
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

func sameValue(pfx string, a, b []byte) bool {
	switch pfx {
	case pfxBatch, pfxCounter, pfxPool:
		// JSON: compare decoded, so that field order or spacing never matters.
		var x, y any
		if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
			return bytes.Equal(a, b)
		}
		return fmt.Sprint(x) == fmt.Sprint(y)
	}
	return bytes.Equal(a, b)
}

func describeKey(k []byte) string {
	if len(k) < 2 {
		return fmt.Sprintf("key %q", k)
	}
	body := k[2:]
	parts := bytes.SplitN(body, []byte{0}, 2) // batch and pool names hold no 0x00; packed codes may
	switch string(k[:2]) {
	case pfxLoc:
		if c, err := keyCode(body); err == nil {
			return fmt.Sprintf("code %s (location)", c)
		}
	case pfxCode:
		if len(parts) == 2 && len(parts[1]) >= 1 {
			if c, err := keyCode(parts[1][1:]); err == nil {
				return fmt.Sprintf("code %s (batch %s %s)", c, parts[0], tracecode.Level(parts[1][0]))
			}
		}
	case pfxPoolCode:
		if len(parts) == 2 && len(parts[1]) == 8 {
			return fmt.Sprintf("pool %s entry %d", parts[0], binary.BigEndian.Uint64(parts[1]))
		}
	case pfxQueue:
		return fmt.Sprintf("pool %s (queue)", body)
	case pfxAlloc:
		if len(parts) == 2 && len(parts[1]) == 8 {
			return fmt.Sprintf("pool %s allocation ending at entry %d", parts[0], binary.BigEndian.Uint64(parts[1]))
		}
	case pfxPool:
		return fmt.Sprintf("pool %s (account)", body)
	case pfxBatch:
		return fmt.Sprintf("batch %s (record)", body)
	case pfxMeta, pfxTrail:
		return describeAuditKey(k)
	case pfxCounter:
		if len(parts) == 2 && len(parts[1]) == 1 {
			return fmt.Sprintf("batch %s %s (counters)", parts[0], tracecode.Level(parts[1][0]))
		}
	case pfxLink:
		p, rest, err := splitKeyCode(body)
		if err == nil && len(rest) > 0 && rest[0] == 0 {
			if c, err := keyCode(rest[1:]); err == nil {
				return fmt.Sprintf("code %s (child of %s)", c, p)
			}
		}
	}
	return fmt.Sprintf("key %q", k)
}

func describeVal(pfx string, v []byte) string {
	switch pfx {
	case pfxCode:
		r, err := decodeRec(v)
		if err != nil {
			return fmt.Sprintf("corrupt record %x", v)
		}
		return fmt.Sprintf("{%s parent=%q children=%d events=%v}", r.State, r.Parent, r.Children, r.Seqs)
	case pfxPoolCode:
		c, hist, err := decodePoolEntry(v)
		if err != nil {
			return fmt.Sprintf("corrupt pool entry %x", v)
		}
		seqs, _ := decodeSeqs(hist)
		return fmt.Sprintf("{code %s events=%v}", c, seqs)
	case pfxLoc:
		l, err := decodeLoc(v)
		if err != nil {
			return fmt.Sprintf("%q", v)
		}
		if l.inPool() {
			return fmt.Sprintf("pool %s entry %d", l.Pool, l.QSeq)
		}
		return fmt.Sprintf("batch %s %s", l.Batch, l.Level)
	}
	if len(v) > 300 {
		return fmt.Sprintf("%.300s…", v)
	}
	return string(v)
}

// checkInvariants checks invariants 2 and 4 on the stored projections,
// independently of the counters' own bookkeeping. (1 and 5 are proven by the
// journal walk and the replay: a code sent twice or an event out of order is
// refused there.)
func checkInvariants(ctx context.Context, txn *badger.Txn, rep *VerifyReport) error {
	batches := map[string]*batchRec{}
	counted := map[blKey]*[NumCodeStates]int64{}
	err := scanPrefix(txn, pfxBatch, func(k, v []byte) error {
		var b batchRec
		if err := json.Unmarshal(v, &b); err != nil {
			rep.add("%s: unreadable: %v", describeKey(k), err)
			return nil
		}
		batches[b.Spec.ID] = &b
		return nil
	})
	if err != nil {
		return err
	}
	rep.Batches = len(batches)
	o := badger.DefaultIteratorOptions
	o.Prefix = []byte(pfxCode)
	o.PrefetchValues = false // code records are inline (see refillPool)
	it := txn.NewIterator(o)
	defer it.Close()
	lo := badger.DefaultIteratorOptions
	lo.PrefetchValues = false
	lo.Prefix = []byte(pfxLink)
	links := txn.NewIterator(lo) // one iterator, seeking per parent
	defer links.Close()
	// Every link parent → child must match the child's record (its parent,
	// aggregated, one level below). Rather than look up each child (a
	// random read per child: most of Verify's time on a 1M-unit batch),
	// both sides are summed as multisets of (child, parent, level) hashes
	// while the records stream by; only if the sums differ are the
	// children looked up one by one, to name the problems.
	var fromLinks, fromRecs pairSum
	for it.Rewind(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Item().KeyCopy(nil)
		parts := bytes.SplitN(k[2:], []byte{0}, 2)
		if len(parts) != 2 || len(parts[1]) < 2 {
			rep.add("%s: malformed key", describeKey(k))
			continue
		}
		batch, level := string(parts[0]), tracecode.Level(parts[1][0])
		code, err := keyCode(parts[1][1:])
		if err != nil {
			rep.add("%s: malformed key: %v", describeKey(k), err)
			continue
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		r, err := decodeRec(v)
		if err != nil {
			rep.add("%s: corrupt record", describeKey(k))
			continue
		}
		rep.Codes++
		bk := blKey{batch, level}
		if counted[bk] == nil {
			counted[bk] = new([NumCodeStates]int64)
		}
		counted[bk][r.State]++
		b := batches[batch]
		if b == nil {
			rep.add("code %s: batch %s has no record", code, batch)
			continue
		}
		if r.State == StateAggregated && r.Parent == "" || r.State != StateAggregated && r.Parent != "" {
			rep.add("code %s: state %s with parent %q", code, r.State, r.Parent)
		}
		if r.State == StateAggregated {
			fromRecs.add(code, r.Parent, level)
		}
		if r.Flags&flagGateRejected != 0 && (r.State == StateCommissioned || r.State == StateAggregated) {
			rep.add("code %s: %s, but the reject gate confirmed its unit rejected", code, r.State)
		}
		if ls, _ := b.Spec.level(level); r.Children > 0 && ls.LabelCheck && b.State != BatchOpen && r.Flags&flagLabelVerified == 0 {
			rep.add("code %s: parent of %d in %s batch %s, its label was never verified on its group", code, r.Children, b.State, batch)
		}
		if r.Children == 0 {
			if r.Flags&(flagPartial|flagMixed) != 0 {
				rep.add("code %s: empty but flagged partial or mixed", code)
			}
			continue
		}
		ls, _ := b.Spec.level(level)
		kids := 0
		lp := linkPrefix(code)
		for links.Seek(lp); links.ValidForPrefix(lp); links.Next() {
			kids++
			child, err := keyCode(links.Item().Key()[len(lp):])
			if err != nil {
				rep.add("%s: %v", describeKey(links.Item().KeyCopy(nil)), err)
				continue
			}
			fromLinks.add(child, code, level-1)
		}
		switch {
		case kids != int(r.Children):
			rep.add("code %s: record says %d children, %d linked", code, r.Children, kids)
		case r.Flags&flagPartial == 0 && kids != ls.Ratio:
			rep.add("code %s: full parent holds %d children, its level's ratio is %d", code, kids, ls.Ratio)
		case r.Flags&flagPartial != 0 && kids >= ls.Ratio:
			rep.add("code %s: flagged partial but holds %d children (ratio %d)", code, kids, ls.Ratio)
		}
	}
	if fromLinks != fromRecs {
		if err := checkChildren(ctx, txn, rep); err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(batches))
	for id := range batches {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b := batches[id]
		sum := buildSummary(b, func(l tracecode.Level) levelCounters {
			var c levelCounters
			if v, err := txn.Get(counterKey(id, l)); err == nil {
				raw, _ := v.ValueCopy(nil)
				if json.Unmarshal(raw, &c) != nil {
					rep.add("batch %s %s: counters unreadable", id, l)
				}
			}
			return c
		})
		for _, p := range sum.Check() {
			rep.add("%s", p)
		}
		for _, l := range sum.Levels {
			n := counted[blKey{id, l.Level}]
			if n == nil {
				n = new([NumCodeStates]int64)
			}
			for st := StateAllocated; int(st) < NumCodeStates; st++ {
				if n[st] != l.raw.States[st] {
					rep.add("batch %s %s: counters say %d codes %s, the records hold %d", id, l.Level, l.raw.States[st], st, n[st])
				}
			}
		}
		switch b.State {
		case BatchReleased, BatchActive, BatchHandedOff:
			if b.Signature == nil || b.Signature.Meaning != "released" {
				rep.add("batch %s is %s without a release signature", id, b.State)
			}
		}
	}
	return nil
}

// pairSum is a multiset of (child, parent, level) triples: the count and
// two 64-bit sums of their hashes under two seeds. Two multisets of
// distinct contents have equal sums with negligible probability; the
// projections are also compared with the journal's replay key by key.
type pairSum struct {
	n    int64
	a, b uint64
}

var pairSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func (p *pairSum) add(child, parent tracecode.Code, level tracecode.Level) {
	var h maphash.Hash
	for i, seed := range pairSeeds {
		h.SetSeed(seed)
		h.WriteString(string(child))
		h.WriteByte(0)
		h.WriteString(string(parent))
		h.WriteByte(byte(level))
		if i == 0 {
			p.a += h.Sum64()
		} else {
			p.b += h.Sum64()
		}
	}
	p.n++
}

// checkChildren looks up every linked child and names each one whose
// record disagrees with its link.
func checkChildren(ctx context.Context, txn *badger.Txn, rep *VerifyReport) error {
	o := badger.DefaultIteratorOptions
	o.PrefetchValues = false
	o.Prefix = []byte(pfxLink)
	it := txn.NewIterator(o)
	defer it.Close()
	found := false
	for it.Rewind(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Item().Key()
		parent, rest, err := splitKeyCode(k[len(pfxLink):])
		if err != nil || len(rest) < 2 || rest[0] != 0 {
			rep.add("%s: malformed link key", describeKey(it.Item().KeyCopy(nil)))
			found = true
			continue
		}
		child, err := keyCode(rest[1:])
		if err != nil {
			rep.add("%s: %v", describeKey(it.Item().KeyCopy(nil)), err)
			found = true
			continue
		}
		t := &wtx{txn: txn, s: &Store{}}
		pv, err := t.lookup(parent)
		if err != nil {
			rep.add("code %s (parent of %s): %v", parent, child, err)
			found = true
			continue
		}
		if msg := checkChild(txn, parent, pv.loc.Level, child); msg != "" {
			rep.add("%s", msg)
			found = true
		}
	}
	if !found {
		rep.add("links and the children's records disagree (an aggregated record with no link to it)")
	}
	return nil
}

func checkChild(txn *badger.Txn, parent tracecode.Code, level tracecode.Level, child tracecode.Code) string {
	t := &wtx{txn: txn, s: &Store{}}
	cv, err := t.lookup(child)
	if err != nil {
		return fmt.Sprintf("code %s (child of %s): %v", child, parent, err)
	}
	if cv.loc.Level != level-1 {
		return fmt.Sprintf("code %s (child of %s): level %s under a level %s parent", child, parent, cv.loc.Level, level)
	}
	if cv.rec.Parent != parent || cv.rec.State != StateAggregated {
		return fmt.Sprintf("code %s: linked under %s but its record says %s in %q", child, parent, cv.rec.State, cv.rec.Parent)
	}
	return ""
}

// digest is used by tests to compare two stores' projections.
func digest(txn *badger.Txn) [32]byte {
	h := sha256.New()
	for _, pfx := range projectionPrefixes {
		_ = scanPrefix(txn, pfx, func(k, v []byte) error { h.Write(k); h.Write(v); return nil })
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
