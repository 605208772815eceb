package resource

import "net/netip"

// KeyRange is the half-open key range [Lo, Hi).
type KeyRange struct{ Lo, Hi string }

// Contains reports whether k is in the range.
func (kr KeyRange) Contains(k string) bool { return k >= kr.Lo && k < kr.Hi }

// InsideRanges returns the key ranges, in key order, that hold exactly
// the keys of the IP prefixes strictly inside r: longer prefixes and
// addresses within r, of r's address family (an IPv6 range never holds
// IPv4 entries, as in net/netip). r itself and the prefixes covering it
// are not inside (see Covering). nil for a single address and non-IPs.
//
// IP keys sort by (address, prefix length), and a masked prefix whose
// address lies in r after r's first address is necessarily longer than
// r, so the keys inside r are one key range: from r's first address with
// length len(r)+1 up to r's last address with any length. Only an IPv6
// range that spans the IPv4-mapped block ::ffff:0:0/96 (where IPv4 keys
// live) is split in two around it.
func (r Resource) InsideRanges() []KeyRange {
	if r.Kind != IP || !r.Prefix.IsValid() || r.Prefix.IsSingleIP() {
		return nil
	}
	p := r.Prefix
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	first := p.Addr().As16()
	last := lastAddr16(first, bits)
	lo := ipKey(first, byte(bits+1))
	hi := ipKey(last, 129) // past every length of the last address
	if p.Addr().Is4() || !p.Contains(v4Block.Addr()) {
		return []KeyRange{{lo, hi}}
	}
	v4First := v4Block.Addr().As16()
	return []KeyRange{
		{lo, ipKey(v4First, 0)},
		{ipKey(lastAddr16(v4First, 96), 129), hi},
	}
}

// v4Block is where IPv4 keys live in the 128-bit key space.
var v4Block = netip.MustParsePrefix("::ffff:0.0.0.0/96")

func ipKey(a [16]byte, bits byte) string {
	var b [IPKeyLen]byte
	b[0] = keyIP
	copy(b[1:17], a[:])
	b[17] = bits
	return string(b[:])
}

// lastAddr16 sets every bit of a after the first bits.
func lastAddr16(a [16]byte, bits int) [16]byte {
	for i := range a {
		switch {
		case bits >= 8*(i+1):
		case bits <= 8*i:
			a[i] = 0xff
		default:
			a[i] |= 0xff >> (bits - 8*i)
		}
	}
	return a
}
