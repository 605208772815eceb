package history

import (
	"fmt"
	"path/filepath"
)

// ListFiles returns the absolute paths of the files in dir's committed
// manifest without opening or locking the store, for read-only tools
// (netwarden sql) that may run beside a server. Files replaced by a later
// compaction stay readable for Config.DeleteDelay.
func ListFiles(dir string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("history dir %q: %w", dir, err)
	}
	m, err := readManifest(abs)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m.Files))
	for _, f := range m.Files {
		out = append(out, filepath.Join(abs, filepath.FromSlash(f.Path)))
	}
	return out, nil
}
