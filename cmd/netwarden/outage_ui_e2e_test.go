package main

// End-to-end test of the API docs page and the outage dashboard pages in headless Chromium
// against the real binary: /docs renders every operation of /openapi.json.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
