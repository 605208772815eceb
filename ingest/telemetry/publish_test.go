package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/telemetry"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/entity"
)

// registry loads the shared metadata when present (the zero registry
// otherwise: codes are then only checked for form).
func registry(t testing.TB) *entity.Registry {
	t.Helper()
	c := entity.Defaults()
	for _, p := range []*string{&c.CountriesCSV, &c.ASNDB, &c.CityDB} {
		*p = filepath.Join("..", "..", *p)
		if _, err := os.Stat(*p); err != nil {
			t.Logf("no %s: codes are checked for form only", *p)
			*p = ""
		}
	}
	reg, err := entity.Load(c)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestValidatorCheck(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := telemetry.NewValidator(detect.Defaults(), registry(t), time.Hour, func() time.Time { return now })
	pt := func(ds, typ, code string, ts int64, val float64) detect.Point {
		return detect.Point{Datasource: ds, EntityType: typ, EntityCode: code, Time: ts, Value: val}
	}
	for _, tc := range []struct {
		name string
		in   detect.Point
		want detect.Point // when ok
		err  string       // substring of the rejection
	}{
		{"bgp aligned down to 300", pt("bgp", "country", "us", 1_699_999_999, 12), pt("bgp", "country", "US", 1_699_999_800, 12), ""},
		{"ping aligned down to 600", pt("ping-slash24", "asn", "AS3307", 1_699_999_999, 0), pt("ping-slash24", "asn", "3307", 1_699_999_800, 0), ""},
		{"telescope unknown region kept", pt("ucsd-nt", "region", "TR-Zinguldak", 1_699_999_000, 5.5), pt("ucsd-nt", "region", "TR-Zinguldak", 1_699_998_900, 5.5), ""},
		{"within the future margin", pt("bgp", "asn", "1", now.Unix()+3000, 1), pt("bgp", "asn", "1", now.Unix()+3000-(now.Unix()+3000)%300, 1), ""},
		{"unknown datasource", pt("merit-nt", "country", "US", 1, 1), detect.Point{}, `datasource "merit-nt"`},
		{"unknown entity type", pt("bgp", "city", "Paris", 1, 1), detect.Point{}, `entity_type "city"`},
		{"bad country code", pt("bgp", "country", "USA", 1, 1), detect.Point{}, "alpha-2"},
		{"bad asn", pt("bgp", "asn", "AS-FOO", 1, 1), detect.Point{}, "32-bit AS number"},
		{"slash in code", pt("bgp", "region", "a/b", 1, 1), detect.Point{}, "no '/'"},
		{"long code", pt("bgp", "region", strings.Repeat("x", 65), 1, 1), detect.Point{}, "at most 64"},
		{"negative value", pt("bgp", "country", "US", 1, -1), detect.Point{}, "value -1"},
		{"NaN value", pt("bgp", "country", "US", 1, math.NaN()), detect.Point{}, "value NaN"},
		{"infinite value", pt("bgp", "country", "US", 1, math.Inf(1)), detect.Point{}, "value +Inf"},
		{"negative time", pt("bgp", "country", "US", -300, 1), detect.Point{}, "time -300"},
		{"far future", pt("bgp", "country", "US", now.Unix()+7200, 1), detect.Point{}, "in the future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.in
			err := v.Check(&p)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.err == "" && p != tc.want:
				t.Fatalf("got %+v, want %+v", p, tc.want)
			case tc.err != "" && (err == nil || !errors.Is(err, telemetry.ErrInvalid) || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want ErrInvalid saying %q", err, tc.err)
			}
		})
	}
}

// startBroker runs the embedded broker on a free port.
func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(t.TempDir(), "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 3
	brk, err := broker.Start(ctx, bc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); brk.Close() })
	return brk
}

// consume reads n records of the telemetry topic (all partitions, from
// the start) over TCP.
func consume(t *testing.T, brk *broker.Broker, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brk.Seeds()...), kgo.ConsumeTopics(broker.TopicTelemetry),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("got %d of %d records: %v", len(out), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func TestPublisherOverTCP(t *testing.T) {
	brk := startBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brk.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pub := telemetry.NewPublisher(cl)
	pts := []detect.Point{
		{Datasource: "bgp", EntityType: "country", EntityCode: "US", Time: 1_600_000_200, Value: 1234},
		{Datasource: "ping-slash24", EntityType: "asn", EntityCode: "3307", Time: 1_600_000_200, Value: 0},
		{Datasource: "ucsd-nt", EntityType: "region", EntityCode: "5128638", Time: 1_600_000_500, Value: 17.5},
	}
	if err := pub.Publish(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, brk, len(pts))
	c := jsonschema.NewCompiler()
	schema, err := c.Compile(filepath.Join("..", "..", "docs", "schemas", "telemetry-point.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]detect.Point{}
	for _, r := range recs {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(r.Value)))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("record %s does not validate against docs/schemas/telemetry-point.json: %v", r.Value, err)
		}
		var p detect.Point
		dec := json.NewDecoder(strings.NewReader(string(r.Value)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		got[string(r.Key)] = p
	}
	for _, p := range pts {
		k := p.Datasource + "/" + p.EntityType + "/" + p.EntityCode
		if got[k] != p {
			t.Errorf("key %s: %+v, want %+v", k, got[k], p)
		}
	}
	if len(got) != len(pts) {
		t.Errorf("%d distinct keys, want %d: %v", len(got), len(pts), got)
	}
}
