package detect

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

// benchSeries is the number of series evaluated per bin (NETWARDEN_DETECT_SERIES, default 250 k).
func benchSeries(b *testing.B) int {
	b.Helper()
	if s := os.Getenv("NETWARDEN_DETECT_SERIES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("NETWARDEN_DETECT_SERIES=%q: want a positive count", s)
		}
		return n
	}
	return 250_000
}

// benchData: per-series levels and a table of multiplicative noise; series i at bin k has value
// level[i]*noise[(i*7+k)%len(noise)], and every 50th series drops to 0.3x for bins 5-7 of every 20 (3-bin outages: alerts and inpainting).
type benchData struct {
	level []float64
	noise []float64
	codes []string
}

func newBenchData(n int) *benchData {
	rng := rand.New(rand.NewPCG(1, 2))
	d := &benchData{level: make([]float64, n), noise: make([]float64, 4096), codes: make([]string, n)}
	for i := range d.level {
		d.level[i] = 100 + rng.Float64()*10000
		d.codes[i] = strconv.Itoa(i)
	}
	for i := range d.noise {
		d.noise[i] = 1 + rng.NormFloat64()*0.003
	}
	return d
}

func (d *benchData) value(i, k int) float64 {
	v := d.level[i] * d.noise[(i*7+k)%len(d.noise)]
	if i%50 == 0 && k%20 >= 5 && k%20 < 8 {
		v *= 0.3
	}
	return v
}

// BenchmarkDetectBin: one op = one 5-minute bin of n bgp series (IODA defaults: 24 h window,
// 288 values each) through the detector: Add of every point, then AdvanceTo the bin's end.
// Setup fills every window first. The baselines, in the same run on the same data:
//   - sorted-window: a plain loop keeping each series' window sorted (ring + binary-search insert
//     and delete) and reading the median: the least work any moving-median detector does;
//   - copy-sort: a plain loop copying each window and sorting it to take the median.
func BenchmarkDetectBin(b *testing.B) {
	n := benchSeries(b)
	data := newBenchData(n)
	cfg := Defaults()
	cfg.Grace = 0
	bgp := cfg.Datasources[BGP]
	slots := bgp.Slots()

	b.Run("detector", func(b *testing.B) {
		d, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		k := 0
		bin := func() int {
			t := int64(k) * bgp.Bin
			for i := range n {
				if err := d.Add(Point{Datasource: BGP, EntityType: "asn", EntityCode: data.codes[i], Time: t, Value: data.value(i, k)}); err != nil {
					b.Fatal(err)
				}
			}
			k++
			return len(d.AdvanceTo(t + bgp.Bin))
		}
		for range slots {
			bin()
		}
		alerts := 0
		for b.Loop() {
			alerts += bin()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
		b.ReportMetric(float64(alerts)/float64(b.N), "alerts/bin")
	})

	// The baselines' windows: ring and sorted copy per series, as flat arrays.
	ring := make([]float64, n*slots)
	sorted := make([]float64, n*slots)
	fill := func() {
		for i := range n {
			r := ring[i*slots : (i+1)*slots]
			for k := range slots {
				r[k] = data.value(i, k)
			}
			s := sorted[i*slots : (i+1)*slots]
			copy(s, r)
			slices.Sort(s)
		}
	}
	b.Run("baseline-sorted-window", func(b *testing.B) {
		fill()
		k := slots
		sink := 0.0
		for b.Loop() {
			for i := range n {
				r := ring[i*slots : (i+1)*slots]
				s := sorted[i*slots : (i+1)*slots]
				v := data.value(i, k)
				sink += (s[slots/2-1] + s[slots/2]) / 2
				old := r[k%slots]
				j, _ := slices.BinarySearch(s, old)
				copy(s[j:], s[j+1:])
				s = s[:slots-1]
				j, _ = slices.BinarySearch(s, v)
				s = s[:slots]
				copy(s[j+1:], s[j:slots-1])
				s[j] = v
				r[k%slots] = v
			}
			k++
		}
		if math.IsNaN(sink) {
			b.Fatal("NaN median")
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
	})
	b.Run("baseline-copy-sort", func(b *testing.B) {
		fill()
		scratch := make([]float64, slots)
		k := slots
		sink := 0.0
		for b.Loop() {
			for i := range n {
				r := ring[i*slots : (i+1)*slots]
				copy(scratch, r)
				slices.Sort(scratch)
				sink += (scratch[slots/2-1] + scratch[slots/2]) / 2
				r[k%slots] = data.value(i, k)
			}
			k++
		}
		if math.IsNaN(sink) {
			b.Fatal("NaN median")
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/series")
	})
}
