package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Engine runs locked-down read-only SQL over the history files and the lists
// table. See the package documentation for the contract.
type Engine struct {
	cfg       Config
	connector *duckdb.Connector
	db        *sql.DB
	closed    atomic.Bool

	// writeMu serializes SetFiles, SetLists and Close; admin is the pinned
	// connection they use, so they never wait behind user queries.
	writeMu sync.Mutex
	admin   *sql.Conn

	// Generation tracking for WaitForOldQueries.
	genMu   sync.Mutex
	gen     uint64         // incremented by every successful SetFiles
	active  map[uint64]int // running queries by the generation they started in
	changed chan struct{}  // closed (and replaced) when a query finishes
}

// New opens an in-memory DuckDB database, applies and locks the
// configuration, and creates the (empty) `changes` view and `lists` table.
func New(cfg Config) (*Engine, error) {
	if err := cfg.prepare(); err != nil {
		return nil, err
	}
	connector, err := duckdb.NewConnector("", nil) // in-memory database
	if err != nil {
		return nil, fmt.Errorf("query: open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	// One pinned admin connection plus MaxConcurrent query connections.
	db.SetMaxOpenConns(cfg.MaxConcurrent + 1)
	db.SetMaxIdleConns(cfg.MaxConcurrent + 1)
	e := &Engine{
		cfg:       cfg,
		connector: connector,
		db:        db,
		active:    make(map[uint64]int),
		changed:   make(chan struct{}),
	}
	if err := e.init(); err != nil {
		_ = e.closeDB()
		return nil, err
	}
	return e, nil
}

// settingsSQL returns the statements that configure and lock the database,
// in the order they must run: temp_directory and allowed_directories cannot
// be changed once enable_external_access is false, and nothing can be changed
// after lock_configuration.
func settingsSQL(cfg Config) []string {
	return []string{
		// Timestamps with time zone are rendered in UTC (ICU is built in).
		`SET GLOBAL TimeZone = 'UTC'`,
		`SET GLOBAL memory_limit = ` + sqlString(cfg.MemoryLimit),
		fmt.Sprintf(`SET GLOBAL threads = %d`, cfg.Threads),
		// '' disables spilling; the in-memory default would be ./.tmp.
		`SET GLOBAL temp_directory = ` + sqlString(cfg.TempDir),
		`SET GLOBAL max_temp_directory_size = ` + sqlString(cfg.MaxTempSize),
		// parquet, json and icu are statically linked: nothing to load.
		`SET GLOBAL autoinstall_known_extensions = false`,
		`SET GLOBAL autoload_known_extensions = false`,
		`SET GLOBAL allow_community_extensions = false`,
		`SET GLOBAL allowed_directories = [` + allowedDirs(cfg) + `]`,
		`SET GLOBAL enable_external_access = false`,
		`SET GLOBAL lock_configuration = true`,
	}
}

func (e *Engine) init() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("query: connect: %w", err)
	}
	e.admin = admin
	for _, s := range settingsSQL(e.cfg) {
		if _, err := admin.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("query: apply %q: %w", s, err)
		}
	}
	// The engine owns `lists`; users cannot modify it because only SELECT
	// statements are accepted.
	if _, err := admin.ExecContext(ctx, `CREATE TABLE lists (
		"name" VARCHAR NOT NULL,
		"kind" VARCHAR,
		"source" VARCHAR,
		"format" VARCHAR,
		"status" VARCHAR,
		"last_fetch" TIMESTAMPTZ,
		"last_change" TIMESTAMPTZ,
		"entries" BIGINT,
		"error" VARCHAR)`); err != nil {
		return fmt.Errorf("query: create lists table: %w", err)
	}
	if _, err := admin.ExecContext(ctx, changesViewSQL(nil)); err != nil {
		return fmt.Errorf("query: create changes view: %w", err)
	}
	for _, s := range outageViewsSQL(OutageFiles{}) {
		if _, err := admin.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("query: create outage views: %w", err)
		}
	}
	// TODO(alerts): an `alerts` view over the alert history slots in here,
	// defined like `changes` (a SetAlertFiles method that replaces it).
	return nil
}

// changesColumns projects the public columns of the history files; the
// binary sort key is left out. The casts pin the view's types whatever
// the writer used (they are no-ops for files written as specified).
const changesColumns = `CAST("ts" AS TIMESTAMPTZ) AS "ts", CAST("op" AS VARCHAR) AS "op", ` +
	`CAST("kind" AS VARCHAR) AS "kind", CAST("list" AS VARCHAR) AS "list", ` +
	`CAST("resource" AS VARCHAR) AS "resource", ` +
	`CAST("kafka_partition" AS INTEGER) AS "kafka_partition", CAST("kafka_offset" AS BIGINT) AS "kafka_offset"`

// emptyChanges is a relation with every column of the view and no rows.
const emptyChanges = `SELECT CAST(NULL AS TIMESTAMPTZ) AS "ts", ` +
	`CAST(NULL AS VARCHAR) AS "op", CAST(NULL AS VARCHAR) AS "kind", ` +
	`CAST(NULL AS VARCHAR) AS "list", CAST(NULL AS VARCHAR) AS "resource", ` +
	`CAST(NULL AS INTEGER) AS "kafka_partition", CAST(NULL AS BIGINT) AS "kafka_offset" WHERE false`

// changesViewSQL defines `changes` over exactly files (already validated),
// or as an empty relation with the same columns when there are none.
// kafka_partition and kafka_offset (the change record's position on
// netwarden.changes) are NULL for rows of schema-1 files, which lack
// them: the files are read by name and united by name with the empty
// relation, so the view has every column even when no file has them.
func changesViewSQL(files []string) string {
	if len(files) == 0 {
		return `CREATE OR REPLACE VIEW changes AS ` + emptyChanges
	}
	lits := make([]string, len(files))
	for i, f := range files {
		lits[i] = sqlString(f)
	}
	return `CREATE OR REPLACE VIEW changes AS SELECT ` + changesColumns + ` FROM (` +
		`SELECT * FROM read_parquet([` + strings.Join(lits, ", ") + `], hive_partitioning = false, union_by_name = true) ` +
		`UNION ALL BY NAME ` + emptyChanges + `)`
}

// allowedDirs lists the directories DuckDB may read: HistoryDir and,
// when set, OutageDir.
func allowedDirs(cfg Config) string {
	dirs := sqlString(cfg.HistoryDir + string(filepath.Separator))
	if cfg.OutageDir != "" {
		dirs += ", " + sqlString(cfg.OutageDir+string(filepath.Separator))
	}
	return dirs
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// SetFiles (re)defines the view `changes` over exactly files (absolute paths
// inside HistoryDir, in the order given). An empty list gives an empty view
// with the same columns and types. DuckDB reads each file's metadata while
// replacing the view, so missing or unreadable files are reported here.
//
// SetFiles is safe to call concurrently with queries: a query sees either the
// old or the new file list. Queries that started before SetFiles may still be
// reading the old files; see WaitForOldQueries before deleting any.
func (e *Engine) SetFiles(files []string) error {
	if e.closed.Load() {
		return ErrClosed
	}
	clean, err := cleanFiles(e.cfg.HistoryDir, files)
	if err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	defer cancel()
	if _, err := e.admin.ExecContext(ctx, changesViewSQL(clean)); err != nil {
		return fmt.Errorf("query: set files (%d files): %w", len(clean), err)
	}
	e.genMu.Lock()
	e.gen++
	e.genMu.Unlock()
	return nil
}

// cleanFiles checks that files are absolute paths inside histDir and
// returns them cleaned.
func cleanFiles(histDir string, files []string) ([]string, error) {
	clean := make([]string, len(files))
	for i, f := range files {
		if !filepath.IsAbs(f) {
			return nil, fmt.Errorf("query: set files: %q is not an absolute path", f)
		}
		f = filepath.Clean(f)
		if f == histDir || !isWithin(histDir, f) {
			return nil, fmt.Errorf("query: set files: %q is not inside the history dir %q", f, histDir)
		}
		if strings.IndexByte(f, 0) >= 0 {
			return nil, fmt.Errorf("query: set files: %q contains a NUL byte", f)
		}
		clean[i] = f
	}
	return clean, nil
}

// ListRow is one row of the `lists` table.
type ListRow struct {
	Name, Kind, Source, Format, Status string
	LastFetch                          time.Time // zero -> NULL
	LastChange                         time.Time // zero -> NULL
	Entries                            int64
	Error                              string // "" -> NULL
}

// SetLists atomically replaces the content of the `lists` table. Queries see
// either the old or the new content.
func (e *Engine) SetLists(rows []ListRow) error {
	return e.adminTx("set lists", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM lists`); err != nil {
			return fmt.Errorf("clear: %w", err)
		}
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO lists VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				r.Name, r.Kind, r.Source, r.Format, r.Status,
				nullTime(r.LastFetch), nullTime(r.LastChange), r.Entries, nullString(r.Error)); err != nil {
				return fmt.Errorf("insert %q: %w", r.Name, err)
			}
		}
		return nil
	})
}

// adminTx runs fn in one transaction of the admin connection, under the
// write lock and the query timeout; errors are prefixed "query: <what>: ".
func (e *Engine) adminTx(what string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if e.closed.Load() {
		return ErrClosed
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	defer cancel()
	tx, err := e.admin.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("query: %s: begin: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(ctx, tx); err != nil {
		return fmt.Errorf("query: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("query: %s: commit: %w", what, err)
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// WaitForOldQueries blocks until every query that started before the most
// recent SetFiles call has finished (or ctx ends). Call it after SetFiles and
// before deleting files that only the previous file list referenced;
// otherwise such queries may fail with an I/O error. Queries are bounded by
// Config.Timeout, so the wait is too.
func (e *Engine) WaitForOldQueries(ctx context.Context) error {
	e.genMu.Lock()
	target := e.gen
	e.genMu.Unlock()
	for {
		e.genMu.Lock()
		pending := false
		for g, n := range e.active {
			if g < target && n > 0 {
				pending = true
				break
			}
		}
		ch := e.changed
		e.genMu.Unlock()
		if !pending {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("query: wait for old queries: %w", ctx.Err())
		}
	}
}

// track registers a running query and returns the function that ends it.
func (e *Engine) track() func() {
	e.genMu.Lock()
	g := e.gen
	e.active[g]++
	e.genMu.Unlock()
	return func() {
		e.genMu.Lock()
		if e.active[g]--; e.active[g] <= 0 {
			delete(e.active, g)
		}
		close(e.changed)
		e.changed = make(chan struct{})
		e.genMu.Unlock()
	}
}

// Close closes the database. Running queries are allowed to finish first
// (they are bounded by Config.Timeout); later calls return ErrClosed.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return ErrClosed
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	return e.closeDB()
}

func (e *Engine) closeDB() error {
	var errs []error
	if e.admin != nil {
		if err := e.admin.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.db.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := e.connector.Close(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("query: close: %w", errors.Join(errs...))
	}
	return nil
}
