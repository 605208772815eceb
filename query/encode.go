package query

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// colKind groups DuckDB types by how they are encoded.
type colKind int

const (
	kindNested colKind = iota // LIST, ARRAY, STRUCT, MAP, UNION, VARIANT, unknown: JSON text
	kindNull
	kindBool
	kindInt
	kindUint
	kindFloat
	kindHuge // HUGEINT, UHUGEINT, BIGNUM (*big.Int)
	kindDecimal
	kindString // VARCHAR, ENUM, BIT
	kindTimestamp
	kindDate
	kindTime
	kindTimeTZ
	kindInterval
	kindBlob
	kindUUID
	kindJSON
)

// kindOf maps a DuckDB type name (as reported by duckdb-go) to its kind.
func kindOf(typeName string) colKind {
	switch typeName {
	case "SQLNULL":
		return kindNull
	case "BOOLEAN":
		return kindBool
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT":
		return kindInt
	case "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT":
		return kindUint
	case "FLOAT", "DOUBLE":
		return kindFloat
	case "HUGEINT", "UHUGEINT", "BIGNUM":
		return kindHuge
	case "VARCHAR", "ENUM", "BIT":
		return kindString
	case "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		return kindTimestamp
	case "DATE":
		return kindDate
	case "TIME":
		return kindTime
	case "TIMETZ":
		return kindTimeTZ
	case "INTERVAL":
		return kindInterval
	case "BLOB", "GEOMETRY":
		return kindBlob
	case "UUID":
		return kindUUID
	case "JSON":
		return kindJSON
	}
	if strings.HasPrefix(typeName, "DECIMAL(") {
		return kindDecimal
	}
	return kindNested
}

// Text forms shared by JSON and CSV.
const (
	timestampLayout = time.RFC3339Nano
	dateLayout      = "2006-01-02"
	timeLayout      = "15:04:05.999999"
	timeTZLayout    = "15:04:05.999999Z07:00"
)

func formatUUID(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:])
	return string(buf[:])
}

// jsonValue converts a driver value of a column of kind k into a value that
// encoding/json renders as documented: timestamps RFC 3339 (UTC), blobs
// base64, HUGEINT/DECIMAL as exact JSON numbers, NaN/±Inf as strings.
func jsonValue(k colKind, v any) any {
	if v == nil {
		return nil
	}
	if t, ok := v.(time.Time); ok {
		switch k {
		case kindDate:
			return t.Format(dateLayout)
		case kindTime:
			return t.Format(timeLayout)
		case kindTimeTZ:
			return t.Format(timeTZLayout)
		default:
			return t.UTC().Format(timestampLayout)
		}
	}
	if b, ok := v.([]byte); ok && k == kindUUID {
		return formatUUID(b)
	}
	return jsonGeneric(v)
}

// jsonGeneric converts values without column context (also nested values).
func jsonGeneric(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint, json.Number:
		return x
	case float32:
		return jsonFloat(float64(x))
	case float64:
		return jsonFloat(x)
	case *big.Int:
		if x == nil {
			return nil
		}
		return json.Number(x.String())
	case duckdb.Decimal:
		if x.Value == nil {
			return nil
		}
		return json.Number(x.String())
	case time.Time:
		return x.UTC().Format(timestampLayout)
	case []byte:
		return x // base64 by encoding/json
	case duckdb.Interval:
		return x
	case duckdb.UUID:
		return formatUUID(x[:])
	case *duckdb.UUID:
		if x == nil {
			return nil
		}
		return formatUUID(x[:])
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonGeneric(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonGeneric(e)
		}
		return out
	case duckdb.OrderedMap:
		keys, vals := x.Keys(), x.Values()
		out := make(orderedObject, len(keys))
		for i := range keys {
			out[i] = [2]any{fmt.Sprint(jsonGeneric(keys[i])), jsonGeneric(vals[i])}
		}
		return out
	case duckdb.Union:
		return jsonGeneric(x.Value)
	case duckdb.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(jsonGeneric(k))] = jsonGeneric(e)
		}
		return out
	case fmt.Stringer:
		return x.String()
	default:
		return x
	}
}

func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// orderedObject is a JSON object that keeps its key order (DuckDB MAPs).
type orderedObject [][2]any

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(kv[0])
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(kv[1])
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// textValue renders a value as text (CSV cells, and Arrow string columns).
// NULL is the empty string.
func textValue(k colKind, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return fmt.Sprint(x), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case *big.Int:
		return x.String(), nil
	case duckdb.Decimal:
		return x.String(), nil
	case time.Time:
		return jsonValue(k, x).(string), nil
	case []byte:
		if k == kindUUID {
			return formatUUID(x), nil
		}
		return base64.StdEncoding.EncodeToString(x), nil
	}
	b, err := json.Marshal(jsonValue(k, v))
	if err != nil {
		return "", fmt.Errorf("encode %T as JSON text: %w", v, err)
	}
	return string(b), nil
}

func (rs *ResultSet) kinds() []colKind {
	ks := make([]colKind, len(rs.Columns))
	for i, c := range rs.Columns {
		ks[i] = kindOf(c.Type)
	}
	return ks
}

func (rs *ResultSet) encodeJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	cols := rs.Columns
	if cols == nil {
		cols = []Column{}
	}
	bw.WriteString(`{"columns":`)
	if err := enc.Encode(cols); err != nil {
		return fmt.Errorf("encode columns: %w", err)
	}
	bw.WriteString(`,"rows":[`)
	kinds := rs.kinds()
	conv := make([]any, len(kinds))
	for i, row := range rs.Rows {
		if i > 0 {
			bw.WriteByte(',')
		}
		for j, v := range row {
			conv[j] = jsonValue(kinds[j], v)
		}
		if err := enc.Encode(conv); err != nil {
			return fmt.Errorf("encode row %d: %w", i, err)
		}
	}
	fmt.Fprintf(bw, `],"truncated":%t}`+"\n", rs.Truncated)
	return bw.Flush()
}

func (rs *ResultSet) encodeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(rs.Columns))
	for i, c := range rs.Columns {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	kinds := rs.kinds()
	for i, row := range rs.Rows {
		for j, v := range row {
			s, err := textValue(kinds[j], v)
			if err != nil {
				return fmt.Errorf("row %d column %q: %w", i, rs.Columns[j].Name, err)
			}
			rec[j] = s
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
