package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSQLBodyEdges: the /sql body limit answers 413 naming it, and a bad
// JSON body says what was expected.
func TestSQLBodyEdges(t *testing.T) {
	s := newStack(t)
	for _, tt := range []struct {
		ctype, body string
		code        int
		errHas      string
	}{
		{"text/plain", "SELECT '" + strings.Repeat("x", 64<<10) + "'", 413, "body exceeds 64 KiB (http.max_sql_bytes)"},
		{"application/json", `{"query": "SELECT 1"}`, 400, `expected {"sql": "SELECT ..."} (or the query as text/plain): unknown field "query"`},
		{"application/json", `{"sql": 1}`, 400, `"sql" must be a string, not number`},
		{"application/json", `{"sql": "SELECT 1 AS one"}`, 200, ""},
	} {
		resp, err := http.Post(s.url+"/sql", tt.ctype, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(b), strings.ReplaceAll(tt.errHas, `"`, `\"`)) {
			t.Errorf("POST /sql %.40q: %d %s, want %d with %q", tt.body, resp.StatusCode, b, tt.code, tt.errHas)
		}
	}
}
