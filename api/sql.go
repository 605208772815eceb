package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/query"
)

var (
	mSQLOK       = metrics.NewCounter(`netwarden_sql_queries_total{result="ok"}`)
	mSQLRejected = metrics.NewCounter(`netwarden_sql_queries_total{result="rejected"}`)
	mSQLTimeout  = metrics.NewCounter(`netwarden_sql_queries_total{result="timeout"}`)
	mSQLError    = metrics.NewCounter(`netwarden_sql_queries_total{result="error"}`)
	mSQLDur      = metrics.NewPrometheusHistogram(`netwarden_sql_query_duration_seconds`)
)

func (s *Server) sql(c *gin.Context) {
	if s.deps.SQL == nil {
		s.fail(c, fmt.Errorf("sql %w", errUnavailable))
		return
	}
	b, err := readBody(c, s.cfg.MaxSQLBytes, "http.max_sql_bytes")
	if err != nil {
		s.fail(c, err)
		return
	}
	q := string(b)
	if strings.HasPrefix(c.ContentType(), "application/json") {
		var body struct {
			SQL string `json:"sql"`
		}
		if err := decodeJSONBody(b, &body, `{"sql": "SELECT ..."} (or the query as text/plain)`); err != nil {
			s.fail(c, err)
			return
		}
		q = body.SQL
	}
	if strings.TrimSpace(q) == "" {
		s.fail(c, badRequest("empty query"))
		return
	}
	f := query.FormatFromAccept(c.GetHeader("Accept"))
	// The result streams to the client: Query writes nothing before the
	// query has run and its first chunk is ready, so errors up to then get a
	// JSON error status; the summary headers are trailers for long results.
	start := time.Now()
	_, err = s.deps.SQL.Query(c.Request.Context(), q, f, c.Writer)
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
		if c.Writer.Written() {
			// Too late for a status: the body is cut short and the
			// X-Netwarden-Error trailer says why.
			s.log.Warn("sql result cut short", "err", err)
			return
		}
		s.fail(c, err)
		return
	}
	mSQLOK.Inc()
}
