//go:build !unix

package history

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir creates dir/LOCK; there is no advisory locking on this platform.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %q: %w", path, err)
	}
	return f, nil
}
