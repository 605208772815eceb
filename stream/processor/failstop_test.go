package processor_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
)

// breakingStore is the real history store whose directory breaks for
// exactly one commit: before the failAt-th commit (once later buffers are
// queued behind it) it replaces <dir>/changes by a plain file, so the
// store's own write fails for real, and restores it right after. Commits
// after that would succeed again, which is what made the old flusher move
// the manifest's offsets past the failed buffer.
type breakingStore struct {
	*history.Store
	t       *testing.T
	dir     string
	failAt  int
	queued  func() int // changes held by the processor, in memory
	mu      sync.Mutex
	commits int
	goodRow int64 // rows of the commits that succeeded
	failed  error
}

func (s *breakingStore) CommitGen(rows []change.Change, offsets map[int32]int64, onVisible func(int64)) (int64, error) {
	s.mu.Lock()
	s.commits++
	n := s.commits
	s.mu.Unlock()
	if n != s.failAt {
		gen, err := s.Store.CommitGen(rows, offsets, onVisible)
		if err == nil {
			s.mu.Lock()
			s.goodRow += int64(len(rows))
			s.mu.Unlock()
		}
		return gen, err
	}
	// Let the poll loop queue more buffers behind this one.
	deadline := time.Now().Add(10 * time.Second)
	for s.queued() < 3*len(rows) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	changes := filepath.Join(s.dir, "changes")
	if err := os.Rename(changes, changes+".away"); err != nil {
		s.t.Error(err)
	}
	if err := os.WriteFile(changes, nil, 0o644); err != nil {
		s.t.Error(err)
	}
	gen, err := s.Store.CommitGen(rows, offsets, onVisible)
	if err := os.Remove(changes); err != nil {
		s.t.Error(err)
	}
	if err := os.Rename(changes+".away", changes); err != nil {
		s.t.Error(err)
	}
	s.mu.Lock()
	s.failed = err
	s.mu.Unlock()
	if err == nil {
		s.t.Error("commit into a broken directory succeeded")
	}
	return gen, err
}

// TestFailedCommitStopsLaterCommits: a failed history commit stops the
// processor; no later buffer reaches the manifest or the group's Kafka
// offsets; a restart resumes at the last good manifest and ends with
// every record exactly once, at its topic position.
func TestFailedCommitStopsLaterCommits(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brk := startBroker(t, ctx, dir, 4, log)

	// A backlog of records that all change the state (distinct keys).
	const records = 3000
	prod, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	recs := make([]*kgo.Record, records)
	for i := range recs {
		k := resource.FromAddr(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})).Key()
		c := change.Change{Time: time.Unix(int64(1_700_000_000+i), 0), Op: change.Add, List: "L", Key: k}
		recs[i] = &kgo.Record{Topic: broker.TopicChanges, Key: []byte(k), Value: change.Append(nil, c)}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	hc := history.Config{Dir: filepath.Join(dir, "history")}
	hc.Defaults()
	store, err := history.Open(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pc := processor.Config{FlushInterval: 10 * time.Second, FlushRows: 100, PollRecords: 50}
	pc.Defaults()
	var proc *processor.Processor
	bs := &breakingStore{Store: store, t: t, dir: hc.Dir, failAt: 3, queued: func() int { return proc.Pending() }}
	proc = processor.New(pc, brk, bs, live.New(), log)
	errc := make(chan error, 1)
	go func() { errc <- proc.Run(ctx) }()
	select {
	case err = <-errc:
	case <-time.After(30 * time.Second):
		t.Fatal("processor did not stop after a failed commit")
	}
	if err == nil {
		t.Fatal("processor Run returned nil after a failed history commit")
	}
	if bs.failed == nil {
		t.Fatalf("no commit failed (%d commits); processor error: %v", bs.commits, err)
	}
	t.Logf("processor stopped: %v", err)

	// Every record changes the state, so the manifest's offsets must
	// cover exactly the stored rows: offsets past them are lost rows.
	offs := store.Offsets()
	var covered int64
	for _, o := range offs {
		covered += o
	}
	st := store.Stats()
	if st.Rows != bs.goodRow || covered != st.Rows {
		t.Fatalf("after the failed commit: manifest offsets cover %d records, store holds %d rows, %d rows were committed before the failure (a later buffer was committed)", covered, st.Rows, bs.goodRow)
	}
	if bs.goodRow >= records {
		t.Fatalf("the failure came after everything was stored (%d rows); the test proved nothing", bs.goodRow)
	}
	adm := kadm.NewClient(prod)
	fo, err := adm.FetchOffsets(ctx, pc.Group)
	if err != nil {
		t.Fatal(err)
	}
	fo.Each(func(o kadm.OffsetResponse) {
		if o.Topic == broker.TopicChanges && o.At > offs[o.Partition] {
			t.Errorf("group offset of partition %d is %d, past the manifest's %d", o.Partition, o.At, offs[o.Partition])
		}
	})

	// Restart on the same store, healthy now: all records, each once.
	proc2 := processor.New(pc, brk, store, live.New(), log)
	ctx2, cancel2 := context.WithCancel(ctx)
	errc2 := make(chan error, 1)
	go func() { errc2 <- proc2.Run(ctx2) }()
	deadline := time.Now().Add(30 * time.Second)
	for store.Stats().Rows+int64(proc2.Pending()) < records || proc2.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("restart: %d rows stored, %d pending, want %d", store.Stats().Rows, proc2.Pending(), records)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel2()
	if err := <-errc2; err != nil {
		t.Fatal(err)
	}
	seen := map[[2]int64]bool{}
	err = store.Scan(ctx, func(c change.Change) error {
		pos := [2]int64{int64(c.Partition), c.Offset}
		if !c.HasPosition() || seen[pos] {
			return fmt.Errorf("row %+v: position unknown or doubled", c)
		}
		seen[pos] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != records {
		t.Fatalf("history holds %d distinct positions, want %d", len(seen), records)
	}
	for part, end := range store.Offsets() {
		for o := int64(0); o < end; o++ {
			if !seen[[2]int64{int64(part), o}] {
				t.Fatalf("record %d/%d is not in history", part, o)
			}
		}
	}
}
