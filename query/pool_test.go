package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	p, err := NewPool(cfg, testWorkerCmd, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
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
