package query

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// fixture is a history directory with two committed Parquet files, one
// half-written file that is not part of the file list, and a Parquet file
// outside the history directory.
type fixture struct {
	root    string // t.TempDir()
	hist    string // root/history
	fileA   string // month=2025-05, 6 rows
	fileB   string // month=2025-06, 4 rows
	partial string // month=2025-06, garbage, never in the file list
	outside string // root/outside/secret.parquet
}

const fixtureRowsA = `
	('2025-05-01 10:00:00+00', 'add', 'ip',     'blocklist', '1.2.3.4'),
	('2025-05-01 11:00:00+00', 'add', 'ip',     'blocklist', '1.2.3.0/24'),
	('2025-05-02 12:00:00+00', 'add', 'domain', 'blocklist', 'example.com'),
	('2025-05-03 09:00:00+00', 'rem', 'ip',     'blocklist', '1.2.3.4'),
	('2025-05-04 08:00:00+00', 'add', 'email',  'spam',      'bad@example.com'),
	('2025-05-05 07:00:00+00', 'add', 'domain', 'spam',      'evil.example')`

const fixtureRowsB = `
	('2025-06-01 00:00:00+00', 'add', 'ip',     'blocklist', '5.6.7.8'),
	('2025-06-02 00:00:00+00', 'rem', 'domain', 'blocklist', 'example.com'),
	('2025-06-03 00:00:00+00', 'add', 'ip',     'spam',      '9.9.9.9'),
	('2025-06-04 00:00:00+00', 'rem', 'email',  'spam',      'bad@example.com')`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{
		root:    root,
		hist:    filepath.Join(root, "history"),
		outside: filepath.Join(root, "outside", "secret.parquet"),
	}
	f.fileA = filepath.Join(f.hist, "changes", "month=2025-05", "a.parquet")
	f.fileB = filepath.Join(f.hist, "changes", "month=2025-06", "b.parquet")
	f.partial = filepath.Join(f.hist, "changes", "month=2025-06", "partial.parquet")
	for _, p := range []string{f.fileA, f.fileB, f.outside} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// A separate, unlocked DuckDB writes the fixtures.
	c, err := duckdb.NewConnector("", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer func() {
		_ = db.Close()
		_ = c.Close()
	}()
	write := func(path, values string) {
		t.Helper()
		q := `COPY (SELECT CAST(ts AS TIMESTAMPTZ) AS ts, op, kind, list, resource, ` +
			`CAST(encode(kind || ':' || resource) AS BLOB) AS key ` +
			`FROM (VALUES ` + values + `) t(ts, op, kind, list, resource)) TO ` +
			sqlString(path) + ` (FORMAT parquet)`
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("write fixture %s: %v", path, err)
		}
	}
	write(f.fileA, fixtureRowsA)
	write(f.fileB, fixtureRowsB)
	write(f.outside, `('2025-01-01 00:00:00+00', 'add', 'ip', 'secret', '10.0.0.1')`)
	if err := os.WriteFile(f.partial, []byte("PAR1 half written"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func newEngine(t *testing.T, f *fixture, mod func(*Config)) *Engine {
	t.Helper()
	cfg := Config{HistoryDir: f.hist, TempDir: filepath.Join(f.root, "tmp")}
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func mustRun(t *testing.T, e *Engine, q string) *ResultSet {
	t.Helper()
	rs, err := e.Run(context.Background(), q)
	if err != nil {
		t.Fatalf("Run(%q): %v", q, err)
	}
	return rs
}

func mustQuery(t *testing.T, e *Engine, q string, f Format) ([]byte, Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := e.Query(context.Background(), q, f, &buf)
	if err != nil {
		t.Fatalf("Query(%q, %s): %v", q, f, err)
	}
	return buf.Bytes(), res
}

func columnNames(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name + " " + c.Type
	}
	return strings.Join(names, ", ")
}

// adminQuery runs q on the engine's admin connection, bypassing the
// statement checks: tests of the DuckDB settings layer underneath them.
func adminQuery(t *testing.T, e *Engine, q string) ([][]any, error) {
	t.Helper()
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	rows, err := e.admin.QueryContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func mustAdmin(t *testing.T, e *Engine, q string) [][]any {
	t.Helper()
	rows, err := adminQuery(t, e, q)
	if err != nil {
		t.Fatalf("admin %q: %v", q, err)
	}
	return rows
}
