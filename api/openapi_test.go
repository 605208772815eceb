package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/query"
)

func testRegistry(t *testing.T) *entity.Registry {
	t.Helper()
	const geo = "../../shared/data/geo"
	if _, err := os.Stat(geo); err != nil {
		t.Skipf("shared geo data absent at %s: %v", geo, err)
	}
	r, err := entity.Load(entity.Config{
		CountriesCSV: filepath.Join(geo, "country-codes.csv"),
		ASNDB:        filepath.Join(geo, "GeoLite2-ASN-Test.mmdb"),
		CityDB:       filepath.Join(geo, "GeoLite2-City-Test.mmdb"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func docServer(t *testing.T, deps Deps) (*Server, *httptest.Server) {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0"}
	cfg.Defaults()
	s := New(cfg, deps, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func loadDoc(t *testing.T, url string) (*openapi3.T, []byte) {
	t.Helper()
	resp, err := http.Get(url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	return doc, b
}

// The document lists exactly the router's routes (method and path, HEAD included), and is a
// valid OpenAPI document for kin-openapi's validator.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s, ts := docServer(t, Deps{})
	doc, _ := loadDoc(t, ts.URL)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("OpenAPI document invalid: %v", err)
	}
	routes := map[string]bool{}
	for _, r := range s.h.Routes() {
		routes[r.Method+" "+openAPIPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for r := range routes {
		if !documented[r] {
			t.Errorf("route %s is not in /openapi.json", r)
		}
	}
	for d := range documented {
		if !routes[d] {
			t.Errorf("/openapi.json documents %s, which the router does not serve", d)
		}
	}
	if len(routes) < 40 {
		t.Errorf("only %d routes: the route walk is broken", len(routes))
	}
}

// Real answers of the server validate against the document (status, content type, body
// schema), by kin-openapi's response validator.
func TestOpenAPIResponsesValidate(t *testing.T) {
	engine, err := query.NewPool(query.Config{HistoryDir: t.TempDir()}, func() *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	acfg := account.Config{Path: filepath.Join(t.TempDir(), "netwarden.db")}
	acfg.Defaults()
	accounts, err := account.Open(acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { accounts.Close() })
	ctx := context.Background()
	acct, key, err := accounts.Create(ctx, "a@example.com", "BUSINESS", false)
	if err != nil {
		t.Fatal(err)
	}
	// An outage alert of a subscribed entity, so /v1/alerts answers both alert types.
	if _, _, err := accounts.Subscribe(ctx, acct.ID, "country", "US"); err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.AddOutageAlerts(ctx, []account.Outage{{ID: 1, Datasource: "bgp", EntityType: "country", EntityCode: "US",
		EntityName: "United States of America", Time: 3000, Level: "critical", Condition: "< historical * 0.5", Value: 20, HistoryValue: 100, Method: "median", Window: 86400}}); err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t)
	_, ts := docServer(t, Deps{Entities: reg, Outages: OutageFixture(t), SQL: engine,
		Accounts: accounts, Alerts: accounts, Settings: accounts, Sessions: accounts, Subscriptions: accounts})
	doc, _ := loadDoc(t, ts.URL)
	doc.Servers = openapi3.Servers{{URL: ts.URL}}
	// Bodies kin-openapi does not decode itself: checked by content type.
	openapi3filter.RegisterBodyDecoder(query.ContentTypeArrow, openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path   string
		status int
		method string // default GET
		body   string // POST: a text/plain body
		accept string
		route  string // the path the route is found by, when the path's parameter holds a slash
		keyed  bool   // with the account's key
	}{
		{path: "/v1/account", status: 200, keyed: true},
		{path: "/v1/alerts", status: 200, keyed: true},
		{path: "/v1/alerts?type=outage&items=5", status: 200, keyed: true},
		{path: "/v1/alerts?kind=nope", status: 400, keyed: true},
		{path: "/v1/alerts/settings", status: 200, keyed: true},
		{path: "/v1/subscriptions", status: 200, keyed: true},
		{path: "/v1/subscriptions", status: 201, method: "POST", body: `{"entity_type": "asn", "entity_code": "AS15169"}`, keyed: true},
		{path: "/v1/subscriptions/asn/15169", status: 200, method: "DELETE", keyed: true},
		{path: "/v1/subscriptions/asn/15169", status: 404, method: "DELETE", keyed: true},
		{path: "/v1/alerts/1/ack", status: 200, method: "POST", keyed: true},
		{path: "/sql", status: 200, method: "POST", body: "SELECT 1 AS x"},
		{path: "/sql", status: 200, method: "POST", body: "SELECT 1 AS x", accept: "text/csv"},
		{path: "/sql", status: 200, method: "POST", body: "SELECT 1 AS x", accept: query.ContentTypeArrow},
		{path: "/sql", status: 400, method: "POST", body: "DELETE FROM x"},
		{path: "/ui/outages", status: 200},
		{path: "/ui/entity/country/US", status: 200, route: "/ui/x"},
		{path: "/ui/assets/outages.js", status: 200, route: "/ui/x"},
		{path: "/ui/assets/outages.css", status: 200, route: "/ui/x"},
		{path: "/v2/entities/query?entityType=country&search=united", status: 200},
		{path: "/v2/entities/query?relatedTo=country/US&limit=5&page=0", status: 200},
		{path: "/v2/entities/query?entityType=asn&entityCode=3307,15169", status: 200},
		{path: "/v2/entities/query?relatedTo=planet/earth", status: 400},
		{path: "/v2/entities/query?limit=0", status: 400},
		{path: "/healthz", status: 200},
		{path: "/readyz", status: 200},
		{path: "/v1/account", status: 401},
		{path: "/lists", status: 503},
		{path: "/openapi.json", status: 200},
		{path: "/metrics", status: 200},
		{path: "/docs", status: 200},
		{path: "/badip/192.0.2.1", status: 503},
		{path: "/metadata/changes/ip/192.0.2.1", status: 503},
		{path: "/v1/alerts", status: 401},
		{path: "/v1/alerts/watchlist/192.0.2.1", status: 401},
		{path: "/ui/session", status: 401},
		{path: "/ui", status: 301},
		{path: "/ioda/data/alerts?from=0&until=20000&annotateMeta=true", status: 200},
		{path: "/ioda/data/alerts?from=0&until=20000&human=true&meta=country/US", status: 200},
		{path: "/ioda/data/alerts?until=20000", status: 400},
		{path: "/v2/outages/alerts?from=0&until=20000", status: 200},
		{path: "/v2/outages/events?from=0&until=20000", status: 200},
		{path: "/v2/outages/events?from=0&until=20000&format=ioda", status: 200},
		{path: "/v2/outages/events?from=0&until=20000&entityType=country&entityCode=XX1", status: 400},
		{path: "/v2/outages/summary?from=0&until=20000", status: 200},
		{path: "/v2/signals/raw/country/US?from=0&until=6000", status: 200},
		{path: "/v2/signals/raw/planet/US?from=0&until=6000", status: 400},
	} {
		t.Run(tt.method+tt.path+" "+tt.accept, func(t *testing.T) {
			method, reqBody := cmp.Or(tt.method, http.MethodGet), io.Reader(nil)
			if tt.body != "" {
				reqBody = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(method, ts.URL+tt.path, reqBody)
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "text/plain")
				if strings.HasPrefix(tt.body, "{") {
					req.Header.Set("Content-Type", "application/json")
				}
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			if tt.keyed {
				req.Header.Set("X-Auth-Token", key)
			}
			// Redirects are answers to check, not to follow.
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			find := req
			if tt.route != "" {
				find = req.Clone(req.Context())
				find.URL.Path = tt.route
			}
			route, params, err := router.FindRoute(find)
			if err != nil {
				t.Fatalf("find route: %v", err)
			}
			in := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
					Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
				Status: resp.StatusCode, Header: resp.Header, Options: &openapi3filter.Options{IncludeResponseStatus: true,
					// kin-openapi decodes JSON and text bodies; an HTML page is checked by status and type only.
					ExcludeResponseBody: strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")},
			}
			in.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
				t.Errorf("answer does not match the document: %v\n%s", err, body)
			}
		})
	}
}

func TestDocsPage(t *testing.T) {
	_, ts := docServer(t, Deps{})
	fetch := func(path, ctype string) []byte {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if path == "/docs" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("/docs CSP: %q", resp.Header.Get("Content-Security-Policy"))
		}
		return b
	}
	page := fetch("/docs", "text/html")
	js := fetch("/ui/assets/docs.js", "text/javascript")
	css := fetch("/ui/assets/docs.css", "text/css")
	if !bytes.Contains(page, []byte(`src="/ui/assets/docs.js"`)) || !bytes.Contains(page, []byte(`href="/ui/assets/docs.css"`)) || !bytes.Contains(js, []byte(`fetch("/openapi.json")`)) {
		t.Errorf("/docs does not load its script and styles, or the script does not render /openapi.json")
	}
	// Self-contained: nothing is loaded from elsewhere, nothing inline (the CSP forbids it).
	for name, b := range map[string][]byte{"page": page, "script": js, "styles": css} {
		if bytes.Contains(b, []byte("http://")) || bytes.Contains(b, []byte("https://")) || bytes.Contains(b, []byte("<script>")) || bytes.Contains(b, []byte("<style>")) {
			t.Errorf("/docs %s refers to another site or is inline", name)
		}
	}
}

func TestEntitiesQueryHTTP(t *testing.T) {
	_, ts := docServer(t, Deps{Entities: testRegistry(t)})
	type answer struct {
		Type              string            `json:"type"`
		Error             *string           `json:"error"`
		RequestParameters map[string]string `json:"requestParameters"`
		Data              []entityJSON      `json:"data"`
		More              bool              `json:"more"`
	}
	get := func(t *testing.T, path string) (int, answer) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode, a
	}
	codes := func(a answer) []string {
		var out []string
		for _, e := range a.Data {
			out = append(out, e.Type+"/"+e.Code)
		}
		return out
	}
	for _, tt := range []struct {
		path  string
		check func(t *testing.T, a answer)
	}{
		{"/v2/entities/query?entityType=country&entityCode=US", func(t *testing.T, a answer) {
			if len(a.Data) != 1 || a.Data[0].Name != "United States of America" || a.Data[0].Attrs["fqid"] != "geo.netacuity.NA.US" || a.Data[0].Attrs["continent"] != "NA" {
				t.Errorf("US: %+v", a.Data)
			}
			if a.Type != "entities" || a.RequestParameters["entityCode"] != "US" {
				t.Errorf("envelope: %+v", a)
			}
		}},
		{"/v2/entities/query?entityType=asn&entityCode=AS15169", func(t *testing.T, a answer) {
			if len(a.Data) != 1 || a.Data[0].Code != "15169" || a.Data[0].Attrs["org"] != "Google Inc." || a.Data[0].Attrs["fqid"] != "asn.15169" {
				t.Errorf("AS15169: %+v", a.Data)
			}
		}},
		{"/v2/entities/query?entityType=region&relatedTo=country/US&limit=1000", func(t *testing.T, a answer) {
			if !slices.Contains(codes(a), "region/5332921") {
				t.Errorf("California not among US regions: %v", codes(a))
			}
			for _, e := range a.Data {
				// IODA's region shape: country_code, country_name, fqid geo.netacuity.<continent>.<cc>.<id>
				if e.Attrs["country_code"] != "US" || e.Attrs["country_name"] != "United States of America" || e.Attrs["fqid"] != "geo.netacuity.NA.US."+e.Code {
					t.Errorf("region attrs: %+v", e)
				}
			}
		}},
		{"/v2/entities/query?entityType=country&limit=3&page=2", func(t *testing.T, a answer) {
			if len(a.Data) != 3 || !a.More {
				t.Errorf("page 2 of 3: %v more=%v", codes(a), a.More)
			}
		}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, a := get(t, tt.path)
			if code != 200 || a.Error != nil {
				t.Fatalf("status %d, error %v", code, a.Error)
			}
			tt.check(t, a)
		})
	}
	for _, path := range []string{
		"/v2/entities/query?entityType=city",
		"/v2/entities/query?entityCode=US",
		"/v2/entities/query?entityType=country&entityCode=USA",
		"/v2/entities/query?relatedTo=US",
		"/v2/entities/query?relatedTo=asn/x",
		"/v2/entities/query?limit=abc",
		"/v2/entities/query?limit=10001",
		"/v2/entities/query?page=-1",
		"/v2/entities/query?bogus=1",
		"/v2/entities/query?limit=1&limit=2",
	} {
		t.Run(path, func(t *testing.T) {
			code, a := get(t, path)
			if code != 400 || a.Error == nil || *a.Error == "" || a.Data != nil {
				t.Errorf("status %d, error %v, data %v; want 400 with the error in the envelope", code, a.Error, a.Data)
			}
		})
	}
}

// The routes that refuse unknown query parameters (entities, outages) accept exactly the
// ones the document lists: each documented one is not refused as unknown, and the refusal of
// another one names the documented ones.
func TestOpenAPIQueryParametersAreTheAcceptedOnes(t *testing.T) {
	_, ts := docServer(t, Deps{Entities: testRegistry(t), Outages: OutageFixture(t)})
	doc, _ := loadDoc(t, ts.URL)
	checked := 0
	for path, item := range doc.Paths.Map() {
		op := item.Get
		if op == nil || !strings.HasPrefix(path, "/v2/") && !strings.HasPrefix(path, "/ioda/") {
			continue
		}
		u := strings.NewReplacer("{entityType}", "country", "{entityCode}", "US").Replace(path)
		var names []string
		for _, p := range op.Parameters {
			if p.Value.In == "query" {
				names = append(names, p.Value.Name)
			}
		}
		unknown := func(q string) string {
			t.Helper()
			resp, err := http.Get(ts.URL + u + "?" + q)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				Error *string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatalf("%s?%s: %v", u, q, err)
			}
			if env.Error != nil && strings.Contains(*env.Error, "unknown parameter") {
				return *env.Error
			}
			return ""
		}
		for _, n := range names {
			if e := unknown(n + "=1"); e != "" {
				t.Errorf("%s: documented parameter %s refused: %s", path, n, e)
			}
		}
		// The refusal names the accepted parameters ("allowed: a, b" or "(want a, b)"): the
		// documented ones, no more.
		e := unknown("undocumented=1")
		_, list, ok := strings.Cut(e, "allowed: ")
		if !ok {
			_, list, _ = strings.Cut(e, "(want ")
		}
		accepted := strings.Split(strings.TrimSuffix(list, ")"), ", ")
		slices.Sort(accepted)
		slices.Sort(names)
		if !slices.Equal(accepted, names) {
			t.Errorf("%s: the route accepts %v, the document lists %v (refusal: %q)", path, accepted, names, e)
		}
		checked++
	}
	if checked < 5 {
		t.Errorf("only %d routes checked", checked)
	}
}
