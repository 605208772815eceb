package history

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// Reader properties: lookups read single pages, so they read through a
// small buffer; scans stream whole column chunks.
var (
	lookupProps = func() *parquet.ReaderProperties {
		p := parquet.NewReaderProperties(memory.DefaultAllocator)
		p.BufferedStreamEnabled = true
		p.BufferSize = 16 << 10
		return p
	}()
	scanProps = func() *parquet.ReaderProperties {
		p := parquet.NewReaderProperties(memory.DefaultAllocator)
		p.BufferedStreamEnabled = true
		p.BufferSize = 64 << 10
		return p
	}()
)

// pfile is an open, live or retired, data file with the in-memory index
// Lookup prunes with. Everything but the reference count and deletion
// state is immutable after openPFile.
type pfile struct {
	mf           manifestFile
	abs          string
	minTS, maxTS int64
	bits         prefixBits
	minKey       string
	maxKey       string
	rgs          []rgIndex
	bloomBytes   int64
	indexBytes   int64 // in-memory page index
	// positions: the file has kafka_partition and kafka_offset (schema
	// version 2); rows of older files have change.NoPosition.
	positions bool
	crcs      crcTable // nil for files written without checksums

	f       *os.File
	lookupR *file.Reader
	scanR   *file.Reader

	// refs counts the snapshots that hold the file. It reaches zero once,
	// after the file left the manifest (or the store closed) and the last
	// reader of an older snapshot finished.
	refs atomic.Int64

	mu      sync.Mutex
	idle    bool // refs reached zero; f is closed
	retired bool // no longer in the manifest; delete when idle and due
	due     bool // DeleteDelay has passed since retirement
	deleted bool
	timer   *time.Timer
	log     *slog.Logger
	onGone  func(*pfile)
}

// rgIndex is what a lookup needs to know about a row group without I/O.
type rgIndex struct {
	start          int64 // file row index of the first row
	rows           int64
	minKey, maxKey string
	bloom          metadata.BloomFilter // of the resource column; nil if none
	// fast is the page index of the columns a lookup reads, nil if the
	// file lacks one (then lookups read whole key column chunks).
	fast *[numFast]chunkPages
	// pageKeys[pageKeyOff[i]:pageKeyOff[i+1]] is the smallest key of key
	// page i (fast[fcKey].pages[i]); set with fast.
	pageKeys   string
	pageKeyOff []uint32
}

// openPFile opens a data file named by the manifest and loads its index.
func openPFile(dir string, mf manifestFile) (_ *pfile, err error) {
	abs := filepath.Join(dir, filepath.FromSlash(mf.Path))
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("open history file %q: %w", abs, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			err = fmt.Errorf("open history file %q: %w", abs, err)
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if mf.Bytes != 0 && st.Size() != mf.Bytes {
		return nil, fmt.Errorf("size %d, manifest says %d", st.Size(), mf.Bytes)
	}
	// Footer, page indexes and bloom filters are verified now: they are
	// parsed next and kept in memory.
	crcs, err := loadCRCs(abs, st.Size())
	if err != nil {
		return nil, err
	}
	if err := crcs.verify(f, abs, 0, st.Size(), false); err != nil {
		return nil, err
	}
	r, err := file.NewParquetReader(f, file.WithReadProps(lookupProps))
	if err != nil {
		return nil, err
	}
	md := r.MetaData()
	_ = md.WriterVersion() // computed lazily; do it now, before sharing md
	if md.NumRows != mf.Rows {
		return nil, fmt.Errorf("%d rows, manifest says %d", md.NumRows, mf.Rows)
	}
	ncols := md.Schema.NumColumns()
	if ncols != numCols && ncols != numColsV1 {
		return nil, fmt.Errorf("%d columns, want %d (or %d before schema version 2)", ncols, numCols, numColsV1)
	}
	for i, name := range colNames[:ncols] {
		if got := md.Schema.Column(i).Name(); got != name {
			return nil, fmt.Errorf("column %d is %q, want %q", i, got, name)
		}
	}
	p := &pfile{mf: mf, abs: abs, f: f, lookupR: r, positions: ncols == numCols, crcs: crcs}
	kv := md.KeyValueMetadata()
	get := func(k string) string {
		if v := kv.FindValue(k); v != nil {
			return *v
		}
		return ""
	}
	wantVersion := SchemaVersion
	if !p.positions {
		wantVersion = 1
	}
	if v := get(kvSchemaVersion); v != strconv.Itoa(wantVersion) {
		return nil, fmt.Errorf("schema version %q with %d columns, want %d", v, ncols, wantVersion)
	}
	if err := p.bits.parse(get(kvBits4), false); err != nil {
		return nil, fmt.Errorf("bad %s: %w", kvBits4, err)
	}
	if err := p.bits.parse(get(kvBits6), true); err != nil {
		return nil, fmt.Errorf("bad %s: %w", kvBits6, err)
	}
	for _, x := range []struct {
		k string
		v *int64
	}{{kvMinTS, &p.minTS}, {kvMaxTS, &p.maxTS}} {
		t, err := time.Parse(time.RFC3339Nano, get(x.k))
		if err != nil {
			return nil, fmt.Errorf("bad %s: %w", x.k, err)
		}
		*x.v = t.UnixMicro()
	}

	bfr := r.GetBloomFilterReader()
	pir := r.GetPageIndexReader()
	p.rgs = make([]rgIndex, md.NumRowGroups())
	for i := range p.rgs {
		rg := &p.rgs[i]
		rgm := md.RowGroup(i)
		rg.rows = rgm.NumRows()
		if i > 0 {
			rg.start = p.rgs[i-1].start + p.rgs[i-1].rows
		}
		cc, err := rgm.ColumnChunk(colKey)
		if err != nil {
			return nil, err
		}
		st, err := cc.Statistics()
		if err != nil {
			return nil, err
		}
		bst, ok := st.(*metadata.ByteArrayStatistics)
		if !ok || !bst.HasMinMax() {
			return nil, fmt.Errorf("row group %d: no key statistics", i)
		}
		rg.minKey, rg.maxKey = string(bst.Min()), string(bst.Max())
		if i > 0 && rg.minKey < p.rgs[i-1].maxKey {
			return nil, fmt.Errorf("row group %d: keys not sorted", i)
		}

		rgb, err := bfr.RowGroup(i)
		if err != nil {
			return nil, err
		}
		if rg.bloom, err = rgb.GetColumnBloomFilter(colResource); err != nil {
			return nil, fmt.Errorf("row group %d bloom filter: %w", i, err)
		}
		if rg.bloom != nil {
			p.bloomBytes += rg.bloom.Size()
		}

		rgp, err := pir.RowGroup(i)
		if err != nil {
			return nil, fmt.Errorf("row group %d page index: %w", i, err)
		}
		if rgp == nil {
			continue
		}
		ci, err := rgp.GetColumnIndex(colKey)
		if err != nil {
			return nil, fmt.Errorf("row group %d column index: %w", i, err)
		}
		if ci == nil {
			continue
		}
		if err := loadFastIndex(rg, rgm, rgp.GetOffsetIndex); err != nil {
			return nil, fmt.Errorf("row group %d offset index: %w", i, err)
		}
		mins := ci.GetMinValues()
		if rg.fast == nil || len(mins) != len(rg.fast[fcKey].pages) {
			rg.fast = nil
			continue
		}
		var sb strings.Builder
		rg.pageKeyOff = make([]uint32, 0, len(mins)+1)
		for _, m := range mins {
			rg.pageKeyOff = append(rg.pageKeyOff, uint32(sb.Len()))
			sb.Write(m)
		}
		rg.pageKeyOff = append(rg.pageKeyOff, uint32(sb.Len()))
		rg.pageKeys = sb.String()
		p.indexBytes += int64(len(rg.pageKeys) + 4*len(rg.pageKeyOff))
		for c := range rg.fast {
			p.indexBytes += int64(len(rg.fast[c].pages)) * int64(unsafe.Sizeof(pageLoc{}))
		}
	}
	if len(p.rgs) > 0 {
		p.minKey, p.maxKey = p.rgs[0].minKey, p.rgs[len(p.rgs)-1].maxKey
	}
	if p.scanR, err = file.NewParquetReader(f, file.WithMetadata(md), file.WithReadProps(scanProps)); err != nil {
		return nil, err
	}
	p.refs.Store(0)
	return p, nil
}

// rgRange returns the row groups [lo, hi) whose key range holds k.
func (p *pfile) rgRange(k string) (lo, hi int) {
	lo = sort.Search(len(p.rgs), func(i int) bool { return p.rgs[i].maxKey >= k })
	hi = sort.Search(len(p.rgs), func(i int) bool { return p.rgs[i].minKey > k })
	return lo, hi
}

// pageMin is the smallest key of key page i.
func (rg *rgIndex) pageMin(i int) string {
	return rg.pageKeys[rg.pageKeyOff[i]:rg.pageKeyOff[i+1]]
}

// rowRange returns the rows [lo, hi) of the row group that can hold k
// according to the page index: from the last page starting below k to the
// last page starting at or below k.
func (rg *rgIndex) rowRange(k string) (lo, hi int64) {
	if rg.fast == nil {
		return 0, rg.rows
	}
	pages := rg.fast[fcKey].pages
	n := len(pages)
	p0 := sort.Search(n, func(i int) bool { return rg.pageMin(i) >= k }) - 1
	p1 := sort.Search(n, func(i int) bool { return rg.pageMin(i) > k }) - 1
	p0 = max(p0, 0)
	if p1 < p0 {
		return 0, 0
	}
	lo = int64(pages[p0].first)
	hi = rg.rows
	if p1+1 < n {
		hi = int64(pages[p1+1].first)
	}
	return lo, hi
}

func (p *pfile) ref() { p.refs.Add(1) }

func (p *pfile) unref() {
	if p.refs.Add(-1) != 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = true
	_ = p.f.Close()
	p.maybeDeleteLocked()
}

// retire marks p as no longer in the manifest: it is deleted once it is
// idle and delay has passed.
func (p *pfile) retire(delay time.Duration, log *slog.Logger, onGone func(*pfile)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired, p.log, p.onGone = true, log, onGone
	if delay <= 0 {
		p.due = true
		p.maybeDeleteLocked()
		return
	}
	p.timer = time.AfterFunc(delay, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.due = true
		p.maybeDeleteLocked()
	})
}

// cancelDelete stops a pending deletion (Close); Open removes the file later.
func (p *pfile) cancelDelete() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.retired = false
}

func (p *pfile) maybeDeleteLocked() {
	if !p.idle || !p.retired || !p.due || p.deleted {
		return
	}
	p.deleted = true
	_ = os.Remove(p.abs + crcSuffix)
	if err := os.Remove(p.abs); err != nil && !os.IsNotExist(err) {
		p.log.Warn("history: delete compacted file", "path", p.abs, "err", err)
	} else {
		p.log.Debug("history: deleted compacted file", "path", p.abs)
	}
	if p.onGone != nil {
		go p.onGone(p)
	}
}
