// Package hmi is the controller's web server (echo v5): for now the line's
// JSON API — state, live counters and operator commands — on which the
// operator, QA and engineer screens will sit. It talks to the line only
// through line.Runner, never to a device. Errors become HTTP responses in
// exactly one place (errorHandler).
//
// Who may import it: cmd/linectl.
package hmi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// New returns the API handler for a runner.
func New(r *line.Runner, demo bool, log *slog.Logger) http.Handler {
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(log)
	a := &api{r: r, demo: demo}
	e.GET("/api/line", a.state)
	e.POST("/api/line/commands", a.command)
	e.POST("/api/line/rework", a.rework)
	return e
}

type api struct {
	r    *line.Runner
	demo bool
}

type stateDoc struct {
	Demo     bool             `json:"demo"`
	Line     line.Snapshot    `json:"line"`
	Verdicts line.StatsReport `json:"verdict_latency_ms"`
}

func (a *api) state(c *echo.Context) error {
	return c.JSON(http.StatusOK, stateDoc{Demo: a.demo, Line: a.r.Snapshot(), Verdicts: a.r.Stats()})
}

type commandReq struct {
	Command string `json:"command"`
	User    string `json:"user"`
}

// badRequest is an error the client caused; its text is safe to show.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

func (a *api) command(c *echo.Context) error {
	var req commandReq
	if err := c.Bind(&req); err != nil {
		return badRequest{"body: want JSON {\"command\": \"start\", \"user\": \"…\"}: " + err.Error()}
	}
	cmd, err := line.ParseCommand(strings.TrimSpace(req.Command))
	if err != nil {
		return badRequest{"command: " + err.Error()}
	}
	if strings.TrimSpace(req.User) == "" {
		return badRequest{"user: must say who gives the command"}
	}
	if err := a.r.Command(c.Request().Context(), cmd, req.User); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.r.Snapshot())
}

// reworkReq is a manual rework; codes may be given as scanned (any form
// the scan parser knows: GS1 element string, bracketed, Digital Link, nmpa20).
type reworkReq struct {
	Kind   string `json:"kind"`
	Code   string `json:"code"`
	Old    string `json:"old"`
	New    string `json:"new"`
	Reason string `json:"reason"`
	User   string `json:"user"`
}

func (a *api) rework(c *echo.Context) error {
	var req reworkReq
	if err := c.Bind(&req); err != nil {
		return badRequest{"body: want JSON {\"kind\", \"code\", \"reason\", \"user\"}: " + err.Error()}
	}
	op := line.ReworkOp{Kind: line.ReworkKind(strings.TrimSpace(req.Kind)), Reason: req.Reason, User: req.User}
	for _, f := range []struct {
		name string
		raw  string
		dst  *tracecode.Code
	}{{"code", req.Code, &op.Code}, {"old", req.Old, &op.Old}, {"new", req.New, &op.New}} {
		if strings.TrimSpace(f.raw) == "" {
			continue
		}
		p, err := tracecode.Parse(f.raw)
		if err != nil {
			return badRequest{f.name + ": " + err.Error()}
		}
		*f.dst = p.Code
	}
	if err := a.r.Rework(c.Request().Context(), op); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"done": string(op.Kind), "code": string(op.Code)})
}

// errorHandler is the one place errors become HTTP responses.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(c *echo.Context, err error) {
		status, msg := http.StatusInternalServerError, "internal error"
		var br badRequest
		var he *echo.HTTPError
		var sc echo.HTTPStatusCoder
		switch {
		case errors.As(err, &br):
			status, msg = http.StatusBadRequest, br.msg
		case errors.Is(err, line.ErrInvalidCommand), errors.Is(err, aggregation.ErrRefused):
			status, msg = http.StatusConflict, err.Error()
		case errors.Is(err, line.ErrBadRework):
			status, msg = http.StatusBadRequest, err.Error()
		case errors.Is(err, aggregation.ErrNotFound):
			status, msg = http.StatusNotFound, err.Error()
		case errors.As(err, &he):
			status, msg = he.Code, fmt.Sprint(he.Message)
		case errors.As(err, &sc):
			// echo's own routing errors (unknown path, wrong method).
			status, msg = sc.StatusCode(), http.StatusText(sc.StatusCode())
		default:
			log.Error("api", "path", c.Request().URL.Path, "err", err)
		}
		if rerr := c.JSON(status, map[string]string{"error": msg}); rerr != nil {
			log.Error("api: writing error", "err", rerr)
		}
	}
}
