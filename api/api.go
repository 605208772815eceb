// Package api serves netwarden's HTTP API with Gin: the Apility-compatible
// history (/metadata/changes/...) and live lookups (/badip, /baddomain,
// /bademail and their batch forms), list metadata (/lists), ad-hoc SQL
// (/sql), the consistency check (/admin/check), /metrics, /healthz and
// /readyz. Every GET route also answers HEAD.
//
// Every answer is JSON, errors {"error": "..."} (redirects and panics
// included); errors map to status codes in one place (statusOf). Handlers
// only read from their dependencies, which must be safe for concurrent
// use. Server.Run owns the listener.
//
// Range queries (an IP CIDR): /metadata/changes/ip/{cidr} adds the
// history of every listed resource inside the range, /badip/{cidr} the
// listed resources inside it; see ranges.go for the semantics and bounds.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/ingest/scrape"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/query"
	"github.com/netwarden/netwarden/stream/check"
)

// History answers per-resource history (processor.Processor).
type History interface {
	Changes(keys []string) ([]change.Change, error)
	CoveringKeys(r resource.Resource) []string
}

// Live answers "which lists is it on now" (live.State).
type Live interface {
	Lookup(r resource.Resource) []string
}

// Lists gives list metadata (scrape.Manager).
type Lists interface {
	Lists() []scrape.ListInfo
}

// SQL runs ad-hoc queries (query.Pool; query.Engine in-process).
type SQL interface {
	Query(ctx context.Context, sql string, f query.Format, w io.Writer) (query.Result, error)
}

// Checker runs the consistency check (check.Job).
type Checker interface {
	Check(ctx context.Context) (check.Result, error)
}

// Deps are the API's dependencies. Any may be nil: its routes answer 503.
type Deps struct {
	History History
	Live    Live
	Lists   Lists // also tells /healthz and the lookups which lists have loaded
	SQL     SQL
	Checker Checker
	// Ready reports whether the live state is rebuilt (/readyz, /healthz).
	Ready func() bool
	// Status adds details to /healthz (e.g. lag, pending, scrape idle).
	Status func(ctx context.Context) map[string]any
	// Accounts authenticates API keys and counts their hits
	// (account.Store); nil means no accounts: keys are refused and the
	// /v1 routes answer 503.
	Accounts Accounts
	// Sessions are the dashboard's sign-in sessions (account.Store); nil
	// means the dashboard cannot sign in.
	Sessions Sessions
	// Watchlists keeps accounts' watched and muted entries
	// (watchlist.Service); nil: those routes answer 503.
	Watchlists Watchlists
	// Settings reads and saves notification settings (account.Store);
	// nil: /v1/alerts/settings answers 503.
	Settings AlertSettings
	// Notifier sends test e-mails and vets webhook URLs
	// (notify.Notifier); nil: /v1/alerts/test-email answers 503.
	Notifier Notifier
	// Alerts lists and acknowledges alerts (account.Store); nil: 503.
	Alerts AlertStore
	// Entities annotates countries, regions and ASNs with their metadata
	// (entity.Registry); nil: every code is annotated as unknown.
	Entities Entities
	// Telemetry checks and publishes POSTed outage-detection points
	// (telemetry.Intake); nil: POST /v1/telemetry answers 503.
	Telemetry Telemetry
	// Subscriptions keeps accounts' outage subscriptions (account.Store);
	// nil: /v1/subscriptions answers 503.
	Subscriptions Subscriptions
	// Outages answers the outage routes (outage.Service); nil: 503.
	Outages Outages
	// OutageHealth adds the outage pipeline to /healthz
	// (outage.Service); nil: not reported.
	OutageHealth OutageHealth
}

// Config configures the HTTP server.
type Config struct {
	Addr         string        `yaml:"addr"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	MaxBatch     int           `yaml:"max_batch"`
	MaxSQLBytes  int64         `yaml:"max_sql_bytes"`
	// MaxBatchBytes bounds a batch lookup's POST body.
	MaxBatchBytes int64 `yaml:"max_batch_bytes"`
	// MaxRangeRows bounds the changes a range history query
	// (/metadata/changes/ip/{cidr}) may gather, and how deep /badip/{cidr}
	// may page; a broader query is answered 422.
	MaxRangeRows int `yaml:"max_range_rows"`
	// SessionTTL is how long a dashboard sign-in lasts (default 12h).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// Auth is the top-level `auth` section, set by the caller.
	Auth AuthConfig `yaml:"-"`
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Addr == "" {
		c.Addr = "localhost:8080"
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 2 * time.Minute
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 10000
	}
	if c.MaxSQLBytes == 0 {
		c.MaxSQLBytes = 64 << 10
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.MaxRangeRows == 0 {
		c.MaxRangeRows = 100_000
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
}

// Validate checks c.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("http.addr %q: %w", c.Addr, err)
	}
	if c.MaxBatch < 1 {
		return errors.New("http.max_batch must be positive")
	}
	if c.SessionTTL < time.Minute {
		return fmt.Errorf("http.session_ttl %v: must be at least 1m", c.SessionTTL)
	}
	if c.MaxSQLBytes < 1 || c.MaxBatchBytes < 1 || c.MaxRangeRows < 1 {
		return errors.New("http.max_sql_bytes, http.max_batch_bytes and http.max_range_rows must be positive")
	}
	return nil
}

// Server is the HTTP server.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	h    *gin.Engine
	ln   net.Listener

	loaded [resource.Email + 1]atomic.Bool // by kind: some list of it has loaded (see checkLoaded)
	// routes holds "METHOD /path" of the static routes, catchAll the
	// prefixes of the catch-all routes per method (noRoute's redirects).
	routes   map[string]bool
	catchAll map[string][]string
}

// New builds the server and its routes. It turns on # HELP / # TYPE
// metadata for the process-wide metrics set served at /metrics.
func New(cfg Config, deps Deps, log *slog.Logger) *Server {
	metrics.ExposeMetadata(true)
	gin.SetMode(gin.ReleaseMode)
	h := gin.New()
	s := &Server{cfg: cfg, deps: deps, log: log, h: h}
	h.Use(gin.CustomRecovery(func(c *gin.Context, v any) {
		s.fail(c, fmt.Errorf("panic: %v", v))
	}))
	h.Use(s.observe)
	h.HandleMethodNotAllowed = true
	// Every answer is JSON: Gin's own redirects answer HTML, so they are
	// off and noRoute redirects itself (see there).
	h.RedirectTrailingSlash = false
	h.RedirectFixedPath = false
	h.NoRoute(s.noRoute)
	h.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "method " + c.Request.Method + " not allowed on " + c.Request.URL.Path})
	})

	// Who may call what (auth.go): the data routes take an optional key
	// (required with auth.required), SQL needs the sql scope, /admin the
	// admin scope (anonymous only from loopback), and the account routes
	// (/v1/...) always a key.
	data := h.Group("", s.authn(account.ScopeRead, keyOptional))
	get(data, "/metadata/changes/ip/*res", s.changes(resource.IP, "changes_ip"))
	get(data, "/metadata/changes/domain/*res", s.changes(resource.Domain, "changes_domain"))
	get(data, "/metadata/changes/email/*res", s.changes(resource.Email, "changes_email"))
	get(data, "/badip/*res", s.bad(resource.IP))
	get(data, "/baddomain/*res", s.bad(resource.Domain))
	get(data, "/bademail/*res", s.bad(resource.Email))
	get(data, "/badip_batch", s.badBatch(resource.IP, "ip"))
	data.POST("/badip_batch", s.badBatch(resource.IP, "ip"))
	get(data, "/baddomain_batch", s.badBatch(resource.Domain, "domain"))
	data.POST("/baddomain_batch", s.badBatch(resource.Domain, "domain"))
	get(data, "/bademail_batch", s.badBatch(resource.Email, "email"))
	data.POST("/bademail_batch", s.badBatch(resource.Email, "email"))
	get(data, "/lists", s.lists)
	s.outageRoutes(data)
	h.POST("/sql", s.authn(account.ScopeSQL, keyOptional), s.sql)
	h.POST("/admin/check", s.authn(account.ScopeAdmin, keyLocal), s.check)
	h.POST("/v1/telemetry", s.authn(account.ScopeTelemetry, keyRequired), s.postTelemetry)
	v1 := h.Group("/v1", s.authn(account.ScopeRead, keyRequired))
	get(v1, "/account", s.account)
	s.routeUI(h)
	s.routeDocs(h, data)
	s.watchRoutes(v1)
	get(v1, "/alerts/settings", s.getSettings)
	v1.PUT("/alerts/settings", s.putSettings)
	v1.POST("/alerts/test-email", s.testEmail)
	get(v1, "/alerts", s.alerts)
	v1.POST("/alerts/:id/ack", s.ackAlert)
	s.subscriptionRoutes(v1)
	get(h, "/metrics", serveMetrics)
	get(h, "/healthz", s.healthz)
	get(h, "/readyz", s.readyz)
	s.routes, s.catchAll = map[string]bool{}, map[string][]string{}
	for _, r := range h.Routes() {
		if pre, _, ok := strings.Cut(r.Path, "*"); ok {
			s.catchAll[r.Method] = append(s.catchAll[r.Method], pre)
		} else {
			s.routes[r.Method+" "+r.Path] = true
		}
	}
	return s
}

// noRoute answers a path no route matches. A path that names a route
// but for a trailing slash, doubled slashes or dot segments ("/lists/",
// "//lists", "/metadata//changes/ip/1.2.3.4") is
// redirected to it as Gin would, but with a JSON body: 301 for GET and
// HEAD, 308 (method and body kept) otherwise. Anything else is a 404.
func (s *Server) noRoute(c *gin.Context) {
	p := c.Request.URL.Path
	m := c.Request.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	if clean := path.Clean("/" + p); clean != p && s.isRoute(m, clean) {
		loc := clean
		if q := c.Request.URL.RawQuery; q != "" {
			loc += "?" + q
		}
		code := http.StatusPermanentRedirect
		if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		c.Header("Location", loc)
		c.JSON(code, gin.H{"error": "moved to " + clean, "location": loc})
		return
	}
	c.JSON(http.StatusNotFound, gin.H{"error": "no such endpoint: " + p})
}

// isRoute reports whether a route of method m matches the clean path p.
func (s *Server) isRoute(m, p string) bool {
	if s.routes[m+" "+p] {
		return true
	}
	for _, pre := range s.catchAll[m] {
		if len(p) > len(pre) && strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// get registers a GET route and the same handlers for HEAD: load
// balancers probe with HEAD (net/http sends the headers and drops the
// body).
func get(r gin.IRoutes, path string, hs ...gin.HandlerFunc) {
	r.GET(path, hs...)
	r.HEAD(path, hs...)
}

// Handler returns the HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.h }

func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_http_requests_total{route=%q,code="%d"}`, route, c.Writer.Status())).Inc()
	metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf(`netwarden_http_request_duration_seconds{route=%q}`, route)).UpdateDuration(start)
}

// Listen binds the address (so callers learn the port before Run).
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Run serves until ctx ends, then shuts down gracefully (in-flight
// requests finish, up to 10 s).
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: s.cfg.ReadTimeout, WriteTimeout: s.cfg.WriteTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	s.log.Info("http api listening", "addr", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	<-errc
	return nil
}
