package aggregation

import (
	"slices"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation/ledgerbench/benchstat"
)

// Where a durable write's time goes, from the caller's submit to the
// caller running again. Only writes that cannot wait are sampled (not
// Deferrable ones, whose wait is by design, nor bulk ones): they are the
// writes a unit's verdict waits for.
//
//	queue:  submitted → the committer starts applying its group
//	build:  applying the group, and waiting for the group before it to land
//	sync:   the group's redo record written and fdatasynced
//	commit: Badger's (unsynced) commit of the group
//	wake:   the group landed → the caller running again
const (
	stQueue = iota
	stBuild
	stSync
	stCommit
	stWake
	stTotal
	nStages
)

var stageNames = [nStages]string{"queue", "build", "sync", "commit", "wake", "total"}

// stageRing keeps the stages of the last len(ring) sampled writes.
type stageRing struct {
	mu   sync.Mutex
	ring [][nStages]time.Duration
	n    int
}

const stageSamples = 1 << 16

func (s *stageRing) add(d [nStages]time.Duration) {
	s.mu.Lock()
	if s.ring == nil {
		s.ring = make([][nStages]time.Duration, stageSamples)
	}
	s.ring[s.n%len(s.ring)] = d
	s.n++
	s.mu.Unlock()
}

// StagePercentiles are one stage's p50, p99 and max, in milliseconds.
type StagePercentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// WriteStages are the stages of durable writes (see stQueue…) over the
// last 65,536 sampled writes, and how many were sampled in all (since the
// mark asked for: WriteStagesSince).
type WriteStages struct {
	Writes uint64                      `json:"writes"`
	Stages map[string]StagePercentiles `json:"stages_ms"`
	// Events are the last 64 slow redo syncs (≥ 10 ms) and checkpoints,
	// in time order: a stall beside a checkpoint is Badger's data going
	// to the disk.
	Events []LedgerEvent `json:"events,omitempty"`
}

// LedgerEvent is a slow sync or a checkpoint: when it began, how long it
// took, and a slow sync's record size.
type LedgerEvent struct {
	At    time.Time `json:"at"`
	Ms    float64   `json:"ms"`
	What  string    `json:"what"`
	Bytes int       `json:"bytes,omitempty"`
}

// What a LedgerEvent is.
const (
	EventSlowSync   = "slow sync"  // a redo record's fdatasync of slowSync or more
	EventCheckpoint = "checkpoint" // a checkpoint of the redo log
)

// slowSync is a redo sync slow enough to be listed.
const slowSync = 10 * time.Millisecond

// eventLog keeps the last len(ring) events.
type eventLog struct {
	mu   sync.Mutex
	ring [64]LedgerEvent
	n    int
}

func (l *eventLog) add(e LedgerEvent) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = e
	l.n++
	l.mu.Unlock()
}

func (l *eventLog) list() []LedgerEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LedgerEvent
	for i := max(0, l.n-len(l.ring)); i < l.n; i++ {
		out = append(out, l.ring[i%len(l.ring)])
	}
	slices.SortFunc(out, func(a, b LedgerEvent) int { return a.At.Compare(b.At) })
	return out
}

// WriteStages reports where the time of the writes a caller waits for went
// (nothing is computed on the write path: the samples are sorted here).
func (s *Store) WriteStages() WriteStages { return s.WriteStagesSince(0) }

// WritesSampled is how many writes have been sampled since Open: a mark
// for WriteStagesSince.
func (s *Store) WritesSampled() uint64 {
	s.stages.mu.Lock()
	defer s.stages.mu.Unlock()
	return uint64(s.stages.n)
}

// WriteStagesSince is WriteStages over the writes sampled after the first
// from (a WritesSampled mark), of the last 65,536.
func (s *Store) WriteStagesSince(from uint64) WriteStages {
	r := &s.stages
	r.mu.Lock()
	first := max(r.n-len(r.ring), int(min(from, uint64(r.n))))
	n := r.n - first
	ws := WriteStages{Writes: uint64(r.n) - min(from, uint64(r.n)), Stages: map[string]StagePercentiles{}}
	cols := make([][]time.Duration, nStages)
	for i := range cols {
		cols[i] = make([]time.Duration, n)
		for j := range n {
			cols[i][j] = r.ring[(first+j)%len(r.ring)][i]
		}
	}
	r.mu.Unlock()
	if s.redo != nil {
		ws.Events = s.redo.events.list()
	}
	if n == 0 {
		return ws
	}
	for i, c := range cols {
		var p StagePercentiles
		p.P50, p.P99, p.Max = benchstat.Pct(c)
		ws.Stages[stageNames[i]] = p
	}
	return ws
}

// sample records r's stages once its caller runs again.
func (s *Store) sample(r *request, woke time.Time) {
	fl := r.fl
	if fl == nil || !r.deferUntil.IsZero() || r.bulk || r.started.IsZero() {
		return
	}
	var d [nStages]time.Duration
	d[stQueue] = r.started.Sub(r.submitted)
	d[stBuild] = fl.sent.Sub(r.started)
	d[stSync] = fl.synced.Sub(fl.sent)
	d[stCommit] = fl.landed.Sub(fl.synced)
	d[stWake] = woke.Sub(fl.landed)
	d[stTotal] = woke.Sub(r.submitted)
	s.stages.add(d)
}
