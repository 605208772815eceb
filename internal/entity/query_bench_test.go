package entity

import (
	"fmt"
	"strconv"
	"testing"
)

// bigRegistry has the size of the real MaxMind data: 250 countries, 4,000 regions and
// 80,000 ASes, each AS related to one country.
func bigRegistry() *Registry {
	r := &Registry{countries: map[string]Country{}, asns: map[uint32]AS{}, regions: map[string]Region{}, rel: &relations{}}
	for i := range 250 {
		cc := string(rune('A'+i/26)) + string(rune('A'+i%26))
		r.countries[cc] = Country{Code: cc, Name: "Country " + cc, Continent: "EU"}
	}
	for i := range 4000 {
		id := strconv.Itoa(1_000_000 + i)
		r.regions[id] = Region{ID: id, Name: fmt.Sprintf("Region %d", i), Country: "AB"}
	}
	for i := range 80_000 {
		n := uint32(1000 + i)
		r.asns[n] = AS{Number: n, Org: fmt.Sprintf("Org %d Networks", i)}
		r.rel.add(n, "AB", "", 256)
	}
	r.buildIndex()
	return r
}

// BenchmarkQuery: a name search and a relatedTo query over a registry of the real data's
// size, beside a single Lookup (the baseline: one entity annotated).
func BenchmarkQuery(b *testing.B) {
	r := bigRegistry()
	for _, bc := range []struct {
		name string
		q    *Query
	}{
		{"lookup", nil},
		{"search", &Query{Search: "org 7999 ", Limit: 100}},
		{"type-page", &Query{Type: TypeASN, Limit: 100, Page: 10}},
		{"related", &Query{RelatedTo: "country/AB", Type: TypeASN, Limit: 100}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if bc.q == nil {
					if _, err := r.Lookup(TypeASN, "3307"); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, _, err := r.Query(*bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
