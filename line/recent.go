package line

import (
	"time"

	"github.com/tracline/tracline/tracecode"
)

// The last units decided and the line's rate, for the overview. The runner
// writes them in its loop, under the snapshot lock it takes anyway: a ring
// write per unit, no allocation.

// recentCap is how many units the overview lists.
const recentCap = 20

// rateWindow is the sliding window of the rate (units/min).
const rateWindow = 60

// UnitView is one unit as the overview lists it: the machine's decision.
// (A pass the runner could not journal or deliver in time is rejected all
// the same; the counters say so, the list keeps the decision.)
type UnitView struct {
	Item   uint32         `json:"item"`
	Code   tracecode.Code `json:"code,omitempty"`
	Pass   bool           `json:"pass"`
	Reason string         `json:"reason"`
	Detail string         `json:"detail,omitempty"`
	At     time.Time      `json:"at"`
}

type recentUnits struct {
	ring [recentCap]UnitView
	n    uint64 // units written, ever
	// buckets counts units decided per second, for the last rateWindow seconds.
	buckets [rateWindow]struct {
		sec int64
		n   uint32
	}
	first int64 // second of the first unit (the window is shorter at the start)
}

func (r *recentUnits) note(acts []Action, now time.Time) {
	for _, a := range acts {
		v, ok := a.(Verdict)
		if !ok {
			continue
		}
		at := v.Received
		if at.IsZero() {
			at = now
		}
		r.ring[r.n%recentCap] = UnitView{Item: v.Item, Code: v.Code, Pass: v.Pass, Reason: v.Reason.String(), Detail: v.Detail, At: at}
		r.n++
		sec := now.Unix()
		b := &r.buckets[sec%rateWindow]
		if b.sec != sec {
			b.sec, b.n = sec, 0
		}
		b.n++
		if r.first == 0 {
			r.first = sec
		}
	}
}

// units returns the last units, newest first.
func (r *recentUnits) units() []UnitView {
	k := min(r.n, recentCap)
	out := make([]UnitView, 0, k)
	for i := uint64(0); i < k; i++ {
		out = append(out, r.ring[(r.n-1-i)%recentCap])
	}
	return out
}

// rate is the units decided per minute over the last rateWindow seconds
// (over the time since the first unit, if shorter).
func (r *recentUnits) rate(now time.Time) float64 {
	if r.first == 0 {
		return 0
	}
	sec := now.Unix()
	var n uint64
	for _, b := range r.buckets {
		if b.sec > sec-rateWindow && b.sec <= sec {
			n += uint64(b.n)
		}
	}
	span := min(sec-r.first+1, rateWindow)
	if span < 1 {
		span = 1
	}
	return float64(n) * 60 / float64(span)
}

// Recent returns the last units decided (newest first) and the rate in
// units/min over the last minute.
func (r *Runner) Recent() ([]UnitView, float64) {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	return r.recent.units(), r.recent.rate(time.Now())
}

// forwardAlarms hands the step's alarms to the Line, never blocking the
// loop (an alarm storm beyond the queue is logged and dropped).
func (r *Runner) forwardAlarms(acts []Action) {
	for _, a := range acts {
		if al, ok := a.(Alarm); ok {
			select {
			case r.alarms <- al:
			default:
				r.log.Error("alarm queue full; alarm not journaled", "device", al.Device, "text", al.Text)
			}
		}
	}
}
