package bench

import (
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envInt reads a positive integer from the environment variable name
// (underscores and commas allowed: 100_000_000), or returns def.
func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := strings.NewReplacer("_", "", ",", "").Replace(os.Getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, os.Getenv(name))
	}
	return n
}

// envDuration reads a duration from the environment variable name, or returns def.
func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// quietLog discards everything: the components log at info level.
func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pct returns the p-th percentile (0 < p <= 100) of sorted, nearest rank.
func pct[T any](sorted []T, p float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// latencies summarises samples (sorts them in place).
type latencies struct {
	n                   int
	p50, p99, p999, max time.Duration
}

func summarize(ds []time.Duration) latencies {
	slices.Sort(ds)
	if len(ds) == 0 {
		return latencies{}
	}
	return latencies{n: len(ds), p50: pct(ds, 50), p99: pct(ds, 99), p999: pct(ds, 99.9), max: ds[len(ds)-1]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
