package devsim

import (
	"encoding/json"
	"time"

	"github.com/tracline/tracline/cmd/linesim/uasim"
)

// PrintRecord is one print as the simulated coding printer publishes it:
// JSON in the LastRecord node and in the Records ring.
type PrintRecord struct {
	Seq  uint64    `json:"seq"`
	Code string    `json:"code"`
	At   time.Time `json:"at"`
}

// ResultRecord is one camera result as the simulated cameras publish it:
// JSON in the LastResult node and in the Results ring. Item is the unit's
// item id (vision camera) or the group id (aggregation camera). Codes is
// empty on a no-read. Grade is "A".."F" or "" when nothing was graded.
type ResultRecord struct {
	Seq   uint64    `json:"seq"`
	Item  uint32    `json:"item"`
	Level int       `json:"level,omitempty"`
	Codes []string  `json:"codes"`
	Grade string    `json:"grade"`
	Pass  bool      `json:"pass"`
	At    time.Time `json:"at"`
}

// recordLog publishes records atomically: a ring of the last N JSON records,
// a counter and the last record, in that order, so that a client that sees
// record n in the last-record node finds n-1, n-2, … in the ring.
type recordLog struct {
	size  int
	seq   uint64
	ring  []string
	rings *uasim.Variable // String[] oldest first
	count *uasim.Variable // UInt32 (the seq of the last record)
	last  *uasim.Variable // String (JSON of the last record)
}

// get returns record seq from the ring ("" if no longer there).
func (l *recordLog) get(seq uint64) string {
	if seq == 0 || seq > l.seq || l.seq-seq >= uint64(len(l.ring)) {
		return ""
	}
	return l.ring[uint64(len(l.ring))-1-(l.seq-seq)]
}

func (l *recordLog) publish(seq uint64, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	l.seq = seq
	l.ring = append(l.ring, string(b))
	if len(l.ring) > l.size {
		l.ring = append([]string(nil), l.ring[len(l.ring)-l.size:]...)
	}
	if err := l.rings.Set(append([]string(nil), l.ring...)); err != nil {
		return err
	}
	if err := l.count.Set(uint32(seq)); err != nil {
		return err
	}
	return l.last.Set(string(b))
}
