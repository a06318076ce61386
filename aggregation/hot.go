package aggregation

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/tracline/tracline/tracecode"
)

// hotCache holds the codes the line is about to use (see hotMax). Only the
// committer writes it; callers read it to skip hints the committer will not
// need. It is sharded so that those reads rarely wait for a write.
type hotCache struct {
	seed maphash.Seed
	n    atomic.Int64
	// epoch counts the clears: a code record written while the cache held
	// it (written.hot) may wait in the applier while no clear came since.
	epoch  atomic.Uint32
	shards [64]hotShard
}

// hotShard's fields take 32 bytes of its 128: however the cache is aligned,
// two shards' fields are never on one 64-byte cache line, so the committer
// locking one shard does not take the line of a caller reading another.
type hotShard struct {
	mu sync.RWMutex // 24 bytes
	m  map[tracecode.Code]codeView
	_  [96]byte
}

func newHotCache() *hotCache {
	h := &hotCache{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].m = map[tracecode.Code]codeView{}
	}
	return h
}

func (h *hotCache) shard(c tracecode.Code) *hotShard {
	return &h.shards[maphash.String(h.seed, string(c))%uint64(len(h.shards))]
}

// get returns c's view. Its Seqs are shared and clipped (no spare
// capacity): append to them, which copies, but never change them in place.
func (h *hotCache) get(c tracecode.Code) (codeView, bool) {
	sh := h.shard(c)
	sh.mu.RLock()
	cv, ok := sh.m[c]
	sh.mu.RUnlock()
	return cv, ok
}

func (h *hotCache) has(c tracecode.Code) bool {
	_, ok := h.get(c)
	return ok
}

// put stores cv if c is cached already or there is room, and reports
// whether it did. cv.rec.Seqs must be clipped and never changed in place
// after (see get).
func (h *hotCache) put(cv codeView) bool {
	sh := h.shard(cv.code)
	sh.mu.Lock()
	_, in := sh.m[cv.code]
	ok := in || h.n.Load() < hotMax
	if ok {
		if !in {
			h.n.Add(1)
		}
		sh.m[cv.code] = cv
	}
	sh.mu.Unlock()
	return ok
}

func (h *hotCache) del(c tracecode.Code) {
	sh := h.shard(c)
	sh.mu.Lock()
	if _, in := sh.m[c]; in {
		delete(sh.m, c)
		h.n.Add(-1)
	}
	sh.mu.Unlock()
}

func (h *hotCache) clear() {
	h.epoch.Add(1)
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		h.n.Add(-int64(len(sh.m)))
		clear(sh.m)
		sh.mu.Unlock()
	}
}
