// Package simulate produces realistic outage-detection signals and the real outage catalogue
// to inject into them.
//
// Signals: for every entity (country, region, ASN) and datasource it generates one series of
// counts per bin: bgp (visible /24s, 300 s bins: nearly flat, tiny noise, slow trend),
// ping-slash24 (responsive /24s, 600 s bins: mild diurnal and weekly cycles, some noise) and
// ucsd-nt (unique telescope sources, 300 s bins: strong diurnal and weekly cycles, noisy). Cycles
// follow the entity's local time. Bins go missing at random (singles and short runs); a missing
// bin is NaN in Series.Values and absent from Points.
//
// Outages: a schedule of Injections (entity, start, end, datasources that showed it) scales the
// affected bins of exactly that entity's series of those datasources by the datasource's drop
// factor (Config.Drop), a bin partly inside an outage by its overlap; other series and bins are
// untouched. Schedule turns the real IODA catalogue (ParseCatalogue) into Injections.
//
// Determinism: a series depends only on Config, the seed, its key and the injections for it,
// never on which other series are generated or in what order. A bin's value (trend, cycles,
// noise, missing or not) is a function of the seed, the key and the bin's absolute time, not of
// Config.Start or Duration: two configs with the same seed and bins agree on every bin they
// share, so a series can be generated piece by piece (as ingest/telemetry's live simulator does)
// without a seam.
//
// Point is detect.Point (Datasource, EntityType, EntityCode, Time = bin start in unix seconds,
// Value).
package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/netwarden/netwarden/detect"
)

// Datasources, named as IODA (and detect) names them.
const (
	DatasourceBGP       = detect.BGP
	DatasourcePing      = detect.PingSlash24
	DatasourceTelescope = detect.UCSDNT
)

// Datasources lists the three in a fixed order.
var Datasources = []string{DatasourceBGP, DatasourcePing, DatasourceTelescope}

// Point is one bin of one series: the detector's input point. Its JSON is the
// telemetry point of POST /v1/telemetry and the netwarden.telemetry topic.
type Point = detect.Point

// Key names a series.
type Key struct {
	Datasource string
	EntityType string
	EntityCode string
}

// EntitySpec is one entity to simulate.
type EntitySpec struct {
	Type string // "country", "region", "asn"
	Code string
	// Size is the entity's number of routed /24s (bgp's level); 0 picks one from the code.
	Size float64
	// UTCOffset is the local time offset in hours, for the cycles' phase.
	UTCOffset float64
}

// Injection is one scheduled outage.
type Injection struct {
	ID          string
	EntityType  string
	EntityCode  string
	Start, End  time.Time
	Datasources []string // those that show it
}

// Window is where an injection landed in a series, in bins [From, To).
type Window struct {
	ID       string
	From, To int
}

// Series is one generated series.
type Series struct {
	Key
	Start    int64     // unix seconds of bin 0
	Step     int64     // bin width in seconds
	Values   []float64 // NaN = missing bin
	Injected []Window  // outages applied, in start order
}

// Time returns the start of bin i in unix seconds.
func (s *Series) Time(i int) int64 { return s.Start + int64(i)*s.Step }

// Config of the generator.
type Config struct {
	Seed     uint64        `yaml:"seed"`
	Start    time.Time     `yaml:"start"`
	Duration time.Duration `yaml:"duration"`
	// Bin width per datasource (defaults: bgp 300 s, ping-slash24 600 s, ucsd-nt 300 s).
	Bins map[string]time.Duration `yaml:"bins"`
	// MissingRate is the fraction of bins missing (about half as singles, half in runs).
	MissingRate float64 `yaml:"missing_rate"`
	// Drop is the factor a datasource's value is multiplied by during an outage it shows
	// (defaults: bgp 0.3, ping-slash24 0.2, ucsd-nt 0.05: below IODA's critical levels).
	Drop map[string]float64 `yaml:"drop"`
}

// Defaults: 30 days from 2020-03-01 (a month with many catalogued outages).
func Defaults() Config {
	return Config{
		Seed:        1,
		Start:       time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC),
		Duration:    30 * 24 * time.Hour,
		Bins:        map[string]time.Duration{DatasourceBGP: 5 * time.Minute, DatasourcePing: 10 * time.Minute, DatasourceTelescope: 5 * time.Minute},
		MissingRate: 0.002,
		Drop:        map[string]float64{DatasourceBGP: 0.3, DatasourcePing: 0.2, DatasourceTelescope: 0.05},
	}
}

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("invalid simulate config")

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Duration <= 0 || c.Duration > 400*24*time.Hour {
		return fmt.Errorf("simulate.duration %s: want (0, 400 days]: %w", c.Duration, ErrConfig)
	}
	if c.Start.Year() < 1990 {
		return fmt.Errorf("simulate.start %s: want a time after 1990: %w", c.Start, ErrConfig)
	}
	if c.MissingRate < 0 || c.MissingRate >= 0.5 {
		return fmt.Errorf("simulate.missing_rate %g: want [0, 0.5): %w", c.MissingRate, ErrConfig)
	}
	for _, ds := range Datasources {
		b := c.Bins[ds]
		if b <= 0 || b%time.Second != 0 || b > 24*time.Hour {
			return fmt.Errorf("simulate.bins.%s %s: want whole seconds in (0, 24h]: %w", ds, b, ErrConfig)
		}
		if d := c.Drop[ds]; d < 0 || d >= 1 {
			return fmt.Errorf("simulate.drop.%s %g: want [0, 1): %w", ds, d, ErrConfig)
		}
	}
	for ds := range c.Bins {
		if !slices.Contains(Datasources, ds) {
			return fmt.Errorf("simulate.bins.%s: unknown datasource: %w", ds, ErrConfig)
		}
	}
	return nil
}

// profile is a datasource's signal shape.
type profile struct {
	level    float64 // value per unit of entity size
	diurnal  float64 // amplitude of the daily cycle (fraction)
	weekend  float64 // drop on local Saturday and Sunday (fraction)
	noise    float64 // sd of multiplicative noise
	trend    float64 // max |slow trend| swing, peak to peak (fraction)
	peakHour float64 // local hour of the daily maximum
}

var profiles = map[string]profile{
	DatasourceBGP:       {level: 1, diurnal: 0, weekend: 0, noise: 0.003, trend: 0.03, peakHour: 0},
	DatasourcePing:      {level: 0.35, diurnal: 0.08, weekend: 0.03, noise: 0.02, trend: 0.05, peakHour: 14},
	DatasourceTelescope: {level: 2.5, diurnal: 0.35, weekend: 0.12, noise: 0.06, trend: 0.08, peakHour: 15},
}

// Generator makes series. It is safe for concurrent use.
type Generator struct {
	cfg Config
}

// New validates cfg and returns a generator.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Generator{cfg: cfg}, nil
}

func hashKey(seed uint64, parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64() ^ (seed * 0x9e3779b97f4a7c15)
}

// sizeOf picks a stable size for an entity without one: log-uniform 50 .. 50,000 /24s.
func sizeOf(e EntitySpec) float64 {
	if e.Size > 0 {
		return e.Size
	}
	u := float64(hashKey(0, "size", e.Type, e.Code)%1_000_000) / 1_000_000
	return math.Round(50 * math.Pow(1000, u))
}

// Series generates the series of entity e for datasource ds with the injections that name
// this entity and datasource applied (others in inj are ignored).
func (g *Generator) Series(e EntitySpec, ds string, inj []Injection) (Series, error) {
	p, ok := profiles[ds]
	if !ok {
		return Series{}, fmt.Errorf("datasource %q: want bgp, ping-slash24 or ucsd-nt: %w", ds, ErrConfig)
	}
	step := int64(g.cfg.Bins[ds] / time.Second)
	start := g.cfg.Start.Unix()
	start -= ((start % step) + step) % step // align to the bin grid
	n := int((g.cfg.Start.Add(g.cfg.Duration).Unix() - start + step - 1) / step)
	s := Series{Key: Key{ds, e.Type, e.Code}, Start: start, Step: step, Values: make([]float64, n)}
	seed := hashKey(g.cfg.Seed, ds, e.Type, e.Code)
	rng := rand.New(rand.NewPCG(seed, seed>>17|1))

	base := sizeOf(e) * p.level
	// Slow trend: two slow sines of absolute time (periods 120 and 17 days, random phases, amplitudes
	// 0.3 and 0.2 p.trend: at most p.trend peak to peak); a function of time, not of where the series starts, so any two
	// windows of the same seed agree on the bins they share.
	phase1, phase2 := rng.Float64()*2*math.Pi, rng.Float64()*2*math.Pi
	offset := int64(e.UTCOffset * 3600)
	cycle := func(t int64) float64 {
		local := t + offset
		hour := float64(((local%86400)+86400)%86400) / 3600
		f := 1 + p.diurnal*math.Cos(2*math.Pi*(hour-p.peakHour)/24)
		if wd := time.Weekday(((local/86400)%7 + 7 + 4) % 7); wd == time.Saturday || wd == time.Sunday {
			f *= 1 - p.weekend
		}
		return f
	}
	// The cycles repeat weekly: one table per series when the bin divides a week.
	const week = 7 * 86400
	var table []float64
	if week%step == 0 {
		table = make([]float64, min(week/step, int64(n)))
		for k := range table {
			table[k] = cycle(start + int64(k)*step + step/2)
		}
	}
	trend := 1.0
	bin0 := start / step // absolute bin index of bin 0
	// Noise: one generator per block of noiseBlock absolute bins, seeded from the block's index,
	// so a window starting inside a block draws (and skips) what the block's start would.
	var noise *rand.Rand
	for i := range s.Values {
		b := bin0 + int64(i)
		if i == 0 || b%noiseBlock == 0 {
			blk := b - ((b%noiseBlock)+noiseBlock)%noiseBlock
			h := mix(seed, blk/noiseBlock)
			noise = rand.New(rand.NewPCG(h, h>>17|1))
			for range b - blk {
				noise.NormFloat64()
			}
		}
		var f float64
		if table != nil {
			f = table[i%len(table)]
		} else {
			f = cycle(b*step + step/2)
		}
		if i == 0 || b%16 == 0 { // the trend moves over days; a value per 16 bins is smooth enough
			t := float64((b-b%16)*step) / 86400
			trend = 1 + 0.3*p.trend*math.Sin(2*math.Pi*t/120+phase1) + 0.2*p.trend*math.Sin(2*math.Pi*t/17+phase2)
		}
		f *= trend * (1 + p.noise*noise.NormFloat64())
		s.Values[i] = math.Max(0, math.Round(base*f))
	}
	g.missing(&s, seed)
	g.inject(&s, inj)
	return s, nil
}

// missing blanks about MissingRate of the bins: half as singles, half as runs of 2..12. Whether
// a bin is missing depends only on the seed and its absolute bin index.
func (g *Generator) missing(s *Series, seed uint64) {
	r := g.cfg.MissingRate
	if r == 0 {
		return
	}
	bin0 := s.Start / s.Step
	n := int64(len(s.Values))
	// A run starts at a bin with probability r/2/7 (mean length 7); runs from up to 11 bins
	// before the series reach into it.
	for b := bin0 - 11; b < bin0+n; b++ {
		h := mix(seed^0x6d697373696e6721, b) // "missing!"; high bits: single, low 32: run start
		if b >= bin0 && unit(h) < r/2 {
			s.Values[b-bin0] = math.NaN()
		}
		if float64(uint32(h))/(1<<32) < r/2/7 {
			l := 2 + int64(mix(h, 1)%11)
			for j := max(b, bin0); j < b+l && j < bin0+n; j++ {
				s.Values[j-bin0] = math.NaN()
			}
		}
	}
}

// mix is splitmix64 of a stream and an index: a stateless hash for per-bin randomness.
func mix(seed uint64, i int64) uint64 {
	z := seed + uint64(i)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// unit maps a hash's high 53 bits to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// noiseBlock is the number of bins drawn from one noise generator.
const noiseBlock = 256

// inject applies the outages of s's entity that s's datasource shows.
func (g *Generator) inject(s *Series, inj []Injection) {
	drop := g.cfg.Drop[s.Datasource]
	end := s.Time(len(s.Values))
	for _, o := range inj {
		if o.EntityType != s.EntityType || o.EntityCode != s.EntityCode || !slices.Contains(o.Datasources, s.Datasource) {
			continue
		}
		os, oe := o.Start.Unix(), o.End.Unix()
		if oe <= s.Start || os >= end || oe <= os {
			continue
		}
		from := max(0, int((os-s.Start)/s.Step))
		to := min(len(s.Values), int((oe-s.Start+s.Step-1)/s.Step))
		for i := from; i < to; i++ {
			bs, be := s.Time(i), s.Time(i+1)
			overlap := float64(min(be, oe)-max(bs, os)) / float64(s.Step)
			s.Values[i] = math.Round(s.Values[i] * (1 - (1-drop)*overlap)) // NaN stays NaN
		}
		s.Injected = append(s.Injected, Window{ID: o.ID, From: from, To: to})
	}
	slices.SortFunc(s.Injected, func(a, b Window) int { return cmp.Compare(a.From, b.From) })
}

// Generate makes every datasource's series for every entity, plus the entities that only the
// injections name (with a size picked from their code), in parallel. Output order: entities
// in the given order (then injection-only ones), each with bgp, ping-slash24, ucsd-nt.
func (g *Generator) Generate(entities []EntitySpec, inj []Injection) []Series {
	seen := map[[2]string]bool{}
	all := slices.Clone(entities)
	for _, e := range entities {
		seen[[2]string{e.Type, e.Code}] = true
	}
	for _, o := range inj {
		k := [2]string{o.EntityType, o.EntityCode}
		if !seen[k] {
			seen[k] = true
			all = append(all, EntitySpec{Type: o.EntityType, Code: o.EntityCode})
		}
	}
	byEntity := map[[2]string][]Injection{}
	for _, o := range inj {
		k := [2]string{o.EntityType, o.EntityCode}
		byEntity[k] = append(byEntity[k], o)
	}
	out := make([]Series, len(all)*len(Datasources))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(out); i += workers {
				e := all[i/len(Datasources)]
				// Datasources are fixed and valid, so Series cannot fail here.
				out[i], _ = g.Series(e, Datasources[i%len(Datasources)], byEntity[[2]string{e.Type, e.Code}])
			}
		})
	}
	wg.Wait()
	return out
}

// Points yields the points of all series in time order (ties in series order), skipping
// missing bins: the order a live producer would publish them in.
func Points(series []Series) iter.Seq[Point] {
	return func(yield func(Point) bool) {
		if len(series) == 0 {
			return
		}
		pos := make([]int, len(series))
		for {
			next := int64(math.MaxInt64)
			for i := range series {
				if pos[i] < len(series[i].Values) {
					next = min(next, series[i].Time(pos[i]))
				}
			}
			if next == math.MaxInt64 {
				return
			}
			for i := range series {
				s := &series[i]
				if pos[i] < len(s.Values) && s.Time(pos[i]) == next {
					v := s.Values[pos[i]]
					pos[i]++
					if math.IsNaN(v) {
						continue
					}
					if !yield(Point{Datasource: s.Datasource, EntityType: s.EntityType, EntityCode: s.EntityCode, Time: next, Value: v}) {
						return
					}
				}
			}
		}
	}
}
