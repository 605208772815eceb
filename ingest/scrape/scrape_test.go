package scrape

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// origin is a real HTTP server whose answer the test sets.
type origin struct {
	mu     sync.Mutex
	status int
	body   string
	etag   string
}

func (o *origin) set(status int, body, etag string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status, o.body, o.etag = status, body, etag
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.etag != "" && r.Header.Get("If-None-Match") == o.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if o.etag != "" {
		w.Header().Set("ETag", o.etag)
	}
	w.WriteHeader(o.status)
	io.WriteString(w, o.body)
}

func ips(from, to int) string {
	var b strings.Builder
	b.WriteString("# test list\n")
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "10.0.%d.%d\n", i/256, i%256)
	}
	return b.String()
}

type harness struct {
	t      *testing.T
	brk    *broker.Broker
	cons   *kgo.Client
	stDir  string
	origin *origin
	url    string
	seen   int64 // records read so far
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 2
	brk, err := broker.Start(context.Background(), bc, log)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := brk.NewClient(kgo.ConsumeTopics(broker.TopicChanges), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{status: 200}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { srv.Close(); cons.Close(); brk.Close() })
	return &harness{t: t, brk: brk, cons: cons, stDir: filepath.Join(dir, "scrape"), origin: o, url: srv.URL + "/list.txt"}
}

func (h *harness) manager(feeds ...FeedConfig) *Manager {
	h.t.Helper()
	prod, err := h.brk.NewClient()
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(prod.Close)
	cfg := Config{StateDir: h.stDir, Feeds: feeds}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	m, err := New(cfg, prod, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// published reads what was produced since the last call: everything up
// to the topic's end offsets.
func (h *harness) published() (adds, rems int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := broker.EndOffsets(ctx, h.cons, broker.TopicChanges)
	if err != nil {
		h.t.Fatal(err)
	}
	var total int64
	for _, o := range ends {
		total += o
	}
	for h.seen < total {
		fs := h.cons.PollFetches(ctx)
		if ctx.Err() != nil {
			h.t.Fatalf("read %d of %d records", h.seen, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			h.seen++
			d, err := change.Decode(r.Value)
			if err != nil {
				h.t.Fatalf("bad record: %v", err)
			}
			if string(r.Key) != string(d.Key) {
				h.t.Fatalf("record key %x != change key %x", r.Key, d.Key)
			}
			if d.Op == change.Add {
				adds++
			} else {
				rems++
			}
		})
	}
	return adds, rems
}

func (h *harness) step(m *Manager, wantAdds, wantRems int, wantStatus string, wantEntries int) {
	h.t.Helper()
	r := m.feeds[0]
	if err := r.scrape(context.Background()); err != nil {
		r.fail(time.Now(), "error", err)
	}
	r.rounds++
	adds, rems := h.published()
	info := m.Lists()[0]
	if adds != wantAdds || rems != wantRems || info.Status != wantStatus || info.Entries != wantEntries {
		h.t.Fatalf("published +%d -%d, status %s (%s), entries %d; want +%d -%d, %s, %d",
			adds, rems, info.Status, info.Error, info.Entries, wantAdds, wantRems, wantStatus, wantEntries)
	}
}

func TestURLFeedHealthGuard(t *testing.T) {
	h := newHarness(t)
	feed := FeedConfig{Name: "TEST", Kind: "ip", Format: "plain", Source: h.url, Every: time.Hour}
	m := h.manager(feed)

	h.origin.set(200, ips(0, 40), "")
	h.step(m, 40, 0, StatusOK, 40)
	h.origin.set(200, ips(0, 45), "")
	h.step(m, 5, 0, StatusOK, 45)

	// Failures publish nothing and keep the state.
	h.origin.set(500, "oops", "")
	h.step(m, 0, 0, StatusUnhealthy, 45)
	h.origin.set(200, "", "")
	h.step(m, 0, 0, StatusUnhealthy, 45)
	h.origin.set(200, "<!DOCTYPE html><html><body>Rate limited</body></html>", "")
	h.step(m, 0, 0, StatusUnhealthy, 45)
	h.origin.set(200, "1.2.3\nnot an ip\n", "")
	h.step(m, 0, 0, StatusUnhealthy, 45)

	// A big drop is held back until three versions agree.
	h.origin.set(200, ips(0, 10), "")
	h.step(m, 0, 0, StatusUnhealthy, 45)
	h.step(m, 0, 0, StatusUnhealthy, 45)
	h.step(m, 0, 35, StatusOK, 10)

	// Conditional GET: 304 changes nothing.
	h.origin.set(200, ips(0, 12), `"v7"`)
	h.step(m, 2, 0, StatusOK, 12)
	h.step(m, 0, 0, StatusOK, 12)

	// A restart resumes from the saved state: same content, no changes.
	m2 := h.manager(feed)
	if got := m2.Lists()[0].Entries; got != 12 {
		t.Fatalf("restarted manager has %d entries, want 12", got)
	}
	h.origin.set(200, ips(0, 12), "")
	h.step(m2, 0, 0, StatusOK, 12)
	h.origin.set(200, ips(2, 12), "")
	h.step(m2, 0, 2, StatusOK, 10)
}

func TestDirectoryReplay(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20240101T000000Z.txt", ips(0, 30))
	write("20240102T000000Z.txt", ips(5, 30))
	write("20240103T000000Z.txt", "Could not connect: \n")
	write("README", "not a snapshot")
	feed := FeedConfig{Name: "DIR", Kind: "ip", Format: "plain", Source: dir, Every: time.Hour}
	m := h.manager(feed)
	h.step(m, 30, 5, StatusUnhealthy, 25) // the broken last version marks it unhealthy
	write("20240104T000000Z.txt", ips(5, 31))
	h.step(m, 1, 0, StatusOK, 26)
	// Changes carry the snapshot time from the file name.
	st, err := readState(h.stDir, "DIR")
	if err != nil || st.LastSnapshot != "20240104T000000Z.txt" || !st.LastChange.Equal(time.Date(2024, 1, 4, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("state %+v %v", st, err)
	}
	k, _ := resource.ParseIP("10.0.0.30")
	if !st.Set.Contains(k.Key()) {
		t.Fatal("saved set lacks 10.0.0.30")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []FeedConfig{
		{Name: "", Kind: "ip", Source: "x"},
		{Name: "A B", Kind: "ip", Source: "x"},
		{Name: "A", Kind: "ipv4", Source: "x"},
		{Name: "A", Kind: "ip", Format: "xml", Source: "x"},
		{Name: "A", Kind: "ip", Source: ""},
		{Name: "A", Kind: "ip", Source: "ftp://x/y"},
		{Name: "A", Kind: "ip", Source: "x", MaxDrop: 2},
	}
	for _, f := range bad {
		c := Config{StateDir: "s", Feeds: []FeedConfig{f}}
		c.Defaults()
		if err := c.Validate(); err == nil {
			t.Errorf("feed %+v accepted", f)
		}
	}
	c := Config{StateDir: "s", Feeds: []FeedConfig{{Name: "A", Kind: "ip", Source: "x"}, {Name: "A", Kind: "ip", Source: "y"}}}
	c.Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestFailedFetchRetriesSooner(t *testing.T) {
	h := newHarness(t)
	old := retryBase
	retryBase = 20 * time.Millisecond
	defer func() { retryBase = old }()
	h.origin.set(503, "busy", "")
	m := h.manager(FeedConfig{Name: "RETRY", Kind: "ip", Format: "plain", Source: h.url, Every: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	h.origin.set(200, ips(0, 25), "")
	deadline := time.Now().Add(10 * time.Second)
	for m.Lists()[0].Status != StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("feed did not recover from a failed fetch: %+v", m.Lists()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if adds, _ := h.published(); adds != 25 {
		t.Fatalf("published %d adds after recovery, want 25", adds)
	}
}

func TestDirectoryOfListsExpands(t *testing.T) {
	const dir = "../../../shared/data/blocklists/firehol-2022-01-24"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("real data not found at %s: %v", dir, err)
	}
	h := newHarness(t)
	m := h.manager(FeedConfig{Name: "FIREHOL", Kind: "ip", Format: "auto", Source: dir, Every: time.Hour})
	ls := m.Lists()
	if len(ls) != 12 {
		t.Fatalf("%d lists, want one per file (12): %+v", len(ls), ls)
	}
	if ls[0].Name != "FIREHOL-BAMBENEK-C2" {
		t.Errorf("first list %q", ls[0].Name)
	}
	total := 0
	for _, r := range m.feeds {
		if err := r.scrape(context.Background()); err != nil {
			t.Fatal(err)
		}
		total += r.snapshotInfo().Entries
	}
	if adds, _ := h.published(); adds != total || total < 50000 {
		t.Fatalf("published %d adds for %d entries", adds, total)
	}
	for _, l := range m.Lists() {
		// Stamped with the header's generation time (2021-2022), not the
		// checkout's modification time.
		if y := l.LastChange.Year(); l.Status != StatusOK || l.Entries > 0 && (y < 2021 || y > 2022) {
			t.Errorf("%s: status %s, last change %v (want the header's date)", l.Name, l.Status, l.LastChange)
		}
	}
}

// runUntilIdle runs m until every feed has finished a round.
func runUntilIdle(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for !m.Idle() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("feeds not idle after 2m: %+v", m.Lists())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListsSurviveRestart(t *testing.T) {
	const data = "../../../shared/data/blocklists"
	if _, err := os.Stat(data); err != nil {
		t.Skipf("real data not found at %s: %v", data, err)
	}
	h := newHarness(t)
	broken := t.TempDir() // a snapshot directory whose last version is unparseable
	for name, body := range map[string]string{"20240101T000000Z.txt": ips(0, 30), "20240102T000000Z.txt": "<html>rate limited</html>\n"} {
		if err := os.WriteFile(filepath.Join(broken, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	feeds := []FeedConfig{
		{Name: "EDROP", Kind: "ip", Format: "plain", Source: data + "/spamhaus-edrop-cidr", Every: time.Hour},       // snapshot directory
		{Name: "IPSUM", Kind: "ip", Format: "ipsum", Source: data + "/ipsum-20260822.txt", Every: time.Hour},        // single file
		{Name: "FIREHOL", Kind: "ip", Format: "auto", Source: data + "/firehol-2022-01-24", Every: time.Hour},       // directory of lists
		{Name: "BROKEN", Kind: "ip", Format: "plain", Source: broken, Every: time.Hour},                             // unhealthy
		{Name: "GONE", Kind: "ip", Format: "plain", Source: filepath.Join(broken, "missing.txt"), Every: time.Hour}, // never loaded
	}
	m := h.manager(feeds...)
	runUntilIdle(t, m)
	before := m.Lists()
	adds, rems := h.published()
	var sumAdds, sumRems int64
	byName := map[string]ListInfo{}
	for _, l := range before {
		sumAdds += l.Adds
		sumRems += l.Rems
		byName[l.Name] = l
	}
	if int64(adds) != sumAdds || int64(rems) != sumRems {
		t.Fatalf("published +%d -%d, /lists sums to +%d -%d", adds, rems, sumAdds, sumRems)
	}
	for _, c := range []struct {
		name, status string
		loaded       bool
	}{{"EDROP", StatusOK, true}, {"IPSUM", StatusOK, true}, {"FIREHOL-CIARMY", StatusOK, true}, {"BROKEN", StatusUnhealthy, true}, {"GONE", StatusUnhealthy, false}} {
		l := byName[c.name]
		if l.Status != c.status || l.Loaded() != c.loaded || c.loaded != (l.Adds > 0 && !l.LastSuccess.IsZero()) {
			t.Errorf("%s before restart: %+v, want status %s, loaded %v", c.name, l, c.status, c.loaded)
		}
	}
	if l := byName["EDROP"]; l.Versions != 30 || l.Rems == 0 {
		t.Errorf("EDROP replayed %d versions with %d removals, want 30 versions and some removals", l.Versions, l.Rems)
	}

	m2 := h.manager(feeds...)
	for i, a := range m2.Lists() {
		if a != before[i] {
			t.Errorf("restored list differs:\n got %+v\nwant %+v", a, before[i])
		}
	}
	runUntilIdle(t, m2)
	after := m2.Lists()
	for i := range after {
		a, b := after[i], before[i]
		if a.Name == "GONE" { // its fetch fails again, at a later time
			a.LastFetch = b.LastFetch
		}
		if a != b {
			t.Errorf("after restart and a round:\n got %+v\nwant %+v", a, b)
		}
	}
	if adds, rems := h.published(); adds+rems != 0 {
		t.Errorf("restart re-published +%d -%d", adds, rems)
	}
}
