package netsim

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func startProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := New(echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := p.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if line != msg+"\n" {
		t.Fatalf("got %q, want %q", line, msg)
	}
}

func TestNewRejectsBadTarget(t *testing.T) {
	for _, target := range []string{"", "nocolon", "1.2.3.4"} {
		if _, err := New(target, nil); err == nil {
			t.Errorf("New(%q) accepted", target)
		}
	}
}

func TestForwardCutRestore(t *testing.T) {
	p := startProxy(t)
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "hello")

	p.Cut()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("read after Cut succeeded")
	}
	// New connections are dropped while cut.
	c2, r2 := dial(t, p.Addr())
	io.WriteString(c2, "x\n")
	if _, err := r2.ReadString('\n'); err == nil {
		t.Fatal("connection accepted while cut")
	}

	p.Restore()
	c3, r3 := dial(t, p.Addr())
	roundTrip(t, c3, r3, "back")
	if p.Accepted() != 3 {
		t.Fatalf("Accepted = %d, want 3", p.Accepted())
	}
}

func TestStallHoldsThenDelivers(t *testing.T) {
	p := startProxy(t)
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "before")
	p.Stall()
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatal(err)
	}
	p.Restore()
	line, err := r.ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("after restore got %q, %v", line, err)
	}
}

func TestDelayKeepsOrder(t *testing.T) {
	p := startProxy(t)
	p.SetDelay(2 * time.Millisecond)
	c, r := dial(t, p.Addr())
	for _, m := range []string{"a", "b", "c", "d"} {
		roundTrip(t, c, r, m)
	}
	p.SetDelay(-1) // clamps to 0
	roundTrip(t, c, r, "e")
}

func TestCloseTwiceAndCloseWhileStalled(t *testing.T) {
	p := startProxy(t)
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "x")
	p.Stall()
	io.WriteString(c, "y\n")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()
	p, _ := New(ln.Addr().String(), nil)
	p.Start(context.Background(), "")
	defer p.Close()
	c, _ := net.Dial("tcp", p.Addr())
	defer c.Close()
	buf := make([]byte, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write([]byte{1})
		io.ReadFull(c, buf)
	}
}

// Garble: the device's answers arrive inverted byte by byte, the client's
// requests reach it unchanged (the echo server answers what it got, so a
// garbled request would come back as the original); Restore heals.
func TestGarbleCorruptsAnswersOnly(t *testing.T) {
	p := startProxy(t)
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "clean")
	p.Garble()
	if _, err := io.WriteString(c, "abc\n"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	want := []byte{^byte('a'), ^byte('b'), ^byte('c'), ^byte('\n')}
	if string(got) != string(want) {
		t.Fatalf("garbled answer %q, want %q", got, want)
	}
	p.Restore()
	roundTrip(t, c, r, "healed")
}
