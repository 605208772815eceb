package main

// Tenant isolation: every /v1 endpoint, called with account A's key,
// neither shows nor changes account B's objects (another account's
// object answers 404), against the real binary.

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/api"
)

type tenant struct {
	email, key string
}

// do calls the API with key and decodes the JSON answer into a map.
func (s *server) do(t *testing.T, key, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.http+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", key)
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if method != http.MethodHead && len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, b)
		}
	}
	return resp.StatusCode, m
}

func (s *server) must(t *testing.T, key, method, path, body string, code int) map[string]any {
	t.Helper()
	got, m := s.do(t, key, method, path, body)
	if got != code {
		t.Fatalf("%s %s: %d %v; want %d", method, path, got, m, code)
	}
	return m
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTenantIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	feed := t.TempDir()
	snapshot(t, feed, time.Now().Add(-time.Hour), "198.51.100.23", "203.0.113.0/24")
	s := newServer(t, nil, fmt.Sprintf("scrape: {feeds: [{name: LIST-A, kind: ip, format: plain, source: %q, every: 1s}]}", feed))
	create := func(email string) tenant {
		t.Helper()
		out, err := exec.Command(s.bin, "account", "create", "--email", email, "--plan", "DEVELOPER", "--json", "--config", s.cfgPath).Output()
		if err != nil {
			t.Fatalf("account create %s: %v", email, err)
		}
		var r struct{ Key string }
		if err := json.Unmarshal(out, &r); err != nil || r.Key == "" {
			t.Fatalf("account create %s: %q %v", email, out, err)
		}
		return tenant{email, r.Key}
	}
	a, b := create("a@example.com"), create("b@example.net")
	s.start()
	s.waitIdle(2 * time.Minute)

	// B's objects: watched entries (one already listed: an initial
	// alert), a mute, settings, an outage subscription.
	s.must(t, b.key, "POST", "/v1/alerts/watchlist", "192.0.2.0/28\n198.51.100.23\n", 200)
	s.must(t, b.key, "POST", "/v1/alerts/mutes", "203.0.113.0/30\n", 200)
	s.must(t, b.key, "POST", "/v1/subscriptions", `{"entity_type": "asn", "entity_code": "AS4242420001"}`, 201)
	bSettings := s.must(t, b.key, "PUT", "/v1/alerts/settings", `{"recipients": ["b@example.net", "noc-b@example.net"], "email_enabled": true}`, 200)
	var bAlert map[string]any
	for deadline := time.Now().Add(30 * time.Second); bAlert == nil; time.Sleep(200 * time.Millisecond) {
		if al, _ := s.must(t, b.key, "GET", "/v1/alerts", "", 200)["alerts"].([]any); len(al) > 0 {
			bAlert = al[0].(map[string]any)
		} else if time.Now().After(deadline) {
			t.Fatal("no initial alert for B's already listed 198.51.100.23")
		}
	}
	bID := fmt.Sprint(int64(bAlert["id"].(float64)))
	// An outage of B's subscribed AS: the outage service taps it into
	// B's alerts.
	produceOutage(t, s, [2]string{"asn", "4242420001"})
	var bOutage string
	for deadline := time.Now().Add(time.Minute); bOutage == ""; time.Sleep(200 * time.Millisecond) {
		if al, _ := s.must(t, b.key, "GET", "/v1/alerts?type=outage", "", 200)["alerts"].([]any); len(al) > 0 {
			bOutage = fmt.Sprint(int64(al[0].(map[string]any)["id"].(float64)))
		} else if time.Now().After(deadline) {
			t.Fatal("no outage alert for B's subscribed AS")
		}
	}
	bState := func() string {
		t.Helper()
		return jsonText([]any{
			s.must(t, b.key, "GET", "/v1/alerts", "", 200)["alerts"],
			s.must(t, b.key, "GET", "/v1/alerts/watchlist", "", 200)["entries"],
			s.must(t, b.key, "GET", "/v1/alerts/mutes", "", 200)["entries"],
			s.must(t, b.key, "GET", "/v1/alerts/settings", "", 200),
			s.must(t, b.key, "GET", "/v1/subscriptions", "", 200),
		})
	}
	before := bState()
	secretB, _ := bSettings["webhook_secret"].(string)
	// leaks fails when an answer to A shows any of B's objects (an entry
	// A named in the request itself may be echoed).
	leaks := func(t *testing.T, path string, m map[string]any) {
		t.Helper()
		j := jsonText(m)
		for _, w := range []string{"b@example.net", "noc-b@example.net", "192.0.2.0/28", "203.0.113.0/30", "4242420001", secretB} {
			if w != "" && strings.Contains(j, w) && !strings.Contains(path, w) {
				t.Fatalf("A sees B's %q: %s", w, j)
			}
		}
		als, _ := m["alerts"].([]any)
		for _, al := range als {
			if id := fmt.Sprint(int64(al.(map[string]any)["id"].(float64))); id == bID || id == bOutage {
				t.Fatalf("A sees B's alert %s: %s", id, j)
			}
		}
	}

	// Every /v1 endpoint with A's key; "METHOD route" as registered.
	cases := []struct {
		route, method, path, body string
		code                      int
	}{
		{"GET /v1/account", "GET", "/v1/account", "", 200},
		{"GET /v1/alerts", "GET", "/v1/alerts", "", 200},
		{"GET /v1/alerts", "GET", "/v1/alerts?ip=198.51.100.23", "", 200},
		{"POST /v1/alerts/:id/ack", "POST", "/v1/alerts/" + bID + "/ack", "", 404},
		{"POST /v1/alerts/:id/ack", "POST", "/v1/alerts/" + bOutage + "/ack", "", 404},
		{"GET /v1/alerts", "GET", "/v1/alerts?type=outage", "", 200},
		{"GET /v1/alerts/watchlist", "GET", "/v1/alerts/watchlist", "", 200},
		{"GET /v1/alerts/watchlist/*entry", "GET", "/v1/alerts/watchlist/192.0.2.0/28", "", 404},
		{"GET /v1/alerts/watchlist/*entry", "GET", "/v1/alerts/watchlist/192.0.2.1", "", 404},
		{"DELETE /v1/alerts/watchlist/*entry", "DELETE", "/v1/alerts/watchlist/192.0.2.0/28", "", 404},
		{"DELETE /v1/alerts/watchlist", "DELETE", "/v1/alerts/watchlist", "", 200},
		{"POST /v1/alerts/watchlist", "POST", "/v1/alerts/watchlist", "192.0.2.0/28\n198.51.100.23\n", 200},
		{"GET /v1/alerts/mutes", "GET", "/v1/alerts/mutes", "", 200},
		{"GET /v1/alerts/mutes/*entry", "GET", "/v1/alerts/mutes/203.0.113.0/30", "", 404},
		{"DELETE /v1/alerts/mutes/*entry", "DELETE", "/v1/alerts/mutes/203.0.113.0/30", "", 404},
		{"DELETE /v1/alerts/mutes", "DELETE", "/v1/alerts/mutes", "", 200},
		{"POST /v1/alerts/mutes", "POST", "/v1/alerts/mutes", "203.0.113.0/30\n", 200},
		{"POST /v1/alerts/mutes/*entry", "POST", "/v1/alerts/mutes/203.0.113.0/31", "", 201},
		{"GET /v1/alerts/settings", "GET", "/v1/alerts/settings", "", 200},
		{"PUT /v1/alerts/settings", "PUT", "/v1/alerts/settings", `{"recipients": ["a@example.com"]}`, 200},
		{"POST /v1/alerts/test-email", "POST", "/v1/alerts/test-email", "", 503}, // no SMTP configured
		// A's key has no telemetry scope.
		{"POST /v1/telemetry", "POST", "/v1/telemetry", `{"datasource":"bgp","entity_type":"asn","entity_code":"64500","time":0,"value":1}`, 403},
		{"GET /v1/subscriptions", "GET", "/v1/subscriptions", "", 200},
		{"DELETE /v1/subscriptions/:entityType/:entityCode", "DELETE", "/v1/subscriptions/asn/4242420001", "", 404},
		{"POST /v1/subscriptions", "POST", "/v1/subscriptions", `{"entity_type": "asn", "entity_code": "4242420002"}`, 201},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.route] = true
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, m := s.do(t, a.key, tc.method, tc.path, tc.body)
			if code != tc.code {
				t.Fatalf("%d %v; want %d", code, m, tc.code)
			}
			leaks(t, tc.path, m)
			if after := bState(); after != before {
				t.Fatalf("B's objects changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	// After its own import of the same listed address, A sees its own
	// initial alert and none of B's.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		als, _ := s.must(t, a.key, "GET", "/v1/alerts", "", 200)["alerts"].([]any)
		for _, al := range als {
			if acct := al.(map[string]any)["account"]; acct == bAlert["account"] {
				t.Fatalf("A sees an alert of B's account: %v", al)
			}
		}
		if len(als) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no initial alert for A's import")
		}
	}

	// The matrix covers every /v1 route the API registers.
	srv := api.New(api.Config{Addr: "127.0.0.1:0"}, api.Deps{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var missing []string
	for _, r := range srv.Handler().(*gin.Engine).Routes() {
		if strings.HasPrefix(r.Path, "/v1/") && r.Method != "HEAD" && !covered[r.Method+" "+r.Path] {
			missing = append(missing, r.Method+" "+r.Path)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("the isolation matrix lacks %v", missing)
	}
}
