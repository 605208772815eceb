package query

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Streaming encoders write a result row by row with a byte budget: a row
// that would take the output over the budget is not written, the result is
// marked truncated and the body still ends cleanly (valid JSON with
// "truncated": true, complete CSV records, a complete Arrow stream).

// jsonTailReserve is kept free of the budget for the closing
// `],"truncated":true}` of a JSON body.
const jsonTailReserve = 32

// arrowBatchBytes flushes an Arrow record batch once its estimated size
// reaches it (or after arrowBatchRows rows).
const arrowBatchBytes = 1 << 20

// rowEncoder streams one result in one format.
type rowEncoder interface {
	// row writes one row, or returns false and writes nothing when the row
	// would exceed the byte budget.
	row(vals []driver.Value) (bool, error)
	// end finishes the body.
	end(truncated bool) error
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newRowEncoder(f Format, cols []Column, w io.Writer, maxBytes int64) (rowEncoder, error) {
	cw := &countWriter{w: w}
	kinds := make([]colKind, len(cols))
	for i, c := range cols {
		kinds[i] = kindOf(c.Type)
	}
	switch f {
	case CSV:
		e := &csvEncoder{out: cw, max: maxBytes, kinds: kinds, cols: cols, rec: make([]string, len(cols))}
		e.csv = csv.NewWriter(&e.scratch)
		for i, c := range cols {
			e.rec[i] = c.Name
		}
		if err := e.csv.Write(e.rec); err != nil {
			return nil, err
		}
		e.csv.Flush()
		if _, err := cw.Write(e.scratch.Bytes()); err != nil {
			return nil, err
		}
		return e, nil
	case Arrow:
		return newArrowEncoder(cols, kinds, cw, maxBytes), nil
	default:
		e := &jsonEncoder{out: cw, max: maxBytes, kinds: kinds, conv: make([]any, len(cols))}
		e.enc = json.NewEncoder(&e.scratch)
		e.enc.SetEscapeHTML(false)
		c := cols
		if c == nil {
			c = []Column{}
		}
		e.scratch.WriteString(`{"columns":`)
		if err := e.enc.Encode(c); err != nil {
			return nil, fmt.Errorf("encode columns: %w", err)
		}
		e.scratch.WriteString(`,"rows":[`)
		if _, err := cw.Write(e.scratch.Bytes()); err != nil {
			return nil, err
		}
		return e, nil
	}
}

type jsonEncoder struct {
	out     *countWriter
	max     int64
	kinds   []colKind
	conv    []any
	scratch bytes.Buffer
	enc     *json.Encoder
	rows    int
}

func (e *jsonEncoder) row(vals []driver.Value) (bool, error) {
	e.scratch.Reset()
	if e.rows > 0 {
		e.scratch.WriteByte(',')
	}
	for j, v := range vals {
		e.conv[j] = jsonValue(e.kinds[j], v)
	}
	if err := e.enc.Encode(e.conv); err != nil {
		return false, fmt.Errorf("encode row %d: %w", e.rows, err)
	}
	if e.out.n+int64(e.scratch.Len())+jsonTailReserve > e.max {
		return false, nil
	}
	e.rows++
	_, err := e.out.Write(e.scratch.Bytes())
	return true, err
}

func (e *jsonEncoder) end(truncated bool) error {
	_, err := fmt.Fprintf(e.out, `],"truncated":%t}`+"\n", truncated)
	return err
}

type csvEncoder struct {
	out     *countWriter
	max     int64
	kinds   []colKind
	cols    []Column
	rec     []string
	scratch bytes.Buffer
	csv     *csv.Writer
	rows    int
}

func (e *csvEncoder) row(vals []driver.Value) (bool, error) {
	for j, v := range vals {
		s, err := textValue(e.kinds[j], v)
		if err != nil {
			return false, fmt.Errorf("row %d column %q: %w", e.rows, short(e.cols[j].Name), err)
		}
		e.rec[j] = s
	}
	e.scratch.Reset()
	if err := e.csv.Write(e.rec); err != nil {
		return false, err
	}
	e.csv.Flush()
	if err := e.csv.Error(); err != nil {
		return false, err
	}
	if e.out.n+int64(e.scratch.Len()) > e.max {
		return false, nil
	}
	e.rows++
	_, err := e.out.Write(e.scratch.Bytes())
	return true, err
}

func (e *csvEncoder) end(bool) error { return nil }

// arrowEncoder writes an Arrow IPC stream in record batches. The byte budget
// is checked against an estimate of each row's size (values plus offsets and
// validity), so an Arrow body may end slightly below or above it. Unlike the
// in-memory encoder, HUGEINT/UHUGEINT columns are written as strings (a
// 39-digit value is only known once it is read), and the schema carries no
// truncation flag (it is written before the result is known).
type arrowEncoder struct {
	out      *countWriter
	max      int64
	kinds    []colKind
	cols     []Column
	bld      *array.RecordBuilder
	iw       *ipc.Writer
	rows     int   // rows in the current batch
	total    int   // rows accepted
	estimate int64 // estimated bytes of accepted rows
	batch    int64 // estimated bytes of the current batch
}

func newArrowEncoder(cols []Column, kinds []colKind, out *countWriter, maxBytes int64) *arrowEncoder {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		typ := arrowType(c)
		if kinds[i] == kindHuge {
			typ = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: c.Name, Type: typ, Nullable: true,
			Metadata: arrow.NewMetadata([]string{arrowTypeMetadata}, []string{c.Type})}
	}
	schema := arrow.NewSchema(fields, nil)
	mem := memory.NewGoAllocator()
	return &arrowEncoder{
		out: out, max: maxBytes, kinds: kinds, cols: cols,
		bld: array.NewRecordBuilder(mem, schema),
		iw:  ipc.NewWriter(out, ipc.WithSchema(schema), ipc.WithAllocator(mem)),
		// The schema message: roughly its field names and types.
		estimate: 256 + int64(len(cols))*64,
	}
}

// arrowValueSize estimates the bytes one value takes in a record batch.
func arrowValueSize(v driver.Value) int64 {
	switch x := v.(type) {
	case string:
		return int64(len(x)) + 5
	case []byte:
		return int64(len(x)) + 5
	case nil:
		return 1
	}
	return 17 // fixed width (at most 16 bytes) + validity
}

func (e *arrowEncoder) row(vals []driver.Value) (bool, error) {
	var size int64
	for j, v := range vals {
		switch e.kinds[j] {
		case kindNested, kindHuge, kindUUID, kindTimeTZ, kindJSON, kindInterval:
			// Written as text (or measured as such): use its length.
			s, err := textValue(e.kinds[j], v)
			if err != nil {
				return false, fmt.Errorf("row %d column %q: %w", e.total, short(e.cols[j].Name), err)
			}
			size += int64(len(s)) + 5
		default:
			size += arrowValueSize(v)
		}
	}
	if e.estimate+size > e.max {
		return false, nil
	}
	for j, v := range vals {
		if err := appendArrow(e.bld.Field(j), e.kinds[j], v); err != nil {
			return false, fmt.Errorf("row %d column %q: %w", e.total, short(e.cols[j].Name), err)
		}
	}
	e.estimate += size
	e.batch += size
	e.rows++
	e.total++
	if e.rows == arrowBatchRows || e.batch >= arrowBatchBytes {
		return true, e.flush()
	}
	return true, nil
}

func (e *arrowEncoder) flush() error {
	rec := e.bld.NewRecordBatch()
	defer rec.Release()
	e.rows, e.batch = 0, 0
	if err := e.iw.Write(rec); err != nil {
		return fmt.Errorf("write arrow batch: %w", err)
	}
	return nil
}

func (e *arrowEncoder) end(bool) error {
	defer e.bld.Release()
	if e.rows > 0 || e.total == 0 {
		if err := e.flush(); err != nil {
			_ = e.iw.Close()
			return err
		}
	}
	if err := e.iw.Close(); err != nil {
		return fmt.Errorf("close arrow stream: %w", err)
	}
	return nil
}

// StreamResult summarizes a streamed result.
type StreamResult struct {
	Rows      int
	Truncated bool // cut at MaxRows rows or at the byte budget
}

// Stream runs sqlText with the checks of Run and encodes the rows to w as
// they are read, stopping after MaxRows rows or before the output would
// exceed maxBytes (the result is then truncated and the body still ends
// cleanly). Nothing is written to w before the query has executed. Errors
// from w are returned wrapped in ErrWrite.
func (e *Engine) Stream(ctx context.Context, sqlText string, f Format, maxBytes int64, w io.Writer) (StreamResult, error) {
	var res StreamResult
	err := e.execute(ctx, sqlText, func(ctx context.Context, rows driver.Rows) error {
		ew := &errWriter{w: w}
		enc, err := newRowEncoder(f, columnsOf(rows), ew, maxBytes)
		if err != nil {
			return ew.wrap(err)
		}
		dest := make([]driver.Value, len(rows.Columns()))
		for {
			err := rows.Next(dest)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return classify(ctx, "query: read", err)
			}
			if res.Rows == e.cfg.MaxRows {
				res.Truncated = true
				break
			}
			ok, err := enc.row(dest)
			if err != nil {
				return ew.wrap(err)
			}
			if !ok {
				res.Truncated = true
				break
			}
			res.Rows++
			if res.Rows%4096 == 0 && ctx.Err() != nil {
				return classify(ctx, "query: read", ctx.Err())
			}
		}
		return ew.wrap(enc.end(res.Truncated))
	})
	return res, err
}

// ErrWrite marks a failure to write the result (e.g. the client is gone).
var ErrWrite = errors.New("write result")

// errWriter remembers whether an error came from the underlying writer.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

func (e *errWriter) wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case e.err != nil:
		return fmt.Errorf("%w: %w", ErrWrite, e.err)
	}
	return fmt.Errorf("query: encode: %w", err)
}
