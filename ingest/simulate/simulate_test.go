package simulate

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/entity"
)

func newGen(t testing.TB, mod func(*Config)) *Generator {
	t.Helper()
	c := Defaults()
	if mod != nil {
		mod(&c)
	}
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func sameValues(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) })
}

func median(v []float64) float64 {
	var w []float64
	for _, x := range v {
		if !math.IsNaN(x) {
			w = append(w, x)
		}
	}
	sort.Float64s(w)
	return w[len(w)/2]
}

var testEntities = []EntitySpec{
	{Type: "country", Code: "VE", Size: 20000, UTCOffset: -4},
	{Type: "country", Code: "IR", Size: 30000, UTCOffset: 3.5},
	{Type: "asn", Code: "3307", Size: 800, UTCOffset: 1},
}

func TestSeedsReproducible(t *testing.T) {
	a := newGen(t, nil).Generate(testEntities, nil)
	b := newGen(t, nil).Generate(testEntities, nil)
	c := newGen(t, func(c *Config) { c.Seed = 2 }).Generate(testEntities, nil)
	if len(a) != 9 {
		t.Fatalf("%d series, want 9", len(a))
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameValues(a[i].Values, b[i].Values) {
			t.Errorf("%v: same seed, different series", a[i].Key)
		}
		if sameValues(a[i].Values, c[i].Values) {
			t.Errorf("%v: seeds 1 and 2 give the same series", a[i].Key)
		}
	}
	// A series does not depend on which other series are generated.
	alone, err := newGen(t, nil).Series(testEntities[2], DatasourceTelescope, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameValues(alone.Values, a[8].Values) {
		t.Error("asn/3307 ucsd-nt differs when generated alone")
	}
}

// A bin's value depends on its absolute time, not on where the generated window starts or how
// long it is: two overlapping windows (of the same seed, with missing bins) agree on every bin
// they share, and a series generated in pieces equals one generated at once.
func TestWindowsAgree(t *testing.T) {
	whole := newGen(t, func(c *Config) { c.MissingRate = 0.01; c.Duration = 10 * 24 * time.Hour })
	start := Defaults().Start
	for _, ds := range Datasources {
		w, err := whole.Series(testEntities[1], ds, nil)
		if err != nil {
			t.Fatal(err)
		}
		var joined []float64
		for from := time.Duration(0); from < 10*24*time.Hour; from += 61 * time.Hour {
			piece := newGen(t, func(c *Config) {
				c.MissingRate = 0.01
				c.Start = start.Add(from)
				c.Duration = min(61*time.Hour, 10*24*time.Hour-from)
			})
			p, err := piece.Series(testEntities[1], ds, nil)
			if err != nil {
				t.Fatal(err)
			}
			joined = append(joined, p.Values...)
		}
		if !sameValues(joined, w.Values) {
			t.Errorf("%s: 10 days generated in 61 h pieces differ from 10 days at once (%d vs %d bins)", ds, len(joined), len(w.Values))
		}
		// The trend moves on its own: the values are not a repeat of a shifted window.
		later := newGen(t, func(c *Config) {
			c.Start = start.Add(60 * 24 * time.Hour)
			c.Duration = 10 * 24 * time.Hour
			c.MissingRate = 0.01
		})
		l, err := later.Series(testEntities[1], ds, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sameValues(l.Values, w.Values) {
			t.Errorf("%s: 60 days later, the same values", ds)
		}
	}
}

// meanByLocalHour averages a series per local hour of day, and weekday vs weekend.
func cycleStats(s Series, offset float64) (byHour [24]float64, weekday, weekend float64) {
	var n [24]float64
	var nwd, nwe float64
	for i, v := range s.Values {
		if math.IsNaN(v) {
			continue
		}
		lt := time.Unix(s.Time(i), 0).UTC().Add(time.Duration(offset * float64(time.Hour)))
		byHour[lt.Hour()] += v
		n[lt.Hour()]++
		if wd := lt.Weekday(); wd == time.Saturday || wd == time.Sunday {
			weekend += v
			nwe++
		} else {
			weekday += v
			nwd++
		}
	}
	for h := range byHour {
		byHour[h] /= n[h]
	}
	return byHour, weekday / nwd, weekend / nwe
}

func TestCyclesPresent(t *testing.T) {
	g := newGen(t, nil)
	tests := []struct {
		ds                       string
		minDayRatio, maxDayRatio float64 // max/min of hourly means
		minWeekDrop, maxWeekDrop float64 // 1 - weekend/weekday
		peakFrom, peakTo         int     // local hour of the daily maximum
	}{
		{DatasourceBGP, 1, 1.01, -0.01, 0.01, -1, -1},
		{DatasourcePing, 1.12, 1.25, 0.01, 0.06, 12, 16},
		{DatasourceTelescope, 1.8, 2.4, 0.08, 0.18, 13, 17},
	}
	for _, tt := range tests {
		t.Run(tt.ds, func(t *testing.T) {
			e := testEntities[1]
			s, err := g.Series(e, tt.ds, nil)
			if err != nil {
				t.Fatal(err)
			}
			byHour, wd, we := cycleStats(s, e.UTCOffset)
			lo, hi := slices.Min(byHour[:]), slices.Max(byHour[:])
			peak := slices.Index(byHour[:], hi)
			drop := 1 - we/wd
			t.Logf("day max/min %.3f (peak %02d h local), weekend drop %.3f", hi/lo, peak, drop)
			if r := hi / lo; r < tt.minDayRatio || r > tt.maxDayRatio {
				t.Errorf("daily max/min %.3f, want [%g, %g]", r, tt.minDayRatio, tt.maxDayRatio)
			}
			if drop < tt.minWeekDrop || drop > tt.maxWeekDrop {
				t.Errorf("weekend drop %.3f, want [%g, %g]", drop, tt.minWeekDrop, tt.maxWeekDrop)
			}
			if tt.peakFrom >= 0 && (peak < tt.peakFrom || peak > tt.peakTo) {
				t.Errorf("peak at %d h local, want %d..%d", peak, tt.peakFrom, tt.peakTo)
			}
		})
	}
}

func TestMissingBinsAndPoints(t *testing.T) {
	g := newGen(t, func(c *Config) { c.MissingRate = 0.01; c.Duration = 7 * 24 * time.Hour })
	series := g.Generate(testEntities, nil)
	var bins, missing int
	for _, s := range series {
		for _, v := range s.Values {
			bins++
			if math.IsNaN(v) {
				missing++
			}
		}
	}
	rate := float64(missing) / float64(bins)
	t.Logf("%d of %d bins missing (%.4f)", missing, bins, rate)
	if rate < 0.005 || rate > 0.02 {
		t.Errorf("missing rate %.4f, want about 0.01", rate)
	}
	var n int
	last := int64(math.MinInt64)
	for p := range Points(series) {
		if p.Time < last {
			t.Fatalf("point at %d after %d", p.Time, last)
		}
		if math.IsNaN(p.Value) {
			t.Fatal("missing bin emitted")
		}
		last = p.Time
		n++
	}
	if n != bins-missing {
		t.Errorf("%d points, want %d", n, bins-missing)
	}
	// bins of 300 s and 600 s on the 5-minute grid
	if series[0].Step != 300 || series[1].Step != 600 || series[0].Start%300 != 0 {
		t.Errorf("steps %d/%d, start %d", series[0].Step, series[1].Step, series[0].Start)
	}
}

// The real catalogue's outages of March 2020, injected, show as drops in exactly the signals
// and bins they name: outside them every value equals the outage-free run's.
func TestOutagesVisible(t *testing.T) {
	out, _ := readCatalogue(t)
	reg, err := entity.Load(entity.Config{CountriesCSV: "../../../shared/data/geo/country-codes.csv"})
	if err != nil {
		if _, statErr := os.Stat("../../../shared/data/geo"); statErr != nil {
			t.Skipf("shared geo data absent: %v", statErr)
		}
		t.Fatal(err)
	}
	inj, skipped := Schedule(out, reg)
	for _, s := range skipped {
		if s.Reason != "no end time" && s.Reason != `country "European Union": not a known country name` {
			t.Errorf("skipped %+v", s)
		}
	}
	cfg := Defaults()
	march := Within(inj, cfg.Start, cfg.Start.Add(cfg.Duration))
	if len(march) < 40 {
		t.Fatalf("%d catalogued outages in March 2020, want the month's ~90 minus skipped", len(march))
	}
	g := newGen(t, nil)
	with := g.Generate(nil, march)
	byKey, cleanByKey := map[Key]Series{}, map[Key]Series{}
	for _, s := range with {
		clean, err := g.Series(EntitySpec{Type: s.EntityType, Code: s.EntityCode}, s.Datasource, nil)
		if err != nil {
			t.Fatal(err)
		}
		byKey[s.Key], cleanByKey[s.Key] = s, clean
		covered := make([]bool, len(s.Values))
		for _, w := range s.Injected {
			for i := w.From; i < w.To; i++ {
				covered[i] = true
			}
		}
		for i, v := range s.Values {
			c := clean.Values[i]
			switch {
			case !covered[i] && !(v == c || math.IsNaN(v) && math.IsNaN(c)):
				t.Fatalf("%v bin %d outside outages: %g, outage-free %g", s.Key, i, v, c)
			case covered[i] && !math.IsNaN(v) && v > c: // partly covered bins are in between
				t.Fatalf("%v bin %d inside an outage: %g above outage-free %g", s.Key, i, v, c)
			}
		}
	}
	// Every injection landed in each series it names, at the right bins, and nowhere else.
	checked := 0
	for _, o := range march {
		for _, ds := range Datasources {
			s := byKey[Key{ds, o.EntityType, o.EntityCode}]
			i := slices.IndexFunc(s.Injected, func(w Window) bool { return w.ID == o.ID })
			if !slices.Contains(o.Datasources, ds) {
				if i >= 0 {
					t.Errorf("%s injected into %v, which did not show it", o.ID, s.Key)
				}
				continue
			}
			if i < 0 {
				t.Errorf("%s missing from %v", o.ID, s.Key)
				continue
			}
			w := s.Injected[i]
			if o.Start.Unix() >= s.Start && (s.Time(w.From) > o.Start.Unix() || s.Time(w.From+1) <= o.Start.Unix()) {
				t.Errorf("%s starts %s, window starts at bin %s", o.ID, o.Start, time.Unix(s.Time(w.From), 0).UTC())
			}
			// A bin fully inside the outage is at most drop x its outage-free value (less where
			// outages overlap), and below half the outage-free median: what a detector sees.
			clean := cleanByKey[s.Key]
			med := median(clean.Values)
			for b := w.From; b < w.To; b++ {
				if s.Time(b) >= o.Start.Unix() && s.Time(b+1) <= o.End.Unix() && !math.IsNaN(s.Values[b]) {
					if v := s.Values[b]; v > math.Round(clean.Values[b]*cfg.Drop[ds]) || v > 0.5*med {
						t.Errorf("%s %v bin %d = %g, outage-free %g, median %g: not a drop", o.ID, s.Key, b, v, clean.Values[b], med)
					}
					checked++
				}
			}
		}
	}
	t.Logf("%d injections in March 2020 (%d skipped overall), %d series, %d outage bins checked", len(march), len(skipped), len(with), checked)
	if checked == 0 {
		t.Error("no outage bin checked")
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"duration": func(c *Config) { c.Duration = 0 },
		"too long": func(c *Config) { c.Duration = 10 * 365 * 24 * time.Hour },
		"start":    func(c *Config) { c.Start = time.Time{} },
		"missing":  func(c *Config) { c.MissingRate = 0.7 },
		"bin":      func(c *Config) { c.Bins = map[string]time.Duration{DatasourceBGP: 300 * time.Second} },
		"drop":     func(c *Config) { c.Drop = map[string]float64{DatasourceBGP: 1.5} },
		"unknown":  func(c *Config) { c.Bins["merit-nt"] = time.Minute },
	} {
		c := Defaults()
		mod(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	if _, err := newGen(t, nil).Series(testEntities[0], "merit-nt", nil); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown datasource: %v", err)
	}
}

// BenchmarkGenerateMonth: a month of bins for 1,000 entities x 3 datasources, against a
// baseline that only fills the same number of values with normal noise.
func BenchmarkGenerateMonth(b *testing.B) {
	g := newGen(b, nil)
	ents := make([]EntitySpec, 1000)
	for i := range ents {
		ents[i] = EntitySpec{Type: "asn", Code: string(rune('a'+i%26)) + string(rune('0'+i/26%10)) + string(rune('0'+i/260))}
	}
	var values int
	b.Run("generate", func(b *testing.B) {
		for b.Loop() {
			values = 0
			for _, s := range g.Generate(ents, nil) {
				values += len(s.Values)
			}
		}
		b.ReportMetric(float64(values), "values/op")
	})
	b.Run("baseline-noise-fill", func(b *testing.B) {
		for b.Loop() {
			rng := rand.New(rand.NewPCG(1, 2))
			v := make([]float64, values)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
		}
	})
}

func TestRandomOutages(t *testing.T) {
	cfg := Defaults()
	from, to := cfg.Start, cfg.Start.Add(cfg.Duration)
	a, err := RandomOutages(7, testEntities, 200, from, to, 30*time.Minute, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomOutages(7, testEntities, 200, from, to, 30*time.Minute, 12*time.Hour)
	c, _ := RandomOutages(8, testEntities, 200, from, to, 30*time.Minute, 12*time.Hour)
	if len(a) != 200 || !slices.EqualFunc(a, b, func(x, y Injection) bool {
		return x.ID == y.ID && x.Start.Equal(y.Start) && x.End.Equal(y.End) && slices.Equal(x.Datasources, y.Datasources)
	}) {
		t.Fatal("same seed, different schedules")
	}
	if a[0].Start.Equal(c[0].Start) && a[1].Start.Equal(c[1].Start) {
		t.Error("seeds 7 and 8 give the same schedule")
	}
	perDS := map[string]int{}
	for i, o := range a {
		d := o.End.Sub(o.Start)
		if o.Start.Before(from) || !o.Start.Before(to) || d < 30*time.Minute || d > 12*time.Hour || len(o.Datasources) == 0 {
			t.Errorf("outage %+v out of bounds", o)
		}
		if i > 0 && o.Start.Before(a[i-1].Start) {
			t.Error("not sorted by start")
		}
		for _, ds := range o.Datasources {
			perDS[ds]++
		}
	}
	if perDS[DatasourcePing] < perDS[DatasourceTelescope] || perDS[DatasourceTelescope] == 0 {
		t.Errorf("datasource mix %v", perDS)
	}
	if _, err := RandomOutages(1, nil, 5, from, to, time.Minute, time.Hour); !errors.Is(err, ErrConfig) {
		t.Errorf("no entities: %v", err)
	}
}

func TestScheduleFromCatalogue(t *testing.T) {
	out, _ := readCatalogue(t)
	reg, err := entity.Load(entity.Config{CountriesCSV: "../../../shared/data/geo/country-codes.csv", CityDB: "../../../shared/data/geo/GeoLite2-City-Test.mmdb"})
	if err != nil {
		t.Skipf("shared geo data: %v", err)
	}
	inj, skipped := Schedule(out, reg)
	if len(inj)+len(skipped) != len(out) {
		t.Fatalf("%d injections + %d skipped != %d outages", len(inj), len(skipped), len(out))
	}
	byID := map[string]Injection{}
	types := map[string]int{}
	for _, o := range inj {
		byID[o.ID] = o
		types[o.EntityType]++
		if _, err := reg.Lookup(o.EntityType, o.EntityCode); err != nil {
			t.Errorf("%s: entity %s/%s not accepted: %v", o.ID, o.EntityType, o.EntityCode, err)
		}
	}
	t.Logf("%d injections %v, %d skipped", len(inj), types, len(skipped))
	for id, want := range map[string]Injection{
		"AC160D81": {EntityType: "region", EntityCode: "TR-Tekirdag", Datasources: []string{DatasourceBGP, DatasourcePing}},
		"B652B11F": {EntityType: "region", EntityCode: "TR-Zinguldak", Datasources: Datasources}, // all N/A
		"239CED22": {EntityType: "region", EntityCode: "BG-Pazardzhik", Datasources: []string{DatasourceBGP, DatasourcePing}},
	} {
		got := byID[id]
		if got.EntityType != want.EntityType || got.EntityCode != want.EntityCode || !slices.Equal(got.Datasources, want.Datasources) {
			t.Errorf("%s: %+v, want %+v", id, got, want)
		}
	}
	nc, _, nr := reg.Counts()
	if es := Entities(reg); len(es) != nc+nr || es[0].Type != entity.TypeCountry || es[len(es)-1].Type != entity.TypeRegion {
		t.Errorf("Entities: %d, want the %d countries and %d regions", len(es), nc, nr)
	}
}

// Slow trends: the first and last week's medians of bgp series differ, by entity, within the
// configured drift (3 % plus a 1 % slow wave, noise aside).
func TestSlowTrends(t *testing.T) {
	g := newGen(t, nil)
	var ratios []float64
	for i := range 40 {
		s, err := g.Series(EntitySpec{Type: "asn", Code: string(rune('A' + i)), Size: 10000}, DatasourceBGP, nil)
		if err != nil {
			t.Fatal(err)
		}
		wk := 7 * 86400 / int(s.Step)
		r := median(s.Values[len(s.Values)-wk:]) / median(s.Values[:wk])
		ratios = append(ratios, r)
		if math.Abs(r-1) > 0.05 {
			t.Errorf("asn %c: last/first week %.4f, beyond the configured drift", 'A'+i, r)
		}
	}
	var mean, sd float64
	for _, r := range ratios {
		mean += r / float64(len(ratios))
	}
	for _, r := range ratios {
		sd += (r - mean) * (r - mean) / float64(len(ratios))
	}
	sd = math.Sqrt(sd)
	t.Logf("last/first week median ratio: mean %.4f, sd %.4f", mean, sd)
	if sd < 0.005 {
		t.Errorf("ratios sd %.4f: no trend across entities", sd)
	}
}

func TestPointJSON(t *testing.T) {
	b, err := json.Marshal(Point{Datasource: DatasourceBGP, EntityType: "asn", EntityCode: "3307", Time: 1583020800, Value: 812})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"datasource":"bgp","entity_type":"asn","entity_code":"3307","time":1583020800,"value":812}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
}

// BenchmarkSeries generates one bgp series of 30 days (8,640 values), one goroutine.
func BenchmarkSeries(b *testing.B) {
	g := newGen(b, nil)
	for b.Loop() {
		if _, err := g.Series(testEntities[0], DatasourceBGP, nil); err != nil {
			b.Fatal(err)
		}
	}
}
