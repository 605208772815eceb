package feed

import (
	"encoding/binary"
	"net/netip"
)

// u128 is an address as a 128-bit number (IPv4 as ::ffff:a.b.c.d).
type u128 struct{ hi, lo uint64 }

func u128From(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) addr(is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	a := netip.AddrFrom16(b)
	if is4 {
		a = a.Unmap()
	}
	return a
}

// lowMask returns a number with the low h bits set (0 <= h <= 128).
func lowMask(h int) u128 {
	switch {
	case h <= 0:
		return u128{}
	case h <= 64:
		return u128{0, uint64(1)<<uint(h) - 1}
	default:
		return u128{uint64(1)<<uint(h-64) - 1, ^uint64(0)}
	}
}

func (u u128) and(v u128) u128 { return u128{u.hi & v.hi, u.lo & v.lo} }
func (u u128) or(v u128) u128  { return u128{u.hi | v.hi, u.lo | v.lo} }
func (u u128) isZero() bool    { return u.hi == 0 && u.lo == 0 }

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) inc() u128 {
	lo := u.lo + 1
	hi := u.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

// appendRange appends to dst the minimal list of CIDR prefixes that
// exactly cover the addresses a..b inclusive, in address order. a and b
// must be of the same family (unmapped) and a <= b.
//
// Greedy: from the current start, take the largest block that is aligned
// on it and ends at or before b; continue after it. Each block taken is a
// maximal aligned block inside the range, which makes the list minimal.
func appendRange(dst []netip.Prefix, a, b netip.Addr) []netip.Prefix {
	is4 := a.Is4()
	bitLen := a.BitLen()
	x, end := u128From(a), u128From(b)
	for {
		h := 0 // host bits of the block starting at x
		for h < bitLen {
			m := lowMask(h + 1)
			if !x.and(m).isZero() || x.or(m).cmp(end) > 0 {
				break
			}
			h++
		}
		dst = append(dst, netip.PrefixFrom(x.addr(is4), bitLen-h))
		last := x.or(lowMask(h))
		if last.cmp(end) >= 0 {
			return dst
		}
		x = last.inc()
	}
}
