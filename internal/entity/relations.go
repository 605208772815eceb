package entity

// Relations between entities and the entity query (GET /v2/entities/query).
//
// An AS is related to a country (and a region) when some of its address space is located
// there: the networks of the MaxMind ASN database are intersected with the networks of the
// City database, and the overlap's IPv4 address count is the relation's ip_count (IPv6
// space relates entities too but counts 0, as IODA counts IPv4 addresses). A region is
// related to its country. Relations are symmetric.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// relations are built by Load when both the ASN and the City database are configured.
type relations struct {
	asnCountry map[uint32]map[string]uint64 // asn -> country -> IPv4 addresses
	countryASN map[string]map[uint32]uint64
	asnRegion  map[uint32]map[string]uint64 // asn -> region geoname id -> IPv4 addresses
	regionASN  map[string]map[uint32]uint64
	regionIPs  map[string]uint64 // region -> IPv4 addresses located there
	countryIPs map[string]uint64
}

func (rel *relations) add(asn uint32, cc, region string, n uint64) {
	if cc != "" {
		addRel(&rel.asnCountry, asn, cc, n)
		addRel(&rel.countryASN, cc, asn, n)
	}
	if region != "" {
		addRel(&rel.asnRegion, asn, region, n)
		addRel(&rel.regionASN, region, asn, n)
	}
}

func addRel[K, V comparable](m *map[K]map[V]uint64, k K, v V, n uint64) {
	if *m == nil {
		*m = map[K]map[V]uint64{}
	}
	inner := (*m)[k]
	if inner == nil {
		inner = map[V]uint64{}
		(*m)[k] = inner
	}
	inner[v] += n
}

// ipv4Count is the number of IPv4 addresses of p (0 for IPv6).
func ipv4Count(p netip.Prefix) uint64 {
	if !p.Addr().Is4() && !p.Addr().Is4In6() {
		return 0
	}
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	if bits < 0 {
		bits = 0
	}
	return 1 << (32 - bits)
}

// cityRec is what relations read from a City database record.
type cityRec struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		GeoNameID uint32 `maxminddb:"geoname_id"`
	} `maxminddb:"subdivisions"`
}

func (c cityRec) region() string {
	if len(c.Subdivisions) == 0 || c.Subdivisions[0].GeoNameID == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(c.Subdivisions[0].GeoNameID), 10)
}

// loadRelations intersects the ASN database's networks with the City database's.
func (r *Registry) loadRelations(asnPath, cityPath string) error {
	adb, err := maxminddb.Open(asnPath)
	if err != nil {
		return fmt.Errorf("open asn db %q: %w", asnPath, err)
	}
	defer adb.Close()
	cdb, err := maxminddb.Open(cityPath)
	if err != nil {
		return fmt.Errorf("open city db %q: %w", cityPath, err)
	}
	defer cdb.Close()
	rel := &relations{}
	for res := range adb.Networks() {
		var a struct {
			Number uint32 `maxminddb:"autonomous_system_number"`
		}
		if err := res.Decode(&a); err != nil {
			return fmt.Errorf("read asn db %q at %s: %w", asnPath, res.Prefix(), err)
		}
		if a.Number == 0 {
			continue
		}
		ap := res.Prefix()
		// NetworksWithin yields the City networks inside ap, or the one network holding it.
		for cres := range cdb.NetworksWithin(ap) {
			var c cityRec
			if err := cres.Decode(&c); err != nil {
				return fmt.Errorf("read city db %q at %s: %w", cityPath, cres.Prefix(), err)
			}
			cp := cres.Prefix()
			overlap := cp
			if cp.Bits() < ap.Bits() {
				overlap = ap
			}
			rel.add(a.Number, c.Country.ISOCode, c.region(), ipv4Count(overlap))
		}
	}
	for res := range cdb.Networks() {
		var c cityRec
		if err := res.Decode(&c); err != nil {
			return fmt.Errorf("read city db %q at %s: %w", cityPath, res.Prefix(), err)
		}
		n := ipv4Count(res.Prefix())
		if c.Country.ISOCode != "" {
			if rel.countryIPs == nil {
				rel.countryIPs = map[string]uint64{}
			}
			rel.countryIPs[c.Country.ISOCode] += n
		}
		if id := c.region(); id != "" {
			if rel.regionIPs == nil {
				rel.regionIPs = map[string]uint64{}
			}
			rel.regionIPs[id] += n
		}
	}
	r.rel = rel
	return nil
}

// Query selects entities. Zero fields do not filter.
type Query struct {
	Type string // TypeCountry, TypeRegion, TypeASN
	// Codes are exact codes (needs Type); unknown valid codes are answered annotated.
	Codes []string
	// Search matches names, codes and organisations, case-insensitively.
	Search string
	// RelatedTo is "type/code": only entities related to that one.
	RelatedTo string
	Limit     int // ≥ 1
	Page      int // 0-based
}

// ParseRelated parses a relatedTo value "country/US" into its type and code.
func ParseRelated(s string) (typ, code string, err error) {
	typ, code, ok := strings.Cut(s, "/")
	if !ok || code == "" {
		return "", "", fmt.Errorf("relatedTo %q: want type/code, e.g. country/US or asn/3307: %w", s, ErrBadCode)
	}
	return typ, code, nil
}

// indexed is one known entity, annotated once at load, with the text a search matches.
type indexed struct {
	e   Entity
	hay string // lower-case name, code and organisation
}

// index lists every known entity in query order: countries by code, regions by country and
// name, ASes by number; pos finds one by type and code.
type index struct {
	all []indexed
	pos map[[2]string]int
	// related caches each entity's sorted relations ([]hit by "type/code"), computed on the
	// first query that asks.
	related sync.Map
}

// buildIndex annotates every known entity once (Load calls it last).
func (r *Registry) buildIndex() {
	ix := &index{pos: map[[2]string]int{}}
	add := func(typ, code string) {
		e, err := r.Lookup(typ, code)
		if err != nil {
			return
		}
		e = r.withIPs(e)
		ix.pos[[2]string{e.Type, e.Code}] = len(ix.all)
		ix.all = append(ix.all, indexed{e: e, hay: strings.ToLower(e.Name + "\x00" + e.Code + "\x00" + e.Attrs["org"])})
	}
	for _, cc := range r.CountryCodes() {
		add(TypeCountry, cc)
	}
	ids := r.RegionIDs()
	slices.SortFunc(ids, func(a, b string) int {
		ga, gb := r.regions[a], r.regions[b]
		return cmp.Or(cmp.Compare(ga.Country, gb.Country), cmp.Compare(ga.Name, gb.Name), cmp.Compare(a, b))
	})
	for _, id := range ids {
		add(TypeRegion, id)
	}
	for _, n := range r.ASNs() {
		add(TypeASN, strconv.FormatUint(uint64(n), 10))
	}
	r.idx = ix
}

// entity returns the indexed entity of typ and code, or looks it up (unknown codes).
func (r *Registry) entity(typ, code string) Entity {
	if r.idx != nil {
		if i, ok := r.idx.pos[[2]string{typ, code}]; ok {
			return r.idx.all[i].e
		}
	}
	e, _ := r.Lookup(typ, code)
	return e
}

// Query answers q: the matching entities ordered by type (country, region, asn), then by
// code (regions by country and name) or, for a relatedTo query, by shared addresses (most
// first); and whether more pages follow. The entities' Attrs are shared: do not modify them.
func (r *Registry) Query(q Query) ([]Entity, bool, error) {
	if q.Type != "" && q.Type != TypeCountry && q.Type != TypeRegion && q.Type != TypeASN {
		return nil, false, fmt.Errorf("entity type %q: want country, region or asn: %w", q.Type, ErrBadCode)
	}
	if len(q.Codes) > 0 && q.Type == "" {
		return nil, false, fmt.Errorf("entityCode needs entityType: %w", ErrBadCode)
	}
	if q.Limit < 1 || q.Page < 0 {
		return nil, false, fmt.Errorf("limit %d, page %d: want limit ≥ 1 and page ≥ 0: %w", q.Limit, q.Page, ErrBadCode)
	}
	needle := strings.ToLower(strings.TrimSpace(q.Search))
	codes := map[string]bool{}
	for _, c := range q.Codes {
		e, err := r.Lookup(q.Type, c)
		if err != nil {
			return nil, false, err
		}
		codes[e.Code] = true
	}
	from := q.Page * q.Limit
	var out []Entity
	n := 0
	// take counts a match and keeps it when it falls on the page; it reports whether the
	// page is full and one more match exists (then the scan can stop).
	take := func(e func() Entity) bool {
		if n >= from && n < from+q.Limit {
			out = append(out, e())
		}
		n++
		return n > from+q.Limit
	}
	match := func(typ, code, hay string) bool {
		return (q.Type == "" || typ == q.Type) && (len(codes) == 0 || codes[code]) && (needle == "" || strings.Contains(hay, needle))
	}
	switch {
	case q.RelatedTo != "":
		typ, code, err := ParseRelated(q.RelatedTo)
		if err != nil {
			return nil, false, err
		}
		to, err := r.Lookup(typ, code)
		if err != nil {
			return nil, false, fmt.Errorf("relatedTo: %w", err)
		}
		for _, h := range r.relatedCached(to) {
			e := r.entity(h.typ, h.code)
			hay := ""
			if needle != "" {
				hay = strings.ToLower(e.Name + "\x00" + e.Code + "\x00" + e.Attrs["org"])
			}
			if !match(e.Type, e.Code, hay) {
				continue
			}
			if take(func() Entity {
				e.Attrs = withAttr(e.Attrs, "ip_count", strconv.FormatUint(h.ips, 10))
				return e
			}) {
				break
			}
		}
	case len(codes) > 0:
		seen := map[string]bool{}
		for _, c := range q.Codes {
			e, _ := r.Lookup(q.Type, c)
			if seen[e.Code] || needle != "" && !strings.Contains(strings.ToLower(e.Name+"\x00"+e.Code+"\x00"+e.Attrs["org"]), needle) {
				continue
			}
			seen[e.Code] = true
			if take(func() Entity { return r.entity(e.Type, e.Code) }) {
				break
			}
		}
	default:
		if r.idx != nil {
			for i := range r.idx.all {
				x := &r.idx.all[i]
				if match(x.e.Type, x.e.Code, x.hay) && take(func() Entity { return x.e }) {
					break
				}
			}
		}
	}
	more := n > from+q.Limit
	if out == nil {
		out = []Entity{}
	}
	return out, more, nil
}

// withIPs adds the addresses located in a country or region.
func (r *Registry) withIPs(e Entity) Entity {
	if r.rel == nil {
		return e
	}
	var n uint64
	var ok bool
	switch e.Type {
	case TypeCountry:
		n, ok = r.rel.countryIPs[e.Code]
	case TypeRegion:
		n, ok = r.rel.regionIPs[e.Code]
	}
	if ok {
		e.Attrs = withAttr(e.Attrs, "ip_count", strconv.FormatUint(n, 10))
	}
	return e
}

func withAttr(attrs map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(attrs)+1)
	for a, b := range attrs {
		out[a] = b
	}
	out[k] = v
	return out
}

// hit is one related entity with the IPv4 addresses it shares.
type hit struct {
	rank      int // typeOrder of typ
	typ, code string
	ips       uint64
}

// relatedCached is related, computed once per indexed entity. Codes without metadata
// (any valid code is accepted, e.g. region/<anything>) are computed each time: caching them
// would let anonymous queries grow the cache without bound.
func (r *Registry) relatedCached(to Entity) []hit {
	if r.idx == nil {
		return r.related(to)
	}
	if _, known := r.idx.pos[[2]string{to.Type, to.Code}]; !known {
		return r.related(to)
	}
	k := to.Type + "/" + to.Code
	if v, ok := r.idx.related.Load(k); ok {
		return v.([]hit)
	}
	hits := r.related(to)
	r.idx.related.Store(k, hits)
	return hits
}

// related lists the entities related to to: a country's regions and ASes, an AS's
// countries and regions, a region's country and ASes; by type, then shared addresses.
func (r *Registry) related(to Entity) []hit {
	var hits []hit
	rel := r.rel
	if rel == nil {
		rel = &relations{}
	}
	addASNs := func(m map[uint32]uint64) {
		for n, ips := range m {
			hits = append(hits, hit{2, TypeASN, strconv.FormatUint(uint64(n), 10), ips})
		}
	}
	switch to.Type {
	case TypeCountry:
		for id, g := range r.regions {
			if g.Country == to.Code {
				hits = append(hits, hit{1, TypeRegion, id, rel.regionIPs[id]})
			}
		}
		addASNs(rel.countryASN[to.Code])
	case TypeASN:
		n, _ := strconv.ParseUint(to.Code, 10, 32)
		for cc, ips := range rel.asnCountry[uint32(n)] {
			hits = append(hits, hit{0, TypeCountry, cc, ips})
		}
		for id, ips := range rel.asnRegion[uint32(n)] {
			hits = append(hits, hit{1, TypeRegion, id, ips})
		}
	case TypeRegion:
		if g, ok := r.regions[to.Code]; ok {
			hits = append(hits, hit{0, TypeCountry, g.Country, rel.regionIPs[to.Code]})
		}
		addASNs(rel.regionASN[to.Code])
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(b.ips, a.ips); c != 0 {
			return c
		}
		return cmp.Compare(a.code, b.code)
	})
	return hits
}
