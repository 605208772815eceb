package watch

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// ref is the slow, obviously correct model: per account, a set of prefixes.
type ref map[Account]map[netip.Prefix]bool

func (r ref) add(a Account, p netip.Prefix) bool {
	if r[a] == nil {
		r[a] = map[netip.Prefix]bool{}
	}
	if r[a][p] {
		return false
	}
	r[a][p] = true
	return true
}

// matches: per account, the most specific entry containing p, else the
// first entry inside p in address order.
func (r ref) matches(p netip.Prefix) []Match {
	var out []Match
	for a, set := range r {
		var best, inside netip.Prefix
		for w := range set {
			if !w.Overlaps(p) || w.Addr().Is4() != p.Addr().Is4() {
				continue
			}
			if w.Bits() <= p.Bits() { // w contains p
				if !best.IsValid() || w.Bits() > best.Bits() {
					best = w
				}
			} else if !inside.IsValid() || natural(w, inside) < 0 {
				inside = w
			}
		}
		switch {
		case best.IsValid():
			out = append(out, Match{a, best})
		case inside.IsValid():
			out = append(out, Match{a, inside})
		}
	}
	return out
}

func natural(x, y netip.Prefix) int {
	if c := x.Addr().Compare(y.Addr()); c != 0 {
		return c
	}
	return x.Bits() - y.Bits()
}

// units enumerates what account a watches: IPv4 addresses, IPv6 /64s.
func (r ref) units(a Account) uint64 {
	seen := map[netip.Addr]bool{}
	for p := range r[a] {
		bits := p.Bits()
		if p.Addr().Is6() {
			if bits > 64 {
				bits = 64
			}
			q, _ := p.Addr().Prefix(bits)
			for x := q.Addr(); q.Contains(x); x = next64(x) {
				seen[x] = true
			}
			continue
		}
		for x := p.Addr(); p.Contains(x); x = x.Next() {
			seen[x] = true
		}
	}
	return uint64(len(seen))
}

func next64(x netip.Addr) netip.Addr {
	b := x.As16()
	for i := 7; i >= 0; i-- {
		if b[i]++; b[i] != 0 {
			break
		}
	}
	return netip.AddrFrom16(b)
}

func sortMatches(ms []Match) {
	slices.SortFunc(ms, func(x, y Match) int { return int(x.Account) - int(y.Account) })
}

// randPrefix draws from small spaces so entries overlap a lot.
func randPrefix(rng *rand.Rand) netip.Prefix {
	if rng.IntN(3) == 0 {
		var b [16]byte
		copy(b[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0})
		b[6] = byte(rng.IntN(4))
		b[7] = byte(rng.IntN(256))
		for i := 8; i < 16; i++ {
			b[i] = byte(rng.IntN(3))
		}
		bits := []int{48, 52, 56, 60, 62, 64, 64, 96, 127, 128, 128}[rng.IntN(11)]
		p, _ := netip.AddrFrom16(b).Prefix(bits)
		return p
	}
	a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(2)), byte(rng.IntN(8)), byte(rng.IntN(256))})
	bits := []int{16, 20, 22, 24, 24, 26, 28, 30, 32, 32, 32, 32}[rng.IntN(12)]
	p, _ := a.Prefix(bits)
	return p
}

// TestAgainstReference: seeded random adds, removes and matches agree
// with the slow model, as do every account's units.
func TestAgainstReference(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		tab, model := New(), ref{}
		for step := 0; step < 1500; step++ {
			a := Account(rng.IntN(5))
			p := randPrefix(rng)
			switch rng.IntN(10) {
			case 0, 1:
				removed, _ := tab.Remove(a, p)
				if removed != model[a][p] {
					t.Fatalf("seed %d step %d: Remove(%d, %v) = %v, model has it: %v", seed, step, a, p, removed, model[a][p])
				}
				delete(model[a], p)
			default:
				before := tab.Units(a)
				cost := tab.Cost(a, p)
				added, units, err := tab.Add(a, p)
				if err != nil {
					t.Fatal(err)
				}
				if want := model.add(a, p); added != want {
					t.Fatalf("seed %d step %d: Add(%d, %v) added=%v, want %v", seed, step, a, p, added, want)
				}
				if added && (units != cost || tab.Units(a)-before != units) {
					t.Fatalf("seed %d step %d: Add(%d, %v): units %d, cost %d, grew by %d", seed, step, a, p, units, cost, tab.Units(a)-before)
				}
			}
			q := randPrefix(rng)
			got := tab.AppendMatches(nil, q)
			want := model.matches(q)
			sortMatches(got)
			sortMatches(want)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: matches of %v\n got %v\nwant %v", seed, step, q, got, want)
			}
			var wantIn []netip.Prefix
			for w := range model[a] {
				if w.Bits() >= q.Bits() && q.Contains(w.Addr()) {
					wantIn = append(wantIn, w)
				}
			}
			slices.SortFunc(wantIn, natural)
			if gotIn := tab.AppendEntriesIn(nil, a, q); !slices.Equal(gotIn, wantIn) {
				t.Fatalf("seed %d step %d: entries of %d in %v\n got %v\nwant %v", seed, step, a, q, gotIn, wantIn)
			}
		}
		n := 0
		for a := range Account(5) {
			n += len(model[a])
			if got, want := tab.Units(a), model.units(a); got != want {
				t.Errorf("seed %d: account %d units %d, want %d", seed, a, got, want)
			}
			want := slices.SortedFunc(func(yield func(netip.Prefix) bool) {
				for p := range model[a] {
					if !yield(p) {
						return
					}
				}
			}, natural)
			got := tab.Entries(a)
			slices.SortFunc(got, natural)
			if !slices.Equal(got, want) {
				t.Errorf("seed %d: account %d entries differ: %d vs %d", seed, a, len(got), len(want))
			}
		}
		if tab.Len() != n {
			t.Errorf("seed %d: Len %d, want %d", seed, tab.Len(), n)
		}
		if k := tab.RemoveAll(0); k != len(model[0]) || tab.Len() != n-k || tab.Units(0) != 0 {
			t.Errorf("seed %d: RemoveAll(0) = %d (model %d), then Len %d (want %d), units %d", seed, k, len(model[0]), tab.Len(), n-k, tab.Units(0))
		}
		delete(model, 0)
		for range 200 {
			q := randPrefix(rng)
			got, want := tab.AppendMatches(nil, q), model.matches(q)
			sortMatches(got)
			sortMatches(want)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d after RemoveAll: matches of %v\n got %v\nwant %v", seed, q, got, want)
			}
		}
		for a := range Account(5) {
			if got, want := tab.Units(a), model.units(a); got != want {
				t.Errorf("seed %d after RemoveAll: account %d units %d, want %d", seed, a, got, want)
			}
		}
	}
}

func TestCounting(t *testing.T) {
	mp := netip.MustParsePrefix
	for _, tc := range []struct {
		name    string
		entries []string
		units   uint64
	}{
		{"a /24 is 256", []string{"192.0.2.0/24"}, 256},
		{"a /32 inside a watched /24 adds nothing", []string{"192.0.2.0/24", "192.0.2.7/32"}, 256},
		{"a /24 over watched /32s counts them once", []string{"192.0.2.7/32", "192.0.2.9/32", "192.0.2.0/24"}, 256},
		{"duplicates once", []string{"192.0.2.7/32", "192.0.2.7/32"}, 1},
		{"v6 counts /64s", []string{"2001:db8::/48"}, 65536},
		{"two v6 hosts in one /64 count once", []string{"2001:db8::1/128", "2001:db8::2/128"}, 1},
		{"v4 and v6 add up", []string{"192.0.2.0/30", "2001:db8::1/128", "2001:db8:0:1::/64"}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := New()
			for _, e := range tc.entries {
				if _, _, err := tab.Add(1, mp(e)); err != nil {
					t.Fatal(err)
				}
			}
			if got := tab.Units(1); got != tc.units {
				t.Errorf("units %d, want %d", got, tc.units)
			}
		})
	}
}

func TestAddWithin(t *testing.T) {
	tab := New()
	mp := netip.MustParsePrefix
	if _, ok, _, _ := tab.AddWithin(1, mp("192.0.2.0/25"), 200); !ok {
		t.Fatal("/25 within 200 refused")
	}
	if added, ok, cost, _ := tab.AddWithin(1, mp("192.0.2.0/24"), 200); ok || added || cost != 128 {
		t.Fatalf("/24 over 200: added=%v ok=%v cost=%d, want refused with cost 128", added, ok, cost)
	}
	if _, ok, cost, _ := tab.AddWithin(1, mp("192.0.2.9/32"), 128); !ok || cost != 0 {
		t.Fatalf("covered /32 at the limit: ok=%v cost=%d, want accepted at cost 0", ok, cost)
	}
	if got := tab.Units(1); got != 128 {
		t.Fatalf("units %d, want 128", got)
	}
}

// TestMatchBothWays: an added IP inside a watched CIDR, an added CIDR
// over watched entries; one match per account even when watched twice.
func TestMatchBothWays(t *testing.T) {
	tab := New()
	mp := netip.MustParsePrefix
	for _, e := range []struct {
		a Account
		p string
	}{{1, "198.51.100.0/24"}, {1, "198.51.100.7/32"}, {2, "198.51.100.128/25"}, {3, "203.0.113.5/32"}} {
		if _, _, err := tab.Add(e.a, mp(e.p)); err != nil {
			t.Fatal(err)
		}
	}
	got := tab.AppendMatches(nil, mp("198.51.100.7/32"))
	sortMatches(got)
	if want := []Match{{1, mp("198.51.100.7/32")}}; !slices.Equal(got, want) {
		t.Errorf("IP: %v, want %v", got, want)
	}
	got = tab.AppendMatches(nil, mp("198.51.100.0/16"))
	sortMatches(got)
	if want := []Match{{1, mp("198.51.100.0/24")}, {2, mp("198.51.100.128/25")}}; !slices.Equal(got, want) {
		t.Errorf("CIDR: %v, want %v", got, want)
	}
	if got := tab.AppendMatches(nil, mp("192.0.2.1/32")); len(got) != 0 {
		t.Errorf("unwatched: %v", got)
	}
}
