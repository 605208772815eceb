package outage_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/stream/outage"
)

const (
	benchEntities = 20_000
	benchYear     = 365 * 86400
	benchT0       = 1_700_000_400
)

// benchEntity is the i-th entity: 240 countries, 4760 regions, the rest ASNs.
func benchEntity(i int) (string, string) {
	switch {
	case i < 240:
		return "country", string(rune('A'+i/26)) + string(rune('A'+i%26))
	case i < 5000:
		return "region", strconv.Itoa(1_000_000 + i)
	}
	return "asn", strconv.Itoa(i)
}

// benchStore returns a store holding about n alerts (and their events)
// of 20 000 entities over a year, spread over three datasources: outages
// of 10 min to 6 h at random times. They are stored in time order, month
// by month, as the service stores them (ids grow with time), in chunks
// of 100 000 alerts per transaction. The file is cached in the temp dir
// across runs (it takes minutes to build).
func benchStore(b *testing.B, n int) (*outage.Store, outage.Config) {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("netwarden-outage-bench-v3-%d.db", n))
	done := path + ".done"
	cfg := outage.Config{Path: path}
	cfg.Defaults()
	if _, err := os.Stat(done); err != nil {
		os.Remove(path)
		start := time.Now()
		s, err := outage.OpenStore(path)
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(7, 7))
		dss := []string{detect.BGP, detect.PingSlash24, detect.UCSDNT}
		const slabs = 12
		slab := int64(benchYear / slabs)
		perSlab := max(1, n/benchEntities/len(dss)/2/slabs) // down/up pairs per series and slab
		for k := range int64(slabs) {
			lo := benchT0 + k*slab
			var als []detect.Alert
			for i := range benchEntities {
				typ, code := benchEntity(i)
				for _, ds := range dss {
					dc := cfg.Datasources[ds]
					gap := slab / int64(perSlab+1)
					t := lo
					for range perSlab {
						t += dc.Bin * (1 + r.Int64N(max(1, gap/dc.Bin)))
						dur := dc.Bin * (2 + r.Int64N(6*3600/dc.Bin))
						if t+dur >= lo+slab {
							break
						}
						lvl := detect.Warning
						if r.IntN(2) == 0 {
							lvl = detect.Critical
						}
						h := 100 + 1000*r.Float64()
						als = append(als,
							detect.Alert{Datasource: ds, EntityType: typ, EntityCode: code, Time: t, Level: lvl, Condition: detect.Condition(dc, lvl),
								Value: h * 0.3, HistoryValue: h, Method: detect.Method, Window: dc.Window},
							detect.Alert{Datasource: ds, EntityType: typ, EntityCode: code, Time: t + dur, Level: detect.Normal, Condition: detect.Condition(dc, detect.Normal),
								Value: h, HistoryValue: h, Method: detect.Method, Window: dc.Window})
						t += dur
					}
				}
			}
			slices.SortFunc(als, func(x, y detect.Alert) int { return cmp.Compare(x.Time, y.Time) })
			for c := 0; c < len(als); c += 100_000 {
				if err := s.BulkInsertAlerts(context.Background(), als[c:min(c+100_000, len(als))]); err != nil {
					b.Fatal(err)
				}
			}
			// Every episode ends inside its slab: fold the slab at once.
			if err := s.BulkInsertEvents(context.Background(), detect.Events(als, benchT0+benchYear), benchT0+benchYear); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("built %d alerts in %v", n, time.Since(start).Round(time.Second))
	}
	s, err := outage.OpenStore(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, cfg
}

// BenchmarkOutageQueries measures the API's store queries over 10 M
// stored alerts (1.44 M with -short): p50 and p99 of 1000 random queries
// of each kind, beside the baseline of a lookup by id in the same run.
// Run: go test -run X -bench OutageQueries -benchtime 1x ./stream/outage/
func BenchmarkOutageQueries(b *testing.B) {
	n := 10_000_000
	if testing.Short() {
		n = 1_440_000 // one outage per series and month
	}
	s, cfg := benchStore(b, n)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	var maxID int64
	for lo, hi := int64(1), int64(1)<<40; lo <= hi; { // the highest id, by bisection over lookups
		mid := lo + (hi-lo)/2
		if _, ok, err := s.AlertByID(ctx, mid); err != nil {
			b.Fatal(err)
		} else if ok {
			maxID, lo = mid, mid+1
		} else {
			hi = mid - 1
		}
	}
	if maxID == 0 {
		b.Fatal("no alerts stored")
	}
	at := func(span int64) (int64, int64) {
		from := benchT0 + r.Int64N(benchYear-span)
		return from, from + span
	}
	anyEntity := func(typ string) string {
		for {
			t, c := benchEntity(r.IntN(benchEntities))
			if t == typ {
				return c
			}
		}
	}
	type kind struct {
		name string
		run  func() (int, error)
	}
	kinds := []kind{
		{"alert by id (baseline)", func() (int, error) {
			_, ok, err := s.AlertByID(ctx, 1+r.Int64N(maxID))
			if !ok && err == nil {
				return 0, fmt.Errorf("no alert")
			}
			return 1, err
		}},
		{"alerts, 1 h, all", func() (int, error) {
			f, u := at(3600)
			als, err := s.Alerts(ctx, outage.Filter{From: f, Until: u, Limit: 10_000})
			return len(als), err
		}},
		{"alerts, 1 h, datasource=bgp", func() (int, error) {
			f, u := at(3600)
			als, err := s.Alerts(ctx, outage.Filter{From: f, Until: u, Datasource: detect.BGP, Limit: 10_000})
			return len(als), err
		}},
		{"alerts, 1 d, meta=country", func() (int, error) {
			f, u := at(86400)
			als, err := s.Alerts(ctx, outage.Filter{From: f, Until: u, EntityType: "country", Limit: 10_000})
			return len(als), err
		}},
		{"alerts, 30 d, meta=asn/N", func() (int, error) {
			f, u := at(30 * 86400)
			als, err := s.Alerts(ctx, outage.Filter{From: f, Until: u, EntityType: "asn", EntityCode: anyEntity("asn"), Limit: 10_000})
			return len(als), err
		}},
		{"events, 1 h, all", func() (int, error) {
			f, u := at(3600)
			evs, err := s.Events(ctx, outage.Filter{From: f, Until: u, Limit: 10_000})
			return len(evs), err
		}},
		{"events, 1 d, meta=country", func() (int, error) {
			f, u := at(86400)
			evs, err := s.Events(ctx, outage.Filter{From: f, Until: u, EntityType: "country", Limit: 10_000})
			return len(evs), err
		}},
		{"events, 30 d, meta=region/N", func() (int, error) {
			f, u := at(30 * 86400)
			evs, err := s.Events(ctx, outage.Filter{From: f, Until: u, EntityType: "region", EntityCode: anyEntity("region"), Limit: 10_000})
			return len(evs), err
		}},
	}
	// The same over real HTTP (JSON encoding, entity annotation).
	srvCfg := api.Config{Addr: "127.0.0.1:0"}
	srvCfg.Defaults()
	hs := httptest.NewServer(api.New(srvCfg, api.Deps{Outages: outage.NewService(cfg, nil, s, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))},
		slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	defer hs.Close()
	httpGet := func(path string) (int, error) {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return int(n), err
	}
	kinds = append(kinds,
		kind{"HTTP v2 alerts, 1 h, all (bytes)", func() (int, error) {
			f, u := at(3600)
			return httpGet(fmt.Sprintf("/v2/outages/alerts?from=%d&until=%d", f, u))
		}},
		kind{"HTTP v1 alerts, 1 d, meta=country", func() (int, error) {
			f, u := at(86400)
			return httpGet(fmt.Sprintf("/ioda/data/alerts?from=%d&until=%d&meta=country&annotateMeta=true", f, u))
		}},
		kind{"HTTP v2 events, 1 h, all (bytes)", func() (int, error) {
			f, u := at(3600)
			return httpGet(fmt.Sprintf("/v2/outages/events?from=%d&until=%d", f, u))
		}},
	)
	const reps = 1000
	var base, worst time.Duration
	for b.Loop() {
		for _, k := range kinds {
			lat := make([]time.Duration, reps)
			rows := 0
			for i := range lat {
				t := time.Now()
				m, err := k.run()
				lat[i] = time.Since(t)
				if err != nil {
					b.Fatalf("%s: %v", k.name, err)
				}
				rows += m
			}
			slices.Sort(lat)
			p50, p99 := lat[reps/2], lat[reps*99/100]
			if base == 0 {
				base = p99
			} else {
				worst = max(worst, p99)
			}
			fmt.Printf("%-36s p50 %8.3f ms  p99 %8.3f ms  (%5.1fx baseline p99)  rows/query %d\n", k.name,
				float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000, float64(p99)/float64(base), rows/reps)
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-p99-ms")
	b.ReportMetric(float64(worst)/float64(base), "worst-p99/baseline")
}
