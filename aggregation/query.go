package aggregation

import (
	"context"
	"errors"
	"fmt"
	"sort"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// view runs fn over a read-only snapshot.
func (s *Store) view(fn func(t *wtx) error) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if err := s.caughtUp(); err != nil {
		return err
	}
	return s.db.View(func(txn *badger.Txn) error { return fn(newWtx(s, txn)) })
}

// Code returns everything known of a code, with its full history.
func (s *Store) Code(ctx context.Context, code tracecode.Code) (CodeInfo, error) {
	return s.code(ctx, code, true)
}

// Lookup is Code without the history: cheap, for the hot path and the HMI's lists.
func (s *Store) Lookup(ctx context.Context, code tracecode.Code) (CodeInfo, error) {
	return s.code(ctx, code, false)
}

func (s *Store) code(ctx context.Context, code tracecode.Code, history bool) (CodeInfo, error) {
	var ci CodeInfo
	err := s.view(func(t *wtx) error {
		cv, err := t.lookup(code)
		if err != nil {
			return err
		}
		ci = CodeInfo{Code: code, State: cv.rec.State, Pool: cv.loc.Pool, Batch: cv.loc.Batch, Level: cv.loc.Level,
			Generated: cv.rec.Flags&flagGenerated != 0, Parent: cv.rec.Parent, Children: int(cv.rec.Children),
			Partial: cv.rec.Flags&flagPartial != 0, Mixed: cv.rec.Flags&flagMixed != 0}
		seqs := cv.rec.Seqs
		if cv.loc.inPool() {
			ci.Pool = cv.loc.Pool
			e, err := t.poolEntry(cv.loc.Pool, cv.loc.QSeq)
			if err != nil {
				return err
			}
			if e.code != code {
				return storageErr(fmt.Errorf("code %s: its pool entry %d holds %s", code, e.n, e.code))
			}
			if seqs, err = decodeSeqs(e.hist); err != nil {
				return storageErr(err)
			}
		} else if b, ok := t.batch(cv.loc.Batch); ok {
			ci.BatchState = b.State
		}
		if !history || len(seqs) == 0 {
			return nil
		}
		jr := newJournalReader(t.txn)
		defer jr.close()
		for _, seq := range seqs {
			ev, err := jr.event(seq)
			if err != nil {
				return err
			}
			ci.History = append(ci.History, ev)
		}
		return nil
	})
	return ci, err
}

func (jr *journalReader) event(seq uint64) (Event, error) {
	e, err := jr.entry(seq)
	if err != nil {
		return Event{}, err
	}
	ev, err := decodeEvent(e.body)
	if err != nil {
		return ev, storageErr(fmt.Errorf("journal event %d: %w", seq, err))
	}
	return ev, nil
}

// Events streams the journal from seq from (1 = the beginning) in order.
func (s *Store) Events(ctx context.Context, from uint64, fn func(Event) error) error {
	return s.view(func(t *wtx) error {
		o := badger.DefaultIteratorOptions
		o.Prefix = []byte(pfxJournal)
		it := t.txn.NewIterator(o)
		defer it.Close()
		for it.Seek(journalKey(from)); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			last := blockLast(it.Item().Key())
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return storageErr(err)
			}
			ents, err := parseBlock(v)
			if err != nil || last < uint64(len(ents)) {
				return storageErr(fmt.Errorf("journal block ending at event %d: corrupt", last))
			}
			for i, e := range ents {
				seq := last - uint64(len(ents)-1-i)
				if seq < from {
					continue
				}
				ev, err := decodeEvent(e.body)
				if err != nil {
					return storageErr(fmt.Errorf("journal event %d: %w", seq, err))
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Ancestors returns code's parent, grandparent, … up to the top.
func (s *Store) Ancestors(ctx context.Context, code tracecode.Code) ([]tracecode.Code, error) {
	var out []tracecode.Code
	err := s.view(func(t *wtx) error {
		c := code
		for i := 0; i <= int(tracecode.MaxLevel); i++ {
			cv, err := t.lookup(c)
			if err != nil {
				return err
			}
			if cv.rec.Parent == "" {
				return nil
			}
			out = append(out, cv.rec.Parent)
			c = cv.rec.Parent
		}
		return storageErr(fmt.Errorf("code %s: parent chain longer than %d levels", code, tracecode.MaxLevel))
	})
	return out, err
}

// Tree calls fn for parent and every code under it, depth first, parents
// before their children.
func (s *Store) Tree(ctx context.Context, parent tracecode.Code, fn func(Node) error) error {
	return s.view(func(t *wtx) error {
		cv, err := t.lookup(parent)
		if err != nil {
			return err
		}
		// One iterator for the whole walk: seeking is much cheaper than
		// opening an iterator per parent.
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		o.Prefix = []byte(pfxLink)
		it := t.txn.NewIterator(o)
		defer it.Close()
		var walk func(n Node) error
		walk = func(n Node) error {
			if err := fn(n); err != nil {
				return err
			}
			if n.Level <= 1 {
				return nil
			}
			pfx := linkPrefix(n.Code)
			var kids []tracecode.Code
			for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
				k, err := keyCode(it.Item().Key()[len(pfx):])
				if err != nil {
					return storageErr(fmt.Errorf("children of %s: key %q: %w", n.Code, it.Item().Key(), err))
				}
				kids = append(kids, k)
			}
			for _, k := range kids {
				if err := walk(Node{Code: k, Parent: n.Code, Level: n.Level - 1, Depth: n.Depth + 1}); err != nil {
					return err
				}
			}
			return ctx.Err()
		}
		return walk(Node{Code: parent, Parent: cv.rec.Parent, Level: cv.loc.Level})
	})
}

// Summary returns a batch's reconciliation counters, in O(levels).
func (s *Store) Summary(ctx context.Context, batch string) (BatchSummary, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.batches[batch]
	if b == nil {
		return BatchSummary{}, fmt.Errorf("batch %q: %w", batch, ErrNotFound)
	}
	return buildSummary(b, func(l tracecode.Level) levelCounters {
		if c := s.counters[blKey{batch, l}]; c != nil {
			return *c
		}
		return levelCounters{}
	}), nil
}

// Batches lists the batch ids the ledger holds, sorted.
func (s *Store) Batches(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.batches))
	for id := range s.batches {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// Spec returns the spec a batch was created with.
func (s *Store) Spec(ctx context.Context, batch string) (BatchSpec, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.batches[batch]
	if b == nil {
		return BatchSpec{}, fmt.Errorf("batch %q: %w", batch, ErrNotFound)
	}
	return b.Spec, nil
}

// Codes streams the codes of batch at level that are now in state (all of
// them if state is StateUnknown), in key order, without holding them in
// memory. fn's error stops the walk and is returned.
func (s *Store) Codes(ctx context.Context, batch string, level tracecode.Level, state CodeState, fn func(tracecode.Code) error) error {
	s.mu.RLock()
	_, ok := s.batches[batch]
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("batch %q: %w", batch, ErrNotFound)
	}
	return s.view(func(t *wtx) error {
		pfx := codePrefix(batch, level)
		o := badger.DefaultIteratorOptions
		o.Prefix = pfx
		o.PrefetchValues = false // code records are inline (see refillPool)
		it := t.txn.NewIterator(o)
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			if state != StateUnknown {
				var st CodeState
				if err := item.Value(func(v []byte) error {
					if len(v) == 0 {
						return errCorrupt
					}
					st = CodeState(v[0])
					return nil
				}); err != nil {
					return storageErr(err)
				}
				if st != state {
					continue
				}
			}
			c, err := keyCode(item.Key()[len(pfx):])
			if err != nil {
				return storageErr(fmt.Errorf("batch %s: key %q: %w", batch, item.Key(), err))
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pools reports every pool's account, sorted by name.
func (s *Store) Pools(ctx context.Context) ([]tracecode.PoolStat, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]tracecode.PoolStat, 0, len(s.pools))
	for _, p := range s.pools {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pool < out[j].Pool })
	return out, nil
}

// IsNotFound and IsRefused are conveniences for callers that only branch.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
func IsRefused(err error) bool  { return errors.Is(err, ErrRefused) }

// Unconfirmed is a code whose physical fate the ledger has not confirmed:
// a loose level-1 code commissioned without a journaled gate outcome (Item
// is its unit, from the commission event), or a parent holding children
// whose label was not printed or, with LabelCheck, not verified.
type Unconfirmed struct {
	Code          tracecode.Code  `json:"code"`
	Level         tracecode.Level `json:"level"`
	Item          uint64          `json:"item,omitempty"`
	LabelPrinted  bool            `json:"label_printed,omitempty"`
	LabelVerified bool            `json:"label_verified,omitempty"`
}

// Unconfirmed lists batch's unconfirmed codes (see type Unconfirmed): at
// level 1 only if the batch was created with GateConfirm, at levels ≥ 2
// every parent holding children whose label is not printed, or not verified
// where the level has LabelCheck. A line calls it at restart.
func (s *Store) Unconfirmed(ctx context.Context, batch string, fn func(Unconfirmed) error) error {
	spec, err := s.Spec(ctx, batch)
	if err != nil {
		return err
	}
	var found []Unconfirmed
	err = s.view(func(t *wtx) error {
		for _, ls := range spec.Levels {
			if ls.Level == 1 && !spec.GateConfirm {
				continue
			}
			pfx := codePrefix(batch, ls.Level)
			o := badger.DefaultIteratorOptions
			o.Prefix = pfx
			o.PrefetchValues = false // code records are inline (see refillPool)
			it := t.txn.NewIterator(o)
			for it.Rewind(); it.Valid(); it.Next() {
				if err := ctx.Err(); err != nil {
					it.Close()
					return err
				}
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return storageErr(err)
				}
				r, err := decodeRec(v)
				if err != nil {
					it.Close()
					return storageErr(err)
				}
				c, err := keyCode(it.Item().Key()[len(pfx):])
				if err != nil {
					it.Close()
					return storageErr(err)
				}
				switch {
				case ls.Level == 1:
					if r.State == StateCommissioned && r.Flags&flagGatePassed == 0 {
						found = append(found, Unconfirmed{Code: c, Level: 1})
					}
				case r.Children > 0:
					printed, verified := r.Flags&flagLabelPrinted != 0, r.Flags&flagLabelVerified != 0
					if !printed || ls.LabelCheck && !verified {
						found = append(found, Unconfirmed{Code: c, Level: ls.Level, LabelPrinted: printed, LabelVerified: verified})
					}
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range found {
		if found[i].Level == 1 {
			info, err := s.Code(ctx, found[i].Code)
			if err != nil {
				return err
			}
			for _, ev := range info.History {
				if ev.Kind == EvCommission && ev.Unit != nil {
					found[i].Item = ev.Unit.ItemID
				}
			}
		}
		if err := fn(found[i]); err != nil {
			return err
		}
	}
	return nil
}
