package hmi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v5"
)

// FuzzDecode: any body, into any request type, is decoded or refused as
// a 4xx — never a panic, never a 5xx.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"user":"qa","password":"demo"}`, `{"command":"reset"}`, `{"kind":"sample","code":"]d2010690123456789221X1","reason":"r"}`,
		`{"roles":["qa"]}`, `{"user":"x","name":"y","roles":["inspector"],"password":"12345678","expires":"2026-12-01T00:00:00Z"}`,
		`{"disabled":true}`, `[]`, `{`, `{"command":1}`, "\x00", `{"expires":"yesterday"}`, `{} {}`, `null`} {
		f.Add([]byte(s))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&LoginReq{}, &SetupReq{}, &PasswordReq{}, &AccountReq{}, &RolesReq{}, &AccountStateReq{}, &CommandReq{}, &ReworkReq{}} {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			rec := httptest.NewRecorder()
			req.Body = http.MaxBytesReader(rec, req.Body, 64<<10)
			c := e.NewContext(req, rec)
			if err := decode(c, v); err != nil {
				if ae := classify(err); ae.status < 400 || ae.status >= 500 {
					t.Fatalf("%T: %v → HTTP %d", v, err, ae.status)
				}
			}
		}
	})
}
