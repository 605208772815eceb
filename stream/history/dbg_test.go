//go:build cgo

package history

import (
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
)

func TestDuckDBDebug(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir, RowGroupRows: 1000})
	defer s.Close()
	g := newGen(21, 2000, 5)
	for i := 0; i < 4; i++ {
		if err := s.Commit(g.batch(3000), nil); err != nil {
			t.Fatal(err)
		}
	}
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	bad := 0
	for _, f := range s.Files() {
		src := "read_parquet(" + sqlList([]string{f}) + ", hive_partitioning = false)"
		nbad := 0
		for _, k := range g.keys[:300] {
			hx := strings.ToUpper(hex.EncodeToString([]byte(k)))
			var n1, n2 int
			db.QueryRow("SELECT count(*) FROM "+src+" WHERE key = ?", []byte(k)).Scan(&n1)
			db.QueryRow("SELECT count(*) FROM "+src+" WHERE hex(key) = ?", hx).Scan(&n2)
			if n1 != n2 {
				nbad++
			}
		}
		var mn, mx, mnv, mxv sql.NullString
		var bo, bl sql.NullInt64
		var nrg int
		db.QueryRow("SELECT count(*), any_value(stats_min), any_value(stats_max), any_value(stats_min_value), any_value(stats_max_value), any_value(bloom_filter_offset), any_value(bloom_filter_length) FROM parquet_metadata(?) WHERE path_in_schema='key'", f).Scan(&nrg, &mn, &mx, &mnv, &mxv, &bo, &bl)
		t.Logf("%s: %d bad; rgs %d min %q max %q minv %q maxv %q bloom %v %v", f[len(f)-40:], nbad, nrg, mn.String, mx.String, mnv.String, mxv.String, bo, bl)
		bad += nbad
	}
}
