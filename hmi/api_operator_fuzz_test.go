package hmi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/line"
)

// FuzzOperatorBodies: any body, into the operator screens' request types,
// is decoded or refused as a 4xx; a rework's codes are parsed or refused
// as a 4xx — never a panic, never a 5xx.
func FuzzOperatorBodies(f *testing.F) {
	for _, s := range []string{`{"product":"amox","batch":"B1","production_date":"2026-11-01","expiry":"2028-10-31","planned":10,"levels":2}`,
		`{"name":"a.txt","data":"ODAyMTc2MjE0NzU1OTQ0MDY5MjQK"}`, `{"data":"!!"}`, `{"scan":"]d2010690123456789221X1"}`, `{"level":2}`,
		`{"reason":"end of batch"}`, `{"code":"(00)069012345678901231","reason":"torn"}`, `{"kind":"replace","code":"x","old":"(01)1","new":"","reason":"r"}`,
		`{"planned":1e99}`, `{"levels":-1}`, `[]`, `{`, `null`, "\x00"} {
		f.Add([]byte(s))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&line.WorkOrder{}, &ImportReq{}, &ScanReq{}, &NewParentReq{}, &ReasonReq{}, &ReprintReq{}, &ReworkReq{}} {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			rec := httptest.NewRecorder()
			req.Body = http.MaxBytesReader(rec, req.Body, 64<<10)
			c := e.NewContext(req, rec)
			err := decode(c, v)
			if rw, ok := v.(*ReworkReq); ok && err == nil {
				_, err = reworkOp(*rw)
			}
			if err != nil {
				if ae := classify(err); ae.status < 400 || ae.status >= 500 {
					t.Fatalf("%T: %v → HTTP %d", v, err, ae.status)
				}
			}
		}
	})
}
