package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	manifestName    = "manifest.json"
	manifestVersion = 1
	changesDir      = "changes"
)

// manifest is the committed state: manifest.json.
type manifest struct {
	Version    int             `json:"version"`
	Generation int64           `json:"generation"`
	Offsets    map[int32]int64 `json:"offsets"`
	Files      []manifestFile  `json:"files"`
}

// manifestFile is one live data file. Files are listed in arrival order.
type manifestFile struct {
	Path  string    `json:"path"` // relative to Dir, slash-separated
	Month string    `json:"month"`
	Rows  int64     `json:"rows"`
	Bytes int64     `json:"bytes"`
	MinTS time.Time `json:"min_ts"`
	MaxTS time.Time `json:"max_ts"`
}

// readManifest reads dir's manifest; a missing manifest is an empty one.
func readManifest(dir string) (manifest, error) {
	path := filepath.Join(dir, manifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{Version: manifestVersion, Offsets: map[int32]int64{}}, nil
	}
	if err != nil {
		return manifest{}, fmt.Errorf("read manifest %q: %w", path, err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return manifest{}, fmt.Errorf("parse manifest %q: %w", path, err)
	}
	if m.Version != manifestVersion {
		return manifest{}, fmt.Errorf("manifest %q: unsupported version %d", path, m.Version)
	}
	if m.Offsets == nil {
		m.Offsets = map[int32]int64{}
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if f.Path == "" || seen[f.Path] || !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return manifest{}, fmt.Errorf("manifest %q: bad or duplicate file path %q", path, f.Path)
		}
		seen[f.Path] = true
	}
	return m, nil
}

// writeManifest atomically replaces dir's manifest with m: it writes
// manifest.json.tmp, fsyncs it, renames it over manifest.json and fsyncs
// dir. The commit point is the rename: renamed reports whether it happened
// (then an error means the rename may not be durable).
func writeManifest(dir string, m manifest) (renamed bool, err error) {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return false, fmt.Errorf("encode manifest: %w", err)
	}
	b = append(b, '\n')
	path := filepath.Join(dir, manifestName)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return false, fmt.Errorf("write manifest %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("rename manifest %q: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("sync manifest dir %q: %w", dir, err)
	}
	return true, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// syncDir fsyncs a directory so that renames and creations in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
