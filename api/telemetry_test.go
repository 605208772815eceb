package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/telemetry"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/entity"
)

// telemetryStack is the API with a real account store, the real intake
// (registry of the shared metadata when present) and the embedded broker
// over TCP.
func telemetryStack(t *testing.T) (url string, brk *broker.Broker, store *account.Store) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(t.TempDir(), "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 3
	brk, err := broker.Start(ctx, bc, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "state", "netwarden.db")}
	cfg.Defaults()
	store, err = account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ec := entity.Defaults()
	for _, p := range []*string{&ec.CountriesCSV, &ec.ASNDB, &ec.CityDB} {
		if *p = filepath.Join("..", *p); !fileExists(*p) {
			*p = ""
		}
	}
	reg, err := entity.Load(ec)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	intake := telemetry.Intake{
		Validator: telemetry.NewValidator(detect.Defaults(), reg, time.Hour, nil),
		Publisher: telemetry.NewPublisher(cl),
	}
	ac := api.Config{Addr: "127.0.0.1:0", MaxBatchBytes: 4096}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Accounts: store, Telemetry: intake, Entities: reg}, log)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); cl.Close(); store.Close(); cancel(); brk.Close() })
	return hs.URL, brk, store
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// telemetryRecords reads the topic from the start until n records came
// (then a little longer, to catch extra ones).
func telemetryRecords(t *testing.T, brk *broker.Broker, n int) []detect.Point {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brk.Seeds()...), kgo.ConsumeTopics(broker.TopicTelemetry),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []detect.Point
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		wait := time.Until(deadline)
		if len(out) >= n {
			wait = 500 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			got++
			var p detect.Point
			if err := json.Unmarshal(r.Value, &p); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			if k := p.Datasource + "/" + p.EntityType + "/" + p.EntityCode; string(r.Key) != k {
				t.Errorf("record key %q, want %q", r.Key, k)
			}
			out = append(out, p)
		})
		if got == 0 && len(out) >= n {
			break
		}
	}
	return out
}

func TestTelemetryIntake(t *testing.T) {
	url, brk, store := telemetryStack(t)
	ctx := context.Background()
	a, readKey, err := store.Create(ctx, "producer@example.org", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.NewKey(ctx, a.ID, []account.Scope{account.ScopeTelemetry})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	bin := now - now%300 - 3600
	at := func(d int64) string { return strings.TrimSpace(jsonNum(bin + d)) }
	ndjson := strings.Join([]string{
		`{"datasource":"bgp","entity_type":"country","entity_code":"us","time":` + at(7) + `,"value":1200}`,
		``,
		`{"datasource":"merit-nt","entity_type":"country","entity_code":"US","time":` + at(0) + `,"value":1}`,
		`{"datasource":"bgp","entity_type":"asn","entity_code":"3307","time":` + at(0) + `}`,
		`{"datasource":"bgp","entity_type":"asn","entity_code":"3307","time":` + at(0) + `,"value":"12"}`,
		`not json`,
		`{"datasource":"ping-slash24","entity_type":"asn","entity_code":"AS3307","time":` + at(0) + `,"value":0}`,
		`{"datasource":"bgp","entity_type":"country","entity_code":"US","time":` + at(0) + `,"value":-5}`,
		`{"datasource":"bgp","entity_type":"country","entity_code":"US","time":` + at(0) + `,"value":5,"extra":1}`,
		`{"datasource":"bgp","entity_type":"country","entity_code":"US","time":` + jsonNum(now+86400) + `,"value":5}`,
	}, "\n")
	array := `[{"datasource":"ucsd-nt","entity_type":"region","entity_code":"TR-Zinguldak","time":` + at(299) + `,"value":33.5},` +
		`{"datasource":"ucsd-nt","entity_type":"city","entity_code":"Paris","time":` + at(0) + `,"value":1}, 7]`
	for _, tc := range []struct {
		name, key, body string
		code            int
		accepted        int
		rejected        []int    // indexes
		reasons         []string // substrings of the reasons, in order
	}{
		{"ndjson mixed", key, ndjson, 200, 2, []int{1, 2, 3, 4, 6, 7, 8},
			[]string{`datasource "merit-nt"`, "missing value", `"value" must be a number`, "expected a point object", "value -5", "unknown field", "in the future"}},
		{"array mixed", key, array, 200, 1, []int{1, 2}, []string{`entity_type "city"`, "expected a point object, got number"}},
		{"one pretty-printed object", key, "{\n  \"datasource\": \"bgp\",\n  \"entity_type\": \"asn\",\n  \"entity_code\": \"64496\",\n  \"time\": " + at(0) + ",\n  \"value\": 7\n}\n", 200, 1, nil, nil},
		{"none valid", key, `{"datasource":"bgp","entity_type":"asn","entity_code":"x","time":1,"value":1}`, 400, 0, []int{0}, []string{"32-bit AS number"}},
		{"not json at all", key, "hello\nworld", 400, 0, []int{0, 1}, nil},
		{"broken array", key, `[{"datasource":"bgp"},`, 400, -1, nil, nil},
		{"empty array", key, `[]`, 400, -1, nil, nil},
		{"empty body", key, "  \n", 400, -1, nil, nil},
		{"too large", key, "[" + strings.Repeat(" ", 5000) + "]", 413, -1, nil, nil},
		{"no telemetry scope", readKey, ndjson, 403, -1, nil, nil},
		{"no key", "", ndjson, 401, -1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := sendBody(t, "POST", url+"/v1/telemetry", tc.key, "application/x-ndjson", tc.body)
			if ans.code != tc.code {
				t.Fatalf("status %d, want %d: %v", ans.code, tc.code, ans.body)
			}
			if tc.accepted < 0 {
				if msg, _ := ans.body["error"].(string); msg == "" {
					t.Errorf("no error message: %v", ans.body)
				}
				return
			}
			if ans.body["accepted"] != float64(tc.accepted) {
				t.Errorf("accepted %v, want %d", ans.body["accepted"], tc.accepted)
			}
			rej, _ := ans.body["rejected"].([]any)
			var idx []int
			for i, r := range rej {
				m := r.(map[string]any)
				idx = append(idx, int(m["index"].(float64)))
				if i < len(tc.reasons) && !strings.Contains(m["error"].(string), tc.reasons[i]) {
					t.Errorf("rejection %d: %q, want it to say %q", i, m["error"], tc.reasons[i])
				}
			}
			if !slices.Equal(idx, tc.rejected) {
				t.Errorf("rejected %v, want %v: %v", idx, tc.rejected, rej)
			}
		})
	}
	// Exactly the accepted points are on the topic, normalised.
	got := telemetryRecords(t, brk, 4)
	want := []detect.Point{
		{Datasource: "bgp", EntityType: "asn", EntityCode: "64496", Time: bin, Value: 7},
		{Datasource: "bgp", EntityType: "country", EntityCode: "US", Time: bin, Value: 1200},
		{Datasource: "ping-slash24", EntityType: "asn", EntityCode: "3307", Time: bin - bin%600, Value: 0},
		{Datasource: "ucsd-nt", EntityType: "region", EntityCode: "TR-Zinguldak", Time: bin, Value: 33.5},
	}
	sortPoints := func(ps []detect.Point) {
		slices.SortFunc(ps, func(a, b detect.Point) int {
			return strings.Compare(a.Datasource+a.EntityType, b.Datasource+b.EntityType)
		})
	}
	sortPoints(got)
	if !slices.Equal(got, want) {
		t.Errorf("topic holds %+v, want %+v", got, want)
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }
