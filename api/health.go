package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/stream/check"
)

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
