package history

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if d.Name() == "LOCK" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestChecksumsCatchByteFlips flips single bytes (page header, body,
// last byte) in pages of every column and in the footer: lookups and
// scans that read the page fail with ErrCorrupt (never different data),
// the others return exact results, Open refuses a damaged footer, and
// Verify lists the damaged file in every case.
func TestChecksumsCatchByteFlips(t *testing.T) {
	src := t.TempDir()
	s := openTest(t, Config{Dir: src, RowGroupRows: 1000})
	g := newGen(7, 400, 1)
	rows := g.batch(2500)
	for i := range rows {
		rows[i].Partition, rows[i].Offset = int32(i%3), int64(i)
	}
	if err := s.Commit(rows, map[int32]int64{0: 2500}); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(src, s.Files()[0])
	if v, err := s.Verify(context.Background()); err != nil || v.Files != len(s.Files()) || v.Unverified != 0 || len(v.Damaged) != 0 {
		t.Fatalf("clean store: %+v %v", v, err)
	}
	ref := &refStore{}
	ref.add(rows)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(src, rel)
	st, err := os.Stat(abs)
	if err != nil {
		t.Fatal(err)
	}
	crcs, err := loadCRCs(abs, st.Size())
	if err != nil || crcs == nil {
		t.Fatalf("checksums: %v", err)
	}
	// The column of each page range, from the footer.
	r, err := file.OpenParquetFile(abs, false)
	if err != nil {
		t.Fatal(err)
	}
	colOf := func(off int64) int {
		rg := r.MetaData().RowGroup(1)
		for c := 0; c < numCols; c++ {
			cc, _ := rg.ColumnChunk(c)
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
				start = cc.DictionaryPageOffset()
			}
			if off >= start && off < start+cc.TotalCompressedSize() {
				return c
			}
		}
		return -1
	}
	targets := map[int]crcRange{}
	var footer crcRange
	for _, cr := range crcs {
		if !cr.page {
			footer = cr // the last gap holds the footer
			continue
		}
		if c := colOf(cr.off); c >= 0 {
			if _, ok := targets[c]; !ok {
				targets[c] = cr
			}
		}
	}
	r.Close()
	if len(targets) != numCols {
		t.Fatalf("found pages of %d columns, want %d", len(targets), numCols)
	}
	keys := g.keys
	type flip struct {
		name string
		col  int // -1: footer
		rng  crcRange
	}
	var flips []flip
	for c, cr := range targets {
		flips = append(flips, flip{colNames[c], c, cr})
	}
	flips = append(flips, flip{"footer", -1, footer})
	for _, fl := range flips {
		for _, at := range []int64{1, int64(fl.rng.n) / 2, int64(fl.rng.n) - 9} {
			t.Run(fl.name, func(t *testing.T) {
				dir := t.TempDir()
				copyTree(t, src, dir)
				path := filepath.Join(dir, rel)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				b[fl.rng.off+at] ^= 0x10
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				before := mCorrupt.Get()
				s, err := Open(Config{Dir: dir, RowGroupRows: 1000}, testLogger(t))
				if fl.col < 0 {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("Open with a damaged footer: %v, want ErrCorrupt", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				readByLookup := fl.col == colKey || fl.col == colTS || fl.col == colOp || fl.col == colList
				for _, slow := range []bool{false, true} {
					forceSlowPath = slow
					var got []change.Change
					err = s.Lookup(keys, func(c change.Change) { got = append(got, c) })
					forceSlowPath = false
					if readByLookup {
						if !errors.Is(err, ErrCorrupt) {
							t.Fatalf("lookup (slow path %v) over a damaged %s page: %v, want ErrCorrupt", slow, fl.name, err)
						}
					} else if err != nil {
						t.Fatalf("lookup not reading the %s page: %v", fl.name, err)
					} else if err := sameChanges(got, ref.lookup(keys)); err != nil {
						t.Fatalf("lookup: %v", err)
					}
				}
				all := []resource.KeyRange{{Lo: "", Hi: "\xff"}}
				var got []change.Change
				_, complete, err := s.RangeGen(all, len(rows), func(c change.Change) { got = append(got, c) })
				if readByLookup {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("range read over a damaged %s page: %v, want ErrCorrupt", fl.name, err)
					}
				} else if err != nil || !complete {
					t.Fatalf("range read not reading the %s page: complete=%v %v", fl.name, complete, err)
				} else if err := sameChanges(got, ref.refRange(all)); err != nil {
					t.Fatalf("range read: %v", err)
				}
				err = s.Scan(context.Background(), func(change.Change) error { return nil })
				if readByScan := fl.col != colKind && fl.col != colResource; readByScan != errors.Is(err, ErrCorrupt) {
					t.Fatalf("scan over a damaged %s page: %v", fl.name, err)
				}
				v, err := s.Verify(context.Background())
				if err != nil || len(v.Damaged) != 1 || v.Damaged[0].Path != path {
					t.Fatalf("Verify: %+v %v", v, err)
				}
				if mCorrupt.Get() == before {
					t.Fatal("netwarden_history_corrupt_pages_total did not count")
				}
			})
		}
	}
}
