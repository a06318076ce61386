package uarecord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/internal/uasec"
	"github.com/tracline/tracline/internal/uasec/nodeopcua"
	"github.com/tracline/tracline/internal/uasec/uasectest"
)

// The tests in this file run against node-opcua (an independent server
// with working Basic256Sha256 Sign and SignAndEncrypt endpoints).

func decodeJSONSeq(raw string) (uint64, error) {
	var r struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// printerStream is the stream config for node-opcua's printer.
func printerStream(endpoint string, sec Security, trust uasec.TrustConfig) Config {
	return Config{
		Endpoint:           endpoint,
		Security:           sec,
		Trust:              trust,
		RecordNode:         "ns=1;s=Printer.LastRecord",
		CountNode:          "ns=1;s=Printer.PrintCount",
		RingNode:           "ns=1;s=Printer.Records",
		PublishingInterval: 10 * time.Millisecond,
		Watchdog:           200 * time.Millisecond,
		ReconnectMax:       200 * time.Millisecond,
	}
}

// logRecorder is a slog handler that keeps every record as one line and
// lets a test wait for a line.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func newLog() (*slog.Logger, *logRecorder) {
	r := &logRecorder{added: make(chan struct{})}
	return slog.New(r), r
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	close(r.added)
	r.added = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// wait returns the first line containing every one of want, or fails the
// test when ctx ends first.
func (r *logRecorder) wait(t *testing.T, ctx context.Context, want ...string) string {
	t.Helper()
	for {
		r.mu.Lock()
		for _, l := range r.lines {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l, w)
			}
			if ok {
				r.mu.Unlock()
				return l
			}
		}
		ch, all := r.added, strings.Join(r.lines, "\n")
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no log line with %q; log:\n%s", want, all)
		}
	}
}

func nextEvent(t *testing.T, ctx context.Context, st *Stream, kinds ...Kind) Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-st.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if len(kinds) == 0 {
				return ev
			}
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-ctx.Done():
			t.Fatalf("no %v event before the deadline", kinds)
		}
	}
}

// TestSecureEndToEnd: Basic256Sha256 Sign and SignAndEncrypt against
// node-opcua with the client key as openssl writes it (PKCS#8 PEM in a .key
// file) and the server's certificate in the trust list: records arrive,
// writes and method calls work, the granted publishing interval is used
// and reported, and a request with an expired context is not sent (the
// connection survives it). With another certificate trusted, the same
// server is refused.
func TestSecureEndToEnd(t *testing.T) {
	srv := nodeopcua.Start(t)
	client := uasectest.New(t, "tracline-client")
	for _, mode := range []string{"Sign", "SignAndEncrypt"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			log, rec := newLog()
			cfg := printerStream(srv.Endpoint,
				Security{Policy: "Basic256Sha256", Mode: mode, CertFile: client.CertFile, KeyFile: client.KeyFile},
				uasec.TrustConfig{Trusted: []string{srv.Cert.CertFile}})
			st, err := New(cfg, "printer", decodeJSONSeq, log)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Connect(ctx); err != nil {
				t.Fatalf("connect: %v\nserver output:\n%s", err, srv.Output())
			}
			// node-opcua grants 50 ms at least; the stream says so and uses it.
			if got := st.PublishingInterval(); got != 50*time.Millisecond {
				t.Errorf("PublishingInterval = %s, want the 50ms node-opcua grants", got)
			}
			rec.wait(t, ctx, "WARN", "granted another publishing interval", "asked=10ms", "granted=50ms")
			start := st.LastSeq()
			codes := []string{mode + "-1", mode + "-2", mode + "-3"}
			if err := st.Write(ctx, "ns=1;s=Printer.Enqueue", codes); err != nil {
				t.Fatal(err)
			}
			for i, want := range codes {
				ev := nextEvent(t, ctx, st, KindRecord, KindGap, KindDown)
				if ev.Kind != KindRecord || ev.Seq != start+uint64(i)+1 || !strings.Contains(ev.Raw, want) {
					t.Fatalf("event %d = %+v, want record of %s", i, ev, want)
				}
			}
			out, err := st.Call(ctx, "ns=1;s=Printer", "ns=1;s=Printer.Flush")
			if err != nil || len(out) != 2 {
				t.Fatalf("flush: %v %v", out, err)
			}
			// An expired context: nothing is sent, and the secure channel
			// (whose message numbers node-opcua checks) is still good.
			dead, deadCancel := context.WithCancel(ctx)
			deadCancel()
			if _, err := st.Read(dead, "ns=1;s=Printer.State"); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "not sent") {
				t.Fatalf("read with an expired context: %v", err)
			}
			if err := st.Write(dead, "ns=1;s=Printer.Enqueue", []string{"never"}); !errors.Is(err, context.Canceled) {
				t.Fatalf("write with an expired context: %v", err)
			}
			for i := 0; i < 3; i++ {
				v, err := st.Read(ctx, "ns=1;s=Printer.State")
				if err != nil || v != "running" {
					t.Fatalf("read after an expired request: %v %v", v, err)
				}
			}
			if st.LastSeq() != start+3 {
				t.Fatalf("last seq %d, want %d (a code written with an expired context was printed?)", st.LastSeq(), start+3)
			}
		})
	}
	t.Run("unknown server refused", func(t *testing.T) { refusesUnknownServer(t, srv) })
}

// refusesUnknownServer: a server whose certificate is not in the trust
// list is refused before any session, naming its certificate and what to
// do; the client never falls back to None.
func refusesUnknownServer(t *testing.T, srv *nodeopcua.Server) {
	client := uasectest.New(t, "client")
	other := uasectest.New(t, "some-other-server")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, mode := range []string{"Sign", "SignAndEncrypt"} {
		cfg := printerStream(srv.Endpoint,
			Security{Policy: "Basic256Sha256", Mode: mode, CertFile: client.CertFile, KeyFile: client.KeyFile},
			uasec.TrustConfig{Trusted: []string{other.CertFile}})
		st, err := New(cfg, "printer", decodeJSONSeq, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = st.Connect(ctx)
		st.Close()
		if !errors.Is(err, uasec.ErrUntrusted) {
			t.Fatalf("%s: connect = %v, want a refusal", mode, err)
		}
		for _, want := range []string{srv.Endpoint, `subject "CN=Tracline node-opcua test server`, uasec.Thumbprint(srv.CertDER), "add the file to trust.trusted"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: refusal %q does not say %q", mode, err, want)
			}
		}
	}
}

// TestSecurePinning: with first-use pinning the first server is accepted
// and pinned; when the server comes back on the same endpoint with another
// certificate (a restart that made a new self-signed one, or an impostor),
// the running stream's reconnects are refused and logged, and a new
// connection is refused naming both thumbprints.
func TestSecurePinning(t *testing.T) {
	srv := nodeopcua.Start(t)
	client := uasectest.New(t, "client")
	pins := filepath.Join(t.TempDir(), "pins.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	trust := uasec.TrustConfig{Pinning: uasec.PinningFirstUse, PinFile: pins}
	sec := Security{Policy: "Basic256Sha256", Mode: "SignAndEncrypt", CertFile: client.CertFile, KeyFile: client.KeyFile}
	log, rec := newLog()
	st, err := New(printerStream(srv.Endpoint, sec, trust), "printer", decodeJSONSeq, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Connect(ctx); err != nil {
		t.Fatalf("first use: %v", err)
	}
	b, err := os.ReadFile(pins)
	if err != nil || !strings.Contains(string(b), srv.Endpoint+" "+uasec.Thumbprint(srv.CertDER)) {
		t.Fatalf("pin file after first use: %q, %v", b, err)
	}

	// The server restarts on the same port with a new certificate.
	port := srv.Port()
	srv.Stop()
	nextEvent(t, ctx, st, KindDown)
	srv2 := nodeopcua.StartWith(t, nodeopcua.Options{Port: port})
	if srv2.Endpoint != srv.Endpoint {
		t.Fatalf("restarted on %s, not %s", srv2.Endpoint, srv.Endpoint)
	}
	line := rec.wait(t, ctx, "WARN", "opc ua reconnect refused", "changed since it was pinned")
	if !strings.Contains(line, uasec.Thumbprint(srv2.CertDER)) {
		t.Errorf("warning %q does not name the new certificate", line)
	}
	st2, err := New(printerStream(srv.Endpoint, sec, trust), "printer", decodeJSONSeq, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	err = st2.Connect(ctx)
	if !errors.Is(err, uasec.ErrUntrusted) {
		t.Fatalf("connect after the certificate changed = %v, want a refusal", err)
	}
	for _, want := range []string{uasec.Thumbprint(srv.CertDER), uasec.Thumbprint(srv2.CertDER), pins} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	// Trusting the new certificate explicitly lets the client in again.
	trust.Trusted = []string{srv2.Cert.CertFile}
	st3, err := New(printerStream(srv.Endpoint, sec, trust), "printer", decodeJSONSeq, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st3.Close()
	if err := st3.Connect(ctx); err != nil {
		t.Fatalf("with the new certificate trusted: %v", err)
	}
}

// TestSecureImpostorCannotCompleteHandshake: a server that answers
// GetEndpoints with the trusted server's certificate but does not hold its
// private key (here: GetEndpoints reaches the real server, the secure
// channel an impostor) cannot open the secure channel: the client encrypts
// the OpenSecureChannel request for the checked certificate only.
func TestSecureImpostorCannotCompleteHandshake(t *testing.T) {
	real := nodeopcua.Start(t)
	impostor := nodeopcua.Start(t)
	client := uasectest.New(t, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, mode := range []string{"Sign", "SignAndEncrypt"} {
		px := switchingProxy(t, hostPort(real.Endpoint), hostPort(impostor.Endpoint))
		cfg := printerStream("opc.tcp://"+px, Security{Policy: "Basic256Sha256", Mode: mode, CertFile: client.CertFile, KeyFile: client.KeyFile},
			uasec.TrustConfig{Trusted: []string{real.Cert.CertFile}})
		cfg.RequestTimeout = 3 * time.Second
		st, err := New(cfg, "printer", decodeJSONSeq, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = st.Connect(ctx)
		st.Close()
		if err == nil {
			t.Fatalf("%s: connected to an impostor holding the trusted certificate but not its key", mode)
		}
		if errors.Is(err, uasec.ErrUntrusted) {
			t.Fatalf("%s: refused by the trust check (%v); the test wants the handshake itself to fail", mode, err)
		}
		t.Logf("%s: %v", mode, err)
	}
}

func hostPort(endpoint string) string { return strings.TrimPrefix(endpoint, "opc.tcp://") }

// switchingProxy forwards the first connection to first and every later
// one to rest; it returns its address.
func switchingProxy(t *testing.T, first, rest string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			to := rest
			if n == 0 {
				to = first
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.Close() }()
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestConfigValidateTrust(t *testing.T) {
	base := Config{Endpoint: "opc.tcp://h:4840", RecordNode: "ns=1;s=R",
		Security: Security{Policy: "Basic256Sha256", Mode: "Sign", CertFile: "c", KeyFile: "k"}}
	if err := base.Validate("printer.p1"); err == nil || !strings.Contains(err.Error(), "printer.p1: security_policy Basic256Sha256 needs trust.trusted certificates or trust.pinning: first-use") {
		t.Fatalf("no trust: %v", err)
	}
	ok := base
	ok.Trust = uasec.TrustConfig{Trusted: []string{"server.crt"}}
	if err := ok.Validate("printer.p1"); err != nil {
		t.Fatal(err)
	}
	bad := base
	bad.Trust = uasec.TrustConfig{Pinning: "yes"}
	if err := bad.Validate("printer.p1"); err == nil || !strings.Contains(err.Error(), `printer.p1.trust.pinning: "yes" is not off or first-use`) {
		t.Fatalf("bad pinning: %v", err)
	}
	// Key files are loaded by New: a bad one is named there, before any network.
	dir := t.TempDir()
	key := filepath.Join(dir, "client.key")
	os.WriteFile(key, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)
	kp := uasectest.New(t, "c")
	ok.Security.CertFile, ok.Security.KeyFile = kp.CertFile, key
	if _, err := New(ok, "printer", decodeJSONSeq, nil); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("encrypted key: %v", err)
	}
}
