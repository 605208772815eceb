package history

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// Checksums. arrow-go (v18.8/v18.9) neither writes nor verifies the
// Parquet page header CRC, and adding it to the headers afterwards would
// shift every offset in the footer. So each data file has a sidecar,
// <name>.parquet.crc, written and fsynced before the data file is
// renamed into place, holding a CRC-32 (IEEE) of every byte range of the
// file: each page (header included) and, for the rest (magic, bloom
// filters, page indexes, footer), each gap between pages.
//
//   - Open verifies the gap ranges (footer, indexes, bloom filters, all
//     kept in memory from then on).
//   - A lookup's page read verifies that page, a range read the pages
//     holding its rows (and their dictionaries); the generic reader paths
//     (scan, compaction, lookup slow path) verify each column chunk before
//     reading it.
//   - Store.Verify checks every range of every file (the check job).
//
// A mismatch is an error wrapping ErrCorrupt (never a user error) and
// counts in netwarden_history_corrupt_pages_total. Files without a
// sidecar (written before checksums) are read unverified. DuckDB reads
// the files itself and does not verify them.
//
// Sidecar layout: "NWCRC001", uint32 n, n × (int64 offset, uint32 length,
// uint32 crc, uint8 page), uint32 CRC of all preceding bytes; little
// endian, ranges sorted by offset and covering the file.

// ErrCorrupt is wrapped by every error about stored bytes that fail their
// checksum.
var ErrCorrupt = errors.New("history data corrupt (checksum mismatch)")

var mCorrupt = metrics.NewCounter(`netwarden_history_corrupt_pages_total`)

// noChecksums turns checksum writing and verification off (benchmarks
// measure their cost against it).
var noChecksums = false

const (
	crcSuffix   = ".crc"
	crcMagic    = "NWCRC001"
	crcEntryLen = 17
)

type crcRange struct {
	off  int64
	n    uint32
	crc  uint32
	page bool
}

// crcTable is a file's checksums, sorted by offset.
type crcTable []crcRange

// computeCRCs returns the checksum ranges of the Parquet file at path.
func computeCRCs(path string) (crcTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r, err := file.NewParquetReader(f)
	if err != nil {
		return nil, err
	}
	md := r.MetaData()
	pir := r.GetPageIndexReader()
	var pages crcTable
	for i := 0; i < md.NumRowGroups(); i++ {
		rgm := md.RowGroup(i)
		rgp, err := pir.RowGroup(i)
		if err != nil {
			return nil, fmt.Errorf("row group %d page index: %w", i, err)
		}
		for col := 0; col < md.Schema.NumColumns(); col++ {
			cc, err := rgm.ColumnChunk(col)
			if err != nil {
				return nil, err
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
				start = cc.DictionaryPageOffset()
			}
			end := start + cc.TotalCompressedSize()
			if rgp == nil {
				pages = append(pages, crcRange{off: start, n: uint32(end - start), page: true})
				continue
			}
			oi, err := rgp.GetOffsetIndex(col)
			if err != nil || oi == nil {
				pages = append(pages, crcRange{off: start, n: uint32(end - start), page: true})
				continue
			}
			locs := oi.GetPageLocations()
			if len(locs) > 0 && locs[0].Offset > start { // dictionary page
				pages = append(pages, crcRange{off: start, n: uint32(locs[0].Offset - start), page: true})
			}
			for _, l := range locs {
				pages = append(pages, crcRange{off: l.Offset, n: uint32(l.CompressedPageSize), page: true})
			}
		}
	}
	slices.SortFunc(pages, func(a, b crcRange) int { return int(a.off - b.off) })
	var all crcTable
	pos := int64(0)
	for _, p := range pages {
		if p.off < pos {
			return nil, fmt.Errorf("page at %d overlaps the previous one", p.off)
		}
		for pos < p.off { // gaps in chunks of at most 1 GB
			n := min(p.off-pos, 1<<30)
			all = append(all, crcRange{off: pos, n: uint32(n)})
			pos += n
		}
		all = append(all, p)
		pos = p.off + int64(p.n)
	}
	for pos < st.Size() {
		n := min(st.Size()-pos, 1<<30)
		all = append(all, crcRange{off: pos, n: uint32(n)})
		pos += n
	}
	if pos != st.Size() {
		return nil, fmt.Errorf("pages end at %d, past the file's %d bytes", pos, st.Size())
	}
	var buf []byte
	for i := range all {
		if cap(buf) < int(all[i].n) {
			buf = make([]byte, all[i].n)
		}
		b := buf[:all[i].n]
		if _, err := f.ReadAt(b, all[i].off); err != nil {
			return nil, err
		}
		all[i].crc = crc32.ChecksumIEEE(b)
	}
	return all, nil
}

func (t crcTable) encode() []byte {
	b := make([]byte, 0, len(crcMagic)+4+len(t)*crcEntryLen+4)
	b = append(b, crcMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t)))
	for _, r := range t {
		b = binary.LittleEndian.AppendUint64(b, uint64(r.off))
		b = binary.LittleEndian.AppendUint32(b, r.n)
		b = binary.LittleEndian.AppendUint32(b, r.crc)
		if r.page {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func decodeCRCs(b []byte, size int64) (crcTable, error) {
	if len(b) < len(crcMagic)+8 || string(b[:len(crcMagic)]) != crcMagic {
		return nil, errors.New("not a checksum file")
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("checksum file fails its own checksum")
	}
	n := binary.LittleEndian.Uint32(body[len(crcMagic):])
	body = body[len(crcMagic)+4:]
	if uint64(len(body)) != uint64(n)*crcEntryLen {
		return nil, fmt.Errorf("%d bytes for %d entries", len(body), n)
	}
	t := make(crcTable, n)
	pos := int64(0)
	for i := range t {
		e := body[i*crcEntryLen:]
		t[i] = crcRange{off: int64(binary.LittleEndian.Uint64(e)), n: binary.LittleEndian.Uint32(e[8:]),
			crc: binary.LittleEndian.Uint32(e[12:]), page: e[16] == 1}
		if t[i].off != pos {
			return nil, fmt.Errorf("entry %d at %d, want %d", i, t[i].off, pos)
		}
		pos += int64(t[i].n)
	}
	if pos != size {
		return nil, fmt.Errorf("ranges cover %d bytes, file has %d", pos, size)
	}
	return t, nil
}

// writeCRCs computes the checksums of the data file at path and durably
// writes them to sidecar.
func writeCRCs(path, sidecar string) error {
	if noChecksums {
		return nil
	}
	t, err := computeCRCs(path)
	if err != nil {
		return fmt.Errorf("checksum %q: %w", path, err)
	}
	if err := writeFileSync(sidecar, t.encode()); err != nil {
		return fmt.Errorf("write checksums %q: %w", sidecar, err)
	}
	return nil
}

// removeData removes a data file and its checksums.
func removeData(abs string) {
	_ = os.Remove(abs)
	_ = os.Remove(abs + crcSuffix)
}

// loadCRCs reads the sidecar of the data file abs (size bytes); nil
// without error if there is none.
func loadCRCs(abs string, size int64) (crcTable, error) {
	b, err := os.ReadFile(abs + crcSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t, err := decodeCRCs(b, size)
	if err != nil {
		mCorrupt.Inc()
		return nil, fmt.Errorf("%w: %q: %v", ErrCorrupt, abs+crcSuffix, err)
	}
	return t, nil
}

// verify checks the ranges of t within [off, off+n) against f's bytes;
// pages=false skips page ranges. It reads up to 8 MB at a time.
func (t crcTable) verify(f *os.File, abs string, off, n int64, pages bool) error {
	i := sort.Search(len(t), func(i int) bool { return t[i].off+int64(t[i].n) > off })
	bp := verifyBufPool.Get().(*[]byte)
	defer verifyBufPool.Put(bp)
	for i < len(t) && t[i].off < off+n {
		if t[i].page && !pages {
			i++
			continue
		}
		// A run of consecutive ranges to check, read at once.
		j, size := i, int64(0)
		for j < len(t) && t[j].off < off+n && (!t[j].page || pages) && (j == i || size+int64(t[j].n) <= 8<<20) {
			size += int64(t[j].n)
			j++
		}
		if int64(cap(*bp)) < size {
			*bp = make([]byte, size)
		}
		b := (*bp)[:size]
		if _, err := f.ReadAt(b, t[i].off); err != nil {
			return fmt.Errorf("verify %q at %d: %w", abs, t[i].off, err)
		}
		for ; i < j; i++ {
			r := t[i]
			if crc32.ChecksumIEEE(b[:r.n]) != r.crc {
				mCorrupt.Inc()
				return corruptErr(abs, r)
			}
			b = b[r.n:]
		}
	}
	return nil
}

var verifyBufPool = sync.Pool{New: func() any { return new([]byte) }}

func corruptErr(abs string, r crcRange) error {
	what := "page"
	if !r.page {
		what = "metadata"
	}
	return fmt.Errorf("%w: %q: %s bytes [%d, %d)", ErrCorrupt, abs, what, r.off, r.off+int64(r.n))
}

// verifyPage checks a page that was read whole into b (header included)
// from offset off: it must be one range of the table.
func (f *pfile) verifyPage(off int64, b []byte) error {
	if f.crcs == nil || noChecksums {
		return nil
	}
	t := f.crcs
	i := sort.Search(len(t), func(i int) bool { return t[i].off >= off })
	if i == len(t) || t[i].off != off || int(t[i].n) != len(b) {
		return f.crcs.verify(f.f, f.abs, off, int64(len(b)), true) // not one page: check what covers it
	}
	if crc32.ChecksumIEEE(b) != t[i].crc {
		mCorrupt.Inc()
		return corruptErr(f.abs, t[i])
	}
	return nil
}

// verifyChunk checks the pages of column col of row group rgi, for the
// generic reader paths.
func (f *pfile) verifyChunk(rgi, col int) error {
	if f.crcs == nil || noChecksums {
		return nil
	}
	cc, err := f.lookupR.MetaData().RowGroup(rgi).ColumnChunk(col)
	if err != nil {
		return err
	}
	start := cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
		start = cc.DictionaryPageOffset()
	}
	return f.crcs.verify(f.f, f.abs, start, cc.TotalCompressedSize(), true)
}

// verifyRows checks what a read of rows [lo, hi) of column fastCols[fc]
// of row group rgi seeks to: the dictionary page and the pages holding
// those rows (the whole chunk without a page index).
func (f *pfile) verifyRows(rgi, fc int, lo, hi int64) error {
	if f.crcs == nil || noChecksums {
		return nil
	}
	rg := &f.rgs[rgi]
	if rg.fast == nil || lo >= hi {
		return f.verifyChunk(rgi, fastCols[fc])
	}
	cp := &rg.fast[fc]
	if cp.dictOff > 0 {
		if err := f.crcs.verify(f.f, f.abs, cp.dictOff, cp.dictLen, true); err != nil {
			return err
		}
	}
	first, last := cp.pages[cp.pageOf(lo)], cp.pages[cp.pageOf(hi-1)]
	return f.crcs.verify(f.f, f.abs, first.off, last.off+int64(last.size)-first.off, true)
}

// VerifyResult is the outcome of Store.Verify.
type VerifyResult struct {
	Files      int `json:"files"`
	Unverified int `json:"unverified"` // files without checksums
	// Damaged lists the files whose bytes fail their checksums, with the error.
	Damaged []DamagedFile `json:"damaged,omitempty"`
}

// DamagedFile is a data file that fails its checksums.
type DamagedFile struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Verify reads every live data file whole and checks it against its
// checksums. I/O errors other than a mismatch are returned.
func (s *Store) Verify(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	sn, err := s.acquire()
	if err != nil {
		return res, err
	}
	defer sn.release()
	for _, f := range sn.files {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Files++
		if f.crcs == nil {
			res.Unverified++
			continue
		}
		if err := f.crcs.verify(f.f, f.abs, 0, 1<<62, true); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return res, err
			}
			res.Damaged = append(res.Damaged, DamagedFile{Path: f.abs, Error: err.Error()})
		}
	}
	return res, nil
}
