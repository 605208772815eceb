package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// expectRejected runs q and requires ErrRejected with every substring of want
// in the message; nothing may be written.
func expectRejected(t *testing.T, e *Engine, q string, want ...string) {
	t.Helper()
	var buf bytes.Buffer
	_, err := e.Query(context.Background(), q, JSON, &buf)
	if !errors.Is(err, ErrRejected) {
		t.Errorf("%q: err = %v, want ErrRejected", q, err)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q: error %q does not mention %q", q, err, w)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("%q: wrote %q", q, buf.String())
	}
}

func TestForbiddenStatements(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	if err := e.SetLists([]ListRow{{Name: "keep"}}); err != nil {
		t.Fatal(err)
	}
	const single = "only a single SELECT statement is allowed"
	for _, c := range []struct {
		sql  string
		want []string
	}{
		{`INSERT INTO lists (name) VALUES ('x')`, []string{single, "got INSERT"}},
		{`UPDATE lists SET entries = 1`, []string{single, "got UPDATE"}},
		{`DELETE FROM lists`, []string{single, "got DELETE"}},
		{`TRUNCATE lists`, []string{single, "got TRUNCATE"}},
		{`MERGE INTO lists USING (SELECT 'y' AS name) s ON false WHEN NOT MATCHED THEN INSERT (name) VALUES (s.name)`, []string{single, "got MERGE"}},
		{`CREATE TABLE t AS SELECT 1`, []string{single, "got CREATE"}},
		{`CREATE TEMP VIEW v AS SELECT 1`, []string{single, "got CREATE"}},
		{`CREATE MACRO m(a) AS a`, []string{single, "got CREATE"}},
		{`DROP TABLE lists`, []string{single, "got DROP"}},
		{`DROP VIEW changes`, []string{single, "got DROP"}},
		{`ALTER TABLE lists ADD COLUMN z INTEGER`, []string{single, "got ALTER"}},
		{`ATTACH ':memory:' AS other`, []string{single, "got ATTACH"}},
		{`ATTACH '/tmp/x.duckdb'`, []string{single, "got ATTACH"}},
		{`DETACH memory`, []string{single, "got DETACH"}},
		{`COPY lists TO '` + filepath.Join(f.hist, "out.csv") + `'`, []string{single, "got COPY"}},
		{`COPY (SELECT 1) TO '/tmp/out.parquet' (FORMAT parquet)`, []string{single, "got COPY"}},
		{`EXPORT DATABASE '/tmp/export'`, []string{single, "got EXPORT"}},
		{`IMPORT DATABASE '/tmp/export'`, []string{single, "got IMPORT"}},
		{`INSTALL httpfs`, []string{single, "got INSTALL"}},
		{`LOAD httpfs`, []string{single, "got LOAD"}},
		{`LOAD '/tmp/evil.duckdb_extension'`, []string{single, "got LOAD"}},
		{`FORCE INSTALL httpfs`, []string{single, "got FORCE"}},
		{`UPDATE EXTENSIONS`, []string{single, "got UPDATE"}},
		{`SET lock_configuration = false`, []string{single, "got SET"}},
		{`SET enable_external_access = true`, []string{single, "got SET"}},
		{`SET GLOBAL threads = 64`, []string{single, "got SET"}},
		{`SET VARIABLE x = 1`, []string{single, "got SET"}},
		{`RESET memory_limit`, []string{single, "got SET"}},
		{`PRAGMA enable_profiling`, []string{single, "got PRAGMA"}},
		{`PRAGMA version`, []string{single, "got PRAGMA"}},
		{`PRAGMA memory_limit = '64GB'`, []string{single, "got PRAGMA"}},
		{`CALL pragma_version()`, []string{single, "got CALL"}},
		{`CALL enable_logging()`, []string{single, "got CALL"}},
		{`EXPLAIN SELECT 1`, []string{single, "got EXPLAIN"}},
		{`EXPLAIN ANALYZE DELETE FROM lists`, []string{single, "got EXPLAIN"}},
		{`BEGIN TRANSACTION`, []string{single, "got BEGIN"}},
		{`CHECKPOINT`, []string{single, "got CHECKPOINT"}},
		{`VACUUM`, []string{single, "got VACUUM"}},
		{`ANALYZE`, []string{single, "got ANALYZE"}},
		{`PREPARE p AS SELECT 1`, []string{single, "got PREPARE"}},
		{`EXECUTE p`, []string{single, "got EXECUTE"}},
		{`USE memory`, []string{single, "got USE"}},
		{`CREATE SECRET (TYPE s3, KEY_ID 'x', SECRET 'y')`, []string{single, "got CREATE"}},
		{`/* comment */ -- another
		   DELETE FROM lists`, []string{single, "got DELETE"}},
		// Multiple statements, whatever their order: nothing runs.
		{`SELECT 1; SELECT 2`, []string{single, "got 2 statements"}},
		{`DROP TABLE lists; SELECT 1`, []string{single}},
		{`SELECT 1; DROP TABLE lists`, []string{single}},
		{`SET lock_configuration = false; SELECT 1`, []string{single}},
		// PIVOT without IN would expand into CREATE TYPE + SELECT.
		{`PIVOT lists ON name USING count(*)`, []string{single, "PIVOT"}},
		// Functions that change state or run SQL from strings.
		{`SELECT * FROM query('DELETE FROM lists')`, []string{"function query is not allowed"}},
		{`SELECT * FROM query_table('lists')`, []string{"function query_table is not allowed"}},
		{`SELECT * FROM "QUERY"('SELECT 1')`, []string{"function query is not allowed"}},
		{`SELECT * FROM enable_logging()`, []string{"function enable_logging is not allowed"}},
		{`SELECT (SELECT count(*) FROM checkpoint())`, []string{"function checkpoint is not allowed"}},
		{`WITH x AS (SELECT * FROM system.main.force_checkpoint()) SELECT * FROM x`, []string{"function force_checkpoint is not allowed"}},
		{`SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))`, []string{"function json_execute_serialized_sql is not allowed"}},
		{`SELECT write_log('x')`, []string{"function write_log is not allowed"}},
		// Parameters and empty input.
		{`SELECT $1`, []string{"parameters are not supported"}},
		{`SELECT ?`, []string{"parameters are not supported"}},
		{``, []string{"empty query"}},
		{`  ;  `, []string{"empty query"}},
		{`-- just a comment`, []string{"empty query"}},
		{"SELECT 1\x00; DROP TABLE lists", []string{"NUL"}},
		{"SELECT '\xff'", []string{"UTF-8"}},
		{`SELECT * FROM pg_catalog.pg_settings`, []string{"built-in catalog view"}},
		{`SELECT * FROM pg_settings`, []string{"built-in catalog view"}},
		{`SELECT * FROM duckdb_tables`, []string{"built-in catalog view"}},
		{`SELECT * FROM information_schema.tables`, []string{"built-in catalog view"}},
		{`SELECT * FROM system.main.sqlite_master`, []string{"built-in catalog view"}},
		{`SELECT * FROM pragma_database_list`, []string{"built-in catalog view"}},
	} {
		expectRejected(t, e, c.sql, c.want...)
	}

	// Nothing above changed anything.
	rs := mustRun(t, e, `SELECT name FROM lists`)
	if fmt.Sprint(rs.Rows) != "[[keep]]" {
		t.Errorf("lists = %v", rs.Rows)
	}
	rows := mustAdmin(t, e, `SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), CAST(current_setting('enable_logging') AS BOOLEAN), current_setting('threads')`)
	if got := fmt.Sprint(rows); got != "[[true false false 2]]" {
		t.Errorf("settings after attempts = %s", got)
	}
	rows = mustAdmin(t, e, `SELECT count(*) FROM duckdb_databases() WHERE NOT internal`)
	if got := fmt.Sprint(rows); got != "[[1]]" {
		t.Errorf("attached databases = %s", got)
	}
}

func TestAllowedSelectForms(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	if err := e.SetFiles([]string{f.fileA, f.fileB}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		`SELECT count(*) FROM changes`:                                                              "[[10]]",
		`SELECT count(*) FROM changes;`:                                                             "[[10]]",
		`select count(*) from changes; -- trailing comment`:                                         "[[10]]",
		`WITH a AS (SELECT * FROM changes WHERE op = 'add') SELECT count(*) FROM a`:                 "[[7]]",
		`FROM changes SELECT count(*) WHERE kind = 'ip'`:                                            "[[5]]",
		`VALUES (1, 'a'), (2, 'b')`:                                                                 "[[1 a] [2 b]]",
		`SELECT 1 UNION ALL SELECT 2 ORDER BY 1 DESC`:                                               "[[2] [1]]",
		`SELECT resource FROM changes WHERE resource LIKE '1.2.3.%' GROUP BY 1 ORDER BY 1`:          "[[1.2.3.0/24] [1.2.3.4]]",
		`PIVOT (SELECT kind, op FROM changes) ON op IN ('add', 'rem') USING count(*) ORDER BY kind`: "[[domain 2 1] [email 1 1] [ip 4 1]]",
		`SELECT count(*) FROM (DESCRIBE changes)`:                                                   "[[7]]",
		`SELECT 'it''s', 'query(1)'`:                                                                "[[it's query(1)]]",
		`SELECT 1 AS a, 2 AS a`:                                                                     "[[1 2]]",
	} {
		rs, err := e.Run(context.Background(), q)
		if err != nil {
			t.Errorf("%q: %v", q, err)
			continue
		}
		if got := fmt.Sprint(rs.Rows); got != want {
			t.Errorf("%q = %s, want %s", q, got, want)
		}
	}
	rs := mustRun(t, e, `SHOW TABLES`)
	if got := fmt.Sprint(rs.Rows); got != "[[changes] [lists] [outage_alerts] [outage_events]]" {
		t.Errorf("SHOW TABLES = %s", got)
	}
}

// TestFileAccessOutsideHistoryDir checks both layers: the function
// allow-list rejects every file function and file-name table, and DuckDB's
// own settings (enable_external_access=false, allowed_directories) refuse
// the same reads when the checks are bypassed.
func TestFileAccessOutsideHistoryDir(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	const reason = "is not allowed"
	for _, q := range []string{
		`SELECT * FROM read_csv('/etc/passwd')`,
		`SELECT * FROM read_text('/etc/hostname')`,
		`SELECT * FROM read_blob('/proc/self/environ')`,
		`SELECT * FROM read_parquet('` + f.outside + `')`,
		`SELECT * FROM '` + f.outside + `'`,
		`SELECT * FROM parquet_metadata('` + f.outside + `')`,
		`SELECT * FROM read_parquet('` + f.hist + `/../outside/secret.parquet')`,
		`SELECT * FROM read_parquet('` + f.hist + `/changes/../../outside/secret.parquet')`,
		`SELECT * FROM read_json('/etc/os-release')`,
		`SELECT * FROM glob('/*')`,
		`SELECT * FROM glob('` + f.root + `/**')`,
		`SELECT * FROM read_duckdb('/tmp/x.duckdb')`,
		`SELECT * FROM read_csv('` + f.hist + `2/x.csv')`,
	} {
		expectRejected(t, e, q, reason)
		_, err := adminQuery(t, e, q)
		var de *duckdb.Error
		if !errors.As(err, &de) || (de.Type != duckdb.ErrorTypePermission && !strings.Contains(de.Msg, "Permission")) {
			t.Errorf("unchecked %q: err = %v, want a DuckDB permission error", q, err)
		}
	}
	// History files too are only read through the view.
	expectRejected(t, e, `SELECT count(*) FROM read_parquet('`+f.hist+`/changes/month=2025-05/*.parquet')`, reason)
	expectRejected(t, e, `SELECT count(*) FROM '`+f.fileA+`'`, reason)
	expectRejected(t, e, `SELECT * FROM '/etc/passwd'`, reason)
	// Remote access is not available at all (no httpfs).
	expectRejected(t, e, `SELECT * FROM read_parquet('https://example.com/x.parquet')`)
	expectRejected(t, e, `SELECT * FROM read_parquet('s3://bucket/x.parquet')`)
}

func TestUserErrorsAreRejected(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	for q, want := range map[string]string{
		`SELEC 1`:                        "syntax error",
		`SELECT FROM WHERE`:              "syntax error",
		`SELECT nope FROM changes`:       `"nope" not found`,
		`SELECT * FROM nope`:             "nope does not exist",
		`SELECT no_such_function(1)`:     "no_such_function",
		`SELECT CAST('x' AS INTEGER)`:    "Could not convert",
		`SELECT error('custom failure')`: "custom failure",
	} {
		expectRejected(t, e, q, want)
	}
}

// TestStatementTypeCheck exercises the second layer on its own: statements
// are prepared (never executed) and their DuckDB statement type must be
// SELECT.
func TestStatementTypeCheck(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	ctx := context.Background()
	conn, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for q, want := range map[string]string{
		`CREATE TABLE t2 (a INTEGER)`:           "got CREATE",
		`INSERT INTO lists (name) VALUES ('x')`: "got INSERT",
		`DROP TABLE lists`:                      "got DROP",
		`SET threads = 8`:                       "got SET",
		`CALL pragma_version()`:                 "got CALL",
		`EXPLAIN SELECT 1`:                      "got EXPLAIN",
		`ATTACH ':memory:' AS x`:                "got ATTACH",
		`SELECT 1; SELECT 2`:                    "several statements",
		`SELECT $1`:                             "parameters",
		`SELECT 1`:                              "",
	} {
		err := conn.Raw(func(dc any) error {
			st, err := prepareChecked(ctx, dc.(*duckdb.Conn), q)
			if err == nil {
				return st.Close()
			}
			return err
		})
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", q, err)
		case want != "" && (!errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: err = %v, want ErrRejected mentioning %q", q, err, want)
		}
	}
	if rows := mustAdmin(t, e, `SELECT count(*) FROM duckdb_tables() WHERE table_name = 't2'`); fmt.Sprint(rows) != "[[0]]" {
		t.Error("prepared CREATE TABLE was executed")
	}
	if rs := mustRun(t, e, `SELECT count(*) FROM lists`); fmt.Sprint(rs.Rows) != "[[0]]" {
		t.Error("prepared INSERT was executed")
	}
}

// TestAllowList checks that every allowed name exists in this DuckDB (a
// rename would silently drop a function) and that everyday queries only
// need allowed functions and operators.
func TestAllowList(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	if err := e.SetFiles([]string{f.fileA, f.fileB}); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range mustAdmin(t, e, `SELECT DISTINCT function_name FROM duckdb_functions()`) {
		known[r[0].(string)] = true
	}
	for name := range allowedFunctions {
		if !known[name] {
			t.Errorf("allowed function %q does not exist", name)
		}
	}
	for name := range deniedFunctions {
		if allowedFunctions[name] {
			t.Errorf("%q is both allowed and denied", name)
		}
	}
	for _, q := range []string{
		`SELECT date_trunc('day', ts) AS d, count(*) FROM changes GROUP BY ALL ORDER BY d`,
		`SELECT * FROM changes WHERE resource LIKE '%example%' OR resource ILIKE 'X%' OR resource SIMILAR TO 'a.*' OR resource GLOB '1.*'`,
		`SUMMARIZE changes`,
		`DESCRIBE changes`,
		`SELECT list_sort([3, 1]), [1, 2][1], [1, 2, 3][1:2], {'a': 1}.a, 'a' || 'b', 10 // 3, 2 ** 3, 7 % 2, -(1), ~1, 1 << 2`,
		`SELECT CAST(ts AS DATE), ts::VARCHAR, extract(year FROM ts), epoch_us(ts), ts AT TIME ZONE 'UTC', ts + INTERVAL 1 DAY FROM changes`,
		`SELECT CASE WHEN op = 'add' THEN 1 ELSE 0 END, coalesce(NULL, 1), nullif(1, 1), 1 IS DISTINCT FROM 2, 2 BETWEEN 1 AND 3, 1 IN (1, 2) FROM changes`,
		`SELECT COLUMNS(*) FROM changes`,
		`SELECT list, row_number() OVER (PARTITION BY list ORDER BY ts), lag(ts) OVER w FROM changes WINDOW w AS (ORDER BY ts) QUALIFY row_number() OVER (PARTITION BY list ORDER BY ts) < 3`,
		`SELECT list_transform([1, 2], x -> x + 1), list_filter([1, 2], lambda x: x > 1)`,
		`SELECT * FROM unnest([1, 2]), range(2), generate_series(1, 2)`,
		`SELECT count(DISTINCT list), approx_count_distinct(resource), string_agg(DISTINCT kind, ','), min(ts), max(ts), arg_max(resource, ts), list(op) FROM changes`,
		`SELECT DISTINCT ON (list) list, ts FROM changes ORDER BY list, ts DESC`,
		`SELECT regexp_matches(resource, '^1\.'), regexp_extract(resource, '(\d+)', 1), split_part(resource, '.', 1), strftime(ts, '%Y-%m'), now() > ts FROM changes`,
		`SELECT * FROM changes USING SAMPLE 50%`,
		`SELECT resource FROM changes EXCEPT SELECT resource FROM changes WHERE op = 'rem'`,
		`SELECT l.name, count(c.resource) FROM lists l LEFT JOIN changes c ON c.list = l.name GROUP BY 1`,
	} {
		if _, err := e.Run(context.Background(), q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
}
