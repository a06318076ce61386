package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// Format is a hand-off document format.
type Format string

const (
	FormatMSFX      Format = "msfx-xml"   // 码上放心-style relation XML
	FormatEPCISJSON Format = "epcis-json" // EPCIS 2.0 JSON-LD
	FormatEPCISXML  Format = "epcis-xml"  // EPCIS 2.0 XML
)

// Formats lists every format, in the order the CLI shows them.
var Formats = []Format{FormatMSFX, FormatEPCISJSON, FormatEPCISXML}

func (f Format) String() string { return string(f) }

// ParseFormat is the inverse of String.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown export format %q (want msfx-xml, epcis-json or epcis-xml)", s)
}

// Ledger is what an export reads; *aggregation.Store satisfies it.
type Ledger interface {
	Summary(ctx context.Context, batch string) (aggregation.BatchSummary, error)
	Spec(ctx context.Context, batch string) (aggregation.BatchSpec, error)
	Codes(ctx context.Context, batch string, level tracecode.Level, state aggregation.CodeState, fn func(tracecode.Code) error) error
	Tree(ctx context.Context, parent tracecode.Code, fn func(aggregation.Node) error) error
	Lookup(ctx context.Context, code tracecode.Code) (aggregation.CodeInfo, error)
	Code(ctx context.Context, code tracecode.Code) (aggregation.CodeInfo, error)
	Trail(ctx context.Context, batch string, fn func(aggregation.Event) error) error
	Ancestors(ctx context.Context, code tracecode.Code) ([]tracecode.Code, error)
}

// Sentinel errors callers branch on.
var (
	// ErrNotReleased: the batch is not in a state that may be handed off.
	ErrNotReleased = errors.New("batch not released")
	// ErrProduct: the product master data does not fit the batch.
	ErrProduct = errors.New("product does not match the batch")
)

// Defaults of Options.
const (
	DefaultChunk           = 1000
	DefaultDigitalLinkBase = "https://id.gs1.org"
	DefaultNMPA20Base      = "urn:nmpa20:"
	// ExtensionNS is the namespace of Tracline's EPCIS extension fields
	// (tl:reason), in JSON-LD (prefix "tl") and XML (xmlns:tl).
	ExtensionNS = "urn:tracline:epcis:"
)

// Options says how a document is written. Product is required.
type Options struct {
	// Product is the batch's product master data: names, GTINs, package
	// spec. Its levels and schemes must match the batch's.
	Product *tracecode.Product
	// Now is the document's creation time (default time.Now).
	Now func() time.Time
	// Location is the time zone events are stated in (default UTC+08:00,
	// China Standard Time).
	Location *time.Location
	// Chunk is the number of EPCs per commissioning or activation
	// ObjectEvent (default 1000, at most 100000).
	Chunk int
	// DigitalLinkBase is the base of GS1 Digital Link URIs (default
	// https://id.gs1.org, the canonical form).
	DigitalLinkBase string
	// NMPA20Base prefixes a 20-digit nmpa20 code to make its URI (default
	// "urn:nmpa20:", giving urn:nmpa20:80217621475594406924).
	NMPA20Base string
	// ReadPoint and BizLocation are optional location URIs (e.g. SGLNs as
	// https://id.gs1.org/414/…/254/…) put on every EPCIS event.
	ReadPoint, BizLocation string
}

// Validate checks the options; messages name the field.
func (o Options) Validate() error {
	if o.Product == nil {
		return errors.New("export options: product is required")
	}
	if o.Chunk < 0 || o.Chunk > 100000 {
		return fmt.Errorf("export options: chunk %d out of range 1..100000", o.Chunk)
	}
	for name, v := range map[string]string{"digital_link_base": o.DigitalLinkBase, "nmpa20_base": o.NMPA20Base,
		"read_point": o.ReadPoint, "biz_location": o.BizLocation} {
		if v == "" {
			continue
		}
		if i := strings.IndexByte(v, ':'); i < 1 || strings.ContainsAny(v, " \"'&<>\\^`{|}\t\r\n") {
			return fmt.Errorf("export options: %s %q is not a URI", name, v)
		}
	}
	return nil
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.FixedZone("CST", 8*3600)
	}
	if o.Chunk == 0 {
		o.Chunk = DefaultChunk
	}
	if o.DigitalLinkBase == "" {
		o.DigitalLinkBase = DefaultDigitalLinkBase
	}
	o.DigitalLinkBase = strings.TrimSuffix(o.DigitalLinkBase, "/")
	if o.NMPA20Base == "" {
		o.NMPA20Base = DefaultNMPA20Base
	}
}

// Stats counts what a document holds.
type Stats struct {
	Format Format `json:"format"`
	Batch  string `json:"batch"`
	// Codes counts the codes written per level (index 0 = level 1): for
	// msfx-xml each Code element, for EPCIS each commissioned code.
	Codes  []int64 `json:"codes"`
	Events int64   `json:"events"` // EPCIS events (msfx-xml: 0)
	Bytes  int64   `json:"bytes"`
}

// Write writes batch's hand-off document in format f to w, streamed. The
// batch must be released, active or handed off.
func Write(ctx context.Context, w io.Writer, l Ledger, batch string, f Format, o Options) (Stats, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return Stats{}, err
	}
	x, err := newExporter(ctx, l, batch, o)
	if err != nil {
		return Stats{}, err
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	x.st.Format = f
	switch f {
	case FormatMSFX:
		err = x.writeMSFX(ctx, bw)
	case FormatEPCISJSON:
		err = x.writeEPCIS(ctx, bw, jsonEnc{x: x})
	case FormatEPCISXML:
		err = x.writeEPCIS(ctx, bw, xmlEnc{x: x})
	}
	if err == nil {
		err = bw.Flush()
	}
	x.st.Bytes = cw.n
	if err != nil {
		return x.st, fmt.Errorf("export %s of batch %s: %w", f, batch, err)
	}
	return x.st, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// exporter holds what every format needs about one batch.
type exporter struct {
	l     Ledger
	batch string
	o     Options
	sum   aggregation.BatchSummary
	spec  aggregation.BatchSpec
	p     *tracecode.Product
	top   tracecode.Level
	now   time.Time
	st    Stats
	// From the batch's audit trail: when it was completed and activated
	// (zero if not).
	completedAt, activatedAt time.Time
	hasMixed                 bool // a mixed parent (拼箱) at some level
}

func newExporter(ctx context.Context, l Ledger, batch string, o Options) (*exporter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	sum, err := l.Summary(ctx, batch)
	if err != nil {
		return nil, err
	}
	switch sum.State {
	case aggregation.BatchReleased, aggregation.BatchActive, aggregation.BatchHandedOff:
	default:
		return nil, fmt.Errorf("batch %s is %s: only a released, active or handed-off batch is exported: %w", batch, sum.State, ErrNotReleased)
	}
	if sum.Signature == nil || sum.Signature.Meaning != "released" {
		return nil, fmt.Errorf("batch %s is %s but carries no \"released\" signature: %w", batch, sum.State, ErrNotReleased)
	}
	spec, err := l.Spec(ctx, batch)
	if err != nil {
		return nil, err
	}
	if err := matchProduct(o.Product, spec); err != nil {
		return nil, err
	}
	x := &exporter{l: l, batch: batch, o: o, sum: sum, spec: spec, p: o.Product,
		top: tracecode.Level(len(spec.Levels)), now: o.Now().In(o.Location)}
	x.st.Batch = batch
	x.st.Codes = make([]int64, len(spec.Levels))
	for _, ls := range sum.Levels {
		x.hasMixed = x.hasMixed || ls.MixedParents > 0
	}
	err = l.Trail(ctx, batch, func(ev aggregation.Event) error {
		switch ev.Kind {
		case aggregation.EvComplete:
			x.completedAt = ev.At
		case aggregation.EvActivate:
			x.activatedAt = ev.At
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("batch %s: audit trail: %w", batch, err)
	}
	return x, nil
}

// matchProduct checks the product master data against the batch spec.
func matchProduct(p *tracecode.Product, spec aggregation.BatchSpec) error {
	if spec.Product != p.GenericName && spec.Product != p.PoolName(1) {
		return fmt.Errorf("batch %s is of product %q, the product file %s is %q (%s): %w",
			spec.ID, spec.Product, p.Source(), p.GenericName, p.PoolName(1), ErrProduct)
	}
	if int(p.TopLevel()) < len(spec.Levels) {
		return fmt.Errorf("batch %s has %d levels, the product file %s only %d: %w", spec.ID, len(spec.Levels), p.Source(), p.TopLevel(), ErrProduct)
	}
	for _, ls := range spec.Levels {
		if r := p.Rule(ls.Level); r.Scheme != ls.Scheme {
			return fmt.Errorf("batch %s level %s uses %s codes, the product file %s files %q: %w", spec.ID, ls.Level, ls.Scheme, p.Source(), r.Scheme, ErrProduct)
		}
	}
	return nil
}

// level returns the summary of level l.
func (x *exporter) level(l tracecode.Level) aggregation.LevelSummary {
	if l >= 1 && int(l) <= len(x.sum.Levels) {
		return x.sum.Levels[l-1]
	}
	return aggregation.LevelSummary{}
}

// count is how many codes of level l are now in state st (from the
// summary: a level with none is not walked).
func (x *exporter) count(l tracecode.Level, st aggregation.CodeState) int64 {
	return x.level(l).States[st.String()]
}

// releasedAt is the release signature's time, in the export's zone.
func (x *exporter) releasedAt() time.Time { return x.sum.Signature.At.In(x.o.Location) }

// producedAt is the time of the commissioning and packing events: when the
// batch was completed (every code commissioned and packed by then), else
// the release.
func (x *exporter) producedAt() time.Time {
	if x.completedAt.IsZero() {
		return x.releasedAt()
	}
	return x.completedAt.In(x.o.Location)
}

// liveAt is the time of the activation events: the activation, else the
// release.
func (x *exporter) liveAt() time.Time {
	if x.activatedAt.IsZero() {
		return x.releasedAt()
	}
	return x.activatedAt.In(x.o.Location)
}
