package live

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// reference is the slow, obviously correct model: (resource, list) pairs.
type reference struct{ on map[[2]string]bool }

func (r *reference) apply(res resource.Resource, list string, op change.Op) bool {
	k := [2]string{res.Key(), list}
	was := r.on[k]
	if op == change.Add {
		r.on[k] = true
	} else {
		delete(r.on, k)
	}
	return was != (op == change.Add)
}

func (r *reference) lookup(q resource.Resource) []string {
	var out []string
	for k := range r.on {
		e, _ := resource.FromKey(k[0])
		covers := false
		switch {
		case q.Kind == resource.IP && e.Kind == resource.IP:
			covers = e.Prefix.Bits() <= q.Prefix.Bits() && e.Prefix.Contains(q.Prefix.Addr())
		case q.Kind == e.Kind:
			covers = slices.Contains(q.Covering(nil, nil), k[0])
		}
		if covers && !slices.Contains(out, k[1]) {
			out = append(out, k[1])
		}
	}
	slices.Sort(out)
	return out
}

func randResource(rng *rand.Rand) resource.Resource {
	switch rng.IntN(5) {
	case 0, 1: // IPv4 in a small space so prefixes overlap
		a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(2)), byte(rng.IntN(4)), byte(rng.IntN(8))})
		bits := []int{32, 32, 24, 16, 8, 30}[rng.IntN(6)]
		return resource.FromPrefix(netip.PrefixFrom(a, bits).Masked())
	case 2:
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", rng.IntN(3), rng.IntN(4)))
		bits := []int{128, 128, 48, 32, 64}[rng.IntN(5)]
		return resource.FromPrefix(netip.PrefixFrom(a, bits).Masked())
	case 3:
		names := []string{"a.example.com", "example.com", "b.a.example.com", "other.org"}
		r, _ := resource.ParseDomain(names[rng.IntN(len(names))])
		return r
	default:
		names := []string{"x@example.com", "example.com", "y@mail.example.com", "mail.example.com", "z@other.org"}
		r, _ := resource.ParseEmail(names[rng.IntN(len(names))])
		return r
	}
}

func TestStateMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed))
		s, ref := New(), &reference{on: map[[2]string]bool{}}
		lists := []string{"L1", "L2", "L3"}
		for i := 0; i < 2000; i++ {
			res := randResource(rng)
			list := lists[rng.IntN(len(lists))]
			op := change.Op(1 + rng.IntN(2))
			want := ref.apply(res, list, op)
			if got := s.Apply([]byte(res.Key()), []byte(list), op); got != want {
				t.Fatalf("seed %d step %d: Apply(%v, %s, %v) changed=%v, want %v", seed, i, res, list, op, got, want)
			}
			q := randResource(rng)
			if q.Kind == resource.IP {
				q = resource.FromAddr(q.Prefix.Addr()) // look up addresses
			}
			if got, want := s.Lookup(q), ref.lookup(q); !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: Lookup(%v) = %v, want %v", seed, i, q, got, want)
			}
		}
		n := 0
		s.ForEach(func(k string, l []string) bool {
			n++
			r, _ := resource.FromKey(k)
			for _, x := range l {
				if !ref.on[[2]string{r.Key(), x}] {
					t.Fatalf("seed %d: ForEach has %v on %s, reference does not", seed, r, x)
				}
			}
			return true
		})
		keys := map[string]bool{}
		for k := range ref.on {
			keys[k[0]] = true
		}
		if n != len(keys) || s.Len() != n {
			t.Fatalf("seed %d: ForEach saw %d keys, Len %d, reference %d", seed, n, s.Len(), len(keys))
		}
	}
}

func BenchmarkApply(b *testing.B) {
	s := New()
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = []byte(resource.FromAddr(netip.AddrFrom4([4]byte{1, byte(i >> 8), byte(i), 1})).Key())
	}
	list := []byte("LIST")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Apply(keys[i&(len(keys)-1)], list, change.Op(1+(i>>16)&1))
	}
}

func BenchmarkLookup(b *testing.B) {
	s := New()
	for i := 0; i < 1<<20; i++ {
		k := resource.FromAddr(netip.AddrFrom4([4]byte{byte(i >> 16), byte(i >> 8), byte(i), 1})).Key()
		s.Apply([]byte(k), []byte("L"), change.Add)
	}
	for i := 0; i < 1000; i++ {
		k := resource.FromPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i), byte(i >> 8), 0, 0}), 16)).Key()
		s.Apply([]byte(k), []byte("N"), change.Add)
	}
	q := resource.FromAddr(netip.MustParseAddr("5.6.7.1"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Lookup(q)
	}
}
