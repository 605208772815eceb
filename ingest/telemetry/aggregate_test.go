package telemetry_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/bgp"
	"github.com/netwarden/netwarden/ingest/telemetry"
)

// randomRanges makes disjoint sorted /24 ranges inside 10.0.0.0/8 (with
// gaps nothing covers), coded by codeOf(i).
func randomRanges(rng *rand.Rand, n int, codeOf func(int) string) *bgp.Ranges {
	r := &bgp.Ranges{}
	at := uint32(10 << 16) // /24 index of 10.0.0.0
	for i := range n {
		at += uint32(rng.IntN(3))
		l := uint32(1 + rng.IntN(8))
		r.Start, r.End, r.Code = append(r.Start, at), append(r.End, at+l), append(r.Code, codeOf(i))
		at += l
	}
	return r
}

// slowLookup scans every range.
func slowLookup(r *bgp.Ranges, s24 uint32) string {
	for i := range r.Start {
		if r.Start[i] <= s24 && s24 < r.End[i] {
			return r.Code[i]
		}
	}
	return ""
}

type obs struct {
	t    int64
	addr netip.Addr
}

// reference computes every bin's points the slow way: distinct keys per
// bin as strings, each looked up by scanning, known entities carried on.
func reference(ds string, bin int64, perSlash24 bool, all []obs, asns, ctry *bgp.Ranges) []detect.Point {
	byBin := map[int64]map[string]netip.Addr{}
	for _, o := range all {
		b := o.t / bin * bin
		if byBin[b] == nil {
			byBin[b] = map[string]netip.Addr{}
		}
		k := o.addr.String()
		if perSlash24 {
			k = netip.PrefixFrom(o.addr, 24).Masked().String()
		}
		byBin[b][k] = o.addr
	}
	var bins []int64
	for b := range byBin {
		bins = append(bins, b)
	}
	slices.Sort(bins)
	known := map[[2]string]bool{}
	var out []detect.Point
	for _, b := range bins {
		counts := map[[2]string]int{}
		for _, a := range byBin[b] {
			v := a.As4()
			s24 := uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2])
			if c := slowLookup(asns, s24); c != "" {
				counts[[2]string{"asn", c}]++
			}
			if c := slowLookup(ctry, s24); c != "" {
				counts[[2]string{"country", c}]++
			}
		}
		for e := range counts {
			known[e] = true
		}
		var ents [][2]string
		for e := range known {
			ents = append(ents, e)
		}
		slices.SortFunc(ents, func(x, y [2]string) int {
			if x[0] != y[0] {
				return map[bool]int{true: -1, false: 1}[x[0] < y[0]]
			}
			return map[bool]int{true: -1, false: 1}[x[1] < y[1]]
		})
		for _, e := range ents {
			out = append(out, detect.Point{Datasource: ds, EntityType: e[0], EntityCode: e[1], Time: b, Value: float64(counts[e])})
		}
	}
	return out
}

func TestAggregatorsMatchSlowReference(t *testing.T) {
	for _, tc := range []struct {
		name       string
		perSlash24 bool
		ds         string
		new        func(bin, grace int64, a, c *bgp.Ranges) (*telemetry.Aggregator, error)
	}{
		{"probing", true, detect.PingSlash24, telemetry.NewProbing},
		{"telescope", false, detect.UCSDNT, telemetry.NewTelescope},
	} {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", tc.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				asns := randomRanges(rng, 40, func(i int) string { return strconv.Itoa(64500 + i) })
				ctry := randomRanges(rng, 12, func(i int) string { return string(rune('A'+i)) + "Z" })
				const bin, grace = 300, 600
				agg, err := tc.new(bin, grace, asns, ctry)
				if err != nil {
					t.Fatal(err)
				}
				// Observations in rough time order: jitter below the grace
				// period, some entities dark for whole bins, a gap of bins
				// without any observation, duplicates, a few outside every range.
				var all []obs
				t0 := int64(1_600_000_000)
				for i := range 20_000 {
					base := t0 + int64(i)*3
					if base > t0+3000 && base < t0+4500 { // collector down: no bin
						continue
					}
					ts := base + int64(rng.IntN(grace/2)) - grace/4
					s24 := uint32(10<<16) + uint32(rng.IntN(400))
					if (base/bin)%7 == 3 && s24%5 == 0 { // some /24s dark in some bins
						continue
					}
					host := uint32(rng.IntN(4)) // few hosts per /24: many duplicates
					all = append(all, obs{ts, netip.AddrFrom4([4]byte{byte(s24 >> 16), byte(s24 >> 8), byte(s24), byte(host)})})
				}
				var got []detect.Point
				for _, o := range all {
					if got, err = agg.Add(o.t, o.addr, got); err != nil {
						t.Fatal(err)
					}
				}
				got = agg.Flush(got)
				want := reference(tc.ds, bin, tc.perSlash24, all, asns, ctry)
				if len(got) != len(want) {
					t.Fatalf("%d points, reference %d", len(got), len(want))
				}
				zeros := 0
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("point %d: %+v, reference %+v", i, got[i], want[i])
					}
					if want[i].Value == 0 {
						zeros++
					}
				}
				if zeros == 0 {
					t.Error("no entity was dark in any bin: the test does not exercise zeros")
				}
			})
		}
	}
}

func TestAggregatorRejects(t *testing.T) {
	asns := &bgp.Ranges{Start: []uint32{10 << 16}, End: []uint32{10<<16 + 1}, Code: []string{"64500"}}
	agg, err := telemetry.NewProbing(300, 300, asns, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("10.0.0.1")
	out, err := agg.Add(10_000, a, nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("first observation: %v %v", out, err)
	}
	// Bin 9900 closes once the watermark minus grace passes its end.
	if out, err = agg.Add(10_400, a, nil); err != nil || len(out) != 0 {
		t.Fatalf("within grace: %v %v", out, err)
	}
	if out, err = agg.Add(10_500, a, nil); err != nil || !reflect.DeepEqual(out, []detect.Point{{Datasource: "ping-slash24", EntityType: "asn", EntityCode: "64500", Time: 9900, Value: 1}}) {
		t.Fatalf("closing bin 9900: %v %v", out, err)
	}
	if _, err = agg.Add(9_950, a, nil); !errors.Is(err, telemetry.ErrLate) {
		t.Errorf("observation for a closed bin: %v, want ErrLate", err)
	}
	if _, err = agg.Add(10_900, netip.MustParseAddr("2001:db8::1"), nil); !errors.Is(err, telemetry.ErrNotIPv4) {
		t.Errorf("IPv6 observation: %v, want ErrNotIPv4", err)
	}
	if _, err := telemetry.NewTelescope(0, 0, asns, nil); err == nil {
		t.Error("a zero bin is accepted")
	}
}
