package bgp

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Entity types of Points.
const (
	EntityASN     = "asn"
	EntityCountry = "country"
)

// Point is one value of the BGP signal: the number of /24s of an entity
// visible to more than half of the full-feed peers at the end of the bin
// starting at Time (unix seconds). It maps onto detect.Point with
// Datasource "bgp".
type Point struct {
	EntityType string // EntityASN or EntityCountry
	EntityCode string // ASN in decimal, or ISO 3166 alpha-2 code
	Time       int64
	Value      float64
}

// Config of the visibility signal.
type Config struct {
	// Bin is the bin length (IODA: 5 minutes).
	Bin time.Duration `yaml:"bin"`
	// FullFeedFraction: a peer is full-feed when it has at least this
	// fraction of the IPv4 routes (<= /24) of the peer with the most.
	FullFeedFraction float64 `yaml:"full_feed_fraction"`
	// VisibleFraction: a /24 is visible when strictly more than this
	// fraction of the full-feed peers have a route covering it.
	VisibleFraction float64 `yaml:"visible_fraction"`
	// MaxFill is how many bins without Elems after a bin repeat its state;
	// a longer gap (a jump between files) leaves the bins missing.
	MaxFill int `yaml:"max_fill"`
}

// Defaults returns IODA's settings.
func Defaults() Config {
	return Config{Bin: 5 * time.Minute, FullFeedFraction: 0.5, VisibleFraction: 0.5, MaxFill: 12}
}

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	if c.Bin < time.Second || c.Bin%time.Second != 0 {
		errs = append(errs, fmt.Errorf("bgp.bin %s: want a whole number of seconds >= 1s", c.Bin))
	}
	if c.FullFeedFraction <= 0 || c.FullFeedFraction > 1 {
		errs = append(errs, fmt.Errorf("bgp.full_feed_fraction %v: want (0, 1]", c.FullFeedFraction))
	}
	if c.VisibleFraction < 0 || c.VisibleFraction >= 1 {
		errs = append(errs, fmt.Errorf("bgp.visible_fraction %v: want [0, 1)", c.VisibleFraction))
	}
	if c.MaxFill < 0 {
		errs = append(errs, fmt.Errorf("bgp.max_fill %d: want >= 0", c.MaxFill))
	}
	return errors.Join(errs...)
}

type peerKey struct {
	ip netip.Addr
	as uint32
}

type peerRIB struct {
	routes map[netip.Prefix]uint32 // IPv4 routes <= /24 -> origin AS
	union  [][2]uint32             // cached union of the routes' /24 ranges
	dirty  bool
}

func (p *peerRIB) intervals() [][2]uint32 {
	if !p.dirty {
		return p.union
	}
	iv := p.union[:0]
	for pfx := range p.routes {
		s, e := span24(pfx)
		iv = append(iv, [2]uint32{s, e})
	}
	slices.SortFunc(iv, func(a, b [2]uint32) int { return cmp.Compare(a[0], b[0]) })
	out := iv[:0]
	for _, x := range iv {
		if n := len(out); n > 0 && x[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], x[1])
			continue
		}
		out = append(out, x)
	}
	p.union, p.dirty = out, false
	return out
}

// Visibility keeps per-peer RIBs from Elems and produces the signal per bin.
// It is not safe for concurrent use.
type Visibility struct {
	cfg       Config
	asns      *Ranges // pfx2as; nil: origin AS of the routes
	countries *Ranges // nil: no country points
	peers     map[peerKey]*peerRIB
	bin       int64
	started   bool
	// route-origin ranges, rebuilt only after a route changed
	originsCache  *Ranges
	originsHint   int
	routesChanged bool
	known         map[string]*knownSet // per entity type, entities seen so far: emitted as 0 when they vanish
}

type knownSet struct {
	set    map[string]struct{}
	sorted []string
}

// NewVisibility returns a Visibility; asns (pfx2as) and countries may be nil.
func NewVisibility(cfg Config, asns, countries *Ranges) (*Visibility, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Visibility{cfg: cfg, asns: asns, countries: countries,
		peers: map[peerKey]*peerRIB{}, known: map[string]*knownSet{}}, nil
}

// Add applies e. When e's time is in a later bin than the previous Elems,
// the points of the bins that ended are appended to out first (up to
// MaxFill bins without Elems repeat the state before them). An Elem older
// than the current bin is applied to the current state.
func (v *Visibility) Add(e Elem, out []Point) []Point {
	step := int64(v.cfg.Bin / time.Second)
	bin := int64(e.Time) - int64(e.Time)%step
	if !v.started {
		v.bin, v.started = bin, true
	}
	if bin > v.bin {
		snap := v.snapshot(v.bin)
		out = append(out, snap...)
		for b := v.bin + step; b < bin && b <= v.bin+int64(v.cfg.MaxFill)*step; b += step { // quiet bins: same state
			for _, p := range snap {
				p.Time = b
				out = append(out, p)
			}
		}
		v.bin = bin
	}
	v.apply(e)
	return out
}

// Flush appends the points of the current bin.
func (v *Visibility) Flush(out []Point) []Point {
	if !v.started {
		return out
	}
	return append(out, v.snapshot(v.bin)...)
}

func (v *Visibility) apply(e Elem) {
	k := peerKey{e.PeerIP, e.PeerAS}
	p := v.peers[k]
	switch e.Type {
	case State:
		if e.NewState != 6 && p != nil && len(p.routes) > 0 { // not Established: the session's routes are gone
			clear(p.routes)
			p.dirty, v.routesChanged = true, true
		}
		return
	case RIB, Announce, Withdraw:
	default:
		return
	}
	if !e.Prefix.Addr().Is4() || e.Prefix.Bits() > 24 {
		return
	}
	if p == nil {
		p = &peerRIB{routes: map[netip.Prefix]uint32{}}
		v.peers[k] = p
	}
	if e.Type == Withdraw {
		if _, ok := p.routes[e.Prefix]; ok {
			delete(p.routes, e.Prefix)
			p.dirty, v.routesChanged = true, true
		}
		return
	}
	as := e.Attrs.OriginAS()
	old, ok := p.routes[e.Prefix]
	if !ok {
		p.dirty = true
	}
	if !ok || old != as {
		v.routesChanged = true
	}
	p.routes[e.Prefix] = as
}

// Visible returns the sorted disjoint /24 ranges visible to more than
// VisibleFraction of the full-feed peers, and the number of those peers.
func (v *Visibility) Visible() ([][2]uint32, int) {
	most := 0
	for _, p := range v.peers {
		most = max(most, len(p.routes))
	}
	type ev struct {
		at    uint32
		delta int
	}
	var evs []ev
	full := 0
	for _, p := range v.peers {
		if most == 0 || float64(len(p.routes)) < v.cfg.FullFeedFraction*float64(most) {
			continue
		}
		full++
		for _, x := range p.intervals() {
			evs = append(evs, ev{x[0], 1}, ev{x[1], -1})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return cmp.Compare(a.at, b.at) })
	need := int(v.cfg.VisibleFraction*float64(full)) + 1 // strictly more than the fraction
	var out [][2]uint32
	count := 0
	for i := 0; i < len(evs); {
		at := evs[i].at
		before := count
		for ; i < len(evs) && evs[i].at == at; i++ {
			count += evs[i].delta
		}
		switch {
		case before < need && count >= need:
			out = append(out, [2]uint32{at, 0})
		case before >= need && count < need:
			out[len(out)-1][1] = at
		}
	}
	return out, full
}

// origins flattens the routes of all peers (most specific wins; a prefix
// with several origins gets the one most peers see, then the lowest).
func (v *Visibility) origins() *Ranges {
	if v.originsCache != nil && !v.routesChanged {
		return v.originsCache
	}
	origin := make(map[netip.Prefix]uint32, v.originsHint)
	var conflict map[netip.Prefix]struct{}
	for _, p := range v.peers {
		for pfx, as := range p.routes {
			f, ok := origin[pfx]
			switch {
			case !ok:
				origin[pfx] = as
			case f != as:
				if conflict == nil {
					conflict = map[netip.Prefix]struct{}{}
				}
				conflict[pfx] = struct{}{}
			}
		}
	}
	for pfx := range conflict { // rare (MOAS): count the peers' votes
		votes := map[uint32]int{}
		for _, p := range v.peers {
			if as, ok := p.routes[pfx]; ok {
				votes[as]++
			}
		}
		best, bestN := uint32(0), 0
		for as, n := range votes {
			if n > bestN || (n == bestN && as < best) {
				best, bestN = as, n
			}
		}
		origin[pfx] = best
	}
	ps := make([]prefixCode, 0, len(origin))
	for pfx, as := range origin {
		if as == 0 {
			continue // AS_SET origin or empty path: no single origin
		}
		s, e := span24(pfx)
		ps = append(ps, prefixCode{start: s, end: e, bits: pfx.Bits(), code: strconv.FormatUint(uint64(as), 10)})
	}
	v.originsHint = len(origin)
	v.originsCache, v.routesChanged = flatten(ps), false
	return v.originsCache
}

// countBy sums the lengths of the intersections of vis with r, per code.
func countBy(vis [][2]uint32, r *Ranges) map[string]int {
	out := map[string]int{}
	i, j := 0, 0
	for i < len(vis) && j < r.Len() {
		s := max(vis[i][0], r.Start[j])
		e := min(vis[i][1], r.End[j])
		if s < e {
			out[r.Code[j]] += int(e - s)
		}
		if vis[i][1] < r.End[j] {
			i++
		} else {
			j++
		}
	}
	return out
}

func (v *Visibility) snapshot(bin int64) []Point {
	vis, _ := v.Visible()
	asns := v.asns
	if asns == nil {
		asns = v.origins()
	}
	var out []Point
	out = v.entities(out, EntityASN, countBy(vis, asns), bin)
	if v.countries != nil {
		out = v.entities(out, EntityCountry, countBy(vis, v.countries), bin)
	}
	return out
}

// entities appends a point for every entity of type typ seen so far, in
// code order, updating the sorted list of known codes.
func (v *Visibility) entities(out []Point, typ string, counts map[string]int, bin int64) []Point {
	k := v.known[typ]
	if k == nil {
		k = &knownSet{set: map[string]struct{}{}}
		v.known[typ] = k
	}
	added := false
	for code := range counts {
		if _, ok := k.set[code]; !ok {
			k.set[code] = struct{}{}
			k.sorted = append(k.sorted, code)
			added = true
		}
	}
	if added {
		slices.Sort(k.sorted)
	}
	for _, code := range k.sorted {
		out = append(out, Point{EntityType: typ, EntityCode: code, Time: bin, Value: float64(counts[code])})
	}
	return out
}
