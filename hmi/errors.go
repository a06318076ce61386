package hmi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
)

// apiError is an error the API answers with: a stable code, an HTTP
// status and, optionally, a detail (shown after the translated message;
// it names the field or the state machine's own words).
type apiError struct {
	status int
	code   string
	detail string
}

func (e *apiError) Error() string { return e.code + ": " + e.detail }

func fail(status int, code, detail string) error { return &apiError{status, code, detail} }

// messages are the error codes' texts, Chinese first. A code, once
// published, never changes meaning; add new ones instead.
var messages = map[string][2]string{
	"unauthenticated": {"请先登录", "please log in"},
	"session_expired": {"登录已超时，请重新登录", "your session timed out, please log in again"},
	"forbidden":       {"您的角色无权执行此操作", "your role may not do this"},
	"csrf":            {"请求缺少有效的安全令牌（请刷新页面）", "the request lacks a valid security token (reload the page)"},
	"bad_origin":      {"请求来自其他站点，已拒绝", "the request came from another site and was refused"},
	"bad_body":        {"请求内容有误", "the request body is wrong"},
	"too_large":       {"请求内容过大", "the request body is too large"},
	"unsupported":     {"请求必须是 JSON（Content-Type: application/json）", "the request must be JSON (Content-Type: application/json)"},
	"bad_command":     {"未知的命令", "unknown command"},
	"refused":         {"产线当前状态不允许此操作", "the line's state does not allow this"},
	"bad_rework":      {"返工请求有误", "the rework request is wrong"},
	"bad_code":        {"无法识别的追溯码", "not a trace code this controller reads"},
	"not_found":       {"未找到", "not found"},
	"no_route":        {"没有这个接口", "no such API"},
	"method":          {"此接口不支持该方法", "this API does not take that method"},
	"bad_login":       {"用户名或密码错误", "wrong user name or password"},
	"locked":          {"登录失败次数过多，账户已临时锁定", "too many failed logins: the account is locked for a while"},
	"rate_limited":    {"登录尝试过于频繁，请稍后再试", "too many login attempts, try again later"},
	"expired":         {"账户的访问期限已过", "the account's access has expired"},
	"disabled":        {"账户已停用", "the account is disabled"},
	"invalid":         {"账户信息有误", "the account request is wrong"},
	"exists":          {"账户已存在", "the account exists already"},
	"setup_done":      {"系统已初始化", "setup is done already"},
	"bad_token":       {"初始化令牌错误或已使用", "wrong or used setup token"},
	"unavailable":     {"暂不可用", "not available now"},
	"internal":        {"内部错误，已记录", "internal error (logged)"},
	"bad_work_order":  {"工单有误", "the work order is refused"},
	"batch_open":      {"产线上已有未完成的批次", "a batch is open on the line"},
	"no_batch":        {"产线上没有批次", "no batch on the line"},
	"bad_code_file":   {"码段文件有误，未导入", "the code file is refused, nothing imported"},

	// QA's screens (api_qa.go).
	"bad_filter":            {"筛选条件有误", "the filter is wrong"},
	"bad_signature_request": {"签名请求不完整", "the signature request is incomplete"},
	"bad_signature":         {"签名被拒绝：用户名或密码错误，或无签名权限", "signature refused: wrong password, or not allowed to sign"},
	"blocked":               {"放行被阻止", "release blocked"},
	"sign_refused":          {"签名被拒绝", "signature refused"},
	"busy":                  {"正在进行中，请稍候", "already running, please wait"},
	"no_font":               {"缺少 PDF 中文字体（请安装软件包）", "no Chinese font for the PDF (install the package)"},
}

// lang is the caller's language: the "lang" cookie, else Accept-Language,
// else Chinese.
func lang(r *http.Request) int {
	if c, err := r.Cookie("lang"); err == nil {
		if c.Value == "en" {
			return 1
		}
		if c.Value == "zh" {
			return 0
		}
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Accept-Language")), "en") {
		return 1
	}
	return 0
}

// ErrorDoc is every error's body.
type ErrorDoc struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify turns any error into an apiError.
func classify(err error) *apiError {
	var ae *apiError
	var sc echo.HTTPStatusCoder
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", ""}
	case errors.Is(err, line.ErrInvalidCommand), errors.Is(err, aggregation.ErrRefused):
		return &apiError{http.StatusConflict, "refused", refusal(err)}
	case errors.Is(err, line.ErrNoBatch): // e.g. a rework with no batch on the line
		return &apiError{http.StatusConflict, "no_batch", ""}
	case errors.Is(err, line.ErrBadRework):
		return &apiError{http.StatusBadRequest, "bad_rework", err.Error()}
	case errors.Is(err, aggregation.ErrNotFound), errors.Is(err, accounts.ErrNotFound):
		return &apiError{http.StatusNotFound, "not_found", err.Error()}
	case errors.Is(err, accounts.ErrBadLogin):
		return &apiError{http.StatusUnauthorized, "bad_login", ""}
	case errors.Is(err, accounts.ErrLocked):
		return &apiError{http.StatusTooManyRequests, "locked", ""}
	case errors.Is(err, accounts.ErrRateLimited):
		return &apiError{http.StatusTooManyRequests, "rate_limited", ""}
	case errors.Is(err, accounts.ErrExpired):
		return &apiError{http.StatusForbidden, "expired", ""}
	case errors.Is(err, accounts.ErrDisabled):
		return &apiError{http.StatusForbidden, "disabled", ""}
	case errors.Is(err, accounts.ErrForbidden):
		return &apiError{http.StatusForbidden, "forbidden", ""}
	case errors.Is(err, accounts.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid", strings.TrimPrefix(err.Error(), accounts.ErrInvalid.Error()+": ")}
	case errors.Is(err, accounts.ErrExists):
		return &apiError{http.StatusConflict, "exists", ""}
	case errors.Is(err, accounts.ErrSetupDone):
		return &apiError{http.StatusConflict, "setup_done", ""}
	case errors.Is(err, accounts.ErrBadToken):
		return &apiError{http.StatusForbidden, "bad_token", ""}
	case errors.As(err, &sc):
		switch sc.StatusCode() {
		case http.StatusNotFound:
			return &apiError{http.StatusNotFound, "no_route", ""}
		case http.StatusMethodNotAllowed:
			return &apiError{http.StatusMethodNotAllowed, "method", ""}
		case http.StatusRequestEntityTooLarge:
			return &apiError{http.StatusRequestEntityTooLarge, "too_large", ""}
		case http.StatusUnsupportedMediaType:
			return &apiError{http.StatusUnsupportedMediaType, "unsupported", ""}
		}
		if c := sc.StatusCode(); c >= 400 && c < 500 {
			return &apiError{c, "bad_body", http.StatusText(c)}
		}
	}
	return &apiError{http.StatusInternalServerError, "internal", ""}
}

// refusal is the state machine's refusal without the sentinel's prefix.
func refusal(err error) string {
	s := err.Error()
	if i := strings.Index(s, line.ErrInvalidCommand.Error()+": "); i >= 0 {
		return s[i+len(line.ErrInvalidCommand.Error())+2:]
	}
	return s
}

// errorHandler is the one place errors become HTTP responses.
func (s *Server) errorHandler(c *echo.Context, err error) {
	ae := classify(err)
	if ae.code == "internal" {
		s.log.Error("hmi", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if resp, uerr := echo.UnwrapResponse(c.Response()); uerr == nil && resp.Committed {
		return
	}
	msg := messages[ae.code][lang(c.Request())]
	if ae.detail != "" {
		msg += ": " + ae.detail
	}
	if ae.status == http.StatusUnauthorized && ae.code == "unauthenticated" {
		c.Response().Header().Set("WWW-Authenticate", `Cookie realm="tracline"`)
	}
	if rerr := c.JSON(ae.status, ErrorDoc{Code: ae.code, Message: msg}); rerr != nil {
		s.log.Error("hmi: writing error", "err", rerr)
	}
}
