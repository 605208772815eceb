package alerts_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/watch"
)

func pct(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*q))]
}

// BenchmarkFreshness measures list change produced → alert readable on
// netwarden.alerts.blocklist, through the real broker, processor,
// alerter (SQLite commit) and relay, one change at a time. Baseline in
// the same run: produced → readable on netwarden.changes by a bare
// consumer (the broker round trip every alert pays twice).
func BenchmarkFreshness(b *testing.B) {
	watched := watch.New()
	p := startPipeline(b, watched, watch.New())
	id := p.account("fresh@example.com")
	watched.Add(watch.Account(id), netip.MustParsePrefix("10.0.0.0/8"))
	ctx := context.Background()
	consume := func(topic string) *kgo.Client {
		cl, err := p.brk.NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(10*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		return cl
	}
	alertsCl, changesCl := consume(broker.TopicAlerts), consume(broker.TopicChanges)
	defer alertsCl.Close()
	defer changesCl.Close()
	// Warm both consumers up (partition assignment, first fetch).
	p.produce(chg(change.Add, "WARM", "10.255.255.255", 1))
	waitOne := func(cl *kgo.Client) {
		for {
			fs := cl.PollFetches(ctx)
			if fs.NumRecords() > 0 {
				return
			}
		}
	}
	waitOne(alertsCl)
	waitOne(changesCl)
	var alertLat, baseLat []time.Duration
	i := 0
	for b.Loop() {
		i++
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		c := change.Change{Time: time.Now(), Op: change.Add, List: "FRESH", Key: resource.FromAddr(a).Key()}
		start := time.Now()
		if err := p.prod.ProduceSync(ctx, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(c.Key), Value: change.Append(nil, c)}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		gotBase, gotAlert := false, false
		for !gotBase || !gotAlert {
			if !gotBase {
				if fs := changesCl.PollFetches(ctx); fs.NumRecords() > 0 {
					baseLat = append(baseLat, time.Since(start))
					gotBase = true
				}
			}
			if gotBase && !gotAlert {
				if fs := alertsCl.PollFetches(ctx); fs.NumRecords() > 0 {
					alertLat = append(alertLat, time.Since(start))
					gotAlert = true
				}
			}
		}
	}
	b.ReportMetric(float64(pct(alertLat, 0.5).Microseconds())/1000, "alert-p50-ms")
	b.ReportMetric(float64(pct(alertLat, 0.99).Microseconds())/1000, "alert-p99-ms")
	b.ReportMetric(float64(pct(baseLat, 0.5).Microseconds())/1000, "broker-p50-ms")
	b.ReportMetric(float64(pct(baseLat, 0.99).Microseconds())/1000, "broker-p99-ms")
	b.ReportMetric(float64(pct(alertLat, 0.99))/float64(pct(baseLat, 0.99)), "p99-ratio")
}

// BenchmarkAlertQuery stores NETWARDEN_ALERTS_N alerts (default 1 M)
// over 1,000 accounts, a few big ones holding most, and measures the
// activity queries of GET /v1/alerts on the biggest account: the newest
// page, an IP containment filter, a list filter, a status filter, a
// time window and the type filters (blocklist / outage, with n/100
// outage alerts of subscribed entities stored beside them). Baseline in the same run: one alert by id (a primary
// key lookup).
func BenchmarkAlertQuery(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("NETWARDEN_ALERTS_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	ac := account.Config{Path: filepath.Join(b.TempDir(), "netwarden.db")}
	ac.Defaults()
	store, err := account.Open(ac)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	const nAcct = 1000
	for i := range nAcct {
		if _, _, err := store.Create(ctx, fmt.Sprintf("q%d@example.com", i), "ENTERPRISE", false); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lists := []string{"DSHIELD", "FEODO", "SPAMHAUS-DROP", "TOR-EXIT", "BLOCKLIST-DE", "CINS", "ET-COMPROMISED", "GREENSNOW"}
	start := time.Now()
	const batch = 50_000
	for done := 0; done < n; done += batch {
		als := make([]account.Alert, 0, batch)
		for j := range min(batch, n-done) {
			k := done + j
			acct := account.ID(1 + r.IntN(nAcct))
			if r.IntN(10) < 3 {
				acct = 1 // the biggest account holds ~30 %
			}
			a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			res := a.String()
			if r.IntN(20) == 0 {
				res = netip.PrefixFrom(a, 24).Masked().String()
			}
			l := lists[r.IntN(len(lists))]
			at := t0.Add(time.Duration(k) * time.Second)
			als = append(als, account.Alert{Account: acct, Kind: account.KindListed, Created: at, Detected: at, Resource: res, Watched: res,
				List: l, Lists: []string{l}, SourcePartition: int32(k % 3), SourceOffset: int64(k)})
		}
		if err := store.Tx(ctx, func(tx *sql.Tx) error { _, err := account.InsertAlerts(ctx, tx, als); return err }); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("stored %d alerts in %v", n, time.Since(start).Round(time.Millisecond))
	// Outage alerts of subscribed entities (issue 7) on the same
	// timeline: 50 countries, each account subscribed to 3 (the biggest
	// to 10), n/100 outage alerts, one row per subscriber.
	start = time.Now()
	codes := make([]string, 50)
	for i := range codes {
		codes[i] = string([]byte{'A' + byte(i/26), 'A' + byte(i%26)})
	}
	for i := range nAcct {
		k := 3
		if i == 0 {
			k = 10
		}
		for j := range k {
			if _, _, err := store.Subscribe(ctx, account.ID(i+1), "country", codes[(i+j*7)%len(codes)]); err != nil {
				b.Fatal(err)
			}
		}
	}
	rows := 0
	for done := 0; done < n/100; done += batch {
		outs := make([]account.Outage, 0, batch)
		for j := range min(batch, n/100-done) {
			k := done + j
			outs = append(outs, account.Outage{ID: int64(k + 1), Datasource: "bgp", EntityType: "country", EntityCode: codes[r.IntN(len(codes))],
				Time: t0.Add(time.Duration(k*20) * time.Second).Unix(), Level: "critical", Condition: "< historical * 0.5", Value: 1, HistoryValue: 100, Method: "median", Window: 86400})
		}
		added, err := store.AddOutageAlerts(ctx, outs)
		if err != nil {
			b.Fatal(err)
		}
		rows += added
	}
	b.Logf("stored %d outage alerts as %d activity rows in %v", n/100, rows, time.Since(start).Round(time.Millisecond))
	big, _, err := store.Alerts(ctx, 1, account.AlertFilter{Items: 1})
	if err != nil || len(big) == 0 {
		b.Fatal(err)
	}
	newest := big[0]
	queries := []struct {
		name string
		f    account.AlertFilter
	}{
		{"newest", account.AlertFilter{}},
		{"page10", account.AlertFilter{Page: 10}},
		{"ip", account.AlertFilter{IP: netip.MustParsePrefix("77.0.0.0/8")}},
		{"ip-host", account.AlertFilter{IP: pfx(newest.Resource)}},
		{"list", account.AlertFilter{List: "FEODO"}},
		{"status", account.AlertFilter{Status: account.StatusAcknowledged}},
		{"window", account.AlertFilter{From: newest.Created.Add(-24 * time.Hour), Until: newest.Created}},
		{"type-outage", account.AlertFilter{Type: account.TypeOutage}},
		{"type-blocklist", account.AlertFilter{Type: account.TypeBlocklist}},
	}
	lat := make([][]time.Duration, len(queries))
	var base []time.Duration
	b.ResetTimer()
	for b.Loop() {
		for qi, q := range queries {
			s := time.Now()
			if _, _, err := store.Alerts(ctx, 1, q.f); err != nil {
				b.Fatal(err)
			}
			lat[qi] = append(lat[qi], time.Since(s))
		}
		s := time.Now()
		if _, err := store.Alert(ctx, 1, newest.ID); err != nil {
			b.Fatal(err)
		}
		base = append(base, time.Since(s))
	}
	var all []time.Duration
	for qi, q := range queries {
		all = append(all, lat[qi]...)
		b.ReportMetric(float64(pct(lat[qi], 0.99).Microseconds())/1000, q.name+"-p99-ms")
	}
	b.ReportMetric(float64(pct(all, 0.99).Microseconds())/1000, "all-p99-ms")
	b.ReportMetric(float64(pct(base, 0.99).Microseconds())/1000, "byid-p99-ms")
}
