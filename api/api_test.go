package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/query"
	"github.com/netwarden/netwarden/stream/check"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
)

// stack is the real pipeline below the API: embedded broker over TCP,
// processor, live state, Parquet history, DuckDB.
type stack struct {
	hist  string // history dir
	url   string
	prod  *kgo.Client
	proc  *processor.Processor
	store *history.Store
}

func newStack(t *testing.T, opts ...func(*api.Config)) *stack { return newStackWith(t, nil, opts...) }

// newStackWith is newStack with a modified query config; SQL runs in worker
// processes (this test binary, see TestMain).
func newStackWith(t *testing.T, mod func(*query.Config), opts ...func(*api.Config)) *stack {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())

	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 3
	brk, err := broker.Start(ctx, bc, log)
	if err != nil {
		t.Fatal(err)
	}
	hc := history.Config{Dir: filepath.Join(dir, "history")}
	hc.Defaults()
	store, err := history.Open(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	state := live.New()
	pc := processor.Config{FlushInterval: 50 * time.Millisecond, FlushRows: 3}
	pc.Defaults()
	proc := processor.New(pc, brk, store, state, log)
	qc := query.Config{HistoryDir: hc.Dir}
	if mod != nil {
		mod(&qc)
	}
	engine, err := query.NewPool(qc, sqlWorkerCmd, log)
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(&ac)
	}
	ac.Defaults()
	srv := api.New(ac, api.Deps{History: proc, Live: state, SQL: engine, Checker: check.NewJob(store, proc, state, 0, log)}, log)
	hs := httptest.NewServer(srv.Handler())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	<-proc.Ready()
	prod, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{hist: hc.Dir, url: hs.URL, prod: prod, proc: proc, store: store}
	// Keep the SQL view on the store's files.
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		for ctx.Err() == nil {
			engine.SetFiles(store.Files())
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		hs.Close()
		prod.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
		<-synced // no SetFiles on a closed engine
		engine.Close()
		store.Close()
		brk.Close()
	})
	return s
}

func (s *stack) publish(t *testing.T, at int64, op change.Op, list, res string) {
	t.Helper()
	var r resource.Resource
	var err error
	switch {
	case strings.Contains(res, "@") || strings.HasPrefix(list, "EMAIL"):
		r, err = resource.ParseEmail(res)
	case strings.ContainsAny(res, ":") || (strings.Count(res, ".") == 3 && !strings.ContainsAny(res, "abcdefghijklmnopqrstuvwxyz")):
		r, err = resource.ParseIP(res)
	default:
		r, err = resource.ParseDomain(res)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := change.Change{Time: time.Unix(at, 0), Op: op, List: list, Key: r.Key()}
	if err := s.prod.ProduceSync(context.Background(), &kgo.Record{Topic: broker.TopicChanges, Key: []byte(c.Key), Value: change.Append(nil, c)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// settle waits until everything published is consumed and flushed.
func (s *stack) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		lag, err := s.proc.Lag(context.Background())
		if err == nil && lag == 0 && s.proc.Pending() == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("pipeline did not settle")
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %d non-JSON body %q", url, resp.StatusCode, b)
	}
	return resp.StatusCode, v
}

func TestAPI(t *testing.T) {
	s := newStack(t)
	// 1.2.3.0/24 listed on DROP at t=100, 1.2.3.4 on TOR at 200, DROP
	// removed at 300, 1.2.3.4 on TOR again (duplicate, dropped) at 400.
	s.publish(t, 100, change.Add, "DROP", "1.2.3.0/24")
	s.publish(t, 200, change.Add, "TOR", "1.2.3.4")
	s.publish(t, 300, change.Rem, "DROP", "1.2.3.0/24")
	s.publish(t, 400, change.Add, "TOR", "1.2.3.4")
	for i := 0; i < 25; i++ { // a long history for pagination
		op := change.Add
		if i%2 == 1 {
			op = change.Rem
		}
		s.publish(t, int64(1000+i), op, "DSHIELD", "9.9.9.9")
	}
	s.publish(t, 500, change.Add, "EMAILDOM", "mailinator.com")
	s.publish(t, 600, change.Add, "EMAIL", "joe@example.org")
	s.publish(t, 700, change.Add, "PHISH", "evil.example.net")
	s.publish(t, 800, change.Add, "DROP6", "2001:db8::/32")
	s.settle(t)

	t.Run("history with containment", func(t *testing.T) {
		code, v := get(t, s.url+"/metadata/changes/ip/1.2.3.4")
		if code != 200 {
			t.Fatalf("code %d %v", code, v)
		}
		items := v["changes_ip"].([]any)
		want := []struct {
			ts         float64
			cmd, list  string
			blacklists string
		}{{300, "rem", "DROP", "TOR"}, {200, "add", "TOR", "DROP,TOR"}, {100, "add", "DROP", "DROP"}}
		if len(items) != len(want) {
			t.Fatalf("items %v", items)
		}
		for i, w := range want {
			it := items[i].(map[string]any)
			if it["timestamp"] != w.ts || it["command"] != w.cmd || it["blacklist_change"] != w.list || it["blacklists"] != w.blacklists || it["ip"] != "1.2.3.4" {
				t.Errorf("item %d = %v, want %+v", i, it, w)
			}
		}
		if items[0].(map[string]any)["resource"] != "1.2.3.0/24" {
			t.Errorf("covering entry not named: %v", items[0])
		}
	})
	t.Run("timestamp filter", func(t *testing.T) {
		_, v := get(t, s.url+"/metadata/changes/ip/1.2.3.4?timestamp=250")
		if n := len(v["changes_ip"].([]any)); n != 2 {
			t.Errorf("changes at or before 250: %d, want 2", n)
		}
		_, v = get(t, s.url+"/metadata/changes/ip/1.2.3.4?timestamp=200")
		if n := len(v["changes_ip"].([]any)); n != 2 {
			t.Errorf("changes at or before 200 (inclusive): %d, want 2", n)
		}
	})
	t.Run("pagination", func(t *testing.T) {
		seen := map[float64]bool{}
		for page, want := range map[int]int{1: 10, 2: 10, 3: 5, 4: 0} {
			code, v := get(t, fmt.Sprintf("%s/metadata/changes/ip/9.9.9.9?page=%d", s.url, page))
			items := v["changes_ip"].([]any)
			if code != 200 || len(items) != want {
				t.Errorf("page %d: %d items (code %d), want %d", page, len(items), code, want)
			}
			for _, it := range items {
				seen[it.(map[string]any)["timestamp"].(float64)] = true
			}
		}
		if len(seen) != 25 {
			t.Errorf("pages covered %d distinct changes, want 25", len(seen))
		}
		_, v := get(t, s.url+"/metadata/changes/ip/9.9.9.9?items=5&page=5")
		items := v["changes_ip"].([]any)
		if len(items) != 5 || items[4].(map[string]any)["timestamp"] != 1000.0 {
			t.Errorf("last page of 5: %v", items)
		}
		_, v = get(t, s.url+"/metadata/changes/ip/9.9.9.9?items=200")
		if n := len(v["changes_ip"].([]any)); n != 25 {
			t.Errorf("items=200: %d", n)
		}
	})
	t.Run("bad input is 400 JSON", func(t *testing.T) {
		for _, path := range []string{
			"/metadata/changes/ip/1.2.3", "/metadata/changes/ip/1.2.3.4?items=4", "/metadata/changes/ip/1.2.3.4?items=201",
			"/metadata/changes/ip/1.2.3.4?page=0", "/metadata/changes/ip/1.2.3.4?page=x", "/metadata/changes/ip/1.2.3.4?timestamp=-1",
			"/metadata/changes/domain/not_a..domain", "/metadata/changes/email/@x", "/badip/999.1.1.1", "/badip/1.2.3.4/24",
			"/badip_batch", "/badip_batch?ip=1.2.3.4,nope",
		} {
			code, v := get(t, s.url+path)
			if code != 400 || v["error"] == nil || v["error"] == "" {
				t.Errorf("GET %s = %d %v, want 400 with an error message", path, code, v)
			}
		}
	})
	t.Run("unknown is empty", func(t *testing.T) {
		code, v := get(t, s.url+"/metadata/changes/ip/192.0.2.1")
		if code != 200 || len(v["changes_ip"].([]any)) != 0 {
			t.Errorf("unknown ip: %d %v", code, v)
		}
		code, v = get(t, s.url+"/metadata/changes/domain/unknown.example")
		if code != 200 || len(v["changes_domain"].([]any)) != 0 {
			t.Errorf("unknown domain: %d %v", code, v)
		}
		code, _ = get(t, s.url+"/badip/192.0.2.1")
		if code != 404 {
			t.Errorf("clean ip: %d, want 404", code)
		}
	})
	t.Run("live lookups", func(t *testing.T) {
		cases := map[string]string{
			"/badip/1.2.3.4":                           "TOR",
			"/badip/2001:db8::1":                       "DROP6",
			"/bademail/anyone@mailinator.com":          "EMAILDOM",
			"/bademail/joe@example.org":                "EMAIL",
			"/baddomain/www.evil.example.net":          "PHISH",
			"/metadata/changes/email/x@mailinator.com": "",
		}
		for path, want := range cases {
			code, v := get(t, s.url+path)
			if want == "" {
				if items := v["changes_email"].([]any); code != 200 || len(items) != 1 {
					t.Errorf("%s: %d %v", path, code, v)
				}
				continue
			}
			got, _ := json.Marshal(v["response"])
			if code != 200 || string(got) != fmt.Sprintf("[%q]", want) {
				t.Errorf("%s = %d %s, want [%q]", path, code, got, want)
			}
		}
		code, v := get(t, s.url+"/badip_batch?ip=1.2.3.4,192.0.2.1")
		resp := v["response"].([]any)
		if code != 200 || len(resp) != 2 || len(resp[1].(map[string]any)["blacklists"].([]any)) != 0 {
			t.Errorf("batch: %d %v", code, v)
		}
		r, err := http.Post(s.url+"/badip_batch", "application/json", strings.NewReader(`{"ips":["1.2.3.4"]}`))
		if err != nil || r.StatusCode != 200 {
			t.Errorf("POST batch: %v %v", r.Status, err)
		}
	})
	t.Run("sql", func(t *testing.T) {
		post := func(q, accept string) (int, string) {
			req, _ := http.NewRequest("POST", s.url+"/sql", strings.NewReader(q))
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := post("SELECT count(*) AS n FROM changes", "text/csv")
			if code == 200 && body == "n\n32\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("count: %d %q (want 32: 3+25+4 changes, one duplicate dropped)", code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, q := range []string{"DELETE FROM changes", "SELECT * FROM read_csv('/etc/passwd')", "INSTALL httpfs", "ATTACH '/tmp/x.db'", "SELECT 1; SELECT 2"} {
			code, body := post(q, "")
			if code != 400 || !strings.Contains(body, `"error"`) {
				t.Errorf("%q: %d %s, want 400", q, code, body)
			}
		}
	})
	t.Run("check", func(t *testing.T) {
		resp, err := http.Post(s.url+"/admin/check", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res check.Result
		json.NewDecoder(resp.Body).Decode(&res)
		if resp.StatusCode != 200 || res.Mismatches != 0 || res.Resources != 6 {
			t.Errorf("check: %d %+v", resp.StatusCode, res)
		}
	})
}

var _ = netip.Addr{}
var _ = os.Getenv
