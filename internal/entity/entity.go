// Package entity holds the metadata of the entities outage signals are kept for: countries
// (ISO 3166-1 alpha-2 code, name, continent) from the datasets/country-codes CSV, autonomous
// systems (number, organisation) from a MaxMind ASN database and/or a CAIDA as2org file
// (AS name, organisation and its country; it overrides MaxMind's organisation), and regions
// (MaxMind City subdivisions: geoname id, ISO 3166-2 code, name, country) overridden or
// complemented by a user regions CSV. userfiles.go states the two files' formats; a bad
// line in either fails Load with the file and line.
//
// Contract: Lookup never rejects a syntactically valid code. A code without metadata is
// accepted and returned with Known=false and whatever can be said about it (an ASN's
// "AS<n>" name, a region's country prefix); only malformed codes (a country code that is
// not two letters, an ASN that is not a 32-bit number, an unknown entity type) are errors.
// A Registry is read-only after Load and safe for concurrent use.
package entity

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Entity types, as in IODA's metaType.
const (
	TypeCountry = "country"
	TypeRegion  = "region"
	TypeASN     = "asn"
)

// ErrBadCode marks a malformed entity code or an unknown entity type.
var ErrBadCode = errors.New("bad entity code")

// Entity is one country, region or AS with what is known about it.
type Entity struct {
	Type string // TypeCountry, TypeRegion or TypeASN
	Code string // "US", "3307", "5128638" (region: geoname id)
	Name string // "United States of America", "AS3307 (Broadnet AS)", "New York"
	// Known is false when the code is valid but no metadata source lists it.
	Known bool
	// Attrs: country: continent, continent_name, iso3, subregion; asn: org, and from an
	// as2org file as_name, org_id, org_country (when not empty); region:
	// country_code, iso_code (ISO 3166-2 subdivision code); any: note for unknown codes.
	Attrs map[string]string
}

// Country is one row of the country table.
type Country struct {
	Code      string // ISO 3166-1 alpha-2
	ISO3      string
	Name      string // official English short name
	Display   string // CLDR display name ("US", "Venezuela")
	Continent string // two-letter continent code: AF AN AS EU NA OC SA
	Subregion string // UN M49 sub-region name
}

// Continents maps continent codes to names.
var Continents = map[string]string{
	"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
	"NA": "North America", "OC": "Oceania", "SA": "South America",
}

// AS is one autonomous system.
type AS struct {
	Number     uint32
	Org        string // organisation name (as2org's org name, else MaxMind's)
	Name       string // as2org aut_name, e.g. "LVLT-1"
	OrgID      string // as2org org_id
	OrgCountry string // as2org org country (ISO 3166-1 alpha-2), may be empty
}

// Region is one first-level subdivision.
type Region struct {
	ID      string // geoname id
	ISOCode string // subdivision ISO code without country, e.g. "NY"
	Name    string
	Country string // ISO 3166-1 alpha-2
}

// Registry is the loaded metadata. Build it with Load; the zero value knows nothing and
// annotates every valid code as unknown.
type Registry struct {
	countries     map[string]Country // by alpha-2
	countryByName map[string]string  // normalised name -> alpha-2
	asns          map[uint32]AS
	regions       map[string]Region   // by geoname id
	regionByName  map[string][]string // country + "/" + normalised name -> ids
	regionByISO   map[string]string   // "US-NY" -> id
	rel           *relations          // nil without both MaxMind databases (relations.go)
	idx           *index              // every known entity, annotated (relations.go)
}

// Counts returns the number of countries, ASes and regions known.
func (r *Registry) Counts() (countries, asns, regions int) {
	return len(r.countries), len(r.asns), len(r.regions)
}

// Country returns the country with alpha-2 code cc (case-insensitive).
func (r *Registry) Country(cc string) (Country, bool) {
	c, ok := r.countries[strings.ToUpper(cc)]
	return c, ok
}

// ASN returns the AS with number n.
func (r *Registry) ASN(n uint32) (AS, bool) {
	a, ok := r.asns[n]
	return a, ok
}

// Region returns the region with geoname id id.
func (r *Registry) Region(id string) (Region, bool) {
	g, ok := r.regions[id]
	return g, ok
}

// CountryByName resolves a country name as written by people ("Russian Federation",
// "Ivory Coast (Cote d'Ivoire)", "Great Britain") to its alpha-2 code.
func (r *Registry) CountryByName(name string) (string, bool) {
	n := normName(name)
	if cc, ok := r.countryByName[n]; ok {
		return cc, true
	}
	if cc, ok := countryAliases[n]; ok {
		if _, known := r.countries[cc]; known {
			return cc, true
		}
	}
	// "Myanmar/Burma", "Kyrgyz Republic (Kyrgyzstan)": try each part.
	for _, part := range strings.FieldsFunc(name, func(c rune) bool { return c == '/' || c == '(' || c == ')' }) {
		if p := normName(part); p != n && p != "" {
			if cc, ok := r.countryByName[p]; ok {
				return cc, true
			}
			if cc, ok := countryAliases[p]; ok {
				return cc, true
			}
		}
	}
	return "", false
}

// RegionsByName returns the geoname ids of the regions of country cc named name.
func (r *Registry) RegionsByName(cc, name string) []string {
	return r.regionByName[strings.ToUpper(cc)+"/"+normName(name)]
}

// Lookup returns the entity of type typ with code code, annotated with what is known.
func (r *Registry) Lookup(typ, code string) (Entity, error) {
	code = strings.TrimSpace(code)
	switch typ {
	case TypeCountry:
		if len(code) != 2 || !isLetters(code) {
			return Entity{}, fmt.Errorf("country %q: want an ISO 3166-1 alpha-2 code: %w", code, ErrBadCode)
		}
		cc := strings.ToUpper(code)
		c, ok := r.countries[cc]
		if !ok {
			return Entity{Type: typ, Code: cc, Name: cc, Attrs: map[string]string{"note": "no metadata for this country code"}}, nil
		}
		return Entity{Type: typ, Code: cc, Name: c.Name, Known: true, Attrs: map[string]string{
			"continent": c.Continent, "continent_name": Continents[c.Continent], "iso3": c.ISO3, "subregion": c.Subregion,
		}}, nil
	case TypeASN:
		s := strings.TrimPrefix(strings.ToUpper(code), "AS")
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return Entity{}, fmt.Errorf("asn %q: want a 32-bit AS number: %w", code, ErrBadCode)
		}
		a, ok := r.asns[uint32(n)]
		e := Entity{Type: typ, Code: strconv.FormatUint(n, 10), Name: "AS" + strconv.FormatUint(n, 10)}
		if !ok {
			e.Attrs = map[string]string{"note": "no metadata for this AS number"}
			return e, nil
		}
		e.Known = true
		if a.Org != "" {
			e.Name = fmt.Sprintf("AS%d (%s)", n, a.Org)
		} else if a.Name != "" {
			e.Name = fmt.Sprintf("AS%d (%s)", n, a.Name)
		}
		e.Attrs = map[string]string{"org": a.Org}
		for k, v := range map[string]string{"as_name": a.Name, "org_id": a.OrgID, "org_country": a.OrgCountry} {
			if v != "" {
				e.Attrs[k] = v
			}
		}
		return e, nil
	case TypeRegion:
		if code == "" || strings.ContainsAny(code, " \t\n") {
			return Entity{}, fmt.Errorf("region %q: want a geoname id or an ISO 3166-2 code: %w", code, ErrBadCode)
		}
		id := code
		if mapped, ok := r.regionByISO[strings.ToUpper(code)]; ok {
			id = mapped
		}
		g, ok := r.regions[id]
		if !ok {
			e := Entity{Type: typ, Code: code, Name: code, Attrs: map[string]string{"note": "no metadata for this region"}}
			if cc, _, found := strings.Cut(code, "-"); found && len(cc) == 2 {
				if c, known := r.countries[strings.ToUpper(cc)]; known {
					e.Attrs["country_code"] = c.Code
				}
			}
			return e, nil
		}
		return Entity{Type: typ, Code: g.ID, Name: g.Name, Known: true, Attrs: map[string]string{
			"country_code": g.Country, "iso_code": g.ISOCode,
		}}, nil
	default:
		return Entity{}, fmt.Errorf("entity type %q: want country, region or asn: %w", typ, ErrBadCode)
	}
}

func isLetters(s string) bool {
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// normName lower-cases, folds "&" to "and", drops punctuation and a leading "the ".
func normName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, "&", " and ")
	var b strings.Builder
	space := false
	for _, c := range s {
		switch {
		case c == ' ' || c == '-' || c == ',' || c == '.' || c == '\'' || c == '’':
			space = b.Len() > 0
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(c)
		}
	}
	return strings.TrimPrefix(b.String(), "the ")
}

// countryAliases are names people use that the country table does not spell.
var countryAliases = map[string]string{
	"russia": "RU", "iran": "IR", "syria": "SY", "bolivia": "BO", "venezuela": "VE",
	"great britain": "GB", "united kingdom": "GB", "uk": "GB", "usa": "US",
	"united states of america usa": "US", "united states": "US",
	"ivory coast": "CI", "cote divoire": "CI", "côte divoire": "CI",
	"democratic republic of drc": "CD", "drc": "CD", "democratic republic of the congo": "CD",
	"congo": "CG", "swaziland": "SZ", "macedonia": "MK", "laos": "LA", "vietnam": "VN",
	"tanzania": "TZ", "moldova": "MD", "taiwan": "TW", "south korea": "KR", "north korea": "KP",
	"czech republic": "CZ", "cape verde": "CV", "timor leste": "TL", "east timor": "TL",
	"federated states of micronesia": "FM", "micronesia": "FM", "brunei": "BN",
	"brunei darussalam": "BN", "kyrgyz republic": "KG", "kyrgyzstan": "KG",
	"myanmar": "MM", "burma": "MM", "saint martin": "MF", "reunion": "RE", "curacao": "CW",
	"sao tome and principe": "ST", "palestine": "PS", "hong kong": "HK", "macau": "MO",
	"bosnia and herzegovina": "BA", "antigua and barbuda": "AG", "turkey": "TR",
	"bonaire sint eustatius and saba": "BQ", "saint kitts and nevis": "KN",
	"turks and caicos islands": "TC", "gambia": "GM", "bahamas": "BS",
}

// CountryCodes returns the known country codes, sorted.
func (r *Registry) CountryCodes() []string {
	return slices.Sorted(maps.Keys(r.countries))
}

// ASNs returns the known AS numbers, sorted.
func (r *Registry) ASNs() []uint32 {
	return slices.Sorted(maps.Keys(r.asns))
}

// RegionIDs returns the known region geoname ids, sorted.
func (r *Registry) RegionIDs() []string {
	return slices.Sorted(maps.Keys(r.regions))
}
