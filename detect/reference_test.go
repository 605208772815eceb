package detect

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// reference is the slow, obviously correct detector: one series at a time, its points in time
// order, the window recomputed from the full history of fed values for every bin.
func reference(cfg DatasourceConfig, ps []Point) []Alert {
	type fedValue struct {
		t int64
		v float64
	}
	var history []fedValue // what entered the baseline, by bin
	var run []fedValue     // real values of the current run of bins out of normal
	level := Normal
	type judgedBin struct {
		p      Point
		cand   Level // the bin's level judged alone
		median float64
	}
	var judged []judgedBin // every bin, in time order
	var alerts []Alert
	for _, p := range ps {
		var window []float64
		for _, h := range history {
			if h.t > p.Time-cfg.Window && h.t < p.Time {
				window = append(window, h.v)
			}
		}
		cand, median := Normal, 0.0
		if len(window) >= cfg.WarmUp {
			slices.Sort(window)
			n := len(window)
			if n%2 == 1 {
				median = window[n/2]
			} else {
				median = (window[n/2-1] + window[n/2]) / 2
			}
			if median >= cfg.MinPredicted && median-p.Value >= cfg.MinDrop {
				if p.Value < median*cfg.Critical {
					cand = Critical
				} else if p.Value < median*cfg.Warning {
					cand = Warning
				}
			}
		}
		if cand == Normal {
			history = append(history, fedValue{p.Time, p.Value})
			run = nil
		} else {
			history = append(history, fedValue{p.Time, median})
			run = append(run, fedValue{p.Time, p.Value})
			if len(run) == cfg.AcceptAfter {
				history = slices.Clone(run)
				run = nil
			}
		}

		judged = append(judged, judgedBin{p, cand, median})
		// Levels beyond the current one on the side of this bin, farthest first: the level moves
		// to the first one the last MinDuration bins all reached.
		var beyond []Level
		switch {
		case cand > level:
			for l := Critical; l > level; l-- {
				beyond = append(beyond, l)
			}
		case cand < level:
			for l := Normal; l < level; l++ {
				beyond = append(beyond, l)
			}
		}
		for _, l := range beyond {
			reached := func(b judgedBin) bool {
				if l > level {
					return b.cand >= l
				}
				return b.cand <= l
			}
			run := 0
			for run < len(judged) && reached(judged[len(judged)-1-run]) {
				run++
			}
			if run < cfg.MinDuration {
				continue
			}
			first := judged[len(judged)-run]
			level = l
			alerts = append(alerts, Alert{Datasource: first.p.Datasource, EntityType: first.p.EntityType, EntityCode: first.p.EntityCode,
				Time: first.p.Time, Level: level, Condition: Condition(cfg, level), Value: first.p.Value,
				HistoryValue: first.median, Method: Method, Window: cfg.Window})
			break
		}
	}
	return alerts
}

// randomSeries: a noisy level with a slow trend, missing bins, drops of random depth and length
// (some longer than the acceptance), and level shifts. Deterministic per rng.
func randomSeries(rng *rand.Rand, ds, code string, bin int64, bins int) []Point {
	level := 50 + rng.Float64()*2000
	var ps []Point
	dropLeft, depth := 0, 1.0
	for i := range bins {
		level *= 1 + (rng.Float64()-0.5)*0.002
		if rng.IntN(400) == 0 {
			level *= 0.3 + rng.Float64()*1.5 // a lasting shift
		}
		if dropLeft == 0 && rng.IntN(60) == 0 {
			dropLeft, depth = 1+rng.IntN(30), rng.Float64()
		}
		v := level * (1 + rng.NormFloat64()*0.05)
		if dropLeft > 0 {
			dropLeft--
			v *= depth
		}
		if rng.IntN(30) == 0 {
			continue // missing bin
		}
		if rng.IntN(10) == 0 {
			v = math.Round(v) // ties in the window
		}
		ps = append(ps, Point{Datasource: ds, EntityType: "asn", EntityCode: code, Time: int64(i) * bin, Value: max(0, v)})
	}
	return ps
}

func sortAlerts(as []Alert) {
	slices.SortStableFunc(as, func(a, b Alert) int {
		return cmp.Or(cmp.Compare(a.Datasource, b.Datasource), cmp.Compare(a.EntityType, b.EntityType),
			cmp.Compare(a.EntityCode, b.EntityCode), cmp.Compare(a.Time, b.Time))
	})
}

func diffAlerts(t *testing.T, what string, got, want []Alert) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d alerts, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: alert %d\n got %+v\nwant %+v", what, i, got[i], want[i])
			return
		}
	}
}

func TestAgainstReference(t *testing.T) {
	small := testConfig()
	small.Datasources["b"] = DatasourceConfig{Bin: 600, Window: 12 * 600, WarmUp: 4, MinPredicted: 10, MinDrop: 40,
		Warning: 0.8, Critical: 0.5, MinDuration: 2, AcceptAfter: 8}
	cases := []struct {
		name   string
		cfg    Config
		series int
		bins   int
	}{
		{"small windows", small, 200, 600},
		{"IODA defaults", Defaults(), 6, 1500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				rng := rand.New(rand.NewPCG(seed, 7))
				d, err := New(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				names := slices.Sorted(func(yield func(string) bool) {
					for n := range tc.cfg.Datasources {
						if !yield(n) {
							return
						}
					}
				})
				var all []Point
				var wantAlerts []Alert
				for i := range tc.series {
					ds := names[i%len(names)]
					c := tc.cfg.Datasources[ds]
					ps := randomSeries(rng, ds, fmt.Sprint(i), c.Bin, tc.bins)
					wantAlerts = append(wantAlerts, reference(c, ps)...)
					all = append(all, ps...)
				}
				end := func(p Point) int64 { return p.Time + tc.cfg.Datasources[p.Datasource].Bin }
				slices.SortStableFunc(all, func(a, b Point) int { return cmp.Compare(end(a), end(b)) })
				got := runLive(t, d, all)
				sortAlerts(got)
				sortAlerts(wantAlerts)
				if len(wantAlerts) < tc.series/2 {
					t.Fatalf("seed %d: only %d reference alerts: the series do not exercise the detector", seed, len(wantAlerts))
				}
				t.Logf("seed %d: %d points, %d alerts", seed, len(all), len(wantAlerts))
				diffAlerts(t, fmt.Sprintf("seed %d", seed), got, wantAlerts)
			}
		})
	}
}

// TestReplayEqualsLive: points arriving out of order within the grace period, processed point by
// point with Advance after each, give the same alerts in the same order as all points added in
// one go and flushed.
func TestReplayEqualsLive(t *testing.T) {
	cfg := Defaults()
	for n, c := range cfg.Datasources { // shorter windows: more alerts in a short test
		c.Window /= 12
		c.WarmUp, c.AcceptAfter = c.Slots()/4, c.Slots()/2
		cfg.Datasources[n] = c
	}
	cfg.Grace = 1800
	rng := rand.New(rand.NewPCG(42, 42))
	type arrival struct {
		at int64
		p  Point
	}
	var arrivals []arrival
	var inOrder []Point
	names := []string{BGP, PingSlash24, UCSDNT}
	for i := range 90 {
		ds := names[i%3]
		bin := cfg.Datasources[ds].Bin
		for _, p := range randomSeries(rng, ds, fmt.Sprint(i/3), bin, int(10*86400/bin)) {
			arrivals = append(arrivals, arrival{p.Time + bin + rng.Int64N(cfg.Grace), p})
			inOrder = append(inOrder, p)
		}
	}
	slices.SortStableFunc(arrivals, func(a, b arrival) int { return cmp.Compare(a.at, b.at) })
	live, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var liveAlerts []Alert
	for _, a := range arrivals {
		if err := live.Add(a.p); err != nil {
			t.Fatalf("live add: %v", err)
		}
		liveAlerts = append(liveAlerts, live.AdvanceTo(a.at)...)
	}
	liveAlerts = append(liveAlerts, live.Flush()...)

	replay, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range inOrder {
		if err := replay.Add(p); err != nil {
			t.Fatalf("replay add: %v", err)
		}
	}
	replayAlerts := slices.Clone(replay.Flush())
	if len(replayAlerts) < 100 {
		t.Fatalf("only %d alerts: the series do not exercise the detector", len(replayAlerts))
	}
	t.Logf("%d points, %d alerts", len(inOrder), len(replayAlerts))
	diffAlerts(t, "live vs replay", liveAlerts, replayAlerts)

	// A point later than the grace period is refused in live processing.
	if err := live.Add(Point{BGP, "asn", "0", 0, 1}); !errors.Is(err, ErrLate) {
		t.Errorf("point from the first bin after the replay: %v, want ErrLate", err)
	}
}
