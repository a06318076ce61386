package aggregation

import (
	"testing"
	"unsafe"
)

// No two of the cache's shards share a cache line (hotShard's comment).
func TestHotShardsOnOwnCacheLines(t *testing.T) {
	h := newHotCache()
	const used = unsafe.Offsetof(hotShard{}.m) + unsafe.Sizeof(hotShard{}.m)
	for i := 1; i < len(h.shards); i++ {
		prevEnd := uintptr(unsafe.Pointer(&h.shards[i-1])) + used - 1
		start := uintptr(unsafe.Pointer(&h.shards[i]))
		if prevEnd/64 == start/64 {
			t.Fatalf("shards %d and %d share the cache line at %#x", i-1, i, start/64*64)
		}
	}
}
