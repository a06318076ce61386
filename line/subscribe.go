package line

import "sync"

// Update is what a live view (the HMI) receives after each event that
// changed something: the state and the actions taken.
type Update struct {
	Snapshot Snapshot
	Actions  []Action
}

// subscribers fans updates out to live views. A slow subscriber misses
// updates (it always gets the latest snapshot on the next one); it never
// slows the line.
type subscribers struct {
	mu   sync.Mutex
	subs map[chan Update]struct{}
}

func (s *subscribers) publish(snap Snapshot, acts []Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- Update{Snapshot: snap, Actions: acts}:
		default:
		}
	}
}

// Subscribe returns a channel of updates and a function that ends the
// subscription.
func (r *Runner) Subscribe() (<-chan Update, func()) {
	ch := make(chan Update, 64)
	r.subs.mu.Lock()
	if r.subs.subs == nil {
		r.subs.subs = map[chan Update]struct{}{}
	}
	r.subs.subs[ch] = struct{}{}
	r.subs.mu.Unlock()
	return ch, func() {
		r.subs.mu.Lock()
		delete(r.subs.subs, ch)
		r.subs.mu.Unlock()
	}
}
