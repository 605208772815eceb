package telemetry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/simulate"
	"github.com/netwarden/netwarden/internal/entity"
)

// SimulateConfig is the `simulate:` section: netwarden's own telemetry
// producer for demos (make run, make demo).
type SimulateConfig struct {
	Enabled bool   `yaml:"enabled"`
	Seed    uint64 `yaml:"seed"`
	// Caps on the entities simulated per type, taken from the entity
	// registry (negative: none of that type); the entities the outages
	// name are added.
	Countries int `yaml:"countries"`
	Regions   int `yaml:"regions"`
	ASNs      int `yaml:"asns"`
	// Backfill is the history published at the first start: the 7-day
	// windows of probing and telescope need 7 days, plus a day judged.
	Backfill time.Duration `yaml:"backfill"`
	// Horizon is how far ahead of now the series are generated at a time.
	Horizon time.Duration `yaml:"horizon"`
	// Catalogue is the real outage CSV (ingest/simulate.ParseCatalogue);
	// empty: random outages only.
	Catalogue string `yaml:"catalogue"`
	// Anchor is the catalogue time placed at the first start's now; the
	// catalogue is shifted by a whole number of weeks (weekday and time
	// of day are kept), so its outages after Anchor happen live.
	Anchor time.Time `yaml:"anchor"`
	// RandomPerDay synthetic outages (30 min .. 8 h) per simulated day
	// (negative: none).
	RandomPerDay float64 `yaml:"random_per_day"`
	// Ongoing outages started 45 minutes before the first start's now
	// (3 .. 8 h long), so the dashboard shows live outages at once
	// (negative: none).
	Ongoing int `yaml:"ongoing"`
	// MissingRate is the fraction of bins not published, in [0, 0.5);
	// absent (nil): the default 0.002; `missing_rate: 0` publishes every
	// bin.
	MissingRate *float64 `yaml:"missing_rate"`
	// Epoch is how long one period's outage plan lasts; past it a new one
	// starts where the last left off. The series themselves run on across
	// periods without a seam (a bin's value depends only on the seed and
	// its time).
	Epoch time.Duration `yaml:"epoch"`
	// StateFile keeps the period and what was published, so a restart
	// continues instead of publishing the backfill again; empty: none.
	StateFile string `yaml:"state_file"`
}

// SimulateDefaults returns the demo settings (disabled).
func SimulateDefaults() SimulateConfig {
	return SimulateConfig{
		Seed:         1,
		Countries:    80,
		Regions:      20,
		ASNs:         40,
		Backfill:     8 * 24 * time.Hour,
		Horizon:      24 * time.Hour,
		Anchor:       time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC),
		RandomPerDay: 12,
		Ongoing:      3,
		MissingRate:  new(0.002),
		Epoch:        60 * 24 * time.Hour,
	}
}

// Defaults fills zero fields with SimulateDefaults' (Enabled, Catalogue
// and StateFile stay as they are).
func (c *SimulateConfig) Defaults() {
	d := SimulateDefaults()
	for _, f := range []struct{ v, d *int }{{&c.Countries, &d.Countries}, {&c.Regions, &d.Regions}, {&c.ASNs, &d.ASNs}, {&c.Ongoing, &d.Ongoing}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *time.Duration }{{&c.Backfill, &d.Backfill}, {&c.Horizon, &d.Horizon}, {&c.Epoch, &d.Epoch}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.Anchor.IsZero() {
		c.Anchor = d.Anchor
	}
	if c.RandomPerDay == 0 {
		c.RandomPerDay = d.RandomPerDay
	}
	if c.MissingRate == nil {
		c.MissingRate = d.MissingRate
	}
}

// Validate checks c.
func (c SimulateConfig) Validate() error {
	switch {
	case c.Backfill < time.Hour || c.Backfill > 60*24*time.Hour:
		return fmt.Errorf("simulate.backfill %s: want 1h .. 60 days", c.Backfill)
	case c.Horizon < 10*time.Minute:
		return fmt.Errorf("simulate.horizon %s: want at least 10m", c.Horizon)
	case c.Epoch < c.Backfill+c.Horizon || c.Epoch > 300*24*time.Hour:
		return fmt.Errorf("simulate.epoch %s: want backfill+horizon (%s) .. 300 days", c.Epoch, c.Backfill+c.Horizon)
	case c.RandomPerDay > 10_000:
		return fmt.Errorf("simulate.random_per_day %g: want at most 10000", c.RandomPerDay)
	case c.MissingRate != nil && (*c.MissingRate < 0 || *c.MissingRate >= 0.5):
		return fmt.Errorf("simulate.missing_rate %g: want [0, 0.5)", *c.MissingRate)
	case c.Anchor.IsZero() && c.Catalogue != "":
		return errors.New("simulate.anchor: needed with a catalogue")
	}
	if c.Catalogue != "" {
		if _, err := os.Stat(c.Catalogue); err != nil {
			return fmt.Errorf("simulate.catalogue: %w", err)
		}
	}
	return nil
}

var simulatedPoints = metrics.NewCounter(`netwarden_telemetry_simulated_points_total`)

// simState is what StateFile keeps.
type simState struct {
	Seed      uint64 `json:"seed"`
	Epoch     int64  `json:"epoch"`     // start of the generated period
	FirstNow  int64  `json:"first_now"` // now at the period's first start (end of the backfill)
	Published int64  `json:"published"` // every bin ending at or before this is published
}

// Simulator publishes simulated telemetry (see the package doc).
type Simulator struct {
	cfg    SimulateConfig
	reg    *entity.Registry
	sink   Sink
	log    *slog.Logger
	now    func() time.Time
	tick   time.Duration
	follow bool

	st       simState
	ents     []simulate.EntitySpec
	inj      []simulate.Injection
	series   []simulate.Series
	bins     map[string]time.Duration // per datasource; nil: simulate's defaults
	genFrom  int64                    // series cover bins ending after here
	genUntil int64                    // ... up to here
	sent     int                      // points published by this Run
}

// NewSimulator returns a simulator of cfg's entities (from reg) into sink.
func NewSimulator(cfg SimulateConfig, reg *entity.Registry, sink Sink, log *slog.Logger) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = &entity.Registry{}
	}
	return &Simulator{cfg: cfg, reg: reg, sink: sink, log: log, now: time.Now, tick: 5 * time.Second, follow: true}, nil
}

// SetClock replaces the wall clock and the polling period (tests).
func (s *Simulator) SetClock(now func() time.Time, tick time.Duration) { s.now, s.tick = now, tick }

// SetBins makes the series use the detector's bins (of the three
// simulated datasources).
func (s *Simulator) SetBins(cfg detect.Config) error {
	bins := simulate.Defaults().Bins
	for _, ds := range simulate.Datasources {
		if c, ok := cfg.Datasources[ds]; ok {
			bins[ds] = time.Duration(c.Bin) * time.Second
		}
	}
	c := simulate.Defaults()
	c.Bins = bins
	if err := c.Validate(); err != nil {
		return fmt.Errorf("simulate with the detector's bins: %w", err)
	}
	s.bins = bins
	return nil
}

// SetFollow(false) makes Run return once the backfill (everything up to
// now) is published, instead of publishing each new bin as it ends.
func (s *Simulator) SetFollow(follow bool) { s.follow = follow }

// Injections returns the outages of the current period (after Run started).
func (s *Simulator) Injections() []simulate.Injection { return s.inj }

// Entities returns the entities of the current period, with their sizes
// (after Run started).
func (s *Simulator) Entities() []simulate.EntitySpec { return s.ents }

// Run publishes the backfill (or what a restart missed), then each bin
// as its end passes, until ctx ends.
func (s *Simulator) Run(ctx context.Context) error {
	if err := s.load(); err != nil {
		return err
	}
	start, caughtUp := time.Now(), false
	for {
		if err := s.publishUntil(ctx, s.now().Unix()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !caughtUp {
			caughtUp = true
			s.log.Info("simulation caught up; publishing each bin as it ends", "points", s.sent, "took", time.Since(start).Round(time.Millisecond))
		}
		if !s.follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.tick):
		}
	}
}

// load reads the state file or starts a period with its backfill.
func (s *Simulator) load() error {
	now := s.now().Unix()
	if s.cfg.StateFile != "" {
		b, err := os.ReadFile(s.cfg.StateFile)
		switch {
		case err == nil:
			var st simState
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("read simulate state %q: %w", s.cfg.StateFile, err)
			}
			if st.Seed == s.cfg.Seed && st.Epoch > 0 && st.Published >= st.Epoch && st.Published <= now {
				s.log.Info("simulation continues", "epoch", time.Unix(st.Epoch, 0).UTC(), "published_through", time.Unix(st.Published, 0).UTC())
				return s.setEpoch(st)
			}
			s.log.Warn("simulate state does not fit (seed changed or clock moved back): starting a new period", "file", s.cfg.StateFile)
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("read simulate state: %w", err)
		}
	}
	first := now - int64(s.cfg.Backfill/time.Second)
	return s.newEpoch(first, now)
}

// newEpoch starts a period whose bins begin at from (aligned down to the
// hour); firstNow is the now its ongoing outages are placed around.
func (s *Simulator) newEpoch(from, firstNow int64) error {
	epoch := from - from%3600
	return s.setEpoch(simState{Seed: s.cfg.Seed, Epoch: epoch, FirstNow: firstNow, Published: from})
}

// setEpoch plans the period's entities and outages.
func (s *Simulator) setEpoch(st simState) error {
	s.st, s.series, s.genFrom, s.genUntil = st, nil, 0, 0
	s.ents = s.entities()
	if len(s.ents) == 0 {
		return errors.New("no entity to simulate: every cap is negative")
	}
	from, to := time.Unix(st.Epoch, 0).UTC(), time.Unix(st.Epoch, 0).Add(s.cfg.Epoch).UTC()
	var inj []simulate.Injection
	if s.cfg.Catalogue != "" {
		cat, err := s.catalogue(st.FirstNow)
		if err != nil {
			return err
		}
		inj = append(inj, simulate.Within(cat, from, to)...)
	}
	days := s.cfg.Epoch.Hours() / 24
	if n := int(math.Round(s.cfg.RandomPerDay * days)); n > 0 {
		r, err := simulate.RandomOutages(s.cfg.Seed^uint64(st.Epoch), s.ents, n, from, to, 30*time.Minute, 8*time.Hour)
		if err != nil {
			return err
		}
		inj = append(inj, r...)
	}
	rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(st.FirstNow)))
	for i := range max(0, s.cfg.Ongoing) {
		e := s.ents[rng.IntN(len(s.ents))]
		start := time.Unix(st.FirstNow, 0).Add(-45 * time.Minute).UTC()
		d := 3*time.Hour + time.Duration(rng.Int64N(int64(5*time.Hour))).Truncate(time.Minute)
		inj = append(inj, simulate.Injection{ID: fmt.Sprintf("now-%d-%d", st.FirstNow, i), EntityType: e.Type, EntityCode: e.Code,
			Start: start, End: start.Add(d), Datasources: slices.Clone(simulate.Datasources)})
	}
	slices.SortStableFunc(inj, func(a, b simulate.Injection) int { return a.Start.Compare(b.Start) })
	s.inj = inj
	// The entities only outages name join the sample, and every entity gets
	// a size of at least minSize /24s.
	seen := map[[2]string]bool{}
	for _, e := range s.ents {
		seen[[2]string{e.Type, e.Code}] = true
	}
	for _, o := range inj {
		if k := [2]string{o.EntityType, o.EntityCode}; !seen[k] {
			seen[k] = true
			s.ents = append(s.ents, simulate.EntitySpec{Type: o.EntityType, Code: o.EntityCode})
		}
	}
	for i := range s.ents {
		if s.ents[i].Size == 0 {
			s.ents[i].Size = entitySize(s.ents[i])
		}
	}
	s.log.Info("simulation period", "epoch", from, "entities", len(s.ents), "outages", len(inj))
	return s.save()
}

// minSize is the smallest entity simulated, in /24s: below about 100,
// a bgp count that rounds between N and N+1 crosses IODA's bgp warning
// threshold (0.99x) by itself and the entity flaps.
const minSize = 200

// entitySize is log-uniform in [minSize, 50,000] /24s, picked from the code.
func entitySize(e simulate.EntitySpec) float64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "size/%s/%s", e.Type, e.Code)
	u := float64(h.Sum64()%1_000_000) / 1_000_000
	return math.Round(minSize * math.Pow(50_000/minSize, u))
}

// fallbackEntities are simulated when the registry knows none (no
// metadata files): a few countries and networks, with their local time.
var fallbackEntities = []simulate.EntitySpec{
	{Type: entity.TypeCountry, Code: "US", UTCOffset: -6}, {Type: entity.TypeCountry, Code: "BR", UTCOffset: -3},
	{Type: entity.TypeCountry, Code: "DE", UTCOffset: 1}, {Type: entity.TypeCountry, Code: "NG", UTCOffset: 1},
	{Type: entity.TypeCountry, Code: "EG", UTCOffset: 2}, {Type: entity.TypeCountry, Code: "IR", UTCOffset: 3.5},
	{Type: entity.TypeCountry, Code: "IN", UTCOffset: 5.5}, {Type: entity.TypeCountry, Code: "MM", UTCOffset: 6.5},
	{Type: entity.TypeCountry, Code: "ID", UTCOffset: 7}, {Type: entity.TypeCountry, Code: "JP", UTCOffset: 9},
	{Type: entity.TypeCountry, Code: "AU", UTCOffset: 10}, {Type: entity.TypeCountry, Code: "VE", UTCOffset: -4},
	{Type: entity.TypeASN, Code: "3307", UTCOffset: 1}, {Type: entity.TypeASN, Code: "3320", UTCOffset: 1},
	{Type: entity.TypeASN, Code: "7922", UTCOffset: -5}, {Type: entity.TypeASN, Code: "9829", UTCOffset: 5.5},
	{Type: entity.TypeASN, Code: "12880", UTCOffset: 3.5}, {Type: entity.TypeASN, Code: "29465", UTCOffset: 1},
}

// entities are the registry's (fallbackEntities when it knows none),
// capped per type: those of fallbackEntities first, then a seeded
// shuffle (not the alphabet's first ones).
func (s *Simulator) entities() []simulate.EntitySpec {
	caps := map[string]int{entity.TypeCountry: s.cfg.Countries, entity.TypeRegion: s.cfg.Regions, entity.TypeASN: s.cfg.ASNs}
	n := map[string]int{}
	var out []simulate.EntitySpec
	all := simulate.Entities(s.reg)
	if len(all) == 0 {
		all = slices.Clone(fallbackEntities)
	}
	preferred := map[[2]string]bool{}
	for _, e := range fallbackEntities {
		preferred[[2]string{e.Type, e.Code}] = true
	}
	rank := func(e simulate.EntitySpec) uint64 {
		if preferred[[2]string{e.Type, e.Code}] {
			return 0
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%s/%s", s.cfg.Seed, e.Type, e.Code)
		return h.Sum64() | 1
	}
	slices.SortStableFunc(all, func(a, b simulate.EntitySpec) int { return cmp.Compare(rank(a), rank(b)) })
	for _, e := range all {
		if n[e.Type] < caps[e.Type] {
			n[e.Type]++
			out = append(out, e)
		}
	}
	return out
}

// catalogue reads the real outages, shifted by whole weeks so that
// Anchor lands at firstNow.
func (s *Simulator) catalogue(firstNow int64) ([]simulate.Injection, error) {
	f, err := os.Open(s.cfg.Catalogue)
	if err != nil {
		return nil, fmt.Errorf("open outage catalogue: %w", err)
	}
	defer f.Close()
	outages, _, err := simulate.ParseCatalogue(f)
	if err != nil {
		return nil, fmt.Errorf("read outage catalogue %q: %w", s.cfg.Catalogue, err)
	}
	inj, _ := simulate.Schedule(outages, s.reg)
	shift := CatalogueShift(s.cfg.Anchor, time.Unix(firstNow, 0))
	for i := range inj {
		inj[i].Start, inj[i].End = inj[i].Start.Add(shift), inj[i].End.Add(shift)
		inj[i].ID = "cat-" + inj[i].ID
	}
	return inj, nil
}

// CatalogueShift is the whole number of weeks that moves anchor nearest
// to now.
func CatalogueShift(anchor, now time.Time) time.Duration {
	const week = 7 * 24 * time.Hour
	return time.Duration(math.Round(float64(now.Sub(anchor))/float64(week))) * week
}

// publishUntil publishes every bin ending in (Published, now], in time
// order, a slice of at most 6 hours at a time, saving the state after each.
func (s *Simulator) publishUntil(ctx context.Context, now int64) error {
	const slice = 6 * 3600
	for s.st.Published < now {
		if end := s.st.Epoch + int64(s.cfg.Epoch/time.Second); s.st.Published >= end {
			// A new period from where this one stopped.
			if err := s.newEpoch(s.st.Published, s.st.Published); err != nil {
				return err
			}
		}
		until := min(now, s.st.Published+slice, s.st.Epoch+int64(s.cfg.Epoch/time.Second))
		if until > s.genUntil || s.st.Published < s.genFrom {
			s.generate(s.st.Published, until)
		}
		pts := s.points(s.st.Published, until)
		for len(pts) > 0 {
			n := min(len(pts), 20_000)
			if err := s.sink.Publish(ctx, pts[:n]); err != nil {
				return err
			}
			s.sent += n
			simulatedPoints.Add(n)
			pts = pts[n:]
		}
		s.st.Published = until
		if err := s.save(); err != nil {
			return err
		}
	}
	return nil
}

// generate makes the series' bins ending in (from, until + horizon],
// within the period. A bin's value depends only on the seed, its time and
// the outages over it (ingest/simulate), so a window regenerated from a
// later start repeats the bins it shares with the last one, missing ones
// included: only what is still to publish is generated.
func (s *Simulator) generate(from, until int64) {
	end := min(until+int64(s.cfg.Horizon/time.Second), s.st.Epoch+int64(s.cfg.Epoch/time.Second))
	end = max(end, until)
	c := simulate.Defaults()
	c.Seed = s.cfg.Seed
	c.Start = time.Unix(from, 0).UTC() // simulate aligns it down to each bin grid
	c.Duration = time.Duration(end-from) * time.Second
	c.MissingRate = simulate.Defaults().MissingRate
	if s.cfg.MissingRate != nil {
		c.MissingRate = *s.cfg.MissingRate
	}
	if s.bins != nil {
		c.Bins = s.bins
	}
	g, err := simulate.New(c)
	if err != nil { // the config was validated: a bug
		panic(fmt.Sprintf("simulate config: %v", err))
	}
	s.series = g.Generate(s.ents, s.inj)
	s.genFrom, s.genUntil = from, end
}

// points returns the points of bins ending in (from, until], by bin
// start then series.
func (s *Simulator) points(from, until int64) []detect.Point {
	n := 0
	for i := range s.series {
		n += int((until-from)/s.series[i].Step) + 1
	}
	out := make([]detect.Point, 0, n)
	for i := range s.series {
		sr := &s.series[i]
		first := max(0, (from-sr.Start)/sr.Step) // bins ending after from
		for j := int(first); j < len(sr.Values); j++ {
			end := sr.Time(j) + sr.Step
			if end <= from {
				continue
			}
			if end > until {
				break
			}
			if v := sr.Values[j]; !math.IsNaN(v) {
				out = append(out, detect.Point{Datasource: sr.Datasource, EntityType: sr.EntityType, EntityCode: sr.EntityCode, Time: sr.Time(j), Value: v})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b detect.Point) int { return cmp.Compare(a.Time, b.Time) })
	return out
}

// save writes the state file atomically.
func (s *Simulator) save() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	b, err := json.Marshal(s.st)
	if err != nil {
		return fmt.Errorf("encode simulate state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.StateFile), 0o755); err != nil {
		return fmt.Errorf("simulate state dir: %w", err)
	}
	tmp := s.cfg.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write simulate state: %w", err)
	}
	if err := os.Rename(tmp, s.cfg.StateFile); err != nil {
		return fmt.Errorf("write simulate state: %w", err)
	}
	return nil
}
