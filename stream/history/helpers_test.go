package history

import (
	"cmp"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// gen makes random changes over a fixed pool of resources.
type gen struct {
	rng   *rand.Rand
	keys  []string
	lists []string
	t0    time.Time
	span  time.Duration
}

func newGen(seed uint64, nkeys int, months int) *gen {
	g := &gen{
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		lists: []string{"spamhaus-drop", "firehol-l1", "abuse-ch", "disposable", "phish", "tor-exits"},
		t0:    time.Date(2024, 11, 3, 0, 0, 0, 0, time.UTC),
		span:  time.Duration(months) * 30 * 24 * time.Hour,
	}
	seen := map[string]bool{}
	for len(g.keys) < nkeys {
		k := g.randKey()
		if !seen[k] {
			seen[k] = true
			g.keys = append(g.keys, k)
		}
	}
	return g
}

func (g *gen) randKey() string {
	r := g.rng
	switch r.IntN(6) {
	case 0, 1: // IPv4 host
		a := netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		return resource.FromAddr(a).Key()
	case 2: // IPv4 prefix
		a := netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		bits := []int{8, 16, 20, 24, 28}[r.IntN(5)]
		return resource.FromPrefix(netip.PrefixFrom(a, bits).Masked()).Key()
	case 3: // IPv6 prefix or host
		var b [16]byte
		b[0], b[1] = 0x20, 0x01
		for i := 2; i < 16; i++ {
			b[i] = byte(r.IntN(256))
		}
		bits := []int{32, 48, 56, 64, 128}[r.IntN(5)]
		return resource.FromPrefix(netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()).Key()
	case 4:
		return resource.Resource{Kind: resource.Domain, Name: fmt.Sprintf("h%d.example%d.com", r.IntN(1000), r.IntN(50))}.Key()
	default:
		if r.IntN(2) == 0 {
			return resource.Resource{Kind: resource.Email, Name: fmt.Sprintf("u%d@mail%d.org", r.IntN(1000), r.IntN(30))}.Key()
		}
		return resource.Resource{Kind: resource.Email, Name: fmt.Sprintf("mail%d.org", r.IntN(30))}.Key()
	}
}

// batch returns n changes in arrival order; some share key and time with
// their predecessor to exercise tie order.
func (g *gen) batch(n int) []change.Change {
	out := make([]change.Change, 0, n)
	for len(out) < n {
		var c change.Change
		if len(out) > 0 && g.rng.IntN(10) == 0 {
			c = out[len(out)-1]
			c.Op = 3 - c.Op
			c.List = g.lists[g.rng.IntN(len(g.lists))]
		} else {
			c = change.Change{
				Time: g.t0.Add(time.Duration(g.rng.Int64N(int64(g.span)))).Truncate(time.Microsecond),
				Op:   change.Op(1 + g.rng.IntN(2)),
				List: g.lists[g.rng.IntN(len(g.lists))],
				Key:  g.keys[g.rng.IntN(len(g.keys))],
			}
		}
		out = append(out, c)
	}
	return out
}

// refStore is the obvious reference: every committed change in arrival order.
type refStore struct{ all []change.Change }

func (r *refStore) add(cs []change.Change) { r.all = append(r.all, cs...) }

// lookup filters in a loop and orders by (key, time), arrival for ties.
func (r *refStore) lookup(keys []string) []change.Change {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var out []change.Change
	for _, c := range r.all {
		if want[c.Key] {
			out = append(out, c)
		}
	}
	sortChanges(out)
	return out
}

func (r *refStore) scan() []change.Change {
	out := slices.Clone(r.all)
	sortChanges(out)
	return out
}

func sortChanges(cs []change.Change) {
	slices.SortStableFunc(cs, func(a, b change.Change) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), a.Time.Compare(b.Time))
	})
}

func collectLookup(t testing.TB, s *Store, keys []string) []change.Change {
	t.Helper()
	var out []change.Change
	if err := s.Lookup(keys, func(c change.Change) { out = append(out, c) }); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return out
}

func sameChanges(a, b []change.Change) error {
	if len(a) != len(b) {
		return fmt.Errorf("got %d changes, want %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.Time.Equal(y.Time) || x.Op != y.Op || x.List != y.List || x.Key != y.Key {
			return fmt.Errorf("change %d: got %s, want %s", i, fmtChange(x), fmtChange(y))
		}
	}
	return nil
}

func fmtChange(c change.Change) string {
	r, _ := c.Resource()
	return fmt.Sprintf("{%s %v %s %s}", c.Time.Format(time.RFC3339Nano), c.Op, c.List, r)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("HISTORY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}
