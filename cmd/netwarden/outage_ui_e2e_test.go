package main

// End-to-end tests of the API docs page and the outage dashboard pages in headless Chromium
// against the real binary: /docs renders every operation of /openapi.json; simulated
// telemetry (ingest/simulate, three days of four entities, one ended and one ongoing outage)
// is published to netwarden.telemetry, the server's outage service detects the outages, and
// the Outages page lists them, linking to entity pages that plot each signal with its
// baseline, the periods out of normal and the alerts.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/ingest/simulate"
	"github.com/netwarden/netwarden/internal/broker"
)

func TestDocsPageE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary and Chromium")
	}
	ctx := browser(t)
	s := newServer(t, nil, entityConfig(t)+"\n"+oneFeed(t))
	s.start()
	base := "http://" + s.http
	waitReady(t, base, time.Minute)

	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ops := 0
	for _, item := range doc.Paths {
		for m := range item {
			if m != "head" {
				ops++
			}
		}
	}
	cdp(t, ctx, "docs page", time.Minute,
		chromedp.Navigate(base+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(`details.op`)),
	)
	shown := val(t, ctx, "operations shown", chromedp.Evaluate[int](`document.querySelectorAll('details.op').length`))
	if shown != ops || ops < 40 {
		t.Fatalf("/docs shows %d operations, /openapi.json has %d", shown, ops)
	}
	page := text(t, ctx, "#ops")
	for _, want := range []string{"/v2/entities/query", "/metadata/changes/ip/{res}", "/v1/alerts/watchlist"} {
		if !strings.Contains(page, want) {
			t.Errorf("/docs lacks %s", want)
		}
	}
	// Open one operation: its parameters and its answer's schema are rendered.
	cdp(t, ctx, "open an operation", 30*time.Second,
		chromedp.Click(chromedp.CSS(`details.op[data-search*="/v2/entities/query"] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`details.op[open] table`)),
	)
	opened := text(t, ctx, `details.op[open]`)
	for _, want := range []string{"relatedTo", "entityType", "200", "400"} {
		if !strings.Contains(opened, want) {
			t.Errorf("opened operation lacks %q: %q", want, opened)
		}
	}
	outageShot(t, ctx, "docs")
	// The filter hides what does not match.
	cdp(t, ctx, "filter", 30*time.Second, chromedp.SendKeys(chromedp.CSS("#filter"), "watchlist"))
	visible := val(t, ctx, "filtered", chromedp.Evaluate[int](`[...document.querySelectorAll('details.op')].filter(d => d.style.display !== 'none').length`))
	if visible < 5 || visible >= ops {
		t.Errorf("filter 'watchlist' leaves %d of %d operations", visible, ops)
	}
	if groups := val(t, ctx, "groups shown", chromedp.Evaluate[int](`[...document.querySelectorAll('section.tag')].filter(g => g.style.display !== 'none').length`)); groups != 1 {
		t.Errorf("filter 'watchlist' leaves %d groups, want 1", groups)
	}
}

func TestOutageDashboardE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary and Chromium")
	}
	ctx := browser(t)
	s := newServer(t, nil, entityConfig(t)+"\n"+oneFeed(t)+"\ndetect: {tick: 1s}")
	out, err := exec.Command(s.bin, "account", "demo", "--config", s.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("account demo: %v\n%s", err, out)
	}
	i := strings.Index(string(out), "nwk_")
	if i < 0 {
		t.Fatalf("account demo printed no key:\n%s", out)
	}
	key := strings.Fields(string(out)[i:])[0]
	s.start()
	base := "http://" + s.http
	waitReady(t, base, time.Minute)

	// Three days of signals up to now: the US lost connectivity for 3 hours a day ago (all
	// three signals), AS15169 lost BGP and probing two hours ago and has not recovered.
	now := time.Now().UTC().Truncate(time.Hour)
	start := now.Add(-72 * time.Hour)
	cfg := simulate.Defaults()
	// Missing bins (a tenth) fall inside the outages too: the charts must not cut the
	// periods out of normal there.
	cfg.Seed, cfg.Start, cfg.Duration, cfg.MissingRate = 7, start, 72*time.Hour, 0.1
	gen, err := simulate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A region code is any string without blanks, and its name is the code: this one is HTML
	// that the pages must show as text (no slash: /v2/signals/raw/{type}/{code} cannot
	// address a code holding one).
	const hostile = `<b>xss<i>`
	ents := []simulate.EntitySpec{{Type: "country", Code: "US", Size: 20000, UTCOffset: -5}, {Type: "asn", Code: "15169", Size: 3000},
		{Type: "region", Code: "5332921", Size: 4000, UTCOffset: -8}, {Type: "country", Code: "VE", Size: 5000, UTCOffset: -4},
		{Type: "region", Code: hostile, Size: 3000}}
	inj := []simulate.Injection{
		{ID: "us", EntityType: "country", EntityCode: "US", Start: now.Add(-27 * time.Hour), End: now.Add(-24 * time.Hour), Datasources: simulate.Datasources},
		{ID: "google", EntityType: "asn", EntityCode: "15169", Start: now.Add(-2 * time.Hour), End: now.Add(24 * time.Hour), Datasources: []string{simulate.DatasourceBGP, simulate.DatasourcePing}},
		{ID: "hostile", EntityType: "region", EntityCode: hostile, Start: now.Add(-2 * time.Hour), End: now.Add(24 * time.Hour), Datasources: []string{simulate.DatasourceBGP}},
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.kport)), kgo.DefaultProduceTopic(broker.TopicTelemetry))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The random missing bins depend on the hour the test runs; these always fall inside
	// AS15169's critical bgp run: a two-bin gap, and a single bin between two gaps (a dot).
	holes := map[int64]bool{}
	for _, m := range []time.Duration{60, 55, 45, 35} {
		holes[now.Add(-m*time.Minute).Unix()] = true
	}
	var recs []*kgo.Record
	for p := range simulate.Points(gen.Generate(ents, inj)) {
		if p.Time >= now.Unix() || p.Datasource == simulate.DatasourceBGP && p.EntityCode == "15169" && holes[p.Time] {
			continue
		}
		v, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(p.Datasource + "/" + p.EntityType + "/" + p.EntityCode), Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("publish %d telemetry points: %v", len(recs), err)
	}
	t.Logf("published %d telemetry points", len(recs))

	// The outage service finds both outages.
	type event struct {
		Location string `json:"location"`
		Ongoing  bool   `json:"ongoing"`
		Level    string `json:"level"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	hostileSeen := false
	for {
		var env struct {
			Data []event `json:"data"`
		}
		if _, err := s.get(fmt.Sprintf("/v2/outages/events?from=%d&until=%d", start.Unix(), now.Unix()+3600), &env); err != nil {
			t.Fatal(err)
		}
		ongoing, ended := false, false
		for _, e := range env.Data {
			ongoing = ongoing || e.Location == "asn/15169" && e.Ongoing
			ended = ended || e.Location == "country/US" && !e.Ongoing
			hostileSeen = hostileSeen || e.Location == "region/"+hostile
		}
		if ongoing && ended && hostileSeen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outage events after 3 min: %+v", env.Data)
		}
		time.Sleep(time.Second)
	}

	cdp(t, ctx, "sign in", time.Minute,
		chromedp.Navigate(base+"/ui/outages"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="outages"]`)),
	)
	ongoing, recent := text(t, ctx, "#ongoing-body"), text(t, ctx, "#recent-body")
	if !strings.Contains(ongoing, "AS15169 (Google Inc.)") || strings.Contains(ongoing, "United States") {
		t.Errorf("ongoing outages: %q", ongoing)
	}
	if !strings.Contains(recent, "United States of America") || !strings.Contains(recent, "critical") {
		t.Errorf("recent outages: %q", recent)
	}
	if most := text(t, ctx, "#summary-table"); !strings.Contains(most, "United States of America") || !strings.Contains(most, "AS15169") {
		t.Errorf("most affected: %q", most)
	}
	if !strings.Contains(ongoing, hostile) {
		t.Errorf("the region named %s is not shown as text among the ongoing outages: %q", hostile, ongoing)
	}
	if n := val(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll('#main b, #main i').length`)); n != 0 {
		t.Errorf("an entity name was rendered as HTML: %d elements", n)
	}
	outageShot(t, ctx, "outages")
	// The entity search (GET /v2/entities/query?search=) finds the AS by its organisation.
	cdp(t, ctx, "entity search", 30*time.Second,
		chromedp.SendKeys(chromedp.CSS("#entity-q"), "google"),
		chromedp.Click(chromedp.CSS(`#entity-search button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#search-results a[href="/ui/entity/asn/15169"]`)),
	)

	// The ongoing outage's link opens the AS's page: three charts, each with its signal and
	// baseline; BGP and probing with the outage shaded and critical alert marks.
	cdp(t, ctx, "entity page", time.Minute,
		chromedp.Click(chromedp.CSS(`#ongoing-table tr[data-entity="asn/15169"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="entity"]`)),
	)
	if title := text(t, ctx, "#entity-title"); title != "AS15169 (Google Inc.)" {
		t.Errorf("entity page title %q", title)
	}
	type chart struct {
		DS              string
		Value, Baseline int
		Critical, Marks int
		Runs, Dots      int // the value line's pieces, and those of one bin
	}
	charts := val(t, ctx, "charts", chromedp.Evaluate[[]chart](`[...document.querySelectorAll('figure.signal')].map(f => ({
		DS: f.dataset.datasource,
		Value: (f.querySelector('path.value').getAttribute('d') || '').length,
		Baseline: (f.querySelector('path.baseline').getAttribute('d') || '').length,
		Critical: f.querySelectorAll('rect.span.critical').length,
		Marks: f.querySelectorAll('g.alert-mark.critical').length,
		Runs: (f.querySelector('path.value').getAttribute('d').match(/M/g) || []).length,
		Dots: (f.querySelector('path.value').getAttribute('d').match(/h0/g) || []).length}))`))
	if len(charts) != 3 {
		t.Fatalf("entity page charts: %+v", charts)
	}
	// The critical periods drawn equal the runs of critical verdicts of the signals the page
	// shows (bins without a verdict leave the level as it was); at least one run holds a
	// missing bin, or this data cannot check that.
	var sig struct {
		Data [][]struct {
			Datasource string     `json:"datasource"`
			Levels     []*string  `json:"levels"`
			Values     []*float64 `json:"values"`
		} `json:"data"`
	}
	pageFrom := val(t, ctx, "page range", chromedp.Evaluate[int64](`Math.floor(Date.now() / 1000) - 7 * 86400`))
	if _, err := s.get(fmt.Sprintf("/v2/signals/raw/asn/15169?from=%d&until=%d", pageFrom, time.Now().Unix()), &sig); err != nil || len(sig.Data) != 1 {
		t.Fatalf("signals: %v %+v", err, sig)
	}
	// The value line has one piece per run of bins with a value, a dot for a run of one.
	runs, gapped := map[string]int{}, false
	pieces, dots := map[string]int{}, map[string]int{}
	for _, g := range sig.Data[0] {
		n := 0
		for _, v := range append(g.Values, nil) {
			if v != nil {
				n++
				continue
			}
			if n > 0 {
				pieces[g.Datasource]++
			}
			if n == 1 {
				dots[g.Datasource]++
			}
			n = 0
		}
		prev, gap := "", false
		for _, l := range g.Levels {
			if l == nil {
				gap = gap || prev == "critical"
				continue
			}
			if *l == "critical" && prev != "critical" {
				runs[g.Datasource]++
			}
			gapped = gapped || gap && *l == "critical"
			prev, gap = *l, false
		}
	}
	if !gapped {
		t.Errorf("no critical run of AS15169 holds a missing bin: the data cannot check the charts' gaps")
	}
	for _, c := range charts {
		if c.Runs != pieces[c.DS] || c.Dots != dots[c.DS] {
			t.Errorf("%s: value line in %d pieces with %d dots; the signal has %d runs of bins, %d of one bin", c.DS, c.Runs, c.Dots, pieces[c.DS], dots[c.DS])
		}
		if c.Critical != runs[c.DS] {
			t.Errorf("%s: %d critical periods drawn, %d runs of critical verdicts", c.DS, c.Critical, runs[c.DS])
		}
	}
	for _, c := range charts {
		if c.Value < 100 || c.Baseline < 100 {
			t.Errorf("%s: signal path %d chars, baseline %d: not plotted", c.DS, c.Value, c.Baseline)
		}
		hit := c.DS == simulate.DatasourceBGP || c.DS == simulate.DatasourcePing
		if hit && (c.Critical == 0 || c.Marks == 0) {
			t.Errorf("%s: no critical period or alert mark on the chart: %+v", c.DS, c)
		}
	}
	if alerts := text(t, ctx, "#entity-alerts-body"); !strings.Contains(alerts, "critical") {
		t.Errorf("entity alerts: %q", alerts)
	}
	cdp(t, ctx, "taller viewport", 10*time.Second, chromedp.EmulateViewport(1100, 1000))
	outageShot(t, ctx, "entity")

	// The hostile region's page: its name as the title, as text.
	cdp(t, ctx, "hostile entity page", time.Minute,
		chromedp.Navigate(base+"/ui/entity/region/"+url.PathEscape(hostile)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="entity"] figure.signal`)),
	)
	if title := text(t, ctx, "#entity-title"); title != hostile {
		t.Errorf("hostile entity page title %q", title)
	}
	if n := val(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll('#main b, #main i').length`)); n != 0 {
		t.Errorf("the entity page rendered the entity's name as HTML: %d elements", n)
	}
}

// outageShot is screenshot with this bound: a PNG of at most 120 KB.
func outageShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf := val(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s: not a PNG: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() < 800 || len(buf) > 120<<10 {
		t.Fatalf("screenshot %s: %v, %d bytes (want ≥ 800 px wide, ≤ 120 KB)", name, b, len(buf))
	}
	if os.Getenv("NETWARDEN_SCREENSHOTS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// entityConfig is the entity section naming the shared geo files by absolute path (the
// server runs in a temporary directory).
func entityConfig(t *testing.T) string {
	t.Helper()
	geo, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "data", "geo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(geo); err != nil {
		t.Skipf("shared geo data absent at %s: %v", geo, err)
	}
	return fmt.Sprintf("entity: {countries_csv: %q, asn_db: %q, city_db: %q}", filepath.Join(geo, "country-codes.csv"),
		filepath.Join(geo, "GeoLite2-ASN-Test.mmdb"), filepath.Join(geo, "GeoLite2-City-Test.mmdb"))
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, base string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 after %v: %v", base, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// oneFeed is a scrape section with one small list (a server without feeds stops).
func oneFeed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	snapshot(t, dir, time.Now().Add(-time.Hour), "198.51.100.23")
	return fmt.Sprintf("scrape: {feeds: [{name: LIST-A, kind: ip, format: plain, source: %q, every: 1h}]}", dir)
}
