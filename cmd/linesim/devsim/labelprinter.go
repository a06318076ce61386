package devsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
)

// LabelPrinterConfig configures the simulated ZPL label printer.
type LabelPrinterConfig struct {
	// Listen is host:port ("" = 127.0.0.1:0; a real printer uses 9100).
	Listen string `yaml:"listen"`
}

// Validate reports what is wrong with the config.
func (c LabelPrinterConfig) Validate() error {
	if err := checkListen(c.Listen); err != nil {
		return fmt.Errorf("devsim.label_printer.listen: %w", err)
	}
	return nil
}

// LabelPrinter is the simulated ZPL label printer: a raw TCP server
// (9100-style) that parses every ^XA…^XZ format it receives, keeps the
// printed labels for the labeller (NextLabel) and answers ~HS.
type LabelPrinter struct {
	cfg LabelPrinterConfig
	log *slog.Logger

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	queue    []sim.Label
	printed  []ParsedLabel
	errs     int
	paperOut bool
	paused   bool
	headUp   bool
	mute     bool
	closed   bool
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
}

// NewLabelPrinter builds the simulated label printer; Start serves it.
func NewLabelPrinter(cfg LabelPrinterConfig, log *slog.Logger) (*LabelPrinter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LabelPrinter{cfg: cfg, log: log, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}, nil
}

// Start listens and serves until ctx ends or Close.
func (l *LabelPrinter) Start(ctx context.Context) error {
	addr := l.cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("devsim label printer: listen %s: %w", addr, err)
	}
	l.mu.Lock()
	if l.closed || l.ln != nil {
		l.mu.Unlock()
		ln.Close()
		return errors.New("devsim label printer: already started or closed")
	}
	l.ln = ln
	l.mu.Unlock()
	l.wg.Add(1)
	go l.accept()
	go func() {
		// Until ctx ends or Close: a printer closed before its ctx ends
		// leaves no goroutine behind (the soak found one per batch).
		select {
		case <-ctx.Done():
			l.Close()
		case <-l.done:
		}
	}()
	return nil
}

// Addr is the listening host:port.
func (l *LabelPrinter) Addr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Close stops listening and drops connections. Safe twice.
func (l *LabelPrinter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	ln := l.ln
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	l.wg.Wait()
	return nil
}

// NextLabel returns the oldest printed label not yet applied.
func (l *LabelPrinter) NextLabel() (sim.Label, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		return sim.Label{}, false
	}
	lb := l.queue[0]
	l.queue = l.queue[1:]
	return lb, true
}

// Printed returns every label printed so far, in order.
func (l *LabelPrinter) Printed() []ParsedLabel {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ParsedLabel(nil), l.printed...)
}

// Errors counts formats that could not be parsed (not printed).
func (l *LabelPrinter) Errors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

// SetPaperOut, SetPaused and SetHeadUp inject status faults: the printer
// reports them in ~HS and prints nothing while any is on.
func (l *LabelPrinter) SetPaperOut(on bool) { l.mu.Lock(); l.paperOut = on; l.mu.Unlock() }

// SetPaused: see SetPaperOut.
func (l *LabelPrinter) SetPaused(on bool) { l.mu.Lock(); l.paused = on; l.mu.Unlock() }

// SetHeadUp: see SetPaperOut.
func (l *LabelPrinter) SetHeadUp(on bool) { l.mu.Lock(); l.headUp = on; l.mu.Unlock() }

// SetMute makes the printer swallow everything and answer nothing (a hung
// printer): drivers must give up by their deadline.
func (l *LabelPrinter) SetMute(on bool) { l.mu.Lock(); l.mute = on; l.mu.Unlock() }

func (l *LabelPrinter) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.serve(c)
	}
}

func (l *LabelPrinter) serve(c net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		c.Close()
	}()
	var buf []byte
	tmp := make([]byte, 8192)
	for {
		n, err := c.Read(tmp)
		if n > 0 {
			buf = append(buf, tmp[:n]...)
			var out []byte
			buf, out = l.process(buf)
			if len(out) > 0 {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(out); err != nil {
					return
				}
			}
			if len(buf) > 2*maxFormat {
				l.log.Warn("devsim label printer: format too large, dropping connection")
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// process consumes complete commands from buf and returns the rest and
// any answer to send.
func (l *LabelPrinter) process(buf []byte) ([]byte, []byte) {
	var out []byte
	for {
		buf = bytes.TrimLeft(buf, " \t\r\n")
		if len(buf) < 3 {
			return buf, out
		}
		switch {
		case bytes.HasPrefix(buf, []byte("~HS")):
			buf = buf[3:]
			if !l.isMute() {
				out = append(out, l.hostStatus()...)
			}
		case bytes.HasPrefix(buf, []byte("^XA")):
			end := bytes.Index(buf, []byte("^XZ"))
			if end < 0 {
				return buf, out
			}
			format := string(buf[:end+3])
			buf = buf[end+3:]
			l.print(format)
		default:
			// Skip to the next command prefix.
			k := bytes.IndexAny(buf[1:], "^~")
			if k < 0 {
				return buf[len(buf):], out
			}
			buf = buf[k+1:]
		}
	}
}

func (l *LabelPrinter) isMute() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mute
}

func (l *LabelPrinter) print(format string) {
	lbl, err := ParseFormat(format)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mute || l.paperOut || l.paused || l.headUp {
		return
	}
	if err != nil {
		l.errs++
		l.log.Warn("devsim label printer: bad format", "err", err)
		return
	}
	l.printed = append(l.printed, lbl)
	l.queue = append(l.queue, sim.Label{Code: lbl.Code(), Text: strings.Join(lbl.Texts, " | ")})
}

// hostStatus renders the three ~HS strings (STX … ETX CR LF each) of a
// Zebra printer: string 1 aaa,b,c,dddd,eee,f,g,h,iii,j,k,l; string 2
// mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www; string 3 xxxx,y.
func (l *LabelPrinter) hostStatus() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	s1 := fmt.Sprintf("\x02030,%d,%d,1245,000,0,0,0,000,0,0,0\x03\r\n", b(l.paperOut), b(l.paused))
	s2 := fmt.Sprintf("\x02001,0,%d,0,1,2,6,0,00000000,1,000\x03\r\n", b(l.headUp))
	s3 := "\x021234,0\x03\r\n"
	return []byte(s1 + s2 + s3)
}
