package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/plc/plctest"
	"github.com/tracline/tracline/printer/printertest"
	"github.com/tracline/tracline/tracecode"
)

// apiRig is the line API on a line.Line with fake devices and a real
// ledger; the line is not running a batch.
type apiRig struct {
	l     *line.Line
	store *aggregation.Store
	srv   *httptest.Server
	plc   *plctest.PLC
}

func newAPIRig(t testing.TB) *apiRig {
	t.Helper()
	store, err := aggregation.Open(t.TempDir(), aggregation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p, _, err := demo.LoadProduct("")
	if err != nil {
		t.Fatal(err)
	}
	rg := &apiRig{store: store, plc: plctest.New(16)}
	w := newDevWatch()
	coder := printertest.NewCoder(16)
	eng := &engineering{w: w, plcCfg: sim.ModbusProfile("127.0.0.1:1"), plc: watchedPLC{rg.plc, w}}
	products := map[string]*tracecode.Product{"amoxicillin-gs1": p}
	lc := line.LineConfig{Line: "API-L1", Machine: line.Config{Deadline: time.Second, PrinterBuffer: 2, AllocChunk: 4},
		Products: products,
		Devices:  line.Devices{PLC: plcVerdicts{rg.plc}, Printer: coderAdapter{coder}, Signals: plcSignals{p: rg.plc}},
		BatchDevices: func(ctx context.Context, spec aggregation.BatchSpec) (line.Devices, error) {
			cs, err := line.NewPoolSource(p, store, spec.ID)
			return line.Devices{Codes: cs}, err
		},
		Links: map[string]line.LinkReporter{"plc": watchLink{w, "plc"}}, Engineering: lineEngineering{e: eng}}
	w.declare("plc")
	l, err := line.NewLine(context.Background(), lc, store, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	rg.l = l
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("line: %v", err)
		}
	})
	rg.srv = httptest.NewServer(newHMI(nil, loopbackOnly(newLineAPI(l, false, discardLogger()))))
	t.Cleanup(rg.srv.Close)
	return rg
}

func (rg *apiRig) do(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, rg.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Every route refuses bad input with 4xx and a message naming what was
// wrong, and changes nothing in the ledger but the journaled refusal of a
// command (the line journals refused commands, by design).
func TestLineAPIRefusals(t *testing.T) {
	rg := newAPIRig(t)
	wo := func(expiry string) string {
		return `{"product":"amoxicillin-gs1","batch":"B1","production_date":"2026-11-23","expiry":"` + expiry + `","planned":100,"user":"op1"}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"state", "GET", "/api/line", "", 200, `"state":"Stopped"`},
		{"overview", "GET", "/api/line/overview", "", 200, `"ready_for_batch":true`},
		{"command, no batch", "POST", "/api/line/commands", `{"command":"reset","user":"op1"}`, 409, "no batch"},
		{"command not JSON", "POST", "/api/line/commands", `command=reset`, 400, "body"},
		{"command unknown key", "POST", "/api/line/commands", `{"command":"reset","user":"op1","operator":"x"}`, 400, "operator"},
		{"command two objects", "POST", "/api/line/commands", `{"command":"reset","user":"op1"}{}`, 400, "one JSON object"},
		{"command without user", "POST", "/api/line/commands", `{"command":"reset"}`, 400, "user"},
		{"unknown command", "POST", "/api/line/commands", `{"command":"explode","user":"op1"}`, 400, "command"},
		{"body too large", "POST", "/api/line/commands", `{"command":"` + strings.Repeat("x", maxAPIBody) + `","user":"op1"}`, 400, "body"},
		{"rework, no batch", "POST", "/api/line/rework", `{"kind":"sample","code":"(01)06901234567892(21)ABC","reason":"x","user":"qa"}`, 409, "no batch"},
		{"rework unparsable code", "POST", "/api/line/rework", `{"kind":"sample","code":"]d2010690","reason":"x","user":"qa"}`, 400, "code"},
		{"work order, expiry first", "POST", "/api/line/batches", wo("2020-01-01"), 400, `"field":"expiry"`},
		{"work order, unknown product", "POST", "/api/line/batches", strings.Replace(wo("2028-11-22"), "amoxicillin-gs1", "aspirin", 1), 400, `"code":"unknown"`},
		{"work order without user", "POST", "/api/line/batches", strings.Replace(wo("2028-11-22"), `"user":"op1"`, `"user":" "`, 1), 400, "user"},
		{"work order not JSON", "POST", "/api/line/batches", `[1,2]`, 400, "body"},
		{"monitor", "GET", "/api/line/engineering", "", 200, `"signals"`},
		{"test, bad kind", "POST", "/api/line/engineering/test", `{"kind":"shred","user":"eng"}`, 400, "kind"},
		{"test, not an output", "POST", "/api/line/engineering/test", `{"kind":"output","output":"verdict","value":1,"user":"eng"}`, 400, "not a writable signal"},
		{"test, value out of range", "POST", "/api/line/engineering/test", `{"kind":"output","output":"tower_light","value":9,"user":"eng"}`, 400, "0..3"},
		{"wrong method", "DELETE", "/api/line", "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before int
			if ids, err := rg.store.Batches(context.Background()); err == nil {
				before = len(ids)
			}
			status, body := rg.do(t, tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("HTTP %d %s, want %d saying %q", status, body, tc.status, tc.says)
			}
			if ids, _ := rg.store.Batches(context.Background()); len(ids) != before {
				t.Errorf("batches %d → %d", before, len(ids))
			}
		})
	}
	// What was refused wrote nothing to the PLC (the line itself shows
	// its state: stop request, amber).
	for _, c := range rg.plc.Calls() {
		if c.Verdict != nil || c.Value == 9 {
			t.Errorf("a refused request reached the PLC: %v", c)
		}
	}
}

// A work order starts a batch; a second is refused while it is open; a
// test action is refused while it is open; commands reach its runner.
func TestLineAPIBatch(t *testing.T) {
	rg := newAPIRig(t)
	status, body := rg.do(t, "POST", "/api/line/batches",
		`{"product":"amoxicillin-gs1","batch":"B2","production_date":"2026-11-23","expiry":"2028-11-22","planned":100,"levels":2,"user":"op1"}`)
	if status != 200 {
		t.Fatalf("work order: HTTP %d %s", status, body)
	}
	var spec aggregation.BatchSpec
	if err := json.Unmarshal([]byte(body), &spec); err != nil || spec.ID != "B2" || len(spec.Levels) != 2 {
		t.Fatalf("spec %+v %v", spec, err)
	}
	if status, body := rg.do(t, "POST", "/api/line/batches",
		`{"product":"amoxicillin-gs1","batch":"B3","production_date":"2026-11-23","expiry":"2028-11-22","planned":100,"user":"op1"}`); status != 409 {
		t.Errorf("second work order while B2 is open: HTTP %d %s, want 409", status, body)
	}
	if status, body := rg.do(t, "POST", "/api/line/engineering/test", `{"kind":"output","output":"alarm","value":1,"user":"eng"}`); status != 409 || !strings.Contains(body, "B2") {
		t.Errorf("test action while B2 is open: HTTP %d %s, want 409 naming the batch", status, body)
	}
	if status, body := rg.do(t, "POST", "/api/line/commands", `{"command":"start","user":"op1"}`); status != 409 {
		t.Errorf("start before reset: HTTP %d %s, want 409", status, body)
	}
	if status, body := rg.do(t, "POST", "/api/line/commands", `{"command":"reset","user":"op1"}`); status != 200 || !strings.Contains(body, `"state":"Idle"`) {
		t.Errorf("reset: HTTP %d %s", status, body)
	}
	var st lineState
	status, body = rg.do(t, "GET", "/api/line", "")
	if err := json.Unmarshal([]byte(body), &st); err != nil || status != 200 {
		t.Fatalf("state: HTTP %d %v", status, err)
	}
	var ov line.Overview
	status, body = rg.do(t, "GET", "/api/line/overview", "")
	if err := json.Unmarshal([]byte(body), &ov); err != nil || status != 200 {
		t.Fatalf("overview: HTTP %d %v", status, err)
	}
	if ov.Batch == nil || ov.Batch.ID != "B2" || ov.Ready || st.Line.State != "Idle" {
		t.Errorf("state after reset: line %s, overview batch %+v ready %t", st.Line.State, ov.Batch, ov.Ready)
	}
	found := false
	for _, d := range ov.Devices {
		if d.Name == "plc" && d.Link == "up" {
			found = true
		}
	}
	if !found {
		t.Errorf("devices %+v: want plc up", ov.Devices)
	}
}

// FuzzLineAPI: no request body makes the line API panic or answer 5xx.
func FuzzLineAPI(f *testing.F) {
	rg := newAPIRig(f)
	paths := []string{"/api/line/commands", "/api/line/rework", "/api/line/batches", "/api/line/engineering/test"}
	f.Add(uint8(0), `{"command":"reset","user":"op1"}`)
	f.Add(uint8(1), `{"kind":"sample","code":"(01)06901234567892(21)ABC","reason":"x","user":"qa"}`)
	f.Add(uint8(2), `{"product":"amoxicillin-gs1","batch":"B1","production_date":"2026-11-23","expiry":"2028-11-22","planned":100,"user":"op1"}`)
	f.Add(uint8(2), `{"product":"amoxicillin-gs1","batch":"\u0000","production_date":"2026-02-30","expiry":"x","planned":-1,"levels":99,"user":"op1"}`)
	f.Add(uint8(3), `{"kind":"output","output":"tower_light","value":3,"user":"eng"}`)
	f.Add(uint8(3), `{"kind":"camera","device":"nope","user":"eng"}`)
	f.Add(uint8(0), `null`)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		status, answer := rg.do(t, "POST", paths[int(route)%len(paths)], body)
		if status >= 500 {
			t.Fatalf("HTTP %d %s for %q", status, answer, body)
		}
	})
}

// The local line API has no accounts: it answers loopback peers only, and
// is not served at all unless asked for.
func TestLocalLineAPIIsLoopbackOnly(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		peer string
		want int
	}{{"127.0.0.1:5000", http.StatusTeapot}, {"[::1]:5000", http.StatusTeapot},
		{"10.1.2.3:5000", http.StatusForbidden}, {"192.168.0.9:80", http.StatusForbidden}, {"garbage", http.StatusForbidden}} {
		r := httptest.NewRequest("POST", "/api/line/commands", nil)
		r.RemoteAddr = tc.peer
		w := httptest.NewRecorder()
		loopbackOnly(ok).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("peer %s: %d, want %d", tc.peer, w.Code, tc.want)
		}
	}
	hmiOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	w := httptest.NewRecorder()
	newHMI(hmiOnly, nil).ServeHTTP(w, httptest.NewRequest("POST", "/api/line/commands", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("without --local-api, /api/line answered %d", w.Code)
	}
}

// The config's hmi section reaches the HMI, whose checks name the setting.
func TestWebSettingsFromConfig(t *testing.T) {
	rg := newAPIRig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var h hmiFile
	h.TLS.CertFile, h.TLS.KeyFile = "/nonexistent/cert.pem", "/nonexistent/key.pem"
	h.TrustedProxies = []string{"not-a-cidr"}
	stop, err := serveWeb(ln, web{Line: rg.l, Store: rg.store, HMI: h}, quietCLI())
	if err == nil {
		stop()
		t.Fatal("served with a missing certificate and a bad proxy range")
	}
	if !strings.Contains(err.Error(), "hmi.") {
		t.Fatalf("error does not name the setting: %v", err)
	}
}
