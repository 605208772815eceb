package telemetry

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/bgp"
	"github.com/netwarden/netwarden/internal/entity"
)

// Errors of Aggregator.Add.
var (
	ErrLate    = errors.New("observation for a closed bin")
	ErrNotIPv4 = errors.New("not an IPv4 address")
)

// Aggregator turns per-address observations into per-entity counts of
// distinct keys per bin (see the package doc). It is not safe for
// concurrent use.
type Aggregator struct {
	ds           string
	bin, grace   int64
	shift        uint // key = address >> shift: 8 counts /24s, 0 addresses
	asns, ctry   *bgp.Ranges
	open         map[int64]map[uint32]struct{}
	closedBefore int64 // bins starting before this are closed
	watermark    int64 // latest bin start seen
	started      bool
	known        map[ent]struct{}
	knownSorted  []ent
	counts       map[ent]int
}

type ent struct{ typ, code string }

// NewProbing counts responsive /24s (any address inside the /24 names it)
// per bin as datasource ping-slash24.
func NewProbing(bin, grace int64, asns, countries *bgp.Ranges) (*Aggregator, error) {
	return newAggregator(detect.PingSlash24, bin, grace, 8, asns, countries)
}

// NewTelescope counts distinct source IPv4 addresses per bin as datasource
// ucsd-nt.
func NewTelescope(bin, grace int64, asns, countries *bgp.Ranges) (*Aggregator, error) {
	return newAggregator(detect.UCSDNT, bin, grace, 0, asns, countries)
}

func newAggregator(ds string, bin, grace int64, shift uint, asns, countries *bgp.Ranges) (*Aggregator, error) {
	if bin <= 0 || grace < 0 {
		return nil, fmt.Errorf("%s aggregator: bin %d, grace %d: want bin > 0 and grace >= 0", ds, bin, grace)
	}
	if asns == nil && countries == nil {
		return nil, fmt.Errorf("%s aggregator: neither ASN nor country ranges given", ds)
	}
	return &Aggregator{ds: ds, bin: bin, grace: grace, shift: shift, asns: asns, ctry: countries,
		open: map[int64]map[uint32]struct{}{}, known: map[ent]struct{}{}, counts: map[ent]int{}}, nil
}

// Add records that addr was observed at unix second t, and appends to out
// the points of the bins this observation closed.
func (a *Aggregator) Add(t int64, addr netip.Addr, out []detect.Point) ([]detect.Point, error) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return out, fmt.Errorf("%s observation %s: %w", a.ds, addr, ErrNotIPv4)
	}
	if t < 0 {
		return out, fmt.Errorf("%s observation at %d: negative time", a.ds, t)
	}
	b := t - t%a.bin
	if a.started && b < a.closedBefore {
		return out, fmt.Errorf("%s observation at %d: bin %d closed: %w", a.ds, t, b, ErrLate)
	}
	v := addr.As4()
	key := (uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])) >> a.shift
	set := a.open[b]
	if set == nil {
		set = map[uint32]struct{}{}
		a.open[b] = set
	}
	set[key] = struct{}{}
	if !a.started || b > a.watermark {
		a.started = true
		a.watermark = b
		c := a.watermark - a.grace // bins ending by then close (as in detect)
		a.closedBefore = max(a.closedBefore, c-((c%a.bin)+a.bin)%a.bin)
		out = a.close(out, a.closedBefore)
	}
	return out, nil
}

// Flush closes every open bin and appends their points to out.
func (a *Aggregator) Flush(out []detect.Point) []detect.Point {
	if !a.started {
		return out
	}
	a.closedBefore = max(a.closedBefore, a.watermark+a.bin)
	return a.close(out, a.closedBefore)
}

// close emits the bins starting before limit, in time order.
func (a *Aggregator) close(out []detect.Point, limit int64) []detect.Point {
	var bins []int64
	for b := range a.open {
		if b < limit {
			bins = append(bins, b)
		}
	}
	slices.Sort(bins)
	for _, b := range bins {
		clear(a.counts)
		for key := range a.open[b] {
			s24 := key >> (8 - a.shift)
			if a.asns != nil {
				if c := a.asns.Lookup(s24); c != "" {
					a.counts[ent{entity.TypeASN, c}]++
				}
			}
			if a.ctry != nil {
				if c := a.ctry.Lookup(s24); c != "" {
					a.counts[ent{entity.TypeCountry, c}]++
				}
			}
		}
		delete(a.open, b)
		added := false
		for e := range a.counts {
			if _, ok := a.known[e]; !ok {
				a.known[e] = struct{}{}
				a.knownSorted = append(a.knownSorted, e)
				added = true
			}
		}
		if added {
			slices.SortFunc(a.knownSorted, func(x, y ent) int {
				return cmp.Or(cmp.Compare(x.typ, y.typ), cmp.Compare(x.code, y.code))
			})
		}
		for _, e := range a.knownSorted {
			out = append(out, detect.Point{Datasource: a.ds, EntityType: e.typ, EntityCode: e.code, Time: b, Value: float64(a.counts[e])})
		}
	}
	return out
}
