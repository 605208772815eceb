package telemetry_test

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"

	"github.com/netwarden/netwarden/detect"
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
