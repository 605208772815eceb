package processor_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
)

// TestReadsDuringFlushesSeeEachChangeOnce publishes alternating add/rem
// changes for a few keys while readers query their history; a change seen
// twice or skipped breaks the add/rem alternation or the time order.
func TestReadsDuringFlushesSeeEachChangeOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brk, store, proc := startPipeline(t, ctx)

	keys := make([]string, 4)
	for i := range keys {
		keys[i] = resource.FromAddr(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})).Key()
	}
	const perKey = 300
	var done atomic.Bool
	check := func(k string, cs []change.Change, final bool) {
		t.Helper()
		for i, c := range cs {
			wantOp := change.Add
			if i%2 == 1 {
				wantOp = change.Rem
			}
			if c.Op != wantOp || c.Time.Unix() != int64(1000+i) {
				t.Errorf("history of key %x: item %d is %v at %d, want %v at %d (a change doubled or missing)", k, i, c.Op, c.Time.Unix(), wantOp, 1000+i)
				return
			}
		}
		if final && len(cs) != perKey {
			t.Errorf("final history of key %x has %d changes, want %d", k, len(cs), perKey)
		}
	}
	var readers sync.WaitGroup
	var reads atomic.Int64
	for r := 0; r < 4; r++ {
		readers.Go(func() {
			for !done.Load() {
				for _, k := range keys {
					cs, err := proc.Changes([]string{k})
					if err != nil {
						t.Error(err)
						return
					}
					check(k, cs, false)
					reads.Add(1)
				}
			}
		})
	}
	prod, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < perKey; i++ {
		op := change.Add
		if i%2 == 1 {
			op = change.Rem
		}
		for _, k := range keys {
			c := change.Change{Time: time.Unix(int64(1000+i), 0), Op: op, List: "L", Key: k}
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(k), Value: change.Append(nil, c)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitSettled(t, ctx, proc)
	done.Store(true)
	readers.Wait()
	for _, k := range keys {
		cs, err := proc.Changes([]string{k})
		if err != nil {
			t.Fatal(err)
		}
		check(k, cs, true)
	}
	st := store.Stats()
	t.Logf("%d reads during ingest; %d history rows in %d files after %d compactions", reads.Load(), st.Rows, st.Files, st.Compactions)
	if st.Rows != int64(len(keys)*perKey) {
		t.Errorf("store has %d rows, want %d", st.Rows, len(keys)*perKey)
	}
}

// startBroker starts an embedded broker (topic with partitions
// partitions) under dir, closed when the test ends.
func startBroker(t *testing.T, ctx context.Context, dir string, partitions int, log *slog.Logger) *broker.Broker {
	t.Helper()
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = partitions
	brk, err := broker.Start(ctx, bc, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brk.Close() })
	return brk
}

// startPipeline runs a broker, a store that compacts often and a
// processor that flushes small buffers, until the test ends; it returns
// once the processor is ready. Concurrent reads meet many buffers,
// flushes and compactions.
func startPipeline(t *testing.T, ctx context.Context) (*broker.Broker, *history.Store, *processor.Processor) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	brk := startBroker(t, ctx, dir, 4, log)
	hc := history.Config{Dir: filepath.Join(dir, "history"), CompactMinFiles: 3, CompactEvery: 50 * time.Millisecond, DeleteDelay: time.Millisecond}
	hc.Defaults()
	store, err := history.Open(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	pc := processor.Config{FlushInterval: 10 * time.Millisecond, FlushRows: 7, PollRecords: 5}
	pc.Defaults()
	proc := processor.New(pc, brk, store, live.New(), log)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { // before the broker's cleanup (registered first)
		cancel()
		wg.Wait()
		store.Close()
	})
	wg.Go(func() {
		if err := proc.Run(ctx); err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	wg.Go(func() { store.Run(ctx) }) // compaction swaps files under the readers too
	<-proc.Ready()
	return brk, store, proc
}

// waitSettled waits until the processor consumed everything produced and
// flushed every buffer.
func waitSettled(t *testing.T, ctx context.Context, proc *processor.Processor) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lag, err := proc.Lag(ctx)
		if err == nil && lag == 0 && proc.Pending() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("pipeline did not settle")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
