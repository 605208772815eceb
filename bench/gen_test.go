package bench

import (
	"cmp"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// listNames are real list names; an event's list is an index into it.
var listNames = [...]string{
	"SPAMHAUS-DROP", "SPAMHAUS-EDROP", "SPAMHAUS-DROPV6", "DSHIELD", "FIREHOL-LEVEL1",
	"BLOCKLIST-DE", "CINS-ARMY", "TOR-EXIT", "FEODO", "THREATFOX-IP",
	"SSLBL", "ET-COMPROMISED", "GREENSNOW", "IPSUM", "STOPFORUMSPAM-7D",
}

// Generated histories span two years.
var (
	histStart = time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	histSpan  = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixMicro() - histStart
)

// event is one generated change; 16 bytes so that 100M of them fit.
type event struct {
	us   int64  // time, Unix µs
	res  uint32 // resource index in the dataset
	list uint8  // index into listNames
	op   change.Op
}

// dataset is a generated history: unique IP resources, each with 1..20
// changes that alternate add/rem per list on 1..3 lists, so that every
// change is state-changing when applied in time order.
type dataset struct {
	keys   []byte   // resource i's key is keys[i*IPKeyLen:][:IPKeyLen]
	nres   int      // number of resources
	nets   []uint32 // resources that are prefixes, not single addresses
	events []event  // by time; ties keep generation order
	onNow  int      // resources on at least one list after every event
}

// key returns resource i's key; it aliases d.keys, which never changes
// once generated.
func (d *dataset) key(i uint32) string {
	return unsafe.String(&d.keys[int(i)*resource.IPKeyLen], resource.IPKeyLen)
}

func (d *dataset) keyBytes(i uint32) []byte {
	o := int(i) * resource.IPKeyLen
	return d.keys[o : o+resource.IPKeyLen : o+resource.IPKeyLen]
}

func (d *dataset) resource(i uint32) resource.Resource {
	r, err := resource.FromKey(d.key(i))
	if err != nil {
		panic(err) // generated keys are valid
	}
	return r
}

func (d *dataset) change(e event) change.Change {
	return change.Change{Time: time.UnixMicro(e.us).UTC(), Op: e.op, List: listNames[e.list], Key: d.key(e.res)}
}

// generate makes a dataset of exactly n events from seed.
func generate(seed uint64, n int) *dataset {
	rng := rand.New(rand.NewPCG(seed, 0x6e657477617264))
	g := newIPGen(rng)
	d := &dataset{}
	evs := make([]event, 0, n)
	var times []int64
	for len(evs) < n {
		p := g.next()
		ri := uint32(d.nres)
		d.nres++
		d.keys = resource.AppendPrefixKey(d.keys, p)
		if !p.IsSingleIP() {
			d.nets = append(d.nets, ri)
		}
		// 1..20 changes, most resources few (mean about 7).
		u := rng.Float64()
		m := min(1+int(19*u*u), n-len(evs))
		k := min(1+rng.IntN(3), m)
		var ls [3]uint8
		for j := 0; j < k; {
			l := uint8(rng.IntN(len(listNames)))
			if !slices.Contains(ls[:j], l) {
				ls[j] = l
				j++
			}
		}
		on := false
		for j := 0; j < k; j++ {
			cnt := m / k
			if j < m%k {
				cnt++
			}
			times = times[:0]
			for range cnt {
				times = append(times, histStart+rng.Int64N(histSpan))
			}
			slices.Sort(times)
			for c, t := range times {
				op := change.Add
				if c%2 == 1 {
					op = change.Rem
				}
				evs = append(evs, event{us: t, res: ri, list: ls[j], op: op})
			}
			on = on || cnt%2 == 1
		}
		if on {
			d.onNow++
		}
	}
	d.events = sortByTime(evs)
	return d
}

// sortByTime returns evs ordered by time, ties in their original order:
// a counting sort into narrow time buckets, then a stable sort of each.
func sortByTime(evs []event) []event {
	nb := max(1, len(evs)/16)
	width := uint64(histSpan)/uint64(nb) + 1
	bucket := func(us int64) int { return int(uint64(us-histStart) / width) }
	start := make([]int, nb+1)
	for i := range evs {
		start[bucket(evs[i].us)+1]++
	}
	for i := 1; i <= nb; i++ {
		start[i] += start[i-1]
	}
	out := make([]event, len(evs))
	next := slices.Clone(start[:nb])
	for _, e := range evs {
		b := bucket(e.us)
		out[next[b]] = e
		next[b]++
	}
	for b := 0; b < nb; b++ {
		slices.SortStableFunc(out[start[b]:start[b+1]], func(x, y event) int { return cmp.Compare(x.us, y.us) })
	}
	return out
}

// ipGen makes unique IP resources with a realistic spread: IPv4 hosts
// (97%) concentrated by a Zipf law in a few thousand /16s, IPv4 prefixes
// (2%: mostly /24, some /16../23, a handful of /8../12) and IPv6 (1%:
// hosts and /48../64 prefixes in four provider /32s).
type ipGen struct {
	rng    *rand.Rand
	zipf   *rand.Zipf
	s16    []uint32 // the /16s, as a.b.0.0
	used   []uint32 // hosts handed out per /16
	nets   map[netip.Prefix]struct{}
	short  int // /8../12 prefixes made
	v6base []uint64
}

const (
	num16s    = 4096
	maxShort  = 12 // "a few" /8../12 prefixes
	v6Percent = 10 // per mille
	v4Nets    = 20 // per mille
)

func newIPGen(rng *rand.Rand) *ipGen {
	g := &ipGen{rng: rng, nets: map[netip.Prefix]struct{}{}, used: make([]uint32, num16s)}
	seen := map[uint32]bool{}
	for len(g.s16) < num16s {
		s := g.public4() &^ 0xffff
		if !seen[s] {
			seen[s] = true
			g.s16 = append(g.s16, s)
		}
	}
	g.zipf = rand.NewZipf(rng, 1.1, 4, num16s-1)
	for _, s := range []string{"2a01:4f8::", "2604:a880::", "2a03:b0c0::", "2001:41d0::"} {
		a := netip.MustParseAddr(s).As16()
		g.v6base = append(g.v6base, binary.BigEndian.Uint64(a[:8]))
	}
	return g
}

// public4 returns a random IPv4 address outside the obviously private or
// special first octets.
func (g *ipGen) public4() uint32 {
	for {
		a := g.rng.Uint32()
		switch a >> 24 {
		case 0, 10, 100, 127, 169, 172, 192:
			continue
		}
		if a>>24 >= 224 {
			continue
		}
		return a
	}
}

func addr4(a uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}

func (g *ipGen) next() netip.Prefix {
	switch r := g.rng.IntN(1000); {
	case r < v6Percent:
		return g.v6()
	case r < v6Percent+v4Nets:
		return g.net4()
	}
	return g.host4()
}

func (g *ipGen) host4() netip.Prefix {
	i := int(g.zipf.Uint64())
	for g.used[i] >= 1<<16 { // full: spill into the next /16
		i = (i + 1) % num16s
	}
	c := g.used[i]
	g.used[i]++
	low := (c*0x9e3b + uint32(i)*0x1d) & 0xffff // a bijection of the 16-bit counter
	return netip.PrefixFrom(addr4(g.s16[i]|low), 32)
}

func (g *ipGen) net4() netip.Prefix {
	for attempt := 0; ; attempt++ {
		var bits int
		switch r := g.rng.IntN(1000); {
		case r < 3 && g.short < maxShort && attempt < 20:
			bits = 8 + g.rng.IntN(5)
		case r < 150:
			bits = 16 + g.rng.IntN(4)
		case r < 400:
			bits = 20 + g.rng.IntN(4)
		default:
			bits = 24
		}
		a := g.public4()
		if bits >= 16 && g.rng.IntN(4) != 0 {
			a = g.s16[g.zipf.Uint64()] | a&0xffff // mostly where the hosts are
		}
		p := netip.PrefixFrom(addr4(a), bits).Masked()
		if _, dup := g.nets[p]; dup {
			continue
		}
		g.nets[p] = struct{}{}
		if bits < 16 {
			g.short++
		}
		return p
	}
}

func (g *ipGen) v6() netip.Prefix {
	for {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], g.v6base[g.rng.IntN(len(g.v6base))]|uint64(g.rng.Uint32()))
		binary.BigEndian.PutUint64(b[8:], g.rng.Uint64())
		bits := 128
		switch g.rng.IntN(10) {
		case 0:
			bits = 48
		case 1:
			bits = 56
		case 2, 3:
			bits = 64
		}
		p := netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
		if _, dup := g.nets[p]; dup {
			continue
		}
		g.nets[p] = struct{}{} // hosts too: 96 random bits rarely collide, but must not
		return p
	}
}

// queryAddrs returns n addresses to ask about: 60% listed hosts, 25%
// addresses inside listed prefixes (history only through the covering
// prefix), 15% random public IPv4 addresses (almost always absent).
func (d *dataset) queryAddrs(seed uint64, n int) []netip.Addr {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		switch r := rng.IntN(100); {
		case r < 60:
			res := d.resource(uint32(rng.IntN(d.nres)))
			if res.Prefix.IsSingleIP() {
				out = append(out, res.Prefix.Addr())
			}
		case r < 85:
			p := d.resource(d.nets[rng.IntN(len(d.nets))]).Prefix
			out = append(out, randomIn(rng, p))
		default:
			g := ipGen{rng: rng}
			out = append(out, addr4(g.public4()))
		}
	}
	return out
}

// randomIn returns a random address in p.
func randomIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	rh, rl := rng.Uint64(), rng.Uint64()
	if bits < 64 {
		hi |= rh & (1<<(64-bits) - 1)
		lo = rl
	} else if bits < 128 {
		lo |= rl & (1<<(128-bits) - 1)
	}
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	out := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		out = out.Unmap()
	}
	return out
}
