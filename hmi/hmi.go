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

	"github.com/tracline/tracline/line"
)

// New returns the API handler for a runner.
func New(r *line.Runner, demo bool, log *slog.Logger) http.Handler {
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(log)
	a := &api{r: r, demo: demo}
	e.GET("/api/line", a.state)
	e.POST("/api/line/commands", a.command)
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

// errorHandler is the one place errors become HTTP responses.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(c *echo.Context, err error) {
		status, msg := http.StatusInternalServerError, "internal error"
		var br badRequest
		var he *echo.HTTPError
		switch {
		case errors.As(err, &br):
			status, msg = http.StatusBadRequest, br.msg
		case errors.Is(err, line.ErrInvalidCommand):
			status, msg = http.StatusConflict, err.Error()
		case errors.As(err, &he):
			status, msg = he.Code, fmt.Sprint(he.Message)
		default:
			log.Error("api", "path", c.Request().URL.Path, "err", err)
		}
		if rerr := c.JSON(status, map[string]string{"error": msg}); rerr != nil {
			log.Error("api: writing error", "err", rerr)
		}
	}
}
