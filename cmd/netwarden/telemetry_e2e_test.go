package main

import (
	"bufio"
	"bytes"
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

const sharedData = "../../../shared/data"

// telemetryTopic reads netwarden.telemetry of the server's embedded broker
// over TCP until it is quiet for a second.
func telemetryTopic(t *testing.T, kport int) []detect.Point {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", kport)), kgo.ConsumeTopics(broker.TopicTelemetry),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []detect.Point
	for quiet := 0; quiet < 2; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			var p detect.Point
			if err := json.Unmarshal(r.Value, &p); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			if k := p.Datasource + "/" + p.EntityType + "/" + p.EntityCode; string(r.Key) != k {
				t.Fatalf("record key %q for %s", r.Key, k)
			}
			out = append(out, p)
			n++
		})
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return out
}

// TestTelemetryBinary runs the real binary: serve with the simulator on
// (backfill, live, restart without republishing), POST /v1/telemetry with
// a telemetry key, netwarden bgp into the same broker, and netwarden
// simulate to stdout.
func TestTelemetryBinary(t *testing.T) {
	extra := "simulate: {enabled: true, backfill: 2h, countries: 4, regions: -1, asns: 2, random_per_day: -1, ongoing: 1}"
	catalogue, _ := filepath.Abs(filepath.Join(sharedData, "outages", "ioda-investigated-outages-2018-2020.csv"))
	if _, err := os.Stat(catalogue); err == nil {
		extra = strings.Replace(extra, "}", fmt.Sprintf(", catalogue: %q}", catalogue), 1)
	}
	// Metadata from the shared data when present (the simulator falls back
	// to a built-in entity list otherwise); an empty feed keeps serve up.
	var files []string
	for _, f := range []string{"country-codes.csv", "GeoLite2-ASN-Test.mmdb", "GeoLite2-City-Test.mmdb"} {
		p, _ := filepath.Abs(filepath.Join(sharedData, "geo", f))
		if _, err := os.Stat(p); err != nil {
			p = ""
		}
		files = append(files, p)
	}
	extra += fmt.Sprintf("\nentity: {countries_csv: %q, asn_db: %q, city_db: %q}", files[0], files[1], files[2])
	feedDir := filepath.Join(t.TempDir(), "feed")
	if err := os.MkdirAll(feedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	absShared, _ := filepath.Abs(sharedBlocklists)
	rel, err := filepath.Rel(absShared, feedDir)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, []listRun{{list: "EMPTY", dir: rel, kind: "ip", format: "plain"}}, extra)
	acct := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(s.bin, append(append([]string{"account"}, args...), "--config", filepath.Base(s.cfgPath))...)
		cmd.Dir = filepath.Dir(s.cfgPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("netwarden account %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	acct("create", "--email", "probe@example.net", "--json")
	out := acct("key", "1", "--scopes", "telemetry")
	key := strings.TrimSpace(out[strings.Index(out, "nwk_"):])

	s.start()
	waitHealthy(t, s)
	now := time.Now().Unix()
	body := fmt.Sprintf("{\"datasource\":\"ucsd-nt\",\"entity_type\":\"asn\",\"entity_code\":\"AS64511\",\"time\":%d,\"value\":42}\n"+
		"{\"datasource\":\"ucsd-nt\",\"entity_type\":\"asn\",\"entity_code\":\"AS64511\",\"time\":%d,\"value\":-1}\n", now-600, now-600)
	req, _ := http.NewRequest("POST", "http://"+s.http+"/v1/telemetry", strings.NewReader(body))
	req.Header.Set("X-Auth-Token", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"accepted":1`) || !strings.Contains(string(b), `"index":1`) {
		t.Fatalf("POST /v1/telemetry: %d %s", resp.StatusCode, b)
	}

	// The BGP path: the signal of a real MRT update file into the same topic.
	updates, _ := filepath.Abs(filepath.Join(sharedData, "bgp", "updates.20160811.1600.gz"))
	if _, err := os.Stat(updates); err == nil {
		code, stderr := runBin(t, t.TempDir(), 2*time.Minute, "bgp", "--kafka.brokers", fmt.Sprintf("127.0.0.1:%d", s.kport), "--pfx2as", "", "--countries", "", updates)
		if code != 0 {
			t.Fatalf("netwarden bgp: exit %d: %s", code, stderr)
		}
	} else {
		t.Logf("no %s: BGP path not run", updates)
	}

	first := waitPoints(t, s.kport, func(ps []detect.Point) bool { return countSim(ps) >= 4*3*12 })
	s.stop()
	statePath := filepath.Join(s.dataDir, "simulate", "state.json")
	if _, err := os.Stat(statePath); err != nil {
		t.Fatalf("no simulator state: %v", err)
	}
	// A restart continues where it stopped: no simulated bin twice.
	s.start()
	waitHealthy(t, s)
	time.Sleep(2 * time.Second)
	all := telemetryTopic(t, s.kport)
	seen := map[detect.Point]bool{}
	var posted, bgpPts int
	for _, p := range all {
		switch {
		case p.EntityCode == "64511":
			posted++
			if p.Time != (now-600)/300*300 || p.Value != 42 {
				t.Errorf("posted point stored as %+v", p)
			}
			continue
		case p.Datasource == "bgp" && p.Time < 1_500_000_000:
			bgpPts++
			continue
		}
		k := p
		k.Value = 0
		if seen[k] {
			t.Fatalf("simulated bin %+v published twice (restart republished)", p)
		}
		seen[k] = true
		if p.Time+detect.Defaults().Datasources[p.Datasource].Bin > time.Now().Unix()+1 {
			t.Fatalf("simulated bin %+v published before it ended", p)
		}
	}
	if posted != 1 {
		t.Errorf("%d posted points on the topic, want 1", posted)
	}
	if _, err := os.Stat(updates); err == nil && bgpPts == 0 {
		t.Error("netwarden bgp published nothing")
	}
	if countSim(all) < countSim(first) {
		t.Errorf("%d simulated points after the restart, %d before", countSim(all), countSim(first))
	}
	s.stop()

	// netwarden simulate to stdout: NDJSON points, backfill only.
	cmd := exec.Command(s.bin, "simulate", "--data.dir", t.TempDir(), "--out", "-", "--follow=false", "--simulate.backfill", "1h")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("netwarden simulate: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(&stdout)
	n := 0
	for sc.Scan() {
		var p detect.Point
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || p.Datasource == "" || p.EntityCode == "" || p.Time == 0 {
			t.Fatalf("line %d %q: %v", n+1, sc.Text(), err)
		}
		n++
	}
	if n < 100 {
		t.Errorf("netwarden simulate wrote %d points for an hour", n)
	}
	// netwarden observe: probing observations of a real pfx2as table's /24s.
	if pfx, _ := filepath.Abs(filepath.Join(sharedData, "geo", "routeviews-rv2-20170329-0200.pfx2as.gz")); fileExists(pfx) {
		dir := t.TempDir()
		obs := "1600000000 1.0.4.1\n1600000001 1.0.4.77\n1600000002 1.0.5.1\n1600000900 1.0.4.1\n"
		if err := os.WriteFile(filepath.Join(dir, "obs.txt"), []byte(obs), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stderr := runBin(t, dir, time.Minute, "observe", "--data.dir", dir, "--datasource", "ping-slash24", "--pfx2as", pfx, "--countries", "", "--out", "pts.ndjson", "obs.txt")
		b, _ := os.ReadFile(filepath.Join(dir, "pts.ndjson"))
		// 1.0.4.0/24 and 1.0.5.0/24 are both AS56203 in that table: 2 /24s, then 1.
		want := `{"datasource":"ping-slash24","entity_type":"asn","entity_code":"56203","time":1599999600,"value":2}` + "\n" +
			`{"datasource":"ping-slash24","entity_type":"asn","entity_code":"56203","time":1600000800,"value":1}` + "\n"
		if code != 0 || string(b) != want {
			t.Errorf("netwarden observe: exit %d %s; wrote\n%s\nwant\n%s", code, stderr, b, want)
		}
	}
	if code, stderr := runBin(t, t.TempDir(), time.Minute, "simulate", "--data.dir", t.TempDir()); code == 0 || !strings.Contains(stderr, "--kafka.brokers") {
		t.Errorf("simulate without a destination: exit %d, %q", code, stderr)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func countSim(ps []detect.Point) int {
	n := 0
	for _, p := range ps {
		if p.EntityCode != "64511" && p.Time > 1_500_000_000 {
			n++
		}
	}
	return n
}

func waitHealthy(t *testing.T, s *server) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if code, err := s.get("/readyz", nil); err == nil && code == 200 {
			return
		}
		if s.cmd.ProcessState != nil {
			t.Fatalf("server exited: %v", s.cmd.ProcessState)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("server not ready within a minute")
}

func waitPoints(t *testing.T, kport int, ok func([]detect.Point) bool) []detect.Point {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ps := telemetryTopic(t, kport)
		if ok(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d points on the topic (%d simulated)", len(ps), countSim(ps))
		}
	}
}

// TestTelemetryCLIDetectBins: netwarden observe and simulate bin points
// as the config's detect section says (serve's intake and detector do),
// not as detect's defaults.
func TestTelemetryCLIDetectBins(t *testing.T) {
	dir := t.TempDir()
	cfg := "detect:\n  datasources:\n    ping-slash24: {bin: 900, window: 604800, warm_up: 100, min_predicted: 10, warning: 0.8, critical: 0.5, min_duration: 1, accept_after: 200}\n"
	if err := os.WriteFile(filepath.Join(dir, "cfg.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runBin(t, dir, time.Minute, "simulate", "--config", "cfg.yaml", "--data.dir", dir, "--out", "sim.ndjson", "--follow=false", "--simulate.backfill", "2h")
	if code != 0 {
		t.Fatalf("netwarden simulate: exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "sim.ndjson"))
	ping := 0
	for line := range strings.Lines(string(b)) {
		var p detect.Point
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("simulate wrote %q: %v", line, err)
		}
		if p.Datasource == detect.PingSlash24 {
			ping++
			if p.Time%900 != 0 {
				t.Fatalf("simulated %+v: not on the configured 900 s bins", p)
			}
		}
	}
	if ping == 0 {
		t.Fatal("simulate wrote no ping-slash24 point")
	}
	pfx, _ := filepath.Abs(filepath.Join(sharedData, "geo", "routeviews-rv2-20170329-0200.pfx2as.gz"))
	if !fileExists(pfx) {
		t.Skipf("no %s: observe not run", pfx)
	}
	obs := "1600000000 1.0.4.1\n1600000001 1.0.4.77\n1600000002 1.0.5.1\n1600000900 1.0.4.1\n"
	if err := os.WriteFile(filepath.Join(dir, "obs.txt"), []byte(obs), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr = runBin(t, dir, time.Minute, "observe", "--config", "cfg.yaml", "--data.dir", dir, "--datasource", "ping-slash24", "--pfx2as", pfx, "--countries", "", "--out", "pts.ndjson", "obs.txt")
	b, _ = os.ReadFile(filepath.Join(dir, "pts.ndjson"))
	want := `{"datasource":"ping-slash24","entity_type":"asn","entity_code":"56203","time":1599999300,"value":2}` + "\n" +
		`{"datasource":"ping-slash24","entity_type":"asn","entity_code":"56203","time":1600000200,"value":1}` + "\n"
	if code != 0 || string(b) != want {
		t.Errorf("netwarden observe with 900 s ping bins: exit %d %s; wrote\n%s\nwant\n%s", code, stderr, b, want)
	}
}
