package hmi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// The operator's screens: start a batch from a work order, the code pools
// and their import, the manual aggregation station, rework with its
// preview. They need the multi-batch line (Config.Overview a *line.Line):
// with a bare runner these routes answer 503 "unavailable".

// Operator is what the operator's screens need of the multi-batch line;
// *line.Line satisfies it (found on Config.Overview by type assertion).
type Operator interface {
	Products() []line.ProductInfo
	CheckWorkOrder(ctx context.Context, wo line.WorkOrder) []line.Problem
	StartBatch(ctx context.Context, wo line.WorkOrder, user string) (aggregation.BatchSpec, error)
	Pools(ctx context.Context) ([]line.PoolView, error)
	ImportCodeFile(ctx context.Context, pool, name string, data []byte, user string) (line.ImportResult, error)
	Station() line.StationView
	StationBegin(ctx context.Context, scan, user string) (line.StationView, error)
	StationBeginNew(ctx context.Context, level tracecode.Level, user string) (line.StationView, error)
	StationAdd(ctx context.Context, scan, user string) (line.StationView, error)
	StationClose(ctx context.Context, reason, user string) (line.StationView, error)
	StationCancel(ctx context.Context, user string) line.StationView
	StationReprint(ctx context.Context, parent tracecode.Code, reason, user string) error
	PreviewRework(ctx context.Context, op line.ReworkOp) (line.ReworkPreview, error)
}

// ImportMaxBody is the body limit of the code-file import route: a code
// file travels base64 in JSON, so a file of up to 24 MiB (about 1.1
// million 20-digit codes) fits. Every other route keeps Config.MaxBody.
const ImportMaxBody = 32 << 20

// bodyLimit is the largest body a request may carry: its route's own
// limit (Route.MaxBody) or Config.MaxBody.
func (s *Server) bodyLimit(c *echo.Context) int64 {
	m, p := c.Request().Method, c.Path()
	for _, r := range s.routes {
		if r.MaxBody > 0 && r.Method == m && r.Path == p {
			return r.MaxBody
		}
	}
	return s.cfg.MaxBody
}

// operator is the line behind the operator's screens, or a 503.
// withOperator is a handler that needs the operator's line.
func withOperator(s *Server, fn func(c *echo.Context, u *accounts.User, op Operator) error) func(*echo.Context, *accounts.User) error {
	return func(c *echo.Context, u *accounts.User) error {
		op, err := s.operator()
		if err != nil {
			return err
		}
		return fn(c, u, op)
	}
}

// withOperatorBody is withOperator with the request body decoded (strictly)
// into a T first.
func withOperatorBody[T any](s *Server, fn func(c *echo.Context, u *accounts.User, op Operator, req T) error) func(*echo.Context, *accounts.User) error {
	return func(c *echo.Context, u *accounts.User) error {
		var req T
		if err := decode(c, &req); err != nil {
			return err
		}
		op, err := s.operator()
		if err != nil {
			return err
		}
		return fn(c, u, op, req)
	}
}

func (s *Server) operator() (Operator, error) {
	if op, ok := s.cfg.Overview.(Operator); ok {
		return op, nil
	}
	return nil, fail(http.StatusServiceUnavailable, "unavailable", "this controller runs a single batch (no work orders)")
}

// ProblemsDoc answers a work-order check: every problem, each naming its
// field (none: the batch would start).
type ProblemsDoc struct {
	Problems []line.Problem `json:"problems"`
}

// StartDoc answers a started batch.
type StartDoc struct {
	Batch   string `json:"batch"`
	Product string `json:"product"`
}

// PoolsDoc is every code pool, and the warnings of the batch on the line
// (codes that would run out before its planned quantity).
type PoolsDoc struct {
	Pools    []line.PoolView  `json:"pools"`
	Warnings []line.CodesLeft `json:"warnings"`
}

// ImportReq is a platform code file (码段 text or a zip of such files),
// base64 in JSON; at most ImportMaxBody in all.
type ImportReq struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// ImportDoc answers an import: what was added (200), or (422, with the
// error's code bad_code_file and message) why nothing was — the bad lines
// (the first ones; Total counts them all).
type ImportDoc struct {
	Code     string             `json:"code,omitempty"`
	Message  string             `json:"message,omitempty"`
	Imported *line.ImportResult `json:"imported,omitempty"`
	Total    int                `json:"total_problems,omitempty"`
	BadLines []BadLine          `json:"bad_lines"`
}

// BadLine is one refused line of a code file.
type BadLine struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// ScanReq is one scan at the station (any form the parser knows).
type ScanReq struct {
	Scan string `json:"scan"`
}

// NewParentReq opens a parent with a new code of a level.
type NewParentReq struct {
	Level int `json:"level"`
}

// ReasonReq closes a partial parent.
type ReasonReq struct {
	Reason string `json:"reason"`
}

// ReprintReq prints a parent's label again.
type ReprintReq struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// StationDoc is the station after a step; Refused, when set, is why the
// scan was refused (a stable reason: unreadable, not-ours, foreign,
// wrong-level, duplicate, packed, not-commissioned, parent-used,
// no-parent, parent-open, no-batch, label-pending) — nothing changed.
type StationDoc struct {
	Station line.StationView `json:"station"`
	Refused *line.ScanError  `json:"refused,omitempty"`
}

// opErr maps the line's refusals of the operator's screens to API errors.
func opErr(err error) error {
	var woe *line.WorkOrderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &woe):
		return fail(http.StatusUnprocessableEntity, "bad_work_order", woe.Error())
	case errors.Is(err, line.ErrBatchOpen):
		return fail(http.StatusConflict, "batch_open", "")
	case errors.Is(err, line.ErrNoBatch):
		return fail(http.StatusConflict, "no_batch", "")
	}
	return err
}

// reworkOp turns a rework request into the line's op (codes parsed).
func reworkOp(req ReworkReq) (line.ReworkOp, error) {
	op := line.ReworkOp{Kind: line.ReworkKind(strings.TrimSpace(req.Kind)), Reason: req.Reason}
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
			return op, fail(http.StatusBadRequest, "bad_code", f.name+": "+err.Error())
		}
		*f.dst = p.Code
	}
	return op, nil
}

func (s *Server) operatorRoutes() []Route {
	// station answers a station step: a refused scan is an answer, not an error.
	station := func(c *echo.Context, v line.StationView, err error) error {
		var se *line.ScanError
		if errors.As(err, &se) {
			op, _ := s.operator()
			return c.JSON(http.StatusOK, StationDoc{Station: op.Station(), Refused: se})
		}
		if err != nil {
			return opErr(err)
		}
		return c.JSON(http.StatusOK, StationDoc{Station: v})
	}
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/workorders/products", Roles: operators, Tag: "operator",
			Summary: "The products of the loaded master data a work order may name (levels, ratios, pools)", Response: []line.ProductInfo{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				op, err := s.operator()
				if err != nil {
					return err
				}
				p := op.Products()
				if p == nil {
					p = []line.ProductInfo{}
				}
				return c.JSON(http.StatusOK, p)
			}},
		{Method: http.MethodPost, Path: "/api/v1/workorders/check", Roles: operators, Tag: "operator",
			Summary: "Check a work order without starting it: every problem, naming its field (codes short: the pool and how many are missing)",
			Request: line.WorkOrder{}, Response: ProblemsDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				var wo line.WorkOrder
				if err := decode(c, &wo); err != nil {
					return err
				}
				op, err := s.operator()
				if err != nil {
					return err
				}
				p := op.CheckWorkOrder(c.Request().Context(), wo)
				if p == nil {
					p = []line.Problem{}
				}
				return c.JSON(http.StatusOK, ProblemsDoc{Problems: p})
			}},
		{Method: http.MethodPost, Path: "/api/v1/workorders", Roles: operators, Tag: "operator",
			Summary: "Start a batch from a work order (journaled with the user); refused: 422 bad_work_order (check it first for the problems by field), 409 batch_open",
			Request: line.WorkOrder{}, Response: StartDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				var wo line.WorkOrder
				if err := decode(c, &wo); err != nil {
					return err
				}
				op, err := s.operator()
				if err != nil {
					return err
				}
				if wo.Source == "" {
					wo.Source = "hmi"
				}
				spec, err := op.StartBatch(c.Request().Context(), wo, u.ID)
				if err != nil {
					return opErr(err)
				}
				return c.JSON(http.StatusOK, StartDoc{Batch: spec.ID, Product: wo.Product})
			}},
		{Method: http.MethodGet, Path: "/api/v1/pools", Roles: operators, Tag: "operator",
			Summary: "The code pools: what each holds, has handed out and had returned; the running batch's warnings", Response: PoolsDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				op, err := s.operator()
				if err != nil {
					return err
				}
				pools, err := op.Pools(c.Request().Context())
				if err != nil {
					return err
				}
				doc := PoolsDoc{Pools: pools, Warnings: []line.CodesLeft{}}
				if doc.Pools == nil {
					doc.Pools = []line.PoolView{}
				}
				for _, cl := range s.cfg.Overview.Snapshot().Codes {
					if cl.Warning != "" {
						doc.Warnings = append(doc.Warnings, cl)
					}
				}
				return c.JSON(http.StatusOK, doc)
			}},
		{Method: http.MethodPost, Path: "/api/v1/pools/:pool/import", Roles: operators, Tag: "operator", MaxBody: ImportMaxBody,
			Summary: "Import a platform code file (码段 text, one 20-digit code a line, or a zip), base64 in JSON, body ≤ 32 MiB; all or nothing: a refused file changes nothing and its bad lines are listed",
			Request: ImportReq{}, Response: ImportDoc{},
			Handler: withOperatorBody(s, func(c *echo.Context, u *accounts.User, op Operator, req ImportReq) error {
				if len(req.Data) == 0 {
					return fail(http.StatusBadRequest, "bad_body", "data: empty file")
				}
				name := strings.TrimSpace(req.Name)
				if name == "" {
					name = "upload"
				}
				res, err := op.ImportCodeFile(c.Request().Context(), c.Param("pool"), name, req.Data, u.ID)
				var cfe *tracecode.CodeFileError
				switch {
				case errors.As(err, &cfe):
					doc := ImportDoc{Code: "bad_code_file", Message: messages["bad_code_file"][lang(c.Request())] + ": " + err.Error(),
						Total: cfe.Total, BadLines: []BadLine{}}
					for _, p := range cfe.Problems {
						doc.BadLines = append(doc.BadLines, BadLine{File: p.File, Line: p.Line, Reason: p.Reason})
					}
					return c.JSON(http.StatusUnprocessableEntity, doc)
				case err != nil:
					return fail(http.StatusUnprocessableEntity, "bad_code_file", err.Error())
				}
				return c.JSON(http.StatusOK, ImportDoc{Imported: &res, BadLines: []BadLine{}})
			})},
		{Method: http.MethodGet, Path: "/api/v1/station", Roles: operators, Tag: "operator",
			Summary: "The manual aggregation station: the open parent and what was scanned into it", Response: StationDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				op, err := s.operator()
				if err != nil {
					return err
				}
				return c.JSON(http.StatusOK, StationDoc{Station: op.Station()})
			}},
		{Method: http.MethodPost, Path: "/api/v1/station/scan", Roles: operators, Tag: "operator",
			Summary: "One scan at the station: opens a parent when none is open, else adds a child (packed at the ratio); a refused scan answers 200 with refused.reason and changes nothing",
			Request: ScanReq{}, Response: StationDoc{},
			Handler: withOperatorBody(s, func(c *echo.Context, u *accounts.User, op Operator, req ScanReq) error {
				ctx := c.Request().Context()
				if op.Station().Parent == "" {
					v, err := op.StationBegin(ctx, req.Scan, u.ID)
					return station(c, v, err)
				}
				v, err := op.StationAdd(ctx, req.Scan, u.ID)
				return station(c, v, err)
			})},
		{Method: http.MethodPost, Path: "/api/v1/station/new", Roles: operators, Tag: "operator",
			Summary: "Open a parent with a new code of a level (its label printed when it is packed)",
			Request: NewParentReq{}, Response: StationDoc{},
			Handler: withOperatorBody(s, func(c *echo.Context, u *accounts.User, op Operator, req NewParentReq) error {
				if req.Level < 2 || req.Level > 9 {
					return fail(http.StatusBadRequest, "bad_body", "level: a parent level is 2..9")
				}
				v, err := op.StationBeginNew(c.Request().Context(), tracecode.Level(req.Level), u.ID)
				return station(c, v, err)
			})},
		{Method: http.MethodPost, Path: "/api/v1/station/close", Roles: operators, Tag: "operator",
			Summary: "Pack the open parent short of its ratio (partial), with a reason",
			Request: ReasonReq{}, Response: StationDoc{},
			Handler: withOperatorBody(s, func(c *echo.Context, u *accounts.User, op Operator, req ReasonReq) error {
				if strings.TrimSpace(req.Reason) == "" {
					return fail(http.StatusBadRequest, "bad_body", "reason: required")
				}
				v, err := op.StationClose(c.Request().Context(), req.Reason, u.ID)
				return station(c, v, err)
			})},
		{Method: http.MethodPost, Path: "/api/v1/station/cancel", Roles: operators, Tag: "operator",
			Summary: "Drop the open parent (nothing was written for it)", Response: StationDoc{},
			Handler: withOperator(s, func(c *echo.Context, u *accounts.User, op Operator) error {
				return c.JSON(http.StatusOK, StationDoc{Station: op.StationCancel(c.Request().Context(), u.ID)})
			})},
		{Method: http.MethodPost, Path: "/api/v1/station/reprint", Roles: operators, Tag: "operator",
			Summary: "Print a packed parent's label again on the rework label printer (journaled)",
			Request: ReprintReq{}, Response: StationDoc{},
			Handler: withOperatorBody(s, func(c *echo.Context, u *accounts.User, op Operator, req ReprintReq) error {
				p, err := tracecode.Parse(req.Code)
				if err != nil {
					return fail(http.StatusBadRequest, "bad_code", "code: "+err.Error())
				}
				if strings.TrimSpace(req.Reason) == "" {
					return fail(http.StatusBadRequest, "bad_body", "reason: required")
				}
				if err := op.StationReprint(c.Request().Context(), p.Code, req.Reason, u.ID); err != nil {
					return opErr(err)
				}
				return c.JSON(http.StatusOK, StationDoc{Station: op.Station()})
			})},
		{Method: http.MethodPost, Path: "/api/v1/line/rework/preview", Roles: operators, Tag: "operator",
			Summary: "What a rework would change (each code's state before and after, labels) or why it would be refused; changes nothing",
			Request: ReworkReq{}, Response: line.ReworkPreview{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				var req ReworkReq
				if err := decode(c, &req); err != nil {
					return err
				}
				op, err := s.operator()
				if err != nil {
					return err
				}
				rop, err := reworkOp(req)
				if err != nil {
					return err
				}
				p, err := op.PreviewRework(c.Request().Context(), rop)
				if err != nil {
					return opErr(err)
				}
				if p.Changes == nil {
					p.Changes = []line.CodeChange{}
				}
				return c.JSON(http.StatusOK, p)
			}},
	}
}
