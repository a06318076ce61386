// Package netsim is a TCP proxy for the line simulator that sits in front of
// any device port and simulates a bad network: Cut drops every connection and
// refuses new ones (a pulled cable or a device power-cycle as the client sees
// it: EOF / connection reset), Stall keeps connections open but lets no byte
// through (a half-dead link: only watchdogs notice), SetDelay makes every
// chunk arrive late (slow answers), Restore heals.
//
// The gopcua server's Close takes ~10 s and leaves clients "connected", so
// device disconnects in tests and in linesim go through a Proxy instead.
// Only cmd/linesim and tests import netsim.
package netsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards TCP connections from Addr to a target address.
type Proxy struct {
	target string
	log    *slog.Logger

	ln      net.Listener
	delay   atomic.Int64 // nanoseconds
	garbled atomic.Bool  // the target's bytes reach the client corrupted

	mu      sync.Mutex
	cut     bool
	stalled bool
	stallCh chan struct{} // closed when not stalled
	conns   map[*link]struct{}
	closed  bool
	wg      sync.WaitGroup

	accepted atomic.Int64
}

// New makes a proxy to target ("host:port"). It does not listen until Start.
func New(target string, log *slog.Logger) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("netsim: target %q: %w", target, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch := make(chan struct{})
	close(ch)
	return &Proxy{target: target, log: log, conns: map[*link]struct{}{}, stallCh: ch}, nil
}

// Start listens on listen ("" = 127.0.0.1:0) and forwards until ctx ends or
// Close is called.
func (p *Proxy) Start(ctx context.Context, listen string) error {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("netsim: listen %s: %w", listen, err)
	}
	p.mu.Lock()
	if p.closed || p.ln != nil {
		p.mu.Unlock()
		ln.Close()
		return errors.New("netsim: proxy already started or closed")
	}
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go p.acceptLoop()
	go func() {
		<-ctx.Done()
		p.Close()
	}()
	return nil
}

// Addr is the proxy's listening address (host:port), valid after Start.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Accepted counts the client connections accepted so far (including those
// dropped at once while cut) — tests use it to see a client reconnecting.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Cut closes every open connection and closes new ones at once until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	links := p.snapshotLocked()
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	p.log.Info("netsim: cut", "target", p.target, "dropped", len(links))
}

// Stall stops all traffic in both directions without closing anything,
// until Restore.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled = true
		p.stallCh = make(chan struct{})
	}
}

// Garble corrupts every byte the target sends to its clients (each is
// inverted) until Restore; what clients send goes through unchanged. The
// connection stays open: the client sees a device answering garbage.
func (p *Proxy) Garble() { p.garbled.Store(true) }

// Restore ends a Cut, a Stall or a Garble. Clients must reconnect after a
// Cut (and usually after garbage: they drop the link themselves).
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.garbled.Store(false)
	if p.stalled {
		p.stalled = false
		close(p.stallCh)
	}
}

// SetDelay makes every chunk of data, in both directions, arrive d later
// than it was sent (0 = no delay). Order is kept.
func (p *Proxy) SetDelay(d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.delay.Store(int64(d))
}

// Close stops listening and drops every connection. Safe to call twice.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ln := p.ln
	links := p.snapshotLocked()
	if p.stalled {
		p.stalled = false
		close(p.stallCh)
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	return nil
}

func (p *Proxy) snapshotLocked() []*link {
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	return links
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		if p.cut || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

type link struct {
	a, b net.Conn
	once sync.Once
	done chan struct{}
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.a.Close()
		if l.b != nil {
			l.b.Close()
		}
	})
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: 5 * time.Second}
	upstream, err := d.Dial("tcp", p.target)
	if err != nil {
		p.log.Debug("netsim: dial target failed", "target", p.target, "err", err)
		client.Close()
		return
	}
	l := &link{a: client, b: upstream, done: make(chan struct{})}
	p.mu.Lock()
	if p.cut || p.closed {
		p.mu.Unlock()
		l.close()
		return
	}
	p.conns[l] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(upstream, client, l, false) }()
	go func() { defer wg.Done(); p.pipe(client, upstream, l, true) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src → dst chunk by chunk, holding each chunk until its due
// time (the delay) and while the proxy is stalled; fromTarget: src is the
// device, whose bytes Garble corrupts.
func (p *Proxy) pipe(dst, src net.Conn, l *link, fromTarget bool) {
	defer l.close()
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if !p.hold(c.due, l) {
				return
			}
			if fromTarget && p.garbled.Load() {
				for i := range c.data {
					c.data[i] = ^c.data[i]
				}
			}
			if _, err := dst.Write(c.data); err != nil {
				l.close()
				return
			}
		}
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			select {
			case q <- chunk{data: data, due: time.Now().Add(time.Duration(p.delay.Load()))}:
			case <-done:
				close(q)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Debug("netsim: read", "err", err)
			}
			close(q)
			<-done
			return
		}
	}
}

// hold waits until due and until the proxy is not stalled; false if the
// link closed meanwhile.
func (p *Proxy) hold(due time.Time, l *link) bool {
	for {
		p.mu.Lock()
		stall := p.stallCh
		p.mu.Unlock()
		select {
		case <-l.done:
			return false
		case <-stall:
		}
		wait := time.Until(due)
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return false
		}
	}
}
