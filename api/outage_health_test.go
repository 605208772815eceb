package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/stream/outage"
)

// outageProblem returns the first of /healthz's problems containing want
// ("" when none does).
func outageProblem(v map[string]any, want string) string {
	ps, _ := v["problems"].([]any)
	for _, p := range ps {
		if s, _ := p.(string); strings.Contains(s, want) {
			return s
		}
	}
	return ""
}

// TestHealthzOutage runs a real outage service and its SQL exporter on
// the embedded broker behind the API over HTTP: /readyz waits for the
// replay, /healthz is ok while telemetry flows and exports succeed, and
// turns degraded naming the problem when the export directory becomes
// unwritable (ok again once it is back), when telemetry stops arriving
// for longer than stale_after (on the service's clock), and when the
// service stops.
func TestHealthzOutage(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 2
	brk, err := broker.Start(context.Background(), bc, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(brk.Close)
	cfg := outage.Config{Path: filepath.Join(dir, "outage.db"), Tick: 50 * time.Millisecond,
		ClockLead: -1, StaleAfter: time.Minute}
	cfg.Defaults()
	store, err := outage.OpenStore(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var clock atomic.Int64 // the service's wall clock (staleness), Unix seconds
	clock.Store(time.Now().Unix())
	svc := outage.NewService(cfg, brk, store, nil, nil, log, outage.WithClock(func() time.Time { return time.Unix(clock.Load(), 0) }))
	exportDir := filepath.Join(dir, "export")
	x := outage.NewExporter(store, exportDir, 50*time.Millisecond, nil, log)
	svc.SetExporter(x)

	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	hs := httptest.NewServer(api.New(ac, api.Deps{OutageHealth: svc, Ready: func() bool {
		select {
		case <-svc.Ready():
			return true
		default:
			return false
		}
	}}, log).Handler())
	t.Cleanup(hs.Close)

	if code, v := get(t, hs.URL+"/readyz"); code != 503 {
		t.Errorf("readyz before the outage replay: %d %v, want 503", code, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svcDone, xDone := make(chan error, 1), make(chan error, 1)
	go func() { svcDone <- svc.Run(ctx) }()
	go func() { xDone <- x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-svcDone; <-xDone })

	cl, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const t0 = 1_700_000_400
	publish := func(tm int64) {
		t.Helper()
		var recs []*kgo.Record
		for _, code := range []string{"US", "FR", "DE"} {
			v, _ := json.Marshal(detect.Point{Datasource: detect.BGP, EntityType: "country", EntityCode: code, Time: tm, Value: 100})
			recs = append(recs, &kgo.Record{Topic: broker.TopicTelemetry, Key: []byte("bgp/country/" + code), Value: v})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, hs.URL+"/readyz", func(code int, _ map[string]any) bool { return code == 200 })
	for b := range int64(12) {
		publish(t0 + 300*b)
	}
	outageOf := func(v map[string]any) map[string]any { o, _ := v["outage"].(map[string]any); return o }
	v := eventually(t, hs.URL+"/healthz", func(_ int, v map[string]any) bool {
		o := outageOf(v)
		e, _ := o["export"].(map[string]any)
		return o != nil && o["lag"] == 0.0 && o["last_telemetry"] != nil && o["watermark"].(float64) > t0 && e["last_success"] != nil
	})
	if o := outageOf(v); v["status"] != "ok" || o["state"] != "running" || o["ready"] != true || v["problems"] != nil {
		t.Fatalf("healthy outage pipeline: %v", v)
	}
	if b := outageOf(v)["watermark_behind_seconds"].(float64); b < float64(clock.Load()-t0-3600) {
		t.Errorf("watermark_behind_seconds %v: the watermark is about %d s behind", b, clock.Load()-t0-3300)
	}

	// The export directory becomes a file: exports fail (also as root).
	if err := os.RemoveAll(exportDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exportDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t0 + 300*20) // moves the watermark: the next rounds must write
	v = eventually(t, hs.URL+"/healthz", func(_ int, v map[string]any) bool {
		return v["status"] == "degraded" && outageProblem(v, "outage SQL export failed") != ""
	})
	if p := outageProblem(v, "outage SQL export failed"); !strings.Contains(p, "export") || !strings.Contains(p, "not a directory") {
		t.Errorf("export problem %q does not say why", p)
	}
	if e := outageOf(v)["export"].(map[string]any); e["failures"].(float64) < outage.ExportFailing || e["last_error"] == nil {
		t.Errorf("export health %v", e)
	}
	if n := metricValue(t, hs.URL, "netwarden_outage_export_failures_total"); n < outage.ExportFailing {
		t.Errorf("netwarden_outage_export_failures_total %v, want >= %d", n, outage.ExportFailing)
	}
	// Back: the next round succeeds and the problem is gone.
	if err := os.Remove(exportDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(exportDir, 0o755); err != nil {
		t.Fatal(err)
	}
	eventually(t, hs.URL+"/healthz", func(_ int, v map[string]any) bool { return v["status"] == "ok" })
	if ts := metricValue(t, hs.URL, "netwarden_outage_export_last_success_timestamp_seconds"); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("netwarden_outage_export_last_success_timestamp_seconds %v: not recent", ts)
	}

	// Telemetry stops: past stale_after on the service's clock, degraded.
	clock.Add(int64(2 * cfg.StaleAfter / time.Second))
	v = eventually(t, hs.URL+"/healthz", func(_ int, v map[string]any) bool { return v["status"] == "degraded" })
	if p := outageProblem(v, "no telemetry produced to netwarden.telemetry"); p == "" || !strings.Contains(p, "stale_after") {
		t.Errorf("stale telemetry: problems %v", v["problems"])
	}
	publish(t0 + 300*21) // arrives again (produced now, by the real clock)
	clock.Store(time.Now().Unix())
	eventually(t, hs.URL+"/healthz", func(_ int, v map[string]any) bool { return v["status"] == "ok" })

	// The service stops (the exporter keeps running).
	cancel()
	if err := <-svcDone; err != nil {
		t.Fatal(err)
	}
	svcDone <- nil // for the cleanup
	v = eventually(t, hs.URL+"/healthz", func(_ int, v map[string]any) bool { return v["status"] == "degraded" })
	if o := outageOf(v); o["state"] != "stopped" || o["lag"] != -1.0 || outageProblem(v, "outage service stopped") == "" {
		t.Errorf("stopped service: %v", v)
	}
}

// metricValue reads one unlabelled sample from /metrics.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		var v float64
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			if err := json.Unmarshal([]byte(f[1]), &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
