package hmi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v5"
)

// FuzzQARequests: any body is decoded into QA's request types or refused
// as a 4xx; a decoded signature request is accepted only with a meaning, a
// comment of valid UTF-8 and a password — never a panic, never a 5xx.
func FuzzQARequests(f *testing.F) {
	for _, s := range []string{`{"password":"demo","meaning":"released","comment":"ok","hash":"ab"}`,
		`{"password":"demo","meaning":"rejected","comment":"  "}`, `{"password":"","meaning":"x","comment":"c"}`,
		`{"password":"demo"}`, `{"meaning":"released","comment":"\xff"}`, `{"user":"admin"}`, `[]`, `{`, `null`} {
		f.Add([]byte(s))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&SignReq{}, &ActivateReq{}} {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			rec := httptest.NewRecorder()
			req.Body = http.MaxBytesReader(rec, req.Body, 64<<10)
			err := decode(e.NewContext(req, rec), v)
			if sr, ok := v.(*SignReq); ok && err == nil {
				m, comment, cerr := sr.check()
				if cerr == nil && (m == "" || comment == "" || sr.Password == "") {
					t.Fatalf("%+v accepted as %q %q", sr, m, comment)
				}
				err = cerr
			}
			if err != nil {
				if ae := classify(err); ae.status < 400 || ae.status >= 500 {
					t.Fatalf("%T: %v → HTTP %d", v, err, ae.status)
				}
			}
		}
	})
}
