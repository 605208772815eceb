package history

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFailedCommitChangesNothing: a commit whose manifest cannot be
// written (after its data files were) leaves the committed state, the
// in-memory snapshot and the directory as they were; the next commit
// works.
func TestFailedCommitChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Config{Dir: dir})
	defer s.Close()
	g := newGen(5, 200, 2)
	ref := &refStore{}
	first := g.batch(500)
	if err := s.Commit(first, map[int32]int64{0: 500}); err != nil {
		t.Fatal(err)
	}
	ref.add(first)
	onDisk := func() []string {
		var out []string
		_ = filepath.WalkDir(filepath.Join(dir, changesDir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	files, gen, disk := s.Files(), s.Generation(), onDisk()
	manifestBefore, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}

	// manifest.json.tmp as a directory: writing the manifest fails.
	block := filepath.Join(dir, manifestName+".tmp")
	if err := os.Mkdir(block, 0o755); err != nil {
		t.Fatal(err)
	}
	visible := false
	_, err = s.CommitGen(g.batch(300), map[int32]int64{0: 800}, func(int64) { visible = true })
	if err == nil || visible {
		t.Fatalf("commit with an unwritable manifest: err %v, made visible %v", err, visible)
	}
	manifestAfter, _ := os.ReadFile(filepath.Join(dir, manifestName))
	if !slices.Equal(s.Files(), files) || s.Generation() != gen || s.Offsets()[0] != 500 || string(manifestAfter) != string(manifestBefore) {
		t.Fatalf("failed commit changed the state: files %v, generation %d, offsets %v", s.Files(), s.Generation(), s.Offsets())
	}
	if got := onDisk(); !slices.Equal(got, disk) {
		t.Fatalf("failed commit left files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(disk, "\n"))
	}
	if err := sameChanges(collectLookup(t, s, g.keys), ref.lookup(g.keys)); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	next := g.batch(300)
	if err := s.Commit(next, map[int32]int64{0: 800}); err != nil {
		t.Fatal(err)
	}
	ref.add(next)
	if err := sameChanges(collectLookup(t, s, g.keys), ref.lookup(g.keys)); err != nil {
		t.Fatal(err)
	}
}
