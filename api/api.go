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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
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

// SQL runs ad-hoc queries (query.Engine).
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

var (
	mSQLOK       = metrics.NewCounter(`netwarden_sql_queries_total{result="ok"}`)
	mSQLRejected = metrics.NewCounter(`netwarden_sql_queries_total{result="rejected"}`)
	mSQLTimeout  = metrics.NewCounter(`netwarden_sql_queries_total{result="timeout"}`)
	mSQLError    = metrics.NewCounter(`netwarden_sql_queries_total{result="error"}`)
	mSQLDur      = metrics.NewHistogram(`netwarden_sql_query_duration_seconds`)
	mHistoryDur  = metrics.NewHistogram(`netwarden_history_lookup_duration_seconds`)
)

// errBadRequest marks client errors found by the handlers.
var errBadRequest = errors.New("bad request")

// errUnavailable marks a missing dependency.
var errUnavailable = errors.New("not available")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// statusOf maps errors to HTTP status codes; the one place that does.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, resource.ErrInvalid), errors.Is(err, query.ErrRejected):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusRequestTimeout
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (s *Server) fail(c *gin.Context, err error) {
	code := statusOf(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "path", c.Request.URL.Path, "err", err)
		msg = "internal error: " + msg
	}
	msg = strings.TrimPrefix(msg, errBadRequest.Error()+": ")
	c.AbortWithStatusJSON(code, gin.H{"error": msg})
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

// pathParam returns the catch-all parameter without its leading slash.
func pathParam(c *gin.Context) string { return strings.TrimPrefix(c.Param("res"), "/") }

func intParam(c *gin.Context, name string, def, lo, hi int64) (int64, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("%s=%q is not an integer", name, v)
	}
	if n < lo || n > hi {
		return 0, badRequest("%s=%d out of range %d..%d", name, n, lo, hi)
	}
	return n, nil
}

// ChangeItem is one entry of an Apility-style history response. The
// resource field is ours: it names the listed entry (a covering CIDR or
// parent domain) when it is not the queried resource itself.
type ChangeItem struct {
	Timestamp       int64  `json:"timestamp"`
	Command         string `json:"command"`
	IP              string `json:"ip,omitempty"`
	Domain          string `json:"domain,omitempty"`
	Email           string `json:"email,omitempty"`
	BlacklistChange string `json:"blacklist_change"`
	Blacklists      string `json:"blacklists"`
	Resource        string `json:"resource,omitempty"`
}

func (s *Server) changes(kind resource.Kind, field string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.History == nil {
			s.fail(c, fmt.Errorf("history %w", errUnavailable))
			return
		}
		r, err := resource.Parse(kind, pathParam(c))
		if err != nil {
			s.fail(c, err)
			return
		}
		until, err := intParam(c, "timestamp", -1, 0, 1<<40)
		if err != nil {
			s.fail(c, err)
			return
		}
		items, err := intParam(c, "items", 10, 5, 200)
		if err != nil {
			s.fail(c, err)
			return
		}
		page, err := intParam(c, "page", 1, 1, 1<<31)
		if err != nil {
			s.fail(c, err)
			return
		}
		all, err := s.history(r)
		if err != nil {
			s.fail(c, err)
			return
		}
		out := make([]ChangeItem, 0, items)
		// newest first, only changes at or before `until`
		n := int64(0)
		skip := (page - 1) * items
		for i := len(all) - 1; i >= 0 && int64(len(out)) < items; i-- {
			it := all[i]
			if until >= 0 && it.Timestamp > until {
				continue
			}
			if n++; n <= skip {
				continue
			}
			setName(kind, r.String(), &it.IP, &it.Domain, &it.Email)
			out = append(out, it)
		}
		c.JSON(http.StatusOK, gin.H{field: out})
	}
}

// history folds the changes of every key covering r into items, oldest
// first, each with the lists r is on after the change.
func (s *Server) history(r resource.Resource) ([]ChangeItem, error) {
	own := r.Key()
	start := time.Now()
	cs, err := s.deps.History.Changes(s.deps.History.CoveringKeys(r))
	mHistoryDur.UpdateDuration(start)
	if err != nil {
		return nil, err
	}
	type kl struct{ key, list string }
	on := map[kl]bool{}
	perList := map[string]int{}
	items := make([]ChangeItem, 0, len(cs))
	var names []string
	for _, ch := range cs {
		p := kl{ch.Key, ch.List}
		switch {
		case ch.Op == change.Add && !on[p]:
			on[p] = true
			perList[ch.List]++
		case ch.Op == change.Rem && on[p]:
			delete(on, p)
			if perList[ch.List]--; perList[ch.List] == 0 {
				delete(perList, ch.List)
			}
		}
		names = names[:0]
		for l := range perList {
			names = append(names, l)
		}
		slices.Sort(names)
		it := ChangeItem{Timestamp: ch.Time.Unix(), Command: ch.Op.String(), BlacklistChange: ch.List, Blacklists: strings.Join(names, ",")}
		if ch.Key != own {
			if rr, err := resource.FromKey(ch.Key); err == nil {
				it.Resource = rr.String()
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// setName stores name in the field of its kind.
func setName(kind resource.Kind, name string, ip, domain, email *string) {
	switch kind {
	case resource.IP:
		*ip = name
	case resource.Domain:
		*domain = name
	case resource.Email:
		*email = name
	}
}

func (s *Server) bad(kind resource.Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Live == nil {
			s.fail(c, fmt.Errorf("live state %w", errUnavailable))
			return
		}
		r, err := resource.Parse(kind, pathParam(c))
		if err != nil {
			s.fail(c, err)
			return
		}
		lists := s.deps.Live.Lookup(r)
		if len(lists) == 0 {
			c.JSON(http.StatusNotFound, gin.H{"response": []string{}})
			return
		}
		c.JSON(http.StatusOK, gin.H{"response": lists})
	}
}

// BatchItem is one answer of a batch lookup.
type BatchItem struct {
	IP         string   `json:"ip,omitempty"`
	Domain     string   `json:"domain,omitempty"`
	Email      string   `json:"email,omitempty"`
	Blacklists []string `json:"blacklists"`
}

func (s *Server) badBatch(kind resource.Kind, field string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Live == nil {
			s.fail(c, fmt.Errorf("live state %w", errUnavailable))
			return
		}
		var raw []string
		if c.Request.Method == http.MethodGet {
			for _, v := range c.QueryArray(field) {
				raw = append(raw, strings.Split(v, ",")...)
			}
		} else {
			body := map[string][]string{}
			dec := http.MaxBytesReader(c.Writer, c.Request.Body, 16<<20)
			b, err := io.ReadAll(dec)
			if err != nil {
				s.fail(c, badRequest("read body: %v", err))
				return
			}
			if err := jsonUnmarshal(b, &body); err != nil {
				s.fail(c, badRequest("body must be JSON {%q: [...]}: %v", field+"s", err))
				return
			}
			raw = body[field+"s"]
		}
		if len(raw) == 0 {
			s.fail(c, badRequest("no %s given (use ?%s=a,b or POST {%q: [...]})", field, field, field+"s"))
			return
		}
		if len(raw) > s.cfg.MaxBatch {
			s.fail(c, badRequest("%d items exceed the batch limit of %d", len(raw), s.cfg.MaxBatch))
			return
		}
		out := make([]BatchItem, 0, len(raw))
		for _, v := range raw {
			r, err := resource.Parse(kind, v)
			if err != nil {
				s.fail(c, err)
				return
			}
			lists := s.deps.Live.Lookup(r)
			if lists == nil {
				lists = []string{}
			}
			it := BatchItem{Blacklists: lists}
			setName(kind, r.String(), &it.IP, &it.Domain, &it.Email)
			out = append(out, it)
		}
		c.JSON(http.StatusOK, gin.H{"response": out})
	}
}

func (s *Server) lists(c *gin.Context) {
	if s.deps.Lists == nil {
		s.fail(c, fmt.Errorf("lists %w", errUnavailable))
		return
	}
	c.JSON(http.StatusOK, gin.H{"lists": s.deps.Lists.Lists()})
}

func (s *Server) sql(c *gin.Context) {
	if s.deps.SQL == nil {
		s.fail(c, fmt.Errorf("sql %w", errUnavailable))
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxSQLBytes))
	if err != nil {
		s.fail(c, badRequest("read query: %v", err))
		return
	}
	q := string(b)
	if strings.HasPrefix(c.ContentType(), "application/json") {
		var body struct {
			SQL string `json:"sql"`
		}
		if err := jsonUnmarshal(b, &body); err != nil {
			s.fail(c, badRequest("body must be JSON {\"sql\": \"...\"} or the query as text: %v", err))
			return
		}
		q = body.SQL
	}
	if strings.TrimSpace(q) == "" {
		s.fail(c, badRequest("empty query"))
		return
	}
	f := query.FormatFromAccept(c.GetHeader("Accept"))
	var buf bytes.Buffer
	start := time.Now()
	res, err := s.deps.SQL.Query(c.Request.Context(), q, f, &buf)
	mSQLDur.UpdateDuration(start)
	if err != nil {
		switch statusOf(err) {
		case http.StatusBadRequest:
			mSQLRejected.Inc()
		case http.StatusRequestTimeout:
			mSQLTimeout.Inc()
		default:
			mSQLError.Inc()
		}
		s.fail(c, err)
		return
	}
	mSQLOK.Inc()
	c.Header("X-Netwarden-Rows", strconv.Itoa(res.Rows))
	c.Header("X-Netwarden-Truncated", strconv.FormatBool(res.Truncated))
	c.Data(http.StatusOK, f.ContentType(), buf.Bytes())
}

func (s *Server) check(c *gin.Context) {
	if s.deps.Checker == nil {
		s.fail(c, fmt.Errorf("consistency check %w", errUnavailable))
		return
	}
	res, err := s.deps.Checker.Check(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) healthz(c *gin.Context) {
	if s.deps.Ready != nil && !s.deps.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "starting"})
		return
	}
	out := gin.H{"status": "ok"}
	if s.deps.Status != nil {
		for k, v := range s.deps.Status(c.Request.Context()) {
			out[k] = v
		}
	}
	c.JSON(http.StatusOK, out)
}
