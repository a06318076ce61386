package devsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/cmd/linesim/uasim"
)

// Node names of the simulated coding printer (namespace index 1, string ids:
// "ns=1;s=Printer.Enqueue", …). See docs/devices-printer-camera.md.
const (
	PrinterObject      = "Printer"
	PrinterEnqueue     = "Printer.Enqueue"     // String[] W: append codes to the buffer, in print order
	PrinterNextCode    = "Printer.NextCode"    // String W: append one code
	PrinterAddCodes    = "Printer.AddCodes"    // method (String[] codes) → (UInt32 level)
	PrinterFlush       = "Printer.Flush"       // method () → (String[] removed, UInt32 printCount)
	PrinterBuffer      = "Printer.Buffer"      // String[] R: codes in the buffer, next first
	PrinterBufferLevel = "Printer.BufferLevel" // UInt32 R
	PrinterBufferDepth = "Printer.BufferDepth" // UInt32 R
	PrinterPrintCount  = "Printer.PrintCount"  // UInt32 R: seq of the last print record
	PrinterLastRecord  = "Printer.LastRecord"  // String R: JSON PrintRecord
	PrinterRecords     = "Printer.Records"     // String[] R: last N JSON PrintRecords, oldest first
	PrinterGetRecord   = "Printer.GetRecord"   // method (UInt32 seq) → (String JSON PrintRecord); BadNotFound when gone
	PrinterState       = "Printer.State"       // String R: running | fault
	PrinterInkLow      = "Printer.InkLow"      // Boolean R
	PrinterHeadFault   = "Printer.HeadFault"   // Boolean R
	PrinterUnderruns   = "Printer.Underruns"   // UInt32 R: units that passed with an empty buffer
)

// PrinterConfig configures the simulated coding printer.
type PrinterConfig struct {
	// Listen is host:port ("" = 127.0.0.1:0).
	Listen string `yaml:"listen"`
	// Depth is the buffer depth in codes (default 64).
	Depth int `yaml:"depth"`
	// Ring is how many print records the Records ring keeps (default 256).
	Ring int `yaml:"ring"`
}

// Validate reports what is wrong with the config.
func (c PrinterConfig) Validate() error {
	var errs []error
	if c.Depth < 0 || c.Depth > 100000 {
		errs = append(errs, fmt.Errorf("devsim.printer.depth: %d is outside 0..100000", c.Depth))
	}
	if c.Ring < 0 || c.Ring > 100000 {
		errs = append(errs, fmt.Errorf("devsim.printer.ring: %d is outside 0..100000", c.Ring))
	}
	if err := checkListen(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("devsim.printer.listen: %w", err))
	}
	return errors.Join(errs...)
}

// Printer is the simulated coding printer: an OPC UA server with a FIFO code
// buffer; the conveyor calls PrintOnto for every unit passing the head.
type Printer struct {
	cfg PrinterConfig
	log *slog.Logger
	srv *uasim.Server

	mu        sync.Mutex
	buf       []string
	prev      string
	underruns uint32
	inkLow    bool
	headFault bool
	recs      recordLog
	vBuffer   *uasim.Variable
	vLevel    *uasim.Variable
	vState    *uasim.Variable
	vInk      *uasim.Variable
	vHead     *uasim.Variable
	vUnder    *uasim.Variable
}

// NewPrinter builds the simulated printer's address space; Start serves it.
func NewPrinter(cfg PrinterConfig, log *slog.Logger) (*Printer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Depth == 0 {
		cfg.Depth = 64
	}
	if cfg.Ring == 0 {
		cfg.Ring = 256
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, port := splitListen(cfg.Listen)
	srv, err := uasim.New(uasim.Config{Name: "linesim coding printer", NamespaceURI: "urn:tracline:linesim:printer", Host: host, Port: port}, log)
	if err != nil {
		return nil, err
	}
	p := &Printer{cfg: cfg, log: log, srv: srv}
	p.recs.size = cfg.Ring
	if err := p.build(); err != nil {
		return nil, fmt.Errorf("devsim printer: %w", err)
	}
	return p, nil
}

func (p *Printer) build() error {
	s := p.srv
	obj, err := s.AddObject("", PrinterObject)
	if err != nil {
		return err
	}
	add := func(name string, v any, w uasim.WriteFunc) *uasim.Variable {
		if err != nil {
			return nil
		}
		var vv *uasim.Variable
		vv, err = s.AddVariable(obj, name, v, w)
		return vv
	}
	add(PrinterEnqueue, []string{}, p.writeEnqueue)
	add(PrinterNextCode, "", func(v any) error {
		c, ok := v.(string)
		if !ok {
			return typeErr(PrinterNextCode, "String", v)
		}
		return p.enqueue([]string{c})
	})
	p.vBuffer = add(PrinterBuffer, []string{}, nil)
	p.vLevel = add(PrinterBufferLevel, uint32(0), nil)
	add(PrinterBufferDepth, uint32(p.cfg.Depth), nil)
	p.recs.count = add(PrinterPrintCount, uint32(0), nil)
	p.recs.last = add(PrinterLastRecord, "", nil)
	p.recs.rings = add(PrinterRecords, []string{}, nil)
	p.vState = add(PrinterState, "running", nil)
	p.vInk = add(PrinterInkLow, false, nil)
	p.vHead = add(PrinterHeadFault, false, nil)
	p.vUnder = add(PrinterUnderruns, uint32(0), nil)
	if err != nil {
		return err
	}
	if _, err := s.AddMethod(obj, PrinterAddCodes, func(args []any) ([]any, error) {
		if len(args) != 1 {
			return nil, &uasim.StatusError{Code: 0x80AB0000, Msg: "AddCodes takes one String[] argument"}
		}
		codes, ok := args[0].([]string)
		if !ok {
			if c, ok1 := args[0].(string); ok1 {
				codes = []string{c}
			} else {
				return nil, &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("AddCodes takes String[], not %T", args[0])}
			}
		}
		if err := p.enqueue(codes); err != nil {
			return nil, err
		}
		return []any{uint32(p.Level())}, nil
	}); err != nil {
		return err
	}
	if _, err := s.AddMethod(obj, PrinterGetRecord, func(args []any) ([]any, error) {
		if len(args) != 1 {
			return nil, &uasim.StatusError{Code: 0x80AB0000, Msg: "GetRecord takes one UInt32"}
		}
		seq, ok := args[0].(uint32)
		if !ok {
			return nil, typeErr(PrinterGetRecord, "UInt32", args[0])
		}
		p.mu.Lock()
		raw := p.recs.get(uint64(seq))
		p.mu.Unlock()
		if raw == "" {
			return nil, &uasim.StatusError{Code: 0x803E0000, Msg: fmt.Sprintf("record %d is gone", seq)} // BadNotFound
		}
		return []any{raw}, nil
	}); err != nil {
		return err
	}
	_, err = s.AddMethod(obj, PrinterFlush, func(args []any) ([]any, error) {
		removed, count := p.Flush()
		return []any{removed, uint32(count)}, nil
	})
	return err
}

func typeErr(node, want string, v any) error {
	return &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("%s takes %s, not %T", node, want, v)} // BadTypeMismatch
}

func (p *Printer) writeEnqueue(v any) error {
	codes, ok := v.([]string)
	if !ok {
		return typeErr(PrinterEnqueue, "String[]", v)
	}
	return p.enqueue(codes)
}

// enqueue appends codes atomically: all or nothing.
func (p *Printer) enqueue(codes []string) error {
	for i, c := range codes {
		if strings.TrimSpace(c) == "" {
			return &uasim.StatusError{Code: 0x80AB0000, Msg: fmt.Sprintf("code %d is empty", i)} // BadInvalidArgument
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf)+len(codes) > p.cfg.Depth {
		return &uasim.StatusError{Code: 0x803C0000, Msg: fmt.Sprintf("buffer full: %d + %d > depth %d", len(p.buf), len(codes), p.cfg.Depth)} // BadOutOfRange
	}
	p.buf = append(p.buf, codes...)
	p.publishBufferLocked()
	return nil
}

func (p *Printer) publishBufferLocked() {
	p.vBuffer.Set(append([]string{}, p.buf...))
	p.vLevel.Set(uint32(len(p.buf)))
}

// Start serves OPC UA until ctx ends or Close.
func (p *Printer) Start(ctx context.Context) error { return p.srv.Start(ctx) }

// Addr is the OPC UA server's host:port.
func (p *Printer) Addr() string { return p.srv.Addr() }

// Endpoint is the opc.tcp URL.
func (p *Printer) Endpoint() string { return p.srv.Endpoint() }

// Close stops the server.
func (p *Printer) Close() error { return p.srv.Close() }

// Level is the number of codes in the buffer.
func (p *Printer) Level() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.buf)
}

// Buffer returns a copy of the buffer, next code first.
func (p *Printer) Buffer() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.buf...)
}

// Flush empties the buffer and returns what was in it and the print count
// at that moment.
func (p *Printer) Flush() ([]string, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	removed := p.buf
	if removed == nil {
		removed = []string{}
	}
	p.buf = nil
	p.publishBufferLocked()
	return removed, p.recs.seq
}

// SetInkLow and SetHeadFault inject status faults. A head fault stops
// printing: units pass unprinted (PrintOnto returns "" and publishes nothing).
func (p *Printer) SetInkLow(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inkLow = on
	p.vInk.Set(on)
}

// SetHeadFault: see SetInkLow.
func (p *Printer) SetHeadFault(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.headFault = on
	p.vHead.Set(on)
	if on {
		p.vState.Set("fault")
	} else {
		p.vState.Set("running")
	}
}

// PrintOnto is called by the conveyor when a unit passes the head. It takes
// the next code from the buffer and publishes a print record; it returns
// what physically landed on the unit ("" = nothing):
//   - sim.PrintOK: the next code, printed and reported;
//   - sim.PrintSkip: the next code is consumed and reported printed, but
//     nothing lands on the unit;
//   - sim.PrintDuplicate: the previous code is printed again and reported,
//     the buffer is not consumed (a label-roll change gone wrong).
//
// With an empty buffer (underrun) or a head fault nothing is printed or
// reported; Underruns counts empty-buffer units.
func (p *Printer) PrintOnto(f sim.PrintFault) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.headFault {
		return ""
	}
	var code string
	switch f {
	case sim.PrintDuplicate:
		if p.prev != "" {
			code = p.prev
			break
		}
		fallthrough
	default:
		if len(p.buf) == 0 {
			p.underruns++
			p.vUnder.Set(p.underruns)
			return ""
		}
		code = p.buf[0]
		p.buf = p.buf[1:]
		p.publishBufferLocked()
	}
	p.prev = code
	seq := p.recs.seq + 1
	if err := p.recs.publish(seq, PrintRecord{Seq: seq, Code: code, At: time.Now().UTC()}); err != nil {
		p.log.Error("devsim printer: publish print record", "err", err)
	}
	if f == sim.PrintSkip {
		return ""
	}
	return code
}

// PrintCount is the seq of the last print record.
func (p *Printer) PrintCount() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recs.seq
}
