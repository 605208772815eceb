package live

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"

	"github.com/netwarden/netwarden/internal/resource"
)

// Entry is a listed resource and the lists it is on itself (its own
// key; covering prefixes not counted).
type Entry struct {
	Resource resource.Resource
	Lists    []string
}

// probeMax: a range of at most this many addresses is searched by
// probing each address in the hosts map, a wider one by a pass over it.
const probeMax = 1 << 16

// ipk is an IP key without the kind byte, ordered like resource keys.
type ipk struct {
	a    [16]byte
	bits uint8 // in the 128-bit space
	set  uint32
}

func cmpIPK(x, y ipk) int {
	return cmp.Or(bytes.Compare(x.a[:], y.a[:]), cmp.Compare(x.bits, y.bits))
}

// Inside returns the listed IP resources strictly inside p — addresses
// and longer prefixes within it, of p's address family — in key order
// (by address, then prefix length), skipping the first skip and returning
// at most limit; total is how many there are in all. The resource p
// itself and the prefixes covering it are not inside (Lookup answers
// them).
//
// Cost: memory is bounded by skip+limit entries. Hosts are found by
// probing every address of p when p spans at most 65536 addresses and
// the hosts map is not smaller, else by one pass over the hosts map;
// prefixes by the prefix table's subnet walk. The read lock is held
// throughout, so a pass over millions of hosts delays writers by its
// duration (tens of milliseconds).
func (s *State) Inside(p netip.Prefix, skip, limit int) (entries []Entry, total int) {
	if !p.IsValid() {
		return nil, 0
	}
	q := resource.FromPrefix(p)
	p = q.Prefix
	ranges := q.InsideRanges()
	if len(ranges) == 0 {
		return nil, 0
	}
	keep := max(skip, 0) + max(limit, 0)
	var cs []ipk
	add := func(x ipk) {
		total++
		if keep == 0 {
			return
		}
		cs = append(cs, x)
		if len(cs) >= 2*keep+64 {
			slices.SortFunc(cs, cmpIPK)
			cs = cs[:keep]
		}
	}
	inside := func(a [16]byte, bits uint8) bool {
		var kb [resource.IPKeyLen]byte
		kb[0] = 'i'
		copy(kb[1:17], a[:])
		kb[17] = bits
		for _, kr := range ranges {
			if string(kb[:]) >= kr.Lo && string(kb[:]) < kr.Hi {
				return true
			}
		}
		return false
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	bits128 := p.Bits()
	if p.Addr().Is4() {
		bits128 += 96
	}
	if hostBits := 128 - bits128; hostBits <= 16 && 1<<hostBits <= probeMax && 1<<hostBits <= len(s.hosts) {
		a := p.Addr().As16()
		for range 1 << hostBits {
			if set, ok := s.hosts[a]; ok {
				add(ipk{a, 128, set})
			}
			inc16(&a)
		}
	} else {
		for a, set := range s.hosts {
			if inside(a, 128) {
				add(ipk{a, 128, set})
			}
		}
	}
	for sub, set := range s.nets.Subnets(p) {
		if sub.Bits() > p.Bits() && set != 0 {
			b := sub.Bits()
			if sub.Addr().Is4() {
				b += 96
			}
			add(ipk{sub.Addr().As16(), uint8(b), set})
		}
	}
	slices.SortFunc(cs, cmpIPK)
	if skip >= len(cs) {
		return nil, total
	}
	cs = cs[skip:min(len(cs), keep)]
	entries = make([]Entry, len(cs))
	for i, x := range cs {
		r := resource.FromPrefix(netip.PrefixFrom(netip.AddrFrom16(x.a), int(x.bits)))
		entries[i] = Entry{Resource: r, Lists: s.names2(slices.Clone(s.sets[x.set]))}
	}
	return entries, total
}

// inc16 adds one to a 128-bit big-endian address (wrapping).
func inc16(a *[16]byte) {
	for i := 15; i >= 0; i-- {
		a[i]++
		if a[i] != 0 {
			return
		}
	}
}
