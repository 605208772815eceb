package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/ingest/scrape"
	"github.com/netwarden/netwarden/ingest/telemetry"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/query"
	"github.com/netwarden/netwarden/stream/alerts"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/notify"
	"github.com/netwarden/netwarden/stream/outage"
	"github.com/netwarden/netwarden/stream/processor"
	"github.com/netwarden/netwarden/stream/watchlist"
)

// Config is the whole configuration file. Each package owns its section.
type Config struct {
	Data      DataConfig          `yaml:"data"`
	Log       LogConfig           `yaml:"log"`
	Kafka     broker.Config       `yaml:"kafka"`
	HTTP      api.Config          `yaml:"http"`
	Processor processor.Config    `yaml:"processor"`
	History   history.Config      `yaml:"history"`
	Query     query.Config        `yaml:"query"`
	Scrape    scrape.Config       `yaml:"scrape"`
	Feeds     []scrape.FeedConfig `yaml:"feeds"`
	Check     CheckConfig         `yaml:"check"`
	Auth      api.AuthConfig      `yaml:"auth"`
	Account   account.Config      `yaml:"account"`
	Notify    notify.Config       `yaml:"notify"`
	Watchlist watchlist.Config    `yaml:"watchlist"`
	Alerts    alerts.Config       `yaml:"alerts"`
	// Detect: the outage detector and its store (stream/outage).
	Detect outage.Config `yaml:"detect"`
	// Entity: metadata of countries, ASNs and regions for outage
	// detection. Unset, it is the shared data's files that exist.
	Entity entity.Config `yaml:"entity"`
	// Simulate: simulated outage-detection telemetry (ingest/telemetry).
	Simulate telemetry.SimulateConfig `yaml:"simulate"`
}

// DataConfig says where state lives.
type DataConfig struct {
	Dir string `yaml:"dir"`
}

// LogConfig configures slog.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// CheckConfig configures the periodic consistency check.
type CheckConfig struct {
	Every time.Duration `yaml:"every"` // 0 disables
}

// loadConfig reads path (strictly: unknown fields are errors); an empty
// path gives the defaults.
func loadConfig(path string) (Config, error) {
	var c Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config %q: %w", path, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, errEOF) {
			return c, fmt.Errorf("parse config %q: %w", path, err)
		}
		// Relative paths in the file are relative to the file.
		base := filepath.Dir(path)
		for i := range c.Feeds {
			src := c.Feeds[i].Source
			if src != "" && !strings.Contains(src, "://") && !filepath.IsAbs(src) {
				c.Feeds[i].Source = filepath.Join(base, src)
			}
		}
		if c.Account.Path != "" && !filepath.IsAbs(c.Account.Path) {
			c.Account.Path = filepath.Join(base, c.Account.Path)
		}
		for _, p := range []*string{&c.Notify.SMTP.CAFile, &c.Notify.SMTP.PasswordFile, &c.Simulate.Catalogue, &c.Simulate.StateFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(base, *p)
			}
		}
		if c.Data.Dir != "" && !filepath.IsAbs(c.Data.Dir) {
			c.Data.Dir = filepath.Join(base, c.Data.Dir)
		}
	}
	return c, nil
}

// flags are the command-line overrides, dotted like the YAML keys.
type flags struct {
	config    string
	brokers   string
	dataDir   string
	httpAddr  string
	logLevel  string
	kafkaPort int
}

func (f *flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML configuration file")
	fs.StringVar(&f.brokers, "kafka.brokers", "", "comma-separated seed brokers of an external Kafka/Redpanda (empty: embedded broker)")
	fs.IntVar(&f.kafkaPort, "kafka.embedded.port", 0, "port of the embedded broker on 127.0.0.1 (-1: a free port; default from the config, else 9092)")
	fs.StringVar(&f.dataDir, "data.dir", "", "data directory (history, broker log, feed state)")
	fs.StringVar(&f.httpAddr, "http.addr", "", "HTTP listen address (default localhost:8080)")
	fs.StringVar(&f.logLevel, "log.level", "", "log level: debug, info, warn, error")
}

// resolve loads the file, applies flags and defaults, and validates.
func (f *flags) resolve() (Config, error) {
	c, err := loadConfig(f.config)
	if err != nil {
		return c, err
	}
	if f.brokers != "" {
		c.Kafka.Brokers = strings.Split(f.brokers, ",")
	}
	if f.kafkaPort != 0 {
		c.Kafka.Embedded.Port = f.kafkaPort
	}
	if f.dataDir != "" {
		c.Data.Dir = f.dataDir
	}
	if f.httpAddr != "" {
		c.HTTP.Addr = f.httpAddr
	}
	if f.logLevel != "" {
		c.Log.Level = f.logLevel
	}
	c.defaults()
	return c, c.validate()
}

func (c *Config) defaults() {
	if c.Data.Dir == "" {
		c.Data.Dir = "data"
	}
	if abs, err := filepath.Abs(c.Data.Dir); err == nil {
		c.Data.Dir = abs
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Kafka.Embedded.Dir == "" {
		c.Kafka.Embedded.Dir = filepath.Join(c.Data.Dir, "kafka")
	}
	c.Kafka.Defaults()
	c.HTTP.Defaults()
	c.HTTP.Auth = c.Auth
	if c.Account.Path == "" {
		c.Account.Path = filepath.Join(c.Data.Dir, "state", "netwarden.db")
	}
	c.Account.Defaults()
	c.Watchlist.Defaults()
	c.Alerts.Defaults()
	if c.Detect.Path == "" {
		c.Detect.Path = filepath.Join(c.Data.Dir, "outage", "outage.db")
	}
	c.Detect.Defaults()
	c.Processor.Defaults()
	if c.History.Dir == "" {
		c.History.Dir = filepath.Join(c.Data.Dir, "history")
	}
	c.History.Defaults()
	if c.Query.OutageDir == "" {
		c.Query.OutageDir = filepath.Join(c.Data.Dir, "outage", "sql")
	}
	if c.Query.HistoryDir == "" {
		c.Query.HistoryDir = c.History.Dir
	}
	c.Query.Defaults()
	if c.Scrape.StateDir == "" {
		c.Scrape.StateDir = filepath.Join(c.Data.Dir, "scrape")
	}
	c.Scrape.Feeds = append(c.Scrape.Feeds, c.Feeds...)
	c.Feeds = nil
	c.Scrape.Defaults()
	if c.Check.Every == 0 {
		c.Check.Every = 15 * time.Minute
	}
	if c.Notify.PublicURL == "" { // dashboard links: the API's own address
		host, port, _ := net.SplitHostPort(c.HTTP.Addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.Notify.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	c.Notify.Defaults()
	c.Entity = entityDefaults(c.Entity)
	simulateDefaults(c)
}

// entityDefaults fills each unset MaxMind/countries path with the shared
// data's file when that exists (a checkout without ../shared then runs
// with no metadata, every code annotated as unknown, instead of
// failing); "none" turns a source off.
func entityDefaults(c entity.Config) entity.Config {
	d := entity.Defaults()
	for _, f := range []struct{ p, def *string }{{&c.CountriesCSV, &d.CountriesCSV}, {&c.ASNDB, &d.ASNDB}, {&c.CityDB, &d.CityDB}} {
		switch *f.p {
		case "none":
			*f.p = ""
		case "":
			if _, err := os.Stat(*f.def); err == nil {
				*f.p = *f.def
			}
		}
	}
	if c.AS2Org == "none" {
		c.AS2Org = ""
	}
	if c.RegionsCSV == "none" {
		c.RegionsCSV = ""
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	errs = append(errs, c.Detect.Validate())
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q (want debug, info, warn or error)", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q (want text or json)", c.Log.Format))
	}
	errs = append(errs, c.Kafka.Validate(), c.HTTP.Validate(), c.Processor.Validate(), c.History.Validate(), c.Query.Validate(), c.Scrape.Validate(), c.Account.Validate(), c.Notify.Validate(), c.Watchlist.Validate(), c.Alerts.Validate(), c.Entity.Validate(), c.Simulate.Validate())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	return nil
}
