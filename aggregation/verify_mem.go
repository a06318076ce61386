package aggregation

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// memReplay is Verify's replay: every event goes through the same apply
// rules as on the line (wtx.apply), but into memKV, not a Badger store.
// The events are applied one by one in a single long-lived wtx (there is
// no group to commit, nothing in flight); its counters, batches and pools
// are written into the table as JSON at the end (wtx.flush), as a group's
// are when it commits.
type memReplay struct {
	s  *Store // no database: the caches apply reads and writes
	t  *wtx
	kv *memKV
	n  int
}

func newMemReplay(log *slog.Logger) *memReplay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		log: log, opts: Options{replay: true, prefetch: poolPrefetch},
		hot: newHotCache(), ahead: map[string]poolAhead{}, allocs: map[string]*allocIndex{},
		counters: map[blKey]*levelCounters{}, batches: map[string]*batchRec{}, pools: map[string]*tracecode.PoolStat{},
	}
	kv := newMemKV()
	t := newWtx(s, nil)
	t.hot, t.mem = true, kv
	return &memReplay{s: s, t: t, kv: kv}
}

// apply replays ev; a refusal is a problem naming the event.
func (m *memReplay) apply(ev *Event, rep *VerifyReport) {
	r := &request{ev: *ev}
	err := m.t.apply(&r.ev, r)
	if err != nil && !errors.Is(err, errNoop) {
		rep.add("event %d (%s): replay refused it: %v", ev.Seq, ev.Kind, err)
	}
	if m.n++; m.n%1024 == 0 {
		m.kv.compact() // between events: no value read from the table is held
	}
}

// finish writes the counters, batches and pools into the table.
func (m *memReplay) finish() error {
	return m.t.flush()
}

// compareMem compares the stored projections with the replayed ones: the
// stored tables are streamed in key order and each key is looked up in the
// replay's table (and marked seen); then the replay's keys never seen are
// the ones missing from the store. The problems are listed table by table,
// in key order, as a merge of both sides would list them.
func compareMem(ctx context.Context, txn *badger.Txn, kv *memKV, rep *VerifyReport) error {
	type found struct {
		key []byte
		msg string
	}
	per := make([][]found, len(projectionPrefixes))
	noted, extra := 0, 0
	note := func(i int, k []byte, msg string) {
		if noted >= MaxProblems {
			extra++
			return
		}
		noted++
		per[i] = append(per[i], found{k, msg})
	}
	for i, pfx := range projectionPrefixes {
		o := badger.DefaultIteratorOptions
		o.Prefix = []byte(pfx)
		o.PrefetchValues = false // values are inline in the LSM tree
		it := txn.NewIterator(o)
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					it.Close()
					return err
				}
			}
			item := it.Item()
			k := item.Key()
			vb, ok := kv.visit(k)
			if !ok {
				note(i, item.KeyCopy(nil), describeKey(k)+": stored, but no event produced it")
				continue
			}
			err := item.Value(func(va []byte) error {
				if !sameValue(pfx, va, vb) {
					note(i, item.KeyCopy(nil), describeKey(k)+": stored "+describeVal(pfx, va)+", the journal gives "+describeVal(pfx, vb))
				}
				return nil
			})
			if err != nil {
				it.Close()
				return err
			}
		}
		it.Close()
	}
	kv.each(func(k, _ []byte, seen bool) {
		if seen || len(k) < 2 {
			return
		}
		if i := slices.Index(projectionPrefixes, string(k[:2])); i >= 0 {
			note(i, slices.Clone(k), describeKey(k)+": missing from the store, the journal produces it")
		}
	})
	for _, l := range per {
		slices.SortStableFunc(l, func(a, b found) int { return bytes.Compare(a.key, b.key) })
		for _, f := range l {
			rep.add("%s", f.msg)
		}
	}
	rep.Truncated += extra
	return nil
}
