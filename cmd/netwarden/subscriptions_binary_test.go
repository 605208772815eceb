package main

// Outage subscriptions end to end against the real binary: telemetry
// produced to netwarden.telemetry on the embedded broker, the outage
// service detects, stores and taps, and exactly the subscribed account
// finds every outage alert of its entities in GET /v1/alerts — the same
// ids the outage API lists, once each, also after kill -9 and restart.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/broker"
)

func TestOutageSubscriptionsBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	const countries = "../../../shared/data/geo/country-codes.csv"
	abs, err := filepath.Abs(countries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Skipf("shared data absent (%v)", err)
	}
	feed := t.TempDir()
	snapshot(t, feed, time.Now().Add(-time.Hour), "198.51.100.23")
	s := newServer(t, nil, fmt.Sprintf("entity: {countries_csv: %q}\nscrape: {feeds: [{name: LIST-A, kind: ip, format: plain, source: %q, every: 1s}]}", abs, feed))
	create := func(email string) string {
		t.Helper()
		out, err := exec.Command(s.bin, "account", "create", "--email", email, "--plan", "DEVELOPER", "--json", "--config", s.cfgPath).Output()
		if err != nil {
			t.Fatalf("account create %s: %v", email, err)
		}
		var r struct{ Key string }
		if err := json.Unmarshal(out, &r); err != nil || r.Key == "" {
			t.Fatalf("account create %s: %q %v", email, out, err)
		}
		return r.Key
	}
	keyA, keyB := create("a@example.com"), create("b@example.com")
	s.start()
	s.waitIdle(2 * time.Minute)
	s.must(t, keyA, "POST", "/v1/subscriptions", `{"entity_type": "country", "entity_code": "us"}`, 201)
	s.must(t, keyA, "POST", "/v1/subscriptions", `{"entity_type": "asn", "entity_code": "AS3307"}`, 201)
	s.must(t, keyB, "POST", "/v1/subscriptions", `{"entity_type": "country", "entity_code": "DE"}`, 201)

	t0 := produceOutage(t, s, [2]string{"country", "US"}, [2]string{"country", "DE"}, [2]string{"asn", "3307"})

	// The outage service's own alerts per entity (IODA v2 API).
	outageIDs := func(typ, code string) []int64 {
		t.Helper()
		m := s.must(t, "", "GET", fmt.Sprintf("/v2/outages/alerts?from=%d&until=%d&entityType=%s&entityCode=%s&limit=1000", t0, t0+49*3600, typ, code), "", 200)
		var ids []int64
		for _, a := range m["data"].([]any) {
			ids = append(ids, int64(a.(map[string]any)["id"].(float64)))
		}
		slices.Sort(ids)
		return ids
	}
	// An account's outage activity: outage alert ids (sorted), levels.
	activity := func(key string) ([]int64, []string) {
		t.Helper()
		m := s.must(t, key, "GET", "/v1/alerts?type=outage&items=1000", "", 200)
		var ids []int64
		var what []string
		for _, a := range m["alerts"].([]any) {
			o := a.(map[string]any)["outage"].(map[string]any)
			ids = append(ids, int64(o["id"].(float64)))
			what = append(what, fmt.Sprintf("%s %s %s", o["entity_name"], o["datasource"], o["level"]))
		}
		slices.Sort(ids)
		return ids, what
	}
	var us []int64
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		us = outageIDs("country", "US")
		got, _ := activity(keyA)
		if len(us) >= 2 && slices.Equal(got, us) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 min: the outage service has alerts %v for country/US, A's activity %v", us, got)
		}
	}
	_, what := activity(keyA)
	t.Logf("country/US outage alerts %v; A has %v", us, what)
	if !slices.Contains(what, "United States of America bgp critical") || !slices.Contains(what, "United States of America bgp normal") {
		t.Fatalf("A's outage alerts: %v", what)
	}
	check := func(when string) {
		t.Helper()
		wantA := append(outageIDs("country", "US"), outageIDs("asn", "3307")...)
		slices.Sort(wantA)
		if got, _ := activity(keyA); !slices.Equal(got, wantA) {
			t.Fatalf("%s: A's outage alerts %v, want the service's %v", when, got, wantA)
		}
		if got, _ := activity(keyB); !slices.Equal(got, outageIDs("country", "DE")) {
			t.Fatalf("%s: B's outage alerts %v, want DE's %v", when, got, outageIDs("country", "DE"))
		}
	}
	check("live")

	// kill -9 and restart: the service replays the topic; nothing is
	// tapped twice or lost.
	s.kill()
	s.start()
	s.waitIdle(2 * time.Minute)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		var h map[string]any
		if code, err := s.get("/readyz", &h); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after restart")
		}
	}
	time.Sleep(2 * time.Second) // the outage service's replay and re-delivery
	check("after kill -9 and restart")
	if m := s.must(t, keyA, "GET", "/v1/alerts?type=blocklist", "", 200); len(m["alerts"].([]any)) != 0 {
		t.Fatalf("outage alerts under type=blocklist: %v", m)
	}
	if strings.Contains(jsonText(s.must(t, keyB, "GET", "/v1/alerts", "", 200)), "United States") {
		t.Fatal("B sees A's outage alerts")
	}
}

// produceOutage produces two days of bgp visibility (5-minute bins,
// starting four days ago) for the entities (type, code) to the binary's
// telemetry topic; the first one loses 90 % for half an hour on the
// second day, then recovers, the others stay flat. It returns the first
// bin's time.
func produceOutage(t *testing.T, s *server, entities ...[2]string) int64 {
	t.Helper()
	const bin = 300
	t0 := time.Now().Add(-4*24*time.Hour).Unix() / bin * bin
	drop := t0 + 36*3600
	var recs []*kgo.Record
	for at := t0; at < t0+48*3600; at += bin {
		for i, e := range entities {
			v := 1000.0 + float64((at/bin)%7)
			if i == 0 && at >= drop && at < drop+1800 {
				v = 100
			}
			p := detect.Point{Datasource: "bgp", EntityType: e[0], EntityCode: e[1], Time: at, Value: v}
			b, _ := json.Marshal(p)
			recs = append(recs, &kgo.Record{Topic: broker.TopicTelemetry, Key: []byte("bgp/" + e[0] + "/" + e[1]), Value: b})
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.kport)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return t0
}
