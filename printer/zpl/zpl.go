// Package zpl drives a label printer over raw TCP (port 9100 style) in ZPL:
// case and pallet labels with the code as GS1-128 (^BC with FNC1) or GS1
// DataMatrix (^BX quality 200 with FNC1) drawn by the printer itself,
// human-readable text, product, batch and expiry. Status comes from ~HS.
// Every exchange has a deadline: a printer that does not answer is an error,
// never a hang. It implements printer.Labeler. Only cmd/ wires it.
package zpl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/internal/latency"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/tracecode"
)

// Check says when the driver asks the printer for ~HS.
type Check string

const (
	// CheckAround (default): ~HS before a label (refuse if not ready) and
	// after it (the answer proves the printer read the whole format).
	CheckAround Check = "around"
	// CheckBefore: ~HS before each label only.
	CheckBefore Check = "before"
	// CheckNever: write and hope; only write errors are seen.
	CheckNever Check = "never"
)

// Config is one label printer.
type Config struct {
	// Name in messages (default "label_printer").
	Name string `yaml:"name"`
	// Address is host:port of the printer's raw port (usually 9100).
	Address string `yaml:"address"`
	// Symbology of the code: gs1-128 | gs1-datamatrix | code128 | datamatrix.
	Symbology Symbology `yaml:"symbology"`
	// SymbologyByLevel is for a printer that prints several levels'
	// labels (the rework station's; one labeller for every level) whose
	// codes follow different rules, e.g. nmpa20 boxes and SSCC pallets:
	// the symbology of level 2's labels, level 3's, … (by position, [0] =
	// level 2). A level not listed, and a label of no level, uses
	// Symbology.
	SymbologyByLevel []Symbology `yaml:"symbology_by_level"`
	// Check: around | before | never (default around).
	Check Check `yaml:"check"`
	// Timeout bounds each exchange when ctx has no earlier deadline (default 3s).
	Timeout time.Duration `yaml:"timeout"`
	// Latency is the printer's answer budget for ~HS (DefaultLatency):
	// when every answer has come later than Budget for at least For, the
	// printer is too slow for the line — its labels would land on later
	// groups — and PrintLabel fails (latency.ErrTooSlow) until an answer
	// comes within the budget again.
	Latency latency.Config `yaml:"latency"`
}

// DefaultLatency is the label printer's ~HS budget unless its config says
// otherwise: 300 ms, late for 1 s. A Zebra answers ~HS in tens of ms; at
// 1,200 units/min in groups of 10 a label is due every 500 ms, so a
// printer needing more than 300 ms per answer, for two answers and a
// second in a row, cannot keep its labels on their groups.
var DefaultLatency = latency.Config{Budget: 300 * time.Millisecond, For: time.Second}

// Validate reports what is wrong, naming the setting.
func (c Config) Validate() error {
	p := "label_printer." + c.name()
	var errs []error
	if c.Address == "" {
		errs = append(errs, fmt.Errorf("%s.address: must be set (host:9100)", p))
	} else if _, port, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("%s.address: %q is not host:port", p, c.Address))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("%s.address: port %q is not 1..65535", p, port))
	}
	if err := c.Symbology.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s.symbology: %w", p, err))
	}
	for i, sym := range c.SymbologyByLevel {
		if err := sym.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s.symbology_by_level[%d] (level %d): %w", p, i, i+2, err))
		}
	}
	switch c.Check {
	case "", CheckAround, CheckBefore, CheckNever:
	default:
		errs = append(errs, fmt.Errorf("%s.check: %q is not around, before or never", p, c.Check))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.timeout: %s is negative", p, c.Timeout))
	}
	errs = append(errs, c.Latency.Validate(p+".latency"))
	return errors.Join(errs...)
}

// SymbologyFor is the symbology of level l's labels.
func (c Config) SymbologyFor(l tracecode.Level) Symbology {
	if i := int(l) - 2; i >= 0 && i < len(c.SymbologyByLevel) {
		return c.SymbologyByLevel[i]
	}
	return c.Symbology
}

func (c Config) name() string {
	if c.Name == "" {
		return "label_printer"
	}
	return c.Name
}

// Printer is a ZPL label printer over TCP.
type Printer struct {
	cfg Config
	log *slog.Logger
	lat *latency.Watch // ~HS answer times

	mu     sync.Mutex // one exchange at a time
	conn   net.Conn
	closed bool
}

var _ printer.Labeler = (*Printer)(nil)

// New validates the config; it does not touch the network.
func New(cfg Config, log *slog.Logger) (*Printer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Check == "" {
		cfg.Check = CheckAround
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Printer{cfg: cfg, log: log, lat: latency.New(cfg.Latency, DefaultLatency)}, nil
}

// Connect dials the printer (bounded by ctx and Timeout). Optional: every
// call dials if there is no connection.
func (p *Printer) Connect(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.connLocked(ctx)
	return err
}

// Close drops the connection. Safe twice.
func (p *Printer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.conn != nil {
		err := p.conn.Close()
		p.conn = nil
		return err
	}
	return nil
}

func (p *Printer) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(p.cfg.Timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

func (p *Printer) connLocked(ctx context.Context) (net.Conn, error) {
	if p.closed {
		return nil, fmt.Errorf("%s: %w", p.cfg.name(), printer.ErrClosed)
	}
	if p.conn != nil {
		return p.conn, nil
	}
	d := net.Dialer{Deadline: p.deadline(ctx)}
	c, err := d.DialContext(ctx, "tcp", p.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%s: connect %s: %w: %w", p.cfg.name(), p.cfg.Address, printer.ErrNotAnswered, err)
	}
	p.conn = c
	return c, nil
}

// dropLocked forgets a connection after an error (the next call redials).
func (p *Printer) dropLocked() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// PrintLabel renders l and sends it. With check around/before it first asks
// ~HS and refuses (printer.ErrNotReady) a printer that is paused, out of
// paper or ribbon, or has its head up; with check around it asks again after
// the format so that an answer proves the printer took it. Every exchange
// ends by the deadline (ctx or Timeout) with printer.ErrNotAnswered.
func (p *Printer) PrintLabel(ctx context.Context, l printer.Label) error {
	format, err := Render(l, p.cfg.SymbologyFor(l.Level))
	if err != nil {
		return fmt.Errorf("%s: label %s: %w", p.cfg.name(), l.Code, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.Check != CheckNever {
		st, err := p.statusLocked(ctx)
		if err != nil {
			return fmt.Errorf("label %s: %w", l.Code, err)
		}
		if err := st.Ready(); err != nil {
			return fmt.Errorf("%s: label %s: %w", p.cfg.name(), l.Code, err)
		}
	}
	c, err := p.connLocked(ctx)
	if err != nil {
		return err
	}
	c.SetWriteDeadline(p.deadline(ctx))
	if _, err := c.Write(format); err != nil {
		p.dropLocked()
		return fmt.Errorf("%s: label %s: write: %w: %w", p.cfg.name(), l.Code, printer.ErrNotAnswered, err)
	}
	if p.cfg.Check == CheckAround {
		if _, err := p.statusLocked(ctx); err != nil {
			return fmt.Errorf("label %s sent, but %w", l.Code, err)
		}
	}
	return nil
}

// Status asks ~HS and parses the answer.
func (p *Printer) Status(ctx context.Context) (HostStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statusLocked(ctx)
}

func (p *Printer) statusLocked(ctx context.Context) (HostStatus, error) {
	c, err := p.connLocked(ctx)
	if err != nil {
		return HostStatus{}, err
	}
	dl := p.deadline(ctx)
	c.SetDeadline(dl)
	start := time.Now()
	if _, err := c.Write([]byte("~HS")); err != nil {
		p.dropLocked()
		return HostStatus{}, fmt.Errorf("%s: ~HS: %w: %w", p.cfg.name(), printer.ErrNotAnswered, err)
	}
	// Stop waiting early if ctx is cancelled before the deadline.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	var buf []byte
	tmp := make([]byte, 512)
	for bytes.Count(buf, []byte{etx}) < 3 {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			p.dropLocked()
			return HostStatus{}, fmt.Errorf("%s: ~HS: no complete answer by the deadline (%d bytes): %w: %w", p.cfg.name(), len(buf), printer.ErrNotAnswered, err)
		}
		if len(buf) > 4096 {
			p.dropLocked()
			return HostStatus{}, fmt.Errorf("%s: ~HS: answer longer than 4096 bytes", p.cfg.name())
		}
	}
	// Wait for the trailing CR LF of string 3 only if it is already there.
	st, err := ParseHostStatus(buf)
	if err != nil {
		p.dropLocked()
		return HostStatus{}, fmt.Errorf("%s: %w", p.cfg.name(), err)
	}
	if err := p.lat.Observe(start, time.Now()); err != nil {
		return HostStatus{}, fmt.Errorf("%s: ~HS: %w", p.cfg.name(), err)
	}
	return st, nil
}

const (
	stx = 0x02
	etx = 0x03
)

// HostStatus is a Zebra ~HS answer (the fields the line acts on).
type HostStatus struct {
	PaperOut        bool
	Paused          bool
	LabelLength     int // dots
	FormatsInBuffer int
	BufferFull      bool
	PartialFormat   bool
	CorruptRAM      bool
	UnderTemp       bool
	OverTemp        bool
	HeadUp          bool
	RibbonOut       bool
	LabelWaiting    bool
	LabelsRemaining int
}

// Ready returns printer.ErrNotReady, wrapped with the reasons, when the
// printer cannot print.
func (h HostStatus) Ready() error {
	var why []string
	add := func(c bool, s string) {
		if c {
			why = append(why, s)
		}
	}
	add(h.PaperOut, "paper out")
	add(h.Paused, "paused")
	add(h.HeadUp, "head up")
	add(h.RibbonOut, "ribbon out")
	add(h.BufferFull, "receive buffer full")
	add(h.CorruptRAM, "corrupt RAM")
	add(h.UnderTemp, "under temperature")
	add(h.OverTemp, "over temperature")
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", printer.ErrNotReady, strings.Join(why, ", "))
}

// ParseHostStatus parses the three ~HS strings (each STX … ETX, CR LF
// between them optional): string 1 aaa,b,c,dddd,eee,f,g,h,iii,j,k,l
// (12 fields), string 2 mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www (11), string 3
// xxxx,y (2). It never panics.
func ParseHostStatus(b []byte) (HostStatus, error) {
	var h HostStatus
	var strs [][]string
	rest := b
	for len(strs) < 3 {
		i := bytes.IndexByte(rest, stx)
		if i < 0 {
			return h, fmt.Errorf("~HS answer: %d of 3 strings (want STX … ETX)", len(strs))
		}
		if junk := bytes.TrimSpace(rest[:i]); len(junk) > 0 {
			return h, fmt.Errorf("~HS answer: unexpected %q before string %d", junk, len(strs)+1)
		}
		rest = rest[i+1:]
		j := bytes.IndexByte(rest, etx)
		if j < 0 {
			return h, fmt.Errorf("~HS answer: string %d has no ETX", len(strs)+1)
		}
		strs = append(strs, strings.Split(string(rest[:j]), ","))
		rest = rest[j+1:]
	}
	if want := []int{12, 11, 2}; len(strs[0]) != want[0] || len(strs[1]) != want[1] || len(strs[2]) != want[2] {
		return h, fmt.Errorf("~HS answer: %d/%d/%d fields, want 12/11/2", len(strs[0]), len(strs[1]), len(strs[2]))
	}
	var err error
	flag := func(s string, name string) bool {
		if err != nil {
			return false
		}
		switch strings.TrimSpace(s) {
		case "0":
			return false
		case "1":
			return true
		}
		err = fmt.Errorf("~HS answer: %s flag %q is not 0 or 1", name, s)
		return false
	}
	num := func(s string, name string) int {
		if err != nil {
			return 0
		}
		n, e := strconv.Atoi(strings.TrimSpace(s))
		if e != nil || n < 0 {
			err = fmt.Errorf("~HS answer: %s %q is not a number", name, s)
			return 0
		}
		return n
	}
	s1, s2 := strs[0], strs[1]
	h.PaperOut = flag(s1[1], "paper out")
	h.Paused = flag(s1[2], "pause")
	h.LabelLength = num(s1[3], "label length")
	h.FormatsInBuffer = num(s1[4], "formats in buffer")
	h.BufferFull = flag(s1[5], "buffer full")
	h.PartialFormat = flag(s1[7], "partial format")
	h.CorruptRAM = flag(s1[9], "corrupt RAM")
	h.UnderTemp = flag(s1[10], "under temperature")
	h.OverTemp = flag(s1[11], "over temperature")
	h.HeadUp = flag(s2[2], "head up")
	h.RibbonOut = flag(s2[3], "ribbon out")
	h.LabelWaiting = flag(s2[7], "label waiting")
	h.LabelsRemaining = num(s2[8], "labels remaining")
	if err != nil {
		return HostStatus{}, err
	}
	return h, nil
}
