package export

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
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

// encoder is one EPCIS binding: it appends the document's header, an
// event, the separator between events and the footer.
type encoder interface {
	header(b []byte) []byte
	appendEvent(b []byte, ev *event) ([]byte, error)
	sep() string
	footer(b []byte) []byte
}

// eventNS is the UUID namespace of Tracline's event ids: an event's id is a
// name-based (SHA-1) UUID of "<batch>/<what>/<n>", so the same batch
// exported twice gives the same ids (a receiver may deduplicate on them).
var eventNS = uuid.MustParse("1d6a0b3e-5c1f-4b7e-9f3a-7c2e6d8b4a10")

func (x *exporter) eventID(what string, n int) string {
	name := make([]byte, 0, 96)
	name = append(name, x.batch...)
	name = append(name, '/')
	name = append(name, what...)
	name = append(name, '/')
	name = strconv.AppendInt(name, int64(n), 10)
	return "urn:uuid:" + uuid.NewSHA1(eventNS, name).String()
}

// events writes encoded events to w, separated.
type events struct {
	w   io.Writer
	enc encoder
	n   int64
	b   []byte
}

func (e *events) write(ev *event) error {
	b := e.b[:0]
	if e.n > 0 {
		b = append(b, e.enc.sep()...)
	}
	b, err := e.enc.appendEvent(b, ev)
	e.b = b
	if err != nil {
		return err
	}
	e.n++
	_, err = e.w.Write(b)
	return err
}

// spool holds events for later in the document in a temporary file, so
// that one walk of the ledger serves several parts of the document without
// holding them in memory.
type spool struct {
	events
	f  *os.File
	bw *bufio.Writer
}

func newSpool(enc encoder) (*spool, error) {
	f, err := os.CreateTemp("", "tracline-export-*")
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	sp := &spool{f: f, bw: bufio.NewWriterSize(f, 256<<10)}
	sp.events = events{w: sp.bw, enc: enc}
	return sp, nil
}

// copyTo appends the spooled events to dst.
func (sp *spool) copyTo(dst *events) error {
	if sp.n == 0 {
		return nil
	}
	if err := sp.bw.Flush(); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	if dst.n > 0 {
		if _, err := io.WriteString(dst.w, dst.enc.sep()); err != nil {
			return err
		}
	}
	if _, err := io.Copy(dst.w, sp.f); err != nil {
		return err
	}
	dst.n += sp.n
	return nil
}

func (sp *spool) close() {
	if sp != nil {
		sp.f.Close()
		os.Remove(sp.f.Name())
	}
}

// writeEPCIS writes the EPCIS document in the order the codes lived:
//  1. commissioning (ADD, disposition inactive: not live before
//     activation), per level, in chunks of Options.Chunk, with ILMD lot
//     and expiry: every code ever commissioned (now loose at the top,
//     packed, sampled or decommissioned);
//  2. packing (AggregationEvent ADD) per parent, children before parents;
//  3. per code: sampling, decommissioning and destroying, with the reason
//     and time from the code's history;
//  4. activation (OBSERVE, disposition active) of the codes now packed or
//     loose at the top, per level, chunked — when the batch is active or
//     handed off.
//
// One walk of the packing trees (from every loose code, top level first)
// yields 1, 2 and 4; 2 and 4 are spooled to temporary files meanwhile.
func (x *exporter) writeEPCIS(ctx context.Context, w io.Writer, enc encoder) error {
	out := &events{w: w, enc: enc}
	if _, err := w.Write(enc.header(nil)); err != nil {
		return err
	}
	packs, err := newSpool(enc)
	if err != nil {
		return err
	}
	defer packs.close()
	var acts *spool
	if x.sum.State == aggregation.BatchActive || x.sum.State == aggregation.BatchHandedOff {
		if acts, err = newSpool(enc); err != nil {
			return err
		}
		defer acts.close()
	}
	produced, live := x.producedAt(), x.liveAt()
	emit := func(dst *events, ev *event) error {
		x.st.Events++
		return dst.write(ev)
	}
	commission := make([]*chunker, x.top+1)
	activate := make([]*chunker, x.top+1)
	for l := tracecode.Level(1); l <= x.top; l++ {
		ilmd := x.spec.Levels[l-1].Scheme != tracecode.SchemeGS1SSCC
		n, what := 0, fmt.Sprintf("commission/%s", l)
		commission[l] = x.chunker(func(codes []tracecode.Code) error {
			n++
			return emit(out, &event{kind: objectEvent, id: x.eventID(what, n), at: produced,
				action: "ADD", bizStep: "commissioning", disposition: "inactive", codes: codes, ilmd: ilmd})
		})
		if acts != nil {
			an, awhat := 0, fmt.Sprintf("activate/%s", l)
			activate[l] = x.chunker(func(codes []tracecode.Code) error {
				an++
				return emit(&acts.events, &event{kind: objectEvent, id: x.eventID(awhat, an), at: live,
					action: "OBSERVE", disposition: "active", codes: codes})
			})
		}
	}
	// keep: a code of this batch now packed or loose at the top.
	keep := func(l tracecode.Level, c tracecode.Code) error {
		x.st.Codes[l-1]++
		if err := commission[l].add(c); err != nil {
			return err
		}
		if acts != nil {
			return activate[l].add(c)
		}
		return nil
	}
	// The walk: every loose code (the top level's; below it only if the
	// ledger has loose codes there) and the tree under it.
	packN := 0
	var pk packer
	pk.emit = func(parent tracecode.Code, kids []tracecode.Code) error {
		packN++
		return emit(&packs.events, &event{kind: aggregationEvent, id: x.eventID("pack", packN), at: produced,
			action: "ADD", bizStep: "packing", disposition: "in_progress", parent: parent, codes: kids})
	}
	for l := x.top; l >= 1; l-- {
		if err := x.walk(ctx, l, aggregation.StateCommissioned, func(root tracecode.Code) error {
			pk.reset(root)
			err := x.l.Tree(ctx, root, func(n aggregation.Node) error {
				if n.Level < 1 || n.Level > x.top {
					return fmt.Errorf("tree of %s: code %s of level %d, the batch has %d", root, n.Code, n.Level, x.top)
				}
				if own, err := x.own(ctx, n.Code); err != nil {
					return err
				} else if own {
					if err := keep(n.Level, n.Code); err != nil {
						return err
					}
				}
				return pk.node(n)
			})
			if err != nil {
				return err
			}
			return pk.done()
		}); err != nil {
			return err
		}
	}
	// Codes of this batch packed under another batch's parent (拼箱).
	if err := x.foreignTrees(ctx, func(l tracecode.Level, c, _ tracecode.Code) error { return keep(l, c) }); err != nil {
		return err
	}
	// Commissioned codes no longer in the trees: sampled, decommissioned.
	for l := tracecode.Level(1); l <= x.top; l++ {
		for _, st := range []aggregation.CodeState{aggregation.StateSampled, aggregation.StateDecommissioned} {
			if err := x.walk(ctx, l, st, func(c tracecode.Code) error {
				x.st.Codes[l-1]++
				return commission[l].add(c)
			}); err != nil {
				return err
			}
		}
		if err := commission[l].flush(); err != nil {
			return err
		}
		if acts != nil {
			if err := activate[l].flush(); err != nil {
				return err
			}
		}
	}
	if err := packs.copyTo(out); err != nil {
		return err
	}
	// What left the batch, one event per code.
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
				return emit(out, &event{kind: objectEvent, id: x.eventID(f.st.String(), n), at: at, action: f.action,
					bizStep: f.step, disposition: f.disp, codes: []tracecode.Code{c}, reason: f.st.String() + ": " + reason})
			}); err != nil {
				return err
			}
		}
	}
	if acts != nil {
		if err := acts.copyTo(out); err != nil {
			return err
		}
	}
	_, err = w.Write(enc.footer(nil))
	return err
}

// packer turns a depth-first tree walk (parents before children) into
// packing events, each parent after every parent below it.
type packer struct {
	root tracecode.Code
	open [int(tracecode.MaxLevel) + 2]tracecode.Code
	kids [int(tracecode.MaxLevel) + 2][]tracecode.Code
	emit func(parent tracecode.Code, kids []tracecode.Code) error
}

func (p *packer) reset(root tracecode.Code) {
	p.root = root
	for i := range p.open {
		p.open[i], p.kids[i] = "", p.kids[i][:0]
	}
}

// flush emits the open parents of levels 2..upto, lowest first.
func (p *packer) flush(upto tracecode.Level) error {
	for l := 2; l <= int(upto) && l < len(p.open); l++ {
		if p.open[l] == "" {
			continue
		}
		if len(p.kids[l]) > 0 {
			if err := p.emit(p.open[l], p.kids[l]); err != nil {
				return err
			}
		}
		p.open[l], p.kids[l] = "", p.kids[l][:0]
	}
	return nil
}

func (p *packer) node(n aggregation.Node) error {
	if int(n.Level) >= len(p.open)-1 {
		return fmt.Errorf("code %s: level %d out of range", n.Code, n.Level)
	}
	// A node of level L ends every open parent of level ≤ L.
	if err := p.flush(n.Level); err != nil {
		return err
	}
	if n.Parent != "" && n.Code != p.root {
		if p.open[n.Level+1] != n.Parent {
			return fmt.Errorf("tree of %s: %s under %s, expected under %q", p.root, n.Code, n.Parent, p.open[n.Level+1])
		}
		p.kids[n.Level+1] = append(p.kids[n.Level+1], n.Code)
	}
	if n.Level >= 2 {
		p.open[n.Level] = n.Code
	}
	return nil
}

func (p *packer) done() error { return p.flush(tracecode.MaxLevel + 1) }

// own reports whether code belongs to the batch: always, unless the batch
// has mixed parents, whose children from other batches are walked too.
func (x *exporter) own(ctx context.Context, c tracecode.Code) (bool, error) {
	if !x.hasMixed {
		return true, nil
	}
	ci, err := x.l.Lookup(ctx, c)
	if err != nil {
		return false, err
	}
	return ci.Batch == x.batch, nil
}

// foreignTrees calls fn, with its parent, for every packed code of the batch that the walk
// from its own loose codes did not reach: codes under a parent of another
// batch (a mixed case of that batch), top level first. It costs a pass
// over a level and an Ancestors lookup per packed code, and runs only for
// levels where the walk came short of the ledger's count.
func (x *exporter) foreignTrees(ctx context.Context, fn func(l tracecode.Level, c, parent tracecode.Code) error) error {
	for l := x.top; l >= 1; l-- {
		want := x.count(l, aggregation.StateAggregated) + x.count(l, aggregation.StateCommissioned)
		if x.st.Codes[l-1] >= want {
			continue
		}
		err := x.walk(ctx, l, aggregation.StateAggregated, func(c tracecode.Code) error {
			anc, err := x.l.Ancestors(ctx, c)
			if err != nil {
				return err
			}
			if len(anc) == 0 {
				return nil
			}
			top, err := x.l.Lookup(ctx, anc[len(anc)-1])
			if err != nil {
				return err
			}
			if top.Batch == x.batch {
				return nil // reached by the walk
			}
			return fn(l, c, anc[0])
		})
		if err != nil {
			return err
		}
	}
	return nil
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
