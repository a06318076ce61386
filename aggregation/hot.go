package aggregation

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/tracline/tracline/tracecode"
)

// hotCache holds the codes the line is about to use (see hotMax). Only the
// committer writes it and reads its entries; callers only ask whether a
// code is in it (has), to skip hints the committer will not need. It is
// sharded so that those reads rarely wait for a write.
//
// An entry is a pointer: the committer updates a code it looked up in
// place (put through codeView.slot), without hashing the code or probing
// the map again — a code's allocation, send and commission then take four
// map operations on the committer's side instead of eight (issue 14's
// profile: the maps of code strings were a tenth of the CPU at 1M units).
type hotCache struct {
	seed maphash.Seed
	n    atomic.Int64
	// epoch counts the clears: a code record written while the cache held
	// it (written.hot) may wait in the applier while no clear came since.
	epoch  atomic.Uint32
	shards [64]hotShard
	free   []*hotEntry // entries deleted, for the next codes (committer only)
}

// hotShard's fields take 32 bytes of its 128: however the cache is aligned,
// two shards' fields are never on one 64-byte cache line, so the committer
// locking one shard does not take the line of a caller reading another.
type hotShard struct {
	mu sync.RWMutex // 24 bytes
	m  map[tracecode.Code]*hotEntry
	_  [96]byte
}

// hotEntry is a cached code. live is false once it left the map (del,
// clear): a codeView still naming it (a stale slot) is then not written
// through. Only the committer reads or writes an entry.
type hotEntry struct {
	cv   codeView
	live bool
}

func newHotCache() *hotCache {
	h := &hotCache{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].m = map[tracecode.Code]*hotEntry{}
	}
	return h
}

func (h *hotCache) shard(c tracecode.Code) *hotShard {
	return &h.shards[maphash.String(h.seed, string(c))%uint64(len(h.shards))]
}

// get returns c's view, which names its entry (slot) for putRec. Its Seqs
// are shared and clipped (no spare capacity): append to them, which
// copies, but never change them in place. The committer's only.
//
// It takes no lock: only the committer writes the maps, so its own reads
// cannot race with a write, and callers' reads (has) only read.
func (h *hotCache) get(c tracecode.Code) (codeView, bool) {
	e := h.shard(c).m[c]
	if e == nil {
		return codeView{}, false
	}
	cv := e.cv
	cv.slot = e
	return cv, true
}

func (h *hotCache) has(c tracecode.Code) bool {
	sh := h.shard(c)
	sh.mu.RLock()
	_, ok := sh.m[c]
	sh.mu.RUnlock()
	return ok
}

// put stores cv if c is cached already or there is room, and reports
// whether it did. cv.rec.Seqs must be clipped and never changed in place
// after (see get). A view got from the cache (cv.slot) is written to its
// entry without a map operation.
func (h *hotCache) put(cv codeView) bool {
	if e := cv.slot; e != nil && e.live && e.cv.code == cv.code {
		cv.slot = nil
		e.cv = cv
		return true
	}
	cv.slot = nil
	sh := h.shard(cv.code)
	sh.mu.Lock()
	e, in := sh.m[cv.code]
	ok := in || h.n.Load() < hotMax
	if in {
		e.cv = cv
	} else if ok {
		h.n.Add(1)
		if n := len(h.free); n > 0 {
			e, h.free = h.free[n-1], h.free[:n-1]
		} else {
			e = new(hotEntry)
		}
		e.cv, e.live = cv, true
		sh.m[cv.code] = e
	}
	sh.mu.Unlock()
	return ok
}

func (h *hotCache) del(c tracecode.Code) {
	sh := h.shard(c)
	sh.mu.Lock()
	e, in := sh.m[c]
	if in {
		delete(sh.m, c)
		h.n.Add(-1)
	}
	sh.mu.Unlock()
	if in {
		*e = hotEntry{}
		h.free = append(h.free, e)
	}
}

func (h *hotCache) clear() {
	h.epoch.Add(1)
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		h.n.Add(-int64(len(sh.m)))
		for _, e := range sh.m {
			*e = hotEntry{}
		}
		clear(sh.m)
		sh.mu.Unlock()
	}
	h.free = nil // not kept at its largest
}
