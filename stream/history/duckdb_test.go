//go:build cgo

package history

import (
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/netwarden/netwarden/internal/resource"
)

func sqlList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = "'" + strings.ReplaceAll(p, "'", "''") + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestDuckDB reads the files with DuckDB, as the SQL query surface does.
func TestDuckDB(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir, RowGroupRows: 1000})
	defer s.Close()
	g := newGen(21, 2000, 5)
	var ref refStore
	for i := 0; i < 4; i++ {
		b := g.batch(3000)
		if err := s.Commit(b, nil); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files := s.Files()
	// The month=YYYY-MM directories would otherwise add a hive partition column.
	src := "read_parquet(" + sqlList(files) + ", hive_partitioning = false)"

	// Column types.
	rows, err := db.Query("DESCRIBE SELECT * FROM " + src)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	var order []string
	for rows.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rows.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			t.Fatal(err)
		}
		types[name] = typ
		order = append(order, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if !slices.Equal(order, colNames[:]) {
		t.Fatalf("columns %v, want %v", order, colNames)
	}
	for name, want := range map[string][]string{
		"ts":              {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP"},
		"op":              {"VARCHAR"},
		"kind":            {"VARCHAR"},
		"list":            {"VARCHAR"},
		"resource":        {"VARCHAR"},
		"key":             {"BLOB"},
		"kafka_partition": {"INTEGER"},
		"kafka_offset":    {"BIGINT"},
	} {
		if !slices.Contains(want, types[name]) {
			t.Errorf("column %s is %s, want %v", name, types[name], want)
		}
	}

	// GROUP BY counts.
	want := map[string]int{}
	for _, c := range ref.all {
		r, _ := c.Resource()
		want[fmt.Sprintf("%s|%s|%s", c.List, c.Op, r.Kind)]++
	}
	got := map[string]int{}
	rows, err = db.Query("SELECT list, op, kind, count(*) FROM " + src + " GROUP BY ALL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var list, op, kind string
		var n int
		if err := rows.Scan(&list, &op, &kind, &n); err != nil {
			t.Fatal(err)
		}
		got[list+"|"+op+"|"+kind] = n
	}
	rows.Close()
	if !maps.Equal(got, want) {
		t.Fatalf("GROUP BY counts differ:\ngot  %v\nwant %v", got, want)
	}

	// Point queries by key and by resource text; resource, kind and ts values.
	for _, k := range g.keys[:300] {
		exp := ref.lookup([]string{k})
		r, _ := resource.FromKey(k)
		var n, nres int
		var minTS, maxTS sql.NullTime
		var res, kind sql.NullString
		err := db.QueryRow("SELECT count(*), min(ts), max(ts), any_value(resource), any_value(kind) FROM "+src+" WHERE key = ?", []byte(k)).
			Scan(&n, &minTS, &maxTS, &res, &kind)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(exp) {
			t.Fatalf("key %q: DuckDB counts %d rows, want %d", k, n, len(exp))
		}
		if err := db.QueryRow("SELECT count(*) FROM "+src+" WHERE resource = ? AND kind = ?", r.String(), r.Kind.String()).Scan(&nres); err != nil {
			t.Fatal(err)
		}
		if nres != len(exp) {
			t.Fatalf("resource %q: DuckDB counts %d rows, want %d", r, nres, len(exp))
		}
		if n == 0 {
			continue
		}
		if res.String != r.String() || kind.String != r.Kind.String() {
			t.Fatalf("key %q: resource %q kind %q, want %q %q", k, res.String, kind.String, r.String(), r.Kind)
		}
		if !minTS.Time.Equal(exp[0].Time) || !maxTS.Time.Equal(exp[len(exp)-1].Time) {
			t.Fatalf("key %q: ts %v..%v, want %v..%v", k, minTS.Time, maxTS.Time, exp[0].Time, exp[len(exp)-1].Time)
		}
	}
	var total int
	if err := db.QueryRow("SELECT count(*) FROM " + src + " WHERE ts >= TIMESTAMPTZ '2025-01-01 00:00:00+00'").Scan(&total); err != nil {
		t.Fatal(err)
	}
	cut := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := 0
	for _, c := range ref.all {
		if !c.Time.Before(cut) {
			exp++
		}
	}
	if total != exp {
		t.Fatalf("ts filter: %d rows, want %d", total, exp)
	}

	// Row-group statistics, bloom filters and key-value metadata as DuckDB sees them.
	for _, f := range files[:2] {
		rows, err := db.Query("SELECT row_group_id, path_in_schema, stats_min_value, stats_max_value, bloom_filter_offset FROM parquet_metadata(?) WHERE path_in_schema IN ('key', 'resource')", f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var rg int
			var col string
			var mn, mx sql.NullString
			var bloom sql.NullInt64
			if err := rows.Scan(&rg, &col, &mn, &mx, &bloom); err != nil {
				t.Fatal(err)
			}
			if !mn.Valid || !mx.Valid || mn.String == "" || mx.String == "" {
				t.Fatalf("%s row group %d: no %s stats (%v, %v)", f, rg, col, mn, mx)
			}
			if col == "resource" && (!bloom.Valid || bloom.Int64 <= 0) {
				t.Fatalf("%s row group %d: no resource bloom filter", f, rg)
			}
			n++
		}
		rows.Close()
		if n == 0 {
			t.Fatalf("%s: no row groups in parquet_metadata", f)
		}
		var v string
		if err := db.QueryRow("SELECT decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = 'netwarden.schema_version'", f).Scan(&v); err != nil || v != strconv.Itoa(SchemaVersion) {
			t.Fatalf("%s: schema version %q, %v", f, v, err)
		}
		// DuckDB reads our bloom filters: a present resource is never excluded.
		var present string
		if err := db.QueryRow("SELECT resource FROM read_parquet(?) LIMIT 1", f).Scan(&present); err != nil {
			t.Fatal(err)
		}
		var excluded bool
		if err := db.QueryRow("SELECT bool_or(bloom_filter_excludes) FROM parquet_bloom_probe(?, 'resource', ?)", f, present).Scan(&excluded); err != nil {
			t.Fatal(err)
		}
		if excluded {
			t.Fatalf("%s: DuckDB's bloom probe excludes present resource %q", f, present)
		}
	}
	// DuckDB prunes row groups with those statistics: a key outside every
	// file's range reads nothing (smoke check: the query works).
	if err := db.QueryRow("SELECT count(*) FROM "+src+" WHERE key = ?", []byte("zzz")).Scan(&total); err != nil || total != 0 {
		t.Fatalf("absent key: %d, %v", total, err)
	}
}
