package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/live"
)

// authStack is an API with a real account store and live state.
func authStack(t *testing.T, required bool, plans map[string]account.Plan) (*httptest.Server, *account.Store) {
	t.Helper()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "state", "netwarden.db"), Plans: plans}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0", Auth: api.AuthConfig{Required: required}}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Live: live.New(), Accounts: store}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); store.Close() })
	return hs, store
}

type answer struct {
	code int
	hdr  http.Header
	body map[string]any
}

func call(t *testing.T, method, url, key string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Auth-Token", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{code: resp.StatusCode, hdr: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	if method != http.MethodHead {
		if err := json.Unmarshal(b, &a.body); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, url, b)
		}
	}
	return a
}

func TestAuthScopesAndQuota(t *testing.T) {
	ctx := context.Background()
	hs, store := authStack(t, false, map[string]account.Plan{"TINY": {Watched: 1, Recipients: 1, HitsPerDay: 4}})
	a, key, err := store.Create(ctx, "ops@example.com", "TINY", false)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := store.NewKey(ctx, a.ID, []account.Scope{account.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, method, path, key string
		code                    int
	}{
		{"anonymous lookup allowed", "GET", "/badip/192.0.2.1", "", 404},
		{"account routes need a key", "GET", "/v1/account", "", 401},
		{"unknown key", "GET", "/v1/account", "nwk_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 401},
		{"garbage key", "GET", "/badip/192.0.2.1", "hello", 401},
		{"read key, admin route", "POST", "/admin/check", key, 403},
		{"admin key lacks read", "GET", "/v1/account", admin, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, tc.method, hs.URL+tc.path, tc.key)
			if got.code != tc.code || (got.code >= 401 && got.code <= 403 && got.body["error"] == nil) {
				t.Fatalf("%s %s: %d %v, want %d with an error", tc.method, tc.path, got.code, got.body, tc.code)
			}
		})
	}

	// The quota counts every call with a key: 1 (the 403 above counted
	// nothing: scope is checked first) ... until the 4th, then 429.
	for i := 1; i <= 4; i++ {
		got := call(t, "GET", hs.URL+"/v1/account", key)
		if got.code != 200 {
			t.Fatalf("call %d: %d %v", i, got.code, got.body)
		}
		if rem := got.hdr.Get("X-RateLimit-Remaining"); rem != strconv.Itoa(4-i) || got.hdr.Get("X-RateLimit-Limit") != "4" {
			t.Fatalf("call %d: remaining %q limit %q", i, rem, got.hdr.Get("X-RateLimit-Limit"))
		}
		acct := got.body["account"].(map[string]any)
		if acct["email"] != "ops@example.com" || got.body["limits"].(map[string]any)["hits_per_day"] != 4.0 {
			t.Fatalf("account answer %v", got.body)
		}
	}
	got := call(t, "GET", hs.URL+"/badip/192.0.2.1", key)
	retry, _ := strconv.Atoi(got.hdr.Get("Retry-After"))
	if got.code != 429 || retry < 1 || retry > 86401 || got.hdr.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("over quota: %d retry-after %q %v", got.code, got.hdr.Get("Retry-After"), got.body)
	}
	// HEAD goes through the same checks.
	if got := call(t, "HEAD", hs.URL+"/v1/account", ""); got.code != 401 {
		t.Fatalf("HEAD without key: %d", got.code)
	}
	_, key2, err := store.Create(ctx, "second@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := call(t, "HEAD", hs.URL+"/v1/account", key2); got.code != 200 || got.hdr.Get("X-RateLimit-Limit") != "100000" {
		t.Fatalf("HEAD with key: %d %v", got.code, got.hdr)
	}
	// A revoked key stops working at once.
	if err := store.Revoke(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if got := call(t, "POST", hs.URL+"/admin/check", admin); got.code != 401 {
		t.Fatalf("revoked key: %d", got.code)
	}
}

func TestAuthRequired(t *testing.T) {
	ctx := context.Background()
	hs, store := authStack(t, true, nil)
	_, key, err := store.Create(ctx, "ops@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/badip/192.0.2.1", "/metadata/changes/ip/192.0.2.1", "/lists", "/badip_batch?ip=192.0.2.1"} {
		if got := call(t, "GET", hs.URL+path, ""); got.code != 401 {
			t.Errorf("GET %s without key under auth.required: %d", path, got.code)
		}
	}
	if got := call(t, "POST", hs.URL+"/sql", ""); got.code != 401 {
		t.Errorf("POST /sql without key: %d", got.code)
	}
	if got := call(t, "GET", hs.URL+"/badip/192.0.2.1", key); got.code != 404 {
		t.Errorf("with key: %d %v", got.code, got.body)
	}
	// Health and metrics stay open for probes and scrapers.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 401 {
			t.Errorf("%s needs a key", path)
		}
	}
}

// TestAdminNeedsAdminKeyFromAfar: /admin/* is anonymous only from the
// server's own host (the operator's `netwarden check`); from elsewhere it
// needs a key with the admin scope.
func TestAdminNeedsAdminKeyFromAfar(t *testing.T) {
	ctx := context.Background()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, readKey, err := store.Create(ctx, "ops@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := store.NewKey(ctx, a.ID, []account.Scope{account.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	h := api.New(ac, api.Deps{Live: live.New(), Accounts: store}, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler()
	for _, tc := range []struct {
		remote, key string
		code        int
	}{
		{"127.0.0.1:5000", "", 503},   // allowed through; no checker in this stack
		{"[::1]:5000", "", 503},       // likewise
		{"203.0.113.5:5000", "", 401}, // anonymous from afar
		{"203.0.113.5:5000", readKey, 403},
		{"203.0.113.5:5000", adminKey, 503},
	} {
		req := httptest.NewRequest("POST", "/admin/check", nil)
		req.RemoteAddr = tc.remote
		req.Header.Set("X-Forwarded-For", "127.0.0.1") // never trusted
		if tc.key != "" {
			req.Header.Set("X-Auth-Token", tc.key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("from %s with key %t: %d %s, want %d", tc.remote, tc.key != "", rec.Code, rec.Body, tc.code)
		}
	}
}
