package hmi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/tracline/tracline/internal/accounts"
)

// decode reads a JSON body strictly (unknown fields, trailing data and
// empty bodies refused) into v.
func decode(c *echo.Context, v any) error {
	d := json.NewDecoder(c.Request().Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return fail(http.StatusBadRequest, "bad_body", "empty body")
		}
		return fail(http.StatusBadRequest, "bad_body", err.Error())
	}
	if d.More() {
		return fail(http.StatusBadRequest, "bad_body", "data after the JSON value")
	}
	return nil
}

// SessionDoc is who is logged in.
type SessionDoc struct {
	User  accounts.User `json:"user"`
	CSRF  string        `json:"csrf"` // send back as X-CSRF-Token on every POST/PUT/DELETE
	Demo  bool          `json:"demo"`
	Idle  int           `json:"idle_timeout_s"`
	Batch string        `json:"batch"`
}

// LoginReq logs in.
type LoginReq struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// SetupDoc says whether the first admin is still to be made.
type SetupDoc struct {
	Needed bool `json:"needed"`
	Demo   bool `json:"demo"`
}

// SetupReq makes the first admin with the one-time token from the log.
type SetupReq struct {
	Token    string `json:"token"`
	User     string `json:"user"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// PasswordReq changes one's own password.
type PasswordReq struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// AccountReq creates an account (an inspector's must expire).
type AccountReq struct {
	User     string          `json:"user"`
	Name     string          `json:"name"`
	Roles    []accounts.Role `json:"roles"`
	Password string          `json:"password"`
	Expires  time.Time       `json:"expires,omitzero"`
}

// RolesReq sets an account's roles.
type RolesReq struct {
	Roles []accounts.Role `json:"roles"`
}

// AccountStateReq resets a password or disables/enables an account.
type AccountStateReq struct {
	Password string `json:"password,omitempty"`
	Disabled *bool  `json:"disabled,omitempty"`
}

// OK is the answer of a call that returns nothing else.
type OK struct {
	OK bool `json:"ok"`
}

func (s *Server) sessionDoc(u accounts.User, csrf string) SessionDoc {
	return SessionDoc{User: u, CSRF: csrf, Demo: s.cfg.Demo, Idle: int(s.cfg.IdleTimeout.Seconds()), Batch: s.cfg.Batch}
}

func (s *Server) sessionRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/session", Roles: anyone, Tag: "session",
			Summary: "Who is logged in, and the CSRF token", Response: SessionDoc{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				sess, _ := c.Get("session").(session)
				return c.JSON(http.StatusOK, s.sessionDoc(*u, sess.csrf))
			}},
		{Method: http.MethodPost, Path: "/api/v1/session", Tag: "session",
			Summary: "Log in (rate-limited per address, lock-out per user); sets the session cookie", Request: LoginReq{}, Response: SessionDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				var req LoginReq
				if err := decode(c, &req); err != nil {
					return err
				}
				u, err := s.cfg.Accounts.Login(c.Request().Context(), strings.TrimSpace(req.User), req.Password, c.RealIP())
				if err != nil {
					return err
				}
				if old, err := c.Request().Cookie(sessionCookie); err == nil {
					s.sessions.end(old.Value)
				}
				sess := s.sessions.create(u.ID)
				s.setCookie(c, sess.id, 0)
				return c.JSON(http.StatusOK, s.sessionDoc(u, sess.csrf))
			}},
		{Method: http.MethodDelete, Path: "/api/v1/session", Roles: anyone, Tag: "session",
			Summary: "Log out", Response: OK{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				sess, _ := c.Get("session").(session)
				s.sessions.end(sess.id)
				s.cfg.Accounts.Logout(c.Request().Context(), u.ID, "user")
				s.setCookie(c, "", -1)
				return c.JSON(http.StatusOK, OK{true})
			}},
		{Method: http.MethodGet, Path: "/api/v1/setup", Tag: "session",
			Summary: "Whether the first admin is still to be created", Response: SetupDoc{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				return c.JSON(http.StatusOK, SetupDoc{Needed: s.cfg.Accounts.NeedsSetup(), Demo: s.cfg.Demo})
			}},
		{Method: http.MethodPost, Path: "/api/v1/setup", Tag: "session",
			Summary: "Create the first admin with the one-time token printed in the log", Request: SetupReq{}, Response: OK{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				var req SetupReq
				if err := decode(c, &req); err != nil {
					return err
				}
				if _, err := s.cfg.Accounts.Setup(c.Request().Context(), req.Token, strings.TrimSpace(req.User), req.Name, req.Password, false); err != nil {
					return err
				}
				return c.JSON(http.StatusOK, OK{true})
			}},
		{Method: http.MethodPost, Path: "/api/v1/session/password", Roles: staff, Tag: "session",
			Summary: "Change one's own password (the old one required)", Request: PasswordReq{}, Response: OK{},
			Handler: func(c *echo.Context, u *accounts.User) error {
				var req PasswordReq
				if err := decode(c, &req); err != nil {
					return err
				}
				if err := s.cfg.Accounts.ChangePassword(c.Request().Context(), u.ID, req.Old, req.New); err != nil {
					return err
				}
				return c.JSON(http.StatusOK, OK{true})
			}},
	}
}

func (s *Server) accountRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/accounts", Roles: admins, Tag: "accounts",
			Summary: "Every account", Response: []accounts.User{},
			Handler: func(c *echo.Context, _ *accounts.User) error {
				return c.JSON(http.StatusOK, s.cfg.Accounts.List())
			}},
		{Method: http.MethodPost, Path: "/api/v1/accounts", Roles: admins, Tag: "accounts", Status: http.StatusCreated,
			Summary: "Create an account; an inspector's access ends at expires (≤ 90 days)", Request: AccountReq{}, Response: accounts.User{},
			Handler: func(c *echo.Context, admin *accounts.User) error {
				var req AccountReq
				if err := decode(c, &req); err != nil {
					return err
				}
				u, err := s.cfg.Accounts.Create(c.Request().Context(), *admin,
					accounts.User{ID: strings.TrimSpace(req.User), Name: req.Name, Roles: req.Roles, Expires: req.Expires}, req.Password)
				if err != nil {
					return err
				}
				return c.JSON(http.StatusCreated, u)
			}},
		{Method: http.MethodPut, Path: "/api/v1/accounts/:id/roles", Roles: admins, Tag: "accounts",
			Summary: "Set an account's roles (ends its sessions)", Request: RolesReq{}, Response: accounts.User{},
			Handler: func(c *echo.Context, admin *accounts.User) error {
				var req RolesReq
				if err := decode(c, &req); err != nil {
					return err
				}
				u, err := s.cfg.Accounts.SetRoles(c.Request().Context(), *admin, c.Param("id"), req.Roles)
				if err != nil {
					return err
				}
				s.sessions.endUser(u.ID)
				return c.JSON(http.StatusOK, u)
			}},
		{Method: http.MethodPut, Path: "/api/v1/accounts/:id", Roles: admins, Tag: "accounts",
			Summary: "Reset an account's password and/or disable or enable it", Request: AccountStateReq{}, Response: OK{},
			Handler: func(c *echo.Context, admin *accounts.User) error {
				var req AccountStateReq
				if err := decode(c, &req); err != nil {
					return err
				}
				if req.Password == "" && req.Disabled == nil {
					return fail(http.StatusBadRequest, "bad_body", "want password or disabled")
				}
				ctx, id := c.Request().Context(), c.Param("id")
				if req.Disabled != nil && id == admin.ID {
					return fail(http.StatusBadRequest, "invalid", "an admin does not disable their own account")
				}
				if _, err := s.cfg.Accounts.Get(id); errors.Is(err, accounts.ErrNotFound) {
					return err
				}
				if req.Password != "" {
					if err := s.cfg.Accounts.ResetPassword(ctx, *admin, id, req.Password); err != nil {
						return err
					}
				}
				if req.Disabled != nil {
					if err := s.cfg.Accounts.SetDisabled(ctx, *admin, id, *req.Disabled); err != nil {
						return fmt.Errorf("password reset, but: %w", err)
					}
				}
				s.sessions.endUser(id)
				return c.JSON(http.StatusOK, OK{true})
			}},
	}
}
