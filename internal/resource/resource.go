// Package resource defines what a blocklist lists: an IP prefix (a single
// address is a full-length prefix), a domain, or an e-mail address or
// e-mail domain. It parses them once at the edge and gives each a binary
// Key that sorts by address (IPs) or by name, which is used as the Kafka
// record key, the live-state map key and the Parquet sort column.
//
// Containment: an IP's history and live state include every listed prefix
// that covers it; a domain's include its parent domains; an e-mail
// address's include its domain and that domain's parents as listed on
// e-mail lists (disposable-domain lists are e-mail lists of domains).
//
// All values are immutable and safe for concurrent use.
package resource

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Kind is the type of a list and of the resources on it.
type Kind uint8

// Kinds. The zero Kind is invalid.
const (
	IP     Kind = 1
	Domain Kind = 2
	Email  Kind = 3
)

// ErrInvalid is wrapped by every parse error of this package.
var ErrInvalid = errors.New("invalid resource")

// ParseKind parses "ip", "domain" or "email".
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ip":
		return IP, nil
	case "domain":
		return Domain, nil
	case "email":
		return Email, nil
	}
	return 0, fmt.Errorf("unknown kind %q (want ip, domain or email)", s)
}

func (k Kind) String() string {
	switch k {
	case IP:
		return "ip"
	case Domain:
		return "domain"
	case Email:
		return "email"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= IP && k <= Email }

// Resource is one entry of a list. For IP, Prefix is set and masked; for
// Domain and Email, Name is set, lower case, without a trailing dot.
type Resource struct {
	Kind   Kind
	Prefix netip.Prefix
	Name   string
}

// FromPrefix returns the IP resource for p (masked, zone dropped, 4in6 unmapped).
func FromPrefix(p netip.Prefix) Resource {
	a := p.Addr().WithZone("")
	bits := p.Bits()
	if a.Is4In6() && bits >= 96 {
		a = a.Unmap()
		bits -= 96
	}
	return Resource{Kind: IP, Prefix: netip.PrefixFrom(a, bits).Masked()}
}

// FromAddr returns the host resource for a.
func FromAddr(a netip.Addr) Resource {
	a = a.WithZone("").Unmap()
	return Resource{Kind: IP, Prefix: netip.PrefixFrom(a, a.BitLen())}
}

// String is the canonical text form: "1.2.3.4" for a host, "1.2.3.0/24"
// for a network, the name otherwise.
func (r Resource) String() string {
	if r.Kind == IP {
		if r.Prefix.IsSingleIP() {
			return r.Prefix.Addr().String()
		}
		return r.Prefix.String()
	}
	return r.Name
}

// IsValid reports whether r holds a usable resource.
func (r Resource) IsValid() bool {
	if r.Kind == IP {
		return r.Prefix.IsValid()
	}
	return r.Kind.Valid() && r.Name != ""
}

// Key layout. The first byte is the kind, so keys of different kinds
// never collide and sort by kind first.
//
//	IP:     'i' | 16-byte address (IPv4 as ::ffff:a.b.c.d) | 1 byte bits in the 128-bit space
//	Domain: 'd' | name
//	Email:  'e' | name
const (
	keyIP     = 'i'
	keyDomain = 'd'
	keyEmail  = 'e'
	// IPKeyLen is the length of every IP key.
	IPKeyLen = 18
)

// Key returns r's binary key. It is a string so it can be a map key
// without copying; it is not meant to be printed.
func (r Resource) Key() string {
	var buf [IPKeyLen]byte
	switch r.Kind {
	case IP:
		return string(AppendPrefixKey(buf[:0], r.Prefix))
	case Domain:
		return string(keyDomain) + r.Name
	case Email:
		return string(keyEmail) + r.Name
	}
	return ""
}

// AppendPrefixKey appends the key of prefix p (which must be masked) to b.
func AppendPrefixKey(b []byte, p netip.Prefix) []byte {
	a := p.Addr()
	bits := p.Bits()
	if a.Is4() {
		bits += 96
	}
	a16 := a.As16()
	b = append(b, keyIP)
	b = append(b, a16[:]...)
	return append(b, byte(bits))
}

// FromKey decodes a key made by Key.
func FromKey(k string) (Resource, error) {
	if k == "" {
		return Resource{}, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	switch k[0] {
	case keyIP:
		if len(k) != IPKeyLen {
			return Resource{}, fmt.Errorf("%w: ip key of %d bytes", ErrInvalid, len(k))
		}
		var a16 [16]byte
		copy(a16[:], k[1:17])
		a := netip.AddrFrom16(a16)
		bits := int(k[17])
		if bits > 128 {
			return Resource{}, fmt.Errorf("%w: ip key with %d bits", ErrInvalid, bits)
		}
		if a.Is4In6() && bits >= 96 {
			a = a.Unmap()
			bits -= 96
		}
		return Resource{Kind: IP, Prefix: netip.PrefixFrom(a, bits).Masked()}, nil
	case keyDomain:
		return Resource{Kind: Domain, Name: k[1:]}, nil
	case keyEmail:
		return Resource{Kind: Email, Name: k[1:]}, nil
	}
	return Resource{}, fmt.Errorf("%w: key kind byte %#x", ErrInvalid, k[0])
}

// ParseIP parses an address or a CIDR prefix ("1.2.3.4", "1.2.3.0/24",
// "2001:db8::/32"). A prefix with host bits set is an error: lists that
// write such prefixes are normalised by the feed parsers, not here.
func ParseIP(s string) (Resource, error) {
	s = strings.TrimSpace(s)
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Resource{}, fmt.Errorf("%w: %q is not an IP prefix", ErrInvalid, s)
		}
		if p.Masked() != p {
			return Resource{}, fmt.Errorf("%w: %q has host bits set (did you mean %s?)", ErrInvalid, s, p.Masked())
		}
		return FromPrefix(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return Resource{}, fmt.Errorf("%w: %q is not an IP address", ErrInvalid, s)
	}
	return FromAddr(a), nil
}

// ParseDomain validates and normalises a domain name: lower case, no
// trailing dot, labels of letters, digits, '-' and '_' (as real lists
// carry), 1..63 bytes each, 253 bytes in all, at least two labels.
//
// Internationalised names are converted to their ASCII (punycode) form
// with the IDNA2008 lookup rules of UTS #46, non-transitional ("bücher.de"
// → "xn--bcher-kva.de", "BÜCHER.de" likewise, ideographic full stops are
// dots); a name that IDNA rejects (a disallowed code point, a bad bidi
// label, a label that does not survive the round trip) is an error. The
// canonical form, the key and every answer carry the ASCII form, so the
// Unicode and the punycode spelling of a name are the same resource.
// ASCII input is not run through IDNA (lists carry '_' and other
// lenient spellings that UTS #46 would reject).
func ParseDomain(s string) (Resource, error) {
	n, err := normDomain(s)
	if err != nil {
		return Resource{}, err
	}
	return Resource{Kind: Domain, Name: n}, nil
}

// ParseEmail parses an e-mail list entry or query: either an address
// "local@domain" or a bare domain (an e-mail domain: every address at it).
// The domain is normalised as by ParseDomain (internationalised domains
// become punycode); the local part is lower-cased and kept as given
// (UTF-8 local parts included).
func ParseEmail(s string) (Resource, error) {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		n, err := normDomain(s)
		if err != nil {
			return Resource{}, err
		}
		return Resource{Kind: Email, Name: n}, nil
	}
	local, dom := s[:at], s[at+1:]
	if local == "" || len(local) > 64 {
		return Resource{}, fmt.Errorf("%w: %q has an empty or over-long local part", ErrInvalid, s)
	}
	if !utf8.ValidString(local) {
		return Resource{}, fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalid, s)
	}
	for _, c := range local {
		// Non-ASCII local parts (RFC 6531) are kept as UTF-8: they have no
		// ASCII form, unlike the domain.
		if c <= ' ' || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '@' || c == '"' || c == ',' || c == '<' || c == '>' || c == '\\' {
			return Resource{}, fmt.Errorf("%w: %q has a bad character in its local part", ErrInvalid, s)
		}
	}
	n, err := normDomain(dom)
	if err != nil {
		return Resource{}, fmt.Errorf("%w: e-mail %q: bad domain: %s", ErrInvalid, s, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	return Resource{Kind: Email, Name: strings.ToLower(local) + "@" + n}, nil
}

// Parse parses s as a resource of kind k.
func Parse(k Kind, s string) (Resource, error) {
	switch k {
	case IP:
		return ParseIP(s)
	case Domain:
		return ParseDomain(s)
	case Email:
		return ParseEmail(s)
	}
	return Resource{}, fmt.Errorf("%w: kind %v", ErrInvalid, k)
}

// idnaProfile converts internationalised names: UTS #46 lookup mapping
// (case folding, width and dot mapping, NFC), non-transitional, with the
// bidi rule and label validation, but without the STD3 ASCII rule so that
// the ASCII checks of normDomain (which allow '_') decide on ASCII bytes.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule(), idna.StrictDomainName(false), idna.VerifyDNSLength(true))

// errIDNA wraps IDNA failures; its text is the whole message.
type errIDNA struct {
	name string
	err  error
}

func (e errIDNA) Error() string {
	return fmt.Sprintf("%q is not a valid internationalised domain name: %v", e.name, e.err)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func normDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !isASCII(s) {
		a, err := idnaProfile.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalid, errIDNA{s, err})
		}
		s = a
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return "", fmt.Errorf("%w: %q is not a domain name", ErrInvalid, s)
	}
	lower := true
	labels, labelLen := 1, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if labelLen == 0 {
				return "", fmt.Errorf("%w: %q has an empty label", ErrInvalid, s)
			}
			labels++
			labelLen = 0
			continue
		case c >= 'A' && c <= 'Z':
			lower = false
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return "", fmt.Errorf("%w: %q has a character not allowed in a domain name", ErrInvalid, s)
		}
		labelLen++
		if labelLen > 63 {
			return "", fmt.Errorf("%w: %q has a label over 63 bytes", ErrInvalid, s)
		}
	}
	if labelLen == 0 || labels < 2 {
		return "", fmt.Errorf("%w: %q is not a domain name (needs two labels)", ErrInvalid, s)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", fmt.Errorf("%w: %q is an IP address, not a domain name", ErrInvalid, s)
	}
	if !lower {
		s = strings.ToLower(s)
	}
	return s, nil
}

// Covering returns the keys whose listings apply to r, r's own key
// first. For an IP, bits4 and bits6 are the prefix lengths that occur at
// all (in the address family's own bit count); pass nil to consider every
// length. For names, the parent domains follow (never the bare TLD).
func (r Resource) Covering(bits4, bits6 []uint8) []string {
	switch r.Kind {
	case IP:
		a := r.Prefix.Addr()
		own := r.Prefix.Bits()
		lens := bits4
		if a.Is6() {
			lens = bits6
		}
		keys := []string{r.Key()}
		add := func(b int) {
			if b >= own {
				return
			}
			p, _ := a.Prefix(b)
			var buf [IPKeyLen]byte
			keys = append(keys, string(AppendPrefixKey(buf[:0], p)))
		}
		if lens == nil {
			for b := own - 1; b >= 0; b-- {
				add(b)
			}
		} else {
			for _, b := range lens {
				add(int(b))
			}
		}
		return keys
	case Domain, Email:
		keys := []string{r.Key()}
		prefix := string(keyDomain)
		name := r.Name
		if r.Kind == Email {
			prefix = string(keyEmail)
			if at := strings.LastIndexByte(name, '@'); at >= 0 {
				name = name[at+1:]
				keys = append(keys, prefix+name)
			}
		}
		for {
			dot := strings.IndexByte(name, '.')
			if dot < 0 {
				break
			}
			name = name[dot+1:]
			if strings.IndexByte(name, '.') < 0 {
				break // never the bare TLD
			}
			keys = append(keys, prefix+name)
		}
		return keys
	}
	return nil
}
