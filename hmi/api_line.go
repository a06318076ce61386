package hmi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// LineDoc is GET /api/v1/line: the overview and the verdict latencies.
type LineDoc struct {
	Overview
	Verdicts line.StatsReport `json:"verdict_latency_ms"`
}

// CommandReq is an operator's command; the operator is the logged-in user.
type CommandReq struct {
	Command string `json:"command"`
}

// ReworkReq is a manual rework; codes as scanned (GS1 element string,
// bracketed, Digital Link, nmpa20). The user is the logged-in one.
type ReworkReq struct {
	Kind   string `json:"kind"`
	Code   string `json:"code,omitempty"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
	Reason string `json:"reason"`
}

// ReworkDoc answers a rework.
type ReworkDoc struct {
	Done string `json:"done"`
	Code string `json:"code"`
}

func (s *Server) lineRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/line", Roles: anyone, Tag: "line",
			Summary: "The line overview and verdict latencies", Response: LineDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				return c.JSON(http.StatusOK, s.lineDoc())
			}},
		{Method: http.MethodGet, Path: "/api/v1/line/live", Roles: anyone, Tag: "line", ContentType: "text/event-stream",
			Summary:  "Server-sent events: an 'overview' event (the Overview as JSON) at every change, coalesced to ≤ 20 per second",
			Response: "", Handler: s.liveStream},
		{Method: http.MethodPost, Path: "/api/v1/line/commands", Roles: operators, Tag: "line",
			Summary: "Give the line a command (reset, start, stop, hold, unhold, suspend, unsuspend, complete, abort, clear, acknowledge); refusals are 409 with the state machine's words",
			Request: CommandReq{}, Response: LineDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				var req CommandReq
				if err := decode(c, &req); err != nil {
					return err
				}
				cmd, err := line.ParseCommand(strings.TrimSpace(req.Command))
				if err != nil {
					return fail(http.StatusBadRequest, "bad_command", fmt.Sprintf("%q", req.Command))
				}
				err = s.cfg.Line.Command(c.Request().Context(), cmd, u.ID)
				if _, bare := s.cfg.Line.(*line.Runner); bare {
					// A bare runner journals no command (the multi-batch
					// line does): the HMI records it, refused or not.
					answer := "accepted"
					if err != nil {
						answer = err.Error()
					}
					b, _ := json.Marshal(map[string]string{"command": cmd.String(), "answer": answer})
					if jerr := s.cfg.Journal.Record(c.Request().Context(), accounts.Entry{Type: "command", Batch: s.cfg.Batch,
						Value: string(b)}, u.ID); jerr != nil {
						s.log.Error("hmi: journaling a command", "user", u.ID, "command", cmd.String(), "err", jerr)
					}
				}
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, s.lineDoc())
			}},
		{Method: http.MethodPost, Path: "/api/v1/line/rework", Roles: operators, Tag: "line",
			Summary: "Manual rework: decommission, sample (code), unpack, reprint (parent code), replace (parent code, old, new)",
			Request: ReworkReq{}, Response: ReworkDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				var req ReworkReq
				if err := decode(c, &req); err != nil {
					return err
				}
				op := line.ReworkOp{Kind: line.ReworkKind(strings.TrimSpace(req.Kind)), Reason: req.Reason, User: u.ID}
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
						return fail(http.StatusBadRequest, "bad_code", f.name+": "+err.Error())
					}
					*f.dst = p.Code
				}
				if err := s.cfg.Line.Rework(c.Request().Context(), op); err != nil {
					return err
				}
				return c.JSON(http.StatusOK, ReworkDoc{Done: string(op.Kind), Code: string(op.Code)})
			}},
		{Method: http.MethodPost, Path: "/api/v1/line/alarms/:id/ack", Roles: operators, Tag: "line",
			Summary: "Acknowledge an alarm (journaled with the user)", Response: Alarm{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				al, err := s.live.ack(c.Request().Context(), c.Param("id"), *u)
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, al)
			}},
	}
}

// liveStream serves server-sent events until the client or the server goes.
func (s *Server) liveStream(c *echo.Context, u *accounts.User) error {
	w := c.Response()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ch, leave := s.live.join()
	defer leave()
	ctx := c.Request().Context()
	sess, _ := c.Get("session").(session)
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-ch:
			// The stream ends with the session (idle, logged out) or the
			// account's access (an inspector's grant ended).
			if !s.sessions.alive(sess.id) {
				return nil
			}
			if _, err := s.cfg.Accounts.Get(u.ID); err != nil {
				return nil
			}
			if _, err := fmt.Fprintf(w, "event: overview\ndata: %s\n\n", b); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
	}
}

// lineDoc is the overview with the line's latest snapshot.
func (s *Server) lineDoc() LineDoc {
	snap := s.cfg.Line.Snapshot()
	s.live.mu.Lock()
	ov := s.live.ov
	s.live.mu.Unlock()
	ov.Line = snap
	return LineDoc{Overview: ov, Verdicts: s.cfg.Line.Stats()}
}
