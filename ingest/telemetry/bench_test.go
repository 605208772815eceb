package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/simulate"
	"github.com/netwarden/netwarden/ingest/telemetry"
)

// BenchmarkAggregate feeds 1 M telescope observations (10 k distinct /24s,
// 500 ASN and 40 country ranges, 300 s bins) through an Aggregator; the
// baseline is the least any distinct count costs: one map insert per
// observation, per bin. Report the ratio (ns/op of aggregate / baseline).
func BenchmarkAggregate(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	asns := randomRanges(rng, 500, func(i int) string { return strconv.Itoa(64500 + i) })
	ctry := randomRanges(rng, 40, func(i int) string { return string(rune('A'+i%26)) + string(rune('A'+i/26)) })
	const n = 1_000_000
	ts := make([]int64, n)
	addrs := make([]netip.Addr, n)
	for i := range n {
		ts[i] = 1_600_000_000 + int64(i)/100 // 100 observations a second: 30 k a bin
		s24 := uint32(10<<16) + uint32(rng.IntN(10_000))
		addrs[i] = netip.AddrFrom4([4]byte{byte(s24 >> 16), byte(s24 >> 8), byte(s24), byte(rng.IntN(256))})
	}
	b.Run("baseline-map-insert", func(b *testing.B) {
		for b.Loop() {
			sets := map[int64]map[[4]byte]struct{}{}
			for i := range n {
				bin := ts[i] - ts[i]%300
				s := sets[bin]
				if s == nil {
					s = map[[4]byte]struct{}{}
					sets[bin] = s
				}
				s[addrs[i].As4()] = struct{}{}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/observation")
	})
	b.Run("aggregate", func(b *testing.B) {
		for b.Loop() {
			agg, err := telemetry.NewTelescope(300, 600, asns, ctry)
			if err != nil {
				b.Fatal(err)
			}
			var out []detect.Point
			for i := range n {
				if out, err = agg.Add(ts[i], addrs[i], out[:0]); err != nil {
					b.Fatal(err)
				}
			}
			agg.Flush(out[:0])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/observation")
	})
}

// BenchmarkSimulatorDay59 is one day of the live simulator late in a
// period (default entities and period, day 59 of 60): resuming from the
// state file and publishing that day. The baseline is what each day cost
// when every regeneration started at the period's start: generating the
// period's series from its start to day 60 (same entities, no outages).
// Report the ratio (ns/op and B/op of simulator-day / baseline).
func BenchmarkSimulatorDay59(b *testing.B) {
	cfg := telemetry.SimulateDefaults()
	cfg.RandomPerDay, cfg.Ongoing = -1, -1
	cfg.StateFile = filepath.Join(b.TempDir(), "state.json")
	epoch := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).Unix()
	day59 := epoch + 59*86400
	reg := registry(b)
	var sink collect
	day := func() *telemetry.Simulator {
		st := fmt.Sprintf(`{"seed":%d,"epoch":%d,"first_now":%d,"published":%d}`, cfg.Seed, epoch, epoch+8*86400, day59)
		if err := os.WriteFile(cfg.StateFile, []byte(st), 0o644); err != nil {
			b.Fatal(err)
		}
		sink.pts = sink.pts[:0]
		sim, err := telemetry.NewSimulator(cfg, reg, &sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		sim.SetClock(func() time.Time { return time.Unix(day59+86400, 0) }, time.Millisecond)
		sim.SetFollow(false)
		if err := sim.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		return sim
	}
	sim := day()
	b.Run("baseline-period-from-start", func(b *testing.B) {
		b.ReportAllocs()
		ents := sim.Entities()
		c := simulate.Defaults()
		c.Seed, c.Start, c.Duration = cfg.Seed, time.Unix(epoch, 0).UTC(), 60*24*time.Hour
		g, err := simulate.New(c)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			g.Generate(ents, nil)
		}
	})
	b.Run("simulator-day", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			day()
		}
		b.ReportMetric(float64(len(sink.pts)), "points/day")
	})
}
