package resource

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestInsideRanges compares InsideRanges with netip containment over
// random keys and the edges of each query prefix.
func TestInsideRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	randAddr := func(v6 bool) netip.Addr {
		if !v6 {
			return netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(4)) + 10, byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		switch rng.IntN(3) {
		case 0:
			b[0], b[1], b[2] = 0x20, 0x01, byte(rng.IntN(2))
		case 1:
			clear(b[:12]) // near the IPv4-mapped block
			b[10], b[11] = byte(rng.IntN(2))*0xff, 0xff
		}
		return netip.AddrFrom16(b)
	}
	randPrefix := func(v6 bool) Resource {
		a := randAddr(v6)
		return FromPrefix(netip.PrefixFrom(a, rng.IntN(a.BitLen()+1)).Masked())
	}
	var entries []Resource
	for range 4000 {
		entries = append(entries, randPrefix(rng.IntN(2) == 0))
	}
	queries := []Resource{
		FromPrefix(netip.MustParsePrefix("0.0.0.0/0")),
		FromPrefix(netip.MustParsePrefix("::/0")),
		FromPrefix(netip.MustParsePrefix("::/64")),
		FromPrefix(netip.MustParsePrefix("10.0.0.0/8")),
		FromPrefix(netip.MustParsePrefix("1.2.3.4/32")),
	}
	for range 300 {
		queries = append(queries, randPrefix(rng.IntN(2) == 0))
	}
	for _, q := range queries {
		// The query's own edges and its covering prefixes must stay out.
		entries = append(entries, q)
		if q.Prefix.Bits() > 0 {
			entries = append(entries, FromPrefix(netip.PrefixFrom(q.Prefix.Addr(), q.Prefix.Bits()-1).Masked()))
		}
		rs := q.InsideRanges()
		for i := 1; i < len(rs); i++ {
			if rs[i-1].Hi > rs[i].Lo {
				t.Fatalf("%v: ranges out of order: %q", q, rs)
			}
		}
		for _, e := range entries {
			want := e.Prefix.Bits() > q.Prefix.Bits() && q.Prefix.Contains(e.Prefix.Addr())
			got := false
			for _, kr := range rs {
				got = got || kr.Contains(e.Key())
			}
			if got != want {
				t.Errorf("inside %v: %v: got %v, want %v (ranges %q)", q, e, got, want, rs)
			}
		}
	}
	if r, _ := ParseDomain("example.com"); r.InsideRanges() != nil {
		t.Error("a domain has IP ranges inside it")
	}
}
