package query

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// ErrRejected marks user errors: statements that are not allowed, statements
// that do not parse or bind, reads outside HistoryDir and runtime errors caused
// by the query itself (bad casts, division by zero). The API maps it to 400.
// The wrapped message says why.
var ErrRejected = errors.New("query rejected")

// ErrResourceLimit marks queries that ran out of memory or temp space (the
// MemoryLimit / MaxTempSize settings). The API may map it to 413 or 422.
var ErrResourceLimit = errors.New("query exceeded resource limits")

// ErrClosed is returned by all methods after Close.
var ErrClosed = errors.New("query engine closed")

// MaxSQLBytes is the longest SQL text Query accepts.
const MaxSQLBytes = 1 << 20

// deniedFunctions are table/scalar functions a user statement may not call,
// even inside a SELECT: they change engine state (logging, profiling,
// checkpoints — none of them is covered by lock_configuration), execute SQL
// given as a string (which would bypass these checks) or take raw pointers.
var deniedFunctions = map[string]string{
	"query":                       "runs SQL given as a string",
	"query_table":                 "runs SQL given as a string",
	"json_execute_serialized_sql": "runs SQL given as a string",
	"json_deserialize_sql":        "runs SQL given as a string",
	"arrow_scan":                  "takes raw memory pointers",
	"arrow_scan_dumb":             "takes raw memory pointers",
	"enable_logging":              "changes engine state",
	"disable_logging":             "changes engine state",
	"truncate_duckdb_logs":        "changes engine state",
	"write_log":                   "changes engine state",
	"enable_profiling":            "changes engine state",
	"disable_profiling":           "changes engine state",
	"enable_peg_parser":           "changes engine state",
	"disable_peg_parser":          "changes engine state",
	"checkpoint":                  "changes engine state",
	"force_checkpoint":            "changes engine state",
	"json_serialize_plan":         "plans SQL given as a string",
	"json_serialize_sql":          "parses SQL given as a string",
	"current_setting":             "reveals the engine configuration",
	"getvariable":                 "reads engine state",
	"nextval":                     "changes engine state",
	"currval":                     "reads engine state",
	"setseed":                     "changes engine state",
	"current_query":               "echoes the query",
	"pg_sleep":                    "only waits",
	"sleep_ms":                    "only waits",
	"read_parquet":                "reads files; use the changes view",
	"parquet_scan":                "reads files; use the changes view",
	"read_csv":                    "reads files",
	"read_csv_auto":               "reads files",
	"read_json":                   "reads files",
	"read_json_auto":              "reads files",
	"read_text":                   "reads files",
	"read_blob":                   "reads files",
	"glob":                        "lists files",
}

func makeSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func rejectf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// checkText does the checks that need no database.
func checkText(sqlText string) error {
	switch {
	case strings.TrimSpace(sqlText) == "":
		return rejectf("empty query")
	case len(sqlText) > MaxSQLBytes:
		return rejectf("query text is longer than %d bytes", MaxSQLBytes)
	case strings.IndexByte(sqlText, 0) >= 0:
		return rejectf("query text contains a NUL byte")
	case !utf8.ValidString(sqlText):
		return rejectf("query text is not valid UTF-8")
	}
	return nil
}

// serializedSQL is the output of DuckDB's json_serialize_sql.
type serializedSQL struct {
	Error        bool              `json:"error"`
	ErrorType    string            `json:"error_type"`
	ErrorMessage string            `json:"error_message"`
	Statements   []json.RawMessage `json:"statements"`
}

// checkParsed parses sqlText with DuckDB's parser (json_serialize_sql: parse
// only, nothing is bound or executed) and requires exactly one SELECT
// statement that calls no denied function. This runs before the statement is
// ever prepared, so a rejected statement never reaches DuckDB's binder.
func checkParsed(ctx context.Context, c *duckdb.Conn, sqlText string) error {
	rows, err := c.QueryContext(ctx,
		`SELECT CAST(json_serialize_sql(CAST($1 AS VARCHAR)) AS VARCHAR)`,
		[]driver.NamedValue{{Ordinal: 1, Value: sqlText}})
	if err != nil {
		return fmt.Errorf("parse query: %w", err)
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("no result")
		}
		return fmt.Errorf("parse query: %w", err)
	}
	text, _ := dest[0].(string)
	var parsed serializedSQL
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&parsed); err != nil {
		return fmt.Errorf("parse query: decode json_serialize_sql output: %w", err)
	}
	if parsed.Error {
		if parsed.ErrorType == "not implemented" {
			// json_serialize_sql only serializes SELECT statements.
			return rejectf("only a single SELECT statement is allowed; got %s", describeStatement(sqlText))
		}
		return rejectf("%s", shortMsg(parsed.ErrorMessage))
	}
	switch n := len(parsed.Statements); {
	case n == 0:
		return rejectf("empty query")
	case n > 1:
		return rejectf("only a single SELECT statement is allowed; got %d statements", n)
	}
	var tree any
	dec = json.NewDecoder(strings.NewReader(string(parsed.Statements[0])))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("parse query: decode statement: %w", err)
	}
	return checkFunctions(tree)
}

// checkFunctions walks a serialized statement and rejects calls of functions
// that are not in allowedFunctions, and table references that name a file
// (DuckDB's replacement scans turn FROM '/path/x.csv' into read_csv). Every
// function call (scalar, aggregate, window, table function, operator, method
// syntax) is serialized with a "function_name" key; a base table reference
// with "table_name".
func checkFunctions(node any) error {
	switch n := node.(type) {
	case map[string]any:
		// This node first, then its children in key order, so the error
		// names the outermost offending call, the same one every time.
		if name, _ := n["function_name"].(string); name != "" {
			name = strings.ToLower(name)
			if why, denied := deniedFunctions[name]; denied {
				return rejectf("function %s is not allowed (%s)", short(name), why)
			}
			if !allowedFunctions[name] {
				return rejectf("function %s is not allowed (not on the allow-list)", short(name))
			}
		}
		if name, ok := n["table_name"].(string); ok {
			if err := checkTable(name, n["schema_name"], n["catalog_name"]); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(n)) {
			if err := checkFunctions(n[k]); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range n {
			if err := checkFunctions(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// catalogPrefixes name DuckDB's built-in catalog views (they call table
// functions such as duckdb_settings() that the allow-list keeps from users).
var catalogPrefixes = []string{"duckdb_", "pg_", "sqlite_", "pragma_"}

// checkTable rejects table references that name a file (DuckDB's
// replacement scans turn FROM '/path/x.csv' into read_csv) or a built-in
// catalog view; changes, lists and the statement's own CTEs pass.
func checkTable(name string, schema, catalog any) error {
	if strings.ContainsAny(name, "/\\.:") {
		return rejectf("table %q is not allowed: files can only be read through the changes view", short(name))
	}
	s, _ := schema.(string)
	c, _ := catalog.(string)
	s, c, lower := strings.ToLower(s), strings.ToLower(c), strings.ToLower(name)
	for _, p := range catalogPrefixes {
		if strings.HasPrefix(lower, p) {
			return rejectf("table %q is not allowed (a built-in catalog view)", short(name))
		}
	}
	if s == "pg_catalog" || s == "information_schema" || c == "system" || c == "temp" {
		return rejectf("table %q is not allowed (a built-in catalog view)", short(name))
	}
	return nil
}

// shortLen bounds how much user input an error message echoes.
const shortLen = 80

// short returns at most shortLen bytes of s (at a rune boundary), marked
// with "..." when cut.
func short(s string) string { return cut(s, shortLen) }

// cut returns at most n bytes of s (at a rune boundary), marked with "..."
// when cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// shortMsg bounds an error message (DuckDB's may quote the query, e.g.
// "LINE 1: SELECT ..."): a quoted query line is cut to shortLen bytes, any
// other line to 2*shortLen, and at most four lines are kept.
func shortMsg(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	if len(lines) > 4 {
		lines = append(lines[:4], "...")
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "LINE ") {
			lines[i] = short(l)
		} else {
			lines[i] = cut(l, 2*shortLen)
		}
	}
	return strings.Join(lines, "\n")
}

// stmtTypeNames names the statement types for error messages.
var stmtTypeNames = map[duckdb.StmtType]string{
	duckdb.STATEMENT_TYPE_INVALID:      "INVALID",
	duckdb.STATEMENT_TYPE_SELECT:       "SELECT",
	duckdb.STATEMENT_TYPE_INSERT:       "INSERT",
	duckdb.STATEMENT_TYPE_UPDATE:       "UPDATE",
	duckdb.STATEMENT_TYPE_EXPLAIN:      "EXPLAIN",
	duckdb.STATEMENT_TYPE_DELETE:       "DELETE",
	duckdb.STATEMENT_TYPE_PREPARE:      "PREPARE",
	duckdb.STATEMENT_TYPE_CREATE:       "CREATE",
	duckdb.STATEMENT_TYPE_EXECUTE:      "EXECUTE",
	duckdb.STATEMENT_TYPE_ALTER:        "ALTER",
	duckdb.STATEMENT_TYPE_TRANSACTION:  "TRANSACTION",
	duckdb.STATEMENT_TYPE_COPY:         "COPY",
	duckdb.STATEMENT_TYPE_ANALYZE:      "ANALYZE",
	duckdb.STATEMENT_TYPE_VARIABLE_SET: "SET",
	duckdb.STATEMENT_TYPE_CREATE_FUNC:  "CREATE FUNCTION",
	duckdb.STATEMENT_TYPE_DROP:         "DROP",
	duckdb.STATEMENT_TYPE_EXPORT:       "EXPORT",
	duckdb.STATEMENT_TYPE_PRAGMA:       "PRAGMA",
	duckdb.STATEMENT_TYPE_VACUUM:       "VACUUM",
	duckdb.STATEMENT_TYPE_CALL:         "CALL",
	duckdb.STATEMENT_TYPE_SET:          "SET",
	duckdb.STATEMENT_TYPE_LOAD:         "LOAD",
	duckdb.STATEMENT_TYPE_RELATION:     "RELATION",
	duckdb.STATEMENT_TYPE_EXTENSION:    "EXTENSION",
	duckdb.STATEMENT_TYPE_LOGICAL_PLAN: "LOGICAL PLAN",
	duckdb.STATEMENT_TYPE_ATTACH:       "ATTACH",
	duckdb.STATEMENT_TYPE_DETACH:       "DETACH",
	duckdb.STATEMENT_TYPE_MULTI:        "MULTI",
}

func stmtTypeName(t duckdb.StmtType) string {
	if s, ok := stmtTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("statement type %d", t)
}

// prepareChecked prepares sqlText (which checkParsed accepted) and verifies
// with DuckDB's own statement type that it is a SELECT without parameters.
// It uses the driver's Prepare, which refuses input that DuckDB splits into
// several statements instead of executing all but the last one as
// PrepareContext does.
func prepareChecked(ctx context.Context, c *duckdb.Conn, sqlText string) (*duckdb.Stmt, error) {
	ds, err := c.Prepare(sqlText)
	if err != nil {
		if strings.Contains(err.Error(), "multi-statement") {
			return nil, rejectf("only a single SELECT statement is allowed; the statement expands to several statements (PIVOT without an explicit IN list is not supported)")
		}
		return nil, classify(ctx, "prepare", err)
	}
	st, ok := ds.(*duckdb.Stmt)
	if !ok {
		_ = ds.Close()
		return nil, fmt.Errorf("prepare: unexpected statement type %T", ds)
	}
	t, err := st.StatementType()
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("prepare: statement type: %w", err)
	}
	if t != duckdb.STATEMENT_TYPE_SELECT {
		_ = st.Close()
		return nil, rejectf("only a single SELECT statement is allowed; got %s", stmtTypeName(t))
	}
	if n := st.NumInput(); n != 0 {
		_ = st.Close()
		return nil, rejectf("query parameters are not supported (found %d)", n)
	}
	return st, nil
}

// describeStatement names the leading keyword of sqlText for error messages
// (e.g. "INSERT", "SET"). It is cosmetic: the decision itself is DuckDB's.
func describeStatement(sqlText string) string {
	s := sqlText
	for {
		s = strings.TrimLeft(s, " \t\r\n\f(;")
		switch {
		case strings.HasPrefix(s, "--"):
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				s = s[i+1:]
				continue
			}
			s = ""
		case strings.HasPrefix(s, "/*"):
			if i := strings.Index(s, "*/"); i >= 0 {
				s = s[i+2:]
				continue
			}
			s = ""
		}
		break
	}
	end := strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
	if end < 0 {
		end = len(s)
	}
	kw := strings.ToUpper(s[:end])
	switch kw {
	case "":
		return "a statement that is not a SELECT"
	case "SELECT", "WITH", "FROM", "VALUES", "TABLE", "SHOW", "DESCRIBE", "SUMMARIZE":
		// A SELECT-like start that still failed: a later statement is not a SELECT.
		return "a statement that is not a SELECT"
	case "RESET":
		return "SET"
	case "PIVOT", "UNPIVOT":
		return "a " + kw + " without an explicit IN list (it expands to several statements)"
	}
	return kw
}

// historyDirKey carries Config.HistoryDir to classify in a query's context.
type historyDirKey struct{}

var mHistoryRead = metrics.NewCounter(`netwarden_sql_history_read_errors_total`)

// classify maps an error from DuckDB to the package's error contract.
func classify(ctx context.Context, stage string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("%s: query timed out: %w", stage, ctxErr)
		}
		return fmt.Errorf("%s: query canceled: %w", stage, ctxErr)
	}
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return fmt.Errorf("%s: %w", stage, err)
	}
	if dir, _ := ctx.Value(historyDirKey{}).(string); dir != "" && de.Type != duckdb.ErrorTypePermission && strings.Contains(de.Msg, dir) {
		// DuckDB failed reading one of the history files (its message
		// names the history directory; user SQL cannot name files, file
		// functions are not allowed): a damaged file is a server error,
		// logged and counted, never the user's.
		mHistoryRead.Inc()
		return fmt.Errorf("%s: reading history: %w", stage, err)
	}
	msg := shortMsg(de.Msg)
	switch de.Type {
	case duckdb.ErrorTypePermission:
		return rejectf("only the history files may be read (%s)", msg)
	case duckdb.ErrorTypeParser, duckdb.ErrorTypeSyntax, duckdb.ErrorTypeBinder, duckdb.ErrorTypeCatalog,
		duckdb.ErrorTypeInvalidInput, duckdb.ErrorTypeConversion, duckdb.ErrorTypeOutOfRange,
		duckdb.ErrorTypeDivideByZero, duckdb.ErrorTypeMismatchType, duckdb.ErrorTypeInvalidType,
		duckdb.ErrorTypeExpression, duckdb.ErrorTypeNotImplemented,
		duckdb.ErrorTypeParameterNotResolved, duckdb.ErrorTypeParameterNotAllowed,
		duckdb.ErrorTypeMissingExtension, duckdb.ErrorTypeAutoLoad, duckdb.ErrorTypeSettings,
		duckdb.ErrorTypeSequence, duckdb.ErrorTypeDependency, duckdb.ErrorTypeConstraint,
		duckdb.ErrorTypeInvalidConfiguration:
		return rejectf("%s", msg)
	case duckdb.ErrorTypeOutOfMemory:
		first, _, _ := strings.Cut(msg, "\n")
		return fmt.Errorf("%w: %s", ErrResourceLimit, first)
	}
	return fmt.Errorf("%s: %w", stage, err)
}
