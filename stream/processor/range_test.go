package processor_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// TestRangeReadsDuringFlushesSeeEachChangeOnce is the range-read twin of
// TestReadsDuringFlushesSeeEachChangeOnce: readers ask for every change
// inside 10.0.0.0/24 while alternating add/rem changes of hosts in it
// (and of one host outside) stream through buffers, flushes and
// compactions; a change seen twice or skipped breaks a key's alternation.
func TestRangeReadsDuringFlushesSeeEachChangeOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brk, _, proc := startPipeline(t, ctx)

	var keys []string // inside 10.0.0.0/24: two hosts and a /28
	for _, s := range []string{"10.0.0.0", "10.0.0.200", "10.0.0.16/28", "10.0.1.0"} {
		r, err := resource.ParseIP(s)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, r.Key())
	}
	outside := keys[3]
	q, _ := resource.ParseIP("10.0.0.0/24")
	ranges := q.InsideRanges()
	const perKey = 200
	check := func(cs []change.Change, final bool) {
		t.Helper()
		n := map[string]int{}
		for _, c := range cs {
			if c.Key == outside {
				t.Errorf("range read returned a key outside the range")
				return
			}
			i := n[c.Key]
			n[c.Key]++
			wantOp := change.Add
			if i%2 == 1 {
				wantOp = change.Rem
			}
			if c.Op != wantOp || c.Time.Unix() != int64(1000+i) {
				t.Errorf("key %x: item %d is %v at %d, want %v at %d (a change doubled or missing)", c.Key, i, c.Op, c.Time.Unix(), wantOp, 1000+i)
				return
			}
		}
		if final {
			for _, k := range keys[:3] {
				if n[k] != perKey {
					t.Errorf("final range read: key %x has %d changes, want %d", k, n[k], perKey)
				}
			}
		}
	}
	var done atomic.Bool
	var readers sync.WaitGroup
	var reads atomic.Int64
	for r := 0; r < 2; r++ {
		readers.Go(func() {
			for !done.Load() {
				cs, complete, err := proc.ChangesInRange(ranges, 1<<20)
				if err != nil || !complete {
					t.Errorf("ChangesInRange: complete=%v err=%v", complete, err)
					return
				}
				check(cs, false)
				reads.Add(1)
				time.Sleep(time.Millisecond)
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
	cs, complete, err := proc.ChangesInRange(ranges, 3*perKey)
	if err != nil || !complete {
		t.Fatalf("final: complete=%v err=%v", complete, err)
	}
	check(cs, true)
	if _, complete, err := proc.ChangesInRange(ranges, 3*perKey-1); err != nil || complete {
		t.Errorf("limit one below the %d changes: complete=%v err=%v, want incomplete", 3*perKey, complete, err)
	}
	t.Logf("%d range reads during ingest", reads.Load())
	if reads.Load() == 0 {
		t.Error("no range read ran during ingest")
	}
}
