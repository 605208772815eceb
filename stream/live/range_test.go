package live

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// refInside is the obvious reference: every (resource, list) pair of the
// model, filtered by netip containment, grouped and sorted by key.
func (r *reference) inside(q netip.Prefix) []Entry {
	byKey := map[string][]string{}
	for k := range r.on {
		e, _ := resource.FromKey(k[0])
		if e.Kind == resource.IP && e.Prefix.Bits() > q.Bits() && q.Contains(e.Prefix.Addr()) {
			byKey[k[0]] = append(byKey[k[0]], k[1])
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Entry, len(keys))
	for i, k := range keys {
		e, _ := resource.FromKey(k)
		slices.Sort(byKey[k])
		out[i] = Entry{Resource: e, Lists: byKey[k]}
	}
	return out
}

func fmtEntries(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%v%v ", e.Resource, e.Lists)
	}
	return b.String()
}

// TestInsideMatchesReference compares Inside (both the probing and the
// scanning path, pages included) with the reference on seeded random
// state: hosts and prefixes of both families clustered so that ranges
// hold many, some removed again.
func TestInsideMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	s := New()
	ref := &reference{on: map[[2]string]bool{}}
	lists := []string{"A", "B", "C", "D"}
	randAddr := func() netip.Addr {
		if rng.IntN(3) > 0 {
			return netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(8)), byte(rng.IntN(256))})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rng.IntN(2)), 14: byte(rng.IntN(4)), 15: byte(rng.IntN(256))})
	}
	var res []resource.Resource
	for range 6000 {
		a := randAddr()
		var r resource.Resource
		if rng.IntN(4) == 0 {
			r = resource.FromPrefix(netip.PrefixFrom(a, a.BitLen()-rng.IntN(a.BitLen()/2)).Masked())
		} else {
			r = resource.FromAddr(a)
		}
		res = append(res, r)
		op := change.Add
		if rng.IntN(5) == 0 {
			op = change.Rem
		}
		l := lists[rng.IntN(len(lists))]
		s.Apply([]byte(r.Key()), []byte(l), op)
		ref.apply(r, l, op)
	}
	queries := []string{"0.0.0.0/0", "::/0", "10.0.0.0/8", "10.1.0.0/16", "10.2.3.0/24", "10.2.3.128/25", "10.2.3.4/31",
		"2001:db8::/32", "2001:db8::/120", "2001:db8:1::/48", "192.0.2.0/24"}
	for range 60 {
		a := res[rng.IntN(len(res))].Prefix.Addr()
		queries = append(queries, netip.PrefixFrom(a, rng.IntN(a.BitLen())).Masked().String())
	}
	for _, qs := range queries {
		q := netip.MustParsePrefix(qs)
		want := ref.inside(q)
		got, total := s.Inside(q, 0, len(want)+5)
		if total != len(want) || fmtEntries(got) != fmtEntries(want) {
			t.Fatalf("Inside(%s): total %d, %d entries\n%s\nwant %d\n%s", q, total, len(got), fmtEntries(got), len(want), fmtEntries(want))
		}
		// Pages put together are the whole answer.
		var paged []Entry
		n := max(7, len(want)/9)
		for skip := 0; skip < len(want)+n; skip += n {
			page, total := s.Inside(q, skip, n)
			if total != len(want) || len(page) > n {
				t.Fatalf("Inside(%s, %d, %d): %d entries, total %d", q, skip, n, len(page), total)
			}
			paged = append(paged, page...)
		}
		if fmtEntries(paged) != fmtEntries(want) {
			t.Fatalf("Inside(%s) paged:\n%s\nwant\n%s", q, fmtEntries(paged), fmtEntries(want))
		}
	}
	if got, total := s.Inside(netip.MustParsePrefix("10.2.3.4/32"), 0, 10); got != nil || total != 0 {
		t.Errorf("a single address has %d entries inside", total)
	}
}
