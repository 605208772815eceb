// Package scrape fetches blocklists, diffs each version against the last
// published one and publishes the ADD/REM changes to the changes topic.
//
// A source is an http(s) URL (fetched every interval, conditional GET), a
// file (re-read when its modification time changes) or a directory. A
// directory of timestamped snapshots (YYYYMMDDTHHMMSSZ.ext) is replayed in
// order, each version's changes stamped with the time in its name; a
// directory of other files (like a FireHOL download of one day) holds one
// snapshot of several lists: each file becomes its own list, NAME-STEM. A
// file is stamped with the generation time its header states (FireHOL,
// IPsum, Spamhaus, DShield, abuse.ch headers), else its modification
// time; a URL version with the time it was fetched.
//
// A failed or suspicious version (fetch error, HTTP error, unparseable
// body, an empty body or a drop of more than max_drop of the entries)
// publishes nothing: the list keeps its state and is marked unhealthy. A
// drop seen in confirm_drops consecutive versions is accepted.
//
// Each feed runs in its own goroutine owned by Manager.Run. The last
// published version of every feed is saved under StateDir after Kafka has
// acknowledged its changes; a crash in between re-publishes that version's
// changes, which the processor drops as duplicates. The saved state also
// holds the list's metadata (ListInfo: status, error, counters), written
// on every version and failed fetch, so Lists is the same after a restart.
// Per list, the gauges netwarden_feed_up (1 iff status ok),
// netwarden_feed_entries and netwarden_feed_last_success_timestamp_seconds
// follow it.
package scrape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/netwarden/netwarden/ingest/feed"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// Producer publishes records synchronously (a *kgo.Client).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Status values of a list.
const (
	StatusPending   = "pending"
	StatusOK        = "ok"
	StatusUnhealthy = "unhealthy"
)

// ListInfo is the metadata of one list, served at GET /lists. All of it
// but the configuration is kept in the feed state, so a restarted manager
// shows what it showed before.
type ListInfo struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Source     string    `json:"source"`
	Format     string    `json:"format"`
	Status     string    `json:"status"`
	Error      string    `json:"error,omitempty"`
	LastFetch  time.Time `json:"last_fetch,omitzero"`
	LastChange time.Time `json:"last_change,omitzero"`
	// LastSuccess is the wall-clock time the list last accepted a version
	// or its server answered 304 Not Modified.
	LastSuccess time.Time `json:"last_success,omitzero"`
	Entries     int       `json:"entries"`
	Versions    int64     `json:"versions"`
	Adds        int64     `json:"adds"`
	Rems        int64     `json:"rems"`
	Skipped     int64     `json:"skipped_lines"`
}

// Loaded reports whether the list has ever accepted a version (its
// entries, possibly none, are known).
func (i ListInfo) Loaded() bool { return i.Versions > 0 || i.Entries > 0 }

// Manager runs all feeds.
type Manager struct {
	cfg    Config
	prod   Producer
	log    *slog.Logger
	client *http.Client
	feeds  []*runner

	mu       sync.Mutex
	onChange []func()

	writeMu sync.Mutex // serializes lists.json writes
}

// New builds a manager. prod is usually a *kgo.Client.
func New(cfg Config, prod Producer, log *slog.Logger) (*Manager, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create scrape state dir %q: %w", cfg.StateDir, err)
	}
	m := &Manager{cfg: cfg, prod: prod, log: log, client: &http.Client{Timeout: cfg.Timeout}}
	feeds, err := expandDirs(cfg.Feeds)
	if err != nil {
		return nil, err
	}
	for _, fc := range feeds {
		kind, err := resource.ParseKind(fc.Kind)
		if err != nil {
			return nil, err
		}
		format, err := feed.ParseFormat(fc.Format)
		if err != nil {
			return nil, err
		}
		r := &runner{m: m, fc: fc, kind: kind, format: format, log: log.With("list", fc.Name)}
		st, err := readState(cfg.StateDir, fc.Name)
		switch {
		case errors.Is(err, errNoState):
			st = &feedState{Name: fc.Name, Source: fc.Source}
		case err != nil:
			return nil, err
		}
		if st.Source != fc.Source {
			// The list moved; keep its entries (so a new source diffs
			// against them) but forget source-specific positions.
			r.log.Info("feed source changed", "old", st.Source, "new", fc.Source)
			st.Source, st.LastSnapshot, st.ETag, st.LastModified, st.FileMtime = fc.Source, "", "", "", time.Time{}
		}
		r.st = st
		r.info = ListInfo{Name: fc.Name, Kind: kind.String(), Source: fc.Source, Format: string(format)}
		r.info.from(st)
		m.feeds = append(m.feeds, r)
		r.export(r.info)
	}
	return m, nil
}

// OnChange registers fn to be called (from feed goroutines) after any
// list's metadata changed.
func (m *Manager) OnChange(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onChange = append(m.onChange, fn)
}

func (m *Manager) changed() {
	m.mu.Lock()
	fns := slices.Clone(m.onChange)
	m.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	if err := m.writeListsJSON(); err != nil {
		m.log.Warn("write lists.json", "err", err)
	}
}

// Lists returns the metadata of every list, by name.
func (m *Manager) Lists() []ListInfo {
	out := make([]ListInfo, 0, len(m.feeds))
	for _, r := range m.feeds {
		out = append(out, r.snapshotInfo())
	}
	slices.SortFunc(out, func(a, b ListInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ListsFile is where the manager keeps a JSON copy of Lists for offline tools.
func ListsFile(stateDir string) string { return filepath.Join(stateDir, "lists.json") }

func (m *Manager) writeListsJSON() error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	b, err := json.MarshalIndent(m.Lists(), "", "  ")
	if err != nil {
		return err
	}
	path := ListsFile(m.cfg.StateDir)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Run scrapes every feed until ctx ends. It returns the first fatal
// error (Kafka unavailable for publishing is not fatal: the feed retries).
func (m *Manager) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range m.feeds {
		g.Go(func() error { return r.run(ctx) })
	}
	return g.Wait()
}

// Idle reports whether every feed has processed all it could find at
// least once (directory replays done). For the demo and tests.
func (m *Manager) Idle() bool {
	for _, r := range m.feeds {
		r.mu.Lock()
		idle := r.rounds > 0
		r.mu.Unlock()
		if !idle {
			return false
		}
	}
	return true
}

type runner struct {
	m      *Manager
	fc     FeedConfig
	kind   resource.Kind
	format feed.Format
	log    *slog.Logger
	st     *feedState // owned by the runner goroutine

	mu     sync.Mutex
	info   ListInfo
	rounds int // written by the runner goroutine under mu; read by it without
}

func (r *runner) snapshotInfo() ListInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// from copies what the state keeps of the list's metadata into i.
func (i *ListInfo) from(st *feedState) {
	i.Status, i.Error = st.Status, st.Error
	if i.Status == "" {
		i.Status = StatusPending
	}
	if st.Format != "" {
		i.Format = st.Format
	}
	i.LastFetch, i.LastChange, i.LastSuccess = st.LastFetch, st.LastChange, st.LastSuccess
	i.Entries = len(st.Set)
	i.Versions, i.Adds, i.Rems, i.Skipped = st.Versions, st.Adds, st.Rems, st.Skipped
}

// record applies fn to the feed state, saves it and publishes the
// resulting metadata (GET /lists, metrics). The metadata is updated even
// when saving fails; the error is returned.
func (r *runner) record(fn func(*feedState)) error {
	fn(r.st)
	err := writeState(r.m.cfg.StateDir, r.st)
	r.mu.Lock()
	r.info.from(r.st)
	info := r.info
	r.mu.Unlock()
	r.export(info)
	r.m.changed()
	return err
}

// export sets the list's gauges: netwarden_feed_up is 1 while the list's
// status is ok (0 while pending or unhealthy).
func (r *runner) export(i ListInfo) {
	up := 0.0
	if i.Status == StatusOK {
		up = 1
	}
	metrics.GetOrCreateGauge(fmt.Sprintf(`netwarden_feed_up{list=%q}`, i.Name), nil).Set(up)
	metrics.GetOrCreateGauge(fmt.Sprintf(`netwarden_feed_entries{list=%q}`, i.Name), nil).Set(float64(i.Entries))
	if !i.LastSuccess.IsZero() {
		metrics.GetOrCreateGauge(fmt.Sprintf(`netwarden_feed_last_success_timestamp_seconds{list=%q}`, i.Name), nil).
			Set(float64(i.LastSuccess.UnixMilli()) / 1e3)
	}
}

// retryBase is the first retry delay after a failed fetch; it doubles
// per consecutive failure up to the feed's interval.
var retryBase = 30 * time.Second

func (r *runner) run(ctx context.Context) error {
	failures := 0
	for {
		wait := r.fc.Every
		if err := r.scrape(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if serr := r.fail(time.Now().UTC(), "error", err); serr != nil {
				r.log.Error("save feed state", "err", serr)
			}
			failures++
			wait = min(r.fc.Every, retryBase<<min(failures-1, 16))
		} else {
			failures = 0
		}
		r.mu.Lock()
		r.rounds++
		r.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// fail marks the list unhealthy because of err and saves that (mark, when
// not nil, also records source positions). It returns only an error to
// save the state.
func (r *runner) fail(at time.Time, result string, err error, mark ...func(*feedState)) error {
	metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_scrape_total{list=%q,result=%q}`, r.fc.Name, result)).Inc()
	r.log.Warn("feed version not applied", "result", result, "err", err)
	return r.record(func(st *feedState) {
		for _, m := range mark {
			m(st)
		}
		st.Status, st.Error, st.LastFetch = StatusUnhealthy, err.Error(), at
	})
}

var snapRE = regexp.MustCompile(`^(\d{8}T\d{6}Z)(\..*)?$`)

// expandDirs turns every feed whose source is a directory without
// timestamped snapshots into one feed per file: such a directory holds
// one snapshot of several lists (like a FireHOL download of a day). The
// list of a file is named NAME-STEM (STEM upper-cased, '_' as '-'):
// FIREHOL + blocklist_de.ipset = FIREHOL-BLOCKLIST-DE.
func expandDirs(feeds []FeedConfig) ([]FeedConfig, error) {
	var out []FeedConfig
	seen := map[string]bool{}
	for _, fc := range feeds {
		seen[fc.Name] = true
	}
	for _, fc := range feeds {
		fi, err := os.Stat(fc.Source)
		if strings.Contains(fc.Source, "://") || err != nil || !fi.IsDir() {
			out = append(out, fc)
			continue
		}
		ents, err := os.ReadDir(fc.Source)
		if err != nil {
			return nil, fmt.Errorf("feed %s: read %q: %w", fc.Name, fc.Source, err)
		}
		var files []string
		timestamped := false
		for _, e := range ents {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if snapRE.MatchString(e.Name()) {
				timestamped = true
				break
			}
			files = append(files, e.Name())
		}
		if timestamped || len(files) == 0 {
			out = append(out, fc)
			continue
		}
		for _, f := range files {
			stem := strings.TrimSuffix(f, filepath.Ext(f))
			sub := fc
			sub.Name = fc.Name + "-" + strings.ToUpper(strings.NewReplacer("_", "-", " ", "-").Replace(stem))
			sub.Source = filepath.Join(fc.Source, f)
			if !nameRE.MatchString(sub.Name) || seen[sub.Name] {
				return nil, fmt.Errorf("feed %s: file %q gives the list name %q, which is invalid or taken", fc.Name, f, sub.Name)
			}
			seen[sub.Name] = true
			out = append(out, sub)
		}
	}
	return out, nil
}

func (r *runner) scrape(ctx context.Context) error {
	src := r.fc.Source
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return r.scrapeURL(ctx)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("source %q: %w", src, err)
	}
	if fi.IsDir() {
		return r.scrapeDir(ctx)
	}
	if r.st.FileMtime.Equal(fi.ModTime()) {
		return nil // unchanged since it was last read (also before a restart)
	}
	return r.applyFile(ctx, src, fi.ModTime().UTC(), true, func(st *feedState) { st.FileMtime = fi.ModTime() })
}

// applyFile applies one snapshot file. at is its time; with useHeader a
// generation time stated in the list's own header wins over at (the
// file's modification time says when it was copied, not published).
func (r *runner) applyFile(ctx context.Context, path string, at time.Time, useHeader bool, mark func(*feedState)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open snapshot %q: %w", path, err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, r.m.cfg.MaxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("read snapshot %q: %w", path, err)
	}
	if int64(len(body)) > r.m.cfg.MaxBodyBytes {
		return fmt.Errorf("snapshot %q is larger than %d bytes", path, r.m.cfg.MaxBodyBytes)
	}
	if useHeader {
		if t, ok := publishedAt(body[:min(len(body), 16<<10)]); ok {
			at = t
		}
	}
	res, perr := feed.ParseNamed(bytes.NewReader(body), filepath.Base(path), r.kind, r.format)
	return r.apply(ctx, at, res, perr, mark)
}

// scrapeDir applies the directory's timestamped snapshots newer than the
// last one applied, in name (= time) order. Other files are ignored: a
// directory of non-timestamped lists was expanded into one feed per file
// by expandDirs when the manager started.
func (r *runner) scrapeDir(ctx context.Context) error {
	ents, err := os.ReadDir(r.fc.Source) // sorted by name
	if err != nil {
		return fmt.Errorf("read source dir %q: %w", r.fc.Source, err)
	}
	for _, e := range ents {
		m := snapRE.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil || e.Name() <= r.st.LastSnapshot {
			continue
		}
		at, err := time.Parse("20060102T150405Z", m[1])
		if err != nil {
			continue // not a real date: not a snapshot
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if err := r.applyFile(ctx, filepath.Join(r.fc.Source, name), at, false, func(st *feedState) { st.LastSnapshot = name }); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) scrapeURL(ctx context.Context) error {
	now := time.Now().UTC()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.fc.Source, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", r.m.cfg.UserAgent)
	if len(r.st.Set) > 0 {
		if r.st.ETag != "" {
			req.Header.Set("If-None-Match", r.st.ETag)
		}
		if r.st.LastModified != "" {
			req.Header.Set("If-Modified-Since", r.st.LastModified)
		}
	}
	start := time.Now()
	resp, err := r.m.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", r.fc.Source, err)
	}
	defer resp.Body.Close()
	metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf(`netwarden_scrape_duration_seconds{list=%q}`, r.fc.Name)).UpdateDuration(start)
	if resp.StatusCode == http.StatusNotModified {
		metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_scrape_total{list=%q,result="unchanged"}`, r.fc.Name)).Inc()
		return r.record(func(st *feedState) {
			st.LastFetch, st.LastSuccess, st.Status, st.Error = now, time.Now().UTC(), StatusOK, ""
		})
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return fmt.Errorf("fetch %s: HTTP %s", r.fc.Source, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.m.cfg.MaxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("fetch %s: read body: %w", r.fc.Source, err)
	}
	if int64(len(body)) > r.m.cfg.MaxBodyBytes {
		return fmt.Errorf("fetch %s: body larger than %d bytes", r.fc.Source, r.m.cfg.MaxBodyBytes)
	}
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	res, perr := feed.ParseNamed(bytes.NewReader(body), req.URL.Path, r.kind, r.format)
	return r.apply(ctx, now, res, perr, func(st *feedState) { st.ETag, st.LastModified = etag, lastMod })
}

// apply decides whether a parsed version is published, publishes its
// changes and saves the state. mark records source positions in the
// state; it runs only when the version is accepted or held back (so a
// held-back directory snapshot is not retried forever).
func (r *runner) apply(ctx context.Context, at time.Time, res feed.Result, perr error, mark func(*feedState)) error {
	name := r.fc.Name
	if res.Skipped > 0 {
		metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_feed_skipped_lines_total{list=%q}`, name)).Add(res.Skipped)
		r.log.Warn("feed lines skipped", "skipped", res.Skipped, "lines", res.Lines, "samples", res.SkipSamples)
	}
	if perr != nil {
		return r.fail(at, "unparseable", perr, mark)
	}
	prev := r.st.Set
	adds, rems := feed.Diff(prev, res.Set)
	held := ""
	switch {
	case len(res.Set) == 0 && len(prev) > 0:
		held = fmt.Sprintf("empty version (had %d entries)", len(prev))
	case len(prev) >= r.m.cfg.MinEntriesForDropCheck && float64(len(rems)) > r.fc.MaxDrop*float64(len(prev)):
		held = fmt.Sprintf("version drops %d of %d entries (max_drop %.2f)", len(rems), len(prev), r.fc.MaxDrop)
	}
	if held != "" {
		// Only identical versions confirm a drop.
		if h := setHash(res.Set); h == r.st.HeldHash && r.st.HeldDrops > 0 {
			r.st.HeldDrops++
		} else {
			r.st.HeldDrops, r.st.HeldHash = 1, h
		}
		if r.fc.ConfirmDrops == 0 || r.st.HeldDrops < r.fc.ConfirmDrops {
			return r.fail(at, "held", fmt.Errorf("%s: held back, %d/%d confirmations", held, r.st.HeldDrops, r.fc.ConfirmDrops), mark)
		}
		r.log.Info("drop confirmed, applying", "reason", held, "confirmations", r.st.HeldDrops)
	}
	if err := r.publish(ctx, at, adds, rems); err != nil {
		return err
	}
	err := r.record(func(st *feedState) {
		mark(st)
		st.Set = res.Set
		st.HeldDrops, st.HeldHash = 0, 0
		st.LastFetch, st.LastSuccess = at, time.Now().UTC()
		if len(adds)+len(rems) > 0 {
			st.LastChange = at
		}
		st.Status, st.Error = StatusOK, ""
		st.Versions++
		st.Adds += int64(len(adds))
		st.Rems += int64(len(rems))
		st.Skipped += int64(res.Skipped)
		if res.Format != "" {
			st.Format = string(res.Format)
		}
	})
	if err != nil {
		return err
	}
	metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_scrape_total{list=%q,result="ok"}`, name)).Inc()
	metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_scrape_changes_total{list=%q,op="add"}`, name)).Add(len(adds))
	metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_scrape_changes_total{list=%q,op="rem"}`, name)).Add(len(rems))
	r.log.Debug("version applied", "at", at, "entries", len(res.Set), "adds", len(adds), "rems", len(rems))
	return nil
}

// setHash fingerprints a version's entries (FNV-1a over the sorted keys).
func setHash(s feed.Set) uint64 {
	h := fnv.New64a()
	for _, k := range s {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

const produceChunk = 20000

func (r *runner) publish(ctx context.Context, at time.Time, adds, rems []string) error {
	recs := make([]*kgo.Record, 0, min(produceChunk, len(adds)+len(rems)))
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		if err := r.m.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("publish %d changes of %s: %w", len(recs), r.fc.Name, err)
		}
		recs = recs[:0]
		return nil
	}
	emit := func(keys []string, op change.Op) error {
		for _, k := range keys {
			c := change.Change{Time: at, Op: op, List: r.fc.Name, Key: k}
			recs = append(recs, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(k), Value: change.Append(nil, c)})
			if len(recs) == produceChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := emit(rems, change.Rem); err != nil {
		return err
	}
	if err := emit(adds, change.Add); err != nil {
		return err
	}
	return flush()
}
