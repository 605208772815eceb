package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/netwarden/netwarden/internal/broker"
)

// outageAlert is one alert of netwarden.alerts.outage as
// docs/schemas/alert-outage.json documents it, decoded independently of
// stream/outage.
type outageAlert struct {
	ID           int64   `json:"id"`
	Datasource   string  `json:"datasource"`
	EntityType   string  `json:"entity_type"`
	EntityCode   string  `json:"entity_code"`
	EntityName   string  `json:"entity_name"`
	Time         int64   `json:"time"`
	Level        string  `json:"level"`
	Condition    string  `json:"condition"`
	Value        float64 `json:"value"`
	HistoryValue float64 `json:"historyValue"`
	Method       string  `json:"method"`
	Window       int64   `json:"window"`
}

// TestOutageTopicInterop runs the real binary and talks to the outage
// pipeline's topics only with clients netwarden did not write: kcat -P
// produces telemetry points (each validated against
// docs/schemas/telemetry-point.json first) holding three outages into
// netwarden.telemetry, and the server detects them (/v2/outages/alerts
// answers the level transitions the signals were built for); then kcat
// and kafkajs read netwarden.alerts.outage: every record validates
// against docs/schemas/alert-outage.json, is keyed entity_type/entity_code,
// and the alerts (by id, field by field) are exactly those the API serves.
func TestOutageTopicInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test runs the binary and external clients")
	}
	needShared(t)
	kcat := needTool(t, "kcat", "kcat")
	pointSchema := compileSchemaFile(t, "telemetry-point.json")
	alertSchema := compileSchemaFile(t, "alert-outage.json")

	extra := "detect: {grace: 600, tick: 100ms, export_every: 500ms, datasources: {bgp: {bin: 300, window: 7200, warm_up: 6, min_predicted: 10, warning: 0.8, critical: 0.5, min_duration: 2, accept_after: 12}}}\n"
	s := newServer(t, []listRun{runs[6]}, extra) // a feed keeps the scrapers running
	s.start()
	const t0 = 1_704_067_200 // 2024-01-01: event time only
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code, err := s.get("/v2/outages/alerts?from=0&until=10", nil); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) || s.cmd.ProcessState != nil {
			t.Fatal("outage routes never answered")
		}
		time.Sleep(200 * time.Millisecond)
	}
	seed := fmt.Sprintf("127.0.0.1:%d", s.kport)

	// 60 bins of three series at 100: country US drops to 10 (critical)
	// in bins 30-37, AS64500 to 70 (warning) in bins 20-25, region
	// TR-Zinguldak to 0 (critical) from bin 52 on (ongoing).
	type series struct {
		typ, code string
		low       float64
		from, to  int
	}
	sers := []series{{"country", "US", 10, 30, 38}, {"asn", "64500", 70, 20, 26}, {"region", "TR-Zinguldak", 0, 52, 60}}
	// The whole backfill in one kcat -P, as a producer backfilling does.
	// librdkafka sends each partition's batch on its own, so the service
	// can read one partition's 60 bins before another's first record is
	// on the broker; detect.align_wait lines them up (before it, 114 of
	// 180 points were late in about half of the runs).
	var in bytes.Buffer
	for i := range 60 {
		for _, e := range sers {
			v := 100.0
			if i >= e.from && i < e.to {
				v = e.low
			}
			line := fmt.Sprintf(`{"datasource":"bgp","entity_type":%q,"entity_code":%q,"time":%d,"value":%g}`, e.typ, e.code, t0+300*i, v)
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
			if err != nil {
				t.Fatal(err)
			}
			if err := pointSchema.Validate(doc); err != nil {
				t.Fatalf("test point %s does not validate: %v", line, err)
			}
			fmt.Fprintf(&in, "bgp/%s/%s\t%s\n", e.typ, e.code, line)
		}
	}
	cmd := exec.Command(kcat, "-P", "-b", seed, "-t", broker.TopicTelemetry, "-K", "\t")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	want := []string{
		fmt.Sprintf("asn/64500@%d warning", t0+300*20), fmt.Sprintf("asn/64500@%d normal", t0+300*26),
		fmt.Sprintf("country/US@%d critical", t0+300*30), fmt.Sprintf("country/US@%d normal", t0+300*38),
		fmt.Sprintf("region/TR-Zinguldak@%d critical", t0+300*52),
	}
	var api []outageAlert
	deadline = time.Now().Add(time.Minute)
	for {
		api = v2OutageAlerts(t, s, t0, t0+86400)
		if len(api) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var got []string
	for _, a := range api {
		got = append(got, fmt.Sprintf("%s/%s@%d %s", a.EntityType, a.EntityCode, a.Time, a.Level))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("/v2/outages/alerts: %v\nwant %v (%v points late, %v bad)", got, want,
			s.metric("netwarden_outage_points_late_total"), s.metric("netwarden_outage_points_bad_total"))
	}
	// The schema is not vacuous: an API alert in the topic's shape
	// validates, one with a level or an extra field the schema does not
	// list fails.
	b, _ := json.Marshal(api[0])
	for _, c := range []struct {
		doc string
		ok  bool
	}{
		{string(b), true},
		{strings.Replace(string(b), `"level":"`, `"level":"x`, 1), false},
		{strings.Replace(string(b), `{`, `{"extra":1,`, 1), false},
	} {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := alertSchema.Validate(doc); (err == nil) != c.ok {
			t.Errorf("alert-outage.json on %s: %v, want valid %v", c.doc, err, c.ok)
		}
	}
	if late, bad := s.metric("netwarden_outage_points_late_total"), s.metric("netwarden_outage_points_bad_total"); late != 0 || bad != 0 {
		t.Errorf("%v points late, %v bad: want none", late, bad)
	}
	byID := map[int64]outageAlert{}
	for _, a := range api {
		byID[a.ID] = a
	}
	if len(byID) != len(api) {
		t.Fatalf("/v2/outages/alerts repeats an id: %+v", api)
	}

	// check compares what a client read with the API: every record
	// validates and is keyed by its entity, and the ids (repeats dropped,
	// as the schema allows) are the API's, each alert equal to the API's.
	check := func(client string, recs []keyed) (problems []string) {
		seen := map[int64]bool{}
		for _, r := range recs {
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(r.value))
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s record %s: %v", client, r.value, err))
				continue
			}
			if err := alertSchema.Validate(doc); err != nil {
				problems = append(problems, fmt.Sprintf("%s record %s does not validate: %v", client, r.value, err))
			}
			var a outageAlert
			if err := json.Unmarshal([]byte(r.value), &a); err != nil {
				problems = append(problems, fmt.Sprintf("%s record %s: %v", client, r.value, err))
				continue
			}
			if k := a.EntityType + "/" + a.EntityCode; r.key != k {
				problems = append(problems, fmt.Sprintf("%s record %s keyed %q, want %q", client, r.value, r.key, k))
			}
			if w, ok := byID[a.ID]; !ok {
				problems = append(problems, fmt.Sprintf("%s record %s: id not served by /v2/outages/alerts", client, r.value))
			} else if a != w {
				problems = append(problems, fmt.Sprintf("%s record\n %+v\nAPI\n %+v", client, a, w))
			}
			seen[a.ID] = true
		}
		for id := range byID {
			if !seen[id] {
				problems = append(problems, fmt.Sprintf("%s: alert %d of /v2/outages/alerts is not on the topic", client, id))
			}
		}
		return problems
	}

	t.Run("kcat", func(t *testing.T) {
		// Publishing follows storing: read again until the topic has
		// caught up with the API, for at most a minute.
		var problems []string
		var recs []keyed
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			cmd := exec.Command(kcat, "-b", seed, "-C", "-t", broker.TopicAlertsOutage, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kcat -C: %v\n%s", err, stderr.String())
			}
			recs = recs[:0]
			for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
				if line == "" {
					continue
				}
				k, v, ok := strings.Cut(line, "\t")
				if !ok {
					t.Fatalf("kcat line %q", line)
				}
				recs = append(recs, keyed{k, v})
			}
			if problems = check("kcat", recs); len(problems) == 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, p := range problems {
			t.Error(p)
		}
		t.Logf("kcat read %d records", len(recs))
	})
	t.Run("kafkajs", func(t *testing.T) {
		// kafkajs waits (up to 2 minutes) for as many records as the API
		// has alerts.
		out := runKafkajs(t, "kafkajs-alerts.js", seed, broker.TopicAlertsOutage, len(api))
		var recs []keyed
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var r struct {
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("kafkajs line %q: %v", sc.Text(), err)
			}
			recs = append(recs, keyed{r.Key, string(r.Value)})
		}
		for _, p := range check("kafkajs", recs) {
			t.Error(p)
		}
		t.Logf("kafkajs read %d records", len(recs))
	})
}

// v2OutageAlerts reads every alert of /v2/outages/alerts in [from, until).
func v2OutageAlerts(t *testing.T, s *server, from, until int64) []outageAlert {
	t.Helper()
	var env struct {
		Type  string  `json:"type"`
		Error *string `json:"error"`
		Data  []struct {
			ID         int64  `json:"id"`
			Datasource string `json:"datasource"`
			Entity     struct {
				Type string `json:"type"`
				Code string `json:"code"`
				Name string `json:"name"`
			} `json:"entity"`
			Time         int64   `json:"time"`
			Level        string  `json:"level"`
			Condition    string  `json:"condition"`
			Value        float64 `json:"value"`
			HistoryValue float64 `json:"historyValue"`
			Method       string  `json:"method"`
			Window       int64   `json:"window"`
		} `json:"data"`
	}
	code, err := s.get(fmt.Sprintf("/v2/outages/alerts?from=%d&until=%d&limit=1000", from, until), &env)
	if err != nil || code != 200 || env.Type != "outages.alerts" || env.Error != nil {
		t.Fatalf("/v2/outages/alerts: %d %v %+v", code, err, env)
	}
	out := make([]outageAlert, len(env.Data))
	for i, a := range env.Data {
		out[i] = outageAlert{ID: a.ID, Datasource: a.Datasource, EntityType: a.Entity.Type, EntityCode: a.Entity.Code, EntityName: a.Entity.Name,
			Time: a.Time, Level: a.Level, Condition: a.Condition, Value: a.Value, HistoryValue: a.HistoryValue, Method: a.Method, Window: a.Window}
	}
	return out
}

// compileSchemaFile compiles docs/schemas/name with formats asserted.
func compileSchemaFile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(filepath.Join("..", "..", "docs", "schemas", name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
