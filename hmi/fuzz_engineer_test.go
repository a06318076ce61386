package hmi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/line"
)

// FuzzTestAction: any body for POST /api/v1/engineer/test is decoded and
// checked, or refused as a 4xx — never a panic, never a 5xx; an accepted
// action is one the line takes (Validate) with a print text ≤ 64 bytes.
func FuzzTestAction(f *testing.F) {
	for _, s := range []string{`{"kind":"output","output":"reject","value":1}`, `{"kind":"print","text":"TEST 测试"}`, `{"kind":"camera","device":"camera"}`,
		`{"kind":"dance"}`, `{"kind":"output"}`, `{"kind":"print","text":"   "}`, `{"kind":"output","output":"x","value":-1}`, `{"kind":"output","output":"x","value":1e9}`,
		`{"kind":1}`, `{`, `[]`, `null`, "\xff"} {
		f.Add([]byte(s))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		req.Body = http.MaxBytesReader(rec, req.Body, 64<<10)
		var tr TestReq
		err := decode(e.NewContext(req, rec), &tr)
		var a line.TestAction
		if err == nil {
			a, err = testAction(tr)
		}
		if err != nil {
			if ae := classify(err); ae.status < 400 || ae.status >= 500 {
				t.Fatalf("%q: %v → HTTP %d", body, err, ae.status)
			}
			return
		}
		if a.Validate() != nil || len(a.Text) > 64 || (a.Kind == line.TestPrint && strings.TrimSpace(a.Text) == "") {
			t.Fatalf("%q accepted as %+v", body, a)
		}
	})
}
