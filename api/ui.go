package api

// The dashboard (/ui/): static HTML, CSS and JavaScript embedded in the
// binary (no build step) calling the JSON API with the browser's session.
//
// Sign-in: POST /ui/login with {"key": "nwk_..."} (JSON only, so another
// site cannot post it from a form) opens a session (account.Store
// sessions) whose token is set as the HttpOnly, SameSite=Strict cookie
// nw_session (Secure over HTTPS). authn accepts the cookie where an API
// key is accepted, with the key's account and scopes. Every request
// authenticated by the cookie with a method other than GET, HEAD or
// OPTIONS must carry the session's CSRF token in X-CSRF-Token (handed to
// the page by GET /ui/session) and, when it has an Origin header, come
// from this host; otherwise it is refused 403. A request with an API key
// header ignores the cookie (custom headers cannot be sent cross-site
// without CORS, which netwarden does not grant).

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/account"
)

//go:embed ui
var uiFiles embed.FS

// Sessions opens, resolves and ends dashboard sessions (account.Store).
type Sessions interface {
	OpenSession(ctx context.Context, key string, ttl time.Duration) (string, account.Principal, error)
	Session(ctx context.Context, token string) (account.Principal, error)
	CloseSession(ctx context.Context, token string) error
}

const sessionCookie = "nw_session"

// errCSRF marks a cookie-authenticated state change without the
// session's CSRF token or from another origin (403).
var errCSRF = errors.New("cross-site request refused: send the session's X-CSRF-Token (GET /ui/session) from this origin")

// routeUI registers the dashboard's routes.
func (s *Server) routeUI(h *gin.Engine) {
	get(h, "/ui", func(c *gin.Context) {
		c.Header("Location", "/ui/")
		c.JSON(http.StatusMovedPermanently, gin.H{"error": "moved to /ui/", "location": "/ui/"})
	})
	get(h, "/ui/*path", s.uiGet)
	h.POST("/ui/login", s.login)
	h.POST("/ui/logout", s.logout)
}

// uiGet serves the session endpoint, the assets and the pages (every
// page is index.html; app.js renders the one the path names).
func (s *Server) uiGet(c *gin.Context) {
	p := c.Param("path")
	switch {
	case p == "/session":
		s.session(c)
		return
	case strings.HasPrefix(p, "/assets/"):
		name := path.Base(p)
		b, err := fs.ReadFile(uiFiles, "ui/"+name)
		if err != nil || name == "index.html" {
			c.JSON(http.StatusNotFound, gin.H{"error": "no such asset: " + p})
			return
		}
		securityHeaders(c)
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, mime.TypeByExtension(path.Ext(name)), b)
		return
	case p == "/" || p == "/alerts" || p == "/subscriptions" || strings.HasPrefix(p, "/ip/") || p == "/outages" || strings.HasPrefix(p, "/entity/"):
		b, err := fs.ReadFile(uiFiles, "ui/index.html")
		if err != nil {
			s.fail(c, fmt.Errorf("dashboard page: %w", err))
			return
		}
		securityHeaders(c)
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusOK, "text/html; charset=utf-8", b)
		return
	}
	c.JSON(http.StatusNotFound, gin.H{"error": "no such dashboard page: /ui" + p})
}

func securityHeaders(c *gin.Context) {
	c.Header("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("X-Frame-Options", "DENY")
	c.Header("Referrer-Policy", "same-origin")
}

// login answers POST /ui/login {"key": "..."}: opens a session and sets
// its cookie; the answer carries the account and the CSRF token.
func (s *Server) login(c *gin.Context) {
	if s.deps.Sessions == nil {
		s.fail(c, fmt.Errorf("sessions %w", errUnavailable))
		return
	}
	if err := sameOrigin(c); err != nil {
		s.fail(c, err)
		return
	}
	if ct, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); ct != "application/json" {
		s.fail(c, badRequest(`sign in with a JSON body {"key": "..."} (Content-Type: application/json)`))
		return
	}
	b, err := readBody(c, 4<<10, "a fixed limit")
	if err != nil {
		s.fail(c, err)
		return
	}
	var body struct {
		Key string `json:"key"`
	}
	if err := decodeJSONBody(b, &body, `{"key": "nwk_..."}`); err != nil {
		s.fail(c, err)
		return
	}
	token, p, err := s.deps.Sessions.OpenSession(c.Request.Context(), strings.TrimSpace(body.Key), s.cfg.SessionTTL)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.setCookie(c, token, int(s.cfg.SessionTTL.Seconds()))
	c.JSON(http.StatusOK, gin.H{"account": p.Account, "scopes": p.Scopes, "csrf": account.CSRFToken(token)})
}

// logout answers POST /ui/logout: ends the session (CSRF-checked) and
// clears the cookie.
func (s *Server) logout(c *gin.Context) {
	token, _ := c.Cookie(sessionCookie)
	if token != "" && s.deps.Sessions != nil {
		if err := checkCSRF(c, token); err != nil {
			s.fail(c, err)
			return
		}
		if err := s.deps.Sessions.CloseSession(c.Request.Context(), token); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.setCookie(c, "", -1)
	c.JSON(http.StatusOK, gin.H{"signed_out": true})
}

// session answers GET /ui/session: who the cookie speaks for and the
// CSRF token, or 401.
func (s *Server) session(c *gin.Context) {
	token, _ := c.Cookie(sessionCookie)
	if token == "" || s.deps.Sessions == nil {
		s.fail(c, fmt.Errorf("%w: not signed in", account.ErrUnauthorized))
		return
	}
	p, err := s.deps.Sessions.Session(c.Request.Context(), token)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"account": p.Account, "scopes": p.Scopes, "csrf": account.CSRFToken(token)})
}

func (s *Server) setCookie(c *gin.Context, value string, maxAge int) {
	c.SetSameSite(http.SameSiteStrictMode)
	secure := c.Request.TLS != nil || c.GetHeader("X-Forwarded-Proto") == "https"
	c.SetCookie(sessionCookie, value, maxAge, "/", "", secure, true)
}

// fromSession authenticates the request by its session cookie, if it
// has one: ok is false without a cookie (or without sessions).
func (s *Server) fromSession(c *gin.Context) (p account.Principal, ok bool, err error) {
	token, _ := c.Cookie(sessionCookie)
	if token == "" || s.deps.Sessions == nil {
		return p, false, nil
	}
	p, err = s.deps.Sessions.Session(c.Request.Context(), token)
	if err != nil {
		return p, true, err
	}
	if err := checkCSRF(c, token); err != nil {
		return p, true, err
	}
	return p, true, nil
}

// checkCSRF refuses a state-changing request without the session's
// CSRF token or from another origin.
func checkCSRF(c *gin.Context, token string) error {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := sameOrigin(c); err != nil {
		return err
	}
	want := account.CSRFToken(token)
	if subtle.ConstantTimeCompare([]byte(c.GetHeader("X-CSRF-Token")), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

// sameOrigin refuses a request whose Origin header names another host.
func sameOrigin(c *gin.Context) error {
	o := c.GetHeader("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != c.Request.Host {
		return errCSRF
	}
	return nil
}
