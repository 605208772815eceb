package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/query"
	"github.com/netwarden/netwarden/stream/notify"
	"github.com/netwarden/netwarden/stream/watchlist"
)

// errBadRequest marks client errors found by the handlers.
var errBadRequest = errors.New("bad request")

// errUnavailable marks a missing dependency.
var errUnavailable = errors.New("not available")

// errTooBroad marks a well-formed query whose answer would exceed a
// configured bound (a range holding more than http.max_range_rows changes).
var errTooBroad = errors.New("query too broad")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// statusOf maps errors to HTTP status codes; the one place that does.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A request body read hit the server's read deadline
		// (http.read_timeout): the client sent too slowly.
		return http.StatusRequestTimeout
	case errors.Is(err, errTooBroad):
		return http.StatusUnprocessableEntity
	case errors.Is(err, errBadRequest), errors.Is(err, resource.ErrInvalid), errors.Is(err, query.ErrRejected):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusRequestTimeout
	case errors.Is(err, query.ErrResourceLimit):
		return http.StatusUnprocessableEntity
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, errNoKey), errors.Is(err, account.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, account.ErrForbidden), errors.Is(err, errCSRF):
		return http.StatusForbidden
	case errors.Is(err, account.ErrQuota):
		return http.StatusTooManyRequests
	case errors.Is(err, account.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, watchlist.ErrSyntax):
		return http.StatusBadRequest
	case errors.Is(err, account.ErrExists), errors.Is(err, watchlist.ErrBusy):
		return http.StatusConflict
	case errors.Is(err, account.ErrInvalid), errors.Is(err, entity.ErrBadCode):
		return http.StatusBadRequest
	case errors.Is(err, notify.ErrNotConfigured):
		return http.StatusServiceUnavailable
	case errors.Is(err, notify.ErrDelivery):
		return http.StatusBadGateway
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
	var be *bodyError
	if errors.As(err, &be) {
		// The rest of the body is not read: the connection cannot be reused.
		c.Header("Connection", "close")
	}
	c.AbortWithStatusJSON(code, gin.H{"error": msg})
}

// bodyError is a failed request body read; its message names the limit
// (and the setting that changes it) in plain words.
type bodyError struct {
	msg string
	err error
}

func (e *bodyError) Error() string { return e.msg }
func (e *bodyError) Unwrap() error { return e.err }

// readBody reads the request body, at most limit bytes; setting is the
// configuration key of the limit. A longer body is a 413 error, a body
// that does not arrive within the server's read timeout a 408 error.
func readBody(c *gin.Context, limit int64, setting string) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err == nil {
		return b, nil
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &bodyError{fmt.Sprintf("body exceeds %s (%s)", byteSize(limit), setting), err}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &bodyError{"request body not received within the server's read timeout (http.read_timeout)", err}
	}
	return nil, badRequest("read body: %v", err)
}

// byteSize renders n as "64 KiB", "16 MiB" or "1000 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// decodeJSONBody decodes b strictly into v; errors say in plain words
// what was expected (shape, e.g. `{"ips": [...]}`) and what was wrong.
func decodeJSONBody(b []byte, v any, shape string) error {
	err := jsonUnmarshal(b, v)
	if err == nil {
		return nil
	}
	return badRequest("expected %s: %s", shape, jsonProblem(b, err))
}

// jsonProblem describes a JSON decoding error without Go type names.
func jsonProblem(b []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(strings.TrimSpace(string(b))) == 0:
		return "the body is empty"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d (%s)", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	case errors.As(err, &typ):
		want := "a list of strings"
		switch typ.Type.Kind().String() {
		case "string":
			want = "a string"
		case "map", "struct":
			want = "an object"
		}
		if typ.Field == "" {
			return fmt.Sprintf("got %s where %s belongs", typ.Value, want)
		}
		return fmt.Sprintf("%q must be %s, not %s", typ.Field, want, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
