// Package account keeps netwarden's customer state — accounts on plans,
// API keys and their daily hits, and (in sibling files) watchlists,
// mutes, notification settings and alerts — in one embedded SQLite
// database under the data directory.
//
// Choice: SQLite through github.com/mattn/go-sqlite3 (cgo; the binary is
// cgo already for DuckDB). The pure-Go modernc.org/sqlite was measured
// beside it once, with a throwaway benchmark outside the repo (100k
// inserts in one transaction, then 2,000 indexed queries): without -race 1.75× slower inserts and 0.6× the query time,
// but under `go test -race`, which CI runs, 8.8× slower inserts and 15×
// slower queries, because the race detector instruments its transpiled
// C. Queries are plain SQL that PostgreSQL also runs (`ON CONFLICT ... DO
// NOTHING/UPDATE SET x = excluded.x`, BIGINT, TEXT, no SQLite functions);
// moving to PostgreSQL for multi-instance deployments takes these DDL and
// driver differences (known, not yet run against PostgreSQL): `?` becomes `$n`;
// `INTEGER PRIMARY KEY` ids become `BIGSERIAL` with `RETURNING id` in
// place of LastInsertId; BLOB becomes BYTEA; the watch and mutes tables
// drop `WITHOUT ROWID` (a SQLite storage hint, PostgreSQL's heap with
// the primary-key index serves the same queries).
//
// A Store is safe for concurrent use. Writes run in IMMEDIATE
// transactions (one writer at a time, readers never blocked: WAL).
// Schema changes are named migrations applied once, in name order, at
// Open; files of this package register theirs with migrate in init.
package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"
)

// Sentinels for control flow; the API maps them to status codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("invalid or revoked API key")
	ErrForbidden    = errors.New("the API key lacks the scope")
	ErrQuota        = errors.New("daily API quota exhausted")
	ErrInvalid      = errors.New("invalid")
	ErrExists       = errors.New("already exists")
)

// Config configures the store.
type Config struct {
	// Path of the database file; empty means <data.dir>/state/netwarden.db
	// (filled by the caller).
	Path string `yaml:"path"`
	// Plans override or extend the default plans by name.
	Plans map[string]Plan `yaml:"plans"`
	// HitFlush is how often counted API hits are written (default 5 s).
	HitFlush time.Duration `yaml:"hit_flush"`
}

// Defaults fills zero fields and merges the default plans under Plans.
func (c *Config) Defaults() {
	plans := DefaultPlans()
	for name, p := range c.Plans {
		plans[name] = p
	}
	c.Plans = plans
	if c.HitFlush == 0 {
		c.HitFlush = 5 * time.Second
	}
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("account.path is empty")
	}
	var errs []error
	for _, name := range slices.Sorted(mapKeys(c.Plans)) {
		if err := c.Plans[name].validate(); err != nil {
			errs = append(errs, fmt.Errorf("account.plans.%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func mapKeys[M ~map[K]V, K comparable, V any](m M) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Store is the account database.
type Store struct {
	db    *sql.DB
	cfg   Config
	now   func() time.Time
	hitMu sync.Mutex
	hits  map[hitKey]*hitCount
}

// Option configures Open.
type Option func(*Store)

// WithClock sets the store's clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

type migration struct {
	name  string
	stmts []string
}

var migrations []migration

// migrate registers a named schema migration (called from init).
func migrate(name string, stmts ...string) {
	migrations = append(migrations, migration{name, stmts})
}

// Open opens (creating if needed) the database at cfg.Path and applies
// pending migrations. cfg must have had Defaults applied.
func Open(cfg Config, opts ...Option) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, fmt.Errorf("create state dir for %q: %w", cfg.Path, err)
	}
	dsn := "file:" + cfg.Path + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_foreign_keys=on&_txlock=immediate&_cache_size=-65536"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open account db %q: %w", cfg.Path, err)
	}
	s := &Store{db: db, cfg: cfg, now: time.Now, hits: map[hitKey]*hitCount{}}
	for _, o := range opts {
		o(s)
	}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate account db %q: %w", cfg.Path, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
		return err
	}
	ms := slices.Clone(migrations)
	slices.SortFunc(ms, func(a, b migration) int { return strings.Compare(a.name, b.name) })
	for _, m := range ms {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, m.name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, st := range m.stmts {
				if _, err := tx.ExecContext(ctx, st); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied) VALUES (?, ?)`, m.name, s.now().Unix())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// tx runs fn in a write transaction, committing if it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// exec runs one write statement (atomic on its own: no transaction
// around it) and returns the rows it affected.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	r, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// Tx runs fn in one write transaction of the store's database: other
// packages' state that must commit together with account state (alerts
// and the offsets they were made from) uses it.
func (s *Store) Tx(ctx context.Context, fn func(*sql.Tx) error) error { return s.tx(ctx, fn) }

// DB returns the database for reads by packages that own tables here.
func (s *Store) DB() *sql.DB { return s.db }

// Plan returns the named plan.
func (s *Store) Plan(name string) (Plan, bool) {
	p, ok := s.cfg.Plans[name]
	return p, ok
}

// Run flushes counted API hits every HitFlush until ctx ends, then once
// more.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.HitFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.FlushHits(context.Background())
		case <-t.C:
			if err := s.FlushHits(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

// Close closes the database. Call after Run has returned.
func (s *Store) Close() error { return s.db.Close() }
