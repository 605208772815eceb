package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

func TestConfig(t *testing.T) {
	var c Config
	if err := c.Validate(); err == nil {
		t.Fatal("empty config validated")
	}
	c.Dir = "x"
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.RowGroupRows != 64*1024 || c.TargetFileRows != 8<<20 || c.CompactMinFiles != 4 ||
		c.CompactEvery != time.Minute || c.DeleteDelay != 2*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	bad := c
	bad.TargetFileRows = 10
	bad.CompactMinFiles = 1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "target file rows") || !strings.Contains(err.Error(), "compact min files") {
		t.Fatalf("Validate: %v", err)
	}
}

func scanAll(t testing.TB, s *Store) []change.Change {
	t.Helper()
	var out []change.Change
	if err := s.Scan(context.Background(), func(c change.Change) error { out = append(out, c); return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

// checkStore compares s with ref: lookups of single keys (present and
// absent), of key sets, a full scan and the IP prefix lengths.
func checkStore(t *testing.T, s *Store, ref *refStore, g *gen, rounds int) {
	t.Helper()
	for i := 0; i < rounds; i++ {
		var keys []string
		switch i % 4 {
		case 0: // one present key
			keys = []string{g.keys[g.rng.IntN(len(g.keys))]}
		case 1: // absent key
			keys = []string{g.randKey() + "\x00absent"}
		case 2: // several keys, duplicates, unsorted
			for j := 0; j < 6; j++ {
				keys = append(keys, g.keys[g.rng.IntN(len(g.keys))])
			}
			keys = append(keys, keys[0], g.randKey())
		case 3: // the covering keys of an IP or name
			k := g.keys[g.rng.IntN(len(g.keys))]
			r, err := resource.FromKey(k)
			if err != nil {
				t.Fatal(err)
			}
			b4, b6 := s.Bits()
			keys = r.Covering(b4, b6)
		}
		if err := sameChanges(collectLookup(t, s, keys), ref.lookup(keys)); err != nil {
			t.Fatalf("Lookup(%q): %v", keys, err)
		}
	}
	if err := sameChanges(scanAll(t, s), ref.scan()); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	var want prefixBits
	for _, c := range ref.all {
		want.addKey(c.Key)
	}
	w4, w6 := want.lists()
	g4, g6 := s.Bits()
	if !slices.Equal(w4, g4) || !slices.Equal(w6, g6) {
		t.Fatalf("Bits = %v %v, want %v %v", g4, g6, w4, w6)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rgRows int
		lists  int
		slow   bool
	}{
		{"tiny-row-groups", 64, 6, false},
		{"multi-page-row-groups", 3000, 6, false},
		{"many-lists", 3000, 300, false},
		{"generic-reader", 3000, 6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow {
				forceSlowPath = true
				defer func() { forceSlowPath = false }()
			}
			dir := t.TempDir()
			cfg := Config{Dir: dir, RowGroupRows: tc.rgRows}
			s := openTest(t, cfg)
			g := newGen(42, 3000, 7)
			for len(g.lists) < tc.lists {
				g.lists = append(g.lists, fmt.Sprintf("list-%03d", len(g.lists)))
			}
			var ref refStore
			offsets := map[int32]int64{}
			for i := 0; i < 10; i++ {
				b := g.batch(100 + g.rng.IntN(1200))
				p := int32(i % 3)
				offsets[p] += int64(len(b))
				if err := s.Commit(b, map[int32]int64{p: offsets[p]}); err != nil {
					t.Fatal(err)
				}
				ref.add(b)
			}
			if got := s.Offsets(); !mapsEqual(got, offsets) {
				t.Fatalf("Offsets = %v, want %v", got, offsets)
			}
			st := s.Stats()
			if st.Rows != int64(len(ref.all)) || st.Files != len(s.Files()) || len(st.Months) < 7 {
				t.Fatalf("Stats = %+v (ref %d rows)", st, len(ref.all))
			}
			checkStore(t, s, &ref, g, 200)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Lookup([]string{g.keys[0]}, func(change.Change) {}); !errors.Is(err, ErrClosed) {
				t.Fatalf("Lookup after Close: %v", err)
			}

			s = openTest(t, cfg)
			defer s.Close()
			if got := s.Offsets(); !mapsEqual(got, offsets) {
				t.Fatalf("reopened Offsets = %v, want %v", got, offsets)
			}
			checkStore(t, s, &ref, g, 100)
		})
	}
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestCommitOffsetsOnlyAndValidation(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir})
	defer s.Close()
	if err := s.Commit(nil, map[int32]int64{0: 10, 1: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(nil, map[int32]int64{1: 7}); err != nil {
		t.Fatal(err)
	}
	if got := s.Offsets(); !mapsEqual(got, map[int32]int64{0: 10, 1: 7}) {
		t.Fatalf("Offsets = %v", got)
	}
	gen := s.Generation()
	if err := s.Commit(nil, map[int32]int64{1: 7}); err != nil || s.Generation() != gen {
		t.Fatalf("no-op commit: %v, generation %d -> %d", err, gen, s.Generation())
	}
	if len(s.Files()) != 0 {
		t.Fatalf("files: %v", s.Files())
	}
	good := change.Change{Time: time.Now(), Op: change.Add, List: "l", Key: resource.Resource{Kind: resource.Domain, Name: "a.com"}.Key()}
	for _, bad := range []change.Change{
		{Time: good.Time, Op: 0, List: "l", Key: good.Key},
		{Time: good.Time, Op: change.Add, List: "", Key: good.Key},
		{Time: good.Time, Op: change.Add, List: "l", Key: "zzz"},
		{Time: good.Time, Op: change.Add, List: "l", Key: "i123"},
	} {
		if err := s.Commit([]change.Change{good, bad}, map[int32]int64{0: 99}); err == nil {
			t.Fatalf("Commit accepted %+v", bad)
		}
	}
	if got := s.Offsets(); got[0] != 10 || s.Stats().Rows != 0 {
		t.Fatalf("rejected commit changed state: %v %+v", got, s.Stats())
	}
	m, err := readManifest(dir)
	if err != nil || m.Generation != s.Generation() || m.Offsets[1] != 7 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
}

// TestTieOrder: changes of one key at the same microsecond keep their
// arrival order, within a commit, across commits and across compaction.
func TestTieOrder(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir, RowGroupRows: 2, CompactMinFiles: 2, DeleteDelay: time.Millisecond})
	defer s.Close()
	k := resource.Resource{Kind: resource.Domain, Name: "tie.example"}.Key()
	k2 := resource.Resource{Kind: resource.Domain, Name: "other.example"}.Key()
	ts := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var ref refStore
	for i := 0; i < 6; i++ {
		var b []change.Change
		for j := 0; j < 3; j++ {
			b = append(b, change.Change{Time: ts, Op: change.Op(1 + (i+j)%2), List: fmt.Sprintf("l%d-%d", i, j), Key: k})
			b = append(b, change.Change{Time: ts.Add(time.Duration(j-i) * time.Microsecond), Op: change.Add, List: "x", Key: k2})
		}
		if err := s.Commit(b, nil); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	check := func() {
		t.Helper()
		if err := sameChanges(collectLookup(t, s, []string{k, k2}), ref.lookup([]string{k, k2})); err != nil {
			t.Fatal(err)
		}
		if err := sameChanges(scanAll(t, s), ref.scan()); err != nil {
			t.Fatal(err)
		}
	}
	check()
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Files()); n != 1 {
		t.Fatalf("%d files after compaction", n)
	}
	check()
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir})
	defer s.Close()
	if s2, err := Open(Config{Dir: dir}, nil); err == nil {
		s2.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
}

// TestCrashBeforeManifest simulates a crash after a commit wrote its data
// files but before the manifest rename, plus assorted leftovers.
func TestCrashBeforeManifest(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, RowGroupRows: 100}
	s := openTest(t, cfg)
	g := newGen(7, 500, 4)
	var ref refStore
	for i := 0; i < 3; i++ {
		b := g.batch(500)
		if err := s.Commit(b, map[int32]int64{0: int64(i+1) * 500}); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	liveFiles := s.Files()
	s.crashHook = func(point string) bool { return point == "commit-before-manifest" }
	if err := s.Commit(g.batch(700), map[int32]int64{0: 9999, 1: 1}); !errors.Is(err, errCrash) {
		t.Fatalf("crash commit: %v", err)
	}
	s.crashHook = nil
	// The crashed commit's files are on disk, unreferenced.
	var onDisk []string
	filepath.WalkDir(filepath.Join(dir, changesDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			onDisk = append(onDisk, p)
		}
		return nil
	})
	if len(onDisk) <= len(liveFiles) {
		t.Fatalf("crash left no files: %v", onDisk)
	}
	// More leftovers: a data file being written, a stray file in a new
	// month, a half-written manifest.
	for p, body := range map[string]string{
		filepath.Join(dir, changesDir, "month=2025-01", "g0000000009-aaaa.parquet.tmp"): "partial",
		filepath.Join(dir, changesDir, "month=2031-07", "stray.parquet"):                "PAR1junk",
		filepath.Join(dir, manifestName+".tmp"):                                         `{"version":1,"generation":99,"files":[`,
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, cfg)
	defer s.Close()
	if got := s.Offsets(); !mapsEqual(got, map[int32]int64{0: 1500}) {
		t.Fatalf("Offsets after crash = %v", got)
	}
	if !slices.Equal(s.Files(), liveFiles) {
		t.Fatalf("Files after crash = %v, want %v", s.Files(), liveFiles)
	}
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "LOCK" && d.Name() != manifestName {
			if strings.HasSuffix(p, crcSuffix) { // a live file's checksums
				if _, err := os.Stat(strings.TrimSuffix(p, crcSuffix)); err != nil {
					t.Errorf("checksums of a removed file left: %s", p)
				}
				return nil
			}
			left = append(left, p)
		}
		return nil
	})
	slices.Sort(left)
	want := slices.Clone(liveFiles)
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("files on disk after Open:\n%s\nwant:\n%s", strings.Join(left, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(dir, changesDir, "month=2031-07")); !os.IsNotExist(err) {
		t.Fatalf("empty stray month dir not removed: %v", err)
	}
	checkStore(t, s, &ref, g, 100)

	// And the store goes on committing.
	b := g.batch(300)
	if err := s.Commit(b, map[int32]int64{0: 1800}); err != nil {
		t.Fatal(err)
	}
	ref.add(b)
	checkStore(t, s, &ref, g, 50)
}

func TestOpenRejectsDamage(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir})
	g := newGen(3, 100, 1)
	if err := s.Commit(g.batch(100), nil); err != nil {
		t.Fatal(err)
	}
	f := s.Files()[0]
	s.Close()
	// A live file that lost its tail must not be silently accepted.
	b, _ := os.ReadFile(f)
	if err := os.WriteFile(f, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(Config{Dir: dir}, nil); err == nil {
		s.Close()
		t.Fatal("Open accepted a truncated file")
	}
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(Config{Dir: dir}, nil); err == nil {
		s.Close()
		t.Fatal("Open accepted a missing file")
	}
}

func countFiles(t *testing.T, paths []string) (exist int) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			exist++
		}
	}
	return exist
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, RowGroupRows: 500, TargetFileRows: 4000, CompactMinFiles: 4, DeleteDelay: 2 * time.Second}
	s := openTest(t, cfg)
	defer func() { s.Close() }()
	g := newGen(99, 1500, 3)
	var ref refStore
	for i := 0; i < 40; i++ {
		b := g.batch(100 + g.rng.IntN(400))
		if err := s.Commit(b, map[int32]int64{0: int64(i)}); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	before := s.Files()
	stBefore := s.Stats()
	checkStore(t, s, &ref, g, 50)

	// Readers and a writer run while compacting. The writer's rows use
	// other keys, so the readers' expectations do not move.
	g2 := newGen(100, 300, 3)
	g2.keys = slices.DeleteFunc(g2.keys, func(k string) bool { return slices.Contains(g.keys, k) })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var lookups atomic.Int64
	errc := make(chan error, 8)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			keys := g.keys
			for i := 0; ctx.Err() == nil; i++ {
				k := keys[(i*31+w*7)%len(keys)]
				var got []change.Change
				if err := s.Lookup([]string{k}, func(c change.Change) { got = append(got, c) }); err != nil {
					errc <- err
					return
				}
				if err := sameChanges(got, ref.lookup([]string{k})); err != nil {
					errc <- fmt.Errorf("concurrent Lookup: %w", err)
					return
				}
				lookups.Add(1)
			}
		}(w)
	}
	wg.Add(1)
	go func() { // a scan, restricted to the first key space
		defer wg.Done()
		inG := map[string]bool{}
		for _, k := range g.keys {
			inG[k] = true
		}
		var got []change.Change
		err := s.Scan(ctx, func(c change.Change) error {
			if inG[c.Key] {
				got = append(got, c)
			}
			return nil
		})
		if err == nil {
			err = sameChanges(got, ref.scan())
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("concurrent Scan: %w", err)
		}
	}()
	var ref2 refStore
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			b := g2.batch(50)
			if err := s.Commit(b, map[int32]int64{1: int64(i + 1)}); err != nil {
				errc <- err
				return
			}
			ref2.add(b)
		}
	}()
	compactStart := time.Now()
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Replaced files stay for DeleteDelay (checkable only if compaction
	// was quicker than that, which it is unless the machine crawls).
	if time.Since(compactStart) < cfg.DeleteDelay {
		if n := countFiles(t, before); n != len(before) {
			t.Fatalf("%d of %d replaced files deleted before DeleteDelay", len(before)-n, len(before))
		}
	} else {
		t.Logf("compaction took %v, longer than DeleteDelay: not checking early deletion", time.Since(compactStart))
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("%d lookups during compaction", lookups.Load())

	st := s.Stats()
	if st.Compactions == 0 || st.Files >= stBefore.Files || st.CompactedFiles < 4 {
		t.Fatalf("compaction did not merge: before %+v after %+v", stBefore, st)
	}
	for m, ms := range st.Months {
		t.Logf("month %s: %d files %d rows", m, ms.Files, ms.Rows)
	}
	// Then they go.
	deadline := time.Now().Add(10 * time.Second)
	for {
		live := map[string]bool{}
		for _, f := range s.Files() {
			live[f] = true
		}
		var old []string
		for _, f := range before {
			if !live[f] {
				old = append(old, f)
			}
		}
		if countFiles(t, old) == 0 && s.Stats().PendingDeletes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replaced files not deleted: %d left, %d pending", countFiles(t, old), s.Stats().PendingDeletes)
		}
		time.Sleep(20 * time.Millisecond)
	}

	all := refStore{all: append(slices.Clone(ref.all), ref2.all...)}
	// Arrival order across the two writers is commit order; ties between
	// their keys cannot occur (disjoint key spaces), so the merged
	// reference sorts the same.
	if err := sameChanges(scanAll(t, s), all.scan()); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s, &all, g, 100)
	if got := s.Offsets(); got[0] != 39 || got[1] != 10 {
		t.Fatalf("Offsets = %v", got)
	}
	// The writer's files made new runs; after compacting them, another
	// compaction has nothing to do.
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	for m, ms := range s.Stats().Months {
		if ms.Files > 2 {
			t.Fatalf("month %s: %d files after compaction", m, ms.Files)
		}
	}
	checkStore(t, s, &all, g, 50)
	gen := s.Generation()
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Generation() != gen {
		t.Fatalf("idle compaction wrote a manifest")
	}

	s.Close()
	s = openTest(t, cfg)
	checkStore(t, s, &all, g, 100)
}

// TestCompactionKeepsFilesOfReaders: a replaced file is not deleted while a
// reader that started before the swap still reads it, even with no delay.
func TestCompactionKeepsFilesOfReaders(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir, RowGroupRows: 50, TargetFileRows: 10000, CompactMinFiles: 2, DeleteDelay: time.Nanosecond})
	defer s.Close()
	g := newGen(5, 400, 1)
	var ref refStore
	for i := 0; i < 5; i++ {
		b := g.batch(300)
		if err := s.Commit(b, nil); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	before := s.Files()
	started, resume := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		var got []change.Change
		n := 0
		err := s.Scan(context.Background(), func(c change.Change) error {
			if n == 10 {
				close(started)
				<-resume
			}
			n++
			got = append(got, c)
			return nil
		})
		if err == nil {
			err = sameChanges(got, ref.scan())
		}
		done <- err
	}()
	<-started
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(s.Files()) != len(s.Stats().Months) {
		t.Fatalf("files after compaction: %v", s.Files())
	}
	time.Sleep(20 * time.Millisecond)
	if n := countFiles(t, before); n != len(before) {
		t.Fatalf("replaced files deleted under a reader: %d of %d left", n, len(before))
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for countFiles(t, before) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("replaced files not deleted after the reader finished")
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkStore(t, s, &ref, g, 50)
}

func TestCompactionCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, RowGroupRows: 50, TargetFileRows: 10000, CompactMinFiles: 3}
	s := openTest(t, cfg)
	g := newGen(11, 300, 2)
	var ref refStore
	for i := 0; i < 6; i++ {
		b := g.batch(200)
		if err := s.Commit(b, map[int32]int64{0: int64(i)}); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	files := s.Files()
	s.crashHook = func(point string) bool { return point == "compact-before-manifest" }
	if err := s.Compact(context.Background()); !errors.Is(err, errCrash) {
		t.Fatalf("Compact: %v", err)
	}
	s.crashHook = nil
	if !slices.Equal(s.Files(), files) {
		t.Fatal("crashed compaction changed the file list")
	}
	s.Close()
	s = openTest(t, cfg)
	defer s.Close()
	if !slices.Equal(s.Files(), files) {
		t.Fatal("files changed across the crash")
	}
	n := 0
	filepath.WalkDir(filepath.Join(dir, changesDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n != 2*len(files) { // each with its checksums
		t.Fatalf("%d files on disk, %d live: compaction output not cleaned", n, len(files))
	}
	checkStore(t, s, &ref, g, 50)
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s, &ref, g, 50)
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir, RowGroupRows: 50, TargetFileRows: 10000, CompactMinFiles: 2, CompactEvery: 10 * time.Millisecond, DeleteDelay: time.Millisecond})
	defer s.Close()
	g := newGen(13, 100, 1)
	var ref refStore
	for i := 0; i < 4; i++ {
		b := g.batch(100)
		if err := s.Commit(b, nil); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Compactions == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not compact")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	checkStore(t, s, &ref, g, 20)
}

func TestScanStopsOnError(t *testing.T) {
	s := openTest(t, Config{Dir: t.TempDir()})
	defer s.Close()
	g := newGen(17, 100, 2)
	if err := s.Commit(g.batch(500), nil); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Scan(context.Background(), func(change.Change) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) || n != 10 {
		t.Fatalf("Scan = %v after %d rows", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Scan(ctx, func(change.Change) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan with canceled ctx = %v", err)
	}
}
