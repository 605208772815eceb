package watch

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/gaissmai/bart"
)

// benchN is the number of watched prefixes: 1 M by default, 10 M with
// NETWARDEN_WATCH_N=10000000 (bench/README.md).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("NETWARDEN_WATCH_N")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// watched draws a telco-like mix: 70% IPv4 /32s, 20% IPv4 /20../30,
// 10% IPv6 /48../128, spread over 1000 accounts (a few big ones), ~3%
// of prefixes watched by two accounts.
func watched(rng *rand.Rand) (Account, netip.Prefix) {
	a := Account(rng.IntN(1000))
	if rng.IntN(4) == 0 {
		a = Account(rng.IntN(5)) // big accounts
	}
	switch r := rng.IntN(10); {
	case r < 7:
		return a, netip.PrefixFrom(netip.AddrFrom4(rand4(rng)), 32)
	case r < 9:
		p, _ := netip.AddrFrom4(rand4(rng)).Prefix(20 + rng.IntN(11))
		return a, p
	default:
		var b [16]byte
		b[0], b[1] = 0x20, 0x01
		for i := 2; i < 16; i++ {
			b[i] = byte(rng.Uint32())
		}
		p, _ := netip.AddrFrom16(b).Prefix([]int{48, 56, 64, 128}[rng.IntN(4)])
		return a, p
	}
}

func rand4(rng *rand.Rand) [4]byte {
	v := rng.Uint32()
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

type fixture struct {
	tab     *Table
	bare    *bart.Table[uint32]
	ips     []netip.Prefix // listed addresses to match: half inside watched space
	cidrs   []netip.Prefix
	perPfx  float64
	barePer float64
}

var fix *fixture

func loadFixture(b *testing.B) *fixture {
	if fix != nil {
		return fix
	}
	n := benchN()
	rng := rand.New(rand.NewPCG(1, 2))
	entries := make([]struct {
		a Account
		p netip.Prefix
	}, n)
	for i := range entries {
		entries[i].a, entries[i].p = watched(rng)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	tab := New()
	for i, e := range entries {
		if _, _, err := tab.Add(e.a, e.p); err != nil {
			b.Fatal(err)
		}
		if i%33 == 0 { // watched by a second account too
			if _, _, err := tab.Add(e.a+1, e.p); err != nil {
				b.Fatal(err)
			}
		}
	}
	h1 := heap()
	bare := new(bart.Table[uint32])
	for _, e := range entries {
		bare.Insert(e.p, uint32(e.a))
	}
	h2 := heap()
	f := &fixture{tab: tab, bare: bare}
	f.perPfx = float64(h1-h0) / float64(tab.Len())
	f.barePer = float64(h2-h1) / float64(bare.Size())
	for range 1 << 16 {
		e := entries[rng.IntN(n)]
		if rng.IntN(2) == 0 && e.p.Addr().Is4() { // an address inside a watched entry
			f.ips = append(f.ips, netip.PrefixFrom(e.p.Addr(), 32))
		} else {
			f.ips = append(f.ips, netip.PrefixFrom(netip.AddrFrom4(rand4(rng)), 32))
		}
		p, _ := netip.AddrFrom4(rand4(rng)).Prefix(16 + rng.IntN(9))
		f.cidrs = append(f.cidrs, p)
	}
	fix = f
	runtime.KeepAlive(entries)
	return f
}

// BenchmarkMatch: the alert matcher on listed addresses (the bulk of
// blocklist changes) and CIDRs, beside a bare bart longest-prefix lookup
// of the same addresses on a bart table of the same prefixes.
func BenchmarkMatch(b *testing.B) {
	f := loadFixture(b)
	b.Run("bare-bart-lookup", func(b *testing.B) {
		hits := 0
		for i := 0; i < b.N; i++ {
			if _, ok := f.bare.Lookup(f.ips[i&(1<<16-1)].Addr()); ok {
				hits++
			}
		}
		b.ReportMetric(f.barePer, "bytes/prefix")
		b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
	})
	b.Run("match-ip", func(b *testing.B) {
		dst := make([]Match, 0, 16)
		hits := 0
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dst = f.tab.AppendMatches(dst[:0], f.ips[i&(1<<16-1)])
			hits += len(dst)
		}
		b.ReportMetric(f.perPfx, "bytes/prefix")
		b.ReportMetric(float64(hits)/float64(b.N), "matches/op")
	})
	b.Run("match-cidr", func(b *testing.B) {
		dst := make([]Match, 0, 1024)
		hits := 0
		for i := 0; i < b.N; i++ {
			dst = f.tab.AppendMatches(dst[:0], f.cidrs[i&(1<<16-1)])
			hits += len(dst)
		}
		b.ReportMetric(float64(hits)/float64(b.N), "matches/op")
	})
}
