package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/query"
)

// TestMain lets this test binary serve as the SQL worker process, like
// `netwarden sql-worker` does for the real binary.
func TestMain(m *testing.M) {
	if query.IsWorkerProcess() {
		if err := query.WorkerMain(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func sqlWorkerCmd() *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") }

type sqlResp struct {
	code    int
	body    []byte
	header  http.Header
	trailer http.Header
	took    time.Duration
}

func postSQL(t *testing.T, ctx context.Context, url, q, accept string) (sqlResp, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/sql", strings.NewReader(q))
	if err != nil {
		return sqlResp{}, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sqlResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return sqlResp{resp.StatusCode, b, resp.Header, resp.Trailer, time.Since(start)}, err
}

// summary returns X-Netwarden-<name> from the headers or, for streamed
// results, the trailers.
func (r sqlResp) summary(name string) string {
	if v := r.header.Get("X-Netwarden-" + name); v != "" {
		return v
	}
	return r.trailer.Get("X-Netwarden-" + name)
}

// snapshot lists every file and directory below dir with size, mode and
// modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%d %s %d", info.Size(), info.Mode(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// vmHWM returns the peak RSS in bytes of process pid (0 if gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// children returns the pids of this process's child processes.
func children() []int {
	var pids []int
	me := "PPid:\t" + strconv.Itoa(os.Getpid()) + "\n"
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/status"); err == nil && strings.Contains(string(b), me) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// peakWorkerRSS samples the peak RSS of the worker processes until stop is
// closed and returns the largest seen.
func peakWorkerRSS(stop <-chan struct{}) <-chan int64 {
	res := make(chan int64, 1)
	go func() {
		var peak int64
		for {
			for _, pid := range children() {
				peak = max(peak, vmHWM(pid))
			}
			select {
			case <-stop:
				res <- peak
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return res
}

const sqlTimeout = 2 * time.Second

// TestSQLIsolation runs hostile queries against the real API with the
// worker pool over a live pipeline, and checks after each that the server
// still answers, and at the end that the history dir is unchanged, ingest
// still works and memory stayed bounded.
func TestSQLIsolation(t *testing.T) {
	const maxBytes = 256 << 10
	s := newStackWith(t, func(c *query.Config) {
		c.Timeout = sqlTimeout
		c.MaxBytes = maxBytes
		c.MaxConcurrent = 2
	})
	for i := range 5 {
		s.publish(t, int64(100+i), change.Add, "DROP", fmt.Sprintf("10.0.0.%d", i))
	}
	s.settle(t)
	ctx := context.Background()
	count := func(t *testing.T) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, err := postSQL(t, ctx, s.url, "SELECT count(*) AS n FROM changes", "text/csv")
			if err == nil && r.code == 200 {
				return strings.TrimSpace(strings.TrimPrefix(string(r.body), "n\n"))
			}
			if time.Now().After(deadline) {
				t.Fatalf("small query after probe: %v %d %s", err, r.code, r.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for count(t) != "5" {
		time.Sleep(50 * time.Millisecond)
	}
	before := snapshot(t, s.hist)
	serverRSS0 := vmHWM(os.Getpid())
	stopRSS := make(chan struct{})
	workerPeak := peakWorkerRSS(stopRSS)

	manifest := filepath.Join(s.hist, "manifest.json")
	probes := []struct {
		name, sql, accept string
		code              int
		want              string // substring of the error
	}{
		// From the issue.
		{"plan export", `SELECT json_serialize_plan('EXPORT DATABASE ''` + s.hist + `/manifest.json.tmp''')`, "", 400, "not allowed"},
		{"folding in prepare", `SELECT levenshtein(repeat('a',100000), repeat('b',100000))`, "", 408, "timed out"},
		{"huge string", `SELECT length(repeat('x',3000000000))`, "", 422, "exceeded resource limits"},
		{"huge body", `SELECT repeat(chr(1),2000) FROM range(100000)`, "", 200, ""},
		{"huge body csv", `SELECT repeat('x',2000) AS x FROM range(100000)`, "text/csv", 200, ""},
		{"huge body arrow", `SELECT repeat('x',2000) AS x FROM range(100000)`, query.ContentTypeArrow, 200, ""},
		// Our own.
		{"long scan", `SELECT count(*) FROM range(1000000000000)`, "", 408, "timed out"},
		{"cross join", `SELECT count(*) FROM range(100000) a, range(100000) b, range(100000) c`, "", 408, "timed out"},
		{"big list", `SELECT length(list(i)) FROM range(2000000000) t(i)`, "", 0, ""}, // 408 or 422
		{"export", `EXPORT DATABASE '` + s.hist + `/x'`, "", 400, "got EXPORT"},
		{"copy", `COPY (SELECT 1) TO '` + manifest + `'`, "", 400, "got COPY"},
		{"copy csv", `COPY lists TO '` + s.hist + `/x.csv'`, "", 400, "got COPY"},
		{"attach", `ATTACH '` + s.hist + `/x.duckdb'`, "", 400, "got ATTACH"},
		{"install", `INSTALL httpfs`, "", 400, "got INSTALL"},
		{"load", `LOAD '` + s.hist + `/x.duckdb_extension'`, "", 400, "got LOAD"},
		{"read_csv", `SELECT * FROM read_csv('/etc/passwd')`, "", 400, "not allowed"},
		{"read_text manifest", `SELECT * FROM read_text('` + manifest + `')`, "", 400, "not allowed"},
		{"replacement scan", `SELECT * FROM '` + manifest + `'`, "", 400, "not allowed"},
		{"read_parquet history", `SELECT count(*) FROM read_parquet('` + s.hist + `/**/*.parquet')`, "", 400, "not allowed"},
		{"glob", `SELECT * FROM glob('/*')`, "", 400, "not allowed"},
		{"getenv", `SELECT getenv('HOME')`, "", 400, "not allowed"},
		{"current_setting", `SELECT current_setting('memory_limit')`, "", 400, "not allowed"},
		{"duckdb_settings", `SELECT * FROM duckdb_settings()`, "", 400, "not allowed"},
		{"pragma", `PRAGMA version`, "", 400, "got PRAGMA"},
		{"set", `SET threads = 64`, "", 400, "got SET"},
		{"reset", `RESET memory_limit`, "", 400, "got SET"},
		{"call checkpoint", `CALL checkpoint()`, "", 400, "got CALL"},
		{"multi statement", `SELECT 1; SELECT 2`, "", 400, "single SELECT"},
		{"multi statement write", `SELECT 1; COPY (SELECT 1) TO '` + manifest + `'`, "", 400, ""},
		{"query", `SELECT * FROM query('SELECT 1')`, "", 400, "not allowed"},
		{"query_table", `SELECT * FROM query_table('lists')`, "", 400, "not allowed"},
		{"execute serialized", `SELECT * FROM json_execute_serialized_sql('{}')`, "", 400, "not allowed"},
		{"create", `CREATE TABLE t AS SELECT 1`, "", 400, "got CREATE"},
		{"enable_logging", `SELECT * FROM enable_logging()`, "", 400, "not allowed"},
		{"unknown function", `SELECT no_such_function(1)`, "", 400, "not allowed"},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			r, err := postSQL(t, ctx, s.url, p.sql, p.accept)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			t.Logf("%d in %s, %d bytes", r.code, r.took.Round(time.Millisecond), len(r.body))
			switch {
			case p.code == 0:
				if r.code != 408 && r.code != 422 {
					t.Errorf("status %d %s, want 408 or 422", r.code, r.body)
				}
			case r.code != p.code:
				t.Errorf("status %d %.300s, want %d", r.code, r.body, p.code)
			}
			if r.code != 200 {
				var e struct{ Error string }
				if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
					t.Errorf("error body is not JSON {error}: %q", r.body)
				}
				if !strings.Contains(e.Error, p.want) {
					t.Errorf("error %q does not mention %q", e.Error, p.want)
				}
				if len(e.Error) > 400 {
					t.Errorf("error message is %d bytes long", len(e.Error))
				}
			}
			if r.code == 408 && r.took > sqlTimeout+3*time.Second {
				t.Errorf("timed-out query answered after %s", r.took)
			}
			if r.code == 200 {
				if len(r.body) > maxBytes+maxBytes/8 {
					t.Errorf("body of %d bytes exceeds the cap %d", len(r.body), maxBytes)
				}
				if r.summary("Truncated") != "true" || r.summary("Error") != "" {
					t.Errorf("truncated = %q, error = %q; header %v trailer %v", r.summary("Truncated"), r.summary("Error"), r.header, r.trailer)
				}
				rows, _ := strconv.Atoi(r.summary("Rows"))
				checkBody(t, p.accept, r.body, rows)
			}
			if got := count(t); got != "5" {
				t.Errorf("count after probe = %s", got)
			}
		})
	}

	t.Run("error echo", func(t *testing.T) {
		long := "SELECT " + strings.Repeat("x", 10000) + " FROM nowhere"
		r, err := postSQL(t, ctx, s.url, long, "")
		if err != nil || r.code != 400 {
			t.Fatalf("%v %d", err, r.code)
		}
		if len(r.body) > 600 || bytes.Contains(r.body, []byte(strings.Repeat("x", 200))) {
			t.Errorf("error echoes %d bytes: %.200s", len(r.body), r.body)
		}
	})

	// Nothing the probes did created, changed or removed anything in the
	// history dir (no ingest ran meanwhile).
	after := snapshot(t, s.hist)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("history: %s changed: %q -> %q", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("history: new entry %s", p)
		}
	}

	// Four uninterruptible queries at once (more than the pool): all are
	// killed at the limit, and ingest and a small query go on meanwhile.
	t.Run("concurrent slow", func(t *testing.T) {
		var wg sync.WaitGroup
		codes := make(chan int, 4)
		for range 4 {
			wg.Go(func() {
				r, err := postSQL(t, ctx, s.url, `SELECT levenshtein(repeat('a',100000), repeat('b',100000))`, "")
				if err != nil {
					t.Error(err)
					return
				}
				if r.took > 2*sqlTimeout+4*time.Second {
					t.Errorf("slow query answered after %s", r.took)
				}
				codes <- r.code
			})
		}
		s.publish(t, 200, change.Add, "DROP", "10.0.1.1")
		s.settle(t)
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != 408 {
				t.Errorf("status %d, want 408", c)
			}
		}
		if got := count(t); got != "6" {
			t.Errorf("count after concurrent probes and ingest = %s, want 6", got)
		}
	})
	close(stopRSS)
	peak := <-workerPeak

	t.Run("memory bounded", func(t *testing.T) {
		t.Logf("worker peak RSS %d MiB, server RSS growth %d MiB", peak>>20, (vmHWM(os.Getpid())-serverRSS0)>>20)
		if peak == 0 || peak > 1<<30 {
			t.Errorf("worker peak RSS %d MiB, want (0, 1024]", peak>>20)
		}
		if growth := vmHWM(os.Getpid()) - serverRSS0; growth > 256<<20 {
			t.Errorf("server peak RSS grew by %d MiB", growth>>20)
		}
	})
}

// checkBody requires a well-formed body of rows rows in the format asked.
func checkBody(t *testing.T, accept string, body []byte, rows int) {
	t.Helper()
	switch accept {
	case "text/csv":
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil || len(recs) != rows+1 || rows == 0 {
			t.Errorf("csv: %v, %d records for %d rows", err, len(recs), rows)
		}
	case query.ContentTypeArrow:
		rd, err := ipc.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("arrow: %v", err)
		}
		defer rd.Release()
		n := 0
		for rd.Next() {
			n += int(rd.RecordBatch().NumRows())
		}
		if rd.Err() != nil || n != rows || rows == 0 {
			t.Errorf("arrow: %v, %d rows, want %d", rd.Err(), n, rows)
		}
	default:
		var v struct {
			Rows      [][]any
			Truncated bool
		}
		if err := json.Unmarshal(body, &v); err != nil || len(v.Rows) != rows || !v.Truncated || rows == 0 {
			t.Errorf("json: %v, %d rows (want %d), truncated %v", err, len(v.Rows), rows, v.Truncated)
		}
	}
}
