package tracecode

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// MemPoolStore is an in-memory PoolStore for tests and demos. It passes
// the tracecode/pooltest suite. Nothing survives the process.
type MemPoolStore struct {
	mu    sync.Mutex
	known map[Code]string // code → pool
	pools map[string]*memPool
}

type memPool struct {
	stat  PoolStat
	avail []Code // FIFO
}

// NewMemPoolStore returns an empty store.
func NewMemPoolStore() *MemPoolStore {
	return &MemPoolStore{known: map[Code]string{}, pools: map[string]*memPool{}}
}

// AddToPool implements PoolStore.
func (m *MemPoolStore) AddToPool(ctx context.Context, pool string, codes []Code, source string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if pool == "" {
		return errors.New("add to pool: empty pool name")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	inCall := make(map[Code]int, len(codes))
	for _, c := range codes {
		inCall[c]++
	}
	var bad []Code
	reported := map[Code]bool{}
	for _, c := range codes {
		_, known := m.known[c]
		if (known || inCall[c] > 1) && !reported[c] {
			reported[c] = true
			bad = append(bad, c)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("pool %q from %s: %w", pool, source, &DuplicateCodesError{Codes: bad})
	}
	p := m.pools[pool]
	if p == nil {
		p = &memPool{stat: PoolStat{Pool: pool}}
		m.pools[pool] = p
	}
	for _, c := range codes {
		m.known[c] = pool
	}
	p.avail = append(p.avail, codes...)
	p.stat.Available += int64(len(codes))
	return nil
}

// Pools implements PoolStore; pools are sorted by name.
func (m *MemPoolStore) Pools(ctx context.Context) ([]PoolStat, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PoolStat, 0, len(m.pools))
	for _, p := range m.pools {
		out = append(out, p.stat)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pool < out[j].Pool })
	return out, nil
}

// Take hands out n codes of pool, oldest first, all or nothing; it returns
// ErrPoolEmpty if the pool holds fewer. Handed-out codes never come back.
func (m *MemPoolStore) Take(ctx context.Context, pool string, n int) ([]Code, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pools[pool]
	if p == nil || n < 0 || len(p.avail) < n {
		have := 0
		if p != nil {
			have = len(p.avail)
		}
		return nil, fmt.Errorf("pool %q: %d asked, %d available: %w", pool, n, have, ErrPoolEmpty)
	}
	out := append([]Code(nil), p.avail[:n]...)
	p.avail = p.avail[n:]
	p.stat.Available -= int64(n)
	p.stat.Allocated += int64(n)
	return out, nil
}
