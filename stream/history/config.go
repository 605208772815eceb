package history

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Store.
type Config struct {
	// Dir is the store's directory, e.g. <data.dir>/history. Required.
	Dir string
	// RowGroupRows is the number of rows per Parquet row group.
	RowGroupRows int
	// TargetFileRows is the size compaction merges files up to.
	TargetFileRows int
	// CompactMinFiles: a month is compacted when it has at least this many
	// small files (fewer than TargetFileRows/2 rows).
	CompactMinFiles int
	// CompactEvery is the period of Run's compaction.
	CompactEvery time.Duration
	// DeleteDelay is how long files replaced by compaction stay on disk
	// (outside readers such as DuckDB may still read them).
	DeleteDelay time.Duration
}

// Defaults.
const (
	DefaultRowGroupRows    = 64 * 1024
	DefaultTargetFileRows  = 8 << 20
	DefaultCompactMinFiles = 4
	DefaultCompactEvery    = time.Minute
	DefaultDeleteDelay     = 2 * time.Minute
)

// Defaults fills zero fields with their defaults.
func (c *Config) Defaults() {
	if c.RowGroupRows == 0 {
		c.RowGroupRows = DefaultRowGroupRows
	}
	if c.TargetFileRows == 0 {
		c.TargetFileRows = DefaultTargetFileRows
	}
	if c.CompactMinFiles == 0 {
		c.CompactMinFiles = DefaultCompactMinFiles
	}
	if c.CompactEvery == 0 {
		c.CompactEvery = DefaultCompactEvery
	}
	if c.DeleteDelay == 0 {
		c.DeleteDelay = DefaultDeleteDelay
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is empty"))
	}
	if c.RowGroupRows < 1 {
		errs = append(errs, fmt.Errorf("row group rows %d < 1", c.RowGroupRows))
	}
	if c.TargetFileRows < c.RowGroupRows {
		errs = append(errs, fmt.Errorf("target file rows %d < row group rows %d", c.TargetFileRows, c.RowGroupRows))
	}
	if c.CompactMinFiles < 2 {
		errs = append(errs, fmt.Errorf("compact min files %d < 2", c.CompactMinFiles))
	}
	if c.CompactEvery <= 0 {
		errs = append(errs, fmt.Errorf("compact every %v <= 0", c.CompactEvery))
	}
	if c.DeleteDelay < 0 {
		errs = append(errs, fmt.Errorf("delete delay %v < 0", c.DeleteDelay))
	}
	if len(errs) > 0 {
		return fmt.Errorf("history config: %w", errors.Join(errs...))
	}
	return nil
}
