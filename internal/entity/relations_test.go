package entity

import (
	"cmp"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"
)

// The AS-country relations equal a slow reference: every ASN network against every City
// network (a full cross scan instead of NetworksWithin), overlaps summed.
func TestRelationsMatchCrossScan(t *testing.T) {
	r := loadShared(t)
	adb, err := maxminddb.Open(filepath.Join(shared, "GeoLite2-ASN-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	cdb, err := maxminddb.Open(filepath.Join(shared, "GeoLite2-City-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	type cityNet struct {
		cc  string
		rec cityRec
	}
	cityNets := map[string]cityNet{}
	var cityPrefixes []string
	for res := range cdb.Networks() {
		var c cityRec
		if err := res.Decode(&c); err != nil {
			t.Fatal(err)
		}
		cityNets[res.Prefix().String()] = cityNet{c.Country.ISOCode, c}
		cityPrefixes = append(cityPrefixes, res.Prefix().String())
	}
	want := map[uint32]map[string]uint64{}
	for res := range adb.Networks() {
		var a struct {
			Number uint32 `maxminddb:"autonomous_system_number"`
		}
		if err := res.Decode(&a); err != nil {
			t.Fatal(err)
		}
		ap := res.Prefix()
		for _, s := range cityPrefixes {
			cp := cityNets[s]
			p := mustPrefix(t, s)
			if !p.Overlaps(ap) || cp.cc == "" || a.Number == 0 {
				continue
			}
			small := p
			if ap.Bits() > p.Bits() {
				small = ap
			}
			addRel(&want, a.Number, cp.cc, ipv4Count(small))
		}
	}
	if len(want) == 0 {
		t.Fatal("reference found no AS located in any country: the test data cannot check relations")
	}
	got := r.rel.asnCountry
	if len(got) != len(want) {
		t.Errorf("%d ASes related to countries, reference %d", len(got), len(want))
	}
	for asn, ccs := range want {
		for cc, n := range ccs {
			if got[asn][cc] != n {
				t.Errorf("AS%d in %s: %d addresses, reference %d", asn, cc, got[asn][cc], n)
			}
			if r.rel.countryASN[cc][asn] != n {
				t.Errorf("reverse %s-AS%d: %d, reference %d", cc, asn, r.rel.countryASN[cc][asn], n)
			}
		}
	}
}

func TestQuery(t *testing.T) {
	r := loadShared(t)
	// The first AS located somewhere, to query its relations both ways.
	var asn uint32
	var cc string
	for a, ccs := range r.rel.asnCountry {
		for c := range ccs {
			if asn == 0 || a < asn {
				asn, cc = a, c
			}
		}
	}
	asnCode := strconv.FormatUint(uint64(asn), 10)
	has := func(es []Entity, typ, code string) bool {
		for _, e := range es {
			if e.Type == typ && e.Code == code {
				return true
			}
		}
		return false
	}
	tests := []struct {
		name  string
		q     Query
		check func(t *testing.T, es []Entity, more bool)
	}{
		{"country by code", Query{Type: TypeCountry, Codes: []string{"us"}, Limit: 10}, func(t *testing.T, es []Entity, more bool) {
			if len(es) != 1 || es[0].Code != "US" || es[0].Name != "United States of America" || more {
				t.Errorf("got %+v more=%v", es, more)
			}
		}},
		{"unknown code annotated", Query{Type: TypeASN, Codes: []string{"3307"}, Limit: 10}, func(t *testing.T, es []Entity, _ bool) {
			if len(es) != 1 || es[0].Known || es[0].Name != "AS3307" {
				t.Errorf("got %+v", es)
			}
		}},
		{"search by name", Query{Type: TypeCountry, Search: "venezuela", Limit: 10}, func(t *testing.T, es []Entity, _ bool) {
			if len(es) != 1 || es[0].Code != "VE" {
				t.Errorf("got %+v", es)
			}
		}},
		{"search by org", Query{Search: "telstra", Limit: 10}, func(t *testing.T, es []Entity, _ bool) {
			if !has(es, TypeASN, "1221") {
				t.Errorf("AS1221 (Telstra) not found: %+v", es)
			}
		}},
		{"paging", Query{Type: TypeCountry, Limit: 5, Page: 1}, func(t *testing.T, es []Entity, more bool) {
			all := r.CountryCodes()
			if len(es) != 5 || es[0].Code != all[5] || !more {
				t.Errorf("page 1 of 5: got %d from %v, more=%v", len(es), es[0].Code, more)
			}
		}},
		{"past the end", Query{Type: TypeCountry, Limit: 5, Page: 1000}, func(t *testing.T, es []Entity, more bool) {
			if len(es) != 0 || more {
				t.Errorf("got %d, more=%v", len(es), more)
			}
		}},
		{"country's regions", Query{Type: TypeRegion, RelatedTo: "country/US", Limit: 1000}, func(t *testing.T, es []Entity, _ bool) {
			if !has(es, TypeRegion, "5332921") {
				t.Errorf("California not related to US: %+v", es)
			}
			for _, e := range es {
				if e.Attrs["country_code"] != "US" {
					t.Errorf("%s related to US", e.Name)
				}
			}
		}},
		{"AS's countries", Query{RelatedTo: "asn/" + asnCode, Limit: 100}, func(t *testing.T, es []Entity, _ bool) {
			if !has(es, TypeCountry, cc) {
				t.Errorf("AS%d: %s missing in %+v", asn, cc, es)
			}
			for _, e := range es {
				if n, err := strconv.ParseUint(e.Attrs["ip_count"], 10, 64); err != nil || n == 0 && e.Type == TypeCountry {
					t.Errorf("%s ip_count %q", e.Code, e.Attrs["ip_count"])
				}
			}
		}},
		{"country's ASes", Query{Type: TypeASN, RelatedTo: "country/" + cc, Limit: 100}, func(t *testing.T, es []Entity, _ bool) {
			if !has(es, TypeASN, asnCode) {
				t.Errorf("%s: AS%d missing in %+v", cc, asn, es)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, more, err := r.Query(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, es, more)
		})
	}
}

func TestQueryBad(t *testing.T) {
	r := loadShared(t)
	for _, q := range []Query{
		{Type: "city", Limit: 1},
		{Codes: []string{"US"}, Limit: 1},
		{Type: TypeCountry, Codes: []string{"USA"}, Limit: 1},
		{RelatedTo: "country", Limit: 1},
		{RelatedTo: "planet/earth", Limit: 1},
		{RelatedTo: "asn/x", Limit: 1},
		{Limit: 0},
		{Limit: 1, Page: -1},
	} {
		if _, _, err := r.Query(q); !errors.Is(err, ErrBadCode) {
			t.Errorf("Query(%+v) = %v; want ErrBadCode", q, err)
		}
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Query's search and paging over the index equal a naive scan of every entity (Lookup of
// each code, filtered and cut into pages), on the shared data and on a registry of the real
// data's size.
func TestQueryMatchesNaiveScan(t *testing.T) {
	for name, r := range map[string]*Registry{"shared": loadShared(t), "big": bigRegistry()} {
		t.Run(name, func(t *testing.T) {
			var every []Entity
			for _, cc := range r.CountryCodes() {
				e, _ := r.Lookup(TypeCountry, cc)
				every = append(every, e)
			}
			ids := r.RegionIDs()
			slices.SortFunc(ids, func(a, b string) int {
				ga, gb := r.regions[a], r.regions[b]
				return cmp.Or(cmp.Compare(ga.Country, gb.Country), cmp.Compare(ga.Name, gb.Name), cmp.Compare(a, b))
			})
			for _, id := range ids {
				e, _ := r.Lookup(TypeRegion, id)
				every = append(every, e)
			}
			for _, n := range r.ASNs() {
				e, _ := r.Lookup(TypeASN, strconv.FormatUint(uint64(n), 10))
				every = append(every, e)
			}
			for _, q := range []Query{
				{Limit: 7, Page: 3}, {Type: TypeASN, Limit: 50, Page: 2}, {Type: TypeRegion, Limit: 1000},
				{Search: "net", Limit: 25, Page: 1}, {Search: "NETWORKS", Type: TypeASN, Limit: 3}, {Search: "1", Limit: 100000},
				{Search: "no such name", Limit: 5},
			} {
				var want []string
				for _, e := range every {
					hay := strings.ToLower(e.Name + " " + e.Code + " " + e.Attrs["org"])
					if (q.Type == "" || e.Type == q.Type) && strings.Contains(hay, strings.ToLower(q.Search)) {
						want = append(want, e.Type+"/"+e.Code)
					}
				}
				lo := min(len(want), q.Page*q.Limit)
				hi := min(len(want), lo+q.Limit)
				got, more, err := r.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				var gotKeys []string
				for _, e := range got {
					gotKeys = append(gotKeys, e.Type+"/"+e.Code)
				}
				if !slices.Equal(gotKeys, want[lo:hi]) || more != (hi < len(want)) {
					t.Errorf("%+v: got %d (more %v), naive %d of %d (more %v)", q, len(gotKeys), more, hi-lo, len(want), hi < len(want))
				}
			}
		})
	}
}

// Relations of codes without metadata are not cached: each distinct code a caller sends
// (any string is a valid region code) would otherwise stay in memory for good.
func TestRelatedCacheHoldsOnlyKnownEntities(t *testing.T) {
	r := loadShared(t)
	cached := func() int {
		n := 0
		r.idx.related.Range(func(any, any) bool { n++; return true })
		return n
	}
	for _, rel := range []string{"country/US", "region/5332921"} {
		if _, _, err := r.Query(Query{RelatedTo: rel, Limit: 10}); err != nil {
			t.Fatal(err)
		}
	}
	known := cached()
	if known != 2 {
		t.Fatalf("%d relations cached after two known entities' queries", known)
	}
	for i := range 1000 {
		for _, rel := range []string{"region/no-such-" + strconv.Itoa(i), "asn/" + strconv.Itoa(4_000_000_000+i), "country/Q" + string(rune('M'+i%14))} {
			es, _, err := r.Query(Query{RelatedTo: rel, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 0 {
				t.Errorf("%s: related to %+v", rel, es)
			}
		}
	}
	if n := cached(); n != known {
		t.Errorf("%d relations cached after unknown codes' queries, %d before", n, known)
	}
}
