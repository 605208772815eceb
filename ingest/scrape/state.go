package scrape

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/netwarden/netwarden/ingest/feed"
)

// feedState is what a feed remembers between versions and restarts. It
// is written only after the changes it implies are acknowledged by Kafka,
// so a crash re-publishes at most the last version's changes, which the
// processor drops as duplicates (its live state already has them).
type feedState struct {
	Name         string    `json:"name"`
	Source       string    `json:"source"`
	LastSnapshot string    `json:"last_snapshot,omitempty"` // directory sources: last applied file
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	FileMtime    time.Time `json:"file_mtime,omitzero"`
	LastFetch    time.Time `json:"last_fetch,omitzero"`
	LastChange   time.Time `json:"last_change,omitzero"`
	HeldDrops    int       `json:"held_drops,omitempty"` // consecutive identical held-back versions
	HeldHash     uint64    `json:"held_hash,omitempty"`
	// What GET /lists shows besides the configuration, so that it is the
	// same after a restart as before.
	Status      string    `json:"status,omitempty"`
	Error       string    `json:"error,omitempty"`
	Format      string    `json:"format,omitempty"` // detected format of the last accepted version
	LastSuccess time.Time `json:"last_success,omitzero"`
	Versions    int64     `json:"versions,omitempty"`
	Adds        int64     `json:"adds,omitempty"`
	Rems        int64     `json:"rems,omitempty"`
	Skipped     int64     `json:"skipped_lines,omitempty"`
	Set         feed.Set  `json:"-"`
}

const stateMagic = "NWS1"

func statePath(dir, name string) string { return filepath.Join(dir, name+".state") }

func writeState(dir string, st *feedState) error {
	path := statePath(dir, st.Name)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write feed state %q: %w", path, err)
	}
	defer os.Remove(tmp) // no-op after the rename
	w := bufio.NewWriterSize(f, 1<<16)
	meta, err := json.Marshal(st)
	if err != nil {
		f.Close()
		return fmt.Errorf("write feed state %q: %w", path, err)
	}
	var hdr []byte
	hdr = append(hdr, stateMagic...)
	hdr = binary.AppendUvarint(hdr, uint64(len(meta)))
	hdr = append(hdr, meta...)
	hdr = binary.AppendUvarint(hdr, uint64(len(st.Set)))
	w.Write(hdr)
	var lb [binary.MaxVarintLen64]byte
	for _, k := range st.Set {
		n := binary.PutUvarint(lb[:], uint64(len(k)))
		w.Write(lb[:n])
		w.WriteString(k)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write feed state %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync feed state %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close feed state %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename feed state %q: %w", path, err)
	}
	return nil
}

var errNoState = errors.New("no saved state")

func readState(dir, name string) (*feedState, error) {
	path := statePath(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoState
	}
	if err != nil {
		return nil, fmt.Errorf("read feed state %q: %w", path, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	magic := make([]byte, len(stateMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != stateMagic {
		return nil, fmt.Errorf("read feed state %q: bad magic", path)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1<<20 {
		return nil, fmt.Errorf("read feed state %q: bad header", path)
	}
	meta := make([]byte, n)
	if _, err := io.ReadFull(r, meta); err != nil {
		return nil, fmt.Errorf("read feed state %q: %w", path, err)
	}
	st := new(feedState)
	if err := json.Unmarshal(meta, st); err != nil {
		return nil, fmt.Errorf("read feed state %q: %w", path, err)
	}
	cnt, err := binary.ReadUvarint(r)
	if err != nil || cnt > 1<<30 {
		return nil, fmt.Errorf("read feed state %q: bad count", path)
	}
	st.Set = make(feed.Set, 0, cnt)
	buf := make([]byte, 0, 64)
	for i := uint64(0); i < cnt; i++ {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > 1024 {
			return nil, fmt.Errorf("read feed state %q: entry %d: bad length", path, i)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read feed state %q: entry %d: %w", path, i, err)
		}
		st.Set = append(st.Set, string(buf))
	}
	return st, nil
}
