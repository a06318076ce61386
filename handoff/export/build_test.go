package export

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

var (
	ctx   = context.Background()
	line  = aggregation.Actor{Kind: aggregation.ActorDevice, ID: "camera-1"}
	qa    = aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"}
	relAt = time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)
)

const (
	nmpaProduct = "../../examples/amoxicillin-nmpa20.yaml"
	gs1Product  = "../../examples/amoxicillin-gs1.yaml"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func loadProduct(t testing.TB, path string) *tracecode.Product {
	t.Helper()
	p, err := tracecode.LoadProduct(path)
	must(t, err)
	return p
}

func openLedger(t testing.TB, dir string) *aggregation.Store {
	t.Helper()
	s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// shape is a batch to build: units at level 1, then each higher level's
// ratio (the last parent of a level may be partial).
type shape struct {
	batch  string
	units  int
	ratios []int // ratios[0] is level 2's
	// extras: a sampled, a decommissioned, a rejected and a voided unit
	// code besides the units.
	extras bool
	// state the batch is left in: released or active (default).
	state aggregation.BatchState
}

// built is what a build made, for the checks.
type built struct {
	spec     aggregation.BatchSpec
	levels   [][]tracecode.Code                // codes packed or loose (top), per level
	parent   map[tracecode.Code]tracecode.Code // child → parent (small builds only)
	partial  map[tracecode.Code]bool
	sampled  tracecode.Code
	decomm   tracecode.Code
	rejected tracecode.Code
	voided   tracecode.Code
}

// codesFor makes n fresh codes for level l of p: platform-style nmpa20
// codes put into a pool, or generated GS1 codes.
func codesFor(t testing.TB, s *aggregation.Store, p *tracecode.Product, batch string, l tracecode.Level, from, n int) []tracecode.Code {
	t.Helper()
	ls, _ := p.Level(l)
	var got []tracecode.Code
	if ls.Rule.Scheme == tracecode.SchemeNMPA20 {
		cs := make([]tracecode.Code, n)
		for i := range cs {
			cs[i] = tracecode.Code(fmt.Sprintf("%s%013d", ls.ProductID, from+i))
		}
		pool := fmt.Sprintf("%s-%s-L%d", batch, ls.ProductID, l)
		for i := 0; i < n; i += 50000 {
			part := cs[i:min(i+50000, n)]
			must(t, s.AddToPool(ctx, pool, part, "test"))
			a, err := s.AllocateFromPool(ctx, batch, l, pool, len(part), line)
			must(t, err)
			got = append(got, a...)
		}
	} else {
		g, err := tracecode.NewGenerator(p, l)
		must(t, err)
		for i := 0; i < n; i += 50000 {
			cs, err := g.Generate(min(50000, n-i))
			must(t, err)
			col, err := s.AllocateGenerated(ctx, batch, l, cs, line)
			must(t, err)
			if len(col) > 0 {
				t.Fatalf("generated codes collided: %v", col)
			}
			got = append(got, cs...)
		}
	}
	for i := 0; i < len(got); i += 1000 {
		must(t, s.MarkSent(ctx, got[i:min(i+1000, len(got))], line))
	}
	return got
}

// parallel runs fn(i) for i in [0,n) on 32 goroutines (the ledger groups
// concurrent writes into one transaction).
func parallel(t testing.TB, n int, fn func(i int) error) {
	t.Helper()
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
	must(t, first)
}

// build makes a released (and, unless sh.state says released, activated)
// batch of p in s.
func build(t testing.TB, s *aggregation.Store, p *tracecode.Product, sh shape) *built {
	t.Helper()
	spec := aggregation.BatchSpec{ID: sh.batch, Product: p.GenericName, Line: "line-1",
		Levels: []aggregation.LevelSpec{{Level: 1, Scheme: p.Rule(1).Scheme}},
		Order: aggregation.WorkOrder{BatchNumber: "LOT-" + sh.batch, ProductionDate: "2026-11-30", Expiry: "2028-10-31",
			Workshop: "固体制剂车间", Manager: "张工"}}
	for i, r := range sh.ratios {
		l := tracecode.Level(i + 2)
		spec.Levels = append(spec.Levels, aggregation.LevelSpec{Level: l, Ratio: r, Scheme: p.Rule(l).Scheme})
	}
	must(t, s.CreateBatch(ctx, spec, line))
	b := &built{spec: spec, partial: map[tracecode.Code]bool{}}
	small := sh.units <= 10000
	if small {
		b.parent = map[tracecode.Code]tracecode.Code{}
	}
	n := sh.units
	if sh.extras {
		n += 4
	}
	units := codesFor(t, s, p, sh.batch, 1, 0, n)
	commission := func(cs []tracecode.Code) {
		parallel(t, len(cs), func(i int) error {
			return s.Commission(ctx, cs[i], aggregation.UnitInfo{ItemID: uint64(i + 1)}, line)
		})
	}
	if sh.extras {
		x := units[sh.units:]
		units = units[:sh.units]
		b.sampled, b.decomm, b.rejected, b.voided = x[0], x[1], x[2], x[3]
		commission(x[:2])
		must(t, s.Sample(ctx, b.sampled, "QA retain sample 留样", qa))
		must(t, s.Decommission(ctx, b.decomm, "damaged carton <torn> & crushed", qa))
		must(t, s.Reject(ctx, b.rejected, "grade F", line))
		must(t, s.Void(ctx, b.voided, "line purge", line))
	}
	commission(units)
	b.levels = append(b.levels, units)
	kids := units
	for i, r := range sh.ratios {
		l := tracecode.Level(i + 2)
		np := (len(kids) + r - 1) / r
		parents := codesFor(t, s, p, sh.batch, l, 0, np)
		commission(parents)
		parallel(t, np, func(j int) error {
			ch := kids[j*r : min((j+1)*r, len(kids))]
			o := aggregation.PackOpts{}
			if len(ch) < r {
				o = aggregation.PackOpts{Partial: true, Reason: "end of batch"}
			}
			return s.Pack(ctx, parents[j], ch, o, line)
		})
		if small {
			for j, pc := range parents {
				ch := kids[j*r : min((j+1)*r, len(kids))]
				for _, c := range ch {
					b.parent[c] = pc
				}
				if len(ch) < r {
					b.partial[pc] = true
				}
			}
		}
		b.levels = append(b.levels, parents)
		kids = parents
	}
	must(t, s.Complete(ctx, sh.batch, line))
	sum, err := s.Summary(ctx, sh.batch)
	must(t, err)
	if pr := sum.ReleaseProblems(); len(pr) > 0 {
		t.Fatalf("batch %s does not release: %v", sh.batch, pr)
	}
	must(t, s.Release(ctx, sh.batch, aggregation.Signature{User: "qa", Meaning: "released", At: relAt, Comment: "ok"}, qa))
	if sh.state != aggregation.BatchReleased {
		must(t, s.Activate(ctx, sh.batch, qa))
	}
	return b
}
