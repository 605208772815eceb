package feed

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/netwarden/netwarden/internal/resource"
)

// Reasons a line is skipped. They are plain values so that skipping a line
// costs no allocation.
var (
	errTooLong      = fmt.Errorf("line longer than %d bytes", MaxLineLen)
	errNotIP        = errors.New("not an IP address, CIDR or range")
	errZone         = errors.New("IP address with a zone")
	errRangeFamily  = errors.New("range mixes IPv4 and IPv6")
	errRangeOrder   = errors.New("range end before its start")
	errBadJSON      = errors.New("not a JSON object of strings")
	errNoCIDR       = errors.New("JSON object without a cidr")
	errIpsumCount   = errors.New("second field is not a count")
	errFields       = errors.New("too many fields")
	errHostsAddr    = errors.New("first field is not an IP address")
	errHostsNoName  = errors.New("no host name after the address")
	errDshieldBits  = errors.New("bad prefix length")
	errCSVQuote     = errors.New("malformed CSV (unbalanced quotes)")
	errCSVNoColumn  = errors.New("no column holds an entry")
	errCSVShort     = errors.New("row lacks the entry column")
	errCSVEmpty     = errors.New("empty entry column")
	errKindNotIP    = errors.New("format lists IP networks, the list kind is not ip")
	errNotIPNetwork = errors.New("not an IP network")
)

// ipKey is an IP resource key (resource.AppendPrefixKey: 'i', 16 address
// bytes, bits) held as integers so that sorting compares words, not bytes.
// The order of (hi, lo, bits) is the byte order of the key.
type ipKey struct {
	hi, lo uint64
	bits   uint8
}

func makeIPKey(pf netip.Prefix) ipKey {
	var b [resource.IPKeyLen]byte
	resource.AppendPrefixKey(b[:0], pf)
	return ipKey{binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:17]), b[17]}
}

func (k ipKey) append(b []byte) []byte {
	b = append(b, 'i')
	b = binary.BigEndian.AppendUint64(b, k.hi)
	b = binary.BigEndian.AppendUint64(b, k.lo)
	return append(b, k.bits)
}

func cmpIPKey(a, b ipKey) int {
	switch {
	case a.hi != b.hi:
		return cmp.Compare(a.hi, b.hi)
	case a.lo != b.lo:
		return cmp.Compare(a.lo, b.lo)
	}
	return cmp.Compare(a.bits, b.bits)
}

// parser is the state of one Parse call.
type parser struct {
	kind    resource.Kind
	format  Format
	res     Result
	ips     []ipKey  // keys of kind IP
	names   []string // keys of kind Domain or Email
	entries int      // entries recorded, before de-duplication
	ignored int      // entry lines that deliberately list nothing (hosts: localhost)
	ranges  []netip.Prefix
	csv     csvState
	header  bool // dshield: header row seen or data started
}

func (p *parser) handler() func(n int, s []byte) {
	switch p.format {
	case FormatSpamhaus:
		return p.spamhausLine
	case FormatFirehol:
		return p.fireholLine
	case FormatCSV:
		return p.csvLine
	case FormatIpsum:
		return p.ipsumLine
	case FormatHosts:
		return p.hostsLine
	case FormatDshield:
		return p.dshieldLine
	}
	return p.plainLine
}

// skip counts line n as skipped for reason err, sampling it.
func (p *parser) skip(n int, val []byte, err error) {
	p.res.Skipped++
	if len(p.res.SkipSamples) >= maxSamples {
		return
	}
	if val == nil {
		p.res.SkipSamples = append(p.res.SkipSamples, fmt.Sprintf("line %d: %v", n, err))
		return
	}
	if len(val) > 80 {
		val = append(val[:80:80], "..."...)
	}
	p.res.SkipSamples = append(p.res.SkipSamples, fmt.Sprintf("line %d: %q: %v", n, val, err))
}

// finish checks the counts, sorts and de-duplicates the keys.
func (p *parser) finish(name string) (Result, error) {
	if p.res.Lines-p.ignored > 0 && p.entries == 0 {
		return p.res, fmt.Errorf("feed: %s list %q in %s format: %w: no entry in %d lines%s",
			p.kind, name, p.format, ErrUnparseable, p.res.Lines, p.firstSample())
	}
	if p.res.Skipped*2 > p.res.Lines {
		return p.res, fmt.Errorf("feed: %s list %q in %s format: %w: %d of %d lines did not parse%s",
			p.kind, name, p.format, ErrUnparseable, p.res.Skipped, p.res.Lines, p.firstSample())
	}
	if p.kind == resource.IP {
		slices.SortFunc(p.ips, cmpIPKey)
		p.ips = slices.Compact(p.ips)
		// One backing string for all keys: no allocation per entry.
		var sb strings.Builder
		sb.Grow(len(p.ips) * resource.IPKeyLen)
		var kb [resource.IPKeyLen]byte
		for _, k := range p.ips {
			sb.Write(k.append(kb[:0]))
		}
		all := sb.String()
		set := make(Set, len(p.ips))
		for i := range set {
			set[i] = all[i*resource.IPKeyLen : (i+1)*resource.IPKeyLen]
		}
		p.res.Set = set
	} else {
		slices.Sort(p.names)
		p.res.Set = Set(slices.Compact(p.names))
	}
	if p.res.Set == nil {
		p.res.Set = Set{}
	}
	return p.res, nil
}

func (p *parser) firstSample() string {
	if len(p.res.SkipSamples) == 0 {
		return ""
	}
	return " (first: " + p.res.SkipSamples[0] + ")"
}

func (p *parser) addPrefix(pf netip.Prefix) {
	if pf.Masked() != pf {
		p.res.Masked++
	}
	p.ips = append(p.ips, makeIPKey(resource.FromPrefix(pf).Prefix))
	p.entries++
}

func (p *parser) addAddr(a netip.Addr) {
	p.ips = append(p.ips, makeIPKey(resource.FromAddr(a).Prefix))
	p.entries++
}

// entry parses s as one entry of the list's kind and records it.
func (p *parser) entry(s []byte) error {
	switch p.kind {
	case resource.IP:
		return p.ipEntry(s)
	case resource.Domain:
		r, err := resource.ParseDomain(string(s))
		if err != nil {
			return err
		}
		p.names = append(p.names, r.Key())
	case resource.Email:
		r, err := resource.ParseEmail(string(s))
		if err != nil {
			return err
		}
		p.names = append(p.names, r.Key())
	}
	p.entries++
	return nil
}

// ipEntry records an address, a CIDR (masked) or a range "a-b" / "a - b".
func (p *parser) ipEntry(s []byte) error {
	if i := bytes.IndexByte(s, '-'); i >= 0 {
		a, err := parseAddr(trimSpace(s[:i]))
		if err != nil {
			return err
		}
		b, err := parseAddr(trimSpace(s[i+1:]))
		if err != nil {
			return err
		}
		return p.addRange(a, b)
	}
	if bytes.IndexByte(s, '/') >= 0 {
		pf, err := parsePrefix(s)
		if err != nil {
			return err
		}
		p.addPrefix(pf)
		return nil
	}
	a, err := parseAddr(s)
	if err != nil {
		return err
	}
	p.addAddr(a)
	return nil
}

func (p *parser) addRange(a, b netip.Addr) error {
	a, b = a.Unmap(), b.Unmap()
	if a.Is4() != b.Is4() {
		return errRangeFamily
	}
	if b.Less(a) {
		return errRangeOrder
	}
	p.ranges = appendRange(p.ranges[:0], a, b)
	for _, pf := range p.ranges {
		p.addPrefix(pf)
	}
	return nil
}

// parseAddr parses an IP address without a zone; dotted IPv4 without
// going through a string.
func parseAddr(s []byte) (netip.Addr, error) {
	if a, ok := parseIPv4(s); ok {
		return a, nil
	}
	if bytes.IndexByte(s, ':') < 0 {
		return netip.Addr{}, errNotIP
	}
	a, err := netip.ParseAddr(string(s))
	if err != nil {
		return netip.Addr{}, errNotIP
	}
	if a.Zone() != "" {
		return netip.Addr{}, errZone
	}
	return a, nil
}

// parsePrefix parses "addr/bits", host bits allowed.
func parsePrefix(s []byte) (netip.Prefix, error) {
	i := bytes.IndexByte(s, '/')
	if i < 0 {
		return netip.Prefix{}, errNotIP
	}
	a, err := parseAddr(s[:i])
	if err != nil {
		return netip.Prefix{}, err
	}
	bits, ok := parseDecimal(s[i+1:], 3)
	if !ok || bits > a.BitLen() {
		return netip.Prefix{}, errNotIP
	}
	return netip.PrefixFrom(a, bits), nil
}

// parseIPv4 parses strict dotted-quad IPv4 ("1.2.3.4", no leading zeros),
// exactly as netip.ParseAddr accepts it.
func parseIPv4(s []byte) (netip.Addr, bool) {
	var ip [4]byte
	field, val, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && val == 0 {
				return netip.Addr{}, false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || field == 3 {
				return netip.Addr{}, false
			}
			ip[field] = byte(val)
			field++
			val, digits = 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if field != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	ip[3] = byte(val)
	return netip.AddrFrom4(ip), true
}

// parseDecimal parses 1..maxDigits decimal digits without a sign; a
// leading zero is allowed only for "0".
func parseDecimal(s []byte, maxDigits int) (int, bool) {
	if len(s) == 0 || len(s) > maxDigits || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func isDigits(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// nextField returns the first whitespace-separated field of s and the rest.
func nextField(s []byte) (field, rest []byte) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isSpace(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

// plain: one entry a line; #, ; and // comments.
func (p *parser) plainLine(n int, s []byte) {
	if s[0] == '#' || s[0] == ';' || bytes.HasPrefix(s, []byte("//")) {
		return
	}
	p.res.Lines++
	s = cutTrailingComment(s, true, true)
	if err := p.entry(s); err != nil {
		p.skip(n, s, err)
	}
}

// firehol: # comments, one IP or CIDR a line.
func (p *parser) fireholLine(n int, s []byte) {
	if s[0] == '#' {
		return
	}
	p.res.Lines++
	s = cutTrailingComment(s, false, false)
	if err := p.entry(s); err != nil {
		p.skip(n, s, err)
	}
}

// spamhaus: "CIDR ; SBLnnn", ; (or #) comments, or JSON lines.
func (p *parser) spamhausLine(n int, s []byte) {
	switch s[0] {
	case ';', '#':
		return
	case '{':
		p.spamhausJSON(n, s)
		return
	}
	p.res.Lines++
	if i := bytes.IndexByte(s, ';'); i >= 0 {
		s = trimSpace(s[:i])
	}
	if err := p.entry(s); err != nil {
		p.skip(n, s, err)
	}
}

func (p *parser) spamhausJSON(n int, s []byte) {
	var v struct {
		CIDR string `json:"cidr"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(s, &v); err != nil {
		p.res.Lines++
		p.skip(n, s, errBadJSON)
		return
	}
	if v.CIDR == "" && v.Type != "" {
		return // {"type":"metadata",...}
	}
	p.res.Lines++
	if v.CIDR == "" {
		p.skip(n, s, errNoCIDR)
		return
	}
	if err := p.entry([]byte(strings.TrimSpace(v.CIDR))); err != nil {
		p.skip(n, s, err)
	}
}

// ipsum: "IP<TAB>count", # comments.
func (p *parser) ipsumLine(n int, s []byte) {
	if s[0] == '#' {
		return
	}
	p.res.Lines++
	s = cutTrailingComment(s, false, false)
	ent, rest := nextField(s)
	count, rest := nextField(rest)
	if len(count) > 0 && !isDigits(count) {
		p.skip(n, s, errIpsumCount)
		return
	}
	if len(trimSpace(rest)) > 0 {
		p.skip(n, s, errFields)
		return
	}
	if err := p.entry(ent); err != nil {
		p.skip(n, s, err)
	}
}

// hosts: "IP name [name...]", # comments; localhost names are ignored.
func (p *parser) hostsLine(n int, s []byte) {
	if s[0] == '#' {
		return
	}
	p.res.Lines++
	s = cutTrailingComment(s, false, false)
	addr, rest := nextField(s)
	if _, err := netip.ParseAddr(string(addr)); err != nil {
		p.skip(n, s, errHostsAddr)
		return
	}
	var bad error
	added, local := 0, 0
	for {
		var name []byte
		name, rest = nextField(rest)
		if len(name) == 0 {
			break
		}
		if isLocalName(name) {
			local++
			continue
		}
		if err := p.entry(name); err != nil {
			if bad == nil {
				bad = err
			}
			continue
		}
		added++
	}
	switch {
	case bad != nil:
		p.skip(n, s, bad)
	case added == 0 && local > 0:
		p.ignored++
	case added == 0:
		p.skip(n, s, errHostsNoName)
	}
}

var localNames = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "local": true, "broadcasthost": true,
	"localhost4": true, "localhost4.localdomain4": true, "localhost6": true, "localhost6.localdomain6": true,
	"0.0.0.0": true,
}

func isLocalName(b []byte) bool {
	if len(b) >= 4 && strings.EqualFold(string(b[:4]), "ip6-") {
		return true
	}
	if len(b) > len("localhost6.localdomain6") {
		return false
	}
	var buf [32]byte
	l := buf[:0]
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		l = append(l, c)
	}
	return localNames[string(l)]
}

// dshield: block.txt, "start<TAB>end<TAB>bits<TAB>attacks<TAB>name...",
// # comments and an optional "Start End Netblock ..." header row.
func (p *parser) dshieldLine(n int, s []byte) {
	if s[0] == '#' {
		return
	}
	var f [3][]byte
	nf := 0
	for rest := s; nf < len(f); {
		var fld []byte
		if i := bytes.IndexByte(s, '\t'); i >= 0 {
			// Tab-separated: fields may contain spaces (network names).
			j := bytes.IndexByte(rest, '\t')
			if j < 0 {
				j = len(rest)
			}
			fld = trimSpace(rest[:j])
			if j < len(rest) {
				rest = rest[j+1:]
			} else {
				rest = nil
			}
			if len(fld) == 0 && rest == nil {
				break
			}
		} else {
			fld, rest = nextField(rest)
			if len(fld) == 0 {
				break
			}
		}
		f[nf] = fld
		nf++
	}
	if !p.header {
		p.header = true
		if nf > 0 && strings.EqualFold(string(f[0]), "start") {
			return // header row
		}
	}
	p.res.Lines++
	if p.kind != resource.IP {
		p.skip(n, s, errKindNotIP)
		return
	}
	switch {
	case nf >= 3 && len(f[2]) > 0:
		a, err := parseAddr(f[0])
		if err != nil {
			p.skip(n, s, err)
			return
		}
		bits, ok := parseDecimal(f[2], 3)
		if !ok || bits > a.BitLen() {
			p.skip(n, s, errDshieldBits)
			return
		}
		p.addPrefix(netip.PrefixFrom(a, bits))
	case nf >= 2:
		a, err := parseAddr(f[0])
		if err != nil {
			p.skip(n, s, err)
			return
		}
		b, err := parseAddr(f[1])
		if err != nil {
			p.skip(n, s, err)
			return
		}
		if err := p.addRange(a, b); err != nil {
			p.skip(n, s, err)
		}
	default:
		if err := p.ipEntry(s); err != nil {
			p.skip(n, s, errNotIPNetwork)
		}
	}
}
