package telemetry_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/telemetry"
)

// clock is a test clock the test moves.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(c.t.Load(), 0) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d / time.Second)) }

// runSim runs a simulator until the sink saw every bin ending by the end
// of steps clock moves of step each.
func runSim(t *testing.T, cfg telemetry.SimulateConfig, sink telemetry.Sink, clk *clock, steps int, step time.Duration) *telemetry.Simulator {
	t.Helper()
	sim, err := telemetry.NewSimulator(cfg, registry(t), sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sim.SetClock(clk.now, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	for range steps {
		time.Sleep(30 * time.Millisecond)
		clk.add(step)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return sim
}

func TestSimulatorBackfillLiveRestart(t *testing.T) {
	brk := startBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brk.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pub := telemetry.NewPublisher(cl)

	cfg := telemetry.SimulateDefaults()
	cfg.Enabled = true
	cfg.Countries, cfg.Regions, cfg.ASNs = 6, 2, 3
	cfg.Backfill, cfg.Horizon, cfg.Epoch = 12*time.Hour, time.Hour, 3*24*time.Hour
	cfg.RandomPerDay = 4
	cfg.Ongoing = 1
	cfg.StateFile = filepath.Join(t.TempDir(), "simulate", "state.json")
	if p := filepath.Join("..", "..", "..", "shared", "data", "outages", "ioda-investigated-outages-2018-2020.csv"); fileExists(p) {
		cfg.Catalogue = p
	} else {
		t.Log("no outage catalogue in ../shared/data: random outages only")
	}
	clk := &clock{}
	start := time.Date(2026, 12, 8, 1, 7, 13, 0, time.UTC)
	clk.t.Store(start.Unix())

	// First run: the backfill, then 90 minutes live; a restart: 90 more.
	sim := runSim(t, cfg, pub, clk, 9, 10*time.Minute)
	runSim(t, cfg, pub, clk, 9, 10*time.Minute)
	end := clk.now().Unix()

	pts := consumeAll(t, brk)
	v := telemetry.NewValidator(detect.Defaults(), registry(t), time.Hour, clk.now)
	type key struct{ ds, typ, code string }
	byKey := map[key][]detect.Point{}
	for _, p := range pts {
		q := p
		if err := v.Check(&q); err != nil || q != p {
			t.Fatalf("published point %+v is not valid as published: %v (%+v)", p, err, q)
		}
		if e := p.Time + v.Bin(p.Datasource); e > end {
			t.Fatalf("point %+v published before its bin ended (now %d)", p, end)
		}
		byKey[key{p.Datasource, p.EntityType, p.EntityCode}] = append(byKey[key{p.Datasource, p.EntityType, p.EntityCode}], p)
	}
	t.Logf("%d points in %d series", len(pts), len(byKey))
	if len(byKey) < 3*(6+2+3) {
		t.Fatalf("%d series, want at least %d", len(byKey), 3*(6+2+3))
	}
	// Every series: no bin twice, in time order per key, covering the
	// backfill to now but for a few missing bins.
	backfillStart := start.Unix() - int64(cfg.Backfill/time.Second)
	for k, ps := range byKey {
		bin := v.Bin(k.ds)
		want := (end - end%bin - (backfillStart - backfillStart%bin)) / bin
		for i := 1; i < len(ps); i++ {
			if ps[i].Time <= ps[i-1].Time {
				t.Fatalf("%v: bin %d after bin %d (duplicate or out of order across the restart)", k, ps[i].Time, ps[i-1].Time)
			}
		}
		if got := int64(len(ps)); got < want*9/10 || got > want+1 {
			t.Errorf("%v: %d bins, want about %d", k, got, want)
		}
	}
	// The ongoing outage shows in its entity's series: values during it
	// far below those before it.
	var now []string
	for _, inj := range sim.Injections() {
		if !strings.HasPrefix(inj.ID, "now-") {
			continue
		}
		now = append(now, inj.ID)
		if !inj.Start.Before(start) || !inj.End.After(start) {
			t.Errorf("outage %s (%s..%s) is not ongoing at the first start %s", inj.ID, inj.Start, inj.End, start)
		}
		ps := byKey[key{"bgp", inj.EntityType, inj.EntityCode}]
		var before, during []float64
		for _, p := range ps {
			switch {
			case p.Time+300 <= inj.Start.Unix():
				before = append(before, p.Value)
			case p.Time >= inj.Start.Unix() && p.Time+300 <= min(inj.End.Unix(), end):
				during = append(during, p.Value)
			}
		}
		slices.Sort(before)
		if len(before) == 0 || len(during) == 0 {
			t.Fatalf("outage %s: %d bins before, %d during", inj.ID, len(before), len(during))
		}
		if med := before[len(before)/2]; slices.Max(during) >= 0.5*med {
			t.Errorf("outage %s on %s/%s: bgp during %v, median before %g: not visible", inj.ID, inj.EntityType, inj.EntityCode, during, med)
		}
	}
	if len(now) != 1 {
		t.Errorf("ongoing outages %v, want 1", now)
	}
	if cfg.Catalogue != "" {
		n := 0
		for _, inj := range sim.Injections() {
			if strings.HasPrefix(inj.ID, "cat-") {
				n++
			}
		}
		if n == 0 {
			t.Error("no catalogue outage falls into the simulated period")
		}
	}
}

// consumeAll reads the telemetry topic until it is quiet.
func consumeAll(t *testing.T, brk interface{ Seeds() []string }) []detect.Point {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brk.Seeds()...), kgo.ConsumeTopics("netwarden.telemetry"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var mu sync.Mutex
	var out []detect.Point
	for quiet := 0; quiet < 3; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			var p detect.Point
			if err := json.Unmarshal(r.Value, &p); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
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

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestSimulatorBinsAndEntities(t *testing.T) {
	cfg := telemetry.SimulateDefaults()
	cfg.Backfill, cfg.Horizon, cfg.Epoch = 3*time.Hour, time.Hour, 2*24*time.Hour
	cfg.Countries, cfg.Regions, cfg.ASNs, cfg.RandomPerDay, cfg.Ongoing = 5, -1, -1, -1, -1
	det := detect.Defaults()
	ping := det.Datasources[detect.PingSlash24]
	ping.Bin = 900
	det.Datasources[detect.PingSlash24] = ping
	var c collect
	sim, err := telemetry.NewSimulator(cfg, registry(t), &c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SetBins(det); err != nil {
		t.Fatal(err)
	}
	sim.SetFollow(false)
	if err := sim.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	countries := map[string]bool{}
	for _, p := range c.pts {
		if p.Datasource == detect.PingSlash24 && p.Time%900 != 0 {
			t.Fatalf("ping point %+v not on the detector's 900 s bins", p)
		}
		if p.EntityType != "country" {
			t.Fatalf("point of %s/%s with only countries asked for", p.EntityType, p.EntityCode)
		}
		countries[p.EntityCode] = true
	}
	// The well-known countries lead the sample, not the alphabet's first.
	for cc := range countries {
		if !strings.Contains("US BR DE NG EG IR IN MM ID JP AU VE", cc) {
			t.Errorf("country %s sampled before the well-known ones (%v)", cc, countries)
		}
	}
	if len(countries) != 5 {
		t.Errorf("%d countries, want 5: %v", len(countries), countries)
	}
	if err := sim.SetBins(detect.Config{Datasources: map[string]detect.DatasourceConfig{detect.BGP: {Bin: 100_000}}}); err == nil {
		t.Error("a bin over a day is accepted")
	}
}

// Across a period boundary the series go on as before: the real detector
// (IODA's defaults) fed a simulation with no outage, crossing one
// boundary, raises no more warning/critical alerts than noise does. The
// trends used to restart at each period, stepping bgp down by up to ~6 %
// there: a bgp warning on many entities at once.
func TestSimulatorPeriodBoundaryNoSpuriousAlerts(t *testing.T) {
	cfg := telemetry.SimulateDefaults()
	cfg.Countries, cfg.Regions, cfg.ASNs, cfg.RandomPerDay, cfg.Ongoing = 40, -1, 40, -1, -1
	cfg.Backfill, cfg.Horizon, cfg.Epoch = 2*24*time.Hour, time.Hour, 3*24*time.Hour
	cfg.StateFile = filepath.Join(t.TempDir(), "state.json")
	cfg.MissingRate = new(0.0) // every bin published (Defaults keeps an explicit 0)
	cfg.Defaults()
	if *cfg.MissingRate != 0 {
		t.Fatalf("Defaults replaced missing_rate 0 by %g", *cfg.MissingRate)
	}
	clk := &clock{}
	start := time.Date(2026, 12, 8, 1, 7, 13, 0, time.UTC)
	clk.t.Store(start.Unix())
	var c collect
	for range 2 { // the first period's backfill, then 3 days more: across its end
		sim, err := telemetry.NewSimulator(cfg, registry(t), &c, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		sim.SetClock(clk.now, time.Millisecond)
		sim.SetFollow(false)
		if err := sim.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.add(3 * 24 * time.Hour)
	}
	boundary := start.Unix() - int64(cfg.Backfill/time.Second)
	boundary = boundary - boundary%3600 + int64(cfg.Epoch/time.Second)

	det, err := detect.New(detect.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(c.pts, func(a, b detect.Point) int { return int(a.Time - b.Time) })
	var alerts []detect.Alert
	series := map[string]bool{}
	last := map[string]int64{}
	for _, p := range c.pts {
		k := p.Datasource + "/" + p.EntityType + "/" + p.EntityCode
		series[k] = true
		bin := detect.Defaults().Datasources[p.Datasource].Bin
		if l, ok := last[k]; ok && p.Time != l+bin {
			t.Fatalf("%s: bin %d after %d with missing_rate 0 (a gap or a repeat)", k, p.Time, l)
		}
		last[k] = p.Time
		if err := det.Add(p); err != nil {
			t.Fatal(err)
		}
		alerts = append(alerts, det.Advance()...)
	}
	alerts = append(alerts, det.Flush()...)
	bad, nearBoundary := map[string]int{}, 0
	for _, a := range alerts {
		if a.Level == detect.Normal {
			continue
		}
		bad[a.Datasource]++
		if a.Time >= boundary-3600 && a.Time < boundary+6*3600 {
			nearBoundary++
		}
	}
	t.Logf("%d points, %d series, boundary %s: warning/critical alerts %v, %d within 6 h of the boundary",
		len(c.pts), len(series), time.Unix(boundary, 0).UTC(), bad, nearBoundary)
	if len(c.pts) == 0 || c.pts[len(c.pts)-1].Time < boundary+24*3600 {
		t.Fatalf("the simulation does not reach a day past the boundary")
	}
	// Noise alone: the detector's bench measured 0.06 false alerts per
	// entity-month; allow 2 % of the series over these 5 days.
	if n := bad[detect.BGP] + bad[detect.PingSlash24] + bad[detect.UCSDNT]; n > len(series)/50 || nearBoundary > 1 {
		t.Errorf("%d warning/critical alerts on %d outage-free series (%d near the period boundary)", n, len(series), nearBoundary)
	}
}

// simulate.missing_rate: absent is the default, 0 is kept (every bin
// published), out of [0, 0.5) is rejected; read as serve reads its YAML.
func TestSimulateConfigMissingRate(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want float64
		ok   bool
	}{
		{"enabled: true\n", 0.002, true},
		{"missing_rate: 0\n", 0, true},
		{"missing_rate: 0.01\n", 0.01, true},
		{"missing_rate: -0.1\n", -0.1, false},
		{"missing_rate: 0.5\n", 0.5, false},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			var c telemetry.SimulateConfig
			d := yaml.NewDecoder(strings.NewReader(tc.yaml))
			d.KnownFields(true)
			if err := d.Decode(&c); err != nil {
				t.Fatal(err)
			}
			c.Defaults()
			if *c.MissingRate != tc.want {
				t.Errorf("missing_rate %g, want %g", *c.MissingRate, tc.want)
			}
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
