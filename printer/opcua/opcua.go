// Package opcua drives a coding printer over OPC UA, by profile: which nodes
// or method take the next codes, which node carries the print records (one
// JSON record per print, with a counter and a ring for gap recovery), which
// method flushes the buffer, which nodes report status. It implements
// printer.Coder and printer.StatusReader. Only cmd/ wires it.
package opcua

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/printer/uarecord"
	"github.com/tracline/tracline/tracecode"
)

// Handover is how codes reach the printer's buffer.
type Handover string

const (
	// HandoverArray writes all codes of one Send as one String[] to EnqueueNode.
	HandoverArray Handover = "array"
	// HandoverNode writes codes one by one as String to EnqueueNode.
	HandoverNode Handover = "node"
	// HandoverMethod calls AddMethod on Object with the codes as String[].
	HandoverMethod Handover = "method"
)

// Config is a coding printer profile.
type Config struct {
	// Name of the printer in messages and events (default "printer").
	Name string `yaml:"name"`
	// Connection and record stream: endpoint, security, record_node (JSON
	// print record), count_node, ring_node, publishing_interval, watchdog,
	// request_timeout.
	Stream uarecord.Config `yaml:"stream"`
	// Handover: array | node | method.
	Handover Handover `yaml:"handover"`
	// EnqueueNode takes codes (handover array / node).
	EnqueueNode string `yaml:"enqueue_node"`
	// Object owns the methods (handover method, flush).
	Object string `yaml:"object"`
	// AddMethod takes String[] codes (handover method).
	AddMethod string `yaml:"add_method"`
	// FlushMethod empties the buffer; outputs (String[] removed, UInt32
	// print count at the flush).
	FlushMethod string `yaml:"flush_method"`
	// BufferDepth is the printer's buffer capacity in codes; Send refuses
	// to hand over more than fit (pending = sent and not yet confirmed).
	BufferDepth int `yaml:"buffer_depth"`
	// Record fields in the JSON print record (defaults "seq", "code").
	SeqField  string `yaml:"seq_field"`
	CodeField string `yaml:"code_field"`
	// Status nodes (optional).
	StateNode       string `yaml:"state_node"`
	InkLowNode      string `yaml:"ink_low_node"`
	HeadFaultNode   string `yaml:"head_fault_node"`
	BufferLevelNode string `yaml:"buffer_level_node"`
	UnderrunsNode   string `yaml:"underruns_node"`
}

// Validate reports what is wrong, naming the setting.
func (c Config) Validate() error {
	p := "printer." + c.name()
	errs := []error{c.Stream.Validate(p)}
	switch c.Handover {
	case HandoverArray, HandoverNode:
		errs = append(errs, uarecord.CheckNode(p+".enqueue_node", c.EnqueueNode, true))
	case HandoverMethod:
		errs = append(errs, uarecord.CheckNode(p+".object", c.Object, true), uarecord.CheckNode(p+".add_method", c.AddMethod, true))
	case "":
		errs = append(errs, fmt.Errorf("%s.handover: must be set (array, node or method)", p))
	default:
		errs = append(errs, fmt.Errorf("%s.handover: %q is not array, node or method", p, c.Handover))
	}
	errs = append(errs, uarecord.CheckNode(p+".flush_method", c.FlushMethod, true))
	if c.FlushMethod != "" {
		errs = append(errs, uarecord.CheckNode(p+".object", c.Object, true))
	}
	if c.BufferDepth < 1 || c.BufferDepth > 100000 {
		errs = append(errs, fmt.Errorf("%s.buffer_depth: %d is outside 1..100000", p, c.BufferDepth))
	}
	for _, n := range []struct{ k, v string }{
		{"state_node", c.StateNode}, {"ink_low_node", c.InkLowNode}, {"head_fault_node", c.HeadFaultNode},
		{"buffer_level_node", c.BufferLevelNode}, {"underruns_node", c.UnderrunsNode},
	} {
		errs = append(errs, uarecord.CheckNode(p+"."+n.k, n.v, false))
	}
	return errors.Join(errs...)
}

func (c Config) name() string {
	if c.Name == "" {
		return "printer"
	}
	return c.Name
}

// SimProfile is the profile of linesim's simulated printer at endpoint
// (cmd/linesim/devsim; see docs/devices-printer-camera.md).
func SimProfile(endpoint string) Config {
	return Config{
		Name: "printer",
		Stream: uarecord.Config{
			Endpoint:   endpoint,
			RecordNode: "ns=1;s=Printer.LastRecord",
			CountNode:  "ns=1;s=Printer.PrintCount",
			RingNode:   "ns=1;s=Printer.Records",
		},
		Handover:        HandoverArray,
		EnqueueNode:     "ns=1;s=Printer.Enqueue",
		Object:          "ns=1;s=Printer",
		AddMethod:       "ns=1;s=Printer.AddCodes",
		FlushMethod:     "ns=1;s=Printer.Flush",
		BufferDepth:     64,
		StateNode:       "ns=1;s=Printer.State",
		InkLowNode:      "ns=1;s=Printer.InkLow",
		HeadFaultNode:   "ns=1;s=Printer.HeadFault",
		BufferLevelNode: "ns=1;s=Printer.BufferLevel",
		UnderrunsNode:   "ns=1;s=Printer.Underruns",
	}
}

// Printer is a coding printer over OPC UA.
type Printer struct {
	cfg    Config
	log    *slog.Logger
	stream *uarecord.Stream
	events chan printer.Event

	sendMu sync.Mutex // one Send / Flush at a time: keeps pending in hand-over order

	mu        sync.Mutex
	pending   []tracecode.Code // handed over, not confirmed, hand-over order
	processed uint64           // last record seq turned into an event
	cond      chan struct{}
	done      chan struct{}
	quit      chan struct{}
	quitOnce  sync.Once
	connected bool
}

var _ printer.Coder = (*Printer)(nil)
var _ printer.StatusReader = (*Printer)(nil)

// New validates the profile; it does not touch the network.
func New(cfg Config, log *slog.Logger) (*Printer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SeqField == "" {
		cfg.SeqField = "seq"
	}
	if cfg.CodeField == "" {
		cfg.CodeField = "code"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Printer{cfg: cfg, log: log, events: make(chan printer.Event, 1024), cond: make(chan struct{}), done: make(chan struct{}), quit: make(chan struct{})}
	st, err := uarecord.New(cfg.Stream, "printer "+strconv.Quote(cfg.name()), func(raw string) (uint64, error) {
		r, err := DecodeRecord(raw, cfg.SeqField, cfg.CodeField)
		return r.Seq, err
	}, log)
	if err != nil {
		return nil, err
	}
	p.stream = st
	return p, nil
}

// Connect connects (bounded by ctx) and starts delivering events.
func (p *Printer) Connect(ctx context.Context) error {
	if err := p.stream.Connect(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.connected = true
	p.processed = p.stream.LastSeq()
	p.mu.Unlock()
	go p.run()
	return nil
}

// PublishingInterval is the publishing interval the printer's OPC UA
// server granted for the print-record subscription (it may be longer than
// the profile asked: records then arrive at the server's pace); 0 before
// Connect. An optional ability: cmd/ checks the line's deadline margin.
func (p *Printer) PublishingInterval() time.Duration { return p.stream.PublishingInterval() }

// Events delivers printed confirmations, gaps and link changes in order;
// closed after Close.
func (p *Printer) Events() <-chan printer.Event { return p.events }

// Close stops the printer's stream. Safe twice and before Connect.
func (p *Printer) Close() error {
	p.quitOnce.Do(func() { close(p.quit) })
	err := p.stream.Close()
	p.mu.Lock()
	connected := p.connected
	p.mu.Unlock()
	if connected {
		<-p.done
	} else {
		select {
		case <-p.done:
		default:
			close(p.done)
			close(p.events)
		}
	}
	return err
}

// run turns stream events into printer events, keeping pending honest.
func (p *Printer) run() {
	defer func() {
		close(p.events)
		close(p.done)
	}()
	for ev := range p.stream.Events() {
		out := printer.Event{At: ev.At}
		switch ev.Kind {
		case uarecord.KindRecord:
			r, err := DecodeRecord(ev.Raw, p.cfg.SeqField, p.cfg.CodeField)
			if err != nil { // the stream decoded its seq, so this is a missing code
				p.log.Warn("print record without a code", "printer", p.cfg.name(), "raw", ev.Raw, "err", err)
				out.Kind, out.Lost = printer.EventGap, 1
				out.Uncertain = p.takeOldest(1)
				break
			}
			out.Kind, out.Seq, out.Code = printer.EventPrinted, r.Seq, tracecode.Code(r.Code)
			p.confirm(out.Code)
		case uarecord.KindGap:
			n := int(ev.To - ev.From + 1)
			out.Kind, out.Lost = printer.EventGap, n
			out.Uncertain = p.takeOldest(n)
		case uarecord.KindDown:
			out.Kind, out.Err = printer.EventDown, ev.Err
		case uarecord.KindUp:
			out.Kind = printer.EventUp
		case uarecord.KindReset:
			out.Kind = printer.EventReset
			out.Err = fmt.Errorf("print counter went from %d to %d", ev.From, ev.To)
		default:
			continue
		}
		select {
		case p.events <- out:
		case <-p.quit:
			return
		}
		switch ev.Kind {
		case uarecord.KindRecord:
			p.setProcessed(ev.Seq)
		case uarecord.KindGap, uarecord.KindReset:
			p.setProcessed(ev.To)
		}
	}
}

func (p *Printer) setProcessed(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.processed = seq
	close(p.cond)
	p.cond = make(chan struct{})
}

func (p *Printer) confirm(c tracecode.Code) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.pending, c); i >= 0 {
		p.pending = slices.Delete(p.pending, i, i+1)
	}
}

func (p *Printer) takeOldest(n int) []tracecode.Code {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = min(n, len(p.pending))
	out := slices.Clone(p.pending[:n])
	p.pending = slices.Delete(p.pending, 0, n)
	return out
}

// Pending returns the codes handed over and not yet confirmed, in order.
func (p *Printer) Pending() []tracecode.Code {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pending)
}

// Send hands codes over in print order. It refuses (ErrBufferFull, nothing
// sent) what would overflow the buffer depth. On failure the error is a
// *printer.SendError telling which codes were taken, refused or uncertain.
func (p *Printer) Send(ctx context.Context, codes []tracecode.Code) error {
	if len(codes) == 0 {
		return nil
	}
	for i, c := range codes {
		if c == "" {
			return &printer.SendError{NotTaken: slices.Clone(codes), Err: fmt.Errorf("printer %q: code %d is empty", p.cfg.name(), i)}
		}
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	n := len(p.pending)
	p.mu.Unlock()
	if n+len(codes) > p.cfg.BufferDepth {
		return &printer.SendError{NotTaken: slices.Clone(codes), Err: fmt.Errorf("printer %q: %d pending + %d > depth %d: %w", p.cfg.name(), n, len(codes), p.cfg.BufferDepth, printer.ErrBufferFull)}
	}
	strs := make([]string, len(codes))
	for i, c := range codes {
		strs[i] = string(c)
	}
	classify := func(taken []tracecode.Code, rest []tracecode.Code, err error) error {
		se := &printer.SendError{Taken: taken, Err: err}
		if errors.Is(err, uarecord.ErrRefused) || errors.Is(err, uarecord.ErrDown) || errors.Is(err, uarecord.ErrClosed) {
			se.NotTaken = rest
			se.Err = fmt.Errorf("%w: %w", printer.ErrRefused, err)
		} else {
			se.Uncertain = rest
		}
		return se
	}
	switch p.cfg.Handover {
	case HandoverArray:
		// Hand over before the reply: a record can arrive before Write returns.
		p.addPending(codes)
		if err := p.stream.Write(ctx, p.cfg.EnqueueNode, strs); err != nil {
			p.removePending(codes)
			return classify(nil, slices.Clone(codes), err)
		}
	case HandoverMethod:
		p.addPending(codes)
		if _, err := p.stream.Call(ctx, p.cfg.Object, p.cfg.AddMethod, strs); err != nil {
			p.removePending(codes)
			return classify(nil, slices.Clone(codes), err)
		}
	case HandoverNode:
		for i, c := range codes {
			p.addPending(codes[i : i+1])
			if err := p.stream.Write(ctx, p.cfg.EnqueueNode, string(c)); err != nil {
				p.removePending(codes[i : i+1])
				return classify(slices.Clone(codes[:i]), slices.Clone(codes[i:]), err)
			}
		}
	}
	return nil
}

func (p *Printer) addPending(codes []tracecode.Code) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, codes...)
}

// removePending takes back codes whose hand-over failed (unless a record
// confirmed them meanwhile, which the events already said).
func (p *Printer) removePending(codes []tracecode.Code) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range codes {
		if i := slices.Index(p.pending, c); i >= 0 {
			p.pending = slices.Delete(p.pending, i, i+1)
		}
	}
}

// Flush empties the printer's buffer, waits until every print record up to
// the flush was delivered (or reported lost), and returns the codes handed
// over and never confirmed; they are no longer pending. If the flush call
// fails the error says so and nothing changes (pending stays as it was).
func (p *Printer) Flush(ctx context.Context) (printer.FlushResult, error) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	out, err := p.stream.Call(ctx, p.cfg.Object, p.cfg.FlushMethod)
	if err != nil {
		return printer.FlushResult{}, fmt.Errorf("printer %q: flush: %w", p.cfg.name(), err)
	}
	var res printer.FlushResult
	var count uint64
	if len(out) >= 1 {
		if rm, ok := out[0].([]string); ok {
			for _, c := range rm {
				res.Removed = append(res.Removed, tracecode.Code(c))
			}
		}
	}
	if len(out) >= 2 {
		switch v := out[1].(type) {
		case uint32:
			count = uint64(v)
		case uint64:
			count = v
		}
	}
	if count == 0 {
		// No count in the answer: read it.
		v, err := p.stream.Read(ctx, p.cfg.Stream.CountNode)
		if err == nil {
			if n, ok := v.(uint32); ok {
				count = uint64(n)
			}
		}
	}
	if err := p.waitProcessed(ctx, count); err != nil {
		return printer.FlushResult{}, fmt.Errorf("printer %q: flush done on the printer, but %w", p.cfg.name(), err)
	}
	p.mu.Lock()
	res.Unconfirmed = p.pending
	p.pending = nil
	p.mu.Unlock()
	return res, nil
}

func (p *Printer) waitProcessed(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		done, ch := p.processed >= seq, p.cond
		last := p.processed
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("print records up to %d not all received (at %d): %w", seq, last, ctx.Err())
		case <-ch:
		}
	}
}

// Status reads the status nodes the profile names.
func (p *Printer) Status(ctx context.Context) (printer.Status, error) {
	var st printer.Status
	read := func(node string, f func(v any)) error {
		if node == "" {
			return nil
		}
		v, err := p.stream.Read(ctx, node)
		if err != nil {
			return err
		}
		f(v)
		return nil
	}
	asInt := func(v any) int {
		switch n := v.(type) {
		case uint32:
			return int(n)
		case int32:
			return int(n)
		case uint16:
			return int(n)
		case int64:
			return int(n)
		case uint64:
			return int(n)
		}
		return 0
	}
	err := errors.Join(
		read(p.cfg.StateNode, func(v any) { st.State, _ = v.(string) }),
		read(p.cfg.InkLowNode, func(v any) { st.InkLow, _ = v.(bool) }),
		read(p.cfg.HeadFaultNode, func(v any) { st.HeadFault, _ = v.(bool) }),
		read(p.cfg.BufferLevelNode, func(v any) { st.BufferLevel = asInt(v) }),
		read(p.cfg.UnderrunsNode, func(v any) { st.Underruns = asInt(v) }),
	)
	st.BufferDepth = p.cfg.BufferDepth
	if err != nil {
		return st, fmt.Errorf("printer %q: status: %w", p.cfg.name(), err)
	}
	return st, nil
}

// Record is one decoded print record.
type Record struct {
	Seq  uint64
	Code string
	At   time.Time
}

// DecodeRecord decodes a JSON print record with the given field names
// (seq: a positive integer, code: a non-empty string). It never panics.
func DecodeRecord(raw, seqField, codeField string) (Record, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return Record{}, fmt.Errorf("print record is not a JSON object: %w", err)
	}
	var r Record
	sv, ok := m[seqField]
	if !ok {
		return r, fmt.Errorf("print record has no %q", seqField)
	}
	if err := json.Unmarshal(sv, &r.Seq); err != nil || r.Seq == 0 {
		return r, fmt.Errorf("print record %q: %s is not a positive integer", seqField, sv)
	}
	cv, ok := m[codeField]
	if !ok {
		return r, fmt.Errorf("print record %d has no %q", r.Seq, codeField)
	}
	if err := json.Unmarshal(cv, &r.Code); err != nil || r.Code == "" {
		return r, fmt.Errorf("print record %d %q: %s is not a non-empty string", r.Seq, codeField, cv)
	}
	if at, ok := m["at"]; ok {
		_ = json.Unmarshal(at, &r.At)
	}
	return r, nil
}
