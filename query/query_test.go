package query

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

type jsonResult struct {
	Columns   []Column `json:"columns"`
	Rows      [][]any  `json:"rows"`
	Truncated bool     `json:"truncated"`
}

func decodeJSON(t *testing.T, b []byte) jsonResult {
	t.Helper()
	var r jsonResult
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode JSON %s: %v", b, err)
	}
	return r
}

// jsonStrings renders decoded JSON rows as strings for comparison.
func jsonStrings(rows [][]any) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			if v != nil {
				out[i][j] = fmt.Sprint(v)
			}
		}
	}
	return out
}

func decodeCSV(t *testing.T, b []byte) (header []string, rows [][]string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("decode CSV: %v", err)
	}
	if len(recs) == 0 {
		t.Fatal("CSV has no header")
	}
	return recs[0], recs[1:]
}

// decodeArrow reads an IPC stream and renders every value with ValueStr.
func decodeArrow(t *testing.T, b []byte) (*arrow.Schema, [][]string) {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("arrow reader: %v", err)
	}
	defer r.Release()
	var rows [][]string
	for r.Next() {
		rec := r.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for j := 0; j < int(rec.NumCols()); j++ {
				if rec.Column(j).IsValid(i) {
					row[j] = rec.Column(j).ValueStr(i)
				}
			}
			rows = append(rows, row)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("arrow read: %v", err)
	}
	return r.Schema(), rows
}

func TestSettingsAppliedAndLocked(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	rs := &ResultSet{Rows: mustAdmin(t, e, `SELECT
		current_setting('enable_external_access'),
		current_setting('lock_configuration'),
		current_setting('autoinstall_known_extensions'),
		current_setting('autoload_known_extensions'),
		current_setting('threads'),
		current_setting('TimeZone'),
		CAST(current_setting('allowed_directories') AS VARCHAR),
		current_setting('temp_directory'),
		current_setting('memory_limit')`)}
	got := fmt.Sprint(rs.Rows[0][:6]...)
	if want := fmt.Sprint(false, true, false, false, int64(2), "UTC"); got != want {
		t.Errorf("settings = %s, want %s", got, want)
	}
	if dirs := fmt.Sprint(rs.Rows[0][6]); !strings.Contains(dirs, f.hist+"/") {
		t.Errorf("allowed_directories = %s, want it to contain %s/", dirs, f.hist)
	}
	if tmp := fmt.Sprint(rs.Rows[0][7]); tmp != filepath.Join(f.root, "tmp") {
		t.Errorf("temp_directory = %s", tmp)
	}
	if ml := fmt.Sprint(rs.Rows[0][8]); !strings.Contains(ml, "MiB") {
		t.Errorf("memory_limit = %s", ml)
	}
	// Parquet, JSON and ICU work without loading anything (they are built
	// in; autoloading is off and the extension directory is not readable).
	if err := e.SetFiles([]string{f.fileA}); err != nil {
		t.Fatal(err)
	}
	rs = mustRun(t, e, `SELECT count(*), json_valid('{"a":1}'), strftime(TIMESTAMPTZ '2025-01-01 00:00:00+05', '%H') FROM changes`)
	if got := fmt.Sprint(rs.Rows); got != "[[6 true 19]]" {
		t.Errorf("built-in extensions = %s", got)
	}

	// Without a TempDir spilling is disabled rather than defaulting to ./.tmp.
	e2 := newEngine(t, f, func(c *Config) { c.TempDir = "" })
	if got := fmt.Sprint(mustAdmin(t, e2, `SELECT current_setting('temp_directory')`)[0][0]); got != "" {
		t.Errorf("temp_directory without TempDir = %q, want empty", got)
	}
}

func TestAggregateAllFormats(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	if err := e.SetFiles([]string{f.fileA, f.fileB}); err != nil {
		t.Fatal(err)
	}
	const q = `SELECT list, op, count(*) AS n, max(ts) AS last FROM changes GROUP BY ALL ORDER BY ALL`
	want := [][]string{
		{"blocklist", "add", "4", "2025-06-01T00:00:00Z"},
		{"blocklist", "rem", "2", "2025-06-02T00:00:00Z"},
		{"spam", "add", "3", "2025-06-03T00:00:00Z"},
		{"spam", "rem", "1", "2025-06-04T00:00:00Z"},
	}

	// JSON
	b, res := mustQuery(t, e, q, JSON)
	if res != (Result{Rows: 4}) {
		t.Errorf("JSON result = %+v", res)
	}
	jr := decodeJSON(t, b)
	if got := columnNames(jr.Columns); got != "list VARCHAR, op VARCHAR, n BIGINT, last TIMESTAMPTZ" {
		t.Errorf("JSON columns = %s", got)
	}
	if got := jsonStrings(jr.Rows); !reflect.DeepEqual(got, want) {
		t.Errorf("JSON rows = %v, want %v", got, want)
	}
	if _, ok := jr.Rows[0][2].(json.Number); !ok {
		t.Errorf("count is %T, want a JSON number", jr.Rows[0][2])
	}
	if jr.Truncated {
		t.Error("JSON truncated")
	}

	// CSV
	b, _ = mustQuery(t, e, q, CSV)
	header, rows := decodeCSV(t, b)
	if got := strings.Join(header, ","); got != "list,op,n,last" {
		t.Errorf("CSV header = %s", got)
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("CSV rows = %v, want %v", rows, want)
	}

	// Arrow
	b, _ = mustQuery(t, e, q, Arrow)
	schema, arows := decodeArrow(t, b)
	wantTypes := []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64,
		&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}}
	for i, fld := range schema.Fields() {
		if !arrow.TypeEqual(fld.Type, wantTypes[i]) {
			t.Errorf("arrow field %s type %s, want %s", fld.Name, fld.Type, wantTypes[i])
		}
	}
	if v, _ := schema.Metadata().GetValue(arrowTruncatedMetadata); v != "false" {
		t.Errorf("arrow truncated metadata = %q", v)
	}
	if !reflect.DeepEqual(arows, want) {
		t.Errorf("arrow rows = %v, want %v", arows, want)
	}

	// Counting over one file, and the half-written file is never read.
	rs := mustRun(t, e, `SELECT count(*), count(DISTINCT resource), min(ts) FROM changes`)
	if got := fmt.Sprint(rs.Rows[0][0], rs.Rows[0][1]); got != "10 7" {
		t.Errorf("counts = %s", got)
	}
	if got := rs.Rows[0][2].(time.Time); !got.Equal(time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("min(ts) = %v", got)
	}
}

func TestChangesViewSchema(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	const wantCols = "ts TIMESTAMPTZ, op VARCHAR, kind VARCHAR, list VARCHAR, resource VARCHAR, kafka_partition INTEGER, kafka_offset BIGINT"

	// Empty (initial) view.
	rs := mustRun(t, e, `SELECT * FROM changes`)
	if len(rs.Rows) != 0 || columnNames(rs.Columns) != wantCols {
		t.Errorf("empty view: %d rows, columns %s", len(rs.Rows), columnNames(rs.Columns))
	}
	b, _ := mustQuery(t, e, `SELECT * FROM changes`, JSON)
	if got := string(b); !strings.Contains(got, `"rows":[]`) {
		t.Errorf("empty JSON = %s", got)
	}
	b, _ = mustQuery(t, e, `SELECT * FROM changes`, Arrow)
	schema, rows := decodeArrow(t, b)
	if len(rows) != 0 || schema.NumFields() != 7 {
		t.Errorf("empty arrow: %d rows, schema %s", len(rows), schema)
	}

	// With files: same columns, the key is hidden, hive partition column too.
	if err := e.SetFiles([]string{f.fileA}); err != nil {
		t.Fatal(err)
	}
	rs = mustRun(t, e, `SELECT * FROM changes ORDER BY ts`)
	if len(rs.Rows) != 6 || columnNames(rs.Columns) != wantCols {
		t.Errorf("view: %d rows, columns %s", len(rs.Rows), columnNames(rs.Columns))
	}
	// This fixture's files predate the position columns: NULL there.
	for _, r := range rs.Rows {
		if r[5] != nil || r[6] != nil {
			t.Errorf("positions of a schema-1 row: %v %v, want NULL", r[5], r[6])
		}
	}
	if _, err := e.Run(context.Background(), `SELECT key FROM changes`); !errors.Is(err, ErrRejected) {
		t.Errorf("key column: err = %v, want ErrRejected", err)
	}

	// Back to empty.
	if err := e.SetFiles(nil); err != nil {
		t.Fatal(err)
	}
	rs = mustRun(t, e, `SELECT * FROM changes`)
	if len(rs.Rows) != 0 || columnNames(rs.Columns) != wantCols {
		t.Errorf("emptied view: %d rows, columns %s", len(rs.Rows), columnNames(rs.Columns))
	}
}

func TestSetFilesValidation(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	for _, files := range [][]string{
		{"changes/month=2025-05/a.parquet"},        // relative
		{f.outside},                                // outside HistoryDir
		{filepath.Join(f.hist, "..", "x.parquet")}, // escapes via ..
		{filepath.Join(f.hist, "changes", "missing.parquet")},
		{f.partial}, // not a Parquet file
	} {
		if err := e.SetFiles(files); err == nil {
			t.Errorf("SetFiles(%v) succeeded", files)
		}
	}
	// A failed SetFiles leaves the previous view in place.
	rs := mustRun(t, e, `SELECT count(*) FROM changes`)
	if got := fmt.Sprint(rs.Rows[0][0]); got != "0" {
		t.Errorf("count after failed SetFiles = %s", got)
	}
	// Quotes in file names are escaped.
	if err := e.SetFiles([]string{f.fileA, filepath.Join(f.hist, "it's.parquet")}); err == nil || errors.Is(err, ErrRejected) {
		t.Errorf("quoted missing file: %v", err)
	}
}

func TestValueEncodings(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	const q = `SELECT
		CAST(1 AS TINYINT) AS i8, CAST(300 AS SMALLINT) AS i16, CAST(70000 AS INTEGER) AS i32,
		CAST(9007199254740993 AS BIGINT) AS i64, CAST(200 AS UTINYINT) AS u8, CAST(18446744073709551615 AS UBIGINT) AS u64,
		CAST(1.5 AS FLOAT) AS f32, CAST(2.25 AS DOUBLE) AS f64, true AS b,
		CAST('123456789012345678901234567890' AS HUGEINT) AS huge, CAST(12345.678 AS DECIMAL(18,3)) AS dec,
		TIMESTAMPTZ '2025-05-01 10:00:00.123456+02' AS tstz, TIMESTAMP '2025-05-01 10:00:00' AS ts,
		DATE '2025-05-01' AS d, DATE '1969-12-31' AS d_old, TIME '13:14:15.5' AS tm,
		CAST('\x00\xFFhi' AS BLOB) AS blob, 'héllo' AS s,
		CAST('123e4567-e89b-12d3-a456-426614174000' AS UUID) AS id, INTERVAL 3 DAY AS iv,
		[1, 2, 3] AS lst, {'a': 1, 'b': 'x'} AS st, MAP {'k': 1} AS mp,
		CAST('{"x": [1, 2]}' AS JSON) AS js, CAST(NULL AS VARCHAR) AS nul, 'NaN'::DOUBLE AS nan,
		CAST('170141183460469231731687303715884105727' AS HUGEINT) AS huge_max`

	// JSON
	b, _ := mustQuery(t, e, q, JSON)
	jr := decodeJSON(t, b)
	got := map[string]any{}
	for i, c := range jr.Columns {
		got[c.Name] = jr.Rows[0][i]
	}
	for name, want := range map[string]string{
		"i8": "1", "i16": "300", "i32": "70000", "i64": "9007199254740993", "u8": "200", "u64": "18446744073709551615",
		"f32": "1.5", "f64": "2.25", "b": "true", "huge": "123456789012345678901234567890", "dec": "12345.678",
		"tstz": "2025-05-01T08:00:00.123456Z", "ts": "2025-05-01T10:00:00Z", "d": "2025-05-01", "tm": "13:14:15.5",
		"blob": base64.StdEncoding.EncodeToString([]byte("\x00\xffhi")), "s": "héllo",
		"id": "123e4567-e89b-12d3-a456-426614174000", "lst": "[1 2 3]", "st": "map[a:1 b:x]",
		"mp": "map[k:1]", "js": "map[x:[1 2]]", "nul": "<nil>", "nan": "NaN",
	} {
		if g := fmt.Sprint(got[name]); g != want {
			t.Errorf("JSON %s = %s, want %s", name, g, want)
		}
	}
	for _, name := range []string{"i64", "u64", "huge", "dec"} {
		if _, ok := got[name].(json.Number); !ok {
			t.Errorf("JSON %s is %T, want number", name, got[name])
		}
	}

	// CSV
	b, _ = mustQuery(t, e, q, CSV)
	header, rows := decodeCSV(t, b)
	cells := map[string]string{}
	for i, h := range header {
		cells[h] = rows[0][i]
	}
	for name, want := range map[string]string{
		"huge": "123456789012345678901234567890", "dec": "12345.678", "tstz": "2025-05-01T08:00:00.123456Z",
		"blob": "AP9oaQ==", "lst": "[1,2,3]", "st": `{"a":1,"b":"x"}`, "mp": `{"k":1}`, "nul": "",
		"id": "123e4567-e89b-12d3-a456-426614174000", "iv": `{"days":3,"months":0,"micros":0}`,
	} {
		if cells[name] != want {
			t.Errorf("CSV %s = %q, want %q", name, cells[name], want)
		}
	}

	// Arrow
	b, _ = mustQuery(t, e, q, Arrow)
	r, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatalf("no arrow batch: %v", r.Err())
	}
	rec := r.RecordBatch()
	col := func(name string) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("arrow column %s missing", name)
		}
		return rec.Column(idx[0])
	}
	wantTypes := map[string]arrow.DataType{
		"huge_max": arrow.BinaryTypes.String,
		"i8":       arrow.PrimitiveTypes.Int8, "i16": arrow.PrimitiveTypes.Int16, "i32": arrow.PrimitiveTypes.Int32,
		"i64": arrow.PrimitiveTypes.Int64, "u8": arrow.PrimitiveTypes.Uint8, "u64": arrow.PrimitiveTypes.Uint64,
		"f32": arrow.PrimitiveTypes.Float32, "f64": arrow.PrimitiveTypes.Float64, "b": arrow.FixedWidthTypes.Boolean,
		"huge": &arrow.Decimal128Type{Precision: 38}, "dec": &arrow.Decimal128Type{Precision: 18, Scale: 3},
		"tstz": &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		"ts":   &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		"d":    arrow.FixedWidthTypes.Date32, "tm": arrow.FixedWidthTypes.Time64us, "blob": arrow.BinaryTypes.Binary,
		"s": arrow.BinaryTypes.String, "id": arrow.BinaryTypes.String, "iv": arrow.FixedWidthTypes.MonthDayNanoInterval,
		"lst": arrow.BinaryTypes.String, "st": arrow.BinaryTypes.String, "js": arrow.BinaryTypes.String,
	}
	for name, want := range wantTypes {
		if got := col(name).DataType(); !arrow.TypeEqual(got, want) {
			t.Errorf("arrow %s type = %s, want %s", name, got, want)
		}
	}
	if v := col("i64").(*array.Int64).Value(0); v != 9007199254740993 {
		t.Errorf("arrow i64 = %d", v)
	}
	if v := col("huge").(*array.Decimal128).Value(0).BigInt().String(); v != "123456789012345678901234567890" {
		t.Errorf("arrow huge = %s", v)
	}
	if v := col("huge_max").(*array.String).Value(0); v != "170141183460469231731687303715884105727" {
		t.Errorf("arrow huge_max = %s", v)
	}
	if v := col("dec").ValueStr(0); v != "12345.678" {
		t.Errorf("arrow dec = %s", v)
	}
	if v := col("tstz").(*array.Timestamp).Value(0); v != arrow.Timestamp(time.Date(2025, 5, 1, 8, 0, 0, 123456000, time.UTC).UnixMicro()) {
		t.Errorf("arrow tstz = %d", v)
	}
	if v := col("d").(*array.Date32).Value(0); v.ToTime().Format("2006-01-02") != "2025-05-01" {
		t.Errorf("arrow d = %v", v.ToTime())
	}
	if v := col("d_old").(*array.Date32).Value(0); v != -1 {
		t.Errorf("arrow d_old = %d, want -1", v)
	}
	if v := col("tm").(*array.Time64).Value(0); v != arrow.Time64((13*3600+14*60+15)*1e6+500000) {
		t.Errorf("arrow tm = %d", v)
	}
	if v := col("blob").(*array.Binary).Value(0); string(v) != "\x00\xffhi" {
		t.Errorf("arrow blob = %q", v)
	}
	if v := col("iv").(*array.MonthDayNanoInterval).Value(0); v.Days != 3 {
		t.Errorf("arrow iv = %+v", v)
	}
	if v := col("st").(*array.String).Value(0); v != `{"a":1,"b":"x"}` {
		t.Errorf("arrow st = %s", v)
	}
	if !col("nul").IsNull(0) {
		t.Error("arrow nul is not null")
	}
	if md := rec.Schema().Field(rec.Schema().FieldIndices("dec")[0]).Metadata; !md.Equal(arrow.NewMetadata([]string{arrowTypeMetadata}, []string{"DECIMAL(18,3)"})) {
		t.Errorf("arrow dec metadata = %v", md)
	}
}

func TestRowLimit(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, func(c *Config) { c.MaxRows = 5 })

	rs := mustRun(t, e, `SELECT i FROM range(5) t(i)`)
	if rs.Truncated || len(rs.Rows) != 5 {
		t.Errorf("exactly MaxRows: %d rows, truncated %v", len(rs.Rows), rs.Truncated)
	}
	// Order is preserved under the limit and the huge input is not materialized.
	rs = mustRun(t, e, `SELECT i FROM range(10000000) t(i) ORDER BY i DESC`)
	if !rs.Truncated || fmt.Sprint(rs.Rows) != "[[9999999] [9999998] [9999997] [9999996] [9999995]]" {
		t.Errorf("truncated: %v rows %v", rs.Truncated, rs.Rows)
	}
	rs = mustRun(t, e, `SELECT * FROM range(1000000000000)`)
	if !rs.Truncated || len(rs.Rows) != 5 {
		t.Errorf("streaming limit: %d rows, truncated %v", len(rs.Rows), rs.Truncated)
	}

	b, res := mustQuery(t, e, `SELECT i FROM range(10) t(i)`, JSON)
	if res != (Result{Rows: 5, Truncated: true}) || !decodeJSON(t, b).Truncated {
		t.Errorf("JSON truncation: %+v %s", res, b)
	}
	b, res = mustQuery(t, e, `SELECT i FROM range(10) t(i)`, CSV)
	if _, rows := decodeCSV(t, b); !res.Truncated || len(rows) != 5 {
		t.Errorf("CSV truncation: %+v, %d rows", res, len(rows))
	}
	b, res = mustQuery(t, e, `SELECT i FROM range(10) t(i)`, Arrow)
	schema, rows := decodeArrow(t, b)
	if v, _ := schema.Metadata().GetValue(arrowTruncatedMetadata); !res.Truncated || len(rows) != 5 || v != "true" {
		t.Errorf("arrow truncation: %+v, %d rows, metadata %q", res, len(rows), v)
	}

	// An http.ResponseWriter gets the header before the body.
	rec := httptest.NewRecorder()
	if _, err := e.Query(context.Background(), `SELECT i FROM range(10) t(i)`, CSV, rec); err != nil {
		t.Fatal(err)
	}
	if rec.Header().Get(TruncatedHeader) != "true" || rec.Header().Get("Content-Type") != ContentTypeCSV {
		t.Errorf("headers = %v", rec.Header())
	}
	rec = httptest.NewRecorder()
	if _, err := e.Query(context.Background(), `SELECT 1`, Arrow, rec); err != nil {
		t.Fatal(err)
	}
	if rec.Header().Get(TruncatedHeader) != "" || rec.Header().Get("Content-Type") != ContentTypeArrow {
		t.Errorf("headers = %v", rec.Header())
	}
}

func TestTimeout(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	start := time.Now()
	var buf bytes.Buffer
	_, err := e.Query(context.Background(), `SELECT count(*) FROM range(10000000000)`, JSON, &buf)
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if errors.Is(err, ErrRejected) {
		t.Errorf("timeout reported as rejected: %v", err)
	}
	t.Logf("timed out after %s", elapsed)
	if elapsed > 5*time.Second {
		t.Errorf("timed-out query returned after %s", elapsed)
	}
	if buf.Len() != 0 {
		t.Errorf("body written on error: %q", buf.String())
	}
	// The connection is usable afterwards.
	rs := mustRun(t, e, `SELECT 42`)
	if fmt.Sprint(rs.Rows) != "[[42]]" {
		t.Errorf("after timeout: %v", rs.Rows)
	}
	// A canceled caller context interrupts too.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := e.Run(ctx, `SELECT count(*) FROM range(10000000000)`); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}

func TestSetFilesConcurrentWithQueries(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, func(c *Config) { c.MaxConcurrent = 3 })
	sets := [][]string{nil, {f.fileA}, {f.fileB}, {f.fileA, f.fileB}}
	valid := map[string]bool{"0": true, "6": true, "4": true, "10": true}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var buf bytes.Buffer
				format := Format(i % 3)
				_, err := e.Query(ctx, `SELECT count(*) AS n, count(DISTINCT list) FROM changes`, format, &buf)
				if err != nil {
					errs <- err
					return
				}
				if format == JSON {
					n := fmt.Sprint(decodeJSONNoT(buf.Bytes()))
					if !valid[n] {
						errs <- fmt.Errorf("count %s is not one of the file sets", n)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 40; i++ {
			if err := e.SetFiles(sets[i%len(sets)]); err != nil {
				errs <- err
				return
			}
			if err := e.SetLists([]ListRow{{Name: fmt.Sprint("l", i), Entries: int64(i)}}); err != nil {
				errs <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	// Let the writer finish its 40 rounds, then stop the readers.
	done := make(chan struct{})
	go func() {
		for len(errs) == 0 {
			rs, err := e.Run(ctx, `SELECT name FROM lists`)
			if err == nil && len(rs.Rows) == 1 && fmt.Sprint(rs.Rows[0][0]) == "l39" {
				break
			}
			time.Sleep(10 * time.Millisecond)
			if ctx.Err() != nil {
				break
			}
		}
		close(done)
	}()
	<-done
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// decodeJSONNoT extracts rows[0][0] without a *testing.T (for goroutines).
func decodeJSONNoT(b []byte) any {
	var r jsonResult
	if err := json.Unmarshal(b, &r); err != nil || len(r.Rows) != 1 {
		return fmt.Sprintf("bad JSON %s", b)
	}
	return r.Rows[0][0]
}

func TestSetLists(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	fetched := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	if err := e.SetLists([]ListRow{
		{Name: "blocklist", Kind: "ip", Source: "https://example.com/ips.txt", Format: "plain", Status: "ok",
			LastFetch: fetched, LastChange: fetched.Add(-time.Hour), Entries: 1234},
		{Name: "spam", Kind: "email", Source: "file:///x", Format: "csv", Status: "error", Error: "boom"},
	}); err != nil {
		t.Fatal(err)
	}
	rs := mustRun(t, e, `SELECT * FROM lists ORDER BY name`)
	if got := columnNames(rs.Columns); got != "name VARCHAR, kind VARCHAR, source VARCHAR, format VARCHAR, status VARCHAR, "+
		"last_fetch TIMESTAMPTZ, last_change TIMESTAMPTZ, entries BIGINT, error VARCHAR" {
		t.Errorf("lists columns = %s", got)
	}
	if got := fmt.Sprint(rs.Rows[0]); got != "[blocklist ip https://example.com/ips.txt plain ok 2025-05-01 10:00:00 +0000 UTC 2025-05-01 09:00:00 +0000 UTC 1234 <nil>]" {
		t.Errorf("row 0 = %s", got)
	}
	if got := fmt.Sprint(rs.Rows[1]); got != "[spam email file:///x csv error <nil> <nil> 0 boom]" {
		t.Errorf("row 1 = %s", got)
	}
	// Join with changes.
	if err := e.SetFiles([]string{f.fileA, f.fileB}); err != nil {
		t.Fatal(err)
	}
	rs = mustRun(t, e, `SELECT l.name, l.kind, count(c.ts) FROM lists l LEFT JOIN changes c ON c.list = l.name GROUP BY ALL ORDER BY 1`)
	if got := fmt.Sprint(rs.Rows); got != "[[blocklist ip 6] [spam email 4]]" {
		t.Errorf("join = %s", got)
	}
	// Replace, then empty.
	if err := e.SetLists([]ListRow{{Name: "only"}}); err != nil {
		t.Fatal(err)
	}
	if rs := mustRun(t, e, `SELECT name FROM lists`); fmt.Sprint(rs.Rows) != "[[only]]" {
		t.Errorf("replaced lists = %v", rs.Rows)
	}
	if err := e.SetLists(nil); err != nil {
		t.Fatal(err)
	}
	if rs := mustRun(t, e, `SELECT count(*) FROM lists`); fmt.Sprint(rs.Rows) != "[[0]]" {
		t.Errorf("emptied lists = %v", rs.Rows)
	}
}

func TestWaitForOldQueries(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, func(c *Config) { c.Timeout = 2 * time.Second })
	if err := e.SetFiles([]string{f.fileA}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	finished := make(chan error, 1)
	go func() {
		close(started)
		// Runs until the timeout.
		_, err := e.Run(context.Background(), `SELECT count(*) FROM changes, range(10000000000)`)
		finished <- err
	}()
	<-started
	time.Sleep(200 * time.Millisecond)
	if err := e.SetFiles([]string{f.fileA, f.fileB}); err != nil {
		t.Fatal(err)
	}
	// A new query does not count as old.
	if rs := mustRun(t, e, `SELECT count(*) FROM changes`); fmt.Sprint(rs.Rows) != "[[10]]" {
		t.Errorf("new view = %v", rs.Rows)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.WaitForOldQueries(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait with old query running: %v", err)
	}
	if err := e.WaitForOldQueries(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The old query has ended; Run returns right after (had the wait
	// returned early, the query would run on to its 2 s timeout).
	select {
	case err := <-finished:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("old query: %v", err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Error("WaitForOldQueries returned while the old query was running")
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	e, err := New(Config{HistoryDir: f.hist})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), `SELECT 1`); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if err := e.SetFiles(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetFiles after Close: %v", err)
	}
	if err := e.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestFormatFromAccept(t *testing.T) {
	for accept, want := range map[string]Format{
		"":                                    JSON,
		"*/*":                                 JSON,
		"application/json":                    JSON,
		"text/csv":                            CSV,
		"text/csv; charset=utf-8":             CSV,
		"application/vnd.apache.arrow.stream": Arrow,
		"application/vnd.apache.arrow.file":   Arrow,
		"text/html, text/csv;q=0.5, application/json;q=0.4":           CSV,
		"application/json;q=0.1, application/vnd.apache.arrow.stream": Arrow,
		"text/csv;q=0, application/json":                              JSON,
		"text/plain":                                                  JSON,
		"garbage;;;":                                                  JSON,
	} {
		if got := FormatFromAccept(accept); got != want {
			t.Errorf("FormatFromAccept(%q) = %s, want %s", accept, got, want)
		}
	}
	for f, want := range map[Format]string{JSON: "application/json", CSV: "text/csv; charset=utf-8", Arrow: "application/vnd.apache.arrow.stream"} {
		if got := f.ContentType(); got != want {
			t.Errorf("%s.ContentType() = %s", f, got)
		}
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.Defaults()
	if c.MemoryLimit != "512MB" || c.Threads != 2 || c.Timeout != 30*time.Second || c.MaxRows != 100000 {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "HistoryDir") {
		t.Errorf("missing HistoryDir: %v", err)
	}
	c.HistoryDir = "/data/history"
	if err := c.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"memory injection": func(c *Config) { c.MemoryLimit = "1GB'; SET x='1" },
		"threads":          func(c *Config) { c.Threads = -1 },
		"timeout":          func(c *Config) { c.Timeout = -time.Second },
		"rows":             func(c *Config) { c.MaxRows = -5 },
		"temp overlap":     func(c *Config) { c.TempDir = "/data/history/tmp" },
		"temp size":        func(c *Config) { c.MaxTempSize = "lots" },
		"temp is parent":   func(c *Config) { c.TempDir = "/data" },
		"root history":     func(c *Config) { c.HistoryDir = "/" },
	} {
		bad := c
		mod(&bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, bad)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without HistoryDir succeeded")
	}
}
