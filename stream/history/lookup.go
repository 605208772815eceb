package history

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// hasher is the bloom filter hash (xxHash64 of the plain value).
var hasher = metadata.NewBloomFilter(32, 32, memory.DefaultAllocator).Hasher()

// lookupItem is a row group to read and its keys (cand[lo:hi]).
type lookupItem struct {
	f      *pfile
	order  int
	rgi    int
	lo, hi int
}

// Lookup reads row groups in parallel when there are at least
// 2*lookupItemsPerWorker of them.
const (
	lookupItemsPerWorker = 4
	maxLookupWorkers     = 8
)

// hit is one row found by Lookup.
type hit struct {
	key   string // the caller's key string
	list  string
	ts    int64
	op    change.Op
	order int   // file position in the snapshot
	row   int64 // row in the file
}

var batchPool = sync.Pool{New: func() any { b := make([]parquet.ByteArray, writeBatch); return &b }}

// Lookup calls fn for every stored change whose Key is one of keys, in
// (key, ts, arrival) order. Duplicate keys are looked up once.
//
// Pruning: per file, the in-memory key range of each row group selects the
// row groups that can hold a key, the in-memory bloom filter (over the
// resource column) of each such row group drops most of them, and the key
// column's page index (also in memory) narrows the rest to the key pages
// that can hold the key. Only those pages are read; the ts, op and list
// pages of the matching rows are read only on a hit. Many row groups are
// read by several goroutines.
//
// Lookup does not read the topic position columns: the changes it yields
// have Partition and Offset change.NoPosition (Scan yields them).
func (s *Store) Lookup(keys []string, fn func(change.Change)) error {
	_, err := s.LookupGen(keys, fn)
	return err
}

// LookupGen is Lookup that also returns the generation of the committed
// state it read: it holds every row of every Commit that returned a
// generation at or below it.
func (s *Store) LookupGen(keys []string, fn func(change.Change)) (int64, error) {
	sn, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer sn.release()
	return sn.gen, s.lookup(sn, keys, fn)
}

func (s *Store) lookup(sn *snapshot, keys []string, fn func(change.Change)) error {
	if len(keys) == 0 {
		return nil
	}

	ks := slices.Clone(keys)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	// Keys that do not decode cannot be stored. The bloom filters are over
	// the resource text, which is 1:1 with the key (but for an e-mail
	// domain and the domain of the same name, a mere false positive).
	hashes := make([]uint64, 0, len(ks))
	valid := ks[:0]
	for _, k := range ks {
		if r, err := resource.FromKey(k); err == nil {
			valid = append(valid, k)
			hashes = append(hashes, hasher.Sum64(bytesOf(r.String())))
		}
	}
	ks = valid
	if len(ks) == 0 {
		return nil
	}
	// Plan: the row groups to read and, for each, the keys to look for.
	var (
		items []lookupItem
		cand  []int    // items' key indexes, back to back
		pairs [][2]int // (row group, key index) candidates of one file
	)
	for order, f := range sn.files {
		if len(f.rgs) == 0 || ks[len(ks)-1] < f.minKey || ks[0] > f.maxKey {
			continue
		}
		pairs = pairs[:0]
		for i, k := range ks {
			lo, hi := f.rgRange(k)
			for rgi := lo; rgi < hi; rgi++ {
				if bf := f.rgs[rgi].bloom; bf == nil || bf.CheckHash(hashes[i]) {
					pairs = append(pairs, [2]int{rgi, i})
				}
			}
		}
		slices.SortFunc(pairs, func(a, b [2]int) int {
			if a[0] != b[0] {
				return a[0] - b[0]
			}
			return a[1] - b[1]
		})
		for len(pairs) > 0 {
			it := lookupItem{f: f, order: order, rgi: pairs[0][0], lo: len(cand)}
			for len(pairs) > 0 && pairs[0][0] == it.rgi {
				cand = append(cand, pairs[0][1])
				pairs = pairs[1:]
			}
			it.hi = len(cand)
			items = append(items, it)
		}
	}
	run := func(it *lookupItem, hits []hit) ([]hit, error) {
		hits, err := it.f.lookupRowGroup(it.rgi, ks, cand[it.lo:it.hi], it.order, hits)
		if err != nil {
			err = fmt.Errorf("history lookup %q: %w", it.f.abs, err)
		}
		return hits, err
	}

	// Read: one goroutine per lookupItemsPerWorker items, up to GOMAXPROCS.
	var hits []hit
	var err error
	workers := min(runtime.GOMAXPROCS(0), maxLookupWorkers, len(items)/lookupItemsPerWorker)
	if workers <= 1 {
		for i := range items {
			if hits, err = run(&items[i], hits); err != nil {
				return err
			}
		}
	} else {
		var (
			next    atomic.Int64
			wg      sync.WaitGroup
			results = make([][]hit, workers)
			errs    = make([]error, workers)
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(items) || errs[w] != nil {
						return
					}
					results[w], errs[w] = run(&items[i], results[w])
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for _, r := range results {
			hits = append(hits, r...)
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		switch {
		case a.ts < b.ts:
			return -1
		case a.ts > b.ts:
			return 1
		case a.order != b.order:
			return a.order - b.order
		case a.row < b.row:
			return -1
		case a.row > b.row:
			return 1
		}
		return 0
	})
	for i := range hits {
		h := &hits[i]
		fn(change.Change{Time: time.UnixMicro(h.ts).UTC(), Op: h.op, List: h.list, Key: h.key,
			Partition: change.NoPosition, Offset: change.NoPosition})
	}
	return nil
}

// lookupRowGroup appends to hits the rows of row group rgi whose key is
// ks[i] for i in cand (ascending).
func (f *pfile) lookupRowGroup(rgi int, ks []string, cand []int, order int, hits []hit) ([]hit, error) {
	if f.rgs[rgi].fast != nil && !forceSlowPath {
		base := len(hits)
		out, err := f.fastLookup(rgi, ks, cand, order, hits)
		if !errors.Is(err, errSlowPath) {
			if err != nil {
				err = fmt.Errorf("row group %d: %w", rgi, err)
			}
			return out, err
		}
		hits = out[:base]
	}
	return f.lookupRowGroupArrow(rgi, ks, cand, order, hits)
}

// forceSlowPath makes lookups use the generic reader (tests).
var forceSlowPath = false

// lookupRowGroupArrow is lookupRowGroup with arrow-go's column readers.
func (f *pfile) lookupRowGroupArrow(rgi int, ks []string, cand []int, order int, hits []hit) ([]hit, error) {
	rg := &f.rgs[rgi]
	rgr := f.lookupR.RowGroup(rgi)
	var (
		keyR          *file.ByteArrayColumnChunkReader
		tsR           *file.Int64ColumnChunkReader
		opR, listR    *file.ByteArrayColumnChunkReader
		err           error
		bufp          = batchPool.Get().(*[]parquet.ByteArray)
		buf           = *bufp
		tsBuf         []int64
		listIntern    map[string]string
		prevList      string
		prevListBytes []byte
	)
	defer batchPool.Put(bufp)
	for _, i := range cand {
		k := ks[i]
		lo, hi := rg.rowRange(k)
		if lo >= hi {
			continue
		}
		if keyR == nil {
			if err := f.verifyChunk(rgi, colKey); err != nil {
				return hits, err
			}
			c, err := rgr.Column(colKey)
			if err != nil {
				return hits, err
			}
			keyR = c.(*file.ByteArrayColumnChunkReader)
		}
		if err := keyR.SeekToRow(lo); err != nil {
			return hits, fmt.Errorf("row group %d: seek key to %d: %w", rgi, lo, err)
		}
		kb := bytesOf(k)
		first, last := int64(-1), int64(-1) // matching rows [first, last)
		for pos := lo; pos < hi; {
			n, _, err := keyR.ReadBatchInPage(min(hi-pos, int64(len(buf))), buf, nil, nil)
			if err != nil {
				return hits, fmt.Errorf("row group %d: read key: %w", rgi, err)
			}
			if n == 0 {
				return hits, fmt.Errorf("row group %d: key column ended at row %d", rgi, pos)
			}
			vals := buf[:n]
			a, _ := slices.BinarySearchFunc(vals, kb, func(v parquet.ByteArray, t parquet.ByteArray) int { return bytes.Compare(v, t) })
			b := a
			for b < len(vals) && bytes.Equal(vals[b], kb) {
				b++
			}
			if a < b {
				if first < 0 {
					first = pos + int64(a)
				}
				last = pos + int64(b)
			}
			pos += n
			if b < len(vals) {
				break // past k
			}
		}
		if first < 0 {
			continue // bloom filter false positive
		}
		cnt := int(last - first)
		// ts
		if tsR == nil {
			if err := f.verifyChunk(rgi, colTS); err != nil {
				return hits, err
			}
			c, err := rgr.Column(colTS)
			if err != nil {
				return hits, err
			}
			tsR = c.(*file.Int64ColumnChunkReader)
		}
		tsBuf = slices.Grow(tsBuf[:0], cnt)[:cnt]
		if err := readInt64s(tsR, first, tsBuf); err != nil {
			return hits, fmt.Errorf("row group %d: read ts: %w", rgi, err)
		}
		base := len(hits)
		for j := 0; j < cnt; j++ {
			hits = append(hits, hit{key: k, ts: tsBuf[j], order: order, row: rg.start + first + int64(j)})
		}
		// op
		if opR == nil {
			if err := f.verifyChunk(rgi, colOp); err != nil {
				return hits, err
			}
			c, err := rgr.Column(colOp)
			if err != nil {
				return hits, err
			}
			opR = c.(*file.ByteArrayColumnChunkReader)
		}
		err = readBytes(opR, first, int64(cnt), buf, func(j int64, v []byte) error {
			op, err := parseOp(v)
			hits[base+int(j)].op = op
			return err
		})
		if err != nil {
			return hits, fmt.Errorf("row group %d: read op: %w", rgi, err)
		}
		// list
		if listR == nil {
			if err := f.verifyChunk(rgi, colList); err != nil {
				return hits, err
			}
			c, err := rgr.Column(colList)
			if err != nil {
				return hits, err
			}
			listR = c.(*file.ByteArrayColumnChunkReader)
		}
		err = readBytes(listR, first, int64(cnt), buf, func(j int64, v []byte) error {
			if !bytes.Equal(v, prevListBytes) || prevList == "" {
				l, ok := listIntern[string(v)]
				if !ok {
					l = string(v)
					if listIntern == nil {
						listIntern = map[string]string{}
					}
					listIntern[l] = l
				}
				prevList, prevListBytes = l, bytesOf(l)
			}
			hits[base+int(j)].list = prevList
			return nil
		})
		if err != nil {
			return hits, fmt.Errorf("row group %d: read list: %w", rgi, err)
		}
	}
	return hits, err
}

func parseOp(v []byte) (change.Op, error) {
	switch string(v) {
	case "add":
		return change.Add, nil
	case "rem":
		return change.Rem, nil
	}
	return 0, fmt.Errorf("bad op %q", v)
}

// readInt64s reads len(dst) values starting at row.
func readInt64s(r *file.Int64ColumnChunkReader, row int64, dst []int64) error {
	if err := r.SeekToRow(row); err != nil {
		return err
	}
	for got := 0; got < len(dst); {
		n, _, err := r.ReadBatch(int64(len(dst)-got), dst[got:], nil, nil)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("column ended after %d of %d values", got, len(dst))
		}
		got += int(n)
	}
	return nil
}

// readBytes calls fn for n values starting at row; v is valid only during fn.
func readBytes(r *file.ByteArrayColumnChunkReader, row, n int64, buf []parquet.ByteArray, fn func(i int64, v []byte) error) error {
	if err := r.SeekToRow(row); err != nil {
		return err
	}
	return readBytesNext(r, n, buf, 0, fn)
}

// readBytesNext calls fn(base+i, v) for the next n values of r.
func readBytesNext(r *file.ByteArrayColumnChunkReader, n int64, buf []parquet.ByteArray, base int64, fn func(i int64, v []byte) error) error {
	for got := int64(0); got < n; {
		m, _, err := r.ReadBatchInPage(min(n-got, int64(len(buf))), buf, nil, nil)
		if err != nil {
			return err
		}
		if m == 0 {
			return fmt.Errorf("column ended after %d of %d values", got, n)
		}
		for j := int64(0); j < m; j++ {
			if err := fn(base+got+j, buf[j]); err != nil {
				return err
			}
		}
		got += m
	}
	return nil
}
