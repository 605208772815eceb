package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the SQL worker (the same pattern
// as `netwarden sql-worker`): a Pool started by a test runs os.Args[0]
// with WorkerEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(sandboxProbeEnv) != "" {
		runSandboxProbe()
		os.Exit(0)
	}
	if IsWorkerProcess() {
		if err := WorkerMain(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testWorkerCmd runs this test binary as a worker.
func testWorkerCmd() *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") }

func newPool(t *testing.T, f *fixture, mod func(*Config)) *Pool {
	t.Helper()
	cfg := Config{HistoryDir: f.hist, TempDir: filepath.Join(f.root, "tmp"), MaxConcurrent: 2}
	if mod != nil {
		mod(&cfg)
	}
	start := time.Now()
	p, err := NewPool(cfg, testWorkerCmd, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Logf("first worker ready after %s", time.Since(start))
	t.Cleanup(func() { _ = p.Close() })
	if err := p.SetFiles([]string{f.fileA, f.fileB}); err != nil {
		t.Fatal(err)
	}
	return p
}

func poolQuery(t *testing.T, p *Pool, q string, f Format) (*httptest.ResponseRecorder, Result, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	res, err := p.Query(context.Background(), q, f, rec)
	return rec, res, err
}

func TestPoolBasic(t *testing.T) {
	f := newFixture(t)
	p := newPool(t, f, nil)
	rec, res, err := poolQuery(t, p, `SELECT list, count(*) AS n FROM changes GROUP BY list ORDER BY list`, CSV)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != "list,n\nblocklist,6\nspam,4\n" || res.Rows != 2 || res.Truncated {
		t.Errorf("got %q %+v", got, res)
	}
	if rec.Header().Get(TruncatedHeader) != "false" || rec.Header().Get(RowsHeader) != "2" {
		t.Errorf("headers %v", rec.Header())
	}
	_, _, err = poolQuery(t, p, `SELECT * FROM read_csv('/etc/passwd')`, JSON)
	if !errors.Is(err, ErrRejected) {
		t.Errorf("read_csv: %v", err)
	}
	start := time.Now()
	for range 20 {
		if _, _, err := poolQuery(t, p, `SELECT 42`, JSON); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("20 small queries in %s", time.Since(start))
	var buf bytes.Buffer
	if _, err := p.Query(context.Background(), `SELECT 1`, JSON, &buf); err != nil || !strings.Contains(buf.String(), `"rows":[[1]`) {
		t.Errorf("%v %s", err, buf.String())
	}
}

// workerPIDs returns the pids of this process's children (the workers).
func workerPIDs(t *testing.T) []int {
	t.Helper()
	var pids []int
	me := fmt.Sprintf("PPid:\t%d\n", os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err == nil && strings.Contains(string(b), me) {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestPoolTimeoutKillsAndRestarts(t *testing.T) {
	f := newFixture(t)
	p := newPool(t, f, func(c *Config) { c.Timeout = time.Second; c.MaxConcurrent = 1 })
	before := workerPIDs(t)
	start := time.Now()
	// Constant folding runs in Prepare, which DuckDB cannot interrupt.
	_, _, err := poolQuery(t, p, `SELECT levenshtein(repeat('a',100000), repeat('b',100000))`, JSON)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if took > 3*time.Second {
		t.Errorf("answered after %s", took)
	}
	rec, _, err := poolQuery(t, p, `SELECT count(*) FROM changes`, CSV)
	if err != nil || rec.Body.String() != "count_star()\n10\n" {
		t.Fatalf("after kill: %v %q", err, rec.Body.String())
	}
	after := workerPIDs(t)
	if len(before) != 1 || len(after) != 1 || before[0] == after[0] {
		t.Errorf("workers before %v after %v: want one, replaced", before, after)
	}
}

func TestPoolWorkerDeath(t *testing.T) {
	f := newFixture(t)
	p := newPool(t, f, func(c *Config) { c.Timeout = 10 * time.Second; c.MaxConcurrent = 1 })
	pids := workerPIDs(t)
	if len(pids) != 1 {
		t.Fatalf("workers %v", pids)
	}
	// What the kernel's OOM killer (or a crash) does to a worker.
	time.AfterFunc(300*time.Millisecond, func() { _ = syscall.Kill(pids[0], syscall.SIGKILL) })
	start := time.Now()
	_, _, err := poolQuery(t, p, `SELECT count(*) FROM range(1000000000000)`, JSON)
	if !errors.Is(err, ErrResourceLimit) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s, want ErrResourceLimit at once", err, time.Since(start))
	}
	if _, _, err := poolQuery(t, p, `SELECT 1`, JSON); err != nil {
		t.Fatalf("after death: %v", err)
	}
}

func TestPoolCancelMidStream(t *testing.T) {
	f := newFixture(t)
	p := newPool(t, f, func(c *Config) { c.MaxConcurrent = 1; c.MaxBytes = 1 << 30; c.MaxRows = 2000000 })
	pids := workerPIDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelWriter{cancel: cancel, after: 3}
	_, err := p.Query(ctx, `SELECT i, repeat('x', 100) FROM range(2000000) t(i)`, CSV, w)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrWrite) {
		t.Fatalf("err = %v, want canceled", err)
	}
	if _, _, err := poolQuery(t, p, `SELECT 1`, JSON); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
	if after := workerPIDs(t); len(after) != 1 || after[0] == pids[0] {
		t.Errorf("workers %v -> %v: the busy worker was not replaced", pids, after)
	}
}

// cancelWriter cancels after a few writes and then fails, like a client
// that goes away.
type cancelWriter struct {
	cancel func()
	after  int
	n      int
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	if w.n++; w.n >= w.after {
		w.cancel()
		return 0, io.ErrClosedPipe
	}
	return len(p), nil
}

func TestPoolStreamsWithTrailers(t *testing.T) {
	f := newFixture(t)
	p := newPool(t, f, func(c *Config) { c.MaxBytes = 200 << 10; c.MaxRows = 1000000 })
	for _, fm := range []Format{JSON, CSV, Arrow} {
		rec, res, err := poolQuery(t, p, `SELECT i, repeat('y', 50) AS s FROM range(100000) t(i)`, fm)
		if err != nil {
			t.Fatalf("%s: %v", fm, err)
		}
		tr := rec.Result().Trailer
		if !res.Truncated || tr.Get(TruncatedHeader) != "true" || tr.Get(RowsHeader) != fmt.Sprint(res.Rows) {
			t.Errorf("%s: res %+v trailers %v header %v", fm, res, tr, rec.Header())
		}
		if n := rec.Body.Len(); n > 200<<10+20<<10 || n < 100<<10 {
			t.Errorf("%s: body %d bytes for a cap of %d", fm, n, 200<<10)
		}
		switch fm {
		case JSON:
			if r := decodeJSON(t, rec.Body.Bytes()); len(r.Rows) != res.Rows || !r.Truncated {
				t.Errorf("json: %d rows, truncated %v", len(r.Rows), r.Truncated)
			}
		case CSV:
			if _, rows := decodeCSV(t, rec.Body.Bytes()); len(rows) != res.Rows {
				t.Errorf("csv: %d rows, want %d", len(rows), res.Rows)
			}
		case Arrow:
			if _, rows := decodeArrow(t, rec.Body.Bytes()); len(rows) != res.Rows {
				t.Errorf("arrow: %d rows, want %d", len(rows), res.Rows)
			}
		}
	}
}

func TestPoolStateReachesEveryWorker(t *testing.T) {
	f := newFixture(t)
	p := newPool(t, f, func(c *Config) { c.MaxConcurrent = 3 })
	if err := p.SetFiles([]string{f.fileB}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetLists([]ListRow{{Name: "a"}, {Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetFiles([]string{f.partial + ".missing"}); err == nil {
		t.Error("SetFiles accepted a missing file")
	}
	if err := p.SetFiles([]string{f.outside}); err == nil {
		t.Error("SetFiles accepted a file outside the history dir")
	}
	var wg sync.WaitGroup
	for range 9 {
		wg.Go(func() {
			var buf bytes.Buffer
			_, err := p.Query(context.Background(), `SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM lists)`, CSV, &buf)
			if err != nil || !strings.HasSuffix(buf.String(), "\n4,2\n") {
				t.Errorf("%v %q", err, buf.String())
			}
		})
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := poolQuery(t, p, `SELECT 1`, JSON); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if pids := workerPIDs(t); len(pids) != 0 {
		t.Errorf("workers left after Close: %v", pids)
	}
}

func TestWorkerEnvironment(t *testing.T) {
	t.Setenv("NETWARDEN_TEST_SECRET", "s3cr3t")
	for _, kv := range workerEnviron() {
		if strings.Contains(kv, "s3cr3t") {
			t.Errorf("worker environment has %q", kv)
		}
	}
}

// killingRecorder kills the worker when the first chunk arrives.
type killingRecorder struct {
	*httptest.ResponseRecorder
	pid  int
	once sync.Once
}

func (k *killingRecorder) Write(p []byte) (int, error) {
	k.once.Do(func() {
		_ = syscall.Kill(k.pid, syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
	})
	return k.ResponseRecorder.Write(p)
}

func TestPoolWorkerDiesMidStream(t *testing.T) {
	f := newFixture(t)
	p := newPool(t, f, func(c *Config) { c.MaxConcurrent = 1; c.MaxBytes = 1 << 30; c.MaxRows = 1000000 })
	pids := workerPIDs(t)
	rec := &killingRecorder{ResponseRecorder: httptest.NewRecorder(), pid: pids[0]}
	_, err := p.Query(context.Background(), `SELECT i, repeat('z', 200) FROM range(1000000) t(i)`, JSON, rec)
	if !errors.Is(err, ErrResourceLimit) {
		t.Fatalf("err = %v, want ErrWorkerDied", err)
	}
	tr := rec.Result().Trailer
	if rec.Body.Len() == 0 || tr.Get(TruncatedHeader) != "true" || tr.Get(ErrorHeader) == "" {
		t.Errorf("body %d bytes, trailers %v", rec.Body.Len(), tr)
	}
	if json.Valid(rec.Body.Bytes()) {
		t.Error("a body cut short is valid JSON")
	}
	if _, _, err := poolQuery(t, p, `SELECT 1`, JSON); err != nil {
		t.Fatalf("after death: %v", err)
	}
}
