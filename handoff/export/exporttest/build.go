// Package exporttest builds real released batches in a ledger for the
// export tests, benchmarks and the 1M-unit measurement
// (handoff/export/testdata/million). Tests and tools only.
package exporttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

var (
	lineActor = aggregation.Actor{Kind: aggregation.ActorDevice, ID: "camera-1"}
	qaActor   = aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"}
	// ReleasedAt is the release signature's time of every built batch.
	ReleasedAt = time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)
)

// Shape is a batch to build: units at level 1, then each higher level's
// ratio (the last parent of a level may be partial).
type Shape struct {
	Batch  string
	Units  int
	Ratios []int // Ratios[0] is level 2's
	// Extras: a sampled, a decommissioned, a rejected and a voided unit
	// code besides the units.
	Extras bool
	// Released leaves the batch released; otherwise it is activated.
	Released bool
	// Track fills Built.Parent and Built.Partial (small batches).
	Track bool
}

// Built is what Build made.
type Built struct {
	Spec     aggregation.BatchSpec
	Levels   [][]tracecode.Code                // codes packed, or loose at the top, per level
	Parent   map[tracecode.Code]tracecode.Code // child → parent (Track)
	Partial  map[tracecode.Code]bool           // partial parents (Track)
	Sampled  tracecode.Code                    // Extras
	Decomm   tracecode.Code
	Rejected tracecode.Code
	Voided   tracecode.Code
}

// Reasons given to the Extras.
const (
	SampleReason   = "QA retain sample 留样"
	DecommReason   = "damaged carton <torn> & crushed"
	RejectReason   = "grade F"
	VoidReason     = "line purge"
	WorkshopName   = "固体制剂车间"
	LineManager    = "张工"
	ProductionDate = "2026-11-30"
	Expiry         = "2028-10-31"
)

// codesFor makes n fresh codes for level l of p: platform-style nmpa20
// codes put into a pool, or generated GS1 codes; allocated and sent.
func codesFor(ctx context.Context, s *aggregation.Store, p *tracecode.Product, batch string, l tracecode.Level, n int) ([]tracecode.Code, error) {
	ls, _ := p.Level(l)
	if ls.Rule == nil {
		return nil, fmt.Errorf("product %s: level %s carries no code", p.Source(), l)
	}
	var got []tracecode.Code
	if ls.Rule.Scheme == tracecode.SchemeNMPA20 {
		pool := fmt.Sprintf("%s-%s-L%d", batch, ls.ProductID, l)
		for i := 0; i < n; i += 50000 {
			part := make([]tracecode.Code, min(50000, n-i))
			for j := range part {
				part[j] = tracecode.Code(fmt.Sprintf("%s%013d", ls.ProductID, i+j))
			}
			if err := s.AddToPool(ctx, pool, part, "test"); err != nil {
				return nil, err
			}
			a, err := s.AllocateFromPool(ctx, batch, l, pool, len(part), lineActor)
			if err != nil {
				return nil, err
			}
			got = append(got, a...)
		}
	} else {
		g, err := tracecode.NewGenerator(p, l)
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i += 50000 {
			cs, err := g.Generate(min(50000, n-i))
			if err != nil {
				return nil, err
			}
			col, err := s.AllocateGenerated(ctx, batch, l, cs, lineActor)
			if err != nil {
				return nil, err
			}
			if len(col) > 0 {
				return nil, fmt.Errorf("generated codes collided: %v", col)
			}
			got = append(got, cs...)
		}
	}
	for i := 0; i < len(got); i += 1000 {
		if err := s.MarkSent(ctx, got[i:min(i+1000, len(got))], lineActor); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// parallel runs fn(i) for i in [0,n) on 32 goroutines (the ledger groups
// concurrent writes into one transaction) and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int, 256)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// Build makes a released (and, unless sh.Released, activated) batch of p in s.
func Build(ctx context.Context, s *aggregation.Store, p *tracecode.Product, sh Shape) (*Built, error) {
	if sh.Units < 1 {
		return nil, errors.New("exporttest: no units")
	}
	spec := aggregation.BatchSpec{ID: sh.Batch, Product: p.GenericName, Line: "line-1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: p.Rule(1).Scheme}},
		Order: aggregation.WorkOrder{BatchNumber: "LOT-" + sh.Batch, ProductionDate: ProductionDate, Expiry: Expiry,
			Workshop: WorkshopName, Manager: LineManager}}
	for i, r := range sh.Ratios {
		l := tracecode.Level(i + 2)
		spec.Levels = append(spec.Levels, aggregation.LevelSpec{Level: l, Ratio: r, Scheme: p.Rule(l).Scheme})
	}
	if err := s.CreateBatch(ctx, spec, lineActor); err != nil {
		return nil, err
	}
	b := &Built{Spec: spec}
	if sh.Track {
		b.Parent, b.Partial = map[tracecode.Code]tracecode.Code{}, map[tracecode.Code]bool{}
	}
	n := sh.Units
	if sh.Extras {
		n += 4
	}
	units, err := codesFor(ctx, s, p, sh.Batch, 1, n)
	if err != nil {
		return nil, err
	}
	commission := func(cs []tracecode.Code) error {
		return parallel(len(cs), func(i int) error {
			return s.Commission(ctx, cs[i], aggregation.UnitInfo{ItemID: uint64(i + 1)}, lineActor)
		})
	}
	if sh.Extras {
		x := units[sh.Units:]
		units = units[:sh.Units]
		b.Sampled, b.Decomm, b.Rejected, b.Voided = x[0], x[1], x[2], x[3]
		for _, err := range []error{commission(x[:2]),
			s.Sample(ctx, b.Sampled, SampleReason, qaActor),
			s.Decommission(ctx, b.Decomm, DecommReason, qaActor),
			s.Reject(ctx, b.Rejected, RejectReason, lineActor),
			s.Void(ctx, b.Voided, VoidReason, lineActor)} {
			if err != nil {
				return nil, err
			}
		}
	}
	if err := commission(units); err != nil {
		return nil, err
	}
	b.Levels = append(b.Levels, units)
	kids := units
	for i, r := range sh.Ratios {
		l := tracecode.Level(i + 2)
		np := (len(kids) + r - 1) / r
		parents, err := codesFor(ctx, s, p, sh.Batch, l, np)
		if err != nil {
			return nil, err
		}
		if err := commission(parents); err != nil {
			return nil, err
		}
		err = parallel(np, func(j int) error {
			ch := kids[j*r : min((j+1)*r, len(kids))]
			o := aggregation.PackOpts{}
			if len(ch) < r {
				o = aggregation.PackOpts{Partial: true, Reason: "end of batch"}
			}
			return s.Pack(ctx, parents[j], ch, o, lineActor)
		})
		if err != nil {
			return nil, err
		}
		if sh.Track {
			for j, pc := range parents {
				ch := kids[j*r : min((j+1)*r, len(kids))]
				for _, c := range ch {
					b.Parent[c] = pc
				}
				if len(ch) < r {
					b.Partial[pc] = true
				}
			}
		}
		b.Levels = append(b.Levels, parents)
		kids = parents
	}
	if err := s.Complete(ctx, sh.Batch, lineActor); err != nil {
		return nil, err
	}
	sum, err := s.Summary(ctx, sh.Batch)
	if err != nil {
		return nil, err
	}
	if pr := sum.ReleaseProblems(); len(pr) > 0 {
		return nil, fmt.Errorf("batch %s does not release: %v", sh.Batch, pr)
	}
	if err := s.Release(ctx, sh.Batch, aggregation.Signature{User: "qa", Meaning: "released", At: ReleasedAt, Comment: "ok"}, qaActor); err != nil {
		return nil, err
	}
	if !sh.Released {
		if err := s.Activate(ctx, sh.Batch, qaActor); err != nil {
			return nil, err
		}
	}
	return b, nil
}
