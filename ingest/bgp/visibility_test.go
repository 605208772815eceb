package bgp

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gaissmai/bart"
	"github.com/oschwald/maxminddb-golang/v2"
)

const geoDir = "../../../shared/data/geo"

// ev builds an Elem from "t peer A|W prefix origin", e.g. "0 p1 A 10.0.0.0/22 64500".
func ev(t *testing.T, s string) Elem {
	t.Helper()
	f := strings.Fields(s)
	sec, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("192.0.2." + strings.TrimPrefix(f[1], "p"))
	e := Elem{Time: uint32(sec), PeerIP: peer, PeerAS: 65000}
	switch f[2] {
	case "A":
		as, _ := strconv.Atoi(f[4])
		e.Type, e.Prefix = Announce, netip.MustParsePrefix(f[3])
		e.Attrs = &Attrs{ASPath: []Segment{{ASN: []uint32{65000, uint32(as)}}}}
	case "W":
		e.Type, e.Prefix = Withdraw, netip.MustParsePrefix(f[3])
	case "DOWN":
		e.Type, e.NewState = State, 1
	}
	return e
}

// TestVisibilityBehaviour: each case is a list of events and the expected
// ASN series, "bin:asn=value ...".
func TestVisibilityBehaviour(t *testing.T) {
	cases := []struct {
		name   string
		events []string
		want   string
	}{
		{"two of three peers see a /22", []string{
			"0 p1 A 10.0.0.0/22 64500", "0 p2 A 10.0.0.0/22 64500", "0 p3 A 11.0.0.0/24 64501",
			"10 p3 A 12.0.0.0/24 64502", "10 p1 A 12.0.0.0/24 64502", "10 p2 A 12.0.0.0/24 64502"},
			"0:64500=4 0:64502=1"},
		{"one of three is not more than half: no entity yet", []string{
			"0 p1 A 10.0.0.0/22 64500", "0 p2 A 11.0.0.0/24 64501", "0 p3 A 12.0.0.0/24 64502"},
			""},
		{"withdrawal in the next bin drops to 0, entity kept", []string{
			"0 p1 A 10.0.0.0/22 64500", "0 p2 A 10.0.0.0/22 64500",
			"0 p1 A 11.0.0.0/24 64501", "0 p2 A 11.0.0.0/24 64501",
			"400 p1 W 10.0.0.0/22"},
			"0:64500=4 0:64501=1 300:64500=0 300:64501=1"},
		{"a peer left with no routes is no longer full-feed", []string{
			"0 p1 A 10.0.0.0/22 64500", "0 p2 A 10.0.0.0/22 64500",
			"400 p1 W 10.0.0.0/22"},
			"0:64500=4 300:64500=4"},
		{"quiet bins repeat the state", []string{
			"0 p1 A 10.0.0.0/23 64500", "0 p2 A 10.0.0.0/23 64500",
			"0 p1 A 11.0.0.0/24 64501", "0 p2 A 11.0.0.0/24 64501",
			"900 p1 W 10.0.0.0/23"},
			"0:64500=2 0:64501=1 300:64500=2 300:64501=1 600:64500=2 600:64501=1 900:64500=0 900:64501=1"},
		{"a long gap leaves bins missing", []string{
			"0 p1 A 10.0.0.0/24 64500", "100000 p1 A 10.0.1.0/24 64500"},
			"0:64500=1 300:64500=1 600:64500=1 900:64500=1 1200:64500=1 1500:64500=1 1800:64500=1 " +
				"2100:64500=1 2400:64500=1 2700:64500=1 3000:64500=1 3300:64500=1 3600:64500=1 99900:64500=2"},
		{"origin change moves the /24s to the new ASN", []string{
			"0 p1 A 10.0.0.0/24 64500", "0 p2 A 10.0.0.0/24 64500",
			"400 p1 A 10.0.0.0/24 64666", "400 p2 A 10.0.0.0/24 64666"},
			"0:64500=1 300:64500=0 300:64666=1"},
		{"origin of a prefix is the one most peers see", []string{
			"0 p1 A 10.0.0.0/24 64500", "0 p2 A 10.0.0.0/24 64666", "0 p3 A 10.0.0.0/24 64666"},
			"0:64666=1"},
		{"more specific route takes its /24s", []string{
			"0 p1 A 10.0.0.0/22 64500", "0 p2 A 10.0.0.0/22 64500",
			"0 p1 A 10.0.1.0/24 64510", "0 p2 A 10.0.1.0/24 64510"},
			"0:64500=3 0:64510=1"},
		{"covered by different prefixes per peer", []string{
			"0 p1 A 10.0.0.0/22 64500", "0 p2 A 10.0.2.0/23 64500", "0 p3 A 10.0.2.0/23 64500"},
			"0:64500=2"},
		{"sessions down leave their peers out; the remaining full-feed peer decides", []string{
			"0 p1 A 10.0.0.0/24 64500", "0 p2 A 10.0.0.0/24 64500", "0 p3 A 10.0.0.0/24 64500",
			"310 p1 DOWN", "320 p2 DOWN"},
			"0:64500=1 300:64500=1"},
		{"longer than /24 and IPv6 ignored", []string{
			"0 p1 A 10.0.0.0/25 64500", "0 p1 A 2001:db8::/32 64500", "0 p1 A 10.1.0.0/24 64501"},
			"0:64501=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := NewVisibility(Defaults(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var pts []Point
			for _, s := range c.events {
				pts = v.Add(ev(t, s), pts)
			}
			pts = v.Flush(pts)
			var got []string
			for _, p := range pts {
				got = append(got, fmt.Sprintf("%d:%s=%g", p.Time, p.EntityCode, p.Value))
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Fatalf("got  %s\nwant %s", g, c.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Config{
		{Bin: 0, FullFeedFraction: 0.5, VisibleFraction: 0.5},
		{Bin: 1500 * time.Millisecond, FullFeedFraction: 0.5, VisibleFraction: 0.5},
		{Bin: time.Minute, FullFeedFraction: 0, VisibleFraction: 0.5},
		{Bin: time.Minute, FullFeedFraction: 0.5, VisibleFraction: 1},
		{Bin: time.Minute, FullFeedFraction: 0.5, VisibleFraction: 0.5, MaxFill: -1},
	}
	for _, c := range bad {
		if _, err := NewVisibility(c, nil, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// reference computes the signal of one RIB the slow obvious way: a count per
// /24 from each full-feed peer's bitmap, longest-prefix match (bart) for the
// ASN, a map from /24 to the first country network in it.
func reference(t *testing.T, elems []Elem, cfg Config, pfx2as string, countryDB string) map[string]float64 {
	t.Helper()
	type key struct {
		ip netip.Addr
		as uint32
	}
	routes := map[key]map[netip.Prefix]uint32{}
	for _, e := range elems {
		if !e.Prefix.Addr().Is4() || e.Prefix.Bits() > 24 {
			continue
		}
		k := key{e.PeerIP, e.PeerAS}
		if routes[k] == nil {
			routes[k] = map[netip.Prefix]uint32{}
		}
		routes[k][e.Prefix] = e.Attrs.OriginAS()
	}
	most := 0
	for _, r := range routes {
		most = max(most, len(r))
	}
	count := make([]uint8, Slash24s)
	full := 0
	for _, r := range routes {
		if float64(len(r)) < cfg.FullFeedFraction*float64(most) {
			continue
		}
		full++
		seen := make([]bool, Slash24s)
		for p := range r {
			a := p.Addr().As4()
			s := int(a[0])<<16 | int(a[1])<<8 | int(a[2])
			for i := s; i < s+1<<(24-p.Bits()); i++ {
				seen[i] = true
			}
		}
		for i, ok := range seen {
			if ok {
				count[i]++
			}
		}
	}
	var lpm bart.Table[string]
	if pfx2as == "" { // route origins, the one most peers see, then the lowest
		votes := map[netip.Prefix]map[uint32]int{}
		for _, r := range routes {
			for p, as := range r {
				if votes[p] == nil {
					votes[p] = map[uint32]int{}
				}
				votes[p][as]++
			}
		}
		for p, m := range votes {
			best, bestN := uint32(0), 0
			for as, n := range m {
				if n > bestN || (n == bestN && as < best) {
					best, bestN = as, n
				}
			}
			if best != 0 {
				lpm.Insert(p, strconv.FormatUint(uint64(best), 10))
			}
		}
	} else {
		loadPfx2ASRef(t, &lpm, pfx2as)
	}
	db, err := maxminddb.Open(countryDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	country := map[int]string{}
	for res := range db.Networks() {
		var rec struct {
			Country struct {
				ISOCode string `maxminddb:"iso_code"`
			} `maxminddb:"country"`
		}
		if err := res.Decode(&rec); err != nil || rec.Country.ISOCode == "" {
			continue
		}
		p := res.Prefix()
		if !p.Addr().Is4() {
			if !p.Addr().Is4In6() || p.Bits() < 96 {
				continue
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		a := p.Addr().As4()
		s := int(a[0])<<16 | int(a[1])<<8 | int(a[2])
		n := 1
		if p.Bits() < 24 {
			n = 1 << (24 - p.Bits())
		}
		for i := s; i < s+n; i++ {
			if _, ok := country[i]; !ok {
				country[i] = rec.Country.ISOCode
			}
		}
	}
	out := map[string]float64{}
	for i, c := range count {
		if float64(c) <= cfg.VisibleFraction*float64(full) {
			continue
		}
		if as, ok := lpm.Lookup(netip.AddrFrom4([4]byte{byte(i >> 16), byte(i >> 8), byte(i), 0})); ok {
			out["asn/"+as]++
		}
		if cc, ok := country[i]; ok {
			out["country/"+cc]++
		}
	}
	return out
}

func loadPfx2ASRef(t *testing.T, lpm *bart.Table[string], path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		bits, _ := strconv.Atoi(fs[1])
		p := netip.PrefixFrom(netip.MustParseAddr(fs[0]), bits)
		if p.Addr().Is4() && bits <= 24 {
			lpm.Insert(p, strings.FieldsFunc(fs[2], func(r rune) bool { return r == '_' || r == ',' })[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestVisibilityAgainstReference: the real 2002 RIB dump with the pfx2as
// table and the MaxMind country test DB, against the slow reference.
func TestVisibilityAgainstReference(t *testing.T) {
	r, err := Open(needData(t, "bview.20020722.2337.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	elems := readAll(t, r)
	pfx2as := filepath.Join(geoDir, "routeviews-rv2-20170329-0200.pfx2as.gz")
	countryDB := filepath.Join(geoDir, "GeoIP2-Country-Test.mmdb")
	if _, err := os.Stat(pfx2as); err != nil {
		t.Skipf("shared geo data absent: %v", err)
	}
	asns, err := LoadPfx2AS(pfx2as)
	if err != nil {
		t.Fatal(err)
	}
	countries, err := LoadCountries(countryDB)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ff     float64
		pfx2as bool
	}{{0.5, true}, {0.001, true}, {0.5, false}} {
		t.Run(fmt.Sprintf("full_feed_fraction=%g,pfx2as=%v", c.ff, c.pfx2as), func(t *testing.T) {
			ff := c.ff
			cfg := Defaults()
			cfg.FullFeedFraction = ff
			as, pf := asns, pfx2as
			if !c.pfx2as {
				as, pf = nil, ""
			}
			v, err := NewVisibility(cfg, as, countries)
			if err != nil {
				t.Fatal(err)
			}
			var pts []Point
			for _, e := range elems {
				pts = v.Add(e, pts)
			}
			pts = v.Flush(pts)
			got := map[string]float64{}
			for _, p := range pts {
				if p.Value != 0 {
					got[p.EntityType+"/"+p.EntityCode] = p.Value
				}
			}
			want := reference(t, elems, cfg, pf, countryDB)
			total, nc := 0.0, 0
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: got %g, want %g", k, got[k], w)
				}
				if strings.HasPrefix(k, "asn/") {
					total += w
				} else {
					nc++
				}
			}
			for k, g := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("%s: got %g, not in the reference", k, g)
				}
			}
			t.Logf("%d entities, %g visible /24s attributed to ASNs, %d countries", len(want), total, nc)
			if ff == 0.5 && (total < 1e6 || nc == 0) {
				t.Fatalf("implausible signal: %g /24s, %d countries", total, nc)
			}
		})
	}
}
