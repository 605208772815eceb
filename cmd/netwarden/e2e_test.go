package main

// End-to-end tests of the real binary: embedded broker over TCP, scrapers
// replaying the real list runs in ../shared/data, processors, Parquet
// history, DuckDB (netwarden sql) and the HTTP API.

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/resource"
)

const sharedBlocklists = "../../../shared/data/blocklists"

func needShared(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(sharedBlocklists); err != nil {
		t.Skipf("real data not found at %s (the shared/ checkout beside this repo): %v", sharedBlocklists, err)
	}
}

// run describes one real run of list versions and how to read an entry
// out of a line, written independently of package feed.
type listRun struct {
	list, dir, kind, format string
	entry                   func(line string) string // "" = not an entry
}

func plainEntry(l string) string {
	l = strings.TrimSpace(l)
	if l == "" || l[0] == '#' || l[0] == ';' {
		return ""
	}
	return l
}

var runs = []listRun{
	{"SPAMHAUS-DROP", "spamhaus-drop", "ip", "spamhaus", func(l string) string {
		return plainEntry(strings.SplitN(l, ";", 2)[0])
	}},
	{"SPAMHAUS-DROP-2021", "spamhaus-drop-cidr", "ip", "plain", plainEntry},
	{"SPAMHAUS-EDROP", "spamhaus-edrop-cidr", "ip", "plain", plainEntry},
	{"SPAMHAUS-DROPV6", "spamhaus-dropv6-cidr", "ip", "plain", plainEntry},
	{"DSHIELD", "dshield-block", "ip", "auto", func(l string) string {
		if plainEntry(l) == "" {
			return ""
		}
		f := strings.Split(l, "\t")
		if len(f) < 3 {
			return ""
		}
		return f[0] + "/" + f[2]
	}},
	{"THREATFOX-IP", "threatfox-ips", "ip", "plain", plainEntry},
	{"TOR-EXIT", "tor-exit", "ip", "plain", plainEntry},
	{"FEODO", "feodo-csv", "ip", "csv", func(l string) string {
		if plainEntry(l) == "" || strings.HasPrefix(l, `"first_seen`) {
			return ""
		}
		f := strings.Split(l, ",")
		return strings.Trim(f[1], `"`)
	}},
	{"DISPOSABLE-EMAIL-DOMAINS", "disposable-email-domains", "email", "plain", func(l string) string {
		return strings.ToLower(plainEntry(l))
	}},
}

// canon returns the canonical resource text of an entry, or "" if it is
// not a valid entry of the kind.
func canon(kind, e string) string {
	if kind == "ip" {
		if p, err := netip.ParsePrefix(e); err == nil {
			return resource.FromPrefix(p.Masked()).String()
		}
		if a, err := netip.ParseAddr(e); err == nil {
			return resource.FromAddr(a).String()
		}
		return ""
	}
	if !strings.Contains(e, ".") {
		return ""
	}
	return e
}

type chg struct {
	ts       int64 // Unix µs
	op, list string
	res      string
}

var snapName = regexp.MustCompile(`^(\d{8}T\d{6}Z)\.`)

// expectedChanges diffs consecutive versions of every run the plain way.
// A version with no entries at all (a failed download saved as a file)
// is not a list version and is skipped, as netwarden must skip it.
func expectedChanges(t *testing.T, rs []listRun) []chg {
	t.Helper()
	var out []chg
	for _, r := range rs {
		ents, err := os.ReadDir(filepath.Join(sharedBlocklists, r.dir))
		if err != nil {
			t.Fatal(err)
		}
		var prev map[string]bool
		for _, e := range ents {
			m := snapName.FindStringSubmatch(e.Name())
			if m == nil {
				continue
			}
			at, err := time.Parse("20060102T150405Z", m[1])
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(sharedBlocklists, r.dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			cur := map[string]bool{}
			for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n") {
				if v := r.entry(l); v != "" {
					if c := canon(r.kind, v); c != "" {
						cur[c] = true
					}
				}
			}
			if len(cur) == 0 {
				continue
			}
			for k := range cur {
				if !prev[k] {
					out = append(out, chg{at.UnixMicro(), "add", r.list, k})
				}
			}
			for k := range prev {
				if !cur[k] {
					out = append(out, chg{at.UnixMicro(), "rem", r.list, k})
				}
			}
			prev = cur
		}
	}
	sortChanges(out)
	return out
}

func sortChanges(cs []chg) {
	slices.SortFunc(cs, func(a, b chg) int {
		return strings.Compare(fmt.Sprint(a.list, a.res, a.ts, a.op), fmt.Sprint(b.list, b.res, b.ts, b.op))
	})
}

var binPath string

func buildBinary(t *testing.T) string {
	t.Helper()
	if binPath != "" {
		return binPath
	}
	dir, err := os.MkdirTemp("", "netwarden-bin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "netwarden")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build netwarden: %v", err)
	}
	binPath = bin
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type server struct {
	t       *testing.T
	bin     string
	cfgPath string
	dataDir string
	http    string
	kport   int
	cmd     *exec.Cmd
	logf    *os.File
}

func newServer(t *testing.T, rs []listRun, extra string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, bin: buildBinary(t), dataDir: filepath.Join(dir, "data"), http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), kport: freePort(t)}
	abs, err := filepath.Abs(sharedBlocklists)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data: {dir: data}\nhttp: {addr: %q}\nkafka: {partitions: 4, embedded: {port: %d}}\nlog: {level: info}\n%s\nfeeds:\n", s.http, s.kport, extra)
	for _, r := range rs {
		fmt.Fprintf(&b, "  - {name: %s, kind: %s, format: %s, source: %q, every: 1h}\n", r.list, r.kind, r.format, filepath.Join(abs, r.dir))
	}
	s.cfgPath = filepath.Join(dir, "netwarden.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	s.logf, err = os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(s.logf.Name())
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("server log tail:\n%s", b)
		}
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	// Run where the config is, naming it relatively, as a user would.
	s.cmd = exec.Command(s.bin, "serve", "--config", filepath.Base(s.cfgPath))
	s.cmd.Dir = filepath.Dir(s.cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = s.logf, s.logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) get(path string, v any) (int, error) {
	resp, err := http.Get("http://" + s.http + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w: %s", path, err, b)
		}
	}
	return resp.StatusCode, nil
}

// metric reads one counter from /metrics.
func (s *server) metric(name string) float64 {
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

func (s *server) waitIdle(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		var h map[string]any
		if code, err := s.get("/healthz", &h); err == nil && code == 200 {
			last = h
			if h["idle"] == true {
				return
			}
		}
		if s.cmd.ProcessState != nil {
			s.t.Fatalf("server exited: %v", s.cmd.ProcessState)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("pipeline not idle after %v: %v", timeout, last)
}

func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			s.t.Fatalf("server exit after SIGTERM: %v", err)
		}
	case <-time.After(2 * time.Minute):
		s.cmd.Process.Kill()
		s.t.Fatal("server did not stop within 2m of SIGTERM")
	}
}

func (s *server) kill() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

// history dumps every stored change with `netwarden sql`.
func (s *server) history() []chg {
	s.t.Helper()
	cmd := exec.Command(s.bin, "sql", "--config", filepath.Base(s.cfgPath), "--format", "csv",
		"SELECT epoch_us(ts) AS ts, op, list, resource, kafka_partition, kafka_offset FROM changes")
	cmd.Dir = filepath.Dir(s.cfgPath)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("netwarden sql: %v", err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		s.t.Fatalf("parse sql csv: %v", err)
	}
	var cs []chg
	// Every row carries the position of the change record it came from
	// on netwarden.changes, and no record is stored twice.
	pos := map[string]bool{}
	for _, r := range recs[1:] {
		ts, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			s.t.Fatalf("ts %q: %v", r[0], err)
		}
		if r[4] == "" || r[5] == "" || pos[r[4]+"/"+r[5]] {
			s.t.Fatalf("row %v: position missing or stored twice", r)
		}
		pos[r[4]+"/"+r[5]] = true
		cs = append(cs, chg{ts, r[1], r[2], r[3]})
	}
	sortChanges(cs)
	return cs
}

func diffChanges(t *testing.T, want, got []chg) {
	t.Helper()
	count := func(cs []chg) map[chg]int {
		m := map[chg]int{}
		for _, c := range cs {
			m[c]++
		}
		return m
	}
	w, g := count(want), count(got)
	bad := 0
	for c, n := range w {
		if g[c] != n {
			if bad++; bad <= 10 {
				t.Errorf("change %+v: want %d, got %d", c, n, g[c])
			}
		}
	}
	for c, n := range g {
		if w[c] == 0 {
			if bad++; bad <= 10 {
				t.Errorf("unexpected change %+v (x%d)", c, n)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d differences between history (%d changes) and the independent diff (%d changes)", bad, len(got), len(want))
	}
}

// TestReplayExact replays every real run and checks history holds
// exactly the changes a plain diff of consecutive versions gives.
func TestReplayExact(t *testing.T) {
	needShared(t)
	want := expectedChanges(t, runs)
	s := newServer(t, runs, "")
	s.start()
	s.waitIdle(5 * time.Minute)

	// A covered address has its covering CIDR's history: pick a DROP
	// CIDR and query an address inside it.
	var cidr chg
	for _, c := range want {
		if c.list == "SPAMHAUS-DROP" && strings.Contains(c.res, "/2") && c.op == "add" {
			cidr = c
			break
		}
	}
	p := netip.MustParsePrefix(cidr.res)
	inside := p.Addr().Next().String()
	var hist struct {
		Changes []map[string]any `json:"changes_ip"`
	}
	if code, err := s.get("/metadata/changes/ip/"+inside+"?items=200", &hist); err != nil || code != 200 {
		t.Fatalf("history of %s: %d %v", inside, code, err)
	}
	// The expected answers, folded from the independent diff: every change
	// of an entry that contains the address, and the lists it is on at the end.
	addr := netip.MustParseAddr(inside)
	wantN := 0
	on := map[[2]string]bool{} // (entry, list)
	// want is sorted by list, resource, time: the last op of a pair wins.
	for _, c := range want {
		p, err := netip.ParsePrefix(c.res)
		if err != nil {
			a, aerr := netip.ParseAddr(c.res)
			if aerr != nil {
				continue // not an IP entry
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if !p.Contains(addr) {
			continue
		}
		wantN++
		on[[2]string{c.res, c.list}] = c.op == "add"
	}
	var wantLists []string
	for k, v := range on {
		if v && !slices.Contains(wantLists, k[1]) {
			wantLists = append(wantLists, k[1])
		}
	}
	slices.Sort(wantLists)
	if wantN > 200 || len(wantLists) == 0 {
		t.Fatalf("bad pick %s: %d changes, on %v", inside, wantN, wantLists)
	}
	if len(hist.Changes) != wantN {
		t.Errorf("history of %s (inside %s): %d changes, want %d", inside, cidr.res, len(hist.Changes), wantN)
	}
	var badip map[string][]string
	code, err := s.get("/badip/"+inside, &badip)
	if err != nil || code != 200 || !slices.Equal(badip["response"], wantLists) {
		t.Errorf("/badip/%s = %d %v (%v), want 200 %v", inside, code, badip, err, wantLists)
	}

	// SQL over HTTP sees the same history as the offline tool.
	var res struct {
		Rows [][]any `json:"rows"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post("http://"+s.http+"/sql", "text/plain", strings.NewReader("SELECT count(*) FROM changes"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(b, &res); err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST /sql: %d %s", resp.StatusCode, b)
		}
		if len(res.Rows) == 1 && res.Rows[0][0] == float64(len(want)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /sql count = %v, want %d", res.Rows, len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// /lists and the health status are the same after a restart.
	type lists struct {
		Lists []map[string]any `json:"lists"`
	}
	var before, after lists
	var hBefore, hAfter map[string]any
	if code, err := s.get("/lists", &before); err != nil || code != 200 || len(before.Lists) != len(runs) {
		t.Fatalf("/lists: %d %v %v", code, err, before)
	}
	s.get("/healthz", &hBefore)
	s.stop()
	s.start()
	s.waitIdle(2 * time.Minute)
	if code, err := s.get("/lists", &after); err != nil || code != 200 || len(after.Lists) != len(before.Lists) {
		t.Fatalf("/lists after restart: %d %v %v", code, err, after)
	}
	for i := range before.Lists {
		if b, a := fmt.Sprint(before.Lists[i]), fmt.Sprint(after.Lists[i]); a != b {
			t.Errorf("/lists after restart:\n got %s\nwant %s", a, b)
		}
	}
	if s.get("/healthz", &hAfter); hAfter["status"] != hBefore["status"] || fmt.Sprint(hAfter["feeds"]) != fmt.Sprint(hBefore["feeds"]) {
		t.Errorf("/healthz after restart %v, before %v", hAfter, hBefore)
	}

	s.stop()
	diffChanges(t, want, s.history())
}

// TestKillRestartExactlyOnce stops the server mid-ingest, alternately with
// SIGKILL and SIGTERM, restarts it, and checks history has every change
// exactly once — and is a duplicate-free subset of it after every stop.
func TestKillRestartExactlyOnce(t *testing.T) {
	needShared(t)
	rounds := 2
	if v, err := strconv.Atoi(os.Getenv("NETWARDEN_CHAOS_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	rs := []listRun{runs[0], runs[4], runs[5], runs[6], runs[8]}
	want := expectedChanges(t, rs)
	s := newServer(t, rs, "processor: {flush_interval: 100ms, flush_rows: 2000, poll_records: 500}")
	midIngest := 0
	for i := 0; i < rounds; i++ {
		s.start()
		deadline := time.Now().Add(3 * time.Minute)
		base := s.metric("netwarden_processor_flushes_total")
		for time.Now().Before(deadline) {
			if n := s.metric("netwarden_processor_flushes_total"); n > base && n >= 2 {
				break
			}
			var h map[string]any
			if code, err := s.get("/healthz", &h); err == nil && code == 200 && h["idle"] == true {
				break // nothing left to ingest: stop it idle
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(50*(i+1)) * time.Millisecond)
		how := "SIGKILL"
		if i%2 == 1 {
			how = "SIGTERM" // graceful: must exit 0 and keep everything consumed
			s.stop()
		} else {
			s.kill()
		}
		// At any crash point history is a duplicate-free subset of the
		// expected changes; at least one crash must land mid-ingest.
		got := s.history()
		wantSet := map[chg]bool{}
		for _, c := range want {
			wantSet[c] = true
		}
		seen := map[chg]bool{}
		for _, c := range got {
			if !wantSet[c] || seen[c] {
				t.Fatalf("round %d: after kill history has %+v (unexpected or doubled)", i, c)
			}
			seen[c] = true
		}
		if len(got) > 0 && len(got) < len(want) {
			midIngest++
		}
		t.Logf("round %d: %s with %d of %d changes in history", i, how, len(got), len(want))
	}
	if midIngest == 0 {
		t.Fatal("no kill landed mid-ingest; the test proved nothing")
	}
	s.start()
	s.waitIdle(5 * time.Minute)
	s.stop()
	diffChanges(t, want, s.history())
}
