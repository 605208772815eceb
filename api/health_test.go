package api_test

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
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/ingest/scrape"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/outage"
	"github.com/netwarden/netwarden/stream/processor"
)

// feedStack is the real pipeline with real scrapers reading list files:
// embedded broker over TCP, processor, live state, Parquet history,
// scrape manager, and the API over HTTP. Nothing runs until start.
type feedStack struct {
	url     string
	srv     *api.Server
	proc    *processor.Processor
	scraper *scrape.Manager
	dir     string // list files
	start   func()
}

// Lists (names prefixed with prefix: metrics are process-wide): IPLIST
// (ip.txt), DOMAINS (domains.txt), EMAILS (emails.txt).
func newFeedStack(t *testing.T, prefix string) *feedStack {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())

	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 2
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
	pc := processor.Config{FlushInterval: 50 * time.Millisecond}
	pc.Defaults()
	proc := processor.New(pc, brk, store, state, log)
	prod, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	lists := filepath.Join(dir, "lists")
	if err := os.Mkdir(lists, 0o755); err != nil {
		t.Fatal(err)
	}
	sc := scrape.Config{StateDir: filepath.Join(dir, "scrape"), Feeds: []scrape.FeedConfig{
		{Name: prefix + "IPLIST", Kind: "ip", Format: "plain", Source: filepath.Join(lists, "ip.txt"), Every: time.Second},
		{Name: prefix + "DOMAINS", Kind: "domain", Format: "plain", Source: filepath.Join(lists, "domains.txt"), Every: time.Second},
		{Name: prefix + "EMAILS", Kind: "email", Format: "plain", Source: filepath.Join(lists, "emails.txt"), Every: time.Second},
	}}
	sc.Defaults()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	scraper, err := scrape.New(sc, prod, log)
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	oc := outage.Config{Path: filepath.Join(t.TempDir(), "outage.db")}
	oc.Defaults()
	ostore, err := outage.OpenStore(oc.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ostore.Close() })
	srv := api.New(ac, api.Deps{History: proc, Live: state, Lists: scraper, Outages: outage.NewService(oc, nil, ostore, nil, nil, log), Ready: func() bool {
		select {
		case <-proc.Ready():
			return true
		default:
			return false
		}
	}}, log)
	hs := httptest.NewServer(srv.Handler())
	s := &feedStack{url: hs.URL, srv: srv, proc: proc, scraper: scraper, dir: lists}
	procDone, scrapeDone := make(chan error, 1), make(chan error, 1)
	started := false
	s.start = func() {
		started = true
		go func() { procDone <- proc.Run(ctx) }()
		<-proc.Ready()
		go func() { scrapeDone <- scraper.Run(ctx) }()
	}
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if started {
			if err := <-scrapeDone; err != nil {
				t.Errorf("scraper: %v", err)
			}
			if err := <-procDone; err != nil {
				t.Errorf("processor: %v", err)
			}
		}
		prod.Close()
		store.Close()
		brk.Close()
	})
	return s
}

func (s *feedStack) write(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// eventually polls GET path until ok accepts the answer.
func eventually(t *testing.T, url string, ok func(code int, v map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, v := get(t, url)
		if ok(code, v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: gave up at %d %v", url, code, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthReadinessAndNoData(t *testing.T) {
	s := newFeedStack(t, "")
	// Before the live state is rebuilt: not ready, alive.
	if code, v := get(t, s.url+"/readyz"); code != 503 || v["status"] != "starting" {
		t.Errorf("readyz before start: %d %v, want 503 starting", code, v)
	}
	if code, v := get(t, s.url+"/healthz"); code != 200 || v["status"] != "starting" {
		t.Errorf("healthz before start: %d %v, want 200 starting", code, v)
	}

	// Only the domain list exists: the ip and email feeds fail.
	s.write(t, "domains.txt", "evil.example\n")
	s.start()
	if code, v := get(t, s.url+"/readyz"); code != 200 || v["status"] != "ready" {
		t.Errorf("readyz after start: %d %v, want 200 ready", code, v)
	}
	h := eventually(t, s.url+"/healthz", func(_ int, v map[string]any) bool {
		f, _ := v["feeds"].(map[string]any)
		return f != nil && f["pending"] == 0.0
	})
	if h["status"] != "degraded" || fmt.Sprint(h["not_loaded"]) != "[ip email]" {
		t.Errorf("healthz with two failing feeds: %v, want degraded, not_loaded [ip email]", h)
	}
	if f := h["feeds"].(map[string]any); f["ok"] != 1.0 || f["unhealthy"] != 2.0 || f["total"] != 3.0 {
		t.Errorf("feed counts %v", f)
	}
	uf, _ := h["unhealthy_feeds"].([]any)
	if len(uf) != 2 || uf[0].(map[string]any)["name"] != "EMAILS" || !strings.Contains(fmt.Sprint(uf[0].(map[string]any)["error"]), "emails.txt") {
		t.Errorf("unhealthy_feeds %v, want EMAILS and IPLIST with the cause", uf)
	}
	if p := fmt.Sprint(h["problems"]); !strings.Contains(p, "2 of 3 feeds unhealthy") {
		t.Errorf("problems %s", p)
	}

	// No ip list ever loaded: lookups cannot say "clean".
	for _, path := range []string{"/badip/192.0.2.1", "/badip_batch?ip=192.0.2.1", "/bademail/joe@example.org"} {
		code, v := get(t, s.url+path)
		if msg, _ := v["error"].(string); code != 503 || !strings.Contains(msg, "loaded") {
			t.Errorf("GET %s with no list loaded: %d %v, want 503 explaining it", path, code, v)
		}
	}
	eventually(t, s.url+"/baddomain/www.evil.example", func(code int, v map[string]any) bool {
		return code == 200 && fmt.Sprint(v["response"]) == "[DOMAINS]"
	})
	if code, _ := get(t, s.url+"/baddomain/good.example"); code != 404 {
		t.Errorf("clean domain of a loaded kind: %d, want 404", code)
	}

	// The lists appear: healthy, and lookups answer.
	s.write(t, "ip.txt", "198.51.100.0/24\n")
	s.write(t, "emails.txt", "spam@example.org\n")
	h = eventually(t, s.url+"/healthz", func(_ int, v map[string]any) bool { return v["status"] == "ok" })
	if h["unhealthy_feeds"] != nil || h["problems"] != nil || h["not_loaded"] != nil {
		t.Errorf("healthy healthz still reports problems: %v", h)
	}
	eventually(t, s.url+"/badip/198.51.100.7", func(code int, v map[string]any) bool {
		return code == 200 && fmt.Sprint(v["response"]) == "[IPLIST]"
	})
	if code, v := get(t, s.url+"/badip/192.0.2.1"); code != 404 {
		t.Errorf("clean ip once loaded: %d %v, want 404", code, v)
	}
	if code, v := get(t, s.url+"/badip_batch?ip=192.0.2.1"); code != 200 {
		t.Errorf("batch once loaded: %d %v", code, v)
	}
}

func TestMetricsArePrometheusCompatible(t *testing.T) {
	s := newFeedStack(t, "M-")
	s.write(t, "ip.txt", "198.51.100.0/24\n")
	s.write(t, "domains.txt", "evil.example\n")
	s.start() // emails.txt is missing: EMAILS is unhealthy
	eventually(t, s.url+"/healthz", func(_ int, v map[string]any) bool {
		f, _ := v["feeds"].(map[string]any)
		return f != nil && f["ok"] == 2.0 && f["unhealthy"] == 1.0
	})
	eventually(t, s.url+"/metadata/changes/ip/198.51.100.1", func(code int, v map[string]any) bool {
		items, _ := v["changes_ip"].([]any)
		return code == 200 && len(items) == 1
	})

	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	if strings.Contains(string(body), "vmrange") {
		t.Error("/metrics still has vmrange buckets")
	}
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("prometheus text parser: %v", err)
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "netwarden_") {
			continue
		}
		if f.GetHelp() == "" || f.Type == nil || f.GetType() == dto.MetricType_UNTYPED {
			t.Errorf("%s: help %q, type %v; every family needs both (add its help to api/metrics.go)", name, f.GetHelp(), f.GetType())
		}
		if strings.HasSuffix(name, "_total") && f.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s is %v, want COUNTER", name, f.GetType())
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, m := range f.Metric {
				b := m.GetHistogram().GetBucket()
				if len(b) < 2 || b[len(b)-1].GetCumulativeCount() > m.GetHistogram().GetSampleCount() {
					t.Errorf("%s: buckets %v", name, b)
				}
			}
		}
	}
	want := map[string]dto.MetricType{
		"netwarden_http_requests_total":                 dto.MetricType_COUNTER,
		"netwarden_http_request_duration_seconds":       dto.MetricType_HISTOGRAM,
		"netwarden_history_lookup_duration_seconds":     dto.MetricType_HISTOGRAM,
		"netwarden_processor_flush_duration_seconds":    dto.MetricType_HISTOGRAM,
		"netwarden_processor_changes_total":             dto.MetricType_COUNTER,
		"netwarden_scrape_total":                        dto.MetricType_COUNTER,
		"netwarden_feed_entries":                        dto.MetricType_GAUGE,
		"netwarden_feed_up":                             dto.MetricType_GAUGE,
		"netwarden_feed_last_success_timestamp_seconds": dto.MetricType_GAUGE,
	}
	for name, typ := range want {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: %v, want a %v family", name, f, typ)
		}
	}
	// The history lookup above was observed in le buckets.
	if h := fams["netwarden_history_lookup_duration_seconds"]; h != nil && h.Metric[0].GetHistogram().GetSampleCount() == 0 {
		t.Error("history lookup histogram has no samples")
	}
	// Feed health per list.
	gauge := func(fam, list string) (float64, bool) {
		for _, m := range fams[fam].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "list" && l.GetValue() == list {
					return m.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
	for list, up := range map[string]float64{"M-IPLIST": 1, "M-DOMAINS": 1, "M-EMAILS": 0} {
		if v, ok := gauge("netwarden_feed_up", list); !ok || v != up {
			t.Errorf("netwarden_feed_up{list=%q} = %v (present %v), want %v", list, v, ok, up)
		}
		ts, ok := gauge("netwarden_feed_last_success_timestamp_seconds", list)
		if recent := time.Since(time.Unix(int64(ts), 0)) < time.Minute; up == 1 && (!ok || !recent) {
			t.Errorf("last success of %s: %v (present %v), want about now", list, ts, ok)
		}
	}
	if _, ok := gauge("netwarden_feed_last_success_timestamp_seconds", "M-EMAILS"); ok {
		t.Error("M-EMAILS never succeeded but has a last success timestamp")
	}
}

func TestHEADOnEveryGETRoute(t *testing.T) {
	s := newFeedStack(t, "H-")
	s.write(t, "ip.txt", "198.51.100.0/24\n")
	s.write(t, "domains.txt", "evil.example\n")
	s.write(t, "emails.txt", "spam@example.org\n")
	s.start()
	eventually(t, s.url+"/healthz", func(_ int, v map[string]any) bool { return v["status"] == "ok" })

	routes := s.srv.Handler().(*gin.Engine).Routes()
	head := map[string]bool{}
	for _, r := range routes {
		if r.Method == http.MethodHead {
			head[r.Path] = true
		}
	}
	n := 0
	for _, r := range routes {
		if r.Method != http.MethodGet {
			continue
		}
		n++
		t.Run(r.Path, func(t *testing.T) {
			if !head[r.Path] {
				t.Fatalf("no HEAD route for GET %s", r.Path)
			}
			path := r.Path
			for kind, v := range map[string]string{"ip": "198.51.100.1", "domain": "evil.example", "email": "spam@example.org"} {
				if strings.Contains(path, "/"+kind+"/*res") || strings.HasPrefix(path, "/bad"+kind+"/*res") {
					path = strings.Replace(path, "*res", v, 1)
				}
				if path == "/bad"+kind+"_batch" {
					path += "?" + kind + "=" + v
				}
			}
			path = strings.Replace(path, "/ui/*path", "/ui/alerts", 1)
			path = strings.Replace(path, "*entry", "192.0.2.1", 1) // watchlist and mute entries
			path = strings.Replace(path, ":entityType/:entityCode", "country/US", 1)
			if strings.HasPrefix(path, "/ioda/") || strings.HasPrefix(path, "/v2/outages/") || strings.HasPrefix(path, "/v2/signals/") {
				path += "?from=0&until=600"
			}
			if strings.Contains(path, "*") || strings.Contains(path, ":") {
				t.Fatalf("test does not know how to fill %s", r.Path)
			}
			getResp, err := http.Get(s.url + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, getResp.Body)
			getResp.Body.Close()
			headResp, err := http.Head(s.url + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(headResp.Body)
			headResp.Body.Close()
			// Account routes need a key this stack has not (TestAuthScopesAndQuota
			// checks HEAD with one); they must still answer HEAD as GET.
			if getResp.StatusCode >= 400 && !strings.HasPrefix(path, "/v1/") {
				t.Errorf("GET %s = %d; the table should give it a good request", path, getResp.StatusCode)
			}
			if headResp.StatusCode != getResp.StatusCode || headResp.Header.Get("Content-Type") != getResp.Header.Get("Content-Type") || len(b) != 0 {
				t.Errorf("HEAD %s = %d %q with %d body bytes; GET = %d %q", path, headResp.StatusCode, headResp.Header.Get("Content-Type"), len(b), getResp.StatusCode, getResp.Header.Get("Content-Type"))
			}
		})
	}
	if n < 10 {
		t.Errorf("only %d GET routes", n)
	}
}
