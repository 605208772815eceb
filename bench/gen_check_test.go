package bench

import (
	"testing"

	"github.com/netwarden/netwarden/stream/live"
)

// TestGenerate checks the generator's promises the benchmarks rely on:
// exactly n events in time order, every one state-changing when applied in
// order, the final live state as predicted, keys unique per resource.
func TestGenerate(t *testing.T) {
	const n = 200_000
	d := generate(1, n)
	if len(d.events) != n {
		t.Fatalf("%d events, want %d", len(d.events), n)
	}
	s := live.New()
	for i, e := range d.events {
		if i > 0 && e.us < d.events[i-1].us {
			t.Fatalf("event %d out of time order", i)
		}
		if !s.Apply(d.keyBytes(e.res), []byte(listNames[e.list]), e.op) {
			t.Fatalf("event %d (%v %s %v) does not change the live state", i, e.op, listNames[e.list], d.resource(e.res))
		}
	}
	if s.Len() != d.onNow {
		t.Fatalf("live state holds %d resources, generator says %d", s.Len(), d.onNow)
	}
	seen := make(map[string]bool, d.nres)
	for i := range d.nres {
		k := d.key(uint32(i))
		if seen[k] {
			t.Fatalf("resource %d (%v) generated twice", i, d.resource(uint32(i)))
		}
		seen[k] = true
	}
	st := s.Stats()
	t.Logf("%d events, %d resources (%d prefixes), live: %d hosts, %d prefixes", n, d.nres, len(d.nets), st.Hosts, st.Prefixes)
	if again := generate(1, n); again.nres != d.nres || again.events[n-1] != d.events[n-1] {
		t.Fatal("generator is not deterministic")
	}
}
