package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/live"
)

// heapAlloc returns the live heap after a full collection.
func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// memEntry is one resource to load: its key and its lists.
type memEntry struct {
	key   []byte
	lists []uint8
}

// memEntries makes n resources of one kind ("host", "prefix" or
// "domain"), each on 1..3 lists.
func memEntries(kind string, n int, seed uint64) []memEntry {
	rng := rand.New(rand.NewPCG(seed, 5))
	var keys [][]byte
	switch kind {
	case "host":
		for _, p := range genLiveSet(seed, n, 0).hosts {
			keys = append(keys, resource.AppendPrefixKey(nil, resource.FromPrefix(p).Prefix))
		}
	case "prefix":
		for _, p := range genLiveSet(seed, 0, n).nets {
			keys = append(keys, resource.AppendPrefixKey(nil, resource.FromPrefix(p).Prefix))
		}
	case "domain":
		tlds := []string{"com", "net", "org", "ru", "info", "xyz", "top", "cn", "de", "io"}
		words := []string{"login", "secure", "account", "update", "mail", "cdn", "files", "shop", "pay", "bank", "verify", "app"}
		seen := make(map[string]bool, n)
		for len(keys) < n {
			name := fmt.Sprintf("%s-%x.%s", words[rng.IntN(len(words))], rng.Uint32()>>rng.IntN(20), tlds[rng.IntN(len(tlds))])
			if rng.IntN(3) == 0 {
				name = words[rng.IntN(len(words))] + "." + name
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			keys = append(keys, []byte(resource.Resource{Kind: resource.Domain, Name: name}.Key()))
		}
	default:
		panic("kind " + kind)
	}
	out := make([]memEntry, len(keys))
	for i, k := range keys {
		ls := rng.Perm(len(listNames))[:1+rng.IntN(3)]
		e := memEntry{key: k}
		for _, l := range ls {
			e.lists = append(e.lists, uint8(l))
		}
		out[i] = e
	}
	return out
}

// memFigures are heap bytes per resource.
type memFigures struct {
	live, naive, keyBytes float64
}

// measureMemory loads es into a live.State and, separately, into a naive
// map[string][]string (key -> list names), and returns heap bytes per
// resource of each, plus the raw key bytes per resource.
func measureMemory(es []memEntry) memFigures {
	n := float64(len(es))
	var f memFigures
	for _, e := range es {
		f.keyBytes += float64(len(e.key))
	}
	f.keyBytes /= n

	before := heapAlloc()
	s := loadLive(es)
	f.live = float64(heapAlloc()-before) / n
	if s.Len() != len(es) {
		panic(fmt.Sprintf("live state holds %d of %d resources", s.Len(), len(es)))
	}
	runtime.KeepAlive(s)

	before = heapAlloc()
	naive := loadNaive(es)
	f.naive = float64(heapAlloc()-before) / n
	runtime.KeepAlive(naive)
	runtime.KeepAlive(es) // else the caller's entries may be freed inside a measurement
	return f
}

// loadLive applies es as the processor does, in batches of 10,000.
func loadLive(es []memEntry) *live.State {
	lists := make([][]byte, len(listNames))
	for i, name := range listNames {
		lists[i] = []byte(name)
	}
	s := live.New()
	ds := make([]change.Decoded, 0, 10_000)
	changed := make([]bool, 10_000+3)
	for _, e := range es {
		for _, l := range e.lists {
			ds = append(ds, change.Decoded{Op: change.Add, List: lists[l], Key: e.key})
		}
		if len(ds) >= 10_000 {
			s.ApplyBatch(ds, changed[:len(ds)])
			ds = ds[:0]
		}
	}
	s.ApplyBatch(ds, changed[:len(ds)])
	return s
}

// loadNaive is the obvious representation: key -> names of its lists.
func loadNaive(es []memEntry) map[string][]string {
	m := map[string][]string{}
	for _, e := range es {
		k := string(e.key)
		for _, l := range e.lists {
			m[k] = append(m[k], listNames[l])
		}
	}
	return m
}

var memKinds = []string{"host", "prefix", "domain"}

// BenchmarkMemory reports heap bytes per live resource for
// NETWARDEN_BENCH_MEM_RESOURCES resources of each kind (default
// 1,000,000), each on 1..3 lists, against the raw key bytes and a naive
// map[string][]string measured in the same run.
func BenchmarkMemory(b *testing.B) {
	n := envInt(b, "NETWARDEN_BENCH_MEM_RESOURCES", 1_000_000)
	for _, kind := range memKinds {
		b.Run(kind, func(b *testing.B) {
			es := memEntries(kind, n, 21)
			var f memFigures
			for b.Loop() {
				f = measureMemory(es)
			}
			b.ReportMetric(f.live, "live_B/res")
			b.ReportMetric(f.naive, "naive_map_B/res")
			b.ReportMetric(f.keyBytes, "key_B/res")
			b.ReportMetric(f.live/f.naive, "live/naive")
			b.ReportMetric(f.live/f.keyBytes, "live/key")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestMemoryPerLiveResource checks that the live state stays well below the
// naive representation per resource (200,000 of each kind; skipped with -short).
func TestMemoryPerLiveResource(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB")
	}
	for _, kind := range memKinds {
		f := measureMemory(memEntries(kind, 200_000, 21))
		t.Logf("%-6s live %5.1f B/resource, naive map %5.1f, raw key %4.1f", kind, f.live, f.naive, f.keyBytes)
		if f.live >= f.naive {
			t.Errorf("%s: live state uses %.1f B/resource, not less than the naive map's %.1f", kind, f.live, f.naive)
		}
	}
}
