package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
)

// startBroker starts the embedded broker on a random loopback port with
// its log under dir and the default 8 partitions.
func startBroker(tb testing.TB, dir string) *broker.Broker {
	tb.Helper()
	// Port -1 survives Defaults (which would make 0 into 9092); 0 then
	// asks for a free port.
	bc := broker.Config{Embedded: broker.Embedded{Dir: dir, Port: -1}}
	bc.Defaults()
	brk, err := broker.Start(context.Background(), bc, quietLog())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(brk.Close)
	return brk
}

// produce writes every event of d to the changes topic, keyed by resource
// key, as the scraper's producer does, and checks the topic holds them.
func produce(tb testing.TB, ctx context.Context, brk *broker.Broker, d *dataset) {
	tb.Helper()
	cl, err := brk.NewClient(
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(100_000),
	)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	var (
		mu   sync.Mutex
		perr error
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			perr = errors.Join(perr, err)
			mu.Unlock()
		}
	}
	for _, e := range d.events {
		c := d.change(e)
		cl.Produce(ctx, &kgo.Record{Topic: broker.TopicChanges, Key: d.keyBytes(e.res), Value: change.Append(nil, c)}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	if perr != nil {
		tb.Fatalf("produce: %v", perr)
	}
	ends, err := broker.EndOffsets(ctx, cl, broker.TopicChanges)
	if err != nil {
		tb.Fatal(err)
	}
	if got := sumOffsets(ends); got != int64(len(d.events)) {
		tb.Fatalf("topic holds %d records, produced %d", got, len(d.events))
	}
}

func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, o := range m {
		n += o
	}
	return n
}

// consumeRaw reads n records from the start of the changes topic with a
// plain consumer (no group) that does nothing with them, using the
// processor's fetch settings. The time includes making the client.
func consumeRaw(ctx context.Context, brk *broker.Broker, n, pollRecords int) (time.Duration, error) {
	start := time.Now()
	cl, err := brk.NewClient(
		kgo.ConsumeTopics(broker.TopicChanges),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	got := 0
	for got < n {
		fs := cl.PollRecords(ctx, pollRecords)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("raw consumer got %d of %d records: %w", got, n, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("%s/%d: %w", t, p, err)) })
		if ferr != nil {
			return 0, ferr
		}
		got += fs.NumRecords()
	}
	return time.Since(start), nil
}

// pipelineRun is one measured run of the processor.
type pipelineRun struct {
	consumed time.Duration // every record applied to live state and buffered
	durable  time.Duration // Lag()==0 && Pending()==0: every change in Parquet history
	flushes  int           // history commits by the processor
	flushing time.Duration // their total duration
	files    int           // Parquet files in the store at the end
}

// flushStats reads the processor's flush counter and flush duration sum
// from the global metrics registry.
func flushStats() (n int, total time.Duration) {
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for _, line := range strings.Split(buf.String(), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "netwarden_processor_flush_duration_seconds_count":
			n = int(f)
		case "netwarden_processor_flush_duration_seconds_sum":
			total = time.Duration(f * float64(time.Second))
		}
	}
	return n, total
}

// consumedCounter is the processor's records counter (global registry).
var consumedCounter = metrics.GetOrCreateCounter(`netwarden_processor_records_total`)

// runPipeline consumes the whole topic with a fresh store, live state and
// processor until everything is committed to history, then checks the
// store holds exactly the generated changes.
func runPipeline(b *testing.B, ctx context.Context, brk *broker.Broker, d *dataset, dir, group string) pipelineRun {
	b.Helper()
	b.StopTimer()
	n := len(d.events)
	log := quietLog()
	store, err := history.Open(history.Config{Dir: dir}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	state := live.New()
	pc := processor.Config{Group: group}
	pc.Defaults()
	proc := processor.New(pc, brk, store, state, log)
	if path := os.Getenv("NETWARDEN_BENCH_PIPELINE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c0 := consumedCounter.Get()
	f0, fd0 := flushStats()
	done := make(chan error, 1)
	b.StartTimer()
	start := time.Now()
	go func() { done <- proc.Run(rctx) }()

	var run pipelineRun
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(30 * time.Minute)
	defer deadline.Stop()
	for run.durable == 0 {
		select {
		case err := <-done:
			b.Fatalf("processor stopped early: %v", err)
		case <-deadline.C:
			b.Fatalf("pipeline not done after 30 min: consumed %d of %d, pending %d", consumedCounter.Get()-c0, n, proc.Pending())
		case <-tick.C:
		}
		if run.consumed == 0 && consumedCounter.Get()-c0 >= uint64(n) {
			run.consumed = time.Since(start)
		}
		// The manifest offsets are a cheap test; Lag makes a Kafka client
		// per call, so it is asked only once everything looks durable.
		if sumOffsets(store.Offsets()) < int64(n) || proc.Pending() != 0 {
			continue
		}
		lag, err := proc.Lag(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if lag == 0 && proc.Pending() == 0 {
			run.durable = time.Since(start)
		}
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("processor: %v", err)
	}
	f1, fd1 := flushStats()
	run.flushes, run.flushing = f1-f0, fd1-fd0
	st := store.Stats()
	run.files = st.Files
	if rows := st.Rows; rows != int64(n) {
		b.Fatalf("history holds %d rows, want %d (every generated change is state-changing)", rows, n)
	}
	if got := state.Len(); got != d.onNow {
		b.Fatalf("live state holds %d resources, want %d", got, d.onNow)
	}
	b.StartTimer()
	return run
}

// BenchmarkPipeline produces NETWARDEN_BENCH_CHANGES change records
// (default 1,000,000) into the embedded broker before timing, then per
// iteration measures (a) a plain consumer reading them all (once before and
// once after (b); the mean is reported) and (b) a fresh processor with the
// default configuration applying them to a fresh live state and committing
// them all to a fresh Parquet history (until Lag()==0 && Pending()==0).
// ratio is pipeline changes/s over raw records/s; consumed_changes/s is the
// rate until every record was applied to the live state and buffered.
// NETWARDEN_BENCH_PIPELINE_CPUPROFILE=file profiles the pipeline phase only.
func BenchmarkPipeline(b *testing.B) {
	n := envInt(b, "NETWARDEN_BENCH_CHANGES", 1_000_000)
	ctx := b.Context()
	dir := b.TempDir()
	t0 := time.Now()
	d := generate(1, n)
	tGen := time.Since(t0)
	brk := startBroker(b, filepath.Join(dir, "kafka"))
	t0 = time.Now()
	produce(b, ctx, brk, d)
	b.Logf("setup: %d changes of %d resources generated in %v, produced in %v", n, d.nres, tGen.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

	pc := processor.Config{}
	pc.Defaults()
	var raw, pipe, consumed time.Duration
	iters := 0
	for b.Loop() {
		// The raw read runs before and after the pipeline, so that drift in
		// the machine's load hits both sides.
		r1, err := consumeRaw(ctx, brk, n, pc.PollRecords)
		if err != nil {
			b.Fatal(err)
		}
		p := runPipeline(b, ctx, brk, d, filepath.Join(dir, fmt.Sprintf("history-%d", iters)), fmt.Sprintf("bench-pipeline-%d", iters))
		r2, err := consumeRaw(ctx, brk, n, pc.PollRecords)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("run %d: raw %v and %v; pipeline: all consumed %v, all durable %v; %d history commits took %v (%d files)",
			iters, r1.Round(time.Millisecond), r2.Round(time.Millisecond), p.consumed.Round(time.Millisecond), p.durable.Round(time.Millisecond),
			p.flushes, p.flushing.Round(time.Millisecond), p.files)
		raw += (r1 + r2) / 2
		pipe += p.durable
		consumed += p.consumed
		iters++
	}
	total := float64(iters * n)
	rawRate, pipeRate := total/raw.Seconds(), total/pipe.Seconds()
	b.ReportMetric(pipeRate, "changes/s")
	b.ReportMetric(rawRate, "raw_records/s")
	b.ReportMetric(pipeRate/rawRate, "ratio")
	b.ReportMetric(total/consumed.Seconds(), "consumed_changes/s")
	b.ReportMetric(0, "ns/op")
}
