package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// The lookup fast path reads single pages straight from the file: the
// page locations of the key, ts, op and list columns are kept in memory
// (from the offset index), so a lookup costs one pread and one
// decompression per page it needs and allocates nothing but its results.
// It understands what pqWriter writes (data pages v1 of required columns;
// PLAIN key and ts; dictionary or PLAIN op and list). For anything else it
// returns errSlowPath and the caller uses the generic arrow-go reader.

var errSlowPath = errors.New("page layout not supported by the fast path")

// fastCols are the columns a lookup reads, in fastCol order.
var fastCols = [...]int{colKey, colTS, colOp, colList}

const (
	fcKey = iota
	fcTS
	fcOp
	fcList
	numFast
)

// pageLoc is a page of a column chunk: header and body at off, size bytes
// in all; its first row is first (within the row group).
type pageLoc struct {
	off   int64
	first int32
	size  int32
}

// chunkPages is the in-memory page index of one column chunk.
type chunkPages struct {
	pages   []pageLoc
	rows    int64 // of the row group
	dictOff int64 // dictionary page offset, or 0
	dictLen int64 // bytes up to the first data page
	codec   compress.Codec
	dict    atomic.Pointer[[]string] // decoded dictionary, loaded on first use
}

// pageOf returns the index of the page holding row.
func (c *chunkPages) pageOf(row int64) int {
	return sort.Search(len(c.pages), func(i int) bool { return int64(c.pages[i].first) > row }) - 1
}

// loadFastIndex fills rg.fast from the offset index; it leaves rg.fast nil
// if the file lacks what the fast path needs.
func loadFastIndex(rg *rgIndex, rgm *metadata.RowGroupMetaData, oi func(col int) (metadata.OffsetIndex, error)) error {
	var fast [numFast]chunkPages
	for i, col := range fastCols {
		cc, err := rgm.ColumnChunk(col)
		if err != nil {
			return err
		}
		if cc.CryptoMetadata() != nil {
			return nil
		}
		codec, err := compress.GetCodec(cc.Compression())
		if err != nil {
			return nil
		}
		idx, err := oi(col)
		if err != nil {
			return err
		}
		if idx == nil {
			return nil
		}
		locs := idx.GetPageLocations()
		if len(locs) == 0 || locs[0].FirstRowIndex != 0 || rgm.NumRows() > 1<<31-1 {
			return nil
		}
		cp := &fast[i]
		cp.codec = codec
		cp.rows = rgm.NumRows()
		cp.pages = make([]pageLoc, len(locs))
		for j, l := range locs {
			cp.pages[j] = pageLoc{off: l.Offset, first: int32(l.FirstRowIndex), size: l.CompressedPageSize}
		}
		if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
			cp.dictOff = cc.DictionaryPageOffset()
			cp.dictLen = locs[0].Offset - cp.dictOff
			if cp.dictLen <= 0 {
				return nil
			}
		}
	}
	rg.fast = &fast
	return nil
}

// pageBuf holds the buffers of one page read.
type pageBuf struct {
	raw, dec []byte
}

var pageBufPool = sync.Pool{New: func() any { return new(pageBuf) }}

// Parquet page types and encodings used here.
const (
	ptDataPage       = 0
	ptDictionaryPage = 2

	encPlain          = 0
	encPlainDict      = 2
	encRLEDictionary  = 8
	maxPageHeaderSize = 16 << 10
)

type pageHeader struct {
	typ            int32
	uncompressed   int32
	compressed     int32
	numValues      int32
	encoding       int32
	hdrLen         int
	hasDataHeader  bool
	hasDictHeader  bool
	unsupportedHdr bool
}

// readPage reads the page at off (size bytes, header included) and returns
// its header and uncompressed body (valid until buf is reused).
func (f *pfile) readPage(cp *chunkPages, off, size int64, buf *pageBuf) (pageHeader, []byte, error) {
	if size <= 0 || size > 256<<20 {
		return pageHeader{}, nil, fmt.Errorf("bad page size %d", size)
	}
	if int64(cap(buf.raw)) < size {
		buf.raw = make([]byte, size)
	}
	raw := buf.raw[:size]
	if _, err := f.f.ReadAt(raw, off); err != nil {
		return pageHeader{}, nil, fmt.Errorf("read page at %d: %w", off, err)
	}
	if err := f.verifyPage(off, raw); err != nil {
		return pageHeader{}, nil, err
	}
	h, err := parsePageHeader(raw)
	if err != nil {
		return h, nil, fmt.Errorf("page at %d: %w", off, err)
	}
	if h.unsupportedHdr {
		return h, nil, errSlowPath
	}
	if int64(h.hdrLen)+int64(h.compressed) > size || h.uncompressed < 0 {
		return h, nil, fmt.Errorf("page at %d: sizes %d+%d exceed %d", off, h.hdrLen, h.compressed, size)
	}
	body := raw[h.hdrLen : h.hdrLen+int(h.compressed)]
	if cp.codec == nil || isUncompressed(cp.codec) {
		return h, body, nil
	}
	if cap(buf.dec) < int(h.uncompressed) {
		buf.dec = make([]byte, h.uncompressed)
	}
	dec, err := compress.Decode(cp.codec, buf.dec[:h.uncompressed], body)
	if err != nil {
		return h, nil, fmt.Errorf("page at %d: decompress: %w", off, err)
	}
	if len(dec) != int(h.uncompressed) {
		return h, nil, fmt.Errorf("page at %d: decompressed %d bytes, header says %d", off, len(dec), h.uncompressed)
	}
	if cap(dec) > cap(buf.dec) {
		buf.dec = dec[:0]
	}
	return h, dec, nil
}

var uncompressedCodec, _ = compress.GetCodec(compress.Codecs.Uncompressed)

func isUncompressed(c compress.Codec) bool { return c == uncompressedCodec }

// dataPage reads page p of cp and checks it is a v1 data page.
func (f *pfile) dataPage(cp *chunkPages, p int, buf *pageBuf) (pageHeader, []byte, error) {
	loc := cp.pages[p]
	h, body, err := f.readPage(cp, loc.off, int64(loc.size), buf)
	if err != nil {
		return h, nil, err
	}
	if h.typ != ptDataPage || !h.hasDataHeader {
		return h, nil, errSlowPath
	}
	rows := cp.rows - int64(loc.first)
	if p+1 < len(cp.pages) {
		rows = int64(cp.pages[p+1].first - loc.first)
	}
	if int64(h.numValues) != rows {
		return h, nil, errSlowPath // repeated or nullable data: not ours
	}
	return h, body, nil
}

// dictionary returns the decoded dictionary of cp, reading it on first use.
func (f *pfile) dictionary(cp *chunkPages, buf *pageBuf) ([]string, error) {
	if d := cp.dict.Load(); d != nil {
		return *d, nil
	}
	if cp.dictOff == 0 {
		return nil, errSlowPath
	}
	h, body, err := f.readPage(cp, cp.dictOff, cp.dictLen, buf)
	if err != nil {
		return nil, err
	}
	if h.typ != ptDictionaryPage || !h.hasDictHeader || (h.encoding != encPlain && h.encoding != encPlainDict) {
		return nil, errSlowPath
	}
	d := make([]string, 0, h.numValues)
	err = plainByteArrays(body, int(h.numValues), func(_ int, v []byte) bool {
		d = append(d, string(v))
		return true
	})
	if err != nil {
		return nil, err
	}
	cp.dict.Store(&d)
	return d, nil
}

// plainByteArrays calls fn for the first n PLAIN BYTE_ARRAY values of b
// until fn returns false.
func plainByteArrays(b []byte, n int, fn func(i int, v []byte) bool) error {
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return errors.New("truncated byte array")
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return errors.New("truncated byte array")
		}
		if !fn(i, b[4:4+l]) {
			return nil
		}
		b = b[4+l:]
	}
	return nil
}

// fastLookup appends the rows of row group rgi with key ks[i], i in cand,
// using the fast path.
func (f *pfile) fastLookup(rgi int, ks []string, cand []int, order int, hits []hit) ([]hit, error) {
	rg := &f.rgs[rgi]
	fc := rg.fast
	buf := pageBufPool.Get().(*pageBuf)
	defer pageBufPool.Put(buf)
	kc := &fc[fcKey]
	for _, i := range cand {
		k := ks[i]
		lo, hi := rg.rowRange(k)
		if lo >= hi {
			continue
		}
		kb := bytesOf(k)
		first, last := int64(-1), int64(-1)
		past := false
		for p := kc.pageOf(lo); p < len(kc.pages) && int64(kc.pages[p].first) < hi && !past; p++ {
			h, body, err := f.dataPage(kc, p, buf)
			if err != nil {
				return hits, err
			}
			if h.encoding != encPlain {
				return hits, errSlowPath
			}
			base := int64(kc.pages[p].first)
			var perr error
			perr = plainByteArrays(body, int(h.numValues), func(j int, v []byte) bool {
				switch c := bytes.Compare(v, kb); {
				case c < 0:
					return true
				case c == 0:
					if first < 0 {
						first = base + int64(j)
					}
					last = base + int64(j) + 1
					return true
				}
				past = true
				return false
			})
			if perr != nil {
				return hits, fmt.Errorf("key page %d: %w", p, perr)
			}
		}
		if first < 0 {
			continue // bloom filter false positive
		}
		start := len(hits)
		for r := first; r < last; r++ {
			hits = append(hits, hit{key: k, order: order, row: rg.start + r})
		}
		out := hits[start:]
		if err := f.fastInt64s(&fc[fcTS], first, buf, out, func(h *hit, v int64) { h.ts = v }); err != nil {
			return hits, fmt.Errorf("ts: %w", err)
		}
		var opErr error
		if err := f.fastStrings(&fc[fcOp], first, buf, out, func(h *hit, v string) {
			op, err := parseOp([]byte(v))
			if err != nil {
				opErr = err
			}
			h.op = op
		}); err != nil {
			return hits, fmt.Errorf("op: %w", err)
		}
		if opErr != nil {
			return hits, opErr
		}
		if err := f.fastStrings(&fc[fcList], first, buf, out, func(h *hit, v string) { h.list = v }); err != nil {
			return hits, fmt.Errorf("list: %w", err)
		}
	}
	return hits, nil
}

// fastInt64s sets, via set, the PLAIN INT64 values of rows first.. of cp
// into out (one per row).
func (f *pfile) fastInt64s(cp *chunkPages, first int64, buf *pageBuf, out []hit, set func(*hit, int64)) error {
	row, done := first, 0
	for done < len(out) {
		p := cp.pageOf(row)
		if p < 0 {
			return fmt.Errorf("no page for row %d", row)
		}
		h, body, err := f.dataPage(cp, p, buf)
		if err != nil {
			return err
		}
		if h.encoding != encPlain {
			return errSlowPath
		}
		j := int(row - int64(cp.pages[p].first))
		for ; j < int(h.numValues) && done < len(out); j++ {
			if 8*j+8 > len(body) {
				return errors.New("truncated int64 page")
			}
			set(&out[done], int64(binary.LittleEndian.Uint64(body[8*j:])))
			done++
			row++
		}
	}
	return nil
}

// fastStrings sets, via set, the string values (dictionary or PLAIN) of
// rows first.. of cp into out (one per row). Values come from the
// dictionary, so they are shared, not copied per row.
func (f *pfile) fastStrings(cp *chunkPages, first int64, buf *pageBuf, out []hit, set func(*hit, string)) error {
	var dict []string
	if cp.dictOff != 0 {
		// Before any data page: it shares buf.
		d, err := f.dictionary(cp, buf)
		if err != nil {
			return err
		}
		dict = d
	}
	row, done := first, 0
	for done < len(out) {
		p := cp.pageOf(row)
		if p < 0 {
			return fmt.Errorf("no page for row %d", row)
		}
		h, body, err := f.dataPage(cp, p, buf)
		if err != nil {
			return err
		}
		skip := int(row - int64(cp.pages[p].first))
		n := min(int(h.numValues)-skip, len(out)-done)
		if n <= 0 {
			return fmt.Errorf("page %d does not hold row %d", p, row)
		}
		switch h.encoding {
		case encPlain:
			err = plainByteArrays(body, skip+n, func(j int, v []byte) bool {
				if j >= skip {
					set(&out[done+j-skip], string(v))
				}
				return true
			})
		case encPlainDict, encRLEDictionary:
			if dict == nil {
				return errSlowPath
			}
			err = rleDictIndexes(body, skip, n, func(j int, idx uint32) error {
				if int(idx) >= len(dict) {
					return fmt.Errorf("dictionary index %d of %d", idx, len(dict))
				}
				set(&out[done+j], dict[idx])
				return nil
			})
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
		done += n
		row += int64(n)
	}
	return nil
}

// rleDictIndexes decodes a dictionary-encoded data page body (bit width
// byte, then RLE/bit-packed hybrid runs) and calls fn(j, index) for values
// skip..skip+n-1 (j from 0).
func rleDictIndexes(b []byte, skip, n int, fn func(j int, idx uint32) error) error {
	if len(b) < 1 {
		return errors.New("empty dictionary page")
	}
	bw := int(b[0])
	b = b[1:]
	if bw > 32 {
		return fmt.Errorf("bit width %d", bw)
	}
	pos, end := 0, skip+n
	for pos < end {
		h, w := binary.Uvarint(b)
		if w <= 0 {
			return errors.New("bad RLE run header")
		}
		b = b[w:]
		if h&1 == 0 { // RLE run
			cnt := int(h >> 1)
			nb := (bw + 7) / 8
			if len(b) < nb {
				return errors.New("truncated RLE run")
			}
			var v uint32
			for i := 0; i < nb; i++ {
				v |= uint32(b[i]) << (8 * i)
			}
			b = b[nb:]
			for i := 0; i < cnt && pos < end; i, pos = i+1, pos+1 {
				if pos >= skip {
					if err := fn(pos-skip, v); err != nil {
						return err
					}
				}
			}
			continue
		}
		// Bit-packed run of groups of 8 values.
		cnt := int(h>>1) * 8
		nbytes := int(h>>1) * bw
		if len(b) < nbytes {
			return errors.New("truncated bit-packed run")
		}
		run := b[:nbytes]
		b = b[nbytes:]
		if pos+cnt <= skip {
			pos += cnt
			continue
		}
		for i := 0; i < cnt && pos < end; i, pos = i+1, pos+1 {
			if pos < skip {
				continue
			}
			bit := i * bw
			var v uint64
			for k := 0; k < bw; k++ {
				if run[(bit+k)>>3]&(1<<uint((bit+k)&7)) != 0 {
					v |= 1 << uint(k)
				}
			}
			if err := fn(pos-skip, uint32(v)); err != nil {
				return err
			}
		}
	}
	return nil
}

// parsePageHeader parses a Thrift compact-protocol PageHeader.
func parsePageHeader(b []byte) (pageHeader, error) {
	r := tcReader{b: b}
	var h pageHeader
	r.structFields(func(id int16, typ byte) bool {
		switch {
		case id == 1 && typ == tcI32:
			h.typ = r.i32()
		case id == 2 && typ == tcI32:
			h.uncompressed = r.i32()
		case id == 3 && typ == tcI32:
			h.compressed = r.i32()
		case id == 5 && typ == tcStruct:
			h.hasDataHeader = true
			r.structFields(func(id int16, typ byte) bool {
				switch {
				case id == 1 && typ == tcI32:
					h.numValues = r.i32()
				case id == 2 && typ == tcI32:
					h.encoding = r.i32()
				default:
					return false
				}
				return true
			})
		case id == 7 && typ == tcStruct:
			h.hasDictHeader = true
			r.structFields(func(id int16, typ byte) bool {
				switch {
				case id == 1 && typ == tcI32:
					h.numValues = r.i32()
				case id == 2 && typ == tcI32:
					h.encoding = r.i32()
				default:
					return false
				}
				return true
			})
		case id == 8 || id == 6:
			h.unsupportedHdr = true
			return false
		default:
			return false
		}
		return true
	})
	if r.err != nil {
		return h, fmt.Errorf("page header: %w", r.err)
	}
	h.hdrLen = r.i
	return h, nil
}

// Thrift compact protocol types.
const (
	tcStop      = 0
	tcTrue      = 1
	tcFalse     = 2
	tcByte      = 3
	tcI16       = 4
	tcI32       = 5
	tcI64       = 6
	tcDouble    = 7
	tcBinary    = 8
	tcList      = 9
	tcSet       = 10
	tcMap       = 11
	tcStruct    = 12
	tcMaxDepth  = 16
	tcMaxLength = maxPageHeaderSize
)

// tcReader reads the Thrift compact protocol, just enough for page headers.
type tcReader struct {
	b     []byte
	i     int
	err   error
	depth int
}

func (r *tcReader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
	r.i = len(r.b)
}

func (r *tcReader) byte() byte {
	if r.i >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *tcReader) uvarint() uint64 {
	v, w := binary.Uvarint(r.b[r.i:])
	if w <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.i += w
	return v
}

func (r *tcReader) zigzag() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *tcReader) i32() int32 { return int32(r.zigzag()) }

// structFields reads a struct's fields, calling fn for each; fn returns
// false if it did not consume the field's value, which is then skipped.
func (r *tcReader) structFields(fn func(id int16, typ byte) bool) {
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > tcMaxDepth {
		r.fail("nesting too deep")
		return
	}
	var last int16
	for r.err == nil {
		c := r.byte()
		typ := c & 0x0f
		if typ == tcStop {
			return
		}
		id := last + int16(c>>4)
		if c>>4 == 0 {
			id = int16(r.zigzag())
		}
		last = id
		if typ == tcTrue || typ == tcFalse {
			fn(id, typ) // value is in the type
			continue
		}
		if !fn(id, typ) {
			r.skip(typ)
		}
	}
}

func (r *tcReader) skip(typ byte) {
	switch typ {
	case tcTrue, tcFalse:
	case tcByte:
		r.byte()
	case tcI16, tcI32, tcI64:
		r.uvarint()
	case tcDouble:
		r.bytes(8)
	case tcBinary:
		r.bytes(int(r.uvarint()))
	case tcList, tcSet:
		c := r.byte()
		n := int(c >> 4)
		if n == 15 {
			n = int(r.uvarint())
		}
		et := c & 0x0f
		if n > tcMaxLength {
			r.fail("list too long")
			return
		}
		for i := 0; i < n && r.err == nil; i++ {
			if et == tcTrue || et == tcFalse {
				r.byte()
			} else {
				r.skip(et)
			}
		}
	case tcMap:
		n := int(r.uvarint())
		if n == 0 {
			return
		}
		kv := r.byte()
		if n > tcMaxLength {
			r.fail("map too long")
			return
		}
		for i := 0; i < n && r.err == nil; i++ {
			r.skipElem(kv >> 4)
			r.skipElem(kv & 0x0f)
		}
	case tcStruct:
		r.structFields(func(int16, byte) bool { return false })
	default:
		r.fail("bad type")
	}
}

func (r *tcReader) skipElem(t byte) {
	if t == tcTrue || t == tcFalse {
		r.byte()
		return
	}
	r.skip(t)
}

func (r *tcReader) bytes(n int) {
	if n < 0 || n > len(r.b)-r.i {
		r.fail("truncated")
		return
	}
	r.i += n
}
