package main

// End-to-end test of the dashboard in a real headless Chromium (Debian's
// chromium, installed when absent) driven by chromedp against the real
// binary: sign in with the demo account's key, the Overview page, the IP
// page, then on the Alerts page import (rejected lines stay), a list change
// arrives, its alert appears, acknowledge, mute. A screenshot of every
// page is checked (PNG, < 150 KB) and, with NETWARDEN_SCREENSHOTS=1,
// written to docs/screenshots/.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumFlags are the flags the dashboard tests launch Chromium with
// (plus a fresh --user-data-dir per test).
var chromiumFlags = []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"disable-background-networking", "disable-component-update", "disable-sync"}

// browser starts headless Chromium and returns a chromedp context.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := needTool(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 800)}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1100, 800)); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return bctx
}

// cdp runs chromedp actions with a timeout, failing the test with what
// the step was.
func cdp(t *testing.T, ctx context.Context, step string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// val runs one chromedp action and returns its value.
func val[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// text is the visible text of the element sel (CSS) selects.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return val(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// snapshot writes a list version (a timestamped file) into dir.
func snapshot(t *testing.T, dir string, at time.Time, entries ...string) {
	t.Helper()
	name := filepath.Join(dir, at.UTC().Format("20060102T150405Z")+".txt")
	if err := os.WriteFile(name+".tmp", []byte(strings.Join(entries, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(name+".tmp", name); err != nil {
		t.Fatal(err)
	}
}

// screenshot captures the viewport, checks it is a PNG under 150 KB and
// saves it to docs/screenshots with NETWARDEN_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf := val(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s: not a PNG: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() < 800 || len(buf) >= 150<<10 {
		t.Fatalf("screenshot %s: %v, %d bytes (want ≥ 800 px wide, < 150 KB)", name, b, len(buf))
	}
	if os.Getenv("NETWARDEN_SCREENSHOTS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDashboardE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary and Chromium")
	}
	ctx := browser(t)

	// Two small lists with a past: 198.51.100.23 went on LIST-A, then on
	// LIST-B too, then off LIST-A.
	feeds := t.TempDir()
	listA, listB := filepath.Join(feeds, "a"), filepath.Join(feeds, "b")
	for _, d := range []string{listA, listB} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	snapshot(t, listA, t0, "198.51.100.23", "203.0.113.0/24")
	snapshot(t, listB, t0.Add(24*time.Hour), "198.51.100.23", "203.0.113.9")
	snapshot(t, listA, t0.Add(48*time.Hour), "203.0.113.0/24")
	extra := fmt.Sprintf("scrape: {feeds: [{name: LIST-A, kind: ip, format: plain, source: %q, every: 1s}, {name: LIST-B, kind: ip, format: plain, source: %q, every: 1s}]}", listA, listB)
	s := newServer(t, nil, extra)

	// make demo: the demo account is created on first start, its key printed.
	out, err := exec.Command(s.bin, "account", "demo", "--config", s.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("account demo: %v\n%s", err, out)
	}
	i := strings.Index(string(out), "nwk_")
	if i < 0 || !strings.Contains(string(out), "dashboard: http://"+s.http+"/ui/") {
		t.Fatalf("account demo printed no key or link:\n%s", out)
	}
	key := strings.Fields(string(out)[i:])[0]
	if out2, err := exec.Command(s.bin, "account", "demo", "--config", s.cfgPath).CombinedOutput(); err != nil || strings.Contains(string(out2), "nwk_") || !strings.Contains(string(out2), "exists") {
		t.Fatalf("second account demo (must not create or print a key): %v\n%s", err, out2)
	}
	s.start()
	s.waitIdle(2 * time.Minute)
	base := "http://" + s.http

	// Sign in.
	cdp(t, ctx, "sign in", time.Minute,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="overview"]`)),
	)
	if email, plan := text(t, ctx, "#acct-email"), text(t, ctx, "#acct-plan"); email != demoEmail || plan != "DEVELOPER" {
		t.Fatalf("overview shows %q on %q", email, plan)
	}
	limits := text(t, ctx, "#limits")
	for _, want := range []string{"Watched addresses", "65,536", "API hits today", "100,000"} {
		if !strings.Contains(limits, want) {
			t.Fatalf("overview limits lack %q: %q", want, limits)
		}
	}
	// The session cookie is HttpOnly: the page's script cannot read it.
	if cookies := val(t, ctx, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(cookies, "nw_session") {
		t.Fatalf("session cookie readable by script: %q", cookies)
	}

	// The IP page: current lists, the timeline, the chart.
	cdp(t, ctx, "IP page", time.Minute,
		chromedp.Navigate(base+"/ui/ip/198.51.100.23"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="ip"]`)),
	)
	current, timeline := text(t, ctx, "#current-body"), text(t, ctx, "#timeline")
	chartLines := val(t, ctx, "chart", chromedp.Evaluate[int](`document.querySelectorAll('#listings-chart path.line').length`))
	if strings.TrimSpace(current) != "LIST-B" || chartLines != 1 {
		t.Fatalf("IP page: current %q, chart lines %d", current, chartLines)
	}
	if strings.Count(timeline, "added to") != 2 || strings.Count(timeline, "removed from") != 1 {
		t.Fatalf("IP page timeline: %q", timeline)
	}
	screenshot(t, ctx, "ip")
	// A range: the lists covering it and what is listed inside.
	cdp(t, ctx, "IP page of a range", time.Minute,
		chromedp.Navigate(base+"/ui/ip/203.0.113.0/24"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="ip"]`)),
	)
	if current, inside := text(t, ctx, "#current-lists"), text(t, ctx, "#inside"); current != "LIST-A" || !strings.Contains(inside, "203.0.113.9\tLIST-B") {
		t.Fatalf("range page: current %q, inside %q", current, inside)
	}

	dashboardAlerts(t, ctx, base, listA, listB)
	cdp(t, ctx, "taller viewport", 10*time.Second, chromedp.EmulateViewport(1100, 1250))
	screenshot(t, ctx, "alerts")

	// The overview counts what the account now watches: the /28 and
	// 198.51.100.23, 17 addresses; one mute.
	cdp(t, ctx, "overview again", time.Minute,
		chromedp.EmulateViewport(1100, 800),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="overview"]`)),
	)
	if limits := text(t, ctx, "#limits"); !strings.Contains(limits, "Watched addresses\n17 / 65,536") || !strings.Contains(limits, "Muted entries\n1 /") {
		t.Fatalf("overview after the alerts flow: %q", limits)
	}
	screenshot(t, ctx, "overview")
}

// dashboardAlerts drives the Alerts page: import, a change arrives, the
// alert appears, acknowledge, mute.
func dashboardAlerts(t *testing.T, ctx context.Context, base, listA, listB string) {
	t.Helper()
	cdp(t, ctx, "import", time.Minute,
		chromedp.Navigate(base+"/ui/alerts"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="alerts"]`)),
		chromedp.SetValue(chromedp.CSS("#import-text"), "# our office\n192.0.2.0/28\n198.51.100.23\nnot-an-ip\n10.0.0.0/33\n"),
		chromedp.Click(chromedp.CSS("#import-submit")),
		chromedp.WaitVisible(chromedp.CSS("#import-result .msg")),
	)
	left := val(t, ctx, "import box", chromedp.Value(chromedp.CSS("#import-text")))
	result := text(t, ctx, "#import-result")
	if left != "not-an-ip\n10.0.0.0/33" || !strings.Contains(result, "Imported 2") || !strings.Contains(result, "not-an-ip") {
		t.Fatalf("after import: box %q, result %q", left, result)
	}
	cdp(t, ctx, "watched table", 30*time.Second, chromedp.WaitVisible(chromedp.CSS("#watched-table")))
	if watched := text(t, ctx, "#watched-table"); !strings.Contains(watched, "192.0.2.0/28") || !strings.Contains(watched, "198.51.100.23") {
		t.Fatalf("watched table: %q", watched)
	}

	// A list change arrives: 192.0.2.7 enters LIST-A.
	snapshot(t, listA, time.Now(), "203.0.113.0/24", "192.0.2.7")
	row := waitAlert(t, ctx, base, "192.0.2.7", "LIST-A")
	acked := `#activity-table tr[data-status="acknowledged"]`
	cdp(t, ctx, "acknowledge", 30*time.Second,
		chromedp.Click(chromedp.CSS(row+" button.ack")),
		chromedp.WaitVisible(chromedp.CSS(acked+` a[href="/ui/ip/192.0.2.7"]`)),
	)
	if status := text(t, ctx, acked+" .status"); status != "acknowledged" {
		t.Fatalf("status after Acknowledge: %q", status)
	}
	cdp(t, ctx, "mute", 30*time.Second,
		chromedp.Click(chromedp.CSS(acked+" button.mute")),
		chromedp.WaitVisible(chromedp.CSS("#mutes-table")),
	)
	if mutes := text(t, ctx, "#mutes-table"); !strings.Contains(mutes, "192.0.2.7") {
		t.Fatalf("mutes table: %q", mutes)
	}

	// Muted: 192.0.2.7 entering LIST-B raises nothing, 192.0.2.9 does.
	snapshot(t, listB, time.Now(), "203.0.113.9", "192.0.2.7", "192.0.2.9")
	waitAlert(t, ctx, base, "192.0.2.9", "LIST-B")
	if id := findAlert(t, ctx, "192.0.2.7", "LIST-B"); id != "" {
		t.Fatalf("alert %s for the muted 192.0.2.7 on LIST-B", id)
	}
}

// findAlert returns the id of the activity table's alert for res
// triggered by list, or "".
func findAlert(t *testing.T, ctx context.Context, res, list string) string {
	t.Helper()
	return val(t, ctx, "find alert", chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { const r = [...document.querySelectorAll('#activity-table tr[data-id]')].find(r => r.querySelector('a[href="/ui/ip/%s"]') && r.children[4].textContent === %q); return r ? r.dataset.id : ''; })()`, res, list)))
}

// waitAlert reloads the Alerts page until the activity table shows an
// alert for res triggered by list, and returns its row's selector.
func waitAlert(t *testing.T, ctx context.Context, base, res, list string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		cdp(t, ctx, "reload alerts", 30*time.Second,
			chromedp.Navigate(base+"/ui/alerts"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-ready="alerts"]`)),
		)
		if id := findAlert(t, ctx, res, list); id != "" {
			return fmt.Sprintf(`#activity-table tr[data-id="%s"]`, id)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert for %s on %s within 90 s; activity: %q", res, list, text(t, ctx, "#activity"))
		}
		time.Sleep(time.Second)
	}
}
