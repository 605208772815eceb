package history

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// RangeGen calls fn for every stored change whose key lies in one of
// ranges, in (key, ts, arrival) order, and returns the generation of the
// snapshot it read (see LookupGen). It reads at most limit+1 rows: when
// the ranges hold more than limit rows it returns complete == false and
// does not call fn, so a broad range costs bounded memory and I/O. Like
// Lookup, it does not read the topic position columns: the changes it
// yields have Partition and Offset change.NoPosition.
//
// Pruning: the in-memory key range of each row group selects the row
// groups that can hold keys of a range, and the key column's in-memory
// page index narrows each to the pages that can; only those key pages are
// read, and the ts, op and list values only of the rows inside the range
// (they are consecutive: a file is sorted by key).
func (s *Store) RangeGen(ranges []resource.KeyRange, limit int, fn func(change.Change)) (gen int64, complete bool, err error) {
	sn, err := s.acquire()
	if err != nil {
		return 0, false, err
	}
	defer sn.release()
	var hits []hit
	for order, f := range sn.files {
		for _, kr := range ranges {
			if kr.Lo >= kr.Hi || len(f.rgs) == 0 || f.maxKey < kr.Lo || f.minKey >= kr.Hi {
				continue
			}
			lo := sort.Search(len(f.rgs), func(i int) bool { return f.rgs[i].maxKey >= kr.Lo })
			for rgi := lo; rgi < len(f.rgs) && f.rgs[rgi].minKey < kr.Hi; rgi++ {
				if hits, err = f.rangeRowGroup(rgi, kr, order, limit+1-len(hits), hits); err != nil {
					return 0, false, fmt.Errorf("history range read %q: %w", f.abs, err)
				}
				if len(hits) > limit {
					return sn.gen, false, nil
				}
			}
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.ts, b.ts), cmp.Compare(a.order, b.order), cmp.Compare(a.row, b.row))
	})
	for i := range hits {
		h := &hits[i]
		fn(change.Change{Time: time.UnixMicro(h.ts).UTC(), Op: h.op, List: h.list, Key: h.key,
			Partition: change.NoPosition, Offset: change.NoPosition})
	}
	return sn.gen, true, nil
}

// pageRows returns the rows [lo, hi) of the row group that can hold keys
// of kr according to the page index (all rows without one). The rows of
// key page i have keys from pageMin(i) to pageMin(i+1).
func (rg *rgIndex) pageRows(kr resource.KeyRange) (lo, hi int64) {
	if rg.fast == nil {
		return 0, rg.rows
	}
	pages := rg.fast[fcKey].pages
	n := len(pages)
	p0 := max(sort.Search(n, func(i int) bool { return rg.pageMin(i) >= kr.Lo })-1, 0)
	p1 := sort.Search(n, func(i int) bool { return rg.pageMin(i) >= kr.Hi }) - 1
	if p1 < p0 {
		return 0, 0
	}
	lo, hi = int64(pages[p0].first), rg.rows
	if p1+1 < n {
		hi = int64(pages[p1+1].first)
	}
	return lo, hi
}

// rangeRowGroup appends to hits the rows of row group rgi whose key is in
// kr, reading at most room of them (more means the caller's limit is
// exceeded: it appends room rows and stops).
func (f *pfile) rangeRowGroup(rgi int, kr resource.KeyRange, order, room int, hits []hit) ([]hit, error) {
	rg := &f.rgs[rgi]
	lo, hi := rg.pageRows(kr)
	if lo >= hi || room <= 0 {
		return hits, nil
	}
	rgr := f.scanR.RowGroup(rgi)
	// col opens column fc for reading rows [from, to). The generic reader
	// does not check page checksums: check the pages it will read first.
	col := func(fc int, from, to int64) (file.ColumnChunkReader, error) {
		if err := f.verifyRows(rgi, fc, from, to); err != nil {
			return nil, err
		}
		c, err := rgr.Column(fastCols[fc])
		if err != nil {
			return nil, fmt.Errorf("row group %d column %s: %w", rgi, colNames[fastCols[fc]], err)
		}
		return c, nil
	}
	c, err := col(fcKey, lo, hi)
	if err != nil {
		return hits, err
	}
	keyR := c.(*file.ByteArrayColumnChunkReader)
	bufp := batchPool.Get().(*[]parquet.ByteArray)
	defer batchPool.Put(bufp)
	buf := *bufp

	// Keys: the matching rows [first, first+len(keys)) are consecutive.
	var keys []string
	first := int64(-1)
	loB, hiB := bytesOf(kr.Lo), bytesOf(kr.Hi)
	if err := keyR.SeekToRow(lo); err != nil {
		return hits, fmt.Errorf("row group %d: seek key to %d: %w", rgi, lo, err)
	}
	for pos := lo; pos < hi && len(keys) < room; {
		n, _, err := keyR.ReadBatchInPage(min(hi-pos, int64(len(buf))), buf, nil, nil)
		if err != nil {
			return hits, fmt.Errorf("row group %d: read key: %w", rgi, err)
		}
		if n == 0 {
			return hits, fmt.Errorf("row group %d: key column ended at row %d", rgi, pos)
		}
		past := false
		for j, v := range buf[:n] {
			if bytes.Compare(v, loB) < 0 {
				continue
			}
			if bytes.Compare(v, hiB) >= 0 || len(keys) == room {
				past = true
				break
			}
			if first < 0 {
				first = pos + int64(j)
			}
			if len(keys) == 0 || keys[len(keys)-1] != string(v) {
				keys = append(keys, string(v))
			} else {
				keys = append(keys, keys[len(keys)-1])
			}
		}
		pos += n
		if past {
			break
		}
	}
	if len(keys) == 0 {
		return hits, nil
	}
	cnt := len(keys)
	base := len(hits)
	for j, k := range keys {
		hits = append(hits, hit{key: k, order: order, row: rg.start + first + int64(j)})
	}
	out := hits[base:]

	if c, err = col(fcTS, first, first+int64(cnt)); err != nil {
		return hits, err
	}
	ts := make([]int64, cnt)
	if err := readInt64s(c.(*file.Int64ColumnChunkReader), first, ts); err != nil {
		return hits, fmt.Errorf("row group %d: read ts: %w", rgi, err)
	}
	for j := range out {
		out[j].ts = ts[j]
	}
	if c, err = col(fcOp, first, first+int64(cnt)); err != nil {
		return hits, err
	}
	err = readBytes(c.(*file.ByteArrayColumnChunkReader), first, int64(cnt), buf, func(j int64, v []byte) error {
		op, err := parseOp(v)
		out[j].op = op
		return err
	})
	if err != nil {
		return hits, fmt.Errorf("row group %d: read op: %w", rgi, err)
	}
	if c, err = col(fcList, first, first+int64(cnt)); err != nil {
		return hits, err
	}
	intern := map[string]string{}
	err = readBytes(c.(*file.ByteArrayColumnChunkReader), first, int64(cnt), buf, func(j int64, v []byte) error {
		l, ok := intern[string(v)]
		if !ok {
			l = string(v)
			intern[l] = l
		}
		out[j].list = l
		return nil
	})
	if err != nil {
		return hits, fmt.Errorf("row group %d: read list: %w", rgi, err)
	}
	return hits, nil
}
