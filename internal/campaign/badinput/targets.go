package badinput

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	cameraopcua "github.com/tracline/tracline/camera/opcua"
	"github.com/tracline/tracline/examples"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/plc"
	printeropcua "github.com/tracline/tracline/printer/opcua"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

// Targets are the parsers of outside input reachable from packages (the
// line config's loader lives in cmd/linectl, which adds its own target;
// the HMI's bodies are fuzzed over HTTP, HTTPBodies). Close releases what
// they hold (the stand-in receiver of the answer targets).
func Targets() (_ []Target, closeFn func()) {
	ans := newAnswerServer()
	ts := []Target{scanTarget(), codeFileTarget(), productTarget(), plcConfigTarget(), cameraTarget(), printRecordTarget(),
		hostStatusTarget(), ans.captureTarget(), ans.platformTarget()}
	return ts, ans.close
}

// Scanned codes: raw scans with and without symbology identifiers, GS or
// FNC1 separators, bracketed, Digital Link URIs, nmpa20.
func scanTarget() Target {
	const gtin = "06901234567892"
	seeds := []string{
		"]d2010690123456789221A7x9Kq2\x1d10L2026A\x1d17281031",
		"]d2" + "01" + gtin + "21A7x9Kq2" + "\x1d" + "10L1",
		"(01)" + gtin + "(21)A7x9Kq2(10)L1(17)281031",
		"01" + gtin + "7003261231235921S",
		"\xe801" + gtin + "21A\xe8",
		"https://id.gs1.org/01/" + gtin + "/21/X?17=260100&10=A%2FB&linkType=all",
		"https://example.com/01/" + gtin + "/21/ABC%2F1",
		"]C1" + "00" + "069012345678901231",
		"(00)069012345678901231",
		"]Q3" + "80217629000000001003",
		"80217629000000001003",
		" 8021762 900000000 1003\n",
		"8021762-9000000001003",
		"(01)" + gtin + "(21)A(B)C(17)261231",
		"", "]", "]d2", "(", "()", "(01)", "https://a/01/", "https://a/01/1/21/%",
	}
	return Target{
		Name:   "scanned code (tracecode.Parse: GS1 element strings, bracketed, Digital Link, nmpa20)",
		Seeds:  bytesOf(seeds),
		Tokens: []string{"]d2", "]C1", "]Q3", "\x1d", "(01)", "(21)", "(10)", "(17)", "(00)", "01", "21", "10", "17", "https://", "/01/", "/21/", "?", "&", "=", "%2F", "8021762"},
		MaxLen: 512,
		Check: func(_ context.Context, in []byte) Outcome {
			raw := string(in)
			p, err := tracecode.Parse(raw)
			if err != nil {
				var pe *tracecode.ParseError
				if !errors.As(err, &pe) || pe.Reason == "" {
					return Outcome{Err: err, Problem: fmt.Sprintf("error %T %q is not a *ParseError with a reason", err, err)}
				}
				return Outcome{Err: err}
			}
			if s, ok := tracecode.SchemeOf(p.Code); !ok || s != p.Scheme {
				return Outcome{Accepted: true, Problem: fmt.Sprintf("code %q has scheme %s, but SchemeOf says %s %v", p.Code, p.Scheme, s, ok)}
			}
			norm := p.Normalized()
			// The bracketed form is ambiguous when a value itself holds
			// "(": a serial "A(10)B" reads back as serial A, batch B. A
			// known limit of the human-readable form (the GS1 data below
			// still round-trips); counted, not failed.
			ambiguous := p.Scheme != tracecode.SchemeNMPA20 && strings.Contains(p.GS1Data(), "(")
			q, err := tracecode.Parse(norm)
			switch {
			case ambiguous && (err != nil || q.Code != p.Code):
				return Outcome{Accepted: true, Note: "bracketed form ambiguous (a value holds \"(\")"}
			case err != nil:
				return Outcome{Accepted: true, Problem: fmt.Sprintf("normalized %q does not parse again: %v", norm, err)}
			case q.Code != p.Code:
				return Outcome{Accepted: true, Problem: fmt.Sprintf("normalized %q gives code %q, not %q", norm, q.Code, p.Code)}
			}
			if p.Scheme != tracecode.SchemeNMPA20 {
				if r, err := tracecode.Parse("]d2" + p.GS1Data()); err != nil || r.Code != p.Code {
					return Outcome{Accepted: true, Problem: fmt.Sprintf("GS1 data %q does not give the code back: %v %q", p.GS1Data(), err, r.Code)}
				}
			}
			return Outcome{Accepted: true}
		},
	}
}

// Code files from the platform (码段): plain text, one code a line, or a
// zip of such files.
func codeFileTarget() Target {
	seeds := [][]byte{mustRead("codes/8021762-L1.txt", 4096), mustRead("codes/8021762-L1-request-20240601.zip", 0),
		[]byte("80217629000000001003\n80217629000000001003\nx"), []byte("80217629000000001003\r\n\r\n"), []byte("\xef\xbb\xbf80217629000000001003\n"),
		[]byte("PK\x03\x04"), nil}
	const pid = "8021762"
	return Target{
		Name:   "platform code file (tracecode.ParseCodeFile: text or zip)",
		Seeds:  seeds,
		Tokens: []string{"\n", "\r\n", "80217629", "8021762", "PK\x03\x04", "PK\x01\x02", "PK\x05\x06"},
		MaxLen: 64 << 10,
		Check: func(_ context.Context, in []byte) Outcome {
			cf, err := tracecode.ParseCodeFile("fuzz.txt", in, pid)
			if err != nil {
				var cfe *tracecode.CodeFileError
				if errors.As(err, &cfe) && (cfe.Total == 0 || len(cfe.Problems) == 0) {
					return Outcome{Err: err, Problem: "code file error without the problems: " + err.Error()}
				}
				if !strings.Contains(err.Error(), "fuzz.txt") {
					return Outcome{Err: err, Problem: "error does not name the file: " + err.Error()}
				}
				return Outcome{Err: err}
			}
			seen := map[tracecode.Code]bool{}
			for _, l := range cf.Lines {
				p, err := tracecode.Parse(string(l.Code))
				if err != nil || p.ProductID() != pid || seen[l.Code] {
					return Outcome{Accepted: true, Problem: fmt.Sprintf("accepted line %d %q (parse: %v, product id %q, seen before %v)", l.Line, l.Code, err, p.ProductID(), seen[l.Code])}
				}
				seen[l.Code] = true
			}
			return Outcome{Accepted: true}
		},
	}
}

// Product master data and filed code rules (YAML).
func productTarget() Target {
	seeds := [][]byte{mustRead(examples.GS1Product, 0), mustRead("amoxicillin-nmpa20.yaml", 0),
		[]byte("levels: [{level: 1, name: a, rule: {scheme: gs1-sscc}}]"), []byte("a: &a [*a, *a]\nb: *a\n"), []byte("levels: 7")}
	return Target{
		Name:   "product and code rules (tracecode.ParseProduct, YAML)",
		Seeds:  seeds,
		Tokens: []string{"\n", ": ", "- ", "level:", "scheme:", "gs1-sgtin", "gs1-sscc", "nmpa20", "ratio:", "serial_length:", "gtin:", "product_id:", "&a", "*a", "!!binary", "{", "}", "[", "]", "'", "\"", "~"},
		MaxLen: 16 << 10,
		Check: func(_ context.Context, in []byte) Outcome {
			p, err := tracecode.ParseProduct("fuzz.yaml", in)
			if err != nil {
				if !strings.Contains(err.Error(), "fuzz.yaml") {
					return Outcome{Err: err, Problem: "error does not name the file: " + err.Error()}
				}
				return Outcome{Err: err}
			}
			// Whatever is accepted must be usable: every level's rule,
			// units, pool and a generator for the generated schemes.
			for l := tracecode.Level(0); l <= p.TopLevel()+1; l++ {
				_ = p.Rule(l)
				_ = p.Units(l)
				_ = p.PoolName(l)
				if g, err := tracecode.NewGenerator(p, l); err == nil {
					_, _ = g.Next()
				}
			}
			return Outcome{Accepted: true}
		},
	}
}

// The PLC's signal map (YAML).
func plcConfigTarget() Target {
	seeds := []string{
		string(yamlBlock(mustRead("line-linesim.yaml", 0), "  plc:")),
		"protocol: modbus\nmodbus: {address: '1.2.3.4:502'}\nsignals:\n  item_trigger: {table: input, address: 0, type: u32}\n  verdict: {table: holding, address: 10, type: verdict}\n",
		"protocol: opcua\nopcua: {endpoint: 'opc.tcp://h:4840'}\nsignals:\n  verdict: {node: 'ns=1;s=V', type: verdict}\n",
		"protocol: modbus\nmodbus: {address: '1.2.3.4:502'}\nsignals:\n  gate_outcome: {table: input, address: 65400, type: gate-ring, length: 40}\n  controller_alive: {table: coil, address: 3, type: bool}\n",
		"signals: {running: {table: coil, address: -1, type: bit, bit: 99}}",
		"protocol: modbus\nsignals: {verdict: {table: holding, address: 65535, type: string, length: 300}}",
	}
	return Target{
		Name:   "PLC signal map (plc.DecodeConfig, YAML)",
		Seeds:  bytesOf(seeds),
		Tokens: []string{"\n", ": ", "protocol:", "modbus", "opcua", "signals:", "table:", "address:", "type:", "length:", "bit:", "node:", "u16", "u32", "bool", "bit", "string", "gate-ring", "verdict", "input", "holding", "coil", "word_order:"},
		MaxLen: 8 << 10,
		Check: func(_ context.Context, in []byte) Outcome {
			c, err := plc.DecodeConfig(in)
			if err != nil {
				if !strings.Contains(err.Error(), "plc") {
					return Outcome{Err: err, Problem: "error does not say it is the PLC's config: " + err.Error()}
				}
				return Outcome{Err: err}
			}
			if err := c.Validate(); err != nil {
				return Outcome{Accepted: true, Problem: "decoded config does not validate: " + err.Error()}
			}
			for n, s := range c.Signals {
				if c.Protocol == plc.ProtoModbus && s.Address+s.Registers() > 65536 {
					return Outcome{Accepted: true, Problem: fmt.Sprintf("signal %s runs past the Modbus address space", n)}
				}
			}
			return Outcome{Accepted: true}
		},
	}
}

// A vision camera's result record (JSON over OPC UA).
func cameraTarget() Target {
	seeds := []string{
		`{"seq":4,"item":7,"codes":["X","Y"],"grade":"B","pass":true,"level":2,"at":"2026-01-01T00:00:00Z"}`,
		`{"seq":1,"item":1,"codes":"X","grade":3.7,"pass":true}`,
		`{"seq":1,"item":1,"codes":null,"grade":null,"pass":false}`,
		`{"seq":1,"item":1,"pass":true,"codes":5}`, `seq=1`,
	}
	return Target{
		Name:   "camera result (camera/opcua.DecodeResult, JSON)",
		Seeds:  bytesOf(seeds),
		Tokens: jsonTokens("seq", "item", "codes", "grade", "pass", "level", "at"),
		MaxLen: 4 << 10,
		Check: func(_ context.Context, in []byte) Outcome {
			r, err := cameraopcua.DecodeResult(string(in), cameraopcua.Fields{})
			if err != nil {
				if !strings.HasPrefix(err.Error(), "result") {
					return Outcome{Err: err, Problem: "error does not say it is the camera's result: " + err.Error()}
				}
				return Outcome{Err: err}
			}
			switch {
			case r.Seq == 0:
				return Outcome{Accepted: true, Problem: "accepted seq 0"}
			case r.Grade != 0 && (r.Grade < 'A' || r.Grade > 'F'):
				return Outcome{Accepted: true, Problem: fmt.Sprintf("accepted grade %q", r.Grade)}
			}
			for _, c := range r.Codes {
				if c == "" {
					return Outcome{Accepted: true, Problem: "accepted an empty code"}
				}
			}
			return Outcome{Accepted: true}
		},
	}
}

// A coding printer's print record (JSON over OPC UA).
func printRecordTarget() Target {
	seeds := []string{`{"seq":3,"code":"ABC","at":"2026-01-01T00:00:00Z"}`, `{"seq":1e3,"code":7}`, `{}`, `{"seq":-1,"code":""}`}
	return Target{
		Name:   "coding printer's print record (printer/opcua.DecodeRecord, JSON)",
		Seeds:  bytesOf(seeds),
		Tokens: jsonTokens("seq", "code", "at"),
		MaxLen: 4 << 10,
		Check: func(_ context.Context, in []byte) Outcome {
			r, err := printeropcua.DecodeRecord(string(in), "seq", "code")
			if err != nil {
				if !strings.HasPrefix(err.Error(), "print record") {
					return Outcome{Err: err, Problem: "error does not say it is the print record: " + err.Error()}
				}
				return Outcome{Err: err}
			}
			if r.Seq == 0 || r.Code == "" {
				return Outcome{Accepted: true, Problem: fmt.Sprintf("accepted as %+v", r)}
			}
			return Outcome{Accepted: true}
		},
	}
}

// A ZPL label printer's ~HS status answer.
func hostStatusTarget() Target {
	const ok = "\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"
	seeds := []string{ok, "\x02\x03\x02\x03\x02\x03",
		"\x02030,1,1,1245,002,1,0,1,000,1,1,1\x03\x02001,0,1,1,1,2,6,1,00000012,1,000\x03\x021234,0\x03"}
	return Target{
		Name:   "label printer status (printer/zpl.ParseHostStatus, ~HS)",
		Seeds:  bytesOf(seeds),
		Tokens: []string{"\x02", "\x03", ",", "\r\n", "0", "1", "-1", "99999999999999999999"},
		MaxLen: 1 << 10,
		Check: func(_ context.Context, in []byte) Outcome {
			h, err := zpl.ParseHostStatus(in)
			if err != nil {
				if h != (zpl.HostStatus{}) {
					return Outcome{Err: err, Problem: fmt.Sprintf("error with a non-zero status %+v", h)}
				}
				if !strings.HasPrefix(err.Error(), "~HS answer") {
					return Outcome{Err: err, Problem: "error does not say it is the ~HS answer: " + err.Error()}
				}
				return Outcome{Err: err}
			}
			return Outcome{Accepted: true}
		},
	}
}

// answerServer is a stand-in receiver answering every question with the
// body under test, so that the outbox's adapters read it exactly as they
// read a real receiver's answer (over HTTP, through their own client).
type answerServer struct {
	srv  *httptest.Server
	body atomic.Pointer[[]byte]
}

func newAnswerServer() *answerServer {
	a := &answerServer{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if b := a.body.Load(); b != nil {
			w.Write(*b)
		}
	}))
	return a
}

func (a *answerServer) close() { a.srv.Close() }

func (a *answerServer) ask(ctx context.Context, in []byte, poll func(context.Context, outbox.Endpoint) (outbox.Answer, error)) Outcome {
	b := append([]byte(nil), in...)
	a.body.Store(&b)
	ans, err := poll(ctx, outbox.Endpoint{Name: "fuzz", URL: a.srv.URL, Timeout: 10 * time.Second})
	if err != nil {
		if ctx.Err() != nil {
			return Outcome{Err: err}
		}
		if !strings.Contains(err.Error(), "bad answer") {
			return Outcome{Err: err, Problem: "a 200 answer refused without saying it is a bad answer: " + err.Error()}
		}
		return Outcome{Err: err}
	}
	if ans.Outcome == "" {
		return Outcome{Accepted: true, Problem: "no outcome and no error"}
	}
	return Outcome{Accepted: true}
}

// The EPCIS repository's capture job (JSON).
func (a *answerServer) captureTarget() Target {
	seeds := []string{`{"captureID":"1","running":true,"success":false}`, `{"captureID":"1","running":false,"success":true}`,
		`{"captureID":"1","running":false,"success":false,"captureErrorBehaviour":"rollback","errors":[{"title":"ValidationException","detail":"x"}]}`,
		`{"captureID": "garbage`, `{"captureID":"1"}`, `<html>502</html>`}
	ad := outbox.EPCISAdapter{Client: a.srv.Client()}
	return Target{
		Name:   "EPCIS capture job answer (handoff/outbox.EPCISAdapter.Poll, over HTTP)",
		Seeds:  bytesOf(seeds),
		Tokens: jsonTokens("captureID", "running", "success", "captureErrorBehaviour", "errors", "title", "detail", "status", "type", "report"),
		MaxLen: 8 << 10,
		Check: func(ctx context.Context, in []byte) Outcome {
			return a.ask(ctx, in, func(ctx context.Context, ep outbox.Endpoint) (outbox.Answer, error) {
				return ad.Poll(ctx, ep, a.srv.URL+"/capture/1")
			})
		},
	}
}

// The traceability platform's upload status (JSON).
func (a *answerServer) platformTarget() Target {
	seeds := []string{`{"process_id":"p","status":"pending"}`, `{"process_id":"p","status":"success"}`,
		`{"process_id":"p","status":"failed","errors":[{"code":"c","message":"m"}]}`, `{"process_id":"p","status":"maybe"}`,
		`{"status":"success"}`, `<html>502</html>`}
	ad := outbox.PlatformAdapter{Client: a.srv.Client()}
	return Target{
		Name:   "platform upload status answer (handoff/outbox.PlatformAdapter.Poll, over HTTP)",
		Seeds:  bytesOf(seeds),
		Tokens: jsonTokens("process_id", "status", "pending", "success", "failed", "errors", "code", "message", "report"),
		MaxLen: 8 << 10,
		Check: func(ctx context.Context, in []byte) Outcome {
			return a.ask(ctx, in, func(ctx context.Context, ep outbox.Endpoint) (outbox.Answer, error) {
				return ad.Poll(ctx, ep, "p")
			})
		},
	}
}

func jsonTokens(fields ...string) []string {
	t := []string{"{", "}", "[", "]", ",", ":", `"`, "null", "true", "false", "1e400", "-1", `"\u0000"`, `"\ud800"`}
	for _, f := range fields {
		t = append(t, `"`+f+`"`, `"`+f+`":`)
	}
	return t
}

func bytesOf(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// mustRead reads an embedded example (the first n bytes; 0: all). The
// examples are part of the binary: a missing one is a build defect.
func mustRead(name string, n int) []byte {
	b, err := fs.ReadFile(examples.FS, name)
	if err != nil {
		panic(fmt.Sprintf("badinput: embedded example %s: %v", name, err))
	}
	if n > 0 && len(b) > n {
		b = b[:n]
	}
	return b
}

// yamlBlock is the block under the line header (e.g. "  plc:") of a YAML
// file, dedented to the top level: one part of an example config as a
// file of its own.
func yamlBlock(data []byte, header string) []byte {
	ind := len(header) - len(strings.TrimLeft(header, " ")) + 2
	var out []string
	in := false
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimRight(l, " ") == header:
			in = true
		case in && strings.TrimSpace(l) == "":
		case in && len(l)-len(strings.TrimLeft(l, " ")) < ind:
			return []byte(strings.Join(out, "\n") + "\n")
		case in:
			out = append(out, l[ind:])
		}
	}
	return []byte(strings.Join(out, "\n") + "\n")
}
