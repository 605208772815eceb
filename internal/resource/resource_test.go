package resource

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want string // "" = error
	}{
		{IP, "1.2.3.4", "1.2.3.4"},
		{IP, " 1.2.3.4 ", "1.2.3.4"},
		{IP, "1.2.3.0/24", "1.2.3.0/24"},
		{IP, "1.2.3.4/32", "1.2.3.4"},
		{IP, "::ffff:1.2.3.4", "1.2.3.4"},
		{IP, "2001:DB8::1", "2001:db8::1"},
		{IP, "2001:db8::/32", "2001:db8::/32"},
		{IP, "1.2.3.4/24", ""}, // host bits set
		{IP, "1.2.3", ""},
		{IP, "fe80::1%eth0", ""},
		{IP, "", ""},
		{IP, "example.com", ""},
		{Domain, "Example.COM.", "example.com"},
		{Domain, "a_b.example.com", "a_b.example.com"},
		{Domain, "com", ""},
		{Domain, "a..b", ""},
		{Domain, "1.2.3.4", ""},
		{Domain, "exa mple.com", ""},
		{Email, "User@Example.com", "user@example.com"},
		{Email, "example.com", "example.com"},
		{Email, "@example.com", ""},
		{Email, "a b@example.com", ""},
		{Email, "a@b", ""},
		// IDNA: Unicode names become punycode (UTS #46 lookup, non-transitional).
		{Domain, "bücher.de", "xn--bcher-kva.de"},
		{Domain, "BÜCHER.DE", "xn--bcher-kva.de"},
		{Domain, "www.bücher.de.", "www.xn--bcher-kva.de"},
		{Domain, "bücher。de", "xn--bcher-kva.de"}, // ideographic full stop
		{Domain, "faß.de", "xn--fa-hia.de"},       // non-transitional: ß stays
		{Domain, "例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{Domain, "xn--bcher-kva.de", "xn--bcher-kva.de"},
		{Domain, "-bücher.de", ""},        // leading hyphen
		{Domain, "a\u200db\u00fc.de", ""}, // zero-width joiner out of context
		{Domain, "aא\u00fc.de", ""},       // bidi rule: LTR and RTL in one label
		{Domain, "bücher", ""},            // one label
		{Domain, "bü cher.de", ""},
		{Email, "Jörg@Bücher.de", "jörg@xn--bcher-kva.de"},
		{Email, "info@bücher.de", "info@xn--bcher-kva.de"},
		{Email, "bücher.de", "xn--bcher-kva.de"},
		{Email, "a\x80b@example.com", ""},   // not UTF-8
		{Email, "a\u0085b@example.com", ""}, // C1 control
	}
	for _, tt := range tests {
		r, err := Parse(tt.kind, tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Parse(%v, %q) = %v, want error", tt.kind, tt.in, r)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%v, %q): %v", tt.kind, tt.in, err)
			continue
		}
		if r.String() != tt.want {
			t.Errorf("Parse(%v, %q) = %q, want %q", tt.kind, tt.in, r, tt.want)
		}
	}
}

func TestKeyRoundTripAndOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var rs []Resource
	for i := 0; i < 5000; i++ {
		var p netip.Prefix
		if rng.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
			p = netip.PrefixFrom(a, rng.IntN(33)).Masked()
		} else {
			var b [16]byte
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), rng.IntN(129)).Masked()
		}
		r := FromPrefix(p)
		back, err := FromKey(r.Key())
		if err != nil || back != r {
			t.Fatalf("FromKey(Key(%v)) = %v, %v", r, back, err)
		}
		rs = append(rs, r)
	}
	// Keys of IPv4 resources sort like their addresses.
	slices.SortFunc(rs, func(a, b Resource) int { return bytes.Compare([]byte(a.Key()), []byte(b.Key())) })
	for i := 1; i < len(rs); i++ {
		a, b := rs[i-1].Prefix.Addr(), rs[i].Prefix.Addr()
		if a.Is4() == b.Is4() && a.Compare(b) > 0 {
			t.Fatalf("key order %v before %v", rs[i-1], rs[i])
		}
	}
	for _, s := range []string{"", "x", "i123", "d"} {
		if _, err := FromKey(s); err == nil && s != "d" {
			t.Errorf("FromKey(%q) accepted", s)
		}
	}
}

func TestCovering(t *testing.T) {
	ip, _ := ParseIP("10.1.2.3")
	got := ip.Covering([]uint8{8, 24, 32}, nil)
	want := []string{ip.Key(), FromPrefix(netip.MustParsePrefix("10.0.0.0/8")).Key(), FromPrefix(netip.MustParsePrefix("10.1.2.0/24")).Key()}
	if !slices.Equal(got, want) {
		t.Errorf("Covering with lengths: %q, want %q", got, want)
	}
	if all := ip.Covering(nil, nil); len(all) != 33 {
		t.Errorf("Covering(nil) = %d keys, want 33", len(all))
	}
	e, _ := ParseEmail("joe@mail.example.com")
	var names []string
	for _, k := range e.Covering(nil, nil) {
		r, _ := FromKey(k)
		names = append(names, r.Name)
	}
	if want := []string{"joe@mail.example.com", "mail.example.com", "example.com"}; !slices.Equal(names, want) {
		t.Errorf("email covering %q, want %q", names, want)
	}
	d, _ := ParseDomain("a.b.example.org")
	if n := len(d.Covering(nil, nil)); n != 3 {
		t.Errorf("domain covering has %d keys, want 3", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.0/24", "::1", "2001:db8::/32", "example.com", "a@b.c", "", "@", "a..b"} {
		f.Add(uint8(1), s)
		f.Add(uint8(3), s)
	}
	f.Fuzz(func(t *testing.T, k uint8, s string) {
		kind := Kind(k%3 + 1)
		r, err := Parse(kind, s)
		if err != nil {
			return
		}
		back, err := FromKey(r.Key())
		if err != nil || back != r {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
		again, err := Parse(kind, r.String())
		if err != nil || again != r {
			t.Fatalf("canonical form %q of %q does not parse back: %v", r.String(), s, err)
		}
	})
}
