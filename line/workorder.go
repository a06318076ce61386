package line

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// WorkOrder is what a batch starts from: typed on the operator's screen or
// sent by an MES/ERP through the API (same method, same checks).
type WorkOrder struct {
	// Product is the key of a product in the loaded master data.
	Product string `json:"product"`
	// Batch is the batch number; it is also the batch's id in the ledger
	// and must never have been used on this ledger.
	Batch          string `json:"batch"`
	ProductionDate string `json:"production_date"` // YYYY-MM-DD
	Expiry         string `json:"expiry"`          // YYYY-MM-DD, after ProductionDate
	Planned        int64  `json:"planned"`         // level-1 units
	// Levels is how many packaging levels this batch aggregates (1: units
	// only; 0: all the product's levels).
	Levels   int    `json:"levels,omitempty"`
	Workshop string `json:"workshop,omitempty"`
	Manager  string `json:"manager,omitempty"`
	// Source says where the work order came from ("hmi", "mes", …), for
	// the record.
	Source string `json:"source,omitempty"`
}

// Problem is one thing wrong with a work order (or a request), naming the
// field, with a stable code the HMI translates.
type Problem struct {
	Field   string `json:"field"`
	Code    string `json:"code"` // required, unknown, format, range, used, expiry_before_production, codes_short
	Message string `json:"message"`
	// Codes short: the pool and how many codes it lacks.
	Pool    string `json:"pool,omitempty"`
	Missing int64  `json:"missing,omitempty"`
}

// WorkOrderError lists every problem of a refused work order. It wraps
// ErrBadWorkOrder.
type WorkOrderError struct{ Problems []Problem }

func (e *WorkOrderError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Field + ": " + p.Message
	}
	return "work order refused: " + strings.Join(msgs, "; ")
}

func (e *WorkOrderError) Unwrap() error { return ErrBadWorkOrder }

// maxPlanned bounds a work order's planned quantity.
const maxPlanned = 100_000_000

// CheckWorkOrder returns every problem of a work order (none: it would
// start): fields missing or malformed, expiry not after production, a batch
// number used before on this ledger, pools short of codes (how many).
func (l *Line) CheckWorkOrder(ctx context.Context, wo WorkOrder) []Problem {
	var ps []Problem
	add := func(field, code, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	p := l.cfg.Products[wo.Product]
	switch {
	case wo.Product == "":
		add("product", "required", "choose a product")
	case p == nil:
		add("product", "unknown", "product %q is not in the loaded master data (known: %s)", wo.Product, strings.Join(l.productKeys(), ", "))
	}
	switch b := wo.Batch; {
	case strings.TrimSpace(b) == "":
		add("batch", "required", "the batch number is required")
	case len(b) > 64 || strings.TrimSpace(b) != b || strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		add("batch", "format", "batch number %q: 1..64 characters, no control characters, no leading or trailing space", b)
	default:
		if sum, err := l.store.Summary(ctx, b); err == nil {
			add("batch", "used", "batch number %s was used before on this ledger (line %s, %s)", b, sum.Line, sum.State)
		} else if !errors.Is(err, aggregation.ErrNotFound) {
			add("batch", "unknown", "batch number %s: the ledger did not answer: %v", b, err)
		}
	}
	var prod, exp time.Time
	for _, d := range []struct {
		field, v string
		t        *time.Time
	}{{"production_date", wo.ProductionDate, &prod}, {"expiry", wo.Expiry, &exp}} {
		if d.v == "" {
			add(d.field, "required", "the date is required (YYYY-MM-DD)")
			continue
		}
		t, err := time.Parse("2006-01-02", d.v)
		if err != nil {
			add(d.field, "format", "%q is not a date YYYY-MM-DD", d.v)
			continue
		}
		*d.t = t
	}
	if !prod.IsZero() && !exp.IsZero() && !exp.After(prod) {
		add("expiry", "expiry_before_production", "expiry %s is not after the production date %s", wo.Expiry, wo.ProductionDate)
	}
	if wo.Planned < 1 || wo.Planned > maxPlanned {
		add("planned", "range", "planned quantity %d: must be 1..%d units", wo.Planned, maxPlanned)
	}
	if p != nil && (wo.Levels < 0 || wo.Levels > int(p.TopLevel())) {
		add("levels", "range", "levels %d: the product has levels 1..%d (0: all)", wo.Levels, p.TopLevel())
	}
	for _, f := range []struct{ field, v string }{{"workshop", wo.Workshop}, {"manager", wo.Manager}, {"source", wo.Source}} {
		if len(f.v) > 256 {
			add(f.field, "format", "at most 256 characters")
		}
	}
	if p != nil && len(ps) == 0 {
		ps = append(ps, l.checkCodes(ctx, wo, p)...)
	}
	return ps
}

func (l *Line) productKeys() []string {
	keys := make([]string, 0, len(l.cfg.Products))
	for k := range l.cfg.Products {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// levelsOf is how many levels a work order's batch aggregates.
func levelsOf(wo WorkOrder, p *tracecode.Product) tracecode.Level {
	top := p.TopLevel()
	if wo.Levels > 0 && tracecode.Level(wo.Levels) < top {
		top = tracecode.Level(wo.Levels)
	}
	return top
}

// codesNeeded is how many codes of each level a batch of planned units
// takes: the units, the challenge test's and the printer's buffer (left in
// the printer at the end, voided), and a parent per ratio's worth of the
// level below (the last one partial).
func codesNeeded(planned int64, extra int, spec aggregation.BatchSpec) map[tracecode.Level]int64 {
	need := map[tracecode.Level]int64{}
	n := planned + int64(extra)
	for _, ls := range spec.Levels {
		if ls.Level > 1 {
			n = (n + int64(ls.Ratio) - 1) / int64(ls.Ratio)
		}
		need[ls.Level] = n
	}
	return need
}

// poolOf is the pool a batch's level draws its codes from ("" for codes
// the line generates).
func poolOf(p *tracecode.Product, l tracecode.Level) string {
	if !p.Coded(l) || p.Rule(l).Scheme != tracecode.SchemeNMPA20 {
		return ""
	}
	return p.PoolName(l)
}

// checkCodes says which pools hold too few codes for the work order.
func (l *Line) checkCodes(ctx context.Context, wo WorkOrder, p *tracecode.Product) []Problem {
	spec := l.spec(wo, p, "")
	need := codesNeeded(wo.Planned, len(l.cfg.Machine.Challenge)+l.cfg.Machine.PrinterBuffer, spec)
	avail, err := l.poolAvailable(ctx)
	if err != nil {
		return []Problem{{Field: "planned", Code: "unknown", Message: "the ledger's pools did not answer: " + err.Error()}}
	}
	var ps []Problem
	for _, ls := range spec.Levels {
		pool := poolOf(p, ls.Level)
		if pool == "" {
			continue
		}
		if have := avail[pool]; have < need[ls.Level] {
			ps = append(ps, Problem{Field: "planned", Code: "codes_short", Pool: pool, Missing: need[ls.Level] - have,
				Message: fmt.Sprintf("pool %s (level %s) holds %d codes; the batch needs %d: %d missing — import a code file",
					pool, ls.Level, have, need[ls.Level], need[ls.Level]-have)})
		}
	}
	return ps
}

func (l *Line) poolAvailable(ctx context.Context) (map[string]int64, error) {
	stats, err := l.store.Pools(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]int64, len(stats))
	for _, s := range stats {
		m[s.Pool] = s.Available
	}
	return m, nil
}

// spec is the ledger's batch for a work order.
func (l *Line) spec(wo WorkOrder, p *tracecode.Product, user string) aggregation.BatchSpec {
	spec := aggregation.BatchSpec{ID: wo.Batch, Product: p.PoolName(1), Line: l.cfg.Line,
		Order: aggregation.WorkOrder{BatchNumber: wo.Batch, ProductionDate: wo.ProductionDate, Expiry: wo.Expiry,
			PlannedQty: wo.Planned, Workshop: wo.Workshop, Manager: wo.Manager,
			Extra: map[string]string{"product_key": wo.Product}},
		GateConfirm: l.cfg.Machine.GateConfirm}
	if user != "" {
		spec.Order.Extra["started_by"] = user
	}
	if wo.Source != "" {
		spec.Order.Extra["source"] = wo.Source
	}
	if p.GenericName != "" {
		spec.Product = p.GenericName
	}
	for lv := tracecode.Level(1); lv <= levelsOf(wo, p); lv++ {
		ls := aggregation.LevelSpec{Level: lv, Scheme: p.Rule(lv).Scheme}
		if lv > 1 {
			ls.Ratio = p.Ratio(lv)
			ls.LabelCheck = l.cfg.Machine.LabelCheck[lv]
		}
		spec.Levels = append(spec.Levels, ls)
	}
	return spec
}

// StartBatch creates a batch in the ledger from a work order, checked on
// the spot (errors: *WorkOrderError listing every problem, ErrBatchOpen
// while a batch is open), and makes it the line's current batch, Stopped:
// the operator then gives reset and start. It is journaled as a command of
// user, accepted or refused. Work orders from an MES come here too.
func (l *Line) StartBatch(ctx context.Context, wo WorkOrder, user string) (aggregation.BatchSpec, error) {
	spec, err := l.startBatch(ctx, wo, user)
	l.journalCommand(ctx, spec.ID, "start-batch", wo, user, err)
	l.subs.notify()
	return spec, err
}

func (l *Line) startBatch(ctx context.Context, wo WorkOrder, user string) (aggregation.BatchSpec, error) {
	if err := needUser("start batch", user); err != nil {
		return aggregation.BatchSpec{}, err
	}
	l.mu.Lock()
	if l.starting {
		l.mu.Unlock()
		return aggregation.BatchSpec{}, fmt.Errorf("another batch is being started: %w", ErrBatchOpen)
	}
	if run := l.current(); run != nil {
		l.mu.Unlock()
		return aggregation.BatchSpec{}, fmt.Errorf("batch %s is open (%s): complete it first: %w", run.spec.ID, run.r.Snapshot().State, ErrBatchOpen)
	}
	l.starting = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.starting = false
		l.mu.Unlock()
	}()
	if ps := l.CheckWorkOrder(ctx, wo); len(ps) > 0 {
		return aggregation.BatchSpec{}, &WorkOrderError{Problems: ps}
	}
	p := l.cfg.Products[wo.Product]
	spec := l.spec(wo, p, user)
	if err := spec.Validate(); err != nil {
		return aggregation.BatchSpec{}, &WorkOrderError{Problems: []Problem{{Field: "product", Code: "format", Message: err.Error()}}}
	}
	// The machine's config is checked before the batch exists: a batch is
	// never created that its line could not run.
	if _, err := NewMachine(l.machineConfig(spec, p), false); err != nil {
		return aggregation.BatchSpec{}, fmt.Errorf("start batch %s: the line's settings do not fit the product: %w", spec.ID, err)
	}
	dev, err := l.batchDevices(ctx, spec)
	if err != nil {
		return aggregation.BatchSpec{}, err
	}
	if err := l.store.CreateBatch(ctx, spec, aggregation.Actor{Kind: aggregation.ActorUser, ID: user}); err != nil {
		return aggregation.BatchSpec{}, fmt.Errorf("start batch %s: %w", spec.ID, err)
	}
	run, err := l.makeRun(ctx, spec, p, wo.Product, dev)
	if err != nil {
		// The batch exists, open, with nothing done: the next start of the
		// controller resumes it.
		return spec, fmt.Errorf("start batch %s: created, but its runner failed (restart the controller to resume it): %w", spec.ID, err)
	}
	run.startedBy, run.startedAt = user, time.Now()
	l.install(run)
	l.log.Info("batch started", "batch", spec.ID, "product", wo.Product, "planned", wo.Planned, "by", user)
	return spec, nil
}

// ProductInfo is a product of the master data as the work-order screen
// offers it.
type ProductInfo struct {
	Key      string          `json:"key"`
	Name     string          `json:"name"`
	Strength string          `json:"strength,omitempty"`
	Levels   []ProductLevel  `json:"levels"`
	Top      tracecode.Level `json:"top_level"`
}

// ProductLevel is one packaging level of a product.
type ProductLevel struct {
	Level  tracecode.Level  `json:"level"`
	Name   string           `json:"name,omitempty"`
	Ratio  int              `json:"ratio,omitempty"`
	Scheme tracecode.Scheme `json:"scheme,omitempty"`
	Pool   string           `json:"pool,omitempty"` // "" : codes generated by the line
}

// Products lists the loaded master data, by key.
func (l *Line) Products() []ProductInfo {
	var out []ProductInfo
	for _, k := range l.productKeys() {
		p := l.cfg.Products[k]
		pi := ProductInfo{Key: k, Name: p.GenericName, Strength: p.Strength, Top: p.TopLevel()}
		for _, ls := range p.Levels {
			pl := ProductLevel{Level: ls.Level, Name: ls.Name, Pool: poolOf(p, ls.Level)}
			if ls.Level > 1 {
				pl.Ratio = ls.Ratio
			}
			if ls.Rule != nil {
				pl.Scheme = ls.Rule.Scheme
			}
			pi.Levels = append(pi.Levels, pl)
		}
		out = append(out, pi)
	}
	return out
}
