package scrape

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/netwarden/netwarden/ingest/feed"
	"github.com/netwarden/netwarden/internal/resource"
)

// FeedConfig is one list to watch.
type FeedConfig struct {
	// Name is the list's name as it appears in history and alerts.
	Name string `yaml:"name"`
	// Kind is ip, domain or email.
	Kind string `yaml:"kind"`
	// Format is auto, plain, spamhaus, firehol, csv, ipsum, hosts or dshield.
	Format string `yaml:"format"`
	// Source is an http(s) URL, a file, or a directory of snapshots.
	Source string `yaml:"source"`
	// Every is the scrape interval (URLs, files) or the poll interval for
	// new snapshots (directories).
	Every time.Duration `yaml:"every"`
	// MaxDrop is the largest share of entries one version may remove
	// before it is held back as suspicious (0..1; 1 disables the guard).
	MaxDrop float64 `yaml:"max_drop"`
	// ConfirmDrops is how many consecutive versions must show a held-back
	// drop before it is accepted (0 = never accepted automatically).
	ConfirmDrops int `yaml:"confirm_drops"`
}

// Config configures the scrape manager.
type Config struct {
	Feeds []FeedConfig `yaml:"feeds"`
	// StateDir keeps each feed's last published version (set by the caller
	// to <data.dir>/scrape when empty).
	StateDir string `yaml:"state_dir"`
	// Defaults for feeds that leave them zero.
	DefaultEvery   time.Duration `yaml:"default_every"`
	DefaultMaxDrop float64       `yaml:"default_max_drop"`
	ConfirmDrops   int           `yaml:"confirm_drops"`
	// HTTP fetches.
	Timeout      time.Duration `yaml:"timeout"`
	MaxBodyBytes int64         `yaml:"max_body_bytes"`
	UserAgent    string        `yaml:"user_agent"`
	// MinEntriesForDropCheck: lists smaller than this are not drop-guarded.
	MinEntriesForDropCheck int `yaml:"min_entries_for_drop_check"`
}

// Defaults fills zero fields of c and its feeds.
func (c *Config) Defaults() {
	if c.DefaultEvery == 0 {
		c.DefaultEvery = time.Hour
	}
	if c.DefaultMaxDrop == 0 {
		c.DefaultMaxDrop = 0.5
	}
	if c.ConfirmDrops == 0 {
		c.ConfirmDrops = 3
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 256 << 20
	}
	if c.UserAgent == "" {
		c.UserAgent = "netwarden/1 (+blocklist history)"
	}
	if c.MinEntriesForDropCheck == 0 {
		c.MinEntriesForDropCheck = 20
	}
	for i := range c.Feeds {
		f := &c.Feeds[i]
		if f.Format == "" {
			f.Format = "auto"
		}
		if f.Every == 0 {
			f.Every = c.DefaultEvery
		}
		if f.MaxDrop == 0 {
			f.MaxDrop = c.DefaultMaxDrop
		}
		if f.ConfirmDrops == 0 {
			f.ConfirmDrops = c.ConfirmDrops
		}
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// Validate checks c.
func (c Config) Validate() error {
	if c.StateDir == "" {
		return errors.New("scrape.state_dir is empty")
	}
	seen := map[string]bool{}
	var errs []error
	for i, f := range c.Feeds {
		where := fmt.Sprintf("feeds[%d] (%s)", i, f.Name)
		if !nameRE.MatchString(f.Name) {
			errs = append(errs, fmt.Errorf("%s: name must match %s", where, nameRE))
		}
		if seen[f.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", where))
		}
		seen[f.Name] = true
		if _, err := resource.ParseKind(f.Kind); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if _, err := feed.ParseFormat(f.Format); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if f.Source == "" {
			errs = append(errs, fmt.Errorf("%s: source is empty", where))
		} else if strings.Contains(f.Source, "://") {
			u, err := url.Parse(f.Source)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("%s: source %q is not an http(s) URL", where, f.Source))
			}
		}
		if f.Every < time.Second {
			errs = append(errs, fmt.Errorf("%s: every %v is below 1s", where, f.Every))
		}
		if f.MaxDrop <= 0 || f.MaxDrop > 1 {
			errs = append(errs, fmt.Errorf("%s: max_drop %v out of (0,1]", where, f.MaxDrop))
		}
		if f.ConfirmDrops < 0 {
			errs = append(errs, fmt.Errorf("%s: confirm_drops %d < 0", where, f.ConfirmDrops))
		}
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("scrape.max_body_bytes %d too small", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}
