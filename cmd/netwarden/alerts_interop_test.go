package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/alerts"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/watch"
)

// TestAlertTopicInterop publishes alerts of every shape (listed with a
// source, initial without, IPv4 and IPv6, two accounts) with the real
// alerter and embedded broker, then reads netwarden.alerts.blocklist
// with kcat and kafkajs (no extra codecs): each gets exactly the records
// franz-go reads, every value validates against
// docs/schemas/alert-blocklist.json, and every key is its account id.
func TestAlertTopicInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test runs external clients")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	brk, err := broker.Start(ctx, bc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer brk.Close()
	ac := account.Config{Path: filepath.Join(dir, "netwarden.db")}
	ac.Defaults()
	store, err := account.Open(ac)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a1, _, _ := store.Create(ctx, "one@example.com", "DEVELOPER", false)
	a2, _, _ := store.Create(ctx, "two@example.com", "DEVELOPER", false)

	state := live.New()
	watched := watch.New()
	watched.Add(watch.Account(a1.ID), netip.MustParsePrefix("192.0.2.0/24"))
	watched.Add(watch.Account(a2.ID), netip.MustParsePrefix("2001:db8::/32"))
	for _, c := range [][2]string{{"192.0.2.9", "DSHIELD"}, {"2001:db8:1::/48", "SPAMHAUS-DROPV6"}} {
		r, _ := resource.ParseIP(c[0])
		state.Apply([]byte(r.Key()), []byte(c[1]), change.Add)
	}
	prod, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cfg := alerts.Config{}
	cfg.Defaults()
	al := alerts.New(cfg, store, watched, watch.New(), state, prod, broker.TopicAlerts, log)
	var wg sync.WaitGroup
	wg.Go(func() { al.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	if err := al.Initial(ctx, a1.ID, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	if err := al.Initial(ctx, a2.ID, []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}); err != nil {
		t.Fatal(err)
	}
	// Listed alerts through the processor tap's entry point.
	var recs []*kgo.Record
	var ds []change.Decoded
	for i, c := range [][2]string{{"192.0.2.77", "FEODO"}, {"2001:db8:2::1", "TOR-EXIT"}, {"192.0.2.0/25", "SPAMHAUS-DROP"}} {
		r, _ := resource.ParseIP(c[0])
		state.Apply([]byte(r.Key()), []byte(c[1]), change.Add)
		v := change.Append(nil, change.Change{Time: time.Unix(1_765_000_000+int64(i), 0), Op: change.Add, List: c[1], Key: r.Key()})
		d, err := change.Decode(v)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Partition: int32(i % 2), Offset: int64(10 + i), Value: v})
		ds = append(ds, d)
	}
	if err := al.Applied(ctx, recs, ds, []bool{true, true, true}); err != nil {
		t.Fatal(err)
	}
	_, n1, _ := store.Alerts(ctx, a1.ID, account.AlertFilter{})
	_, n2, _ := store.Alerts(ctx, a2.ID, account.AlertFilter{})
	total := n1 + n2
	if n1 < 3 || n2 < 2 {
		t.Fatalf("stored %d and %d alerts", n1, n2)
	}

	schema := compileSchema(t)
	want := readAlertsFranz(t, brk, total)
	for _, r := range want {
		validateAlert(t, schema, r)
	}
	// The schema is not vacuous: a changed kind or an extra field fails.
	for _, bad := range []string{
		strings.Replace(want[0].value, `"kind":"`, `"kind":"x`, 1),
		strings.Replace(want[0].value, `{`, `{"extra":1,`, 1),
		strings.Replace(want[0].value, `"resource":"`, `"resource":"x`, 1),
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if schema.Validate(v) == nil {
			t.Errorf("schema accepts %s", bad)
		}
	}
	seed := brk.Seeds()[0]
	t.Run("kcat", func(t *testing.T) {
		kcat := needTool(t, "kcat", "kcat")
		cmd := exec.Command(kcat, "-b", seed, "-C", "-t", broker.TopicAlerts, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat: %v\n%s", err, stderr.String())
		}
		var got []keyed
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			k, v, ok := strings.Cut(line, "\t")
			if !ok {
				t.Fatalf("kcat line %q", line)
			}
			got = append(got, keyed{k, v})
		}
		compareKeyed(t, schema, "kcat", want, got)
	})
	t.Run("kafkajs", func(t *testing.T) {
		out := runKafkajs(t, "kafkajs-alerts.js", seed, broker.TopicAlerts, total)
		var got []keyed
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var r struct {
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("kafkajs line %q: %v", sc.Text(), err)
			}
			got = append(got, keyed{r.Key, string(r.Value)})
		}
		compareKeyed(t, schema, "kafkajs", want, got)
	})
}

type keyed struct{ key, value string }

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(filepath.Join("..", "..", "docs", "schemas", "alert-blocklist.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validateAlert checks a record against the schema and its key against
// the account in its value.
func validateAlert(t *testing.T, s *jsonschema.Schema, r keyed) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(r.value))
	if err != nil {
		t.Fatalf("alert %s: %v", r.value, err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("alert %s does not validate: %v", r.value, err)
	}
	var e alerts.Event
	if err := json.Unmarshal([]byte(r.value), &e); err != nil || strconv.FormatInt(e.Account, 10) != r.key {
		t.Errorf("alert %s keyed %q (%v)", r.value, r.key, err)
	}
}

func readAlertsFranz(t *testing.T, brk *broker.Broker, n int) []keyed {
	t.Helper()
	cl, err := brk.NewClient(kgo.ConsumeTopics(broker.TopicAlerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []keyed
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, keyed{string(r.Key), string(r.Value)}) })
	}
	if len(out) != n {
		t.Fatalf("franz-go read %d alerts, want %d", len(out), n)
	}
	return out
}

func compareKeyed(t *testing.T, s *jsonschema.Schema, client string, want, got []keyed) {
	t.Helper()
	cmp := func(a, b keyed) int { return strings.Compare(a.key+a.value, b.key+b.value) }
	want, got = slices.Clone(want), slices.Clone(got)
	slices.SortFunc(want, cmp)
	slices.SortFunc(got, cmp)
	if !slices.Equal(want, got) {
		t.Errorf("%s read\n%v\nfranz-go\n%v", client, got, want)
	}
	for _, r := range got {
		validateAlert(t, s, r)
	}
}
