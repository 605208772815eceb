package history

import (
	"runtime"

	"golang.org/x/sync/errgroup"

	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// ErrClosed is returned by methods of a closed Store.
var ErrClosed = errors.New("history store closed")

// Store is the history. See the package documentation for the contract.
type Store struct {
	cfg  Config
	log  *slog.Logger
	lock *os.File

	commitMu  sync.Mutex // serializes manifest writes
	compactMu sync.Mutex // serializes compactions

	mu     sync.RWMutex // guards snap and closed
	snap   *snapshot
	closed bool

	pendMu  sync.Mutex
	pending map[*pfile]bool // retired files not yet deleted

	compactions    atomic.Int64
	compactedFiles atomic.Int64
	compactedRows  atomic.Int64

	// crashHook, if set, is called at named points of Commit and Compact;
	// returning true makes them stop right there as if the process had
	// died (nothing is cleaned up). For tests.
	crashHook func(point string) bool
}

var errCrash = errors.New("history: simulated crash")

// snapshot is an immutable view of the committed state. It holds a
// reference on each of its files; readers hold a reference on it.
type snapshot struct {
	gen     int64
	offsets map[int32]int64
	files   []*pfile // manifest (arrival) order
	bits    prefixBits
	refs    atomic.Int64
}

func newSnapshot(gen int64, offsets map[int32]int64, files []*pfile) *snapshot {
	sn := &snapshot{gen: gen, offsets: offsets, files: files}
	for _, f := range files {
		f.ref()
		sn.bits.union(f.bits)
	}
	sn.refs.Store(1) // the Store's reference
	return sn
}

func (sn *snapshot) release() {
	if sn.refs.Add(-1) != 0 {
		return
	}
	for _, f := range sn.files {
		f.unref()
	}
}

func (sn *snapshot) manifest() manifest {
	m := manifest{Version: manifestVersion, Generation: sn.gen, Offsets: sn.offsets, Files: make([]manifestFile, len(sn.files))}
	for i, f := range sn.files {
		m.Files[i] = f.mf
	}
	return m
}

// acquire returns the current snapshot with a reference the caller must release.
func (s *Store) acquire() (*snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.snap.refs.Add(1)
	return s.snap, nil
}

// install makes sn current. onVisible, if not nil, runs while no reader
// can acquire a snapshot: readers see sn only after it returns.
func (s *Store) install(sn *snapshot, onVisible func(gen int64)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sn.release()
		return ErrClosed
	}
	old := s.snap
	s.snap = sn
	if onVisible != nil {
		onVisible(sn.gen)
	}
	s.mu.Unlock()
	old.release()
	return nil
}

// Open opens or creates the history in cfg.Dir (after cfg.Defaults). It
// loads the manifest, deletes every file under Dir/changes the manifest
// does not name (leftovers of interrupted commits and compactions) and
// loads the index of every live file.
func Open(cfg Config, log *slog.Logger) (_ *Store, err error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.Dir
	if err := os.MkdirAll(filepath.Join(dir, changesDir), 0o755); err != nil {
		return nil, fmt.Errorf("open history %q: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("open history %q: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open history %q: %w", dir, err)
	}
	var files []*pfile
	defer func() {
		if err != nil {
			for _, f := range files {
				_ = f.f.Close()
			}
			_ = lock.Close()
		}
	}()
	m, err := readManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("open history %q: %w", dir, err)
	}
	if err := removeOrphans(dir, m, log); err != nil {
		return nil, fmt.Errorf("open history %q: %w", dir, err)
	}
	for _, mf := range m.Files {
		f, err := openPFile(dir, mf)
		if err != nil {
			return nil, fmt.Errorf("open history %q: %w", dir, err)
		}
		files = append(files, f)
	}
	s := &Store{cfg: cfg, log: log, lock: lock, pending: map[*pfile]bool{}}
	s.snap = newSnapshot(m.Generation, m.Offsets, files)
	st := s.Stats()
	log.Info("history: opened", "dir", dir, "generation", m.Generation, "files", st.Files,
		"rows", st.Rows, "bytes", st.Bytes, "bloom_bytes", st.BloomBytes, "index_bytes", st.IndexBytes)
	return s, nil
}

// removeOrphans deletes manifest.json.tmp and every file under
// Dir/changes that m does not name, and then empty month directories.
func removeOrphans(dir string, m manifest, log *slog.Logger) error {
	live := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		live[f.Path] = true
		live[f.Path+crcSuffix] = true
	}
	tmp := filepath.Join(dir, manifestName+".tmp")
	if err := os.Remove(tmp); err == nil {
		log.Warn("history: removed unfinished manifest", "path", tmp)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	root := filepath.Join(dir, changesDir)
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root {
				dirs = append(dirs, path)
			}
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if live[filepath.ToSlash(rel)] {
			return nil
		}
		log.Warn("history: removing file not in manifest", "path", path)
		return os.Remove(path)
	})
	if err != nil {
		return err
	}
	// Deepest first; non-empty directories stay.
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		_ = os.Remove(d)
	}
	return syncDir(root)
}

// Commit durably appends rows (in arrival order) and records offsets (the
// next offset to consume per partition, merged into the previous ones). It
// returns after the new manifest is durable; on error the previous state
// stays in force unless the error says the manifest rename happened.
// Commit calls are serialized.
func (s *Store) Commit(rows []change.Change, offsets map[int32]int64) error {
	_, err := s.CommitGen(rows, offsets, nil)
	return err
}

// CommitGen is Commit that also returns the generation that made the rows
// visible: every later state (LookupGen's generation >= it) holds them.
// onVisible, if not nil, is called with that generation at the instant
// the rows become visible, before any reader can see them; it must be
// quick and must not call back into the store. It is how a caller that
// serves not-yet-committed rows from memory hands them over without a
// gap or a double.
func (s *Store) CommitGen(rows []change.Change, offsets map[int32]int64, onVisible func(gen int64)) (int64, error) {
	for i := range rows {
		if err := checkChange(&rows[i]); err != nil {
			return 0, fmt.Errorf("commit history: row %d: %w", i, err)
		}
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	cur, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer cur.release()
	gen, err := s.commit(cur, rows, offsets, onVisible)
	if err != nil {
		return 0, err
	}
	return gen, nil
}

func (s *Store) commit(cur *snapshot, rows []change.Change, offsets map[int32]int64, onVisible func(int64)) (int64, error) {

	newOffsets := maps.Clone(cur.offsets)
	changed := false
	for p, o := range offsets {
		if old, ok := newOffsets[p]; !ok || old != o {
			if ok && o < old {
				s.log.Warn("history: offset moves backwards", "partition", p, "from", old, "to", o)
			}
			newOffsets[p] = o
			changed = true
		}
	}
	if len(rows) == 0 && !changed {
		if onVisible != nil {
			onVisible(cur.gen)
		}
		return cur.gen, nil
	}
	gen := cur.gen + 1

	// Split by month, keeping arrival order, then sort each month stably.
	byMonth := map[string][]row{}
	for i := range rows {
		c := &rows[i]
		us := c.Time.UnixMicro()
		m := monthOf(us)
		byMonth[m] = append(byMonth[m], row{key: c.Key, list: c.List, ts: us, seq: int64(i), op: c.Op, part: c.Partition, off: c.Offset})
	}
	months := slices.Sorted(maps.Keys(byMonth))
	var added []*pfile
	removeAdded := func() {
		for _, f := range added {
			_ = f.f.Close()
			removeData(f.abs)
		}
	}
	// Months are independent files: sort and write them concurrently
	// (a backlog's buffer spans many months). added keeps month order.
	written := make([]*pfile, len(months))
	var wg errgroup.Group
	wg.SetLimit(runtime.GOMAXPROCS(0))
	for i, m := range months {
		wg.Go(func() error {
			rs := byMonth[m]
			// Stable by (key, ts): arrival order breaks ties.
			slices.SortFunc(rs, func(a, b row) int {
				if c := cmpRow(&a, &b); c != 0 {
					return c
				}
				return cmp.Compare(a.seq, b.seq)
			})
			f, err := s.writeFile(m, fmt.Sprintf("g%010d", gen), rs)
			written[i] = f
			return err
		})
	}
	werr := wg.Wait()
	for _, f := range written {
		if f != nil {
			added = append(added, f)
		}
	}
	if werr != nil {
		removeAdded()
		return 0, fmt.Errorf("commit history %q: %w", s.cfg.Dir, werr)
	}
	if err := s.syncMonthDirs(months); err != nil {
		removeAdded()
		return 0, fmt.Errorf("commit history %q: %w", s.cfg.Dir, err)
	}
	if s.crash("commit-before-manifest") {
		return 0, errCrash
	}
	files := append(slices.Clip(cur.files), added...)
	sn := newSnapshot(gen, newOffsets, files)
	if err := s.writeManifest(sn, removeAdded, onVisible); err != nil {
		return 0, fmt.Errorf("commit history %q: %w", s.cfg.Dir, err)
	}
	return gen, nil
}

// writeManifest writes sn's manifest and installs sn. If the manifest was
// not renamed, it releases sn and calls undo. If it was renamed but the
// rename may not be durable, it installs sn and returns the error.
func (s *Store) writeManifest(sn *snapshot, undo func(), onVisible func(int64)) error {
	renamed, err := writeManifest(s.cfg.Dir, sn.manifest())
	if err != nil && !renamed {
		sn.release()
		undo()
		return err
	}
	if ierr := s.install(sn, onVisible); ierr != nil {
		return ierr
	}
	if err != nil {
		s.log.Error("history: manifest renamed but maybe not durable", "err", err)
		return fmt.Errorf("manifest renamed, durability unknown: %w", err)
	}
	return nil
}

func (s *Store) crash(point string) bool { return s.crashHook != nil && s.crashHook(point) }

// writeFile writes sorted rows of one month into a new data file and opens it.
func (s *Store) writeFile(month, prefix string, rs []row) (*pfile, error) {
	w, err := newPQWriter(s.cfg.Dir, month, uniqueName(prefix), s.cfg.RowGroupRows, flushCodec)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if err := w.add(r); err != nil {
			w.abort()
			return nil, err
		}
	}
	mf, err := w.finish()
	if err != nil {
		return nil, err
	}
	f, err := openPFile(s.cfg.Dir, mf)
	if err != nil {
		removeData(w.final)
		return nil, err
	}
	return f, nil
}

func (s *Store) syncMonthDirs(months []string) error {
	for _, m := range months {
		d := filepath.Join(s.cfg.Dir, filepath.FromSlash(monthDir(m)))
		if err := syncDir(d); err != nil {
			return fmt.Errorf("sync %q: %w", d, err)
		}
	}
	return nil
}

func checkChange(c *change.Change) error {
	if c.Op != change.Add && c.Op != change.Rem {
		return fmt.Errorf("bad op %d", c.Op)
	}
	if c.List == "" {
		return errors.New("empty list name")
	}
	if _, err := resource.FromKey(c.Key); err != nil {
		return err
	}
	if c.Key[0] != 'i' && len(c.Key) < 2 {
		return errors.New("empty resource name")
	}
	return nil
}

// Offsets returns the next offset to consume per partition, as committed.
func (s *Store) Offsets() map[int32]int64 {
	sn, err := s.acquire()
	if err != nil {
		return map[int32]int64{}
	}
	defer sn.release()
	return maps.Clone(sn.offsets)
}

// Generation returns the generation of the committed manifest.
func (s *Store) Generation() int64 {
	sn, err := s.acquire()
	if err != nil {
		return 0
	}
	defer sn.release()
	return sn.gen
}

// Bits returns the distinct prefix lengths of the IP keys in history:
// IPv4 lengths (0..32) and IPv6 lengths (0..128), ascending. Pass them to
// resource.Resource.Covering.
func (s *Store) Bits() (bits4, bits6 []uint8) {
	sn, err := s.acquire()
	if err != nil {
		return nil, nil
	}
	defer sn.release()
	return sn.bits.lists()
}

// Files returns the absolute paths of the live data files, in manifest
// order. A file dropped by compaction stays readable for DeleteDelay.
func (s *Store) Files() []string {
	sn, err := s.acquire()
	if err != nil {
		return nil
	}
	defer sn.release()
	out := make([]string, len(sn.files))
	for i, f := range sn.files {
		out[i] = f.abs
	}
	return out
}

// Stats describes the store.
type Stats struct {
	Generation int64
	Files      int
	Rows       int64
	Bytes      int64
	RowGroups  int
	// BloomBytes is the memory held by the in-memory key bloom filters,
	// IndexBytes that of the in-memory page index (about).
	BloomBytes int64
	IndexBytes int64
	Months     map[string]MonthStats
	// Compactions counts compaction runs since Open; CompactedFiles and
	// CompactedRows the files and rows they rewrote.
	Compactions    int64
	CompactedFiles int64
	CompactedRows  int64
	// PendingDeletes counts replaced files waiting for DeleteDelay or readers.
	PendingDeletes int
}

// MonthStats describes the files of one month.
type MonthStats struct {
	Files int
	Rows  int64
	Bytes int64
}

// Stats returns current statistics.
func (s *Store) Stats() Stats {
	st := Stats{
		Months:         map[string]MonthStats{},
		Compactions:    s.compactions.Load(),
		CompactedFiles: s.compactedFiles.Load(),
		CompactedRows:  s.compactedRows.Load(),
	}
	s.pendMu.Lock()
	st.PendingDeletes = len(s.pending)
	s.pendMu.Unlock()
	sn, err := s.acquire()
	if err != nil {
		return st
	}
	defer sn.release()
	st.Generation = sn.gen
	for _, f := range sn.files {
		st.Files++
		st.Rows += f.mf.Rows
		st.Bytes += f.mf.Bytes
		st.RowGroups += len(f.rgs)
		st.BloomBytes += f.bloomBytes
		st.IndexBytes += f.indexBytes
		ms := st.Months[f.mf.Month]
		ms.Files++
		ms.Rows += f.mf.Rows
		ms.Bytes += f.mf.Bytes
		st.Months[f.mf.Month] = ms
	}
	return st
}

// Close releases the store. Readers in flight finish on their snapshot.
// Files replaced by compaction and not yet deleted are left for the next
// Open to remove.
func (s *Store) Close() error {
	// Let a commit or compaction swap in progress finish first.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	old := s.snap
	s.mu.Unlock()
	s.pendMu.Lock()
	for f := range s.pending {
		f.cancelDelete()
	}
	s.pending = map[*pfile]bool{}
	s.pendMu.Unlock()
	old.release()
	return s.lock.Close()
}
