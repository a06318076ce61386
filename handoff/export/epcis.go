package export

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// eventKind is the type of an EPCIS event.
type eventKind uint8

const (
	objectEvent eventKind = iota + 1
	aggregationEvent
)

// event is one EPCIS event, as both encoders need it. CBV values are the
// bare words of the JSON binding; the XML encoder makes them URNs.
type event struct {
	kind        eventKind
	id          string
	at          time.Time
	action      string // ADD, OBSERVE, DELETE
	bizStep     string
	disposition string
	parent      tracecode.Code   // AggregationEvent
	codes       []tracecode.Code // epcList / childEPCs
	ilmd        bool             // lot and expiry
	reason      string           // tl:reason
}

// encoder writes an EPCIS document: begin, each event, end.
type encoder interface {
	begin() error
	event(ev *event) error
	end() error
}

// eventNS is the UUID namespace of Tracline's event ids: an event's id is a
// name-based (SHA-1) UUID of "<batch>/<what>/<n>", so the same batch
// exported twice gives the same ids (a receiver may deduplicate on them).
var eventNS = uuid.MustParse("1d6a0b3e-5c1f-4b7e-9f3a-7c2e6d8b4a10")

func (x *exporter) eventID(what string, n int) string {
	return "urn:uuid:" + uuid.NewSHA1(eventNS, fmt.Appendf(nil, "%s/%s/%d", x.batch, what, n)).String()
}

// writeEPCIS walks the batch in the order its codes lived:
//  1. commissioning (ADD, disposition inactive: not live before activation),
//     per level, chunked, with ILMD lot and expiry: every code ever
//     commissioned (now loose, packed, sampled or decommissioned);
//  2. packing (AggregationEvent ADD) per parent, children before parents;
//  3. per code: sampling, decommissioning and destroying, with the reason
//     and time from the code's history;
//  4. activation (OBSERVE, disposition active) of the codes now commissioned
//     or packed, per level, chunked — when the batch is active or handed off.
func (x *exporter) writeEPCIS(ctx context.Context, enc encoder) error {
	if err := enc.begin(); err != nil {
		return err
	}
	released := x.releasedAt()
	emit := func(ev *event) error {
		x.st.Events++
		return enc.event(ev)
	}
	// 1. Commissioning.
	for l := tracecode.Level(1); l <= x.top; l++ {
		ilmd := x.spec.Levels[l-1].Scheme != tracecode.SchemeGS1SSCC
		n := 0
		ch := x.chunker(func(codes []tracecode.Code) error {
			n++
			return emit(&event{kind: objectEvent, id: x.eventID(fmt.Sprintf("commission/%s", l), n), at: released,
				action: "ADD", bizStep: "commissioning", disposition: "inactive", codes: codes, ilmd: ilmd})
		})
		for _, st := range []aggregation.CodeState{aggregation.StateCommissioned, aggregation.StateAggregated,
			aggregation.StateSampled, aggregation.StateDecommissioned} {
			if err := x.walk(ctx, l, st, func(c tracecode.Code) error {
				x.st.Codes[l-1]++
				return ch.add(c)
			}); err != nil {
				return err
			}
		}
		if err := ch.flush(); err != nil {
			return err
		}
	}
	// 2. Packing: the trees under every loose code, top level first.
	packs := 0
	for l := x.top; l >= 2; l-- {
		if err := x.walk(ctx, l, aggregation.StateCommissioned, func(root tracecode.Code) error {
			return x.parents(ctx, root, func(parent tracecode.Code, kids []tracecode.Code) error {
				packs++
				return emit(&event{kind: aggregationEvent, id: x.eventID("pack", packs), at: released,
					action: "ADD", bizStep: "packing", disposition: "in_progress", parent: parent, codes: kids})
			})
		}); err != nil {
			return err
		}
	}
	// 3. What left the batch, one event per code.
	fates := []struct {
		st                 aggregation.CodeState
		action, step, disp string
		kinds              []aggregation.EventKind
	}{
		{aggregation.StateSampled, "OBSERVE", "sampling", "non_sellable_other", []aggregation.EventKind{aggregation.EvSample}},
		{aggregation.StateDecommissioned, "DELETE", "decommissioning", "inactive", []aggregation.EventKind{aggregation.EvDecommission, aggregation.EvGate}},
		{aggregation.StateRejected, "OBSERVE", "destroying", "destroyed", []aggregation.EventKind{aggregation.EvReject}},
		{aggregation.StateVoided, "OBSERVE", "destroying", "destroyed", []aggregation.EventKind{aggregation.EvVoid}},
	}
	for _, f := range fates {
		n := 0
		for l := tracecode.Level(1); l <= x.top; l++ {
			if err := x.walk(ctx, l, f.st, func(c tracecode.Code) error {
				at, reason, err := x.fate(ctx, c, f.kinds)
				if err != nil {
					return err
				}
				n++
				return emit(&event{kind: objectEvent, id: x.eventID(f.st.String(), n), at: at, action: f.action,
					bizStep: f.step, disposition: f.disp, codes: []tracecode.Code{c}, reason: f.st.String() + ": " + reason})
			}); err != nil {
				return err
			}
		}
	}
	// 4. Activation.
	if x.sum.State == aggregation.BatchActive || x.sum.State == aggregation.BatchHandedOff {
		for l := tracecode.Level(1); l <= x.top; l++ {
			n := 0
			ch := x.chunker(func(codes []tracecode.Code) error {
				n++
				return emit(&event{kind: objectEvent, id: x.eventID(fmt.Sprintf("activate/%s", l), n), at: released,
					action: "OBSERVE", disposition: "active", codes: codes})
			})
			for _, st := range []aggregation.CodeState{aggregation.StateCommissioned, aggregation.StateAggregated} {
				if err := x.walk(ctx, l, st, ch.add); err != nil {
					return err
				}
			}
			if err := ch.flush(); err != nil {
				return err
			}
		}
	}
	return enc.end()
}

// walk streams the codes of level l now in state st, skipping the walk
// when the summary says there are none.
func (x *exporter) walk(ctx context.Context, l tracecode.Level, st aggregation.CodeState, fn func(tracecode.Code) error) error {
	if x.count(l, st) == 0 {
		return nil
	}
	return x.l.Codes(ctx, x.batch, l, st, fn)
}

// fate finds, in c's history, the last event of one of kinds: its time and
// reason.
func (x *exporter) fate(ctx context.Context, c tracecode.Code, kinds []aggregation.EventKind) (time.Time, string, error) {
	ci, err := x.l.Code(ctx, c)
	if err != nil {
		return time.Time{}, "", err
	}
	for i := len(ci.History) - 1; i >= 0; i-- {
		ev := ci.History[i]
		for _, k := range kinds {
			if ev.Kind == k {
				r := ev.Reason
				if k == aggregation.EvGate {
					r = "gate " + r
				}
				if r == "" {
					r = "no reason given"
				}
				return ev.At.In(x.o.Location), r, nil
			}
		}
	}
	return time.Time{}, "", fmt.Errorf("code %s is %s but its history has no %v event", c, ci.State, kinds)
}

// parents calls fn for every parent in the tree under root with its
// children, each parent after all parents below it (bottom-up within the
// tree, as packing happens).
func (x *exporter) parents(ctx context.Context, root tracecode.Code, fn func(parent tracecode.Code, kids []tracecode.Code) error) error {
	type open struct {
		code tracecode.Code
		kids []tracecode.Code
	}
	var stack [int(tracecode.MaxLevel) + 2]*open
	flush := func(upto tracecode.Level) error {
		for l := tracecode.Level(2); l <= upto && int(l) < len(stack); l++ {
			if o := stack[l]; o != nil {
				stack[l] = nil
				if len(o.kids) > 0 {
					if err := fn(o.code, o.kids); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	err := x.l.Tree(ctx, root, func(n aggregation.Node) error {
		if int(n.Level) >= len(stack)-1 || n.Level < 1 {
			return fmt.Errorf("code %s: level %d out of range", n.Code, n.Level)
		}
		if err := flush(n.Level); err != nil {
			return err
		}
		if p := stack[n.Level+1]; n.Parent != "" && p != nil {
			if p.code != n.Parent {
				return fmt.Errorf("tree of %s: %s under %s, expected under %s", root, n.Code, n.Parent, p.code)
			}
			p.kids = append(p.kids, n.Code)
		}
		if n.Level >= 2 {
			stack[n.Level] = &open{code: n.Code}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush(tracecode.MaxLevel + 1)
}

// chunker collects codes into events of at most Options.Chunk EPCs.
type chunker struct {
	buf  []tracecode.Code
	size int
	out  func([]tracecode.Code) error
}

func (x *exporter) chunker(out func([]tracecode.Code) error) *chunker {
	return &chunker{size: x.o.Chunk, out: out}
}

func (c *chunker) add(code tracecode.Code) error {
	c.buf = append(c.buf, code)
	if len(c.buf) >= c.size {
		return c.flush()
	}
	return nil
}

func (c *chunker) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := c.out(c.buf)
	c.buf = c.buf[:0]
	return err
}

// appendURI appends the URI of c: a GS1 Digital Link for SGTIN
// (<base>/01/<gtin>/21/<serial>) and SSCC (<base>/00/<sscc>), and
// NMPA20Base + the 20 digits for nmpa20.
func (x *exporter) appendURI(b []byte, c tracecode.Code) ([]byte, error) {
	s := string(c)
	switch {
	case strings.HasPrefix(s, "(01)"):
		i := strings.Index(s, "(21)")
		if i < 0 {
			break
		}
		b = append(b, x.o.DigitalLinkBase...)
		b = append(b, "/01/"...)
		b = append(b, s[4:i]...)
		b = append(b, "/21/"...)
		return appendPct(b, s[i+4:]), nil
	case strings.HasPrefix(s, "(00)"):
		b = append(b, x.o.DigitalLinkBase...)
		b = append(b, "/00/"...)
		return append(b, s[4:]...), nil
	default:
		if sc, ok := tracecode.SchemeOf(c); ok && sc == tracecode.SchemeNMPA20 {
			b = append(b, x.o.NMPA20Base...)
			return append(b, s...), nil
		}
	}
	return b, fmt.Errorf("code %q: no URI form (not SGTIN, SSCC nor nmpa20)", s)
}

// appendPct percent-encodes a GS1 serial for a Digital Link path segment:
// everything but [A-Za-z0-9-._~].
func appendPct(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return b
}

// appendTime appends t as xsd:dateTime / RFC 3339 with milliseconds.
func appendTime(b []byte, t time.Time) []byte {
	return t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
}

// zoneOffset is t's offset as EPCIS wants it: "+08:00" (never "Z").
func zoneOffset(t time.Time) string {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%c%02d:%02d", sign, off/3600, off/60%60)
}

// lot and expiry for ILMD.
func (x *exporter) lot() string    { return firstOf(x.spec.Order.BatchNumber, x.batch) }
func (x *exporter) expiry() string { return x.spec.Order.Expiry }
