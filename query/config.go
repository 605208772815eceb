package query

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by Config.Defaults.
const (
	DefaultMemoryLimit   = "512MB"
	DefaultThreads       = 2
	DefaultTimeout       = 30 * time.Second
	DefaultMaxRows       = 100000
	DefaultMaxTempSize   = "1GB"
	DefaultMaxConcurrent = 4
	DefaultMaxBytes      = 64 << 20
	// DefaultWorkerOverhead is added to MemoryLimit for a worker's address
	// space limit when WorkerMemory is not set. An idle worker maps about
	// 1.2 GiB of address space (Go runtime and allocator reservations, thread
	// stacks; its RSS is ~45 MiB), all of which counts against RLIMIT_AS.
	DefaultWorkerOverhead = 2 << 30
)

// Config configures an Engine. Zero values are replaced by Defaults.
type Config struct {
	// HistoryDir is the only directory DuckDB may read (allowed_directories).
	// Every file passed to SetFiles must be inside it. Relative paths are made
	// absolute by New.
	HistoryDir string `yaml:"history_dir"`
	// OutageDir holds the outage store's Parquet exports behind the views
	// outage_alerts and outage_events (SetOutageFiles); DuckDB may read it
	// too. Empty: the views stay empty.
	OutageDir string `yaml:"outage_dir"`
	// MemoryLimit is DuckDB's memory_limit (e.g. "512MB", "2GiB").
	MemoryLimit string `yaml:"memory_limit"`
	// Threads is DuckDB's worker thread count (shared by all queries).
	Threads int `yaml:"threads"`
	// Timeout bounds every query (validation, planning and execution).
	Timeout time.Duration `yaml:"timeout"`
	// MaxRows is the maximum number of rows returned by a query; a query that
	// would return more is cut off and flagged as truncated.
	MaxRows int `yaml:"max_rows"`
	// TempDir is DuckDB's spill directory. It should live inside the data
	// directory; it is created if missing. Empty disables spilling to disk
	// (large sorts/joins then fail with ErrResourceLimit instead).
	// DuckDB implicitly allows reads below TempDir too, so put nothing but
	// spill files there.
	TempDir string `yaml:"temp_dir"`
	// MaxTempSize is DuckDB's max_temp_directory_size (only relevant with a
	// TempDir).
	MaxTempSize string `yaml:"max_temp_size"`
	// MaxConcurrent is the maximum number of queries that run at once (the
	// size of the connection pool). Further queries wait for a free
	// connection; the wait counts against Timeout.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxBytes caps the encoded size of a result (Pool.Query): the body ends
	// cleanly before it and the result is flagged truncated.
	MaxBytes int64 `yaml:"max_bytes"`
	// WorkerMemory is the address space limit (RLIMIT_AS) of a worker
	// process, a size like "3GB"; empty means MemoryLimit plus 2 GiB. A
	// worker that exceeds it dies and its query fails with ErrResourceLimit.
	WorkerMemory string `yaml:"worker_memory"`
}

// Defaults fills zero fields with their default values.
func (c *Config) Defaults() {
	if c.MemoryLimit == "" {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.Threads == 0 {
		c.Threads = DefaultThreads
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRows == 0 {
		c.MaxRows = DefaultMaxRows
	}
	if c.MaxTempSize == "" {
		c.MaxTempSize = DefaultMaxTempSize
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
}

// prepare fills defaults, validates c, makes HistoryDir and TempDir
// absolute and creates TempDir (New and NewPool).
func (c *Config) prepare() error {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return err
	}
	hist, err := filepath.Abs(c.HistoryDir)
	if err != nil {
		return fmt.Errorf("query: history dir: %w", err)
	}
	c.HistoryDir = hist
	if c.OutageDir != "" {
		if c.OutageDir, err = filepath.Abs(c.OutageDir); err != nil {
			return fmt.Errorf("query: outage dir: %w", err)
		}
	}
	if c.TempDir != "" {
		if c.TempDir, err = filepath.Abs(c.TempDir); err != nil {
			return fmt.Errorf("query: temp dir: %w", err)
		}
		if err := os.MkdirAll(c.TempDir, 0o700); err != nil {
			return fmt.Errorf("query: create temp dir: %w", err)
		}
	}
	return nil
}

// WorkerMemoryBytes is the RLIMIT_AS of a worker in bytes (see WorkerMemory).
func (c Config) WorkerMemoryBytes() int64 {
	if c.WorkerMemory != "" {
		n, _ := parseSize(c.WorkerMemory)
		return n
	}
	n, _ := parseSize(c.MemoryLimit)
	return n + DefaultWorkerOverhead
}

// parseSize converts a size string accepted by sizeRE to bytes (KB = 1000,
// KiB = 1024, as DuckDB does).
func parseSize(s string) (int64, error) {
	m := sizeParseRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size like 512MB", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]float64{"": 1, "B": 1, "BYTE": 1, "BYTES": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}[strings.ToUpper(m[2])]
	return int64(v * mult), nil
}

var sizeParseRE = regexp.MustCompile(`^(?i)([0-9]+(?:\.[0-9]+)?)\s*(B|BYTES?|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?$`)

// sizeRE matches the DuckDB size strings we accept (they are interpolated
// into SET statements, so nothing else may pass).
var sizeRE = regexp.MustCompile(`^(?i)[0-9]+(\.[0-9]+)?\s*(B|BYTES?|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?$`)

// Validate reports the first invalid field. Call Defaults first.
func (c Config) Validate() error {
	var errs []error
	if c.HistoryDir == "" {
		errs = append(errs, errors.New("HistoryDir is required"))
	} else if h, err := filepath.Abs(c.HistoryDir); err == nil && filepath.Dir(h) == h {
		errs = append(errs, fmt.Errorf("HistoryDir %q must not be the filesystem root", c.HistoryDir))
	}
	if !sizeRE.MatchString(c.MemoryLimit) {
		errs = append(errs, fmt.Errorf("MemoryLimit %q is not a size like 512MB", c.MemoryLimit))
	}
	if !sizeRE.MatchString(c.MaxTempSize) {
		errs = append(errs, fmt.Errorf("MaxTempSize %q is not a size like 1GB", c.MaxTempSize))
	}
	if c.Threads < 1 {
		errs = append(errs, fmt.Errorf("Threads must be >= 1, got %d", c.Threads))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("Timeout must be > 0, got %s", c.Timeout))
	}
	if c.MaxRows < 1 {
		errs = append(errs, fmt.Errorf("MaxRows must be >= 1, got %d", c.MaxRows))
	}
	if c.MaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("MaxBytes must be >= 1024, got %d", c.MaxBytes))
	}
	if c.WorkerMemory != "" {
		if n, err := parseSize(c.WorkerMemory); err != nil || n < 256<<20 {
			errs = append(errs, fmt.Errorf("WorkerMemory %q is not a size of at least 256MiB", c.WorkerMemory))
		}
	}
	if c.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("MaxConcurrent must be >= 1, got %d", c.MaxConcurrent))
	}
	if c.HistoryDir != "" && c.TempDir != "" {
		h, err1 := filepath.Abs(c.HistoryDir)
		t, err2 := filepath.Abs(c.TempDir)
		if err1 == nil && err2 == nil && (isWithin(h, t) || isWithin(t, h)) {
			errs = append(errs, fmt.Errorf("TempDir %q must not overlap HistoryDir %q", c.TempDir, c.HistoryDir))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("query config: %w", errors.Join(errs...))
	}
	return nil
}

// isWithin reports whether path p is dir or below it (both absolute, clean).
func isWithin(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !filepath.IsAbs(rel) && !hasDotDotPrefix(rel))
}

func hasDotDotPrefix(rel string) bool {
	return len(rel) >= 3 && rel[:2] == ".." && rel[2] == filepath.Separator
}
