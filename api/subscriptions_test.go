package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/stream/live"
)

func subSend(t *testing.T, method, url, key, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", key)
	req.Header.Set("Content-Type", "application/json")
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

// TestSubscriptionsAPI subscribes, lists and unsubscribes over real HTTP
// on a real store and the real country table: codes canonicalized and
// named, bad entities and bodies 400, the plan's limit enforced, and
// another account's subscription invisible and not removable (404).
func TestSubscriptionsAPI(t *testing.T) {
	const csv = "../../shared/data/geo/country-codes.csv"
	if _, err := os.Stat(csv); err != nil {
		t.Skipf("shared data absent (%v)", err)
	}
	reg, err := entity.Load(entity.Config{CountriesCSV: csv})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "netwarden.db"), Plans: map[string]account.Plan{"THREE": {Watched: 1, Recipients: 1, HitsPerDay: 1000, Subscriptions: 3}}}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Live: live.New(), Accounts: store, Subscriptions: store, Alerts: store, Entities: reg}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); store.Close() })
	_, keyA, _ := store.Create(ctx, "a@example.com", "THREE", false)
	_, keyB, _ := store.Create(ctx, "b@example.com", "THREE", false)
	u := hs.URL + "/v1/subscriptions"

	for _, tc := range []struct {
		name, body string
		code       int
		want       string // entity_type/entity_code/entity_name, or a piece of the error
	}{
		{"country, lower case", `{"entity_type": "country", "entity_code": "us"}`, 201, "country/US/United States of America"},
		{"again", `{"entity_type": "country", "entity_code": "US"}`, 200, "country/US/United States of America"},
		{"asn with prefix", `{"entity_type": "asn", "entity_code": "AS3307"}`, 201, "asn/3307/AS3307"},
		{"unknown region is accepted", `{"entity_type": "region", "entity_code": "GB-ENG"}`, 201, "region/GB-ENG/GB-ENG"},
		{"over the plan", `{"entity_type": "country", "entity_code": "DE"}`, 400, "allows 3 subscriptions"},
		// Region codes the registry would take but DELETE's path could
		// never name (so the subscription could not be removed).
		{"region code with a slash", `{"entity_type": "region", "entity_code": "x/y"}`, 400, "letters, digits"},
		{"region code of dots", `{"entity_type": "region", "entity_code": ".."}`, 400, "letters, digits"},
		{"bad type", `{"entity_type": "city", "entity_code": "Paris"}`, 400, "want country, region or asn"},
		{"bad country", `{"entity_type": "country", "entity_code": "USA"}`, 400, "alpha-2"},
		{"bad asn", `{"entity_type": "asn", "entity_code": "AS99999999999"}`, 400, "32-bit"},
		{"missing code", `{"entity_type": "asn"}`, 400, "required"},
		{"unknown field", `{"entity_type": "asn", "entity_code": "1", "level": "x"}`, 400, "unknown field"},
		{"not JSON", `country/US`, 400, "invalid JSON"},
		{"empty", ``, 400, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := subSend(t, "POST", u, keyA, tc.body)
			if a.code != tc.code {
				t.Fatalf("%d %v; want %d", a.code, a.body, tc.code)
			}
			got, _ := a.body["error"].(string)
			if a.code < 300 {
				got = a.body["entity_type"].(string) + "/" + a.body["entity_code"].(string) + "/" + a.body["entity_name"].(string)
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("%q; want %q", got, tc.want)
			}
		})
	}
	list := func(key string) (names []string, count, limit float64) {
		t.Helper()
		a := call(t, "GET", u, key)
		if a.code != 200 {
			t.Fatalf("list: %d %v", a.code, a.body)
		}
		for _, s := range a.body["subscriptions"].([]any) {
			m := s.(map[string]any)
			names = append(names, m["entity_type"].(string)+"/"+m["entity_code"].(string))
		}
		return names, a.body["count"].(float64), a.body["limit"].(float64)
	}
	if names, n, limit := list(keyA); strings.Join(names, " ") != "asn/3307 country/US region/GB-ENG" || n != 3 || limit != 3 {
		t.Fatalf("A's list %v %v %v", names, n, limit)
	}
	if a := call(t, "GET", hs.URL+"/v1/account", keyA); a.code != 200 || a.body["usage"].(map[string]any)["subscriptions"] != 3.0 ||
		a.body["usage"].(map[string]any)["subscriptions_limit"] != 3.0 || a.body["limits"].(map[string]any)["subscriptions"] != 3.0 {
		t.Fatalf("account usage %d %v", a.code, a.body)
	}
	// B: none of A's, cannot remove A's, has its own budget.
	if names, _, _ := list(keyB); len(names) != 0 {
		t.Fatalf("B sees %v", names)
	}
	if a := subSend(t, "DELETE", u+"/country/US", keyB, ""); a.code != 404 {
		t.Fatalf("B deleting A's: %d %v", a.code, a.body)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/asn/AS3307", 200}, // canonicalized like the POST
		{"/asn/3307", 404},   // gone
		{"/country/USA", 400},
		{"/planet/earth", 400},
		{"/country", 404}, // no such route
	} {
		if a := subSend(t, "DELETE", u+tc.path, keyA, ""); a.code != tc.code {
			t.Errorf("DELETE %s: %d %v; want %d", tc.path, a.code, a.body, tc.code)
		}
	}
	if names, _, _ := list(keyA); strings.Join(names, " ") != "country/US region/GB-ENG" {
		t.Fatalf("after delete %v", names)
	}
	// Without a key: 401; HEAD works like GET.
	if a := call(t, "GET", u, ""); a.code != 401 {
		t.Fatalf("no key: %d", a.code)
	}
	if a := call(t, "HEAD", u, keyA); a.code != 200 {
		t.Fatalf("HEAD: %d", a.code)
	}

	// An outage of a subscribed entity shows in /v1/alerts, filtered by
	// type; bad type and kind are 400.
	if _, err := store.AddOutageAlerts(ctx, []account.Outage{{ID: 7, Datasource: "bgp", EntityType: "country", EntityCode: "US", EntityName: "United States of America",
		Time: 1_764_547_200, Level: "critical", Condition: "< historical * 0.5", Value: 40, HistoryValue: 100, Method: "median", Window: 86400}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		code  int
		n     int
	}{
		{"?type=outage", 200, 1}, {"?kind=outage", 200, 1}, {"?type=blocklist", 200, 0}, {"", 200, 1}, {"?list=bgp", 200, 1},
		{"?type=weather", 400, 0}, {"?kind=flood", 400, 0},
	} {
		a := call(t, "GET", hs.URL+"/v1/alerts"+tc.query, keyA)
		if a.code != tc.code {
			t.Fatalf("alerts%s: %d %v", tc.query, a.code, a.body)
		}
		if tc.code != 200 {
			continue
		}
		als := a.body["alerts"].([]any)
		if len(als) != tc.n {
			t.Fatalf("alerts%s: %d, want %d", tc.query, len(als), tc.n)
		}
		if tc.n == 1 {
			al := als[0].(map[string]any)
			o, _ := al["outage"].(map[string]any)
			if al["type"] != "outage" || al["resource"] != "country/US" || o == nil || o["level"] != "critical" || o["entity_name"] != "United States of America" || o["historyValue"] != 100.0 {
				t.Fatalf("outage alert %v", al)
			}
		}
	}
	if a := call(t, "GET", hs.URL+"/v1/alerts", keyB); len(a.body["alerts"].([]any)) != 0 {
		t.Fatalf("B sees A's outage alert: %v", a.body)
	}
}

// TestSubscriptionsUnavailable: without the dependency the routes answer
// 503 JSON (the key is still required first).
func TestSubscriptionsUnavailable(t *testing.T) {
	hs, store := authStack(t, false, nil)
	_, key, _ := store.Create(context.Background(), "a@example.com", "FREE", false)
	if a := call(t, "GET", hs.URL+"/v1/subscriptions", key); a.code != 503 {
		t.Fatalf("%d %v", a.code, a.body)
	}
	if a := call(t, "GET", hs.URL+"/v1/subscriptions", ""); a.code != 401 {
		t.Fatalf("no key: %d %v", a.code, a.body)
	}
}

// TestUnsubscribeCodeStoredBeforeTheRegistryKnewIt: a region subscribed
// by its ISO code while no City database was configured is stored as
// given; once the registry maps that code to a geoname id, DELETE with
// the stored code (what the dashboard sends) still removes it.
func TestUnsubscribeCodeStoredBeforeTheRegistryKnewIt(t *testing.T) {
	const city = "../../shared/data/geo/GeoLite2-City-Test.mmdb"
	if _, err := os.Stat(city); err != nil {
		t.Skipf("shared data absent (%v)", err)
	}
	reg, err := entity.Load(entity.Config{CityDB: city})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Live: live.New(), Accounts: store, Subscriptions: store, Entities: reg}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); store.Close() })
	a, key, _ := store.Create(ctx, "a@example.com", "FREE", false)
	if _, _, err := store.Subscribe(ctx, a.ID, "region", "GB-ENG"); err != nil { // as stored without a City database
		t.Fatal(err)
	}
	if e, _ := reg.Lookup("region", "GB-ENG"); e.Code == "GB-ENG" {
		t.Fatalf("the registry does not map GB-ENG: %+v", e)
	}
	if d := subSend(t, "DELETE", hs.URL+"/v1/subscriptions/region/GB-ENG", key, ""); d.code != 200 {
		t.Fatalf("DELETE the stored code: %d %v", d.code, d.body)
	}
	if subs, err := store.Subscriptions(ctx, a.ID); err != nil || len(subs) != 0 {
		t.Fatalf("left %v %v", subs, err)
	}
	if d := subSend(t, "DELETE", hs.URL+"/v1/subscriptions/region/GB-ENG", key, ""); d.code != 404 {
		t.Fatalf("DELETE again: %d %v", d.code, d.body)
	}
}
