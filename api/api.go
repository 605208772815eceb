// Package api serves netwarden's HTTP API with Gin: the Apility-compatible
// history (/metadata/changes/...) and live lookups (/badip, /baddomain,
// /bademail and their batch forms), list metadata (/lists), ad-hoc SQL
// (/sql), the consistency check (/admin/check), /metrics and /healthz.
//
// Every error is JSON {"error": "..."}; errors map to status codes in one
// place (statusOf). Handlers only read from their dependencies, which must
// be safe for concurrent use. Server.Run owns the listener.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/ingest/scrape"
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
	Lists   Lists
	SQL     SQL
	Checker Checker
	// Ready reports whether the pipeline is up (for /healthz).
	Ready func() bool
	// Status adds details to /healthz (e.g. lag, pending, scrape idle).
	Status func(ctx context.Context) map[string]any
}

// Config configures the HTTP server.
type Config struct {
	Addr         string        `yaml:"addr"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	MaxBatch     int           `yaml:"max_batch"`
	MaxSQLBytes  int64         `yaml:"max_sql_bytes"`
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
}

// Validate checks c.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("http.addr %q: %w", c.Addr, err)
	}
	if c.MaxBatch < 1 {
		return errors.New("http.max_batch must be positive")
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
}

// New builds the server and its routes.
func New(cfg Config, deps Deps, log *slog.Logger) *Server {
	gin.SetMode(gin.ReleaseMode)
	h := gin.New()
	h.Use(gin.Recovery())
	s := &Server{cfg: cfg, deps: deps, log: log, h: h}
	h.Use(s.observe)
	h.HandleMethodNotAllowed = true
	h.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such endpoint: " + c.Request.URL.Path})
	})
	h.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "method " + c.Request.Method + " not allowed on " + c.Request.URL.Path})
	})

	h.GET("/metadata/changes/ip/*res", s.changes(resource.IP, "changes_ip"))
	h.GET("/metadata/changes/domain/*res", s.changes(resource.Domain, "changes_domain"))
	h.GET("/metadata/changes/email/*res", s.changes(resource.Email, "changes_email"))
	h.GET("/badip/*res", s.bad(resource.IP))
	h.GET("/baddomain/*res", s.bad(resource.Domain))
	h.GET("/bademail/*res", s.bad(resource.Email))
	h.GET("/badip_batch", s.badBatch(resource.IP, "ip"))
	h.POST("/badip_batch", s.badBatch(resource.IP, "ip"))
	h.GET("/baddomain_batch", s.badBatch(resource.Domain, "domain"))
	h.POST("/baddomain_batch", s.badBatch(resource.Domain, "domain"))
	h.GET("/bademail_batch", s.badBatch(resource.Email, "email"))
	h.POST("/bademail_batch", s.badBatch(resource.Email, "email"))
	h.GET("/lists", s.lists)
	h.POST("/sql", s.sql)
	h.POST("/admin/check", s.check)
	h.GET("/metrics", func(c *gin.Context) {
		c.Header("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(c.Writer, true)
	})
	h.GET("/healthz", s.healthz)
	return s
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
	metrics.GetOrCreateHistogram(fmt.Sprintf(`netwarden_http_request_duration_seconds{route=%q}`, route)).UpdateDuration(start)
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
