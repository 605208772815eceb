package history

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/netwarden/netwarden/internal/change"
)

// TestReadsSchemaV1Files: files written before rows carried their topic
// position still open, look up, scan (with change.NoPosition) and compact
// together with new files; DuckDB reads the mix through the public
// columns.
func TestReadsSchemaV1Files(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, RowGroupRows: 500, CompactMinFiles: 2}
	s := openTest(t, cfg)
	g := newGen(11, 300, 1)
	ref := &refStore{}
	old := g.batch(1200)
	writeV1 = true
	err := s.Commit(old, map[int32]int64{0: 1200})
	writeV1 = false
	if err != nil {
		t.Fatal(err)
	}
	ref.add(old)
	fresh := g.batch(800)
	for i := range fresh {
		fresh[i].Partition, fresh[i].Offset = 0, int64(1200+i)
	}
	if err := s.Commit(fresh, map[int32]int64{0: 2000}); err != nil {
		t.Fatal(err)
	}
	ref.add(fresh)
	files := s.Files()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rev := slices.Clone(files)
	slices.Reverse(rev)
	for _, fs := range [][]string{files, rev} {
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM (SELECT ts, op, kind, list, resource FROM read_parquet(` + sqlList(fs) + `))`).Scan(&n); err != nil || n != 2000 {
			t.Errorf("DuckDB over v1 and v2 files %v: %d rows, %v", fs, n, err)
		}
		// Exposing the positions needs union_by_name (NULL in v1 rows).
		var withPos int64
		if err := db.QueryRow(`SELECT count(kafka_offset) FROM read_parquet(` + sqlList(fs) + `, union_by_name = true)`).Scan(&withPos); err != nil || withPos != 800 {
			t.Errorf("DuckDB positions over v1 and v2 files: %d rows with one, %v", withPos, err)
		}
	}

	s = openTest(t, cfg)
	defer s.Close()
	check := func(when string) {
		t.Helper()
		if err := sameChanges(collectLookup(t, s, g.keys), ref.lookup(g.keys)); err != nil {
			t.Fatalf("%s: lookup: %v", when, err)
		}
		var got []change.Change
		pos := map[int64]bool{}
		unknown := 0
		err := s.Scan(context.Background(), func(c change.Change) error {
			got = append(got, c)
			if c.HasPosition() {
				pos[c.Offset] = true
			} else {
				unknown++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: scan: %v", when, err)
		}
		if err := sameChanges(got, ref.scan()); err != nil {
			t.Fatalf("%s: scan: %v", when, err)
		}
		if unknown != len(old) || len(pos) != len(fresh) || !pos[1200] || !pos[1999] {
			t.Fatalf("%s: %d rows without position (want %d), %d with (want %d)", when, unknown, len(old), len(pos), len(fresh))
		}
	}
	check("mixed files")
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Compactions == 0 {
		t.Fatalf("no compaction ran: %+v", st)
	}
	check("after compaction")
}
