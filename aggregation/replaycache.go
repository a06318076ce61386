package aggregation

import (
	"slices"

	"github.com/tracline/tracline/tracecode"
)

// replayCache is Verify's scratch store's memory of the codes its replay
// wrote or read, in every state (the hot cache keeps only the codes a line
// is about to use). Without it the replay reads most codes back from the
// scratch Badger (location, then record) once its memtables have moved to
// the LSM tree, and those reads were most of Verify's time. Codes are
// looked up again soon after they were written (sent, printed, commissioned,
// packed), so two generations of replayGen codes each hold nearly all of
// the replay's lookups while bounding its memory; an older code is read
// from Badger, slower but the same.
//
// Only the scratch store's committer uses it (no lock). Every write of a
// code record goes through putRec, which updates it; a code's location is
// rewritten only when it goes back to a pool (appendPool), which removes
// it; drop clears it with the hot cache.
type replayCache struct {
	cur, old map[tracecode.Code]codeView
	// queues holds each pool's queue record as the replay last read or
	// wrote it (putQueue is the only writer of a queue).
	queues map[string]queueRec
}

// replayGen is one generation's size: about 200 bytes a code, so the two
// hold some 400 MB at most. A line may allocate a whole batch's codes long
// before it sends them; with generations of 1M codes a 1M-unit batch's
// lookups all hit.
var replayGen = 1 << 20 // a variable for tests

func newReplayCache() *replayCache {
	return &replayCache{cur: make(map[tracecode.Code]codeView, 1024), queues: map[string]queueRec{}}
}

// get returns c's view; the caller owns the returned Seqs.
func (r *replayCache) get(c tracecode.Code) (codeView, bool) {
	cv, ok := r.cur[c]
	if !ok {
		if cv, ok = r.old[c]; !ok {
			return codeView{}, false
		}
		r.putOwned(cv) // keep it: it is in use again
	}
	cv.rec.Seqs = slices.Clone(cv.rec.Seqs)
	return cv, true
}

// put stores a copy of cv.
func (r *replayCache) put(cv codeView) {
	cv.rec.Seqs = slices.Clone(cv.rec.Seqs)
	r.putOwned(cv)
}

func (r *replayCache) putOwned(cv codeView) {
	cv.slot = nil // the committer's cache entry is not this cache's
	if _, in := r.cur[cv.code]; !in && len(r.cur) >= replayGen {
		r.old, r.cur = r.cur, make(map[tracecode.Code]codeView, len(r.old))
	}
	r.cur[cv.code] = cv
}

func (r *replayCache) del(c tracecode.Code) {
	delete(r.cur, c)
	delete(r.old, c)
}

func (r *replayCache) clear() {
	r.cur, r.old = make(map[tracecode.Code]codeView, 1024), nil
	clear(r.queues)
}
