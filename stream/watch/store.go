package watch

import (
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// store maps watched prefixes to payloads. IPv4 host entries (/32), the
// bulk of any large watchlist, live in 65,536 buckets keyed by the
// address's upper 16 bits, each a sorted array of (lower 16 bits,
// payload): 8 bytes an entry instead of a trie path, and a lookup touches
// two or three cache lines. Every other
// prefix lives in a bart trie. The methods present both as one set of
// prefixes; callers hold the Table's lock.
type store struct {
	trie  bart.Table[uint32]
	hosts [1 << 16][]host
	nhost int
}

type host struct {
	lo uint16
	v  uint32
}

func cmpHost(h host, lo uint16) int { return int(h.lo) - int(lo) }

func isHost4(p netip.Prefix) bool { return p.Bits() == 32 && p.Addr().Is4() }

func split4(a netip.Addr) (hi, lo uint16) {
	b := a.As4()
	return uint16(b[0])<<8 | uint16(b[1]), uint16(b[2])<<8 | uint16(b[3])
}

func join4(hi, lo uint16) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(hi >> 8), byte(hi), byte(lo >> 8), byte(lo)})
}

func (s *store) get(p netip.Prefix) (uint32, bool) {
	if !isHost4(p) {
		return s.trie.Get(p)
	}
	hi, lo := split4(p.Addr())
	b := s.hosts[hi]
	// Buckets are small (tens of entries): a linear scan beats binary search.
	for i := range b {
		if b[i].lo >= lo {
			return b[i].v, b[i].lo == lo
		}
	}
	return 0, false
}

func (s *store) set(p netip.Prefix, v uint32) {
	if !isHost4(p) {
		s.trie.Insert(p, v)
		return
	}
	hi, lo := split4(p.Addr())
	b := s.hosts[hi]
	i, ok := slices.BinarySearchFunc(b, lo, cmpHost)
	if ok {
		b[i].v = v
		return
	}
	s.hosts[hi] = slices.Insert(b, i, host{lo, v})
	s.nhost++
}

func (s *store) del(p netip.Prefix) {
	if !isHost4(p) {
		s.trie.Delete(p)
		return
	}
	hi, lo := split4(p.Addr())
	b := s.hosts[hi]
	if i, ok := slices.BinarySearchFunc(b, lo, cmpHost); ok {
		b = slices.Delete(b, i, i+1)
		if len(b) == 0 {
			b = nil
		}
		s.hosts[hi] = b
		s.nhost--
	}
}

func (s *store) size() int { return s.trie.Size() + s.nhost }

// supernets yields the entries containing p (p included), most specific
// first, until yield returns false.
func (s *store) supernets(p netip.Prefix, yield func(netip.Prefix, uint32) bool) {
	if isHost4(p) {
		if v, ok := s.get(p); ok && !yield(p, v) {
			return
		}
	}
	if p.IsSingleIP() {
		// Most addresses are in no watched CIDR: bart's longest-prefix
		// lookup says so much faster than a supernet walk.
		if _, ok := s.trie.Lookup(p.Addr()); !ok {
			return
		}
	}
	for w, v := range s.trie.Supernets(p) {
		if !yield(w, v) {
			return
		}
	}
}

// subnets yields the entries inside p (p included) in natural order:
// by address, a covering prefix before what it covers.
func (s *store) subnets(p netip.Prefix, yield func(netip.Prefix, uint32) bool) {
	if !p.Addr().Is4() {
		for w, v := range s.trie.Subnets(p) {
			if !yield(w, v) {
				return
			}
		}
		return
	}
	// Merge the trie's entries with the host buckets in p's range.
	first, last := p.Addr(), lastAddr(p)
	fhi, flo := split4(first)
	lhi, llo := split4(last)
	hi := fhi
	i, _ := slices.BinarySearchFunc(s.hosts[hi], flo, cmpHost)
	// nextHost returns the next host entry in range, advancing the cursor.
	nextHost := func() (netip.Addr, uint32, bool) {
		for {
			if b := s.hosts[hi]; i < len(b) {
				if hi == lhi && b[i].lo > llo {
					return netip.Addr{}, 0, false
				}
				return join4(hi, b[i].lo), b[i].v, true
			}
			if hi == lhi {
				return netip.Addr{}, 0, false
			}
			hi++
			i = 0
		}
	}
	done := false
	for w, v := range s.trie.Subnets(p) {
		for {
			a, hv, ok := nextHost()
			if !ok || a.Compare(w.Addr()) >= 0 {
				break
			}
			if !yield(netip.PrefixFrom(a, 32), hv) {
				return
			}
			i++
		}
		if !yield(w, v) {
			done = true
			break
		}
	}
	if done {
		return
	}
	for {
		a, hv, ok := nextHost()
		if !ok {
			return
		}
		if !yield(netip.PrefixFrom(a, 32), hv) {
			return
		}
		i++
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if host > 0 {
		v |= 1<<host - 1
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// all yields every entry in natural order (IPv4 first).
func (s *store) all(yield func(netip.Prefix, uint32) bool) {
	cont := true
	s.subnets(netip.PrefixFrom(netip.IPv4Unspecified(), 0), func(p netip.Prefix, v uint32) bool {
		cont = yield(p, v)
		return cont
	})
	if !cont {
		return
	}
	for w, v := range s.trie.AllSorted6() {
		if !yield(w, v) {
			return
		}
	}
}
