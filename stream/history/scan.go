package history

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/netwarden/netwarden/internal/change"
)

// scanBatch is the number of rows a cursor decodes at a time.
const scanBatch = 4096

// Scan calls fn for every stored change in (key, ts, arrival) order:
// all changes of a key are consecutive and in time order, ties in the
// order they arrived. It reads the snapshot current when it starts and
// stops at the first error of fn or ctx.
func (s *Store) Scan(ctx context.Context, fn func(change.Change) error) error {
	sn, err := s.acquire()
	if err != nil {
		return err
	}
	defer sn.release()
	m, err := newMerger(sn.files)
	if err != nil {
		return fmt.Errorf("history scan: %w", err)
	}
	for n := 0; ; n++ {
		if n%scanBatch == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r, ok, err := m.next()
		if err != nil {
			return fmt.Errorf("history scan: %w", err)
		}
		if !ok {
			return nil
		}
		if err := fn(change.Change{Time: time.UnixMicro(r.ts).UTC(), Op: r.op, List: r.list, Key: r.key, Partition: r.part, Offset: r.off}); err != nil {
			return err
		}
	}
}

// cursor reads one file in order, a batch at a time.
type cursor struct {
	f     *pfile
	order int
	rgi   int   // current row group, -1 before the first
	left  int64 // rows of the current row group not yet decoded

	keyR, opR, listR *file.ByteArrayColumnChunkReader
	tsR, offR        *file.Int64ColumnChunkReader
	partR            *file.Int32ColumnChunkReader // with offR, nil for files without positions

	rows    []row
	i       int
	buf     []parquet.ByteArray
	tsBuf   []int64
	partBuf []int32
	intern  map[string]string
}

func newCursor(f *pfile, order int) *cursor {
	return &cursor{f: f, order: order, rgi: -1, buf: make([]parquet.ByteArray, writeBatch), intern: map[string]string{}}
}

// fill decodes the next batch; ok is false at the end of the file.
func (c *cursor) fill() (ok bool, err error) {
	for c.left == 0 {
		c.rgi++
		if c.rgi >= len(c.f.rgs) {
			c.rows, c.i = c.rows[:0], 0
			return false, nil
		}
		c.left = c.f.rgs[c.rgi].rows
		rgr := c.f.scanR.RowGroup(c.rgi)
		cols := [4]int{colKey, colTS, colOp, colList}
		var rs [4]file.ColumnChunkReader
		for j, col := range cols {
			if err := c.f.verifyChunk(c.rgi, col); err != nil {
				return false, err
			}
			if rs[j], err = rgr.Column(col); err != nil {
				return false, fmt.Errorf("%q row group %d column %s: %w", c.f.abs, c.rgi, colNames[col], err)
			}
		}
		c.keyR = rs[0].(*file.ByteArrayColumnChunkReader)
		c.tsR = rs[1].(*file.Int64ColumnChunkReader)
		c.opR = rs[2].(*file.ByteArrayColumnChunkReader)
		c.listR = rs[3].(*file.ByteArrayColumnChunkReader)
		c.partR, c.offR = nil, nil
		if c.f.positions {
			for _, col := range []int{colPartition, colOffset} {
				if err := c.f.verifyChunk(c.rgi, col); err != nil {
					return false, err
				}
			}
			pr, err := rgr.Column(colPartition)
			if err != nil {
				return false, fmt.Errorf("%q row group %d column %s: %w", c.f.abs, c.rgi, colNames[colPartition], err)
			}
			or, err := rgr.Column(colOffset)
			if err != nil {
				return false, fmt.Errorf("%q row group %d column %s: %w", c.f.abs, c.rgi, colNames[colOffset], err)
			}
			c.partR = pr.(*file.Int32ColumnChunkReader)
			c.offR = or.(*file.Int64ColumnChunkReader)
		}
	}
	n := min(c.left, scanBatch)
	if cap(c.rows) < int(n) {
		c.rows = make([]row, n)
	}
	c.rows, c.i = c.rows[:n], 0
	var prev string
	err = readBytesNext(c.keyR, n, c.buf, 0, func(i int64, v []byte) error {
		if i == 0 || !bytes.Equal(v, bytesOf(prev)) {
			prev = string(v)
		}
		c.rows[i].key = prev
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("%q row group %d: read key: %w", c.f.abs, c.rgi, err)
	}
	if cap(c.tsBuf) < int(n) {
		c.tsBuf = make([]int64, n)
	}
	ts := c.tsBuf[:n]
	for got := int64(0); got < n; {
		m, _, err := c.tsR.ReadBatch(n-got, ts[got:], nil, nil)
		if err == nil && m == 0 {
			err = fmt.Errorf("column ended")
		}
		if err != nil {
			return false, fmt.Errorf("%q row group %d: read ts: %w", c.f.abs, c.rgi, err)
		}
		got += m
	}
	for i := range ts {
		c.rows[i].ts = ts[i]
	}
	if err := c.fillPositions(n); err != nil {
		return false, err
	}
	err = readBytesNext(c.opR, n, c.buf, 0, func(i int64, v []byte) error {
		op, err := parseOp(v)
		c.rows[i].op = op
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%q row group %d: read op: %w", c.f.abs, c.rgi, err)
	}
	err = readBytesNext(c.listR, n, c.buf, 0, func(i int64, v []byte) error {
		l, ok := c.intern[string(v)]
		if !ok {
			l = string(v)
			c.intern[l] = l
		}
		c.rows[i].list = l
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("%q row group %d: read list: %w", c.f.abs, c.rgi, err)
	}
	c.left -= n
	return true, nil
}

// merger merges cursors by (key, ts, order); within a cursor rows are
// already in (key, ts, arrival) order.
type merger struct {
	h []*cursor
}

func newMerger(files []*pfile) (*merger, error) {
	m := &merger{}
	for order, f := range files {
		c := newCursor(f, order)
		ok, err := c.fill()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, c)
		}
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return m, nil
}

func (m *merger) less(a, b *cursor) bool {
	ra, rb := &a.rows[a.i], &b.rows[b.i]
	if ra.key != rb.key {
		return ra.key < rb.key
	}
	if ra.ts != rb.ts {
		return ra.ts < rb.ts
	}
	return a.order < b.order
}

func (m *merger) down(i int) {
	h := m.h
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		j := l
		if r := l + 1; r < len(h) && m.less(h[r], h[l]) {
			j = r
		}
		if !m.less(h[j], h[i]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// next returns the next row.
func (m *merger) next() (row, bool, error) {
	if len(m.h) == 0 {
		return row{}, false, nil
	}
	c := m.h[0]
	r := c.rows[c.i]
	c.i++
	if c.i == len(c.rows) {
		ok, err := c.fill()
		if err != nil {
			return row{}, false, err
		}
		if !ok {
			last := len(m.h) - 1
			m.h[0] = m.h[last]
			m.h[last] = nil
			m.h = m.h[:last]
		}
	}
	if len(m.h) > 0 {
		m.down(0)
	}
	return r, true, nil
}

// fillPositions sets part and off of the n rows of the batch: read from
// the file, or change.NoPosition for a file without position columns.
func (c *cursor) fillPositions(n int64) error {
	if c.partR == nil {
		for i := range c.rows[:n] {
			c.rows[i].part, c.rows[i].off = change.NoPosition, change.NoPosition
		}
		return nil
	}
	if cap(c.partBuf) < int(n) {
		c.partBuf = make([]int32, n)
	}
	parts := c.partBuf[:n]
	for got := int64(0); got < n; {
		m, _, err := c.partR.ReadBatch(n-got, parts[got:], nil, nil)
		if err == nil && m == 0 {
			err = fmt.Errorf("column ended")
		}
		if err != nil {
			return fmt.Errorf("%q row group %d: read %s: %w", c.f.abs, c.rgi, colNames[colPartition], err)
		}
		got += m
	}
	offs := c.tsBuf[:n] // ts values are copied into rows already
	for got := int64(0); got < n; {
		m, _, err := c.offR.ReadBatch(n-got, offs[got:], nil, nil)
		if err == nil && m == 0 {
			err = fmt.Errorf("column ended")
		}
		if err != nil {
			return fmt.Errorf("%q row group %d: read %s: %w", c.f.abs, c.rgi, colNames[colOffset], err)
		}
		got += m
	}
	for i := range parts {
		c.rows[i].part, c.rows[i].off = parts[i], offs[i]
	}
	return nil
}
