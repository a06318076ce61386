// Package killpoint lets the crash campaign kill the controller inside the
// narrow windows a random SIGKILL almost never hits: between journaling a
// pass and writing it to the PLC, between packing a parent and printing its
// label, between printing the label and journaling that it was printed;
// and after the batch, in QA's release and the hand-off: between a release
// signature and the decision it makes, between the activation and the
// hand-off documents, between a receiver's acceptance of a document and
// its journaling, between a document's delivery and the ledger being told.
//
// It is compiled into every build and inert unless the environment variable
// TRACLINE_KILLPOINT names a point: TRACLINE_KILLPOINT=journal-plc:40 makes
// the process SIGKILL itself the 40th time it reaches Hit("journal-plc") —
// no deferred function runs, nothing is flushed, as in a power cut. An
// unset or empty variable costs one atomic load per Hit. A malformed value
// is reported once on stderr and ignored (the controller must not refuse
// to start because of a test switch).
//
// The state is process-wide on purpose: a kill point is a property of the
// process, read once from its environment, and the places that call Hit
// (the line's runner, the release desk, the publisher, the outbox) should
// not carry a test switch through their constructors. Who may import it:
// line (the runner's windows), handoff/release, handoff and handoff/outbox
// (the release's and the hand-off's windows) and the campaign harness (the
// names and the variable).
package killpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable that arms a kill point.
const Env = "TRACLINE_KILLPOINT"

// The named points, in the order a unit meets them.
const (
	// JournalPLC: a pass verdict is journaled (the code commissioned), the
	// PLC has not been told.
	JournalPLC = "journal-plc"
	// PackLabel: a parent is packed in the ledger, its label not printed.
	PackLabel = "pack-label"
	// LabelJournal: the label is printed, its printing not journaled.
	LabelJournal = "label-journal"
	// ReleaseDecision: QA's release signature is journaled, the decision
	// it makes (the batch released) is not.
	ReleaseDecision = "release-decision"
	// Publish: the batch is activated (or the hand-off asked again), its
	// hand-off documents are not written yet.
	Publish = "publish"
	// HandoffAccepted: a receiver has accepted a document (the send
	// answered), the answer is not journaled: the resend after a restart
	// is the duplicate delivery the idempotency key must absorb.
	HandoffAccepted = "handoff-accepted"
	// HandoffDelivered: a document's delivery is journaled as delivered,
	// the ledger is not yet told (Store.HandedOff).
	HandoffDelivered = "handoff-delivered"
)

// Points lists every point Hit is called with.
var Points = []string{JournalPLC, PackLabel, LabelJournal, ReleaseDecision, Publish, HandoffAccepted, HandoffDelivered}

var (
	once  sync.Once
	armed atomic.Bool
	point string
	nth   int64
	seen  atomic.Int64
)

// Spec is the value of Env that kills at the n-th occurrence of point.
func Spec(point string, n int) string { return fmt.Sprintf("%s:%d", point, n) }

// Parse reads a value of Env: "point:n" with a known point and n ≥ 1.
func Parse(v string) (string, int, error) {
	name, count, ok := strings.Cut(v, ":")
	if !ok {
		return "", 0, fmt.Errorf("%s=%q: want point:n, e.g. %s", Env, v, Spec(JournalPLC, 10))
	}
	known := false
	for _, p := range Points {
		known = known || p == name
	}
	if !known {
		return "", 0, fmt.Errorf("%s=%q: point %q is unknown (known: %s)", Env, v, name, strings.Join(Points, ", "))
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("%s=%q: occurrence %q is not a whole number ≥ 1", Env, v, count)
	}
	return name, n, nil
}

func load() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	name, n, err := Parse(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "killpoint: %v; ignored\n", err)
		return
	}
	point, nth = name, int64(n)
	armed.Store(true)
}

// Hit marks that the process reached the named point; if the environment
// armed this point and this is its n-th occurrence, the process kills
// itself with SIGKILL and Hit does not return.
func Hit(name string) {
	once.Do(load)
	if !armed.Load() || name != point {
		return
	}
	if seen.Add(1) == nth {
		fmt.Fprintf(os.Stderr, "killpoint: SIGKILL at %s occurrence %d\n", name, nth)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
