package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/detect"
)

// Telemetry checks and publishes outage-detection points
// (telemetry.Intake: ingest/telemetry's Validator and Publisher).
type Telemetry interface {
	// Check validates p and normalises it in place (code, time to its
	// bin start); the error says why p is rejected.
	Check(p *detect.Point) error
	// Publish writes checked points to the telemetry topic.
	Publish(ctx context.Context, pts []detect.Point) error
}

// maxRejectionsListed bounds the rejections an answer lists one by one.
const maxRejectionsListed = 1000

// telemetryPoint is a point as sent: every field is required (a missing
// value must not read as 0, which looks like an outage).
type telemetryPoint struct {
	Datasource *string  `json:"datasource"`
	EntityType *string  `json:"entity_type"`
	EntityCode *string  `json:"entity_code"`
	Time       *int64   `json:"time"`
	Value      *float64 `json:"value"`
}

type rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// postTelemetry (POST /v1/telemetry, a key with the telemetry scope)
// takes points as NDJSON (one object a line; blank lines skipped), as
// one JSON array or as a single object, at most http.max_batch_bytes. Points are judged one by
// one: the good ones are published, the bad ones listed in "rejected"
// with their 0-based index (the line among the non-blank lines, or the
// array element) and reason. The answer is 200 when some point was
// accepted, 400 when none was (a body that is not an array or NDJSON of
// objects at all included), 503 when publishing fails.
func (s *Server) postTelemetry(c *gin.Context) {
	if s.deps.Telemetry == nil {
		s.fail(c, fmt.Errorf("telemetry intake %w", errUnavailable))
		return
	}
	body, err := readBody(c, s.cfg.MaxBatchBytes, "http.max_batch_bytes")
	if err != nil {
		s.fail(c, err)
		return
	}
	raws, err := splitTelemetry(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	var good []detect.Point
	var rejected []rejection
	nRejected := 0
	for i, raw := range raws {
		p, err := s.telemetryPoint(raw)
		if err != nil {
			nRejected++
			if len(rejected) < maxRejectionsListed {
				rejected = append(rejected, rejection{Index: i, Error: err.Error()})
			}
			continue
		}
		good = append(good, p)
	}
	metrics.GetOrCreateCounter(`netwarden_telemetry_points_total{result="rejected"}`).Add(nRejected)
	ans := gin.H{"accepted": len(good), "rejected": rejected}
	if rejected == nil {
		ans["rejected"] = []rejection{}
	}
	if nRejected > len(rejected) {
		ans["rejected_total"] = nRejected
	}
	if len(good) == 0 {
		ans["error"] = fmt.Sprintf("no point accepted: %d rejected", nRejected)
		c.AbortWithStatusJSON(http.StatusBadRequest, ans)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 30*time.Second)
	defer cancel()
	if err := s.deps.Telemetry.Publish(ctx, good); err != nil {
		s.fail(c, fmt.Errorf("telemetry %w: %v", errUnavailable, err))
		return
	}
	metrics.GetOrCreateCounter(`netwarden_telemetry_points_total{result="accepted"}`).Add(len(good))
	c.JSON(http.StatusOK, ans)
}

// splitTelemetry cuts a body into its points' JSON: the elements of an
// array, one object (even over several lines), or the non-blank lines of
// NDJSON.
func splitTelemetry(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, badRequest("expected NDJSON or a JSON array of points: the body is empty")
	}
	if trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := jsonUnmarshal(trimmed, &raws); err != nil {
			return nil, badRequest("expected a JSON array of points: %s", jsonProblem(trimmed, err))
		}
		if len(raws) == 0 {
			return nil, badRequest("the array holds no point")
		}
		return raws, nil
	}
	if trimmed[0] == '{' && json.Valid(trimmed) { // one point, maybe pretty-printed
		return []json.RawMessage{trimmed}, nil
	}
	var raws []json.RawMessage
	for line := range bytes.Lines(trimmed) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			raws = append(raws, json.RawMessage(line))
		}
	}
	return raws, nil
}

// telemetryPoint decodes and checks one point.
func (s *Server) telemetryPoint(raw json.RawMessage) (detect.Point, error) {
	var tp telemetryPoint
	if err := jsonUnmarshal(raw, &tp); err != nil {
		return detect.Point{}, errors.New(telemetryProblem(raw, err))
	}
	var missing []string
	for _, f := range []struct {
		name string
		nil  bool
	}{{"datasource", tp.Datasource == nil}, {"entity_type", tp.EntityType == nil}, {"entity_code", tp.EntityCode == nil}, {"time", tp.Time == nil}, {"value", tp.Value == nil}} {
		if f.nil {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return detect.Point{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	p := detect.Point{Datasource: *tp.Datasource, EntityType: *tp.EntityType, EntityCode: *tp.EntityCode, Time: *tp.Time, Value: *tp.Value}
	if err := s.deps.Telemetry.Check(&p); err != nil {
		return detect.Point{}, err
	}
	return p, nil
}

// telemetryProblem says what is wrong with a point's JSON.
func telemetryProblem(raw []byte, err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		want := map[string]string{"time": "an integer (unix seconds)", "value": "a number"}[typ.Field]
		if want == "" {
			want = "a string"
		}
		return fmt.Sprintf("%q must be %s, not %s", typ.Field, want, typ.Value)
	}
	if errors.As(err, &typ) {
		return fmt.Sprintf("expected a point object, got %s", typ.Value)
	}
	return "expected a point object: " + jsonProblem(raw, err)
}
