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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/watch"
	"github.com/netwarden/netwarden/stream/watchlist"
)

// watchStack is an API with a real account store, watchlist service and
// tables.
func watchStack(t *testing.T, wcfg watchlist.Config) (*httptest.Server, *account.Store, *watch.Table, *watch.Table) {
	t.Helper()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "state", "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wcfg.Defaults()
	watched, muted := watch.New(), watch.New()
	svc := watchlist.New(wcfg, store, watched, muted, log)
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Live: live.New(), Accounts: store, Watchlists: svc}, log)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); store.Close() })
	return hs, store, watched, muted
}

func sendBody(t *testing.T, method, url, key, ctype, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", key)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{code: resp.StatusCode, hdr: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, url, b)
	}
	return a
}

// jsonOf renders v as compact JSON for comparisons.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWatchlistAPI(t *testing.T) {
	ctx := context.Background()
	hs, store, watched, muted := watchStack(t, watchlist.Config{MaxImportBytes: 4096, MaxMutes: 2})
	a, key, err := store.Create(ctx, "a@example.com", "FREE", false)
	if err != nil {
		t.Fatal(err)
	}
	b, keyB, err := store.Create(ctx, "b@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	u := hs.URL + "/v1/alerts/watchlist"

	// Text import: the answer the dashboard's import box keeps.
	r := sendBody(t, "POST", u, key, "text/plain", "# office\n192.0.2.0/25\n2001:db8::/64\n\nbogus\n198.51.100.0/24\n192.0.2.1\n")
	want := `{"already":0,"entries":3,"imported":3,"limit":256,"rejected":[{"line":"bogus","number":5,"reason":"not an IP address or CIDR block"},` +
		`{"line":"198.51.100.0/24","number":6,"reason":"over the plan's limit: it would add 256 to the 129 addresses watched, plan FREE allows 256 (IPv4 counts addresses, IPv6 counts /64s)"}],"rejected_total":2,"watched":129}`
	if r.code != 200 || jsonOf(t, r.body) != want {
		t.Fatalf("text import: %d %s\nwant %s", r.code, jsonOf(t, r.body), want)
	}
	// JSON by content type, and by its first byte.
	r = sendBody(t, "POST", u, key, "application/json", `{"entries": ["203.0.113.4", "192.0.2.1"]}`)
	if r.code != 200 || r.body["imported"] != 1.0 || r.body["already"] != 1.0 || r.body["watched"] != 130.0 {
		t.Fatalf("JSON import: %d %v", r.code, r.body)
	}
	r = sendBody(t, "POST", u, key, "", " \n{\"entries\": [\"203.0.113.5\"]}")
	if r.code != 200 || r.body["imported"] != 1.0 {
		t.Fatalf("sniffed JSON import: %d %v", r.code, r.body)
	}
	for _, tc := range []struct {
		name, ctype, body string
		code              int
		err               string
	}{
		{"bad-json", "application/json", `{"entries": "192.0.2.1"}`, 400, `expected {"entries": ["192.0.2.1", "2001:db8::/48", ...]}`},
		{"too-large", "text/plain", strings.Repeat("192.0.2.1\n", 500), 413, "body exceeds 4 KiB (watchlist.max_import_bytes)"},
	} {
		r = sendBody(t, "POST", u, key, tc.ctype, tc.body)
		if msg, _ := r.body["error"].(string); r.code != tc.code || !strings.Contains(msg, tc.err) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, r.code, r.body, tc.code, tc.err)
		}
	}

	// Paging, address order, IPv4 first.
	var got []string
	for page := 1; page <= 3; page++ {
		r = call(t, "GET", u+"?items=2&page="+string(rune('0'+page)), key)
		if r.code != 200 || r.body["total"] != 5.0 {
			t.Fatalf("page %d: %d %v", page, r.code, r.body)
		}
		for _, e := range r.body["entries"].([]any) {
			got = append(got, e.(map[string]any)["entry"].(string))
		}
	}
	if want := "192.0.2.0/25 192.0.2.1/32 203.0.113.4/32 203.0.113.5/32 2001:db8::/64"; strings.Join(got, " ") != want {
		t.Errorf("listed %v, want %s", got, want)
	}
	for _, q := range []string{"?page=0", "?items=10001", "?items=x"} {
		if r = call(t, "GET", u+q, key); r.code != 400 {
			t.Errorf("GET %s: %d %v, want 400", q, r.code, r.body)
		}
	}

	// One entry: exact match only; CIDRs as path or %2F; another account's is 404.
	for _, tc := range []struct {
		method, path, key string
		code              int
	}{
		{"GET", "/192.0.2.1", key, 200},
		{"GET", "/192.0.2.0/25", key, 200},
		{"GET", "/192.0.2.0%2F25", key, 200},
		{"GET", "/2001:db8::/64", key, 200},
		{"GET", "/192.0.2.2", key, 404}, // inside a watched entry, not one
		{"GET", "/192.0.2.1", keyB, 404},
		{"DELETE", "/192.0.2.1", keyB, 404},
		{"GET", "/192.0.2.1/24", key, 400},
		{"GET", "/", key, 400},
		{"DELETE", "/nonsense", key, 400},
	} {
		if r = call(t, tc.method, u+tc.path, tc.key); r.code != tc.code {
			t.Errorf("%s %s: %d %v, want %d", tc.method, tc.path, r.code, r.body, tc.code)
		}
	}
	r = call(t, "DELETE", u+"/192.0.2.0/25", key)
	if r.code != 200 || r.body["removed"] != "192.0.2.0/25" || r.body["watched"] != 4.0 || r.body["entries"] != 4.0 {
		t.Errorf("DELETE one: %d %v", r.code, r.body)
	}
	if r = call(t, "DELETE", u+"/192.0.2.0/25", key); r.code != 404 {
		t.Errorf("DELETE again: %d %v", r.code, r.body)
	}

	// The account page shows consumption against the limits.
	r = call(t, "GET", hs.URL+"/v1/account", key)
	usage, _ := r.body["usage"].(map[string]any)
	if r.code != 200 || usage["watched"] != 4.0 || usage["watched_limit"] != 256.0 || usage["watched_entries"] != 4.0 ||
		usage["recipients"] != 1.0 || usage["recipients_limit"] != 1.0 || usage["mutes"] != 0.0 || usage["mutes_limit"] != 2.0 {
		t.Errorf("account: %d %v", r.code, r.body)
	}

	// Mutes: one at a time (201, then 200), by import, the limit, isolation.
	m := hs.URL + "/v1/alerts/mutes"
	if r = call(t, "POST", m+"/10.0.0.0/8", key); r.code != 201 || r.body["entry"] != "10.0.0.0/8" {
		t.Errorf("mute: %d %v", r.code, r.body)
	}
	if r = call(t, "POST", m+"/10.0.0.0/8", key); r.code != 200 {
		t.Errorf("mute again: %d %v", r.code, r.body)
	}
	r = sendBody(t, "POST", m, key, "text/plain", "2001:db8::/32\n192.0.2.9\n")
	if r.code != 200 || r.body["imported"] != 1.0 || r.body["muted"] != 2.0 || r.body["rejected_total"] != 1.0 {
		t.Errorf("mute import: %d %v", r.code, r.body)
	}
	if r = call(t, "POST", m+"/192.0.2.9", key); r.code != 400 {
		t.Errorf("mute past the limit: %d %v", r.code, r.body)
	}
	if r = call(t, "GET", m, keyB); r.code != 200 || r.body["total"] != 0.0 {
		t.Errorf("b's mutes: %d %v", r.code, r.body)
	}
	if !muted.Contains(watch.Account(a.ID), netipPrefix(t, "10.0.0.0/8")) || muted.Contains(watch.Account(b.ID), netipPrefix(t, "10.0.0.0/8")) {
		t.Error("mute table does not match the API")
	}
	if r = call(t, "DELETE", m, key); r.code != 200 || r.body["removed"] != 2.0 || muted.Len() != 0 {
		t.Errorf("DELETE mutes: %d %v", r.code, r.body)
	}

	// Remove all, scoped to the key's account.
	if r = sendBody(t, "POST", u, keyB, "text/plain", "192.0.2.1\n"); r.code != 200 {
		t.Fatal(r.body)
	}
	if r = call(t, "DELETE", u, key); r.code != 200 || r.body["removed"] != 4.0 || r.body["watched"] != 0.0 {
		t.Errorf("DELETE all: %d %v", r.code, r.body)
	}
	if watched.Len() != 1 || !watched.Contains(watch.Account(b.ID), netipPrefix(t, "192.0.2.1/32")) {
		t.Errorf("after DELETE all of a: %d entries left", watched.Len())
	}
}

func netipPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImportOutlastsReadTimeout: an import is applied while its body
// streams in, so it gets watchlist.import_timeout, not http.read_timeout;
// another slow body on the same server is still cut off (408).
func TestImportOutlastsReadTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "state", "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var wcfg watchlist.Config
	wcfg.Defaults()
	svc := watchlist.New(wcfg, store, watch.New(), watch.New(), log)
	ac := api.Config{Addr: "127.0.0.1:0", ReadTimeout: 300 * time.Millisecond}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Live: live.New(), Accounts: store, Watchlists: svc}, log)
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		store.Close()
	})
	_, key, err := store.Create(ctx, "a@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	slow := func(path, first, line, last string) answer {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(first))
			for i := range 5 {
				time.Sleep(150 * time.Millisecond)
				fmt.Fprintf(pw, line, i+1)
			}
			pw.Write([]byte(last))
			pw.Close()
		}()
		req, err := http.NewRequest("POST", "http://"+addr.String()+path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		a := answer{code: resp.StatusCode}
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &a.body); err != nil {
			t.Fatalf("not JSON: %q", b)
		}
		return a
	}
	if r := slow("/v1/alerts/watchlist", "", "192.0.2.%d\n", ""); r.code != 200 || r.body["imported"] != 5.0 {
		t.Errorf("slow import: %d %v, want 200 with 5 imported", r.code, r.body)
	}
	if r := slow("/badip_batch", `{"ips": ["192.0.2.0"`, `, "192.0.2.%d"`, "]}"); r.code != 408 {
		t.Errorf("slow batch lookup: %d %v, want 408 (http.read_timeout)", r.code, r.body)
	}
}
