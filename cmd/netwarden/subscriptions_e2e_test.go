package main

// The outage subscriptions in the dashboard, in headless Chromium against
// the real binary: subscribe (a bad code shows the API's reason), an
// outage alert of a subscribed entity arrives through the subscription
// tap (stream/subscribe writing to the server's own SQLite database, as
// the outage service does in-process), it is listed on the Alerts page
// beside a blocklist alert, alone under the outage filter, then
// unsubscribe.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/stream/outage"
	"github.com/netwarden/netwarden/stream/subscribe"
)

func TestDashboardSubscriptionsE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary and Chromium")
	}
	const countries = "../../../shared/data/geo/country-codes.csv"
	if _, err := os.Stat(countries); err != nil {
		t.Skipf("shared data absent (%v)", err)
	}
	ctx := browser(t)
	abs, err := filepath.Abs(countries)
	if err != nil {
		t.Fatal(err)
	}
	feed := t.TempDir()
	snapshot(t, feed, time.Now().Add(-time.Hour), "198.51.100.23")
	s := newServer(t, nil, fmt.Sprintf("entity: {countries_csv: %q}\nscrape: {feeds: [{name: LIST-A, kind: ip, format: plain, source: %q, every: 1s}]}", abs, feed))
	out, err := exec.Command(s.bin, "account", "create", "--email", "noc@example.com", "--plan", "DEVELOPER", "--json", "--config", s.cfgPath).Output()
	if err != nil {
		t.Fatalf("account create: %v", err)
	}
	var created struct{ Key string }
	if err := json.Unmarshal(out, &created); err != nil || created.Key == "" {
		t.Fatalf("account create: %q %v", out, err)
	}
	s.start()
	s.waitIdle(2 * time.Minute)
	base := "http://" + s.http

	cdp(t, ctx, "sign in", time.Minute,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), created.Key),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="overview"]`)),
		chromedp.Click(chromedp.CSS(`nav a[data-page="subscriptions"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="subscriptions"]`)),
	)
	// subscribeTo submits the form and waits for what follows (CSS).
	subscribeTo := func(typ, code, then string) {
		t.Helper()
		cdp(t, ctx, "subscribe to "+typ+" "+code, 30*time.Second,
			chromedp.SetValue(chromedp.CSS("#sub-type"), typ),
			chromedp.SetValue(chromedp.CSS("#sub-code"), code),
			chromedp.Click(chromedp.CSS(`#subscribe button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(then)),
		)
	}
	subscribeTo("country", "us", `#subscriptions-table tr[data-entity="country/US"]`)
	subscribeTo("asn", "AS3307", `#subscriptions-table tr[data-entity="asn/3307"]`)
	if tbl := text(t, ctx, "#subscriptions-table"); !strings.Contains(tbl, "United States of America") || !strings.Contains(tbl, "AS3307") {
		t.Fatalf("subscriptions table: %q", tbl)
	}
	if n := text(t, ctx, "#subscriptions-count"); !strings.HasPrefix(n, "2 of 25 ") {
		t.Fatalf("count: %q", n)
	}
	subscribeTo("country", "USA", "#subscribe-msg .msg.err")
	if m := text(t, ctx, "#subscribe-msg"); !strings.Contains(m, "alpha-2") {
		t.Fatalf("a bad code shows %q", m)
	}
	screenshot(t, ctx, "subscriptions")

	// A blocklist alert beside them: the watched address is already on
	// LIST-A (an initial alert).
	s.must(t, created.Key, "POST", "/v1/alerts/watchlist", "198.51.100.23\n", 200)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if al, _ := s.must(t, created.Key, "GET", "/v1/alerts?type=blocklist", "", 200)["alerts"].([]any); len(al) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no blocklist alert for the watched address")
		}
	}

	// Outage alerts arrive through the tap: the account's two
	// subscriptions get a row each, Germany (not subscribed) none.
	cfg := account.Config{Path: filepath.Join(s.dataDir, "state", "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg, err := entity.Load(entity.Config{CountriesCSV: countries})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(5 * time.Minute).Unix()
	al := func(id int64, ds, typ, code string, level detect.Level, value, hist float64) outage.Alert {
		return outage.Alert{ID: id, Alert: detect.Alert{Datasource: ds, EntityType: typ, EntityCode: code, Time: now - 600 + id*300, Level: level,
			Condition: "< historical * 0.5", Value: value, HistoryValue: hist, Method: "median", Window: 86400}}
	}
	if err := subscribe.New(store, reg).OnOutageAlerts(context.Background(), []outage.Alert{
		al(1, "bgp", "country", "US", detect.Critical, 40, 100),
		al(2, "bgp", "country", "DE", detect.Critical, 10, 100),
		al(3, "ping-slash24", "asn", "3307", detect.Warning, 70, 100),
	}); err != nil {
		t.Fatal(err)
	}
	cdp(t, ctx, "alerts page, outages", time.Minute,
		chromedp.Navigate(base+"/ui/alerts"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="alerts"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#activity-table tr[data-type="outage"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#activity-table tr[data-type="blocklist"]`)),
	)
	if ok := val(t, ctx, "filter outages", chromedp.Evaluate[bool](`(() => { const s = document.getElementById('activity-type'); s.value = 'outage'; s.dispatchEvent(new Event('change')); return true; })()`)); !ok {
		t.Fatal("no type filter")
	}
	cdp(t, ctx, "filtered", 30*time.Second,
		chromedp.WaitNotPresent(chromedp.CSS(`#activity-table tr[data-type="blocklist"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#activity-table tr[data-type="outage"]`)))
	act := text(t, ctx, "#activity-table")
	for _, want := range []string{"United States of America", "outage critical", "value 40 < historical * 0.5, historical 100", "AS3307", "outage warning", "ping-slash24"} {
		if !strings.Contains(act, want) {
			t.Fatalf("activity lacks %q: %q", want, act)
		}
	}
	if strings.Contains(act, "Germany") {
		t.Fatalf("an unsubscribed outage listed: %q", act)
	}
	if n := val(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll('#activity-table tr[data-type="outage"]').length`)); n != 2 {
		t.Fatalf("%d outage rows, want 2", n)
	}
	screenshot(t, ctx, "alerts-outages")

	// The overview counts them against the plan.
	cdp(t, ctx, "overview", time.Minute,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="overview"]`)),
	)
	if limits := text(t, ctx, "#limits"); !strings.Contains(limits, "Outage subscriptions\n2 / 25") {
		t.Fatalf("overview: %q", limits)
	}

	// Unsubscribe from the country.
	cdp(t, ctx, "unsubscribe", time.Minute,
		chromedp.Navigate(base+"/ui/subscriptions"),
		chromedp.WaitVisible(chromedp.CSS(`#subscriptions-table tr[data-entity="country/US"]`)),
		chromedp.Click(chromedp.CSS(`#subscriptions-table tr[data-entity="country/US"] button.unsubscribe`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#subscriptions-table tr[data-entity="country/US"]`)),
	)
	accts, err := store.List(context.Background())
	if err != nil || len(accts) != 1 {
		t.Fatalf("accounts %v %v", accts, err)
	}
	subs, err := store.Subscriptions(context.Background(), accts[0].ID)
	if err != nil || len(subs) != 1 || subs[0].EntityType != "asn" {
		t.Fatalf("stored subscriptions after unsubscribing: %+v %v", subs, err)
	}
}
