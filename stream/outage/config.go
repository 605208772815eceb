package outage

import (
	"errors"
	"fmt"
	"time"

	"github.com/netwarden/netwarden/detect"
)

// Config is the `detect:` section: the detector's settings plus the
// outage store's.
type Config struct {
	detect.Config `yaml:",inline"`
	// Path of the SQLite database (default <data.dir>/outage/outage.db,
	// filled by the caller).
	Path string `yaml:"path"`
	// SignalRetention is how long per-bin verdicts (signals with their
	// baseline) are kept (default 8 days: a 7-day window and a day).
	// Alerts and events are kept forever.
	SignalRetention time.Duration `yaml:"signal_retention"`
	// Tick is how often the service moves event time by the wall clock
	// and retries publishing while no telemetry arrives (default 10 s).
	Tick time.Duration `yaml:"tick"`
	// ClockLead bounds the wall-clock advance: the watermark follows the
	// wall clock only while it is within ClockLead of it (live data), so
	// replaying old telemetry never makes its own points late
	// (default 6 h; negative: never follow the wall clock).
	ClockLead time.Duration `yaml:"clock_lead"`
	// PublishBatch is the most alerts produced or tapped per round
	// (default 1000).
	PublishBatch int `yaml:"publish_batch"`
	// MaxBatch is the most telemetry records committed in one
	// transaction (default 10000).
	MaxBatch int `yaml:"max_batch"`
	// ExportEvery is how often alerts and events are exported as Parquet
	// for SQL (outage_alerts, outage_events; default 30 s).
	ExportEvery time.Duration `yaml:"export_every"`
	// AlignWait is how long a consumed point waits for the other
	// partitions while one of them is empty, so a producer's burst
	// split over partitions is lined up by event time (default 2 s;
	// negative: no wait).
	AlignWait time.Duration `yaml:"align_wait"`
	// StaleAfter: once telemetry has arrived, /healthz turns degraded
	// when no record was produced to netwarden.telemetry for longer
	// (default 30 min; negative: never).
	StaleAfter time.Duration `yaml:"stale_after"`
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Datasources == nil {
		d := detect.Defaults()
		if c.Grace == 0 {
			c.Grace = d.Grace
		}
		c.Datasources = d.Datasources
	}
	if c.SignalRetention == 0 {
		c.SignalRetention = 8 * 24 * time.Hour
	}
	if c.Tick == 0 {
		c.Tick = 10 * time.Second
	}
	if c.ClockLead == 0 {
		c.ClockLead = 6 * time.Hour
	}
	if c.PublishBatch == 0 {
		c.PublishBatch = 1000
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 10_000
	}
	if c.ExportEvery == 0 {
		c.ExportEvery = 30 * time.Second
	}
	if c.AlignWait == 0 {
		c.AlignWait = 2 * time.Second
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 30 * time.Minute
	}
}

// Validate checks c.
func (c Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	switch {
	case c.Path == "":
		return errors.New("detect.path is empty")
	case c.SignalRetention < time.Hour:
		return fmt.Errorf("detect.signal_retention %v: must be at least 1h", c.SignalRetention)
	case c.Tick <= 0:
		return errors.New("detect.tick must be positive")
	case c.PublishBatch < 1:
		return errors.New("detect.publish_batch must be positive")
	case c.MaxBatch < 1:
		return errors.New("detect.max_batch must be positive")
	case c.ExportEvery <= 0:
		return errors.New("detect.export_every must be positive")
	}
	return nil
}

// Bins returns each datasource's bin width.
func (c Config) Bins() map[string]int64 {
	m := make(map[string]int64, len(c.Datasources))
	for n, d := range c.Datasources {
		m[n] = d.Bin
	}
	return m
}
