package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	nwdetect "github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/simulate"
	"github.com/netwarden/netwarden/internal/entity"
)

const (
	shared    = "../../../shared/data"
	catalogue = shared + "/outages/ioda-investigated-outages-2018-2020.csv"
	day       = 24 * time.Hour
	// warmUp is simulated before each month: the longest window (7 days).
	warmUp = 7 * day
	// tail is simulated after each month, so outages starting at its end can show.
	tail = day
	// longOutage is the shortest outage recall is measured on.
	longOutage = 30 * time.Minute
	// afterEnd is how many bins after an outage's end an alert is still the outage's.
	afterEnd = 2
)

// scenario is what the harness simulates.
type scenario struct {
	Seed   uint64
	Months []time.Time // first day of each month, UTC
	// Clean is the number of registry entities added each month besides those the catalogue
	// names that month (they get only random outages, if any).
	Clean int
	// Random is the number of random outages per month over the month's entities.
	Random int
	// Drop is the factor a datasource's value is multiplied by during an outage it shows
	// (nil: simulate's defaults, below every critical threshold).
	Drop map[string]float64
}

// world is the real data the scenarios draw from.
type world struct {
	inj      []simulate.Injection // the whole catalogue, scheduled
	entities []simulate.EntitySpec
	offset   map[[2]string]float64
}

// loadWorld reads the catalogue and the entity registry, or skips the test without them.
func loadWorld(tb testing.TB) *world {
	tb.Helper()
	f, err := os.Open(catalogue)
	if err != nil {
		tb.Skipf("shared outage catalogue absent at %s: %v", catalogue, err)
	}
	defer f.Close()
	outs, _, err := simulate.ParseCatalogue(f)
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := entity.Load(entity.Config{
		CountriesCSV: shared + "/geo/country-codes.csv",
		ASNDB:        shared + "/geo/GeoLite2-ASN-Test.mmdb",
		CityDB:       shared + "/geo/GeoLite2-City-Test.mmdb",
	})
	if err != nil {
		tb.Fatalf("entity registry from %s/geo: %v", shared, err)
	}
	inj, _ := simulate.Schedule(outs, reg)
	w := &world{inj: inj, entities: simulate.Entities(reg), offset: map[[2]string]float64{}}
	for _, e := range w.entities {
		w.offset[[2]string{e.Type, e.Code}] = e.UTCOffset
	}
	return w
}

// monthCase is one simulated month.
type monthCase struct {
	From, To time.Time // the month: what is measured
	Start    time.Time // simulation start (From - warmUp)
	Entities []simulate.EntitySpec
	Inj      []simulate.Injection // catalogue and random outages overlapping the simulation
	Series   []simulate.Series
}

// build generates a month of the scenario.
func (w *world) build(sc scenario, month time.Time) (*monthCase, error) {
	from, to := month, month.AddDate(0, 1, 0)
	start, end := from.Add(-warmUp), to.Add(tail)
	mc := &monthCase{From: from, To: to, Start: start}

	// The catalogue's entities with an outage starting this month, and every catalogue
	// outage overlapping the simulation on them.
	names := map[[2]string]bool{}
	for _, o := range w.inj {
		if !o.Start.Before(from) && o.Start.Before(to) {
			names[[2]string{o.EntityType, o.EntityCode}] = true
		}
	}
	keys := make([][2]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	kept := map[[2]string]bool{}
	for _, k := range keys {
		kept[k] = true
		mc.Entities = append(mc.Entities, simulate.EntitySpec{Type: k[0], Code: k[1], UTCOffset: w.offset[k]})
	}
	for _, o := range simulate.Within(w.inj, start, end) {
		if kept[[2]string{o.EntityType, o.EntityCode}] {
			mc.Inj = append(mc.Inj, o)
		}
	}

	// Outage-free entities of the registry, a seeded pick per month.
	rng := rand.New(rand.NewPCG(sc.Seed, uint64(month.Unix())))
	pool := slices.Clone(w.entities)
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	for _, e := range pool {
		if len(mc.Entities) >= len(keys)+sc.Clean {
			break
		}
		if !kept[[2]string{e.Type, e.Code}] {
			mc.Entities = append(mc.Entities, e)
		}
	}

	if sc.Random > 0 {
		rnd, err := simulate.RandomOutages(sc.Seed^uint64(month.Unix()), mc.Entities, sc.Random, from, to.Add(-day), 10*time.Minute, day)
		if err != nil {
			return nil, fmt.Errorf("random outages of %s: %w", month.Format("2006-01"), err)
		}
		mc.Inj = append(mc.Inj, rnd...)
	}

	cfg := simulate.Defaults()
	cfg.Seed = sc.Seed
	cfg.Start = start
	cfg.Duration = end.Sub(start)
	if sc.Drop != nil {
		cfg.Drop = sc.Drop
	}
	g, err := simulate.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("simulate %s: %w", month.Format("2006-01"), err)
	}
	mc.Series = g.Generate(mc.Entities, mc.Inj)
	return mc, nil
}

// run is one method's verdicts over a month: per series, the alerted level after each bin
// (a bin without a point keeps the previous level).
type run struct {
	Levels [][]nwdetect.Level
	Alerts int // alerts to warning or critical, as the method emitted them (netwarden only)
}

// runNetwarden feeds the month's points to the detector in time order, as a live producer
// would publish them, advancing the watermark at each new bin start.
func runNetwarden(cfg nwdetect.Config, series []simulate.Series) (run, error) {
	d, err := nwdetect.New(cfg)
	if err != nil {
		return run{}, err
	}
	type key struct{ ds, typ, code string }
	idx := make(map[key]int, len(series))
	r := run{Levels: make([][]nwdetect.Level, len(series))}
	judged := make([][]bool, len(series))
	for i, s := range series {
		idx[key{s.Datasource, s.EntityType, s.EntityCode}] = i
		r.Levels[i] = make([]nwdetect.Level, len(s.Values))
		judged[i] = make([]bool, len(s.Values))
	}
	var verdictErr error
	d.OnBin(func(v nwdetect.Verdict) {
		i, ok := idx[key{v.Datasource, v.EntityType, v.EntityCode}]
		if !ok {
			verdictErr = fmt.Errorf("verdict for unknown series %s %s/%s", v.Datasource, v.EntityType, v.EntityCode)
			return
		}
		s := &series[i]
		b := int((v.Time - s.Start) / s.Step)
		r.Levels[i][b], judged[i][b] = v.Level, true
	})
	count := func(as []nwdetect.Alert) {
		for _, a := range as {
			if a.Level != nwdetect.Normal {
				r.Alerts++
			}
		}
	}
	cur := int64(math.MinInt64)
	for p := range simulate.Points(series) {
		if p.Time != cur {
			count(d.Advance())
			cur = p.Time
		}
		if err := d.Add(p); err != nil {
			return run{}, fmt.Errorf("add %+v: %w", p, err)
		}
	}
	count(d.Flush())
	if verdictErr != nil {
		return run{}, verdictErr
	}
	for i := range r.Levels {
		for b := range r.Levels[i] {
			if !judged[i][b] && b > 0 {
				r.Levels[i][b] = r.Levels[i][b-1]
			}
		}
	}
	return r, nil
}

// runIODA is the plain method on every series.
func runIODA(cfg nwdetect.Config, series []simulate.Series) run {
	r := run{Levels: make([][]nwdetect.Level, len(series))}
	for i, s := range series {
		r.Levels[i] = iodaLevels(cfg.Datasources[s.Datasource], s.Values)
	}
	return r
}

// dsFigures are the figures of one datasource (or of all, merged per outage).
type dsFigures struct {
	Outages, Detected int // outages >= 30 min, and those detected
	Short, ShortFound int // outages < 30 min, and those detected (for information)
	FalseAlerts       int
	FalseCritical     int   // of FalseAlerts, those to critical
	Delays            []int // bins, one per detected long outage
}

// figures of one method over a scenario.
type figures struct {
	dsFigures                                       // per outage, any of its datasources
	Catalogue, CatalogueFound int                   // of the outages >= 30 min, the real catalogue's
	Decoys, DecoyHits         int                   // decoy windows (see decoy) and those "detected"
	PerDS                     map[string]*dsFigures // per (outage, datasource) signal
	EntityMonths              float64
	Series, Bins              int
}

func (f *dsFigures) recall() float64 {
	if f.Outages == 0 {
		return math.NaN()
	}
	return float64(f.Detected) / float64(f.Outages)
}

func (f *figures) falsePerEntityMonth() float64 { return float64(f.FalseAlerts) / f.EntityMonths }

// quantile of sorted-in-place delays (nearest rank), NaN when none.
func quantile(d []int, q float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	sort.Ints(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return float64(d[max(0, min(len(d)-1, i))])
}

func newFigures() *figures {
	f := &figures{PerDS: map[string]*dsFigures{}}
	for _, ds := range simulate.Datasources {
		f.PerDS[ds] = &dsFigures{}
	}
	return f
}

// score adds a month's verdicts of one method to f.
func (f *figures) score(mc *monthCase, r run) {
	from, to := mc.From.Unix(), mc.To.Unix()
	f.EntityMonths += float64(len(mc.Entities)) * float64(to-from) / float64(30*86400)
	type ent [2]string
	byEntity := map[ent][]int{}
	for i, s := range mc.Series {
		byEntity[ent{s.EntityType, s.EntityCode}] = append(byEntity[ent{s.EntityType, s.EntityCode}], i)
		f.Series++
		f.Bins += len(s.Values)
		// False alerts: a level change to warning or critical, raised in the month, not within
		// an injected outage of this series (or the afterEnd bins after it).
		lv := r.Levels[i]
		for b := 1; b < len(lv); b++ {
			if lv[b] == nwdetect.Normal || lv[b] == lv[b-1] {
				continue
			}
			if t := s.Time(b); t < from || t >= to {
				continue
			}
			if !slices.ContainsFunc(s.Injected, func(w simulate.Window) bool { return b >= w.From && b < w.To+afterEnd }) {
				f.FalseAlerts++
				f.PerDS[s.Datasource].FalseAlerts++
				if lv[b] == nwdetect.Critical {
					f.FalseCritical++
					f.PerDS[s.Datasource].FalseCritical++
				}
			}
		}
	}
	// Recall and delay per outage starting in the month.
	for _, o := range mc.Inj {
		if o.Start.Unix() < from || o.Start.Unix() >= to {
			continue
		}
		long := o.End.Sub(o.Start) >= longOutage
		carried, found, best := false, false, math.MaxInt
		for _, i := range byEntity[ent{o.EntityType, o.EntityCode}] {
			s := &mc.Series[i]
			if !slices.Contains(o.Datasources, s.Datasource) {
				continue
			}
			k := slices.IndexFunc(s.Injected, func(w simulate.Window) bool { return w.ID == o.ID })
			if k < 0 {
				continue // ended before the series started
			}
			w := s.Injected[k]
			carried = true
			delay := -1
			for b := w.From; b < w.To; b++ {
				if r.Levels[i][b] != nwdetect.Normal {
					delay = b - w.From
					break
				}
			}
			pd := f.PerDS[s.Datasource]
			if long {
				pd.Outages++
			} else {
				pd.Short++
			}
			if delay >= 0 {
				found = true
				best = min(best, delay)
				if long {
					pd.Detected++
					pd.Delays = append(pd.Delays, delay)
				} else {
					pd.ShortFound++
				}
			}
		}
		switch {
		case !carried:
			// no series of the month shows it: nothing to detect
		case long:
			f.Outages++
			if found {
				f.Detected++
				f.Delays = append(f.Delays, best)
			}
			if !strings.HasPrefix(o.ID, "syn-") {
				f.Catalogue++
				if found {
					f.CatalogueFound++
				}
			}
			f.decoy(mc, r, o, byEntity[ent{o.EntityType, o.EntityCode}])
		default:
			f.Short++
			if found {
				f.ShortFound++
			}
		}
	}
}

// decoy scores a decoy of outage o: the same entity, datasources and length a week later (or
// earlier, to stay in the month), where no outage was injected in any of those series (nor
// afterEnd bins around one). A decoy "detected" (a level out of normal at one of its bins) is
// a detection by chance: what recall would be if the method alerted at random.
func (f *figures) decoy(mc *monthCase, r run, o simulate.Injection, series []int) {
	const week = 7 * 86400
	from, to := o.Start.Unix()+week, o.End.Unix()+week
	if to > mc.To.Unix() {
		from, to = from-2*week, to-2*week
	}
	if from < mc.From.Unix() {
		return
	}
	type span struct{ i, from, to int }
	var spans []span
	for _, i := range series {
		s := &mc.Series[i]
		if !slices.Contains(o.Datasources, s.Datasource) {
			continue
		}
		b0 := int((from - s.Start) / s.Step)
		b1 := min(len(s.Values), int((to-s.Start+s.Step-1)/s.Step))
		if slices.ContainsFunc(s.Injected, func(w simulate.Window) bool { return b0 < w.To+afterEnd && w.From-afterEnd < b1 }) {
			return
		}
		spans = append(spans, span{i, b0, b1})
	}
	if len(spans) == 0 {
		return
	}
	f.Decoys++
	for _, sp := range spans {
		if slices.ContainsFunc(r.Levels[sp.i][sp.from:sp.to], func(l nwdetect.Level) bool { return l != nwdetect.Normal }) {
			f.DecoyHits++
			return
		}
	}
}

// evaluate runs both methods over every month of sc.
func evaluate(tb testing.TB, w *world, sc scenario, cfg nwdetect.Config) (ours, ioda *figures) {
	tb.Helper()
	ours, ioda = newFigures(), newFigures()
	for _, m := range sc.Months {
		mc, err := w.build(sc, m)
		if err != nil {
			tb.Fatal(err)
		}
		r, err := runNetwarden(cfg, mc.Series)
		if err != nil {
			tb.Fatalf("%s: %v", m.Format("2006-01"), err)
		}
		// The levels read from the verdicts are the detector's alerts: as many changes to a
		// level out of normal as alerts to warning or critical.
		changes := 0
		for _, lv := range r.Levels {
			for b := 1; b < len(lv); b++ {
				if lv[b] != nwdetect.Normal && lv[b] != lv[b-1] {
					changes++
				}
			}
		}
		if changes != r.Alerts {
			tb.Fatalf("%s: %d level changes out of normal in the verdicts, %d alerts", m.Format("2006-01"), changes, r.Alerts)
		}
		ours.score(mc, r)
		ioda.score(mc, runIODA(cfg, mc.Series))
	}
	return ours, ioda
}

// summary is one line of figures.
func (f *figures) summary() string {
	return fmt.Sprintf("recall %.4f (%d/%d outages >= 30 min; catalogue %d/%d; chance: %d of %d decoys), false alerts %.3f per entity-month (%d, %d critical, over %.1f), delay median %.0f p90 %.0f bins; outages < 30 min found %d/%d",
		f.recall(), f.Detected, f.Outages, f.CatalogueFound, f.Catalogue, f.DecoyHits, f.Decoys, f.falsePerEntityMonth(), f.FalseAlerts, f.FalseCritical, f.EntityMonths,
		quantile(f.Delays, 0.5), quantile(f.Delays, 0.9), f.ShortFound, f.Short)
}

func (f *figures) perDSSummary() string {
	var b strings.Builder
	for _, ds := range simulate.Datasources {
		p := f.PerDS[ds]
		fmt.Fprintf(&b, "\n    %-12s recall %.4f (%d/%d), false %d (%d critical), delay median %.0f p90 %.0f", ds, p.recall(), p.Detected, p.Outages, p.FalseAlerts, p.FalseCritical, quantile(p.Delays, 0.5), quantile(p.Delays, 0.9))
	}
	return b.String()
}
