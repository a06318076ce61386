package hmi

import (
	"bytes"
	"context"
	"net/http"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/tracecode"
	"github.com/tracline/tracline/tracecode/render"
)

// Health is /healthz and /readyz's answer.
type Health struct {
	OK       bool              `json:"ok"`
	Problems map[string]string `json:"problems,omitempty"`
}

// Writable is an optional ability of the ledger store: whether a durable
// write would succeed now (disk full, read-only, closed).
type Writable interface {
	Writable(ctx context.Context) error
}

func (s *Server) opsRoutes() []Route {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &metrics{s: s})
	prom := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return []Route{
		{Method: http.MethodGet, Path: "/healthz", Tag: "ops", Summary: "The process answers", Response: Health{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				return c.JSON(http.StatusOK, Health{OK: true})
			}},
		{Method: http.MethodGet, Path: "/readyz", Tag: "ops",
			Summary: "Ready: every device linked and the ledger writable (503 with the problems otherwise)", Response: Health{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				h := s.ready(c.Request().Context())
				code := http.StatusOK
				if !h.OK {
					code = http.StatusServiceUnavailable
				}
				return c.JSON(code, h)
			}},
		{Method: http.MethodGet, Path: "/metrics", Tag: "ops", ContentType: "text/plain",
			Summary: "Prometheus metrics", Response: "",
			Handler: func(c *echo.Context, _ *accounts.User) error {
				prom.ServeHTTP(c.Response(), c.Request())
				return nil
			}},
		{Method: http.MethodGet, Path: "/api/v1/openapi.json", Tag: "ops", Summary: "This document", Response: map[string]any{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				return c.Blob(http.StatusOK, "application/json", s.openapi)
			}},
		{Method: http.MethodGet, Path: "/api/v1/codes/:code/barcode.png", Roles: anyone, Tag: "codes", ContentType: "image/png",
			Summary:  "A code's barcode: GS1 DataMatrix (SGTIN), GS1-128 (SSCC), Code 128 (NMPA 20 digits); the code URL-escaped in any scanned form",
			Response: "",
			Handler: func(c *echo.Context, _ *accounts.User) error {
				p, err := tracecode.Parse(c.Param("code"))
				if err != nil {
					return fail(http.StatusBadRequest, "bad_code", err.Error())
				}
				var rule tracecode.Rule
				switch p.Scheme {
				case tracecode.SchemeGS1SGTIN:
					rule.Carrier = tracecode.CarrierGS1DataMatrix
				case tracecode.SchemeGS1SSCC:
					rule.Carrier = tracecode.CarrierGS1128
				default:
					rule.Carrier = tracecode.CarrierCode128
				}
				var buf bytes.Buffer
				if err := render.PNG(&buf, &p, rule, render.Options{}); err != nil {
					return fail(http.StatusBadRequest, "bad_code", err.Error())
				}
				c.Response().Header().Set("Cache-Control", "private, max-age=3600")
				return c.Blob(http.StatusOK, "image/png", buf.Bytes())
			}},
	}
}
