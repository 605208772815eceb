package alerts_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/watch"
)

// randPrefix draws a prefix in a small space (10.0.0.0/20 or
// 2001:db8::/44) so that entries and changes overlap often.
func randPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(4) > 0 {
		a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(16)), byte(r.IntN(256))})
		return netip.PrefixFrom(a, 20+r.IntN(13)).Masked()
	}
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[5] = byte(r.IntN(16))
	b[7] = byte(r.IntN(4))
	b[15] = byte(r.IntN(4))
	return netip.PrefixFrom(netip.AddrFrom16(b), 44+r.IntN(85)).Masked()
}

// TestMatchingAgainstReference feeds seeded random changes through the
// real pipeline and compares the stored listed alerts with a slow,
// obviously correct reference: for every ADD that changes its key's
// lists, every account with a watched entry overlapping the resource
// whose overlap no mute of the account contains gets one alert.
func TestMatchingAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	watched, muted := watch.New(), watch.New()
	p := startPipeline(t, watched, muted)
	const nAcct = 5
	ids := make([]account.ID, nAcct)
	entries := make([][]netip.Prefix, nAcct)
	mutes := make([][]netip.Prefix, nAcct)
	for i := range ids {
		ids[i] = p.account(fmt.Sprintf("r%d@example.com", i))
		for range 40 {
			e := randPrefix(r)
			watched.Add(watch.Account(ids[i]), e)
			if !slices.Contains(entries[i], e) {
				entries[i] = append(entries[i], e)
			}
		}
		for range 4 {
			m := randPrefix(r)
			muted.Add(watch.Account(ids[i]), m)
			mutes[i] = append(mutes[i], m)
		}
	}
	var cs []change.Change
	onLists := map[netip.Prefix]map[string]bool{}
	wantN := map[string]int{}
	for i := range 3000 {
		res := randPrefix(r)
		list := fmt.Sprintf("L%d", r.IntN(3))
		op := change.Add
		if r.IntN(3) == 0 {
			op = change.Rem
		}
		cs = append(cs, change.Change{Time: p.now(i), Op: op, List: list, Key: resource.FromPrefix(res).Key()})
		ls := onLists[res]
		if ls == nil {
			ls = map[string]bool{}
			onLists[res] = ls
		}
		if op == change.Rem {
			delete(ls, list)
			continue
		}
		if ls[list] {
			continue // duplicate
		}
		ls[list] = true
		for a := range ids {
			hit := false
			for _, w := range entries[a] {
				if !w.Overlaps(res) {
					continue
				}
				x := res
				if w.Bits() > res.Bits() {
					x = w
				}
				silenced := false
				for _, m := range mutes[a] {
					if m.Bits() <= x.Bits() && m.Contains(x.Addr()) {
						silenced = true
					}
				}
				hit = hit || !silenced
			}
			if hit {
				wantN[fmt.Sprintf("%d %s %s", ids[a], resource.FromPrefix(res), list)]++
			}
		}
	}
	p.produce(cs...)
	gotN := map[string]int{}
	all := p.allAlerts(ids...)
	for _, al := range all {
		gotN[fmt.Sprintf("%d %s %s", al.Account, al.Resource, al.List)]++
		w, err := netip.ParsePrefix(al.Watched)
		if err != nil {
			w = netip.PrefixFrom(netip.MustParseAddr(al.Watched), netip.MustParseAddr(al.Watched).BitLen())
		}
		if !slices.Contains(entries[slices.Index(ids, al.Account)], w) || !w.Overlaps(pfx(al.Resource)) {
			t.Errorf("alert %d reports watched %s, not an entry of account %d overlapping %s", al.ID, al.Watched, al.Account, al.Resource)
		}
	}
	n := 0
	for k, v := range wantN {
		n += v
		if gotN[k] != v {
			t.Errorf("%s: %d alerts, want %d", k, gotN[k], v)
		}
	}
	for k, v := range gotN {
		if wantN[k] == 0 {
			t.Errorf("%s: %d unexpected alerts", k, v)
		}
	}
	if n < 50 {
		t.Fatalf("only %d expected alerts: the test exercises too little", n)
	}
	t.Logf("%d changes, %d alerts as the reference says", len(cs), n)
}
