package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/live"
)

// uiStack is an API with a real account store serving sessions too.
func uiStack(t *testing.T, required bool) (*httptest.Server, *account.Store) {
	t.Helper()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "state", "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0", Auth: api.AuthConfig{Required: required}}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Live: live.New(), Accounts: store, Sessions: store}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); store.Close() })
	return hs, store
}

type uiReq struct {
	method, path, body, ctype string
	cookie, csrf, origin      string
}

type uiAnswer struct {
	code int
	hdr  http.Header
	body string
	json map[string]any
}

func uiDo(t *testing.T, base string, r uiReq) uiAnswer {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if r.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "nw_session", Value: r.cookie})
	}
	if r.csrf != "" {
		req.Header.Set("X-CSRF-Token", r.csrf)
	}
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := uiAnswer{code: resp.StatusCode, hdr: resp.Header, body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a.json); err != nil {
			t.Fatalf("%s %s: bad JSON %q", r.method, r.path, b)
		}
	}
	return a
}

func TestDashboardAssets(t *testing.T) {
	hs, _ := uiStack(t, true)
	for _, tc := range []struct {
		path, ctype string
		code        int
		contains    string
	}{
		{"/ui/", "text/html", 200, `src="/ui/assets/app.js"`},
		{"/ui/alerts", "text/html", 200, "<title>netwarden</title>"},
		{"/ui/subscriptions", "text/html", 200, "<title>netwarden</title>"},
		{"/ui/ip/192.0.2.1", "text/html", 200, "<title>netwarden</title>"},
		{"/ui/ip/2001:db8::/48", "text/html", 200, "<title>netwarden</title>"},
		{"/ui/assets/app.js", "text/javascript", 200, "X-CSRF-Token"},
		{"/ui/assets/app.css", "text/css", 200, "svg.chart"},
		{"/ui/outages", "text/html", 200, `src="/ui/assets/outages.js"`},
		{"/ui/entity/country/US", "text/html", 200, "<title>netwarden</title>"},
		{"/ui/assets/outages.js", "text/javascript", 200, "signalChart"},
		{"/ui/assets/outages.css", "text/css", 200, "svg.chart.signal"},
		{"/ui/assets/nope.js", "application/json", 404, "no such asset"},
		{"/ui/assets/index.html", "application/json", 404, "no such asset"},
		{"/ui/nope", "application/json", 404, "no such dashboard page"},
		{"/ui", "application/json", 301, "moved to /ui/"},
		{"/ui/session", "application/json", 401, "not signed in"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			a := uiDo(t, hs.URL, uiReq{method: "GET", path: tc.path})
			if a.code != tc.code || !strings.HasPrefix(a.hdr.Get("Content-Type"), tc.ctype) || !strings.Contains(a.body, tc.contains) {
				t.Fatalf("GET %s: %d %q %.200q; want %d %s containing %q", tc.path, a.code, a.hdr.Get("Content-Type"), a.body, tc.code, tc.ctype, tc.contains)
			}
			if tc.code == 200 && !strings.Contains(a.hdr.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Fatalf("GET %s: CSP %q", tc.path, a.hdr.Get("Content-Security-Policy"))
			}
		})
	}
}

func TestDashboardSessionAndCSRF(t *testing.T) {
	ctx := context.Background()
	hs, store := uiStack(t, false)
	acc, key, err := store.Create(ctx, "ops@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(hs.URL, "http://")
	const jsonCT = "application/json"

	// Sign-in: JSON only, same origin only, a valid key only.
	for _, tc := range []struct {
		name, body, ctype, origin string
		code                      int
	}{
		{"form post", "key=" + key, "application/x-www-form-urlencoded", "", 400},
		{"no content type", `{"key":"` + key + `"}`, "", "", 400},
		{"other origin", `{"key":"` + key + `"}`, jsonCT, "https://evil.example", 403},
		{"unknown key", `{"key":"nwk_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}`, jsonCT, "", 401},
		{"not JSON", `key`, jsonCT, "", 400},
	} {
		a := uiDo(t, hs.URL, uiReq{method: "POST", path: "/ui/login", body: tc.body, ctype: tc.ctype, origin: tc.origin})
		if a.code != tc.code || a.hdr.Get("Set-Cookie") != "" {
			t.Fatalf("login %s: %d (cookie %q) %s; want %d and no cookie", tc.name, a.code, a.hdr.Get("Set-Cookie"), a.body, tc.code)
		}
	}
	a := uiDo(t, hs.URL, uiReq{method: "POST", path: "/ui/login", body: `{"key": " ` + key + ` "}`, ctype: jsonCT, origin: "http://" + host})
	if a.code != 200 {
		t.Fatalf("login: %d %s", a.code, a.body)
	}
	sc := a.hdr.Get("Set-Cookie")
	for _, want := range []string{"nw_session=nws_", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"} {
		if !strings.Contains(sc, want) {
			t.Fatalf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	cookie := strings.TrimPrefix(strings.SplitN(sc, ";", 2)[0], "nw_session=")
	csrf, _ := a.json["csrf"].(string)
	if len(csrf) != 64 || strings.Contains(a.body, cookie) || strings.Contains(a.body, key) {
		t.Fatalf("login answer %s: want a CSRF token and neither the session token nor the key", a.body)
	}

	// The cookie stands for the key on GET routes (hits counted).
	a = uiDo(t, hs.URL, uiReq{method: "GET", path: "/v1/account", cookie: cookie})
	if a.code != 200 || a.json["account"].(map[string]any)["email"] != "ops@example.com" || a.hdr.Get("X-RateLimit-Remaining") == "" {
		t.Fatalf("GET /v1/account with the session: %d %v %v", a.code, a.json, a.hdr)
	}
	a = uiDo(t, hs.URL, uiReq{method: "GET", path: "/ui/session", cookie: cookie})
	if a.code != 200 || a.json["csrf"] != csrf || a.json["account"].(map[string]any)["id"] != float64(acc.ID) {
		t.Fatalf("GET /ui/session: %d %s", a.code, a.body)
	}

	// State changes with the cookie need the CSRF token, from this origin.
	batch := uiReq{method: "POST", path: "/badip_batch", body: `{"ips": ["192.0.2.1"]}`, ctype: jsonCT, cookie: cookie}
	for _, tc := range []struct {
		name         string
		csrf, origin string
		code         int
	}{
		{"no token", "", "", 403},
		{"wrong token", strings.Repeat("0", 64), "", 403},
		{"token of another session", account.CSRFToken("nws_other"), "", 403},
		{"other origin", csrf, "https://evil.example", 403},
		{"token", csrf, "", 200},
		{"token, same origin", csrf, "http://" + host, 200},
	} {
		r := batch
		r.csrf, r.origin = tc.csrf, tc.origin
		if a := uiDo(t, hs.URL, r); a.code != tc.code {
			t.Fatalf("POST /badip_batch with the session, %s: %d %s; want %d", tc.name, a.code, a.body, tc.code)
		}
	}
	// A key header needs no CSRF token (a cross-site page cannot set it).
	if a := uiDo(t, hs.URL, uiReq{method: "POST", path: "/badip_batch", body: batch.body, ctype: jsonCT}); a.code != 200 {
		t.Fatalf("anonymous POST /badip_batch: %d", a.code)
	}

	// Sign-out needs the token too, then the session is gone.
	if a := uiDo(t, hs.URL, uiReq{method: "POST", path: "/ui/logout", cookie: cookie}); a.code != 403 {
		t.Fatalf("logout without CSRF token: %d %s", a.code, a.body)
	}
	a = uiDo(t, hs.URL, uiReq{method: "POST", path: "/ui/logout", cookie: cookie, csrf: csrf})
	if a.code != 200 || !strings.Contains(a.hdr.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %q", a.code, a.hdr.Get("Set-Cookie"))
	}
	if a := uiDo(t, hs.URL, uiReq{method: "GET", path: "/v1/account", cookie: cookie}); a.code != 401 || !strings.Contains(a.body, "sign in again") {
		t.Fatalf("GET /v1/account after sign-out: %d %s", a.code, a.body)
	}
	// A stale cookie is anonymous where anonymous requests are allowed.
	if a := uiDo(t, hs.URL, uiReq{method: "GET", path: "/badip/192.0.2.1", cookie: cookie}); a.code != 404 || a.hdr.Get("X-RateLimit-Remaining") != "" {
		t.Fatalf("GET /badip with a stale session: %d %s", a.code, a.body)
	}

	// Revoking the key ends its sessions.
	login := func() string {
		a := uiDo(t, hs.URL, uiReq{method: "POST", path: "/ui/login", body: `{"key":"` + key + `"}`, ctype: jsonCT})
		if a.code != 200 {
			t.Fatalf("login: %d %s", a.code, a.body)
		}
		return strings.TrimPrefix(strings.SplitN(a.hdr.Get("Set-Cookie"), ";", 2)[0], "nw_session=")
	}
	c2 := login()
	if a := uiDo(t, hs.URL, uiReq{method: "GET", path: "/v1/account", cookie: c2}); a.code != 200 {
		t.Fatalf("second session: %d", a.code)
	}
	if err := store.Revoke(ctx, key); err != nil {
		t.Fatal(err)
	}
	if a := uiDo(t, hs.URL, uiReq{method: "GET", path: "/v1/account", cookie: c2}); a.code != 401 {
		t.Fatalf("session of a revoked key: %d %s", a.code, a.body)
	}
}

// With auth.required the data routes take the session like a key.
func TestDashboardSessionAuthRequired(t *testing.T) {
	hs, store := uiStack(t, true)
	_, key, err := store.Create(context.Background(), "ops@example.com", "FREE", false)
	if err != nil {
		t.Fatal(err)
	}
	if a := uiDo(t, hs.URL, uiReq{method: "GET", path: "/badip/192.0.2.1"}); a.code != 401 {
		t.Fatalf("anonymous: %d", a.code)
	}
	a := uiDo(t, hs.URL, uiReq{method: "POST", path: "/ui/login", body: `{"key":"` + key + `"}`, ctype: "application/json"})
	cookie := strings.TrimPrefix(strings.SplitN(a.hdr.Get("Set-Cookie"), ";", 2)[0], "nw_session=")
	if a := uiDo(t, hs.URL, uiReq{method: "GET", path: "/badip/192.0.2.1", cookie: cookie}); a.code != 404 || a.hdr.Get("X-RateLimit-Remaining") == "" {
		t.Fatalf("with the session: %d %s", a.code, a.body)
	}
	if a := uiDo(t, hs.URL, uiReq{method: "GET", path: "/badip/192.0.2.1", cookie: "nws_stale"}); a.code != 401 {
		t.Fatalf("stale session with auth.required: %d", a.code)
	}
}
