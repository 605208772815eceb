package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/ingest/scrape"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/check"
	"github.com/netwarden/netwarden/stream/outage"
)

// OutageHealth reports the outage pipeline's state (outage.Service with
// its exporter): /healthz shows it under "outage" and adds its problems.
type OutageHealth interface {
	Health(ctx context.Context) outage.Health
}

func (s *Server) check(c *gin.Context) {
	if s.deps.Checker == nil {
		s.fail(c, fmt.Errorf("consistency check %w", errUnavailable))
		return
	}
	ctx := c.Request.Context()
	if c.Query("audit") == "1" {
		ctx = check.WithAudit(ctx) // also audit history against the topic
	}
	res, err := s.deps.Checker.Check(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// UnhealthyFeed is a list whose last fetch was not accepted, as /healthz
// reports it.
type UnhealthyFeed struct {
	Name        string    `json:"name"`
	Error       string    `json:"error"`
	LastFetch   time.Time `json:"last_fetch,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// healthz is the liveness probe: 200 whenever the process serves HTTP
// (restarting it would not fix a remote feed). Its status says how it is:
//
//   - "starting": the live state is being rebuilt (/readyz is 503);
//   - "ok": no feed is unhealthy and every kind of list has loaded;
//   - "degraded": some feed is unhealthy (unhealthy_feeds says which and
//     why), or no list of some kind has ever loaded (not_loaded; its
//     lookups answer 503), or the outage pipeline has a problem (its
//     service stopped or failed, its SQL export keeps failing, or
//     telemetry stopped arriving; "outage" has the details). problems
//     says it in words, e.g. "18 of 18 feeds unhealthy" when no feed
//     works at all.
//
// Status (idle, lag, pending, resources) is added once started.
func (s *Server) healthz(c *gin.Context) {
	if s.deps.Ready != nil && !s.deps.Ready() {
		c.JSON(http.StatusOK, gin.H{"status": "starting"})
		return
	}
	out := gin.H{"status": "ok"}
	var problems []string
	if s.deps.Lists != nil {
		var (
			counts    = map[string]int{scrape.StatusOK: 0, scrape.StatusPending: 0, scrape.StatusUnhealthy: 0}
			unhealthy []UnhealthyFeed
			lists     = s.deps.Lists.Lists()
			loaded    = map[string]bool{}
		)
		for _, l := range lists {
			counts[l.Status]++
			loaded[l.Kind] = loaded[l.Kind] || l.Loaded()
			if l.Status == scrape.StatusUnhealthy {
				unhealthy = append(unhealthy, UnhealthyFeed{Name: l.Name, Error: l.Error, LastFetch: l.LastFetch, LastSuccess: l.LastSuccess})
			}
		}
		if len(unhealthy) > 0 {
			problems = append(problems, fmt.Sprintf("%d of %d feeds unhealthy", len(unhealthy), len(lists)))
			out["unhealthy_feeds"] = unhealthy
		}
		var notLoaded []string
		for _, k := range []resource.Kind{resource.IP, resource.Domain, resource.Email} {
			if done, configured := loaded[k.String()]; configured && !done {
				notLoaded = append(notLoaded, k.String())
				problems = append(problems, fmt.Sprintf("no %s list has loaded yet: its lookups answer 503", k))
			}
		}
		if len(notLoaded) > 0 {
			out["not_loaded"] = notLoaded
		}
		counts["total"] = len(lists)
		out["feeds"] = counts
	}
	if s.deps.OutageHealth != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
		h := s.deps.OutageHealth.Health(ctx)
		cancel()
		problems = append(problems, h.Problems...)
		out["outage"] = h
	}
	if len(problems) > 0 {
		out["status"] = "degraded"
		out["problems"] = problems
	}
	if s.deps.Status != nil {
		for k, v := range s.deps.Status(c.Request.Context()) {
			out[k] = v
		}
	}
	c.JSON(http.StatusOK, out)
}

// readyz is the readiness probe: 503 {"status": "starting"} until the live
// state is rebuilt, then 200 {"status": "ready"} (also when degraded:
// history and the lists that did load are served).
func (s *Server) readyz(c *gin.Context) {
	if s.deps.Ready != nil && !s.deps.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "starting"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// checkLoaded fails with errUnavailable (503) while no list of kind has
// ever loaded: a lookup that finds nothing then cannot tell a clean
// resource from missing data. Once a list of the kind has loaded, that is
// remembered (it stays true).
func (s *Server) checkLoaded(kind resource.Kind) error {
	if s.deps.Lists == nil || !kind.Valid() || s.loaded[kind].Load() {
		return nil
	}
	configured := 0
	for _, l := range s.deps.Lists.Lists() {
		if l.Kind != kind.String() {
			continue
		}
		if l.Loaded() {
			s.loaded[kind].Store(true)
			return nil
		}
		configured++
	}
	if configured == 0 {
		return fmt.Errorf("no %s list is configured, so a lookup cannot tell clean from unknown: %w", kind, errUnavailable)
	}
	return fmt.Errorf("none of the %d %s lists has loaded yet (see /healthz), so a lookup cannot tell clean from unknown: %w", configured, kind, errUnavailable)
}
