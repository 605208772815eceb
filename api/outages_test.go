package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/stream/outage"
)

const sharedGeo = "../../shared/data/geo"

// outageServer serves the outage routes over real HTTP from
// api.OutageFixture's store.
func outageServer(t *testing.T, opts ...func(*api.Config)) (string, *outage.Service) {
	t.Helper()
	var reg *entity.Registry
	if _, err := os.Stat(sharedGeo); err == nil {
		r, err := entity.Load(entity.Config{CountriesCSV: filepath.Join(sharedGeo, "country-codes.csv"),
			ASNDB: filepath.Join(sharedGeo, "GeoLite2-ASN-Test.mmdb"), CityDB: filepath.Join(sharedGeo, "GeoLite2-City-Test.mmdb")})
		if err != nil {
			t.Fatal(err)
		}
		reg = r
	} else {
		t.Logf("shared geo data absent at %s: entity names are not checked", sharedGeo)
	}
	svc := api.OutageFixture(t)
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	for _, o := range opts {
		o(&ac)
	}
	deps := api.Deps{Outages: svc}
	if reg != nil {
		deps.Entities = reg
	}
	hs := httptest.NewServer(api.New(ac, deps, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(hs.Close)
	return hs.URL, svc
}

func getJSON(t *testing.T, url string, wantCode int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, wantCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// TestOutageRoutesBadParameters: every malformed request is a 400 whose
// IODA envelope carries the reason (and no data).
func TestOutageRoutesBadParameters(t *testing.T) {
	base, _ := outageServer(t)
	cases := []struct{ path, want string }{
		{"/ioda/data/alerts", "from is required"},
		{"/ioda/data/alerts?from=0", "until is required"},
		{"/ioda/data/alerts?from=x&until=10", "is not Unix seconds"},
		{"/ioda/data/alerts?from=10&until=10", "must be before"},
		{"/ioda/data/alerts?from=-5&until=10", "is not Unix seconds"},
		{"/ioda/data/alerts?from=0&until=10&meta=city", "want country|region|asn"},
		{"/ioda/data/alerts?from=0&until=10&meta=country/USA", "ISO 3166-1"},
		{"/ioda/data/alerts?from=0&until=10&meta=asn/AS-x", "32-bit AS number"},
		{"/ioda/data/alerts?from=0&until=10&meta=asn/", "optionally /code"},
		{"/ioda/data/alerts?from=0&until=10&annotateMeta=perhaps", "want true or false"},
		{"/ioda/data/alerts?from=0&until=10&level=bad", "want normal, warning or critical"},
		{"/ioda/data/alerts?from=0&until=10&datasource=gps", "datasource \"gps\""},
		{"/ioda/data/alerts?from=0&until=10&fomr=1", "unknown parameter \"fomr\""},
		{"/ioda/data/alerts?from=0&until=10&from=5", "given 2 times"},
		{"/ioda/data/alerts?from=0&until=10&limit=-1", "want an integer"},
		{"/v2/outages/alerts?until=10", "from is required"},
		{"/v2/outages/alerts?from=0&until=10&entityCode=US", "needs an entityType"},
		{"/v2/outages/alerts?from=0&until=10&entityType=planet", "want country|region|asn"},
		{"/v2/outages/events?from=0&until=10&entityType=country&entityCode=1A", "ISO 3166-1"},
		{"/v2/outages/events?from=0&until=10&page=x", "page=\"x\""},
		{"/v2/outages/summary?from=20&until=10", "must be before"},
		{"/v2/outages/summary?from=0&until=10&limit=1000001", "want an integer"},
		{"/v2/signals/raw/country/US?from=0", "until is required"},
		{"/v2/signals/raw/city/Paris?from=0&until=10", "want country|region|asn"},
		{"/v2/signals/raw/asn/x?from=0&until=10", "32-bit AS number"},
		{"/v2/signals/raw/country/US?from=0&until=1000000000", "narrow from/until"},
		{"/v2/signals/raw/country/US?from=0&until=10&datasource=x", "datasource \"x\""},
		{"/v2/signals/raw/country/US?from=0&until=10&entityType=asn", "unknown parameter"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			var env struct {
				Type  string          `json:"type"`
				Error *string         `json:"error"`
				Data  json.RawMessage `json:"data"`
			}
			getJSON(t, base+c.path, http.StatusBadRequest, &env)
			if env.Error == nil || !strings.Contains(*env.Error, c.want) {
				t.Fatalf("error %v, want it to contain %q", env.Error, c.want)
			}
			if env.Type == "" || (len(env.Data) > 0 && string(env.Data) != "null") {
				t.Fatalf("envelope type %q data %s: want the route's type and no data", env.Type, env.Data)
			}
		})
	}
}

// TestIODAv1Alerts checks the watchtower envelope, the meta filter,
// annotateMeta and human.
func TestIODAv1Alerts(t *testing.T) {
	base, _ := outageServer(t)
	type alert struct {
		FQID         string  `json:"fqid"`
		Name         string  `json:"name"`
		Time         any     `json:"time"`
		Level        string  `json:"level"`
		Condition    string  `json:"condition"`
		Value        float64 `json:"value"`
		HistoryValue float64 `json:"historyValue"`
		MetaType     string  `json:"metaType"`
		MetaCode     string  `json:"metaCode"`
		Meta         *struct {
			Name  string         `json:"name"`
			Attrs map[string]any `json:"attrs"`
		} `json:"meta"`
	}
	type env struct {
		Type            string            `json:"type"`
		Error           *string           `json:"error"`
		QueryParameters map[string]string `json:"queryParameters"`
		Data            struct {
			Alerts []alert `json:"alerts"`
		} `json:"data"`
	}
	cases := []struct {
		query string
		want  []string // metaType/metaCode@time level
	}{
		{"from=0&until=100000", []string{"country/US@3000 critical", "country/US@3600 critical", "country/US@4200 normal", "country/US@4800 normal", "region/5332921@6000 critical", "region/5332921@6600 normal", "asn/15169@9000 warning"}},
		{"from=3600&until=6000", []string{"country/US@3600 critical", "country/US@4200 normal", "country/US@4800 normal"}},
		{"from=0&until=100000&meta=country", []string{"country/US@3000 critical", "country/US@3600 critical", "country/US@4200 normal", "country/US@4800 normal"}},
		{"from=0&until=100000&meta=country/us&datasource=ping-slash24", []string{"country/US@3600 critical", "country/US@4800 normal"}},
		{"from=0&until=100000&meta=asn/AS15169", []string{"asn/15169@9000 warning"}},
		{"from=0&until=100000&meta=region/5332921&level=critical", []string{"region/5332921@6000 critical"}},
		{"from=0&until=100000&meta=asn/3307", nil},
		{"from=0&until=100000&limit=2", []string{"country/US@3000 critical", "country/US@3600 critical"}},
		// limit counts the alerts of the level asked for.
		{"from=0&until=100000&limit=2&level=normal", []string{"country/US@4200 normal", "country/US@4800 normal"}},
	}
	for _, c := range cases {
		var e env
		getJSON(t, base+"/ioda/data/alerts?"+c.query, http.StatusOK, &e)
		if e.Type != "watchtower.alerts" || e.Error != nil || e.QueryParameters["from"] == "" {
			t.Fatalf("%s: envelope %+v", c.query, e)
		}
		var got []string
		for _, a := range e.Data.Alerts {
			got = append(got, a.MetaType+"/"+a.MetaCode+"@"+strings.TrimSuffix(strings.TrimSuffix(jsonString(a.Time), ".0"), "")+" "+a.Level)
			if a.Meta != nil {
				t.Fatalf("%s: meta without annotateMeta", c.query)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Fatalf("%s:\n got %v\nwant %v", c.query, got, c.want)
		}
	}

	var e env
	getJSON(t, base+"/ioda/data/alerts?from=0&until=100000&annotateMeta=true&human=true", http.StatusOK, &e)
	us := e.Data.Alerts[0]
	if us.Time != "1970-01-01T00:50:00Z" || us.Condition != "< historical * 0.5" || us.Value != 20 || us.HistoryValue != 100 || us.Name != "bgp" || us.FQID == "" {
		t.Fatalf("US alert %+v", us)
	}
	if _, err := os.Stat(sharedGeo); err != nil {
		return
	}
	byCode := map[string]alert{}
	for _, a := range e.Data.Alerts {
		byCode[a.MetaCode] = a
	}
	checks := []struct {
		code, name, fqid, attr, val string
	}{
		{"US", "United States of America", "geo.netacuity.NA.US", "country_code", "US"},
		{"15169", "AS15169 (Google Inc.)", "asn.15169", "org", "Google Inc."},
		{"5332921", "California", "geo.netacuity.NA.US.5332921", "country_code", "US"},
	}
	for _, c := range checks {
		a := byCode[c.code]
		if a.Meta == nil || a.Meta.Name != c.name || a.Meta.Attrs["fqid"] != c.fqid || a.Meta.Attrs["name"] != c.name || a.Meta.Attrs[c.attr] != c.val {
			t.Errorf("%s meta %+v, want name %q fqid %q %s=%q", c.code, a.Meta, c.name, c.fqid, c.attr, c.val)
		}
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestOutageV2Routes checks alerts, events, summary and signals in IODA
// v2's envelope.
func TestOutageV2Routes(t *testing.T) {
	base, _ := outageServer(t)
	type env[T any] struct {
		Type              string            `json:"type"`
		Error             *string           `json:"error"`
		RequestParameters map[string]string `json:"requestParameters"`
		Metadata          map[string]string `json:"metadata"`
		Data              T                 `json:"data"`
	}
	var alerts env[[]struct {
		Datasource string `json:"datasource"`
		Entity     struct {
			Type, Code, Name string
		} `json:"entity"`
		Time  int64  `json:"time"`
		Level string `json:"level"`
	}]
	getJSON(t, base+"/v2/outages/alerts?from=0&until=100000&entityType=country&entityCode=US&limit=2&page=1", http.StatusOK, &alerts)
	if alerts.Type != "outages.alerts" || alerts.Error != nil || alerts.Metadata["requestTime"] == "" || len(alerts.Data) != 2 ||
		alerts.Data[0].Time != 4200 || alerts.Data[1].Time != 4800 || alerts.Data[0].Entity.Code != "US" {
		t.Fatalf("alerts page 1: %+v", alerts)
	}

	type event struct {
		Location       string   `json:"location"`
		LocationName   string   `json:"location_name"`
		Start          int64    `json:"start"`
		Duration       int64    `json:"duration"`
		Score          float64  `json:"score"`
		OverlapsWindow bool     `json:"overlaps_window"`
		Ongoing        bool     `json:"ongoing"`
		End            *int64   `json:"end"`
		Level          string   `json:"level"`
		Datasources    []string `json:"datasources"`
	}
	var evs env[[]event]
	getJSON(t, base+"/v2/outages/events?from=0&until=100000", http.StatusOK, &evs)
	if evs.Type != "outages.events" || len(evs.Data) != 3 {
		t.Fatalf("events: %+v", evs)
	}
	us, ca, g := evs.Data[0], evs.Data[1], evs.Data[2]
	// US: bgp drop 0.8 for 20 min + ping drop 1-5/80 for 20 min.
	wantScore := 0.8*20 + (1-5.0/80)*20
	if us.Location != "country/US" || us.Start != 3000 || us.End == nil || *us.End != 4800 || us.Duration != 1800 || us.Ongoing ||
		us.Level != "critical" || strings.Join(us.Datasources, ",") != "bgp,ping-slash24" || abs(us.Score-wantScore) > 1e-9 || us.OverlapsWindow {
		t.Fatalf("US event %+v (score want %v)", us, wantScore)
	}
	if ca.Location != "region/5332921" || ca.Duration != 600 {
		t.Fatalf("region event %+v", ca)
	}
	// Ongoing: up to the watermark 12000.
	if g.Location != "asn/15169" || !g.Ongoing || g.End != nil || g.Duration != 3000 || !g.OverlapsWindow || abs(g.Score-0.1*50) > 1e-9 {
		t.Fatalf("ongoing event %+v", g)
	}
	getJSON(t, base+"/v2/outages/events?from=4800&until=6000", http.StatusOK, &evs)
	if len(evs.Data) != 0 {
		t.Fatalf("events in a window between them: %+v", evs.Data)
	}
	getJSON(t, base+"/v2/outages/events?from=4000&until=6001&datasource=ping-slash24", http.StatusOK, &evs)
	if len(evs.Data) != 1 || evs.Data[0].Location != "country/US" || !evs.Data[0].OverlapsWindow {
		t.Fatalf("ping events overlapping 4000-6001: %+v", evs.Data)
	}

	var sum env[[]struct {
		Scores   map[string]float64 `json:"scores"`
		Entity   struct{ Type, Code string }
		EventCnt int `json:"event_cnt"`
	}]
	getJSON(t, base+"/v2/outages/summary?from=0&until=100000", http.StatusOK, &sum)
	if sum.Type != "outages.summary" || len(sum.Data) != 3 || sum.Data[0].Entity.Code != "US" || sum.Data[0].EventCnt != 1 ||
		abs(sum.Data[0].Scores["overall"]-wantScore) > 1e-9 || abs(sum.Data[0].Scores["ping-slash24"]-wantScore) > 1e-9 {
		t.Fatalf("summary: %+v", sum)
	}
	if sum.Data[1].Scores["overall"] < sum.Data[2].Scores["overall"] {
		t.Fatalf("summary not by score: %+v", sum.Data)
	}

	var sig env[[][]struct {
		EntityType string     `json:"entityType"`
		EntityCode string     `json:"entityCode"`
		Datasource string     `json:"datasource"`
		From       int64      `json:"from"`
		Step       int64      `json:"step"`
		Values     []*float64 `json:"values"`
		Baseline   []*float64 `json:"baseline"`
	}]
	getJSON(t, base+"/v2/signals/raw/country/us?from=250&until=6600", http.StatusOK, &sig)
	if sig.Type != "signals" || len(sig.Data) != 1 || len(sig.Data[0]) != 1 {
		t.Fatalf("signals: %+v", sig)
	}
	s := sig.Data[0][0]
	if s.EntityCode != "US" || s.Datasource != "bgp" || s.From != 300 || s.Step != 300 || len(s.Values) != 21 || len(s.Baseline) != 21 {
		t.Fatalf("signal %+v", s)
	}
	for i, v := range s.Values {
		tm := s.From + int64(i)*300
		switch {
		case tm >= 6000:
			if v != nil || s.Baseline[i] != nil {
				t.Fatalf("bin %d: no verdict stored, got %v", tm, *v)
			}
		case v == nil:
			t.Fatalf("bin %d missing", tm)
		case tm < 600 && s.Baseline[i] != nil: // bin 300: not judged
			t.Fatalf("bin %d not judged but has a baseline", tm)
		case tm >= 600 && (s.Baseline[i] == nil || *s.Baseline[i] != 100):
			t.Fatalf("bin %d baseline %v", tm, s.Baseline[i])
		case tm >= 3000 && tm < 4200 && *v != 20:
			t.Fatalf("bin %d value %v, want the outage's 20", tm, *v)
		}
	}
	getJSON(t, base+"/v2/signals/raw/asn/15169?from=0&until=6000", http.StatusOK, &sig)
	if len(sig.Data[0]) != 0 {
		t.Fatalf("signals of an entity without verdicts: %+v", sig.Data)
	}

	// HEAD answers too.
	resp, err := http.Head(base + "/v2/outages/events?from=0&until=10")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestOutageV2IODAParameters: the parameters IODA's v2 outage routes take
// (OutagesController.php in InetIntel/ioda-api) and its UI sends
// (ActionOutages.js in InetIntel/ioda-ui) are served, not refused as
// unknown: relatedTo, orderBy, format=codf, a bare overall,
// includeAlerts=false; the values netwarden cannot honour are a 400 with
// the reason.
func TestOutageV2IODAParameters(t *testing.T) {
	base, _ := outageServer(t)
	type env[T any] struct {
		Type  string  `json:"type"`
		Error *string `json:"error"`
		Data  T       `json:"data"`
	}
	type event struct {
		Location     string  `json:"location"`
		LocationName string  `json:"location_name"`
		Start        int64   `json:"start"`
		Score        float64 `json:"score"`
	}
	type summary struct {
		Scores map[string]float64 `json:"scores"`
		Entity struct{ Type, Code, Name string }
	}
	var evs env[[]event]
	getJSON(t, base+"/v2/outages/events?from=0&until=100000&format=codf&overall&includeAlerts=false&orderBy=score/asc", http.StatusOK, &evs)
	if len(evs.Data) != 3 {
		t.Fatalf("events: %+v", evs)
	}
	for i := 1; i < len(evs.Data); i++ {
		if evs.Data[i-1].Score > evs.Data[i].Score {
			t.Fatalf("orderBy=score/asc: %+v", evs.Data)
		}
	}
	all := slices.Clone(evs.Data)
	getJSON(t, base+"/v2/outages/events?from=0&until=100000&orderBy=score/desc&limit=1&page=0", http.StatusOK, &evs)
	if len(evs.Data) != 1 || evs.Data[0] != all[len(all)-1] {
		t.Fatalf("orderBy=score/desc limit 1: %+v, want the highest of %+v", evs.Data, all)
	}
	getJSON(t, base+"/v2/outages/events?from=0&until=100000&orderBy=time/desc", http.StatusOK, &evs)
	for i := 1; i < len(evs.Data); i++ {
		if evs.Data[i-1].Start < evs.Data[i].Start {
			t.Fatalf("orderBy=time/desc: %+v", evs.Data)
		}
	}
	// format=ioda&overall, as IODA's UI asks for its stacked horizon: the
	// same events as entity, from, until, score (OutagesEvent.php).
	var ioda env[[]struct {
		Entity     struct{ Type, Code, Name string } `json:"entity"`
		From       int64                             `json:"from"`
		Until      int64                             `json:"until"`
		Score      float64                           `json:"score"`
		Datasource string                            `json:"datasource"`
		Method     string                            `json:"method"`
	}]
	getJSON(t, base+"/v2/outages/events?from=0&until=100000&format=ioda&overall", http.StatusOK, &ioda)
	var codf env[[]struct {
		Location   string  `json:"location"`
		Name       string  `json:"location_name"`
		Start      int64   `json:"start"`
		Duration   int64   `json:"duration"`
		Score      float64 `json:"score"`
		Datasource string  `json:"datasource"`
		Method     string  `json:"method"`
	}]
	getJSON(t, base+"/v2/outages/events?from=0&until=100000", http.StatusOK, &codf)
	if len(ioda.Data) != len(codf.Data) || len(codf.Data) == 0 {
		t.Fatalf("format=ioda %+v, codf %+v", ioda.Data, codf.Data)
	}
	for i, e := range ioda.Data {
		c := codf.Data[i]
		if e.Entity.Type+"/"+e.Entity.Code != c.Location || e.Entity.Name != c.Name || e.From != c.Start || e.Until != c.Start+c.Duration ||
			e.Score != c.Score || e.Datasource != c.Datasource || e.Method != c.Method || e.Method == "" {
			t.Fatalf("format=ioda event %+v, codf %+v", e, c)
		}
	}
	// entityCode takes a comma-separated list, as IODA's (metaCode IN
	// (codes) in OutagesAlertsRepository.php).
	var alerts env[[]struct {
		Entity struct{ Type, Code string } `json:"entity"`
		Time   int64                       `json:"time"`
	}]
	getJSON(t, base+"/v2/outages/alerts?from=0&until=100000&entityType=asn&entityCode=15169,as3307", http.StatusOK, &alerts)
	if len(alerts.Data) != 1 || alerts.Data[0].Entity.Code != "15169" {
		t.Fatalf("alerts of asn 15169,3307: %+v", alerts.Data)
	}
	getJSON(t, base+"/v2/outages/alerts?from=0&until=100000&entityType=asn&entityCode=3307,64500", http.StatusOK, &alerts)
	if len(alerts.Data) != 0 {
		t.Fatalf("alerts of asn 3307,64500: %+v", alerts.Data)
	}
	getJSON(t, base+"/v2/outages/events?from=0&until=100000&entityType=region&entityCode=5332921,5128581&limit=1", http.StatusOK, &evs)
	if len(evs.Data) != 1 || evs.Data[0].Location != "region/5332921" {
		t.Fatalf("events of regions 5332921,5128581: %+v", evs.Data)
	}
	var sum env[[]summary]
	getJSON(t, base+"/v2/outages/summary?from=0&until=100000&entityType=country&entityCode=us,CA", http.StatusOK, &sum)
	if len(sum.Data) != 1 || sum.Data[0].Entity.Code != "US" {
		t.Fatalf("summary of countries us,CA: %+v", sum.Data)
	}
	getJSON(t, base+"/v2/outages/summary?from=0&until=100000&includeMetadata=true", http.StatusOK, &sum)
	if len(sum.Data) != 3 || sum.Data[0].Entity.Code == "" {
		t.Fatalf("summary includeMetadata=true: %+v", sum.Data)
	}
	getJSON(t, base+"/v2/outages/summary?from=0&until=100000&orderBy=score/asc", http.StatusOK, &sum)
	if len(sum.Data) != 3 || sum.Data[0].Scores["overall"] > sum.Data[1].Scores["overall"] || sum.Data[1].Scores["overall"] > sum.Data[2].Scores["overall"] {
		t.Fatalf("summary orderBy=score/asc: %+v", sum.Data)
	}

	for _, c := range []struct{ path, want string }{
		{"/v2/outages/events?from=0&until=10&format=csv", "want codf or ioda"},
		{"/v2/outages/summary?from=0&until=10&includeMetadata=yes", "want true or false"},
		{"/v2/outages/events?from=0&until=10&includeMetadata=true", "unknown parameter"},
		{"/v2/outages/events?from=0&until=10&overall=false", "merged across datasources"},
		{"/v2/outages/events?from=0&until=10&overall=maybe", "want true or false"},
		{"/v2/outages/events?from=0&until=10&includeAlerts", "includeAlerts=true"},
		{"/v2/outages/events?from=0&until=10&orderBy=size", "orderBy=\"size\""},
		{"/v2/outages/summary?from=0&until=10&orderBy=name/up", "orderBy=\"name/up\""},
		{"/v2/outages/alerts?from=0&until=10&orderBy=time", "unknown parameter \"orderBy\""},
		{"/v2/outages/alerts?from=0&until=10&relatedTo=country/USA", "relatedTo=\"country/USA\""},
		{"/v2/outages/alerts?from=0&until=10&entityType=country&entityCode=US,USA", "ISO 3166-1"},
		{"/v2/outages/alerts?from=0&until=10&entityType=country&entityCode=US,", "an empty code"},
		{"/v2/outages/alerts?from=0&until=10&entityCode=US,CA", "needs an entityType"},
	} {
		var e env[json.RawMessage]
		getJSON(t, base+c.path, http.StatusBadRequest, &e)
		if e.Error == nil || !strings.Contains(*e.Error, c.want) {
			t.Fatalf("%s: error %v, want %q", c.path, e.Error, c.want)
		}
	}

	if _, err := os.Stat(sharedGeo); err != nil {
		t.Logf("shared geo data absent at %s: relatedTo is not checked", sharedGeo)
		return
	}
	// relatedTo=country/US keeps the entities /v2/entities/query relates
	// to the US (its regions and ASes), not the US itself.
	var rel env[[]struct{ Type, Code string }]
	getJSON(t, base+"/v2/entities/query?relatedTo=country/US&limit=10000", http.StatusOK, &rel)
	related := map[string]bool{}
	for _, e := range rel.Data {
		related[e.Type+"/"+e.Code] = true
	}
	if !related["region/5332921"] || related["country/US"] {
		t.Fatalf("entities related to the US: %v", related)
	}
	var want []string
	for _, e := range all {
		if related[e.Location] {
			want = append(want, e.Location)
		}
	}
	slices.Sort(want)
	getJSON(t, base+"/v2/outages/summary?from=0&until=100000&relatedTo=country/US", http.StatusOK, &sum)
	var got []string
	for _, s := range sum.Data {
		got = append(got, s.Entity.Type+"/"+s.Entity.Code)
	}
	slices.Sort(got)
	if len(got) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("summary relatedTo=country/US: %v, want %v", got, want)
	}
	getJSON(t, base+"/v2/outages/events?from=0&until=100000&relatedTo=country/US&entityType=region", http.StatusOK, &evs)
	if len(evs.Data) != 1 || evs.Data[0].Location != "region/5332921" {
		t.Fatalf("region events relatedTo=country/US: %+v", evs.Data)
	}
	var als env[[]struct {
		Entity struct{ Type, Code string } `json:"entity"`
	}]
	getJSON(t, base+"/v2/outages/alerts?from=0&until=100000&relatedTo=country/US&limit=1&page=1", http.StatusOK, &als)
	if len(als.Data) != 1 || !related[als.Data[0].Entity.Type+"/"+als.Data[0].Entity.Code] {
		t.Fatalf("alerts relatedTo=country/US page 1: %+v", als.Data)
	}
}

// TestOutageV2SignalsMaxPoints: maxPoints, which IODA's UI sends on every
// signals request (ActionSignals.js in InetIntel/ioda-ui), coarsens the
// series to IODA's step for it (SignalsService::calculateStep in
// InetIntel/ioda-api: the smallest allowed step at or above the native
// one with range/step ≤ maxPoints); the coarse bins are the means of the
// native ones; "null" and 0 mean none.
func TestOutageV2SignalsMaxPoints(t *testing.T) {
	base, _ := outageServer(t)
	type signal struct {
		From       int64      `json:"from"`
		Step       int64      `json:"step"`
		NativeStep int64      `json:"nativeStep"`
		Values     []*float64 `json:"values"`
		Baseline   []*float64 `json:"baseline"`
		Levels     []*string  `json:"levels"`
	}
	get := func(q string) signal {
		t.Helper()
		var e struct {
			Error *string    `json:"error"`
			Data  [][]signal `json:"data"`
		}
		getJSON(t, base+"/v2/signals/raw/country/US?from=0&until=6000"+q, http.StatusOK, &e)
		if len(e.Data) != 1 || len(e.Data[0]) != 1 {
			t.Fatalf("%s: %+v", q, e)
		}
		return e.Data[0][0]
	}
	native := get("")
	for _, q := range []string{"&maxPoints=null", "&maxPoints=0", "&maxPoints=20", "&maxPoints=1000"} {
		if s := get(q); s.Step != 300 || len(s.Values) != len(native.Values) || jsonString(s) != jsonString(native) {
			t.Fatalf("%s: %+v, want the native series %+v", q, s, native)
		}
	}
	// 6000 s in at most 10 points: 600 s (300 s would be 20); in at most
	// 7: 900 s (600 s would be 10).
	for _, c := range []struct {
		maxPoints string
		step      int64
	}{{"10", 600}, {"7", 900}} {
		s := get("&maxPoints=" + c.maxPoints)
		n := int((6000 + c.step - 1) / c.step)
		if s.Step != c.step || s.NativeStep != 300 || s.From != 0 || len(s.Values) != n || len(s.Baseline) != n || len(s.Levels) != n {
			t.Fatalf("maxPoints=%s: %+v", c.maxPoints, s)
		}
		// The means and worst levels of the native bins each coarse bin holds.
		sum, cnt := map[[2]int64]float64{}, map[[2]int64]int{}
		worst := map[int64]string{}
		rank := map[string]int{"": -1, "normal": 0, "warning": 1, "critical": 2}
		for i := range native.Values {
			j := (native.From + int64(i)*300) / c.step
			for k, v := range []*float64{native.Values[i], native.Baseline[i]} {
				if v != nil {
					sum[[2]int64{j, int64(k)}] += *v
					cnt[[2]int64{j, int64(k)}]++
				}
			}
			if l := native.Levels[i]; l != nil && rank[*l] > rank[worst[j]] {
				worst[j] = *l
			}
		}
		for j := range n {
			for k, got := range []*float64{s.Values[j], s.Baseline[j]} {
				key := [2]int64{int64(j), int64(k)}
				var want *float64
				if cnt[key] > 0 {
					m := sum[key] / float64(cnt[key])
					want = &m
				}
				if jsonString(got) != jsonString(want) {
					t.Fatalf("maxPoints=%s bin %d (%d): %s, want %s", c.maxPoints, j, k, jsonString(got), jsonString(want))
				}
			}
			if got := s.Levels[j]; (got == nil) != (worst[int64(j)] == "") || (got != nil && *got != worst[int64(j)]) {
				t.Fatalf("maxPoints=%s bin %d level %v, want %q", c.maxPoints, j, jsonString(got), worst[int64(j)])
			}
		}
		if c.step == 900 && (s.Values[3] == nil || *s.Values[3] == 100 || *s.Values[3] == 20) {
			t.Fatalf("maxPoints=7: bin 2700-3600 %v, want a mean of 100 and 20s", jsonString(s.Values[3]))
		}
	}
	var e struct {
		Error *string `json:"error"`
	}
	getJSON(t, base+"/v2/signals/raw/country/US?from=0&until=6000&maxPoints=-1", http.StatusBadRequest, &e)
	if e.Error == nil || !strings.Contains(*e.Error, "maxPoints") {
		t.Fatalf("maxPoints=-1: %v", e.Error)
	}
}

// TestOutageQueriesBounded: a query that would gather more rows than
// http.max_range_rows (deep pages, summaries and filters applied after the
// store) is a 422 with the reason, not a load of every row in the range.
func TestOutageQueriesBounded(t *testing.T) {
	base, _ := outageServer(t, func(c *api.Config) { c.MaxRangeRows = 2 })
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/v2/outages/alerts?from=0&until=20000&limit=2", 200},
		{"/v2/outages/alerts?from=0&until=20000&limit=2&page=1", 422},
		{"/v2/outages/events?from=0&until=20000&limit=2", 200},
		{"/v2/outages/summary?from=0&until=20000", 422}, // 3 events
		{"/v2/outages/summary?from=0&until=20000&entityType=country", 200},
		{"/ioda/data/alerts?from=0&until=20000&limit=2", 200},
		{"/ioda/data/alerts?from=0&until=20000&level=critical", 422}, // filtered after the store
	} {
		var env struct {
			Error *string `json:"error"`
		}
		getJSON(t, base+tc.path, tc.code, &env)
		if tc.code == 422 && (env.Error == nil || !strings.Contains(*env.Error, "http.max_range_rows")) {
			t.Errorf("%s: error %v, want the reason", tc.path, env.Error)
		}
	}
}
