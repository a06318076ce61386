package hmi

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"
)

// web holds the screens: index.html, app.js (router, i18n, API helper),
// style.css and one ES module per page under pages/. No build step.
//
//go:embed web
var web embed.FS

// staticRoutes serves the embedded assets: the page at / and the modules
// and styles under /static/. They are not API routes (no session needed:
// the pages ask the API, which checks).
func (s *Server) staticRoutes() {
	sub, _ := fs.Sub(web, "web") // the directory is embedded above
	index, _ := fs.ReadFile(sub, "index.html")
	files := http.FileServer(http.FS(sub))
	s.e.GET("/", func(c *echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.HTMLBlob(http.StatusOK, index)
	})
	s.e.GET("/static/*", func(c *echo.Context) error {
		p := strings.TrimPrefix(c.Request().URL.Path, "/")
		if st, err := fs.Stat(sub, p); err != nil || st.IsDir() {
			return fail(http.StatusNotFound, "not_found", c.Request().URL.Path)
		}
		c.Response().Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(c.Response(), c.Request())
		return nil
	})
}
