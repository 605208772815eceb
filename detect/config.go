package detect

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// Datasource names with IODA's defaults.
const (
	BGP         = "bgp"
	PingSlash24 = "ping-slash24"
	UCSDNT      = "ucsd-nt"
)

// DatasourceConfig is how one datasource's series are binned and judged.
// Durations are in seconds; counts are in bins.
type DatasourceConfig struct {
	Bin          int64   `yaml:"bin"`           // bin width, seconds (bgp 300, ping-slash24 600, ucsd-nt 300)
	Window       int64   `yaml:"window"`        // moving-median window, seconds; a multiple of Bin
	WarmUp       int     `yaml:"warm_up"`       // values the window must hold before a bin is judged
	MinPredicted float64 `yaml:"min_predicted"` // below this prediction a bin is not judged (normal)
	MinDrop      float64 `yaml:"min_drop"`      // a bin is normal unless at least this far below the prediction (absolute units)
	Warning      float64 `yaml:"warning"`       // warning when value < historical * Warning
	Critical     float64 `yaml:"critical"`      // critical when value < historical * Critical
	MinDuration  int     `yaml:"min_duration"`  // bins a new level must last before it is alerted
	AcceptAfter  int     `yaml:"accept_after"`  // inpainted bins in a row after which the new level becomes the baseline
}

// Slots is the number of bins in the window.
func (c DatasourceConfig) Slots() int { return int(c.Window / c.Bin) }

// Validate reports the first inconsistent field.
func (c DatasourceConfig) Validate() error {
	switch {
	case c.Bin <= 0:
		return fmt.Errorf("bin %d: must be > 0", c.Bin)
	case c.Window < c.Bin || c.Window%c.Bin != 0:
		return fmt.Errorf("window %d: must be a positive multiple of bin %d", c.Window, c.Bin)
	case c.WarmUp < 1 || c.WarmUp > c.Slots():
		return fmt.Errorf("warm_up %d: must be in [1, %d] (bins in the window)", c.WarmUp, c.Slots())
	case c.MinPredicted < 0:
		return fmt.Errorf("min_predicted %g: must be >= 0", c.MinPredicted)
	case !(c.MinDrop >= 0 && c.MinDrop < math.Inf(1)):
		return fmt.Errorf("min_drop %g: must be finite and >= 0", c.MinDrop)
	case !(c.Critical > 0 && c.Critical <= c.Warning && c.Warning <= 1):
		return fmt.Errorf("thresholds critical %g, warning %g: need 0 < critical <= warning <= 1", c.Critical, c.Warning)
	case c.MinDuration < 1:
		return fmt.Errorf("min_duration %d: must be >= 1", c.MinDuration)
	case c.AcceptAfter < c.WarmUp || c.AcceptAfter > c.Slots():
		return fmt.Errorf("accept_after %d: must be in [warm_up %d, %d]", c.AcceptAfter, c.WarmUp, c.Slots())
	}
	return nil
}

// Config is the detector's configuration.
type Config struct {
	Grace       int64                       `yaml:"grace"` // seconds a bin waits past its end for late points
	Datasources map[string]DatasourceConfig `yaml:"datasources"`
}

// Defaults are IODA's: moving median over 24 h for bgp, 7 d for probing and telescope;
// bgp warning < 0.99x, critical < 0.5x; probing 0.8x / 0.5x; telescope 0.25x / 0.1x. Beyond
// IODA, a bgp bin must also be at least 3 /24s below the baseline to leave normal (MinDrop).
func Defaults() Config {
	ds := func(bin, window int64, minPred, minDrop, warn, crit float64) DatasourceConfig {
		slots := int(window / bin)
		return DatasourceConfig{
			Bin: bin, Window: window, WarmUp: slots / 4, MinPredicted: minPred, MinDrop: minDrop,
			Warning: warn, Critical: crit, MinDuration: 2, AcceptAfter: slots / 2,
		}
	}
	const day = 86400
	return Config{
		Grace: 600,
		Datasources: map[string]DatasourceConfig{
			// min_drop 3 /24s: with warning at 0.99, an entity of a few hundred /24s or less
			// crosses the threshold when one or two /24s wobble (bench/detect measured 13 false
			// alerts per entity-month without it, 0.06 with it, recall unchanged).
			BGP:         ds(300, day, 10, 3, 0.99, 0.5),
			PingSlash24: ds(600, 7*day, 10, 0, 0.8, 0.5),
			UCSDNT:      ds(300, 7*day, 10, 0, 0.25, 0.1),
		},
	}
}

// Validate checks the grace and every datasource.
func (c Config) Validate() error {
	if c.Grace < 0 {
		return fmt.Errorf("grace %d: must be >= 0", c.Grace)
	}
	if len(c.Datasources) == 0 {
		return errors.New("datasources: none configured")
	}
	names := make([]string, 0, len(c.Datasources))
	for n := range c.Datasources {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.Datasources[n].Validate(); err != nil {
			return fmt.Errorf("datasource %q: %w", n, err)
		}
	}
	return nil
}
