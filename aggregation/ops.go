package aggregation

import (
	"context"
	"errors"
	"fmt"
	"sync"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

func (s *Store) do(ctx context.Context, ev Event, by Actor) error {
	ev.Actor = by
	r := &request{ev: ev}
	if err := s.submit(ctx, r); err != nil {
		return err
	}
	return nil
}

// AddToPool adds codes to a pool durably. If any code is already known to
// the store or repeated, nothing is added and the error wraps a
// *tracecode.DuplicateCodesError naming every offending code. Lists longer
// than 8192 codes are journaled as several events: all are checked before
// the first is written, but a crash part-way leaves the first events in
// place (each complete and consistent); importing the same file again then
// names the codes already in.
func (s *Store) AddToPool(ctx context.Context, pool string, codes []tracecode.Code, source string) error {
	if err := checkName("pool name", pool); err != nil {
		return err
	}
	if len(codes) == 0 {
		return fmt.Errorf("pool %s: no codes to add", pool)
	}
	if len(codes) > chunk {
		if err := s.precheckNew(pool, codes); err != nil {
			return err
		}
	}
	by := Actor{ActorSystem, "import"}
	for i := 0; i < len(codes); i += chunk {
		part := codes[i:min(i+chunk, len(codes))]
		r := &request{ev: Event{Kind: EvPoolAdd, Pool: pool, Codes: part, Source: source, Actor: by}, bulk: true}
		if err := s.submit(ctx, r); err != nil {
			if i > 0 {
				return fmt.Errorf("pool %s: codes %d.. of %d: %w (the first %d were added)", pool, i, len(codes), err, i)
			}
			return err
		}
	}
	return nil
}

// precheckNew finds every code of a long list that is repeated or known.
func (s *Store) precheckNew(pool string, codes []tracecode.Code) error {
	seen := make(map[tracecode.Code]bool, len(codes))
	var dup []tracecode.Code
	if err := s.caughtUp(); err != nil {
		return err
	}
	err := s.db.View(func(txn *badger.Txn) error {
		for _, c := range codes {
			if err := checkCode(c); err != nil {
				return fmt.Errorf("pool %s: %w", pool, err)
			}
			if seen[c] {
				dup = append(dup, c)
				continue
			}
			seen[c] = true
			_, err := txn.Get(locKey(c))
			if err == nil {
				dup = append(dup, c)
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(dup) > 0 {
		return fmt.Errorf("pool %s: %w", pool, &tracecode.DuplicateCodesError{Codes: uniq(dup)})
	}
	return nil
}

// CreateBatch records a new batch (durable on return).
func (s *Store) CreateBatch(ctx context.Context, spec BatchSpec, by Actor) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	sp := spec
	sp.Levels = append([]LevelSpec(nil), spec.Levels...)
	return s.do(ctx, Event{Kind: EvBatchCreate, Batch: spec.ID, Spec: &sp}, by)
}

// AllocateFromPool takes n codes out of pool for batch at level (durable on
// return). If the pool holds fewer than n, nothing is taken and the error
// wraps tracecode.ErrPoolEmpty.
func (s *Store) AllocateFromPool(ctx context.Context, batch string, level tracecode.Level, pool string, n int, by Actor) ([]tracecode.Code, error) {
	if n <= 0 {
		return nil, fmt.Errorf("allocate %d codes: want at least 1", n)
	}
	s.mu.RLock()
	var avail int64
	if p := s.pools[pool]; p != nil {
		avail = p.Available
	}
	s.mu.RUnlock()
	if avail < int64(n) {
		return nil, fmt.Errorf("pool %s has %d codes, %d asked: %w", pool, avail, n, tracecode.ErrPoolEmpty)
	}
	var out []tracecode.Code
	for len(out) < n {
		k := min(chunk, n-len(out))
		r := &request{ev: Event{Kind: EvAllocPool, Batch: batch, Level: level, Pool: pool, Actor: by}, pickN: k, bulk: k > 256}
		if err := s.submit(ctx, r); err != nil {
			if len(out) > 0 {
				return out, fmt.Errorf("allocated %d of %d: %w", len(out), n, err)
			}
			return nil, err
		}
		out = append(out, r.ev.Codes...)
	}
	return out, nil
}

// AllocateGenerated registers codes the caller generated (GS1) for batch at
// level (durable on return). Codes already known to the store (from any
// batch, line or earlier run) or repeated are not registered: they come back
// in collided for the caller to regenerate; the others are allocated.
func (s *Store) AllocateGenerated(ctx context.Context, batch string, level tracecode.Level, codes []tracecode.Code, by Actor) ([]tracecode.Code, error) {
	if len(codes) == 0 {
		return nil, errors.New("no codes to register")
	}
	var collided []tracecode.Code
	for i := 0; i < len(codes); i += chunk {
		part := codes[i:min(i+chunk, len(codes))]
		r := &request{ev: Event{Kind: EvAllocGen, Batch: batch, Level: level, Codes: part, Actor: by}, bulk: len(part) > 256}
		if err := s.submit(ctx, r); err != nil {
			return collided, err
		}
		collided = append(collided, r.collided...)
	}
	return collided, nil
}

// ReturnUnsent returns every code of batch that is allocated but was never
// sent: pool codes go back to their pool, generated ones are retired (never
// reissued). It reports how many codes were returned. Durable on return.
func (s *Store) ReturnUnsent(ctx context.Context, batch string, by Actor) (int, error) {
	s.mu.RLock()
	b := s.batches[batch]
	s.mu.RUnlock()
	if b == nil {
		return 0, fmt.Errorf("batch %q: %w", batch, ErrNotFound)
	}
	total := 0
	for _, ls := range b.Spec.Levels {
		var after []byte
		for {
			r := &request{ev: Event{Kind: EvReturn, Batch: batch, Level: ls.Level, Actor: by}, after: after, bulk: true}
			if err := s.submit(ctx, r); err != nil {
				return total, err
			}
			if r.noop && r.lastKey == nil {
				break
			}
			if !r.noop {
				total += len(r.ev.Codes)
			}
			if r.lastKey == nil {
				break
			}
			after = r.lastKey
		}
	}
	return total, nil
}

// MarkSent records, before they go to a printer, that codes (at most 8192,
// all of one batch, all allocated) are sent: write-ahead, durable on return.
// A code is sent at most once, ever.
func (s *Store) MarkSent(ctx context.Context, codes []tracecode.Code, by Actor) error {
	r := &request{ev: Event{Kind: EvSent, Codes: codes, Actor: by}}
	s.hint(r, codes)
	return s.submit(ctx, r)
}

// MarkPrinted records the printer's confirmation (sent → printed).
func (s *Store) MarkPrinted(ctx context.Context, code tracecode.Code, by Actor) error {
	return s.do(ctx, Event{Kind: EvPrinted, Codes: []tracecode.Code{code}}, by)
}

// Commission records a verified code (sent or printed → commissioned),
// durable on return. A code already commissioned gives ErrDuplicate.
func (s *Store) Commission(ctx context.Context, code tracecode.Code, info UnitInfo, by Actor) error {
	// The one code and the unit live in the request, and the request (with
	// its done channel) is used again once submit is done with it: the
	// line's most frequent write allocates nothing of its own. The
	// committer keeps no pointer into a request it answered: it copies the
	// event's codes (Store.add), and a code is a string.
	r := commissionReqs.Get().(*request)
	r.one[0], r.unit = code, info
	r.ev = Event{Kind: EvCommission, Codes: r.one[:], Unit: &r.unit, Actor: by}
	err := s.submit(ctx, r)
	if r.spent {
		*r = request{done: r.done}
		commissionReqs.Put(r)
	}
	return err
}

// commissionReqs are Commission's requests, used again (at full load a
// request per unit was 16% of the bytes the ledger allocated: session 20).
var commissionReqs = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// Reject records a rejected unit's code (sent or printed → rejected).
func (s *Store) Reject(ctx context.Context, code tracecode.Code, reason string, by Actor) error {
	return s.do(ctx, Event{Kind: EvReject, Codes: []tracecode.Code{code}, Reason: reason}, by)
}

// RecordChallenge journals a challenge test run in the batch record,
// durably. The batch must be open.
func (s *Store) RecordChallenge(ctx context.Context, batch string, c Challenge, by Actor) error {
	return s.do(ctx, Event{Kind: EvChallenge, Batch: batch, Challenge: &c}, by)
}

// RecordReprint journals that a packed parent's label is printed again
// (rework), durably, before it is printed. Nothing changes state.
func (s *Store) RecordReprint(ctx context.Context, parent tracecode.Code, reason string, by Actor) error {
	info, err := s.Lookup(ctx, parent)
	if err != nil {
		return fmt.Errorf("reprint %s: %w", parent, err)
	}
	return s.do(ctx, Event{Kind: EvReprint, Batch: info.Batch, Parent: parent, Reason: reason}, by)
}

// RejectUnit journals a unit rejected without any code changing state: a
// no-read, a code already commissioned (ErrDuplicate from Commission), a
// code not of this batch or not known at all. read is what the camera read
// ("" for a no-read), kept as evidence. Durable on return.
func (s *Store) RejectUnit(ctx context.Context, batch string, item uint64, read tracecode.Code, reason string, by Actor) error {
	return s.do(ctx, Event{Kind: EvRejectUnit, Batch: batch, Read: string(read), Unit: &UnitInfo{ItemID: item}, Reason: reason}, by)
}

// Void retires an uncertain code (sent or printed → voided), never reused.
func (s *Store) Void(ctx context.Context, code tracecode.Code, reason string, by Actor) error {
	return s.do(ctx, Event{Kind: EvVoid, Codes: []tracecode.Code{code}, Reason: reason}, by)
}

// Sample records a loose commissioned unit taken by QA.
func (s *Store) Sample(ctx context.Context, code tracecode.Code, reason string, by Actor) error {
	return s.do(ctx, Event{Kind: EvSample, Codes: []tracecode.Code{code}, Reason: reason}, by)
}

// Decommission voids a loose commissioned code, with a reason.
func (s *Store) Decommission(ctx context.Context, code tracecode.Code, reason string, by Actor) error {
	return s.do(ctx, Event{Kind: EvDecommission, Codes: []tracecode.Code{code}, Reason: reason}, by)
}

// Pack records parent ← children (durable on return). The parent is a
// commissioned code one level up holding nothing; the children are loose
// commissioned codes of the same batch (other batches only with opts.Mixed),
// exactly the level's ratio of them, or fewer with opts.Partial and a reason.
func (s *Store) Pack(ctx context.Context, parent tracecode.Code, children []tracecode.Code, opts PackOpts, by Actor) error {
	o := opts
	r := &request{ev: Event{Kind: EvPack, Parent: parent, Codes: children, Pack: &o, Reason: opts.Reason, Actor: by}}
	s.hint(r, append([]tracecode.Code{parent}, children...))
	return s.submit(ctx, r)
}

// hint reads codes from a snapshot in the caller's goroutine, so that the
// committer, which serialises every write, need not: it uses each view only
// if no event since the snapshot wrote that code (touchLog), else reads
// again. Views stop at the first code that cannot be read; the committer
// then finds the same problem and says so.
func (s *Store) hint(r *request, codes []tracecode.Code) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed || len(codes) > chunk {
		return
	}
	// The hints are as of the last event Badger held before the snapshot
	// below was opened (it may hold more: the committer then finds the
	// codes changed since and reads them itself).
	seq := s.ap.seqHeld()
	// Codes in the committer's cache need no hint; hints are used in order,
	// so any subset will do.
	cold := make([]tracecode.Code, 0, len(codes))
	for _, c := range codes {
		if !s.hot.has(c) {
			cold = append(cold, c)
		}
	}
	if len(cold) == 0 {
		return
	}
	views := make([]codeView, 0, len(cold))
	_ = s.db.View(func(txn *badger.Txn) error {
		t := &wtx{s: s, txn: txn}
		for _, c := range cold {
			cv, err := t.lookup(c)
			if err != nil {
				return err
			}
			views = append(views, cv)
		}
		return nil
	})
	r.hints, r.hintSeq = views, seq
}

// Unpack empties a parent: its children become loose again. History stays.
func (s *Store) Unpack(ctx context.Context, parent tracecode.Code, reason string, by Actor) error {
	return s.do(ctx, Event{Kind: EvUnpack, Parent: parent, Reason: reason}, by)
}

// Replace swaps child old in parent for new, a loose commissioned code of the
// same level; old becomes loose.
func (s *Store) Replace(ctx context.Context, parent, old, new tracecode.Code, reason string, by Actor) error {
	return s.do(ctx, Event{Kind: EvReplace, Parent: parent, Codes: []tracecode.Code{old}, New: new, Reason: reason}, by)
}

// Complete closes a batch: no more codes are allocated or sent.
func (s *Store) Complete(ctx context.Context, batch string, by Actor) error {
	return s.do(ctx, Event{Kind: EvComplete, Batch: batch}, by)
}

// Release records QA's signed decision. "released" is refused unless the
// batch reconciles (BatchSummary.ReleaseProblems is empty).
func (s *Store) Release(ctx context.Context, batch string, sig Signature, by Actor) error {
	g := sig
	return s.do(ctx, Event{Kind: EvRelease, Batch: batch, Sig: &g, Reason: sig.Comment}, by)
}

// Activate marks a released batch's codes active.
func (s *Store) Activate(ctx context.Context, batch string, by Actor) error {
	return s.do(ctx, Event{Kind: EvActivate, Batch: batch}, by)
}

// HandedOff records the answer to a hand-off document of an active batch.
// It is idempotent per documentID: a second call with the same id changes
// nothing and returns nil.
func (s *Store) HandedOff(ctx context.Context, batch, documentID, answer string, by Actor) error {
	return s.do(ctx, Event{Kind: EvHandedOff, Batch: batch, Document: documentID, Answer: answer}, by)
}

// RecordGate journals what the PLC's reject-confirm sensor saw for unit
// item of batch, durably: code is the code the line put on the unit ("" if
// none). A loose commissioned code whose unit was rejected is
// decommissioned in the same event (reason: rejected at gate); a passed
// unit's code is confirmed (no longer provisional). Outcomes that contradict
// the ledger (a packed code rejected, a rejected code passed) are recorded,
// change no state, and are for the line to alarm on and for Verify to name.
func (s *Store) RecordGate(ctx context.Context, batch string, item uint64, code tracecode.Code, outcome GateOutcome, by Actor) error {
	ev := Event{Kind: EvGate, Batch: batch, Unit: &UnitInfo{ItemID: item}, Reason: string(outcome)}
	if code != "" {
		ev.Codes = []tracecode.Code{code}
	}
	return s.do(ctx, ev, by)
}

// RecordLabel journals a parent's label fate (printed, verified on its
// group), durably. The parent must hold children.
func (s *Store) RecordLabel(ctx context.Context, parent tracecode.Code, fate LabelFate, by Actor) error {
	info, err := s.Lookup(ctx, parent)
	if err != nil {
		return fmt.Errorf("label of %s: %w", parent, err)
	}
	return s.do(ctx, Event{Kind: EvLabel, Batch: info.Batch, Parent: parent, Reason: string(fate)}, by)
}

// TrimPools deletes the entries of every pool that were allocated (in
// journaled trim_pool events of at most 8192 entries each), and returns how
// many it deleted. An allocated code's entry is never read again: its
// location and the allocation range say where the code went. A line trims
// when it is idle; the store is usable throughout.
func (s *Store) TrimPools(ctx context.Context, by Actor) (int, error) {
	pools, err := s.Pools(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, p := range pools {
		var q queueRec
		if err := s.view(func(t *wtx) error {
			var err error
			q, err = t.queueRec(p.Pool)
			return err
		}); err != nil {
			return total, err
		}
		for base := q.base; base < q.head; {
			upto := min(q.head, base+chunk)
			r := &request{ev: Event{Kind: EvTrimPool, Pool: p.Pool, Upto: upto, Reason: "allocated entries, line idle", Actor: by}, bulk: true}
			if err := s.submit(ctx, r); err != nil {
				if IsRefused(err) {
					break // trimmed meanwhile by another caller
				}
				return total, err
			}
			total += int(upto - base)
			base = upto
		}
	}
	return total, nil
}
