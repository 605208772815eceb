package outage

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/netwarden/netwarden/internal/broker"
)

// Service states (Health.State).
const (
	StateIdle      = "idle"      // Run not called yet
	StateReplaying = "replaying" // rebuilding the detector (not ready)
	StateRunning   = "running"   // consuming live telemetry
	StateStopped   = "stopped"   // Run returned without error (shutdown)
	StateFailed    = "failed"    // Run returned an error (fail-stop)
)

// ExportFailing is how many export rounds in a row must fail before
// Health names it a problem (one failed round is retried by the next).
const ExportFailing = 2

var (
	mReplay     = metrics.NewGauge(`netwarden_outage_replay_seconds`, nil)
	mWatermark  = metrics.NewGauge(`netwarden_outage_watermark_timestamp_seconds`, nil)
	mLastTel    = metrics.NewGauge(`netwarden_outage_telemetry_last_timestamp_seconds`, nil)
	mExportErr  = metrics.NewCounter(`netwarden_outage_export_failures_total`)
	mExportLast = metrics.NewGauge(`netwarden_outage_export_last_success_timestamp_seconds`, nil)
)

// health is what the service records about itself (Service.mu).
type health struct {
	state     string
	err       error
	replay    time.Duration
	next      map[int32]int64 // committed offsets
	watermark int64
	lastTel   time.Time // produce time of the newest record fetched live
}

// Health is the outage pipeline's state as /healthz reports it.
type Health struct {
	State string `json:"state"`
	Ready bool   `json:"ready"` // replay done, live consumption started
	Error string `json:"error,omitempty"`
	// ReplaySeconds is how long rebuilding the detector took.
	ReplaySeconds float64 `json:"replay_seconds"`
	// Lag is the records on netwarden.telemetry not consumed yet; -1 with
	// LagError when unknown (the service is not running).
	Lag      int64  `json:"lag"`
	LagError string `json:"lag_error,omitempty"`
	// Watermark is the detector's event time at the last commit;
	// WatermarkBehind is the wall clock minus it (seconds).
	Watermark       int64 `json:"watermark"`
	WatermarkBehind int64 `json:"watermark_behind_seconds"`
	// LastTelemetry is the produce time of the newest telemetry record
	// consumed since start (zero: none yet).
	LastTelemetry time.Time     `json:"last_telemetry,omitzero"`
	Export        *ExportHealth `json:"export,omitempty"`
	// Problems names what is wrong, in words; empty when healthy.
	Problems []string `json:"problems,omitempty"`
}

// ExportHealth is the SQL export's state.
type ExportHealth struct {
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failures is the rounds in a row that failed (0 after a success).
	Failures int `json:"failures"`
}

// SetExporter makes Health report x's state too (before Run).
func (s *Service) SetExporter(x *Exporter) { s.exp = x }

func (s *Service) setState(state string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hs.state, s.hs.err = state, err
}

func (s *Service) replayed(d time.Duration) {
	mReplay.Set(d.Seconds())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hs.replay = d
}

// consumed records committed offsets and the watermark.
func (s *Service) consumed(offsets map[int32]int64, wm int64) {
	mWatermark.Set(float64(wm))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hs.next == nil {
		s.hs.next = map[int32]int64{}
	}
	maps.Copy(s.hs.next, offsets)
	s.hs.watermark = wm
}

// received records the produce time of the newest record fetched.
func (s *Service) received(t time.Time) {
	if t.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.After(s.hs.lastTel) {
		s.hs.lastTel = t
		mLastTel.Set(float64(t.Unix()))
	}
}

// Lag is the records on the telemetry topic not consumed (committed)
// yet.
func (s *Service) Lag(ctx context.Context) (int64, error) {
	cl := s.client.Load()
	if cl == nil {
		return 0, fmt.Errorf("outage service is not running")
	}
	ends, err := broker.EndOffsets(ctx, cl, s.topic)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var lag int64
	for p, end := range ends {
		if d := end - s.hs.next[p]; d > 0 {
			lag += d
		}
	}
	return lag, nil
}

// Health reports the service's (and its exporter's) state and names its
// problems: the service stopped or failed, the SQL export failed
// ExportFailing rounds in a row, or telemetry that used to arrive has
// not for longer than Config.StaleAfter.
func (s *Service) Health(ctx context.Context) Health {
	now := s.now()
	lag, lagErr := s.Lag(ctx)
	s.mu.Lock()
	hs := s.hs
	s.mu.Unlock()
	h := Health{State: hs.state, Ready: hs.state == StateRunning, ReplaySeconds: hs.replay.Seconds(),
		Lag: lag, Watermark: hs.watermark, LastTelemetry: hs.lastTel}
	if h.State == "" {
		h.State = StateIdle
	}
	if hs.err != nil {
		h.Error = hs.err.Error()
	}
	if lagErr != nil {
		h.Lag, h.LagError = -1, lagErr.Error()
	}
	if hs.state == "" || hs.state == StateReplaying { // not committed yet this run
		if wm, err := s.store.Watermark(ctx); err == nil {
			h.Watermark = wm
		}
	}
	if h.Watermark > 0 {
		h.WatermarkBehind = now.Unix() - h.Watermark
	}
	switch hs.state {
	case StateFailed:
		h.Problems = append(h.Problems, fmt.Sprintf("outage service failed: %v", hs.err))
	case StateStopped:
		h.Problems = append(h.Problems, "outage service stopped: no telemetry is consumed")
	}
	if d := s.cfg.StaleAfter; d > 0 && !hs.lastTel.IsZero() && now.Sub(hs.lastTel) > d {
		h.Problems = append(h.Problems, fmt.Sprintf("no telemetry produced to %s for %v (last at %s; bound detect.stale_after %v)",
			s.topic, now.Sub(hs.lastTel).Round(time.Second), hs.lastTel.UTC().Format(time.RFC3339), d))
	}
	if s.exp != nil {
		e := s.exp.Health()
		h.Export = &e
		if e.Failures >= ExportFailing {
			h.Problems = append(h.Problems, fmt.Sprintf("outage SQL export failed %d rounds in a row: %s", e.Failures, e.LastError))
		}
	}
	return h
}

// Health is the export's state.
func (x *Exporter) Health() ExportHealth {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.hs
}

// exported records a round's outcome.
func (x *Exporter) exported(err error) {
	now := time.Now()
	x.mu.Lock()
	defer x.mu.Unlock()
	if err != nil {
		mExportErr.Inc()
		x.hs.LastError, x.hs.LastErrorAt = err.Error(), now
		x.hs.Failures++
		return
	}
	mExportLast.Set(float64(now.Unix()))
	x.hs.LastSuccess, x.hs.Failures = now, 0
}
