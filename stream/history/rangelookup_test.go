package history

import (
	"context"
	"net/netip"
	"testing"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// refRange is the obvious reference: every committed change whose key
// is in one of the ranges, by containment, in (key, time, arrival) order.
func (r *refStore) refRange(ranges []resource.KeyRange) []change.Change {
	var out []change.Change
	for _, c := range r.all {
		for _, kr := range ranges {
			if kr.Contains(c.Key) {
				out = append(out, c)
				break
			}
		}
	}
	sortChanges(out)
	return out
}

func collectRange(t *testing.T, s *Store, ranges []resource.KeyRange, limit int) ([]change.Change, bool) {
	t.Helper()
	var out []change.Change
	_, complete, err := s.RangeGen(ranges, limit, func(c change.Change) { out = append(out, c) })
	if err != nil {
		t.Fatalf("RangeGen: %v", err)
	}
	return out, complete
}

// TestRangeGenMatchesReference compares key-range reads with a filter of
// every committed change, over several files, small row groups (many
// pages and row groups per range) and after compaction.
func TestRangeGenMatchesReference(t *testing.T) {
	g := newGen(11, 4000, 3)
	s := openTest(t, Config{Dir: t.TempDir(), RowGroupRows: 1000, CompactMinFiles: 2})
	defer s.Close()
	var ref refStore
	for i := range 6 {
		b := g.batch(4000)
		if err := s.Commit(b, map[int32]int64{0: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		ref.add(b)
	}
	queries := []string{"0.0.0.0/0", "::/0", "2001::/16", "128.0.0.0/1", "10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"}
	// Random prefixes around stored keys, so most hold some.
	for i := 0; len(queries) < 200; i++ {
		r, err := resource.FromKey(g.keys[g.rng.IntN(len(g.keys))])
		if err != nil || r.Kind != resource.IP {
			continue
		}
		a := r.Prefix.Addr()
		queries = append(queries, netip.PrefixFrom(a, g.rng.IntN(a.BitLen()+1)).Masked().String())
	}
	check := func(stage string) {
		nonEmpty := 0
		for _, q := range queries {
			rr, err := resource.ParseIP(q)
			if err != nil {
				t.Fatal(err)
			}
			ranges := rr.InsideRanges()
			want := ref.refRange(ranges)
			got, complete := collectRange(t, s, ranges, len(want))
			if !complete {
				t.Fatalf("%s %s: incomplete with limit = its %d rows", stage, q, len(want))
			}
			if err := sameChanges(got, want); err != nil {
				t.Fatalf("%s %s: %v", stage, q, err)
			}
			for _, c := range got {
				if c.HasPosition() { // not read: must not pass for a real one
					t.Fatalf("%s %s: change %s has position %d/%d, want none", stage, q, fmtChange(c), c.Partition, c.Offset)
				}
			}
			if len(want) > 0 {
				nonEmpty++
				if got, complete := collectRange(t, s, ranges, len(want)-1); complete || got != nil {
					t.Fatalf("%s %s: limit %d of %d rows: complete=%v, %d rows passed", stage, q, len(want)-1, len(want), complete, len(got))
				}
			}
		}
		if nonEmpty < len(queries)/2 {
			t.Fatalf("%s: only %d of %d queries hold rows: the test is too weak", stage, nonEmpty, len(queries))
		}
	}
	check("before compaction")
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Files >= 6 {
		t.Fatalf("compaction left %d files", st.Files)
	}
	check("after compaction")
}
