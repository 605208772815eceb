package bgp

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Slash24s is the number of IPv4 /24 blocks; a /24's index is its address >> 8.
const Slash24s = 1 << 24

// Ranges maps disjoint, sorted ranges of /24 indexes [Start, End) to codes
// (an ASN in decimal, an ISO country code).
type Ranges struct {
	Start, End []uint32
	Code       []string
}

// Len is the number of ranges.
func (r *Ranges) Len() int { return len(r.Start) }

// Lookup returns the code of the /24 with index i, "" when none.
func (r *Ranges) Lookup(i uint32) string {
	k, _ := slices.BinarySearch(r.End, i+1)
	if k < len(r.Start) && r.Start[k] <= i && i < r.End[k] {
		return r.Code[k]
	}
	return ""
}

func (r *Ranges) add(s, e uint32, code string) {
	if s >= e {
		return
	}
	if n := len(r.Start); n > 0 && r.End[n-1] == s && r.Code[n-1] == code {
		r.End[n-1] = e
		return
	}
	r.Start = append(r.Start, s)
	r.End = append(r.End, e)
	r.Code = append(r.Code, code)
}

// span24 is the /24 index range of an IPv4 prefix of length <= 24.
func span24(p netip.Prefix) (uint32, uint32) {
	a := p.Addr().As4()
	s := (uint32(a[0])<<16 | uint32(a[1])<<8 | uint32(a[2]))
	return s, s + 1<<(24-p.Bits())
}

// prefixCode is a prefix with a code, input of flatten.
type prefixCode struct {
	start, end uint32
	bits       int
	code       string
	order      int // input position, to keep the first of equal prefixes
}

// flatten turns nested-or-disjoint prefixes into disjoint ranges where the
// most specific prefix wins. Equal prefixes keep the first.
func flatten(ps []prefixCode) *Ranges {
	for i := range ps {
		ps[i].order = i
	}
	slices.SortFunc(ps, func(a, b prefixCode) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		if c := cmp.Compare(a.bits, b.bits); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	out := &Ranges{}
	var stack []prefixCode
	var cursor uint32
	for i, p := range ps {
		if i > 0 && p.start == ps[i-1].start && p.bits == ps[i-1].bits {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].end <= p.start {
			top := stack[len(stack)-1]
			out.add(cursor, top.end, top.code)
			cursor = max(cursor, top.end)
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			out.add(cursor, p.start, stack[len(stack)-1].code)
		}
		cursor = p.start
		stack = append(stack, p)
	}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		out.add(cursor, top.end, top.code)
		cursor = max(cursor, top.end)
		stack = stack[:len(stack)-1]
	}
	return out
}

// LoadPfx2AS reads a CAIDA RouteViews prefix2as file (gzip or plain; lines
// "addr<TAB>len<TAB>asns"). For multi-origin ("a_b") or AS-set ("a,b")
// entries the first AS is used; prefixes longer than /24 and IPv6 are skipped.
func LoadPfx2AS(path string) (*Ranges, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pfx2as %q: %w", path, err)
	}
	defer f.Close()
	var src io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("open pfx2as %q: %w", path, err)
		}
		src = zr
	}
	var ps []prefixCode
	sc := bufio.NewScanner(src)
	line := 0
	for sc.Scan() {
		line++
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if len(fs) != 3 {
			return nil, fmt.Errorf("pfx2as %q line %d: %d fields, want 3", path, line, len(fs))
		}
		addr, err := netip.ParseAddr(fs[0])
		if err != nil {
			return nil, fmt.Errorf("pfx2as %q line %d: %w", path, line, err)
		}
		bits, err := strconv.Atoi(fs[1])
		if err != nil {
			return nil, fmt.Errorf("pfx2as %q line %d: length: %w", path, line, err)
		}
		pfx, err := addr.Prefix(bits)
		if err != nil {
			return nil, fmt.Errorf("pfx2as %q line %d: %w", path, line, err)
		}
		if !addr.Is4() || bits > 24 {
			continue
		}
		asn := fs[2]
		if i := strings.IndexAny(asn, "_,"); i >= 0 {
			asn = asn[:i]
		}
		if _, err := strconv.ParseUint(asn, 10, 32); err != nil {
			return nil, fmt.Errorf("pfx2as %q line %d: ASN %q: %w", path, line, fs[2], err)
		}
		s, e := span24(pfx)
		ps = append(ps, prefixCode{start: s, end: e, bits: bits, code: asn})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read pfx2as %q: %w", path, err)
	}
	return flatten(ps), nil
}

// LoadCountries reads the IPv4 networks of a MaxMind country (or city)
// database into /24 ranges of ISO country codes. A network smaller than a
// /24 gives its whole /24 to the first country found there.
func LoadCountries(path string) (*Ranges, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open country db %q: %w", path, err)
	}
	defer db.Close()
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
	}
	var ps []prefixCode
	for res := range db.Networks() {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("read country db %q: %w", path, err)
		}
		p := res.Prefix()
		if !p.Addr().Is4() {
			if !p.Addr().Is4In6() || p.Bits() < 96 {
				continue
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		rec.Country.ISOCode = ""
		if err := res.Decode(&rec); err != nil {
			return nil, fmt.Errorf("decode country db %q at %s: %w", path, p, err)
		}
		if rec.Country.ISOCode == "" {
			continue
		}
		bits := min(p.Bits(), 24)
		s, e := span24(netip.PrefixFrom(p.Addr(), bits).Masked())
		ps = append(ps, prefixCode{start: s, end: e, bits: bits, code: rec.Country.ISOCode})
	}
	return flatten(ps), nil
}
