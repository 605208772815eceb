package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
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
