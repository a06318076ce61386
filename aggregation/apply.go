package aggregation

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// errNoop: the request needs no event (e.g. a hand-off already recorded).
var errNoop = errors.New("nothing to do")

// apply checks ev against the current state and, if allowed, writes its
// projections. It is the only place where state changes, live and in
// Verify's replay alike. Live, it may complete ev (codes picked from a pool,
// codes returned, children unpacked) before the event is journaled.
func (t *wtx) apply(ev *Event, r *request) error {
	if err := ev.Actor.validate(); err != nil {
		return err
	}
	if err := t.applyKind(ev, r); err != nil {
		return err
	}
	if inTrail(ev) {
		return t.indexTrail(ev)
	}
	return nil
}

func (t *wtx) applyKind(ev *Event, r *request) error {
	live := !t.s.opts.replay
	switch ev.Kind {
	case EvPoolAdd:
		return t.applyPoolAdd(ev)
	case EvBatchCreate:
		return t.applyBatchCreate(ev)
	case EvAllocPool:
		return t.applyAllocPool(ev, r, live)
	case EvAllocGen:
		return t.applyAllocGen(ev, r, live)
	case EvReturn:
		return t.applyReturn(ev, r, live)
	case EvSent:
		return t.applySent(ev)
	case EvPrinted, EvCommission, EvReject, EvVoid, EvSample, EvDecommission:
		return t.applyUnit(ev)
	case EvPack:
		return t.applyPack(ev)
	case EvUnpack:
		return t.applyUnpack(ev, live)
	case EvReplace:
		return t.applyReplace(ev)
	case EvComplete, EvRelease, EvActivate, EvHandedOff:
		return t.applyBatchState(ev)
	case EvRejectUnit:
		if _, err := t.batchIn(ev.Batch, BatchOpen, BatchComplete); err != nil {
			return err
		}
		if ev.Reason == "" {
			return errors.New("reject of a unit needs a reason")
		}
		if len(ev.Read) > 512 {
			return fmt.Errorf("read data of %d bytes (max 512)", len(ev.Read))
		}
		c := t.ctr(ev.Batch, 1)
		c.RejectedUnits++
		if ev.Unit != nil {
			c.seeItem(ev.Unit.ItemID)
		}
		return nil
	case EvReprint:
		if ev.Reason == "" {
			return fmt.Errorf("reprint of %s needs a reason", ev.Parent)
		}
		pv, _, err := t.parentOf(ev.Parent)
		if err != nil {
			return err
		}
		if pv.rec.Children == 0 {
			return refused("parent %s holds no children: there is no label to reprint", ev.Parent)
		}
		if ev.Batch != pv.loc.Batch {
			return fmt.Errorf("reprint of %s names batch %q, the code is of %q", ev.Parent, ev.Batch, pv.loc.Batch)
		}
		return t.putRec(&pv, ev.Seq) // in the parent's history; its state is unchanged
	case EvGate:
		return t.applyGate(ev)
	case EvLabel:
		return t.applyLabel(ev)
	case EvRecord:
		return t.applyRecord(ev)
	case EvTrimPool:
		return t.applyTrimPool(ev)
	case EvChallenge:
		if _, err := t.batchIn(ev.Batch, BatchOpen); err != nil {
			return err
		}
		if err := ev.Challenge.validate(); err != nil {
			return err
		}
		ch := *ev.Challenge
		ch.Steps = append([]ChallengeStep(nil), ev.Challenge.Steps...)
		t.batchMut(ev.Batch).Challenge = &ch
		return nil
	}
	return fmt.Errorf("unknown event kind %q", ev.Kind)
}

func (t *wtx) applyPoolAdd(ev *Event) error {
	if err := checkName("pool name", ev.Pool); err != nil {
		return err
	}
	if len(ev.Codes) == 0 {
		return errors.New("no codes to add")
	}
	seen := make(map[tracecode.Code]bool, len(ev.Codes))
	var dup []tracecode.Code
	for _, c := range ev.Codes {
		if err := checkCode(c); err != nil {
			return fmt.Errorf("pool %s: %w", ev.Pool, err)
		}
		if seen[c] {
			dup = append(dup, c)
			continue
		}
		seen[c] = true
		_, ok, err := t.get(locKey(c))
		if err != nil {
			return err
		}
		if ok {
			dup = append(dup, c)
		}
	}
	if len(dup) > 0 {
		return fmt.Errorf("pool %s: %w", ev.Pool, &tracecode.DuplicateCodesError{Codes: uniq(dup)})
	}
	seqs := encodeSeqs([]uint64{ev.Seq})
	if err := t.appendPool(ev.Pool, ev.Codes, func(int) []byte { return seqs }); err != nil {
		return err
	}
	t.pool(ev.Pool).Available += int64(len(ev.Codes))
	return nil
}

func uniq(cs []tracecode.Code) []tracecode.Code {
	seen := map[tracecode.Code]bool{}
	out := cs[:0:0]
	for _, c := range cs {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func (t *wtx) applyBatchCreate(ev *Event) error {
	if ev.Spec == nil {
		return errors.New("batch spec missing")
	}
	if err := ev.Spec.Validate(); err != nil {
		return err
	}
	if ev.Batch != ev.Spec.ID {
		return fmt.Errorf("event batch %q differs from spec id %q", ev.Batch, ev.Spec.ID)
	}
	if _, ok := t.batch(ev.Batch); ok {
		return refused("batch %s already exists", ev.Batch)
	}
	t.batches[ev.Batch] = &batchRec{Spec: *ev.Spec, State: BatchOpen, CreatedAt: ev.Seq}
	for _, l := range ev.Spec.Levels {
		t.ctr(ev.Batch, l.Level)
	}
	return nil
}

func (t *wtx) levelOf(b *batchRec, l tracecode.Level) (LevelSpec, error) {
	ls, ok := b.Spec.level(l)
	if !ok {
		return ls, refused("batch %s has no level %s", b.Spec.ID, l)
	}
	return ls, nil
}

func checkScheme(c tracecode.Code, ls LevelSpec) error {
	if s, ok := tracecode.SchemeOf(c); !ok || s != ls.Scheme {
		return refused("code %s is not a %s code (level %s's scheme)", c, ls.Scheme, ls.Level)
	}
	return nil
}

// applyScratch is the committer's buffers for one request's code views.
type applyScratch struct {
	views []codeView
	hist  [][]byte
}

// scratch returns n zeroed code views and histories for one request's
// use. The committer's are its own buffers, used again by its next
// request: only the committer applies events to its store, one at a time,
// and nothing keeps a view past its request (the cache and the log copy
// what they keep). At full load these were a tenth of the bytes the
// ledger allocated (session 20).
func (t *wtx) scratch(n int) ([]codeView, [][]byte) {
	if !t.hot {
		return make([]codeView, n), make([][]byte, n)
	}
	sc := &t.s.scratch
	if cap(sc.views) < n {
		sc.views, sc.hist = make([]codeView, n), make([][]byte, n)
	}
	v, h := sc.views[:n], sc.hist[:n]
	clear(v)
	clear(h)
	return v, h
}

func (t *wtx) applyAllocPool(ev *Event, r *request, live bool) (err error) {
	b, err := t.batchIn(ev.Batch, BatchOpen)
	if err != nil {
		return err
	}
	ls, err := t.levelOf(b, ev.Level)
	if err != nil {
		return err
	}
	if err := checkName("pool name", ev.Pool); err != nil {
		return err
	}
	var views []codeView
	var hist [][]byte
	if live && len(ev.Codes) == 0 {
		if r.pickN <= 0 || r.pickN > chunk {
			return fmt.Errorf("allocate %d codes: want 1..%d per event", r.pickN, chunk)
		}
		if p, _ := t.poolRead(ev.Pool); p.Available < int64(r.pickN) {
			return fmt.Errorf("pool %s has %d codes, %d asked: %w", ev.Pool, p.Available, r.pickN, tracecode.ErrPoolEmpty)
		}
		ahead := t.poolAhead(ev.Pool)
		if len(ahead.queue) < r.pickN {
			if ahead, err = t.refillPool(ev.Pool, ahead, max(r.pickN, t.s.opts.prefetch)); err != nil {
				return err
			}
			if len(ahead.queue) < r.pickN {
				return storageErr(fmt.Errorf("pool %s: account says %d available, found %d", ev.Pool, t.pool(ev.Pool).Available, len(ahead.queue)))
			}
		}
		var head, tail uint64
		if head, tail, err = t.queue(ev.Pool); err != nil {
			return err
		}
		if ahead.queue[0].n != head {
			return storageErr(fmt.Errorf("pool %s: read ahead from entry %d, but the queue's head is %d", ev.Pool, ahead.queue[0].n, head))
		}
		// Entries from the head on are in the pool: their codes' location
		// and history need no reading.
		views, hist = t.scratch(r.pickN)
		ev.Codes = make([]tracecode.Code, r.pickN)
		for i, pc := range ahead.queue[:r.pickN] {
			if err := checkScheme(pc.code, ls); err != nil {
				return err
			}
			ev.Codes[i] = pc.code
			views[i] = codeView{code: pc.code, loc: loc{Pool: ev.Pool, QSeq: pc.n}, rec: rec{State: StateInPool}}
			hist[i] = pc.hist
		}
		if err := t.setQueue(ev.Pool, head+uint64(r.pickN), tail); err != nil {
			return err
		}
		if err := t.addAlloc(ev.Pool, allocRange{head, head + uint64(r.pickN), ev.Batch, ev.Level}); err != nil {
			return err
		}
		defer func() {
			if err == nil {
				t.setPoolAhead(ev.Pool, poolAhead{ahead.queue[r.pickN:], ahead.next, true})
			}
		}()
	} else {
		if len(ev.Codes) == 0 {
			return errors.New("no codes to allocate")
		}
		// Named codes (a replayed event): they must be the next ones in
		// the pool's queue, as the live allocation took them.
		head, tail, err := t.queue(ev.Pool)
		if err != nil {
			return err
		}
		if uint64(len(ev.Codes)) > tail-head {
			return refused("pool %s holds %d codes, %d named", ev.Pool, tail-head, len(ev.Codes))
		}
		views, hist = t.scratch(len(ev.Codes))
		for i, c := range ev.Codes {
			if err := checkScheme(c, ls); err != nil {
				return err
			}
			cv, err := t.lookup(c)
			if err != nil {
				return err
			}
			if !cv.loc.inPool() || cv.loc.Pool != ev.Pool {
				return refused("code %s is %s, not in pool %s", c, cv.rec.State, ev.Pool)
			}
			e, err := t.poolEntry(ev.Pool, head+uint64(i))
			if err != nil {
				return err
			}
			if e.code != c || cv.loc.QSeq != e.n {
				return refused("code %s is not next in pool %s (entry %d holds %s)", c, ev.Pool, e.n, e.code)
			}
			views[i], hist[i] = cv, e.hist
		}
		if err := t.setQueue(ev.Pool, head+uint64(len(ev.Codes)), tail); err != nil {
			return err
		}
		if err := t.addAlloc(ev.Pool, allocRange{head, head + uint64(len(ev.Codes)), ev.Batch, ev.Level}); err != nil {
			return err
		}
	}
	for i := range views {
		seqs, err := decodeSeqs(hist[i])
		if err != nil {
			return storageErr(fmt.Errorf("pool %s code %s history: %w", ev.Pool, views[i].code, err))
		}
		if err := t.allocate(views[i].code, ev, seqs, ev.Pool, views[i].loc.QSeq, 0); err != nil {
			return err
		}
	}
	p := t.pool(ev.Pool)
	p.Available -= int64(len(ev.Codes))
	p.Allocated += int64(len(ev.Codes))
	c := t.ctr(ev.Batch, ev.Level)
	c.Allocated += int64(len(ev.Codes))
	c.States[StateAllocated] += int64(len(ev.Codes))
	return nil
}

// refillPool reads up to n more entries of pool after those in a. Entries
// are never changed once written, so the transaction's snapshot is right
// for every entry it holds; entries appended by the group in flight, which
// it lacks, are read through the overlay. No barrier is needed.
func (t *wtx) refillPool(pool string, a poolAhead, n int) (poolAhead, error) {
	head, tail, err := t.queue(pool)
	if err != nil {
		return poolAhead{}, err
	}
	next := a.next
	if !a.set || len(a.queue) == 0 && next < head {
		a.queue, next = nil, head
	}
	end := min(next+uint64(n), tail)
	if next >= end {
		return poolAhead{a.queue, next, true}, nil
	}
	if t.mem != nil { // Verify's replay: entries one by one, from memory
		q := slices.Clip(a.queue)
		for i := next; i < end; i++ {
			e, err := t.poolEntry(pool, i)
			if err != nil {
				return poolAhead{}, err
			}
			q = append(q, e)
		}
		return poolAhead{q, end, true}, nil
	}
	o := badger.DefaultIteratorOptions
	o.Prefix = poolCodePrefix(pool)
	// Pool entries are small, inline in the LSM tree: Badger's value
	// prefetch would start a goroutine per entry for nothing (7% of the
	// CPU at 1M units, issue 14's profile).
	o.PrefetchValues = false
	it := t.txn.NewIterator(o)
	defer it.Close()
	q := make([]pooled, len(a.queue), len(a.queue)+int(end-next))
	copy(q, a.queue)
	it.Seek(poolEntryKey(pool, next))
	for i := next; i < end; i++ {
		var e pooled
		if it.Valid() && bytes.Equal(it.Item().Key(), poolEntryKey(pool, i)) {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return poolAhead{}, storageErr(err)
			}
			c, hist, err := decodePoolEntry(v)
			if err != nil {
				return poolAhead{}, storageErr(fmt.Errorf("pool %s entry %d: %w", pool, i, err))
			}
			e = pooled{i, c, hist}
			it.Next()
		} else if e, err = t.poolEntry(pool, i); err != nil {
			return poolAhead{}, err
		}
		q = append(q, e)
	}
	return poolAhead{q, end, true}, nil
}

// allocate gives code to ev's batch+level. A code from a pool keeps its
// location (its pool entry, qseq): the allocation range written with the
// event says where entries went (see allocatedTo).
func (t *wtx) allocate(code tracecode.Code, ev *Event, seqs []uint64, pool string, qseq uint64, flags uint8) error {
	l := loc{Batch: ev.Batch, Level: ev.Level, Pool: pool, QSeq: qseq}
	if pool == "" {
		if err := t.set(locKey(code), l.encode()); err != nil {
			return err
		}
	}
	cv := codeView{code: code, loc: l, rec: rec{State: StateAllocated, Flags: flags, Seqs: seqs}}
	return t.putRec(&cv, ev.Seq)
}

func (t *wtx) applyAllocGen(ev *Event, r *request, live bool) error {
	b, err := t.batchIn(ev.Batch, BatchOpen)
	if err != nil {
		return err
	}
	ls, err := t.levelOf(b, ev.Level)
	if err != nil {
		return err
	}
	if len(ev.Codes) == 0 {
		return errors.New("no codes to register")
	}
	if len(ev.Codes) > chunk {
		return fmt.Errorf("register %d codes: at most %d per event", len(ev.Codes), chunk)
	}
	seen := make(map[tracecode.Code]bool, len(ev.Codes))
	keep := ev.Codes[:0:0]
	for _, c := range ev.Codes {
		if err := checkCode(c); err != nil {
			return err
		}
		if err := checkScheme(c, ls); err != nil {
			return err
		}
		_, known, err := t.get(locKey(c))
		if err != nil {
			return err
		}
		if known || seen[c] {
			if !live {
				return refused("code %s was registered twice", c)
			}
			r.collided = append(r.collided, c)
			continue
		}
		seen[c] = true
		keep = append(keep, c)
	}
	if len(keep) == 0 {
		return errNoop
	}
	ev.Codes = keep
	for _, c := range keep {
		if err := t.allocate(c, ev, nil, "", 0, flagGenerated); err != nil {
			return err
		}
	}
	c := t.ctr(ev.Batch, ev.Level)
	c.Allocated += int64(len(keep))
	c.States[StateAllocated] += int64(len(keep))
	return nil
}

func (t *wtx) applyReturn(ev *Event, r *request, live bool) error {
	b, err := t.batchIn(ev.Batch, BatchOpen, BatchComplete)
	if err != nil {
		return err
	}
	if _, err := t.levelOf(b, ev.Level); err != nil {
		return err
	}
	if live && len(ev.Codes) == 0 {
		pfx := codePrefix(ev.Batch, ev.Level)
		o := badger.DefaultIteratorOptions
		o.Prefix = pfx
		o.PrefetchValues = false // code records are inline (see refillPool)
		it := t.txn.NewIterator(o)
		start := pfx
		if r.after != nil {
			start = r.after
		}
		for it.Seek(start); it.Valid() && len(ev.Codes) < chunk; it.Next() {
			k := it.Item().Key()
			if r.after != nil && bytes.Equal(k, r.after) {
				continue
			}
			r.lastKey = append(r.lastKey[:0], k...)
			var st CodeState
			if err := it.Item().Value(func(v []byte) error {
				if len(v) > 0 {
					st = CodeState(v[0])
				}
				return nil
			}); err != nil {
				it.Close()
				return storageErr(err)
			}
			if st == StateAllocated {
				c, err := keyCode(k[len(pfx):])
				if err != nil {
					it.Close()
					return storageErr(fmt.Errorf("batch %s: key %q: %w", ev.Batch, k, err))
				}
				ev.Codes = append(ev.Codes, c)
			}
		}
		it.Close()
		if len(ev.Codes) == 0 {
			return errNoop
		}
	}
	views := make([]codeView, len(ev.Codes))
	for i, c := range ev.Codes {
		cv, err := t.lookup(c)
		if err != nil {
			return err
		}
		if cv.loc.Batch != ev.Batch || cv.loc.Level != ev.Level || cv.rec.State != StateAllocated {
			return refused("code %s is %s, not allocated to batch %s %s", c, cv.rec.State, ev.Batch, ev.Level)
		}
		views[i] = cv
	}
	ctr := t.ctr(ev.Batch, ev.Level)
	type back struct {
		codes []tracecode.Code
		hist  [][]byte
	}
	pools := map[string]*back{} // codes going back, per pool, in order
	var order []string
	for i := range views {
		cv := &views[i]
		cv.rec.State = StateReturned
		if err := t.putRec(cv, ev.Seq); err != nil {
			return err
		}
		ctr.Returned++
		ctr.move(StateAllocated, StateReturned)
		if cv.loc.Pool == "" {
			continue // generated codes are retired, never reissued
		}
		b := pools[cv.loc.Pool]
		if b == nil {
			b = &back{}
			pools[cv.loc.Pool] = b
			order = append(order, cv.loc.Pool)
		}
		b.codes = append(b.codes, cv.code)
		b.hist = append(b.hist, encodeSeqs(cv.rec.Seqs))
	}
	for _, pool := range order {
		b := pools[pool]
		if err := t.appendPool(pool, b.codes, func(i int) []byte { return b.hist[i] }); err != nil {
			return err
		}
		p := t.pool(pool)
		n := int64(len(b.codes))
		p.Available += n
		p.Allocated -= n
		p.Returned += n
	}
	return nil
}

func (t *wtx) applySent(ev *Event) error {
	if len(ev.Codes) == 0 {
		return errors.New("no codes to mark sent")
	}
	if len(ev.Codes) > chunk {
		return fmt.Errorf("mark %d codes sent: at most %d per call", len(ev.Codes), chunk)
	}
	views, _ := t.scratch(len(ev.Codes))
	var seen map[tracecode.Code]bool
	if len(ev.Codes) > 16 {
		seen = make(map[tracecode.Code]bool, len(ev.Codes))
	}
	for i, c := range ev.Codes {
		cv, err := t.lookup(c)
		if err != nil {
			return err
		}
		if seen != nil && seen[c] || seen == nil && slices.Contains(ev.Codes[:i], c) {
			return refused("code %s appears twice", c)
		}
		if seen != nil {
			seen[c] = true
		}
		if cv.rec.State != StateAllocated {
			return refused("code %s is %s, not allocated", c, cv.rec.State)
		}
		if i == 0 {
			ev.Batch = cv.loc.Batch
			if _, err := t.batchIn(ev.Batch, BatchOpen); err != nil {
				return err
			}
		} else if cv.loc.Batch != ev.Batch {
			return refused("code %s is allocated to batch %s, not %s (one batch per call)", c, cv.loc.Batch, ev.Batch)
		}
		views[i] = cv
	}
	for i := range views {
		cv := &views[i]
		cv.rec.State = StateSent
		if err := t.putRec(cv, ev.Seq); err != nil {
			return err
		}
		c := t.ctr(cv.loc.Batch, cv.loc.Level)
		c.Sent++
		c.move(StateAllocated, StateSent)
	}
	return nil
}

// applyUnit handles the single-code transitions.
func (t *wtx) applyUnit(ev *Event) error {
	if len(ev.Codes) != 1 {
		return fmt.Errorf("%s takes exactly one code, got %d", ev.Kind, len(ev.Codes))
	}
	code := ev.Codes[0]
	cv, err := t.lookup(code)
	if err != nil {
		return err
	}
	st := cv.rec.State
	var to CodeState
	var from []CodeState
	needReason := false
	switch ev.Kind {
	case EvPrinted:
		to, from = StatePrinted, []CodeState{StateSent}
	case EvCommission:
		switch st {
		case StateCommissioned, StateAggregated, StateSampled, StateDecommissioned:
			return fmt.Errorf("code %s was already commissioned (now %s): %w", code, st, ErrDuplicate)
		}
		to, from = StateCommissioned, []CodeState{StateSent, StatePrinted}
	case EvReject:
		to, from, needReason = StateRejected, []CodeState{StateSent, StatePrinted}, true
	case EvVoid:
		to, from, needReason = StateVoided, []CodeState{StateSent, StatePrinted}, true
	case EvSample:
		to, from = StateSampled, []CodeState{StateCommissioned}
	case EvDecommission:
		to, from, needReason = StateDecommissioned, []CodeState{StateCommissioned}, true
	}
	if needReason && ev.Reason == "" {
		return fmt.Errorf("%s of code %s needs a reason", ev.Kind, code)
	}
	ok := false
	for _, f := range from {
		ok = ok || st == f
	}
	if !ok {
		want := from[0].String()
		if len(from) > 1 {
			want += " or " + from[1].String()
		}
		return refused("code %s is %s, not %s", code, st, want)
	}
	if cv.rec.Children > 0 {
		return refused("code %s holds %d children: unpack it first", code, cv.rec.Children)
	}
	ev.Batch = cv.loc.Batch
	b, err := t.batchIn(ev.Batch, BatchOpen, BatchComplete)
	if err != nil {
		return err
	}
	_ = b
	cv.rec.State = to
	if err := t.putRec(&cv, ev.Seq); err != nil {
		return err
	}
	c := t.ctr(cv.loc.Batch, cv.loc.Level)
	c.move(st, to)
	switch to {
	case StatePrinted:
		c.Printed++
	case StateCommissioned:
		c.Commissioned++
		if ev.Unit != nil {
			c.seeItem(ev.Unit.ItemID)
		}
	case StateRejected:
		c.Rejected++
	case StateVoided:
		c.Voided++
	case StateSampled:
		c.Sampled++
	case StateDecommissioned:
		c.Decommissioned++
	}
	return nil
}

// applyTrimPool deletes pool entries base..ev.Upto-1, every one of them
// allocated (before the queue's head).
func (t *wtx) applyTrimPool(ev *Event) error {
	if err := checkName("pool name", ev.Pool); err != nil {
		return err
	}
	if _, ok := t.poolRead(ev.Pool); !ok {
		return fmt.Errorf("pool %q: %w", ev.Pool, ErrNotFound)
	}
	q, err := t.queueRec(ev.Pool)
	if err != nil {
		return err
	}
	switch {
	case ev.Upto <= q.base:
		return refused("pool %s: entries before %d are trimmed already (kept from %d)", ev.Pool, ev.Upto, q.base)
	case ev.Upto > q.head:
		return refused("pool %s: entry %d is not allocated (the next to allocate is %d): only allocated entries are trimmed", ev.Pool, ev.Upto-1, q.head)
	case ev.Upto-q.base > chunk:
		return fmt.Errorf("pool %s: trim of %d entries (at most %d per event)", ev.Pool, ev.Upto-q.base, chunk)
	}
	for n := q.base; n < ev.Upto; n++ {
		if err := t.del(poolEntryKey(ev.Pool, n)); err != nil {
			return err
		}
	}
	q.base = ev.Upto
	return t.putQueue(ev.Pool, q)
}
