// Package nodeopcua starts a node-opcua server (server.js in this folder)
// for tests that need an independent OPC UA server with working
// Basic256Sha256 Sign and SignAndEncrypt endpoints — the gopcua server in
// cmd/linesim has none. The server listens on 127.0.0.1 on a free port,
// offers SecurityPolicy None too, accepts any client certificate, and holds
// a coding printer, a vision camera and a PLC with linesim's node names
// (see server.js for the address space). Only tests import it.
//
// node-opcua comes from npm: ./scripts/test installs it (npm ci in this
// folder). Without it, Start fails the test and says so; it never skips.
package nodeopcua

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/internal/uasec/uasectest"
)

// Server is a running node-opcua server.
type Server struct {
	// Endpoint is the server's URL, opc.tcp://127.0.0.1:<port>.
	Endpoint string
	// CertDER is the certificate the server uses (as it reported it).
	CertDER []byte
	// Cert is the key pair the server was given (its files are in a
	// temporary folder of the test).
	Cert uasectest.KeyPair

	cmd      *exec.Cmd
	stdin    io.WriteCloser
	exited   chan struct{}
	stopOnce sync.Once
	log      *lockedBuffer
}

// Options shape a server; zero values take defaults.
type Options struct {
	// Port to listen on (0: a free one). A test that restarts a server on
	// the same endpoint passes the first one's port.
	Port int
	// Cert is the server's key pair (default: a new self-signed one with
	// application URI urn:tracline:test:nodeopcua).
	Cert *uasectest.KeyPair
}

// startTimeout bounds how long node-opcua may take to come up.
const startTimeout = 60 * time.Second

// Start starts a server with a fresh certificate; it stops when the test
// ends (or by Stop).
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts a server with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	dir := sourceDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua", "package.json")); err != nil {
		t.Fatalf("node-opcua is not installed in %s: run ./scripts/test, which installs it "+
			"(or by hand: cd internal/uasec/nodeopcua && npm ci --no-audit --no-fund)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) is not on PATH; the OPC UA security tests need it to run the node-opcua server: %v", err)
	}
	if o.Cert == nil {
		kp := uasectest.NewWith(t, "nodeopcua", uasectest.Options{CommonName: "Tracline node-opcua test server", URI: "urn:tracline:test:nodeopcua"})
		o.Cert = &kp
	}
	args, _ := json.Marshal(map[string]any{
		"port": o.Port,
		"cert": o.Cert.CertFile,
		"key":  o.Cert.KeyFile,
		"uri":  o.Cert.URI,
		"pki":  t.TempDir(),
	})
	cmd := exec.Command(node, filepath.Join(dir, "server.js"), string(args))
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Cert: *o.Cert, cmd: cmd, stdin: stdin, exited: make(chan struct{}), log: &lockedBuffer{}}
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node-opcua server: %v", err)
	}
	ready := make(chan readyLine, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent && strings.HasPrefix(line, `{"ready"`) {
				var r readyLine
				if err := json.Unmarshal([]byte(line), &r); err == nil {
					ready <- r
					sent = true
					continue
				}
			}
			fmt.Fprintln(s.log, line)
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.Stop)
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case r := <-ready:
		der, err := base64.StdEncoding.DecodeString(r.Certificate)
		if err != nil || len(der) == 0 {
			s.Stop()
			t.Fatalf("node-opcua server reported no usable certificate (%v); its output:\n%s", err, s.log.String())
		}
		s.Endpoint, s.CertDER = r.Endpoint, der
		return s
	case <-s.exited:
		t.Fatalf("node-opcua server exited before it was ready (%v); its output:\n%s", cmd.ProcessState, s.log.String())
	case <-timer.C:
		s.Stop()
		t.Fatalf("node-opcua server not ready after %s; its output:\n%s", startTimeout, s.log.String())
	}
	return nil
}

type readyLine struct {
	Ready       bool   `json:"ready"`
	Endpoint    string `json:"endpoint"`
	Certificate string `json:"certificate"`
}

// Port is the port the server listens on.
func (s *Server) Port() int {
	var p int
	if i := strings.LastIndexByte(s.Endpoint, ':'); i >= 0 {
		fmt.Sscanf(s.Endpoint[i+1:], "%d", &p)
	}
	return p
}

// Output is what the server wrote besides its ready line (for failure
// messages).
func (s *Server) Output() string { return s.log.String() }

// Stop shuts the server down and waits until it has exited (it is killed
// if it has not after 10 s). Safe twice.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stdin.Close() // server.js shuts down when its stdin closes
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-s.exited:
		case <-t.C:
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// sourceDir is this folder (server.js and node_modules sit beside this file).
func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
