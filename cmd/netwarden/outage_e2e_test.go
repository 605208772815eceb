package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/broker"
)

// TestOutageBinary runs the real binary: telemetry produced to its
// embedded broker raises outage alerts, served by the IODA routes with
// the entity metadata, and queryable with SQL (outage_alerts,
// outage_events); after a kill -9 and a restart the alerts are the same
// (none doubled, none lost) and new telemetry still raises alerts.
func TestOutageBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	extra := "detect: {grace: 600, tick: 100ms, export_every: 500ms, datasources: {bgp: {bin: 300, window: 7200, warm_up: 6, min_predicted: 10, warning: 0.8, critical: 0.5, min_duration: 2, accept_after: 12}}}\n"
	named := false
	if abs, err := filepath.Abs("../../../shared/data/geo/country-codes.csv"); err == nil {
		if _, err := os.Stat(abs); err == nil {
			extra += fmt.Sprintf("entity: {countries_csv: %q}\n", abs)
			named = true
		}
	}
	needShared(t)
	s := newServer(t, []listRun{runs[6]}, extra) // a feed keeps the scrapers running
	s.start()
	const t0 = 1_704_067_200 // 2024-01-01: far from the wall clock, event time only
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code, err := s.get("/v2/outages/alerts?from=0&until=10", nil); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) || s.cmd.ProcessState != nil {
			t.Fatal("outage routes never answered")
		}
		time.Sleep(200 * time.Millisecond)
	}
	produce := func(from, to int, value func(i int) float64) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.kport)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			for _, e := range []struct {
				typ, code string
				v         float64
			}{{"country", "US", value(i)}, {"asn", "64500", 500}} {
				v, _ := json.Marshal(detect.Point{Datasource: detect.BGP, EntityType: e.typ, EntityCode: e.code, Time: int64(t0 + 300*i), Value: e.v})
				recs = append(recs, &kgo.Record{Topic: broker.TopicTelemetry, Key: []byte("bgp/" + e.typ + "/" + e.code), Value: v})
			}
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// US: 100 for 40 bins, 10 for 8 bins (critical), 100 again.
	produce(0, 80, func(i int) float64 {
		if i >= 40 && i < 48 {
			return 10
		}
		return 100
	})
	type alert struct {
		Time      int64  `json:"time"`
		Level     string `json:"level"`
		Condition string `json:"condition"`
		MetaType  string `json:"metaType"`
		MetaCode  string `json:"metaCode"`
		Meta      struct {
			Name  string         `json:"name"`
			Attrs map[string]any `json:"attrs"`
		} `json:"meta"`
	}
	alerts := func() []alert {
		t.Helper()
		var env struct {
			Type string `json:"type"`
			Data struct {
				Alerts []alert `json:"alerts"`
			} `json:"data"`
		}
		if code, err := s.get(fmt.Sprintf("/ioda/data/alerts?from=%d&until=%d&annotateMeta=true", t0, t0+86400), &env); err != nil || code != 200 || env.Type != "watchtower.alerts" {
			t.Fatalf("ioda alerts: %d %v %+v", code, err, env)
		}
		return env.Data.Alerts
	}
	waitAlerts := func(n int) []alert {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			als := alerts()
			if len(als) >= n {
				return als
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d alerts, want %d: %+v", len(als), n, als)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	als := waitAlerts(2)
	want := []string{fmt.Sprintf("country/US@%d critical", t0+300*40), fmt.Sprintf("country/US@%d normal", t0+300*48)}
	check := func(als []alert) {
		t.Helper()
		var got []string
		for _, a := range als {
			got = append(got, fmt.Sprintf("%s/%s@%d %s", a.MetaType, a.MetaCode, a.Time, a.Level))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("alerts %v, want %v", got, want)
		}
	}
	check(als)
	if named && (als[0].Meta.Name != "United States of America" || als[0].Meta.Attrs["fqid"] != "geo.netacuity.NA.US") {
		t.Fatalf("US meta %+v", als[0].Meta)
	}
	sql := func(q string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+s.http+"/sql", strings.NewReader(q))
		req.Header.Set("Accept", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("sql %q: %d %s", q, resp.StatusCode, b)
		}
		return strings.TrimSpace(string(b))
	}
	waitSQL := func(q, want string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			got := sql(q)
			if strings.HasSuffix(got, "\n"+want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sql %q = %q, want last line %q", q, got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitSQL(`SELECT count(*) || ' ' || min(level) FROM outage_alerts WHERE entity_code = 'US'`, "2 critical")
	waitSQL(`SELECT count(*) || ' ' || max(duration_seconds) FROM outage_events`, "1 2400")
	// /healthz reports the outage pipeline (serve wires it): running,
	// nothing left to consume, exported, no outage problem.
	var h struct {
		Problems []string `json:"problems"`
		Outage   struct {
			State     string `json:"state"`
			Lag       int64  `json:"lag"`
			Watermark int64  `json:"watermark"`
			Export    struct {
				LastSuccess string `json:"last_success"`
			} `json:"export"`
		} `json:"outage"`
	}
	if code, err := s.get("/healthz", &h); err != nil || code != 200 || h.Outage.State != "running" || h.Outage.Lag != 0 ||
		h.Outage.Watermark < t0+300*79 || h.Outage.Export.LastSuccess == "" || strings.Contains(strings.Join(h.Problems, ";"), "outage") {
		t.Fatalf("/healthz outage: %d %v %+v", code, err, h)
	}

	s.kill()
	s.start()
	produce(80, 108, func(i int) float64 {
		if i >= 100 {
			return 1 // a second outage, ongoing (shorter than accept_after)
		}
		return 100
	})
	want = append(want, fmt.Sprintf("country/US@%d critical", t0+300*100))
	check(waitAlerts(3))
	waitSQL(`SELECT count(*) FILTER (WHERE ongoing) || ' ' || count(*) FROM outage_events`, "1 2")
	s.stop()

	// The CLI reads the last export (its manifest) while the server is down.
	cmd := exec.Command(s.bin, "sql", "--config", filepath.Base(s.cfgPath), "--format", "csv",
		"SELECT count(*) AS n FROM outage_alerts WHERE entity_code = 'US'")
	cmd.Dir = filepath.Dir(s.cfgPath)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "n\n3" {
		t.Fatalf("netwarden sql: %v %q", err, out)
	}
}

// TestDetectConfigErrorOnce: a bad detect: section is reported once.
func TestDetectConfigErrorOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "netwarden.yaml")
	if err := os.WriteFile(path, []byte("data: {dir: "+filepath.Dir(path)+"}\ndetect: {tick: -1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := flags{config: path}
	_, err := f.resolve()
	if err == nil || strings.Count(err.Error(), "detect.tick must be positive") != 1 {
		t.Fatalf("resolve: %v; want the detect.tick error once", err)
	}
}
