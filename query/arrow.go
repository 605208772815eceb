package query

import (
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// arrowBatchRows is the number of rows per Arrow record batch.
const arrowBatchRows = 8192

// arrowTypeMetadata is the field metadata key holding the DuckDB type name.
const arrowTypeMetadata = "duckdb.type"

var decimalRE = regexp.MustCompile(`^DECIMAL\((\d+),(\d+)\)$`)

// arrowType maps a DuckDB column type to the Arrow type it is written as.
//
//	BOOLEAN -> Boolean; TINYINT..BIGINT -> Int8..Int64; UTINYINT..UBIGINT ->
//	Uint8..Uint64; FLOAT/DOUBLE -> Float32/Float64; DECIMAL(w,s) ->
//	Decimal128(w,s); HUGEINT/UHUGEINT -> Decimal128(38,0) (String if a value
//	has 39 digits); TIMESTAMP[_S|_MS|_NS]
//	and TIMESTAMPTZ -> Timestamp(µs, "UTC"); DATE -> Date32; TIME -> Time64(µs);
//	INTERVAL -> MonthDayNanoInterval; BLOB/GEOMETRY -> Binary; SQLNULL -> Null;
//	everything else (VARCHAR, ENUM, UUID, JSON, BIT, TIMETZ, BIGNUM, LIST,
//	ARRAY, STRUCT, MAP, UNION, ...) -> String, nested values as JSON text.
func arrowType(c Column) arrow.DataType {
	switch c.Type {
	case "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case "TINYINT":
		return arrow.PrimitiveTypes.Int8
	case "SMALLINT":
		return arrow.PrimitiveTypes.Int16
	case "INTEGER":
		return arrow.PrimitiveTypes.Int32
	case "BIGINT":
		return arrow.PrimitiveTypes.Int64
	case "UTINYINT":
		return arrow.PrimitiveTypes.Uint8
	case "USMALLINT":
		return arrow.PrimitiveTypes.Uint16
	case "UINTEGER":
		return arrow.PrimitiveTypes.Uint32
	case "UBIGINT":
		return arrow.PrimitiveTypes.Uint64
	case "FLOAT":
		return arrow.PrimitiveTypes.Float32
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	case "HUGEINT", "UHUGEINT":
		return &arrow.Decimal128Type{Precision: 38, Scale: 0}
	case "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	case "TIME":
		return arrow.FixedWidthTypes.Time64us
	case "INTERVAL":
		return arrow.FixedWidthTypes.MonthDayNanoInterval
	case "BLOB", "GEOMETRY":
		return arrow.BinaryTypes.Binary
	case "SQLNULL":
		return arrow.Null
	}
	if m := decimalRE.FindStringSubmatch(c.Type); m != nil {
		w, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		if w >= 1 && w <= 38 {
			return &arrow.Decimal128Type{Precision: int32(w), Scale: int32(s)}
		}
	}
	return arrow.BinaryTypes.String
}

func (rs *ResultSet) arrowSchema() *arrow.Schema {
	fields := make([]arrow.Field, len(rs.Columns))
	for i, c := range rs.Columns {
		typ := arrowType(c)
		if kindOf(c.Type) == kindHuge && !rs.fitsDecimal38(i) {
			// Rare HUGEINT/UHUGEINT values of 39 digits: keep them exact as text.
			typ = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{
			Name:     c.Name,
			Type:     typ,
			Nullable: true,
			Metadata: arrow.NewMetadata([]string{arrowTypeMetadata}, []string{c.Type}),
		}
	}
	meta := arrow.NewMetadata([]string{arrowTruncatedMetadata}, []string{strconv.FormatBool(rs.Truncated)})
	return arrow.NewSchema(fields, &meta)
}

// encodeArrow writes rs as an Arrow IPC stream. duckdb-go's own Arrow
// interface needs the duckdb_arrow build tag, so the batches are built here
// from the row values.
func (rs *ResultSet) encodeArrow(w io.Writer) error {
	mem := memory.NewGoAllocator()
	schema := rs.arrowSchema()
	bld := array.NewRecordBuilder(mem, schema)
	defer bld.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	kinds := rs.kinds()

	flush := func() error {
		rec := bld.NewRecordBatch()
		defer rec.Release()
		return iw.Write(rec)
	}
	for i, row := range rs.Rows {
		for j, v := range row {
			if err := appendArrow(bld.Field(j), kinds[j], v); err != nil {
				_ = iw.Close()
				return fmt.Errorf("row %d column %q: %w", i, rs.Columns[j].Name, err)
			}
		}
		if (i+1)%arrowBatchRows == 0 {
			if err := flush(); err != nil {
				_ = iw.Close()
				return fmt.Errorf("write arrow batch: %w", err)
			}
		}
	}
	if len(rs.Rows)%arrowBatchRows != 0 || len(rs.Rows) == 0 {
		if err := flush(); err != nil {
			_ = iw.Close()
			return fmt.Errorf("write arrow batch: %w", err)
		}
	}
	if err := iw.Close(); err != nil {
		return fmt.Errorf("close arrow stream: %w", err)
	}
	return nil
}

var maxDecimal38 = new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)

// fitsDecimal38 reports whether every *big.Int in column i fits DECIMAL(38).
func (rs *ResultSet) fitsDecimal38(i int) bool {
	for _, row := range rs.Rows {
		if v, ok := row[i].(*big.Int); ok && v != nil && new(big.Int).Abs(v).Cmp(maxDecimal38) >= 0 {
			return false
		}
	}
	return true
}

func bigToDecimal128(v *big.Int) (decimal128.Num, error) {
	if new(big.Int).Abs(v).Cmp(maxDecimal38) >= 0 {
		return decimal128.Num{}, fmt.Errorf("value %s does not fit DECIMAL(38)", v)
	}
	return decimal128.FromBigInt(v), nil
}

// appendArrow appends one value to the builder created for arrowType.
func appendArrow(b array.Builder, k colKind, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	bad := func() error { return fmt.Errorf("unexpected value %T for %s", v, b.Type()) }
	switch b := b.(type) {
	case *array.NullBuilder:
		b.AppendNull()
	case *array.BooleanBuilder:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Int8Builder:
		x, ok := v.(int8)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Int16Builder:
		x, ok := v.(int16)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Int32Builder:
		x, ok := v.(int32)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Int64Builder:
		x, ok := v.(int64)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Uint8Builder:
		x, ok := v.(uint8)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Uint16Builder:
		x, ok := v.(uint16)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Uint32Builder:
		x, ok := v.(uint32)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Uint64Builder:
		x, ok := v.(uint64)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Float32Builder:
		x, ok := v.(float32)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Float64Builder:
		x, ok := v.(float64)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Decimal128Builder:
		var n decimal128.Num
		var err error
		switch x := v.(type) {
		case duckdb.Decimal:
			n, err = bigToDecimal128(x.Value)
		case *big.Int:
			n, err = bigToDecimal128(x)
		default:
			return bad()
		}
		if err != nil {
			return err
		}
		b.Append(n)
	case *array.TimestampBuilder:
		x, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		b.Append(arrow.Timestamp(x.UnixMicro()))
	case *array.Date32Builder:
		x, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		b.Append(arrow.Date32(civilDays(x)))
	case *array.Time64Builder:
		x, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		us := int64(x.Hour())*3600e6 + int64(x.Minute())*60e6 + int64(x.Second())*1e6 + int64(x.Nanosecond()/1000)
		b.Append(arrow.Time64(us))
	case *array.MonthDayNanoIntervalBuilder:
		x, ok := v.(duckdb.Interval)
		if !ok {
			return bad()
		}
		b.Append(arrow.MonthDayNanoInterval{Months: x.Months, Days: x.Days, Nanoseconds: x.Micros * 1000})
	case *array.BinaryBuilder:
		x, ok := v.([]byte)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.StringBuilder:
		s, err := textValue(k, v)
		if err != nil {
			return err
		}
		b.Append(s)
	default:
		return fmt.Errorf("no arrow builder for %s", b.Type())
	}
	return nil
}

// civilDays returns the days since 1970-01-01 of t's calendar date.
func civilDays(t time.Time) int64 {
	// Howard Hinnant's days_from_civil.
	y, m, d := int64(t.Year()), int64(t.Month()), int64(t.Day())
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
