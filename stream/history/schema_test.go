package history

import (
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// TestSchema checks the Parquet schema and how Arrow maps it.
func TestSchema(t *testing.T) {
	s := openTest(t, Config{Dir: t.TempDir(), RowGroupRows: 100})
	defer s.Close()
	g := newGen(1, 100, 1)
	if err := s.Commit(g.batch(300), nil); err != nil {
		t.Fatal(err)
	}
	r, err := file.OpenParquetFile(s.Files()[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	md := r.MetaData()
	ts := md.Schema.Column(colTS)
	tl, ok := ts.LogicalType().(schema.TimestampLogicalType)
	if !ok || !tl.IsAdjustedToUTC() || tl.TimeUnit() != schema.TimeUnitMicros || ts.PhysicalType() != parquet.Types.Int64 {
		t.Fatalf("ts: %v %v", ts.LogicalType(), ts.PhysicalType())
	}
	// (pqarrow would map these to timestamp[us, tz=UTC], utf8 and binary;
	// it is not used here because it pulls gRPC into go.mod.)
	for i, name := range colNames {
		c := md.Schema.Column(i)
		if c.Name() != name || c.MaxDefinitionLevel() != 0 || c.MaxRepetitionLevel() != 0 {
			t.Errorf("column %d: %s def %d rep %d", i, c.Name(), c.MaxDefinitionLevel(), c.MaxRepetitionLevel())
		}
		if i == colTS {
			continue
		}
		if i == colPartition || i == colOffset {
			want := map[int]parquet.Type{colPartition: parquet.Types.Int32, colOffset: parquet.Types.Int64}[i]
			if c.PhysicalType() != want {
				t.Errorf("column %s: %v %v", name, c.PhysicalType(), c.LogicalType())
			}
			continue
		}
		_, isString := c.LogicalType().(schema.StringLogicalType)
		if c.PhysicalType() != parquet.Types.ByteArray || isString != (i != colKey) {
			t.Errorf("column %s: %v %v", name, c.PhysicalType(), c.LogicalType())
		}
	}
	rg := md.RowGroup(0)
	for i, name := range colNames {
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		dict := cc.HasDictionaryPage()
		if wantDict := name == "op" || name == "kind" || name == "list"; dict != wantDict {
			t.Errorf("column %s: dictionary %v", name, dict)
		}
		if ok, _ := cc.StatsSet(); !ok {
			t.Errorf("column %s: no statistics", name)
		}
		if cc.Compression() != flushCodec { // fresh flush files; compaction uses codec
			t.Errorf("column %s: compression %v, want %v", name, cc.Compression(), flushCodec)
		}
	}
	if sc := rg.SortingColumns(); len(sc) != 2 || sc[0].ColumnIdx != colKey || sc[1].ColumnIdx != colTS {
		t.Errorf("sorting columns %v", sc)
	}
	for _, k := range []string{kvSchemaVersion, kvMinTS, kvMaxTS, kvBits4, kvBits6} {
		if md.KeyValueMetadata().FindValue(k) == nil {
			t.Errorf("no key-value metadata %s", k)
		}
	}
}

// TestCompactedFilesUseCodec checks compaction rewrites small flush files
// with the denser codec.
func TestCompactedFilesUseCodec(t *testing.T) {
	s := openTest(t, Config{Dir: t.TempDir(), RowGroupRows: 100, CompactMinFiles: 2})
	defer s.Close()
	g := newGen(2, 100, 1)
	for i := 0; i < 3; i++ {
		if err := s.Commit(g.batch(200), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Files() {
		r, err := file.OpenParquetFile(f, false)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := r.MetaData().RowGroup(0).ColumnChunk(colKey)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Compression() != codec {
			t.Errorf("%s: compression %v after compaction, want %v", f, cc.Compression(), codec)
		}
		r.Close()
	}
}
