package history

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// Column ordinals of the Parquet schema.
const (
	colTS = iota
	colOp
	colKind
	colList
	colResource
	colKey
	colPartition
	colOffset
	numCols
)

// numColsV1 is the column count of schema version 1 files (no topic
// position columns).
const numColsV1 = colKey + 1

var colNames = [numCols]string{"ts", "op", "kind", "list", "resource", "key", "kafka_partition", "kafka_offset"}

// SchemaVersion is the netwarden.schema_version written into every file.
// Version 1 files lack kafka_partition and kafka_offset; they are still
// read, their rows have an unknown position (change.NoPosition).
const SchemaVersion = 2

// Key-value metadata keys.
const (
	kvSchemaVersion = "netwarden.schema_version"
	kvMinTS         = "netwarden.min_ts"
	kvMaxTS         = "netwarden.max_ts"
	kvBits4         = "netwarden.bits4"
	kvBits6         = "netwarden.bits6"
)

const (
	// dataPageSize bounds a page; with writeBatch (the granularity of the
	// page size check) it makes key pages of 256 rows and ts pages of 512,
	// which is what a lookup reads per candidate row group.
	dataPageSize = 4 << 10
	writeBatch   = 256
	// bloomFPP is the bloom filter false positive rate per row group.
	bloomFPP = 0.03
	// bloomCandidates: sizes tried by the adaptive bloom filter, halving from
	// the one fit for a full row group of distinct keys.
	bloomCandidates = 8
)

var (
	// codec compresses compacted files; fresh flush files use flushCodec,
	// cheaper to write (compaction rewrites small ones with codec).
	codec      = pickCodec()
	flushCodec = compress.Codecs.Snappy
)

// writeV1 makes writers produce schema version 1 files (no position
// columns), for the tests that old files still read.
var writeV1 = false

func mustSchema() *schema.GroupNode {
	str := func(name string) schema.Node {
		return schema.MustPrimitive(schema.NewPrimitiveNodeLogical(name, parquet.Repetitions.Required,
			schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1))
	}
	fields := schema.FieldList{
		schema.MustPrimitive(schema.NewPrimitiveNodeLogical("ts", parquet.Repetitions.Required,
			schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), parquet.Types.Int64, -1, -1)),
		str("op"),
		str("kind"),
		str("list"),
		str("resource"),
		schema.MustPrimitive(schema.NewPrimitiveNode("key", parquet.Repetitions.Required, parquet.Types.ByteArray, -1, -1)),
		schema.MustPrimitive(schema.NewPrimitiveNode("kafka_partition", parquet.Repetitions.Required, parquet.Types.Int32, -1, -1)),
		schema.MustPrimitive(schema.NewPrimitiveNode("kafka_offset", parquet.Repetitions.Required, parquet.Types.Int64, -1, -1)),
	}
	if writeV1 {
		fields = fields[:numColsV1]
	}
	return schema.MustGroup(schema.NewGroupNode("schema", parquet.Repetitions.Required, fields, -1))
}

func pickCodec() compress.Compression {
	if _, err := compress.GetCodec(compress.Codecs.Zstd); err == nil {
		return compress.Codecs.Zstd
	}
	return compress.Codecs.Snappy
}

func writerProps(rowGroupRows int, c compress.Compression) *parquet.WriterProperties {
	// The largest bloom filter is the one fit for a row group of distinct keys.
	maxBloom := int64(32)
	for float64(maxBloom*8) < bloomBits(rowGroupRows) {
		maxBloom *= 2
	}
	opts := []parquet.WriterProperty{
		parquet.WithCompression(c),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor("op", true),
		parquet.WithDictionaryFor("kind", true),
		parquet.WithDictionaryFor("list", true),
		parquet.WithStats(true),
		parquet.WithPageIndexEnabled(true),
		parquet.WithDataPageSize(dataPageSize),
		parquet.WithBatchSize(writeBatch),
		parquet.WithMaxRowGroupLength(int64(rowGroupRows)),
		// The bloom filter is on resource, not key: resource is 1:1 with key
		// for lookups, and the DuckDB of duckdb-go v2.10505 hashes BLOB
		// constants wrongly when probing bloom filters (fixed upstream by
		// duckdb/duckdb#23829), so a key bloom filter would make
		// `WHERE key = <blob>` miss rows. Users query by resource anyway.
		parquet.WithBloomFilterEnabledFor("resource", true),
		parquet.WithAdaptiveBloomFilterEnabledFor("resource", true),
		parquet.WithBloomFilterFPPFor("resource", bloomFPP),
		parquet.WithBloomFilterCandidatesFor("resource", bloomCandidates),
		parquet.WithMaxBloomFilterBytes(maxBloom),
		parquet.WithSortingColumns([]parquet.SortingColumn{{ColumnIdx: colKey}, {ColumnIdx: colTS}}),
	}
	return parquet.NewWriterProperties(opts...)
}

// bloomBits approximates the bits a split-block bloom filter needs for n
// distinct values at bloomFPP (the formula of the Parquet spec).
func bloomBits(n int) float64 {
	return -8 * float64(n) / math.Log(1-math.Pow(bloomFPP, 1.0/8))
}

// row is one change as stored.
type row struct {
	key  string
	list string
	ts   int64 // Unix µs
	seq  int64 // arrival order within a commit (sort tie-break)
	off  int64 // topic offset, or change.NoPosition
	part int32 // topic partition, or change.NoPosition
	op   change.Op
}

// cmpRow orders rows by (key, ts).
func cmpRow(a, b *row) int {
	if a.key != b.key {
		if a.key < b.key {
			return -1
		}
		return 1
	}
	switch {
	case a.ts < b.ts:
		return -1
	case a.ts > b.ts:
		return 1
	}
	return 0
}

func monthOf(us int64) string { return time.UnixMicro(us).UTC().Format("2006-01") }

func monthDir(month string) string { return changesDir + "/month=" + month }

var (
	opAdd      = parquet.ByteArray("add")
	opRem      = parquet.ByteArray("rem")
	kindIP     = parquet.ByteArray("ip")
	kindDomain = parquet.ByteArray("domain")
	kindEmail  = parquet.ByteArray("email")
)

func kindOf(k string) parquet.ByteArray {
	switch k[0] {
	case 'i':
		return kindIP
	case 'd':
		return kindDomain
	}
	return kindEmail
}

func bytesOf(s string) parquet.ByteArray {
	return parquet.ByteArray(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// uniqueName returns a new file name; prefix says who made it.
func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:]) + ".parquet"
}

// pqWriter writes one data file: rows are added in file order (sorted)
// and grouped into row groups; finish makes the file durable under its
// final name.
type pqWriter struct {
	rgRows int
	rel    string // final path relative to Dir, slash-separated
	final  string
	tmp    string
	month  string
	f      *os.File
	bw     *bufio.Writer
	fw     *file.Writer

	rows         int64
	minTS, maxTS int64
	bits         prefixBits

	buf               []row
	ts, offs          []int64
	parts             []int32
	ops, kinds, lists []parquet.ByteArray
	ress, keys        []parquet.ByteArray
	lastKey, lastRes  string
}

func newPQWriter(dir, month, name string, rgRows int, c compress.Compression) (*pqWriter, error) {
	rel := monthDir(month) + "/" + name
	final := filepath.Join(dir, filepath.FromSlash(rel))
	md := filepath.Dir(final)
	if _, err := os.Stat(md); err != nil {
		if err := os.MkdirAll(md, 0o755); err != nil {
			return nil, fmt.Errorf("create history dir %q: %w", md, err)
		}
		if err := syncDir(filepath.Dir(md)); err != nil {
			return nil, fmt.Errorf("sync history dir %q: %w", filepath.Dir(md), err)
		}
	}
	w := &pqWriter{
		rgRows: rgRows, rel: rel, final: final, tmp: final + ".tmp", month: month,
		minTS: 1<<63 - 1, maxTS: -1 << 63,
	}
	f, err := os.OpenFile(w.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create history file %q: %w", w.tmp, err)
	}
	w.f = f
	w.bw = bufio.NewWriterSize(f, 1<<20)
	// A schema per writer: arrow-go's schema nodes cache their paths
	// lazily and are not safe to share between concurrent writers
	// (commit writes months concurrently, compaction runs beside it).
	fw, err := file.NewParquetWriterWithError(w.bw, mustSchema(), file.WithWriterProps(writerProps(rgRows, c)))
	if err != nil {
		w.abort()
		return nil, fmt.Errorf("write history file %q: %w", w.tmp, err)
	}
	w.fw = fw
	return w, nil
}

// add appends r, which must not sort before the previous row.
func (w *pqWriter) add(r row) error {
	w.buf = append(w.buf, r)
	if len(w.buf) >= w.rgRows {
		return w.flushRowGroup()
	}
	return nil
}

func (w *pqWriter) flushRowGroup() error {
	n := len(w.buf)
	if n == 0 {
		return nil
	}
	w.ts, w.ops, w.kinds, w.lists, w.ress, w.keys = w.ts[:0], w.ops[:0], w.kinds[:0], w.lists[:0], w.ress[:0], w.keys[:0]
	w.parts, w.offs = w.parts[:0], w.offs[:0]
	for i := range w.buf {
		r := &w.buf[i]
		w.ts = append(w.ts, r.ts)
		w.parts = append(w.parts, r.part)
		w.offs = append(w.offs, r.off)
		if r.op == change.Add {
			w.ops = append(w.ops, opAdd)
		} else {
			w.ops = append(w.ops, opRem)
		}
		w.kinds = append(w.kinds, kindOf(r.key))
		w.lists = append(w.lists, bytesOf(r.list))
		if r.key != w.lastKey || w.lastRes == "" {
			res, err := resource.FromKey(r.key)
			if err != nil {
				return fmt.Errorf("write history file %q: %w", w.tmp, err)
			}
			w.lastKey, w.lastRes = r.key, res.String()
			w.bits.addKey(r.key)
		}
		w.ress = append(w.ress, bytesOf(w.lastRes))
		w.keys = append(w.keys, bytesOf(r.key))
		w.minTS = min(w.minTS, r.ts)
		w.maxTS = max(w.maxTS, r.ts)
	}
	rgw, err := w.fw.AppendRowGroupChecked()
	if err != nil {
		return fmt.Errorf("write history file %q: %w", w.tmp, err)
	}
	ncols := numCols
	if writeV1 {
		ncols = numColsV1
	}
	for c := 0; c < ncols; c++ {
		cw, err := rgw.NextColumn()
		if err != nil {
			return fmt.Errorf("write history file %q column %s: %w", w.tmp, colNames[c], err)
		}
		switch c {
		case colTS:
			_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(w.ts, nil, nil)
		case colOp:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(w.ops, nil, nil)
		case colKind:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(w.kinds, nil, nil)
		case colList:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(w.lists, nil, nil)
		case colResource:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(w.ress, nil, nil)
		case colKey:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(w.keys, nil, nil)
		case colPartition:
			_, err = cw.(*file.Int32ColumnChunkWriter).WriteBatch(w.parts, nil, nil)
		case colOffset:
			_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(w.offs, nil, nil)
		}
		if err != nil {
			return fmt.Errorf("write history file %q column %s: %w", w.tmp, colNames[c], err)
		}
	}
	if err := rgw.Close(); err != nil {
		return fmt.Errorf("write history file %q: %w", w.tmp, err)
	}
	w.rows += int64(n)
	clear(w.buf) // drop string references
	w.buf = w.buf[:0]
	return nil
}

// finish writes the footer, fsyncs the file and renames it to its final
// name. The caller fsyncs the month directory. It returns the manifest
// entry of the file.
func (w *pqWriter) finish() (manifestFile, error) {
	if err := w.flushRowGroup(); err != nil {
		w.abort()
		return manifestFile{}, err
	}
	b4, b6 := w.bits.lists()
	kv := [][2]string{
		{kvSchemaVersion, strconv.Itoa(map[bool]int{false: SchemaVersion, true: 1}[writeV1])},
		{kvMinTS, fmtTS(w.minTS)},
		{kvMaxTS, fmtTS(w.maxTS)},
		{kvBits4, formatBits(b4)},
		{kvBits6, formatBits(b6)},
	}
	for _, p := range kv {
		if err := w.fw.AppendKeyValueMetadata(p[0], p[1]); err != nil {
			w.abort()
			return manifestFile{}, fmt.Errorf("write history file %q: %w", w.tmp, err)
		}
	}
	err := w.fw.Close()
	w.fw = nil
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if err == nil {
		err = writeCRCs(w.tmp, w.final+crcSuffix)
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = w.f.Stat(); err == nil {
			size = st.Size()
		}
	}
	if err != nil {
		w.abort()
		return manifestFile{}, fmt.Errorf("write history file %q: %w", w.tmp, err)
	}
	err = w.f.Close()
	w.f = nil
	if err == nil {
		err = os.Rename(w.tmp, w.final)
	}
	if err != nil {
		w.abort()
		return manifestFile{}, fmt.Errorf("write history file %q: %w", w.final, err)
	}
	return manifestFile{
		Path: w.rel, Month: w.month, Rows: w.rows, Bytes: size,
		MinTS: time.UnixMicro(w.minTS).UTC(), MaxTS: time.UnixMicro(w.maxTS).UTC(),
	}, nil
}

// abort closes and removes the temporary file.
func (w *pqWriter) abort() {
	if w.fw != nil {
		func() {
			defer func() { _ = recover() }()
			_ = w.fw.Close()
		}()
		w.fw = nil
	}
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
	_ = os.Remove(w.tmp)
	_ = os.Remove(w.final + crcSuffix)
}

func fmtTS(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}
