package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netwarden/netwarden/internal/entity"
)

// Skipped is a catalogue outage Schedule could not turn into an injection, with the reason.
type Skipped struct {
	ID     string
	Reason string
}

// Schedule turns catalogue outages into injections. Countries are resolved by name with reg;
// a region becomes its MaxMind geoname id when reg knows it in that country, otherwise the
// code "CC-Name_With_Underscores" (accepted by entity.Lookup as an unknown region); an AS
// outage becomes entity asn/<number>. The datasources are those the operators marked visible;
// when all three cells are empty or N/A, all three. Outages without an end, with a country
// that does not resolve, or that no datasource showed are skipped with reasons.
func Schedule(outages []Outage, reg *entity.Registry) ([]Injection, []Skipped) {
	var out []Injection
	var skipped []Skipped
	for _, o := range outages {
		if o.End.IsZero() {
			skipped = append(skipped, Skipped{o.ID, "no end time"})
			continue
		}
		inj := Injection{ID: o.ID, Start: o.Begin, End: o.End}
		switch o.Scope {
		case ScopeASN:
			inj.EntityType, inj.EntityCode = entity.TypeASN, strconv.FormatUint(uint64(o.ASN), 10)
		default:
			cc, ok := reg.CountryByName(o.Country)
			if !ok {
				skipped = append(skipped, Skipped{o.ID, fmt.Sprintf("country %q: not a known country name", o.Country)})
				continue
			}
			inj.EntityType, inj.EntityCode = entity.TypeCountry, cc
			if o.Scope == ScopeRegion {
				inj.EntityType = entity.TypeRegion
				if ids := reg.RegionsByName(cc, o.Region); len(ids) == 1 {
					inj.EntityCode = ids[0]
				} else {
					inj.EntityCode = cc + "-" + strings.Join(strings.Fields(o.Region), "_")
				}
			}
		}
		unknown := true
		for _, ds := range Datasources {
			switch o.Seen[ds] {
			case Visible:
				inj.Datasources = append(inj.Datasources, ds)
				unknown = false
			case NotVisible:
				unknown = false
			}
		}
		if unknown {
			inj.Datasources = slices.Clone(Datasources)
		}
		if len(inj.Datasources) == 0 {
			skipped = append(skipped, Skipped{o.ID, "no datasource showed it"})
			continue
		}
		out = append(out, inj)
	}
	return out, skipped
}

// Within returns the injections that overlap [from, to).
func Within(inj []Injection, from, to time.Time) []Injection {
	var out []Injection
	for _, o := range inj {
		if o.End.After(from) && o.Start.Before(to) {
			out = append(out, o)
		}
	}
	return out
}

// continentOffset is a rough local-time offset per continent, for the cycles' phase.
var continentOffset = map[string]float64{"AF": 1, "AN": 0, "AS": 7, "EU": 1, "NA": -6, "OC": 10, "SA": -4}

// Entities lists every country reg knows (local time by continent), every region (its
// country's) and every AS (UTC offset from its code), each with a size picked from its code.
func Entities(reg *entity.Registry) []EntitySpec {
	var out []EntitySpec
	for _, cc := range reg.CountryCodes() {
		c, _ := reg.Country(cc)
		out = append(out, EntitySpec{Type: entity.TypeCountry, Code: cc, UTCOffset: continentOffset[c.Continent]})
	}
	for _, id := range reg.RegionIDs() {
		g, _ := reg.Region(id)
		c, _ := reg.Country(g.Country)
		out = append(out, EntitySpec{Type: entity.TypeRegion, Code: id, UTCOffset: continentOffset[c.Continent]})
	}
	for _, n := range reg.ASNs() {
		code := strconv.FormatUint(uint64(n), 10)
		out = append(out, EntitySpec{Type: entity.TypeASN, Code: code, UTCOffset: float64(int(hashKey(0, "tz", code)%24) - 11)})
	}
	return out
}

// RandomOutages draws n synthetic outages over the entities within [from, to): start uniform,
// duration log-uniform in [minDur, maxDur], datasources a non-empty random subset weighted like
// the catalogue (bgp 91 %, ping-slash24 99 %, ucsd-nt 73 %). Deterministic per seed;
// IDs are "syn-<seed>-<i>". Results are sorted by start.
func RandomOutages(seed uint64, entities []EntitySpec, n int, from, to time.Time, minDur, maxDur time.Duration) ([]Injection, error) {
	if len(entities) == 0 || n < 0 || !to.After(from) || minDur <= 0 || maxDur < minDur {
		return nil, fmt.Errorf("random outages: %d entities, n %d, window %s..%s, durations %s..%s: %w", len(entities), n, from, to, minDur, maxDur, ErrConfig)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	span := to.Sub(from)
	out := make([]Injection, 0, n)
	for i := range n {
		e := entities[rng.IntN(len(entities))]
		d := time.Duration(float64(minDur) * math.Pow(float64(maxDur)/float64(minDur), rng.Float64()))
		start := from.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute)
		var ds []string
		for len(ds) == 0 {
			for j, p := range []float64{0.91, 0.99, 0.73} { // as in the catalogue: share of marked rows each showed
				if rng.Float64() < p {
					ds = append(ds, Datasources[j])
				}
			}
		}
		out = append(out, Injection{ID: fmt.Sprintf("syn-%d-%d", seed, i), EntityType: e.Type, EntityCode: e.Code, Start: start, End: start.Add(d), Datasources: ds})
	}
	slices.SortStableFunc(out, func(a, b Injection) int { return a.Start.Compare(b.Start) })
	return out, nil
}
