package check_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/check"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
)

func TestCheckFindsDivergence(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hc := history.Config{Dir: t.TempDir()}
	hc.Defaults()
	store, err := history.Open(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var rows []change.Change
	for i := 0; i < 500; i++ {
		k := resource.FromAddr(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)})).Key()
		rows = append(rows, change.Change{Time: time.Unix(int64(1000+i), 0), Op: change.Add, List: "A", Key: k})
		if i%3 == 0 {
			rows = append(rows, change.Change{Time: time.Unix(int64(5000+i), 0), Op: change.Rem, List: "A", Key: k})
		}
	}
	if err := store.Commit(rows, map[int32]int64{0: int64(len(rows))}); err != nil {
		t.Fatal(err)
	}
	state := live.New()
	if _, noops, err := processor.Rebuild(context.Background(), store, state); err != nil || noops != 0 {
		t.Fatalf("rebuild: %d no-ops, %v", noops, err)
	}
	pc := processor.Config{}
	pc.Defaults()
	proc := processor.New(pc, nil, store, state, log)
	job := check.NewJob(store, proc, state, 0, log)

	res, err := job.Check(context.Background())
	if err != nil || res.Mismatches != 0 || res.Resources != 333 || res.Changes != int64(len(rows)) {
		t.Fatalf("consistent: %+v %v", res, err)
	}
	// Live state drifts from history in three ways: an extra list, a
	// missing resource, a resource history never had.
	state.Apply([]byte(rows[1].Key), []byte("B"), change.Add)
	state.Apply([]byte(rows[2].Key), []byte("A"), change.Rem)
	state.Apply([]byte(resource.FromAddr(netip.MustParseAddr("192.0.2.1")).Key()), []byte("A"), change.Add)
	res, err = job.Check(context.Background())
	if err != nil || res.Mismatches != 3 || len(res.Samples) != 3 {
		t.Fatalf("drifted: %+v %v", res, err)
	}
}

// TestCheckListsDamagedFiles: a byte flipped in a stored page makes the
// check list the file (the fold itself may or may not notice).
func TestCheckListsDamagedFiles(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hc := history.Config{Dir: t.TempDir()}
	hc.Defaults()
	store, err := history.Open(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var rows []change.Change
	for i := 0; i < 300; i++ {
		k := resource.FromAddr(netip.AddrFrom4([4]byte{10, 3, byte(i / 256), byte(i)})).Key()
		rows = append(rows, change.Change{Time: time.Unix(int64(1000+i), 0), Op: change.Add, List: "A", Key: k, Partition: 0, Offset: int64(i)})
	}
	if err := store.Commit(rows, map[int32]int64{0: int64(len(rows))}); err != nil {
		t.Fatal(err)
	}
	state := live.New()
	if _, _, err := processor.Rebuild(context.Background(), store, state); err != nil {
		t.Fatal(err)
	}
	pc := processor.Config{}
	pc.Defaults()
	job := check.NewJob(store, processor.New(pc, nil, store, state, log), state, 0, log)
	job.SetVerifier(store)
	res, err := job.Check(context.Background())
	if err != nil || res.Files == nil || res.Files.Files != 1 || len(res.Files.Damaged) != 0 {
		t.Fatalf("clean: %+v %v", res.Files, err)
	}
	path := store.Files()[0]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 100); err != nil { // inside the first page
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, 100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res, _ = job.Check(context.Background())
	if res.Files == nil || len(res.Files.Damaged) != 1 || res.Files.Damaged[0].Path != path {
		t.Fatalf("damaged: %+v", res.Files)
	}
}
