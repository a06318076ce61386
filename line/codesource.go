package line

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// PoolSource is the usual CodeSource of a batch: nmpa20 levels draw from
// their pool (the product's PoolName), GS1 levels are generated and
// registered (regenerating any the ledger already knows: uniqueness across
// batches, lines and restarts). A pool running low hands out what it still
// has rather than refusing a whole chunk, so a batch can use a pool's last
// codes.
type PoolSource struct {
	product *tracecode.Product
	store   *aggregation.Store
	batch   string
	mu      sync.Mutex
	gens    map[tracecode.Level]*tracecode.Generator
}

// NewPoolSource returns the code source of batch, of product p.
func NewPoolSource(p *tracecode.Product, store *aggregation.Store, batch string) (*PoolSource, error) {
	cs := &PoolSource{product: p, store: store, batch: batch, gens: map[tracecode.Level]*tracecode.Generator{}}
	for _, ls := range p.Levels {
		if !p.Coded(ls.Level) || p.Rule(ls.Level).Scheme == tracecode.SchemeNMPA20 {
			continue
		}
		g, err := tracecode.NewGenerator(p, ls.Level)
		if err != nil {
			return nil, err
		}
		cs.gens[ls.Level] = g
	}
	return cs, nil
}

var poolActor = aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"}

// Allocate implements CodeSource.
func (s *PoolSource) Allocate(ctx context.Context, l tracecode.Level, n int) ([]tracecode.Code, error) {
	s.mu.Lock()
	g := s.gens[l]
	s.mu.Unlock()
	if g == nil {
		pool := s.product.PoolName(l)
		if pool == "" {
			return nil, fmt.Errorf("level %s of %s carries no code", l, s.product.GenericName)
		}
		stats, err := s.store.Pools(ctx)
		if err != nil {
			return nil, err
		}
		for _, st := range stats {
			if st.Pool == pool && st.Available > 0 && st.Available < int64(n) {
				n = int(st.Available) // the pool's last codes
			}
		}
		return s.store.AllocateFromPool(ctx, s.batch, l, pool, n, poolActor)
	}
	var out []tracecode.Code
	for tries := 0; len(out) < n; tries++ {
		if tries == 10 {
			return nil, fmt.Errorf("level %s: generated codes keep colliding with known ones (serial space exhausted?)", l)
		}
		s.mu.Lock()
		codes, err := g.Generate(n - len(out))
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		collided, err := s.store.AllocateGenerated(ctx, s.batch, l, codes, poolActor)
		if err != nil {
			return nil, err
		}
		bad := make(map[tracecode.Code]bool, len(collided))
		for _, c := range collided {
			bad[c] = true
		}
		for _, c := range codes {
			if !bad[c] {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// ProductOf finds a batch's product in the master data: by the key its work
// order carries, else (batches created before work orders) by its generic
// name or level-1 pool. For the wiring's BatchDevices.
func (c LineConfig) ProductOf(spec aggregation.BatchSpec) (key string, p *tracecode.Product, err error) {
	l := Line{cfg: c}
	if key, p = l.productOf(spec); p == nil {
		return "", nil, fmt.Errorf("batch %s: product %q is not in the loaded master data: %w", spec.ID, spec.Product, errNoProduct)
	}
	return key, p, nil
}

var errNoProduct = errors.New("unknown product")
