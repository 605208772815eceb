package history

import (
	"strconv"
	"strings"

	"github.com/netwarden/netwarden/internal/resource"
)

// prefixBits is the set of prefix lengths of IP keys: IPv4 lengths 0..32
// in v4, IPv6 lengths 0..128 in v6.
type prefixBits struct {
	v4 uint64
	v6 [3]uint64
}

// addKey adds the prefix length of k if k is an IP key.
func (b *prefixBits) addKey(k string) {
	if len(k) != resource.IPKeyLen || k[0] != 'i' {
		return
	}
	bits := int(k[17])
	if bits > 128 {
		return
	}
	if bits >= 96 && is4in6(k[1:17]) {
		b.v4 |= 1 << uint(bits-96)
		return
	}
	b.v6[bits/64] |= 1 << uint(bits%64)
}

func is4in6(a string) bool {
	for i := 0; i < 10; i++ {
		if a[i] != 0 {
			return false
		}
	}
	return a[10] == 0xff && a[11] == 0xff
}

func (b *prefixBits) union(o prefixBits) {
	b.v4 |= o.v4
	for i := range b.v6 {
		b.v6[i] |= o.v6[i]
	}
}

// lists returns the lengths in ascending order.
func (b prefixBits) lists() (bits4, bits6 []uint8) {
	bits4 = []uint8{}
	bits6 = []uint8{}
	for i := 0; i <= 32; i++ {
		if b.v4&(1<<uint(i)) != 0 {
			bits4 = append(bits4, uint8(i))
		}
	}
	for i := 0; i <= 128; i++ {
		if b.v6[i/64]&(1<<uint(i%64)) != 0 {
			bits6 = append(bits6, uint8(i))
		}
	}
	return bits4, bits6
}

func formatBits(l []uint8) string {
	var sb strings.Builder
	for i, v := range l {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(v)))
	}
	return sb.String()
}

// parseBits parses formatBits output into b (v6 selects the family).
func (b *prefixBits) parse(s string, v6 bool) error {
	if s == "" {
		return nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return err
		}
		switch {
		case !v6 && n >= 0 && n <= 32:
			b.v4 |= 1 << uint(n)
		case v6 && n >= 0 && n <= 128:
			b.v6[n/64] |= 1 << uint(n%64)
		default:
			return strconv.ErrRange
		}
	}
	return nil
}
