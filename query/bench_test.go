package query

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkWorkerOverhead runs the same small query in-process (Engine, the
// previous path) and through the worker pool, interleaved in one run, and
// reports both medians and their difference and ratio.
//
//	go test ./query/ -run '^$' -bench WorkerOverhead -benchtime 300x
func BenchmarkWorkerOverhead(b *testing.B) {
	f := newFixture(b)
	cfg := Config{HistoryDir: f.hist, TempDir: filepath.Join(f.root, "tmp"), MaxConcurrent: 1}
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	p, err := NewPool(cfg, testWorkerCmd, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	files := []string{f.fileA, f.fileB}
	if err := e.SetFiles(files); err != nil {
		b.Fatal(err)
	}
	if err := p.SetFiles(files); err != nil {
		b.Fatal(err)
	}
	const q = `SELECT list, count(*) AS n FROM changes GROUP BY list ORDER BY list`
	ctx := context.Background()
	var buf bytes.Buffer
	run := func(qf func(context.Context, string, Format, io.Writer) (Result, error)) time.Duration {
		buf.Reset()
		start := time.Now()
		if _, err := qf(ctx, q, JSON, &buf); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	run(e.Query) // warm up both
	run(p.Query)
	var in, wk []time.Duration
	b.ResetTimer()
	for range b.N {
		in = append(in, run(e.Query))
		wk = append(wk, run(p.Query))
	}
	b.StopTimer()
	slices.Sort(in)
	slices.Sort(wk)
	pin, pwk := in[len(in)/2], wk[len(wk)/2]
	b.ReportMetric(float64(pin.Microseconds())/1000, "inproc-p50-ms")
	b.ReportMetric(float64(pwk.Microseconds())/1000, "worker-p50-ms")
	b.ReportMetric(float64(pwk-pin)/1e6, "overhead-ms")
	b.ReportMetric(float64(pwk)/float64(pin), "ratio")
}
