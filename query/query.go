package query

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Format is an output format of Query.
type Format int

const (
	// JSON: {"columns":[{"name":..,"type":..}],"rows":[[..],..],"truncated":bool}.
	JSON Format = iota
	// CSV: a header row of column names, then one record per row (RFC 4180).
	CSV
	// Arrow: an Arrow IPC stream (schema, then record batches).
	Arrow
)

// Media types of the formats.
const (
	ContentTypeJSON        = "application/json"
	ContentTypeCSV         = "text/csv; charset=utf-8"
	ContentTypeArrow       = "application/vnd.apache.arrow.stream"
	contentTypeArrowFile   = "application/vnd.apache.arrow.file"
	TruncatedHeader        = "X-Netwarden-Truncated"
	arrowTruncatedMetadata = "netwarden.truncated"
)

func (f Format) String() string {
	switch f {
	case CSV:
		return "csv"
	case Arrow:
		return "arrow"
	default:
		return "json"
	}
}

// ContentType is the Content-Type header value for f.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return ContentTypeCSV
	case Arrow:
		return ContentTypeArrow
	default:
		return ContentTypeJSON
	}
}

// FormatFromAccept picks the output format from an Accept header: the
// supported media type with the highest q-value (earliest on ties); JSON when
// nothing supported is listed. application/vnd.apache.arrow.file is answered
// with the stream format.
func FormatFromAccept(accept string) Format {
	best, bestQ := JSON, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if qs, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(qs, 64); err == nil {
				q = v
			}
		}
		if q <= 0 {
			continue
		}
		var f Format
		switch mt {
		case "application/json":
			f = JSON
		case "text/csv":
			f = CSV
		case ContentTypeArrow, contentTypeArrowFile:
			f = Arrow
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = f, q
		}
	}
	return best
}

// Column describes a result column; Type is DuckDB's type name
// (e.g. "BIGINT", "TIMESTAMPTZ", "DECIMAL(18,3)", "VARCHAR[]").
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result summarizes a written result.
type Result struct {
	Rows      int
	Truncated bool // more than MaxRows rows; only the first MaxRows were returned
}

// ResultSet is a fully read query result (at most MaxRows rows). Values are
// as returned by duckdb-go: nil, bool, int8..int64, uint8..uint64, float32,
// float64, string, []byte, time.Time, *big.Int, duckdb.Decimal,
// duckdb.Interval, []any, map[string]any, duckdb.OrderedMap, duckdb.Union.
type ResultSet struct {
	Columns   []Column
	Rows      [][]any
	Truncated bool
}

// Result returns the summary of rs.
func (rs *ResultSet) Result() Result {
	return Result{Rows: len(rs.Rows), Truncated: rs.Truncated}
}

// Encode writes rs to w in format f.
func (rs *ResultSet) Encode(f Format, w io.Writer) error {
	switch f {
	case CSV:
		return rs.encodeCSV(w)
	case Arrow:
		return rs.encodeArrow(w)
	default:
		return rs.encodeJSON(w)
	}
}

// Query runs sqlText (see Run) and writes the result to w in format f.
//
// Nothing is written to w when Query fails before encoding, so the caller
// can still choose the HTTP status: errors.Is(err, ErrRejected) -> 400,
// errors.Is(err, context.DeadlineExceeded) -> 408 (the query ran longer than
// Config.Timeout; 504 would suggest an upstream failure), ErrResourceLimit ->
// 422, anything else -> 500.
//
// If w has a Header() http.Header method (an http.ResponseWriter), Query sets
// Content-Type (if unset) and, for a truncated result, X-Netwarden-Truncated:
// true before writing the body. Other callers that need the flag before the
// body use Run and ResultSet.Encode. The JSON body carries "truncated" and
// the Arrow schema carries metadata netwarden.truncated in any case.
func (e *Engine) Query(ctx context.Context, sqlText string, f Format, w io.Writer) (Result, error) {
	rs, err := e.Run(ctx, sqlText)
	if err != nil {
		return Result{}, err
	}
	if h, ok := w.(interface{ Header() http.Header }); ok {
		hdr := h.Header()
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", f.ContentType())
		}
		if rs.Truncated {
			hdr.Set(TruncatedHeader, "true")
		}
	}
	if err := rs.Encode(f, w); err != nil {
		return rs.Result(), fmt.Errorf("query: write %s result: %w", f, err)
	}
	return rs.Result(), nil
}

// Run validates and executes sqlText and reads at most MaxRows rows.
//
// Checks, in order, each failing with ErrRejected and a reason:
//  1. the text is non-empty, at most MaxSQLBytes, valid UTF-8 without NUL;
//  2. DuckDB's parser (json_serialize_sql, parse only) finds exactly one
//     statement and it is a SELECT (including WITH, VALUES, FROM-first,
//     UNION, DESCRIBE/SHOW/SUMMARIZE, PIVOT with an IN list); EXPLAIN, PRAGMA
//     and every other statement are rejected;
//  3. every function, operator and table function the statement calls is
//     on the allow-list (allowlist.go; never a denied one: dynamic SQL such
//     as query(), file readers, state-changing functions such as
//     checkpoint()), and no table reference names a file or a built-in
//     catalog view (checkFunctions);
//  4. the prepared statement's type (duckdb.Stmt.StatementType) is SELECT
//     and it has no parameters.
//
// Binder/catalog errors, reads outside HistoryDir (DuckDB "Permission
// Error") and runtime errors caused by the query are ErrRejected as well.
// The whole call is bounded by Config.Timeout; a timed-out query is
// interrupted inside DuckDB and the error wraps context.DeadlineExceeded.
func (e *Engine) Run(ctx context.Context, sqlText string) (*ResultSet, error) {
	var rs *ResultSet
	err := e.execute(ctx, sqlText, func(ctx context.Context, rows driver.Rows) error {
		var err error
		rs, err = readRows(ctx, rows, e.cfg.MaxRows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// execute runs the checks of Run, executes sqlText limited to MaxRows+1 rows
// and hands the rows to consume. Errors from consume are returned as they are.
func (e *Engine) execute(ctx context.Context, sqlText string, consume func(context.Context, driver.Rows) error) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if err := checkText(sqlText); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	defer e.track()()
	ctx = context.WithValue(ctx, historyDirKey{}, e.cfg.HistoryDir) // for classify

	conn, err := e.db.Conn(ctx)
	if err != nil {
		if e.closed.Load() {
			return ErrClosed
		}
		return classify(ctx, "query: connect", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			return fmt.Errorf("query: unexpected driver connection %T", dc)
		}
		return e.run(ctx, c, sqlText, consume)
	})
}

func (e *Engine) run(ctx context.Context, c *duckdb.Conn, sqlText string, consume func(context.Context, driver.Rows) error) error {
	if err := checkParsed(ctx, c, sqlText); err != nil {
		if errors.Is(err, ErrRejected) {
			return err
		}
		return classify(ctx, "query: parse", err)
	}
	st, err := prepareChecked(ctx, c, sqlText)
	if err != nil {
		return err
	}
	defer st.Close()

	// Let DuckDB stop after MaxRows+1 rows instead of materializing the whole
	// result (duckdb-go results are materialized). query() re-parses the
	// already validated text; ORDER BY inside is preserved.
	var rows driver.Rows
	limited := fmt.Sprintf("SELECT * FROM query(%s) LIMIT %d", sqlString(sqlText), e.cfg.MaxRows+1)
	if ls, perr := c.Prepare(limited); perr == nil {
		defer ls.Close()
		rows, err = ls.(driver.StmtQueryContext).QueryContext(ctx, nil)
	} else {
		// query() accepts slightly fewer forms than a top-level statement:
		// run the checked statement itself; the consumer still caps the rows.
		rows, err = st.QueryContext(ctx, nil)
	}
	if err != nil {
		return classify(ctx, "query: execute", err)
	}
	defer rows.Close()
	return consume(ctx, rows)
}

// columnsOf returns the names and DuckDB types of rows' columns.
func columnsOf(rows driver.Rows) []Column {
	names := rows.Columns()
	cols := make([]Column, len(names))
	typer, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
	for i, n := range names {
		cols[i].Name = n
		if typer != nil {
			cols[i].Type = typer.ColumnTypeDatabaseTypeName(i)
		}
	}
	return cols
}

func readRows(ctx context.Context, rows driver.Rows, maxRows int) (*ResultSet, error) {
	cols := columnsOf(rows)
	rs := &ResultSet{Columns: cols, Rows: make([][]any, 0, min(maxRows, 1024))}
	dest := make([]driver.Value, len(cols))
	for {
		err := rows.Next(dest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, classify(ctx, "query: read", err)
		}
		if len(rs.Rows) == maxRows {
			rs.Truncated = true
			break
		}
		row := make([]any, len(dest))
		for i, v := range dest {
			row[i] = v
		}
		rs.Rows = append(rs.Rows, row)
		if len(rs.Rows)%4096 == 0 && ctx.Err() != nil {
			return nil, classify(ctx, "query: read", ctx.Err())
		}
	}
	return rs, nil
}
