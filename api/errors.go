package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/query"
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
	case errors.Is(err, query.ErrResourceLimit):
		return http.StatusUnprocessableEntity
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
