package outage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"

	"github.com/netwarden/netwarden/detect"
)

// Store is the outage database (SQLite, one file): per-bin verdicts
// (signals with their baseline), alerts with ids, events, the consumed
// telemetry offsets, the points rejected as late, the detector's
// watermark, and the publish and tap watermarks. It is safe for
// concurrent use: the service writes, the API reads.
type Store struct {
	db *sql.DB
}

// Marks name the watermarks kept in the marks table.
const (
	markWatermark = "watermark" // detector watermark (unix seconds) at the last commit
	markPublished = "published" // highest alert id produced to the alert topic
	markTapped    = "tapped"    // highest alert id handed to the tap
	markMaxEvent  = "max_event" // longest ended event, seconds (bounds event range scans)
)

var ddl = []string{
	`CREATE TABLE IF NOT EXISTS signals (
		entity_type TEXT NOT NULL, entity_code TEXT NOT NULL, datasource TEXT NOT NULL, time INTEGER NOT NULL,
		value REAL NOT NULL, history REAL NOT NULL, judged INTEGER NOT NULL, level INTEGER NOT NULL,
		PRIMARY KEY (entity_type, entity_code, datasource, time)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS alerts (
		id INTEGER PRIMARY KEY, datasource TEXT NOT NULL, entity_type TEXT NOT NULL, entity_code TEXT NOT NULL,
		time INTEGER NOT NULL, level INTEGER NOT NULL, condition TEXT NOT NULL, value REAL NOT NULL,
		history_value REAL NOT NULL, method TEXT NOT NULL, window INTEGER NOT NULL,
		UNIQUE (datasource, entity_type, entity_code, time, level))`,
	`CREATE INDEX IF NOT EXISTS alerts_time ON alerts (time, id)`,
	`CREATE INDEX IF NOT EXISTS alerts_entity ON alerts (entity_type, entity_code, time)`,
	`CREATE INDEX IF NOT EXISTS alerts_type ON alerts (entity_type, time)`,
	`CREATE TABLE IF NOT EXISTS events (
		entity_type TEXT NOT NULL, entity_code TEXT NOT NULL, start INTEGER NOT NULL,
		end_time INTEGER, level INTEGER NOT NULL, score REAL NOT NULL, datasources TEXT NOT NULL,
		PRIMARY KEY (entity_type, entity_code, start))`,
	`CREATE INDEX IF NOT EXISTS events_start ON events (start)`,
	`CREATE INDEX IF NOT EXISTS events_type ON events (entity_type, start)`,
	`CREATE INDEX IF NOT EXISTS events_end ON events (end_time)`,
	`CREATE TABLE IF NOT EXISTS offsets (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS late (partition INTEGER NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (partition, offset)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
}

// OpenStore opens (creating if needed) the database at path.
func OpenStore(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create outage dir for %q: %w", path, err)
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000&_txlock=immediate&_cache_size=-65536"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open outage db %q: %w", path, err)
	}
	for _, st := range ddl {
		if _, err := db.Exec(st); err != nil {
			db.Close()
			return nil, fmt.Errorf("create outage schema in %q: %w", path, err)
		}
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// State is what the service resumes from.
type State struct {
	Offsets   map[int32]int64          // next offset to consume per partition
	Late      map[int32]map[int64]bool // records below Offsets rejected as late
	Watermark int64                    // detector watermark at the last commit
}

// State reads the resume state.
func (s *Store) State(ctx context.Context) (State, error) {
	st := State{Offsets: map[int32]int64{}, Late: map[int32]map[int64]bool{}}
	rows, err := s.db.QueryContext(ctx, `SELECT partition, next FROM offsets`)
	if err != nil {
		return st, fmt.Errorf("read outage offsets: %w", err)
	}
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			rows.Close()
			return st, fmt.Errorf("read outage offsets: %w", err)
		}
		st.Offsets[p] = o
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT partition, offset FROM late`)
	if err != nil {
		return st, fmt.Errorf("read late points: %w", err)
	}
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			rows.Close()
			return st, fmt.Errorf("read late points: %w", err)
		}
		if st.Late[p] == nil {
			st.Late[p] = map[int64]bool{}
		}
		st.Late[p][o] = true
	}
	rows.Close()
	st.Watermark, err = s.mark(ctx, markWatermark)
	return st, err
}

func (s *Store) mark(ctx context.Context, name string) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT value FROM marks WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read mark %s: %w", name, err)
	}
	return v, nil
}

func (s *Store) setMark(ctx context.Context, name string, v int64) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, v); err != nil {
		return fmt.Errorf("set mark %s: %w", name, err)
	}
	return nil
}

// Batch is what one consumed batch changes, committed at once.
type Batch struct {
	Verdicts  []detect.Verdict
	Alerts    []detect.Alert
	Offsets   map[int32]int64 // next offset per partition
	Late      [][2]int64      // (partition, offset) of records rejected as late
	Watermark int64
}

// Commit writes b in one transaction and returns its alerts with their
// ids. An alert already stored (same series, time and level) keeps its
// id and is not returned again.
func (s *Store) Commit(ctx context.Context, b Batch) ([]Alert, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin outage batch: %w", err)
	}
	out, err := commit(ctx, tx, b)
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("commit outage batch: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit outage batch: %w", err)
	}
	return out, nil
}

func commit(ctx context.Context, tx *sql.Tx, b Batch) ([]Alert, error) {
	if len(b.Verdicts) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO signals (entity_type, entity_code, datasource, time, value, history, judged, level) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return nil, err
		}
		for _, v := range b.Verdicts {
			if _, err := st.ExecContext(ctx, v.EntityType, v.EntityCode, v.Datasource, v.Time, v.Value, v.HistoryValue, v.Judged, int(v.Level)); err != nil {
				st.Close()
				return nil, err
			}
		}
		st.Close()
	}
	var out []Alert
	type ent struct{ typ, code string }
	touched := map[ent]int64{} // entity -> earliest new alert time
	if len(b.Alerts) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO alerts (datasource, entity_type, entity_code, time, level, condition, value, history_value, method, window)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return nil, err
		}
		for _, a := range b.Alerts {
			res, err := st.ExecContext(ctx, a.Datasource, a.EntityType, a.EntityCode, a.Time, int(a.Level), a.Condition, a.Value, a.HistoryValue, a.Method, a.Window)
			if err != nil {
				st.Close()
				return nil, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			id, err := res.LastInsertId()
			if err != nil {
				st.Close()
				return nil, err
			}
			out = append(out, Alert{ID: id, Alert: a})
			k := ent{a.EntityType, a.EntityCode}
			if t, ok := touched[k]; !ok || a.Time < t {
				touched[k] = a.Time
			}
		}
		st.Close()
	}
	for k, from := range touched {
		if err := refold(ctx, tx, k.typ, k.code, from, b.Watermark); err != nil {
			return nil, err
		}
	}
	for p, o := range b.Offsets {
		if _, err := tx.ExecContext(ctx, `INSERT INTO offsets (partition, next) VALUES (?, ?) ON CONFLICT (partition) DO UPDATE SET next = excluded.next`, p, o); err != nil {
			return nil, err
		}
	}
	for _, l := range b.Late {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO late (partition, offset) VALUES (?, ?)`, l[0], l[1]); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, markWatermark, b.Watermark); err != nil {
		return nil, err
	}
	return out, nil
}

// refold recomputes an entity's events from the alerts that can have
// changed them: from the start of its earliest event still open at from
// (or ending at or after from), else from from itself.
func refold(ctx context.Context, tx *sql.Tx, typ, code string, from, asOf int64) error {
	var s sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(start) FROM events WHERE entity_type = ? AND entity_code = ? AND (end_time IS NULL OR end_time >= ?)`,
		typ, code, from).Scan(&s); err != nil {
		return err
	}
	if s.Valid && s.Int64 < from {
		from = s.Int64
	}
	als, err := queryAlerts(ctx, tx, `WHERE entity_type = ? AND entity_code = ? AND time >= ? ORDER BY time, id`, typ, code, from)
	if err != nil {
		return err
	}
	plain := make([]detect.Alert, len(als))
	for i, a := range als {
		plain[i] = a.Alert
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE entity_type = ? AND entity_code = ? AND start >= ?`, typ, code, from); err != nil {
		return err
	}
	return insertEvents(ctx, tx, detect.Events(plain, asOf))
}

func insertEvents(ctx context.Context, tx *sql.Tx, evs []detect.Event) error {
	var longest int64
	for _, e := range evs {
		var end any
		if !e.Ongoing {
			end = e.End
			longest = max(longest, e.Duration)
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO events (entity_type, entity_code, start, end_time, level, score, datasources) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			e.EntityType, e.EntityCode, e.Start, end, int(e.Level), e.Score, strings.Join(e.Datasources, ",")); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, markMaxEvent, longest)
	return err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const alertCols = `SELECT id, datasource, entity_type, entity_code, time, level, condition, value, history_value, method, window FROM alerts `

func queryAlerts(ctx context.Context, q querier, where string, args ...any) ([]Alert, error) {
	rows, err := q.QueryContext(ctx, alertCols+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		var lvl int
		if err := rows.Scan(&a.ID, &a.Datasource, &a.EntityType, &a.EntityCode, &a.Time, &lvl, &a.Condition, &a.Value, &a.HistoryValue, &a.Method, &a.Window); err != nil {
			return nil, err
		}
		a.Level = detect.Level(lvl)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AlertsAfter returns up to limit alerts with ids above id, in id order
// (the publisher and the tap use it).
func (s *Store) AlertsAfter(ctx context.Context, id int64, limit int) ([]Alert, error) {
	als, err := queryAlerts(ctx, s.db, `WHERE id > ? ORDER BY id LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("read alerts after %d: %w", id, err)
	}
	return als, nil
}

// Prune deletes signal verdicts of bins that started before t.
func (s *Store) Prune(ctx context.Context, t int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM signals WHERE time < ?`, t)
	if err != nil {
		return 0, fmt.Errorf("prune signals before %d: %w", t, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
