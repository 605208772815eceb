package bench

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/live"
)

// liveSet is a generated population of live resources.
type liveSet struct {
	hosts []netip.Prefix // single addresses: 99% IPv4, 1% IPv6
	nets  []netip.Prefix // prefixes: 95% IPv4, 5% IPv6
}

func genLiveSet(seed uint64, nHosts, nNets int) liveSet {
	g := newIPGen(rand.New(rand.NewPCG(seed, 7)))
	var ls liveSet
	for len(ls.hosts) < nHosts {
		if g.rng.IntN(100) == 0 {
			if p := g.v6(); p.IsSingleIP() {
				ls.hosts = append(ls.hosts, p)
			}
			continue
		}
		ls.hosts = append(ls.hosts, g.host4())
	}
	for len(ls.nets) < nNets {
		if g.rng.IntN(20) == 0 {
			if p := g.v6(); !p.IsSingleIP() {
				ls.nets = append(ls.nets, p)
			}
			continue
		}
		ls.nets = append(ls.nets, g.net4())
	}
	return ls
}

// fillLive adds every prefix of ps to 1..3 random lists, in batches as the
// processor applies them.
func fillLive(s *live.State, rng *rand.Rand, ps []netip.Prefix) {
	const batch = 10_000
	ds := make([]change.Decoded, 0, batch)
	changed := make([]bool, batch)
	flush := func() {
		s.ApplyBatch(ds, changed[:len(ds)])
		ds = ds[:0]
	}
	for _, p := range ps {
		key := resource.AppendPrefixKey(nil, resource.FromPrefix(p).Prefix)
		for _, l := range rng.Perm(len(listNames))[:1+rng.IntN(3)] {
			if len(ds) == batch {
				flush()
			}
			ds = append(ds, change.Decoded{Op: change.Add, List: []byte(listNames[l]), Key: key})
		}
	}
	flush()
}

// lookupAddrs returns n addresses: 50% listed hosts, 25% inside listed
// prefixes, 25% random public IPv4.
func (ls liveSet) lookupAddrs(seed uint64, n int) []netip.Addr {
	rng := rand.New(rand.NewPCG(seed, 8))
	g := ipGen{rng: rng}
	out := make([]netip.Addr, n)
	for i := range out {
		switch r := rng.IntN(4); {
		case r < 2:
			out[i] = ls.hosts[rng.IntN(len(ls.hosts))].Addr()
		case r == 2:
			out[i] = randomIn(rng, ls.nets[rng.IntN(len(ls.nets))])
		default:
			out[i] = addr4(g.public4())
		}
	}
	return out
}

// lockedMap is the baseline: exact host lookups in a map under an RWMutex.
type lockedMap struct {
	mu sync.RWMutex
	m  map[netip.Addr]bool
}

// concurrentResult is one phase's sampled latencies and rates.
type concurrentResult struct {
	samples []time.Duration
	lookups int64
	elapsed time.Duration
	writes  int64
}

// runConcurrent runs readers goroutines calling lookup on addrs for d
// while one writer calls write(batch) every batch/rate seconds. Every
// sampleEvery-th lookup is timed.
func runConcurrent(readers int, d time.Duration, addrs []netip.Addr, lookup func(netip.Addr) int,
	rate, batch int, write func(rng *rand.Rand, n int)) concurrentResult {
	const sampleEvery = 8
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		mu    sync.Mutex
		res   concurrentResult
		start = time.Now()
	)
	for r := range readers {
		wg.Go(func() {
			samples := make([]time.Duration, 0, 1<<16)
			i := r * len(addrs) / readers
			var n int64
			sink := 0
			for !stop.Load() {
				for range sampleEvery - 1 {
					sink += lookup(addrs[i%len(addrs)])
					i++
				}
				t := time.Now()
				sink += lookup(addrs[i%len(addrs)])
				samples = append(samples, time.Since(t))
				i++
				n += sampleEvery
			}
			mu.Lock()
			res.samples = append(res.samples, samples...)
			res.lookups += n
			mu.Unlock()
			runtime.KeepAlive(sink)
		})
	}
	wg.Go(func() {
		// Paced by the clock, not by ticks: a writer that was not scheduled
		// in time catches up, still batch changes per ApplyBatch.
		rng := rand.New(rand.NewPCG(uint64(rate), uint64(batch)))
		interval := time.Duration(float64(time.Second) * float64(batch) / float64(rate))
		var n int64
		for !stop.Load() {
			for !stop.Load() && float64(n+int64(batch)) <= time.Since(start).Seconds()*float64(rate) {
				write(rng, batch)
				n += int64(batch)
			}
			time.Sleep(interval)
		}
		mu.Lock()
		res.writes = n
		mu.Unlock()
	})
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// BenchmarkLiveLookupConcurrent fills a live.State with
// NETWARDEN_BENCH_LIVE_RESOURCES hosts (default 2,000,000) and
// NETWARDEN_BENCH_LIVE_PREFIXES prefixes (default 50,000), then runs
// 4×GOMAXPROCS goroutines of containment-aware lookups (live.State.Lookup)
// while one goroutine applies NETWARDEN_BENCH_LIVE_WRITES changes/s
// (default 100,000) with ApplyBatch, in batches of 100 or of 10,000 (the
// processor's poll size). Baseline in the same run: exact lookups in a
// map[netip.Addr]bool under a sync.RWMutex holding the same hosts, with
// the same writer. Each side runs NETWARDEN_BENCH_LIVE_DURATION (default
// 4s) in two alternating halves; one lookup in 8 is timed.
func BenchmarkLiveLookupConcurrent(b *testing.B) {
	nHosts := envInt(b, "NETWARDEN_BENCH_LIVE_RESOURCES", 2_000_000)
	nNets := envInt(b, "NETWARDEN_BENCH_LIVE_PREFIXES", 50_000)
	rate := envInt(b, "NETWARDEN_BENCH_LIVE_WRITES", 100_000)
	dur := envDuration(b, "NETWARDEN_BENCH_LIVE_DURATION", 4*time.Second)
	readers := 4 * runtime.GOMAXPROCS(0)

	t0 := time.Now()
	ls := genLiveSet(11, nHosts, nNets)
	rng := rand.New(rand.NewPCG(12, 12))
	state := live.New()
	fillLive(state, rng, ls.hosts)
	fillLive(state, rng, ls.nets)
	base := &lockedMap{m: make(map[netip.Addr]bool, len(ls.hosts))}
	for _, p := range ls.hosts {
		base.m[p.Addr()] = true
	}
	addrs := ls.lookupAddrs(13, 1<<20)
	st := state.Stats()
	b.Logf("live state: %d hosts, %d prefixes, %d list sets; filled in %v; %d readers", st.Hosts, st.Prefixes, st.Sets, time.Since(t0).Round(time.Millisecond), readers)

	// The writers flip random hosts on and off random lists.
	lists := make([][]byte, len(listNames))
	for i, n := range listNames {
		lists[i] = []byte(n)
	}
	hostKeys := make([][]byte, len(ls.hosts))
	for i, p := range ls.hosts {
		hostKeys[i] = resource.AppendPrefixKey(nil, resource.FromPrefix(p).Prefix)
	}
	var ds []change.Decoded
	var changed []bool
	writeLive := func(rng *rand.Rand, n int) {
		ds = ds[:0]
		for range n {
			ds = append(ds, change.Decoded{Op: change.Op(1 + rng.IntN(2)), List: lists[rng.IntN(len(lists))], Key: hostKeys[rng.IntN(len(hostKeys))]})
		}
		if cap(changed) < n {
			changed = make([]bool, n)
		}
		state.ApplyBatch(ds, changed[:n])
	}
	writeMap := func(rng *rand.Rand, n int) {
		type w struct {
			a  netip.Addr
			on bool
		}
		ws := make([]w, n)
		for i := range ws {
			ws[i] = w{ls.hosts[rng.IntN(len(ls.hosts))].Addr(), rng.IntN(2) == 0}
		}
		base.mu.Lock()
		for _, w := range ws {
			if w.on {
				base.m[w.a] = true
			} else {
				delete(base.m, w.a)
			}
		}
		base.mu.Unlock()
	}
	lookupLive := func(a netip.Addr) int { return len(state.Lookup(resource.FromAddr(a))) }
	lookupMap := func(a netip.Addr) int {
		base.mu.RLock()
		on := base.m[a]
		base.mu.RUnlock()
		if on {
			return 1
		}
		return 0
	}

	for _, batch := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("writebatch=%d", batch), func(b *testing.B) {
			var lv, mp concurrentResult
			add := func(into *concurrentResult, r concurrentResult) {
				into.samples = append(into.samples, r.samples...)
				into.lookups += r.lookups
				into.elapsed += r.elapsed
				into.writes += r.writes
			}
			for b.Loop() {
				for range 2 {
					add(&lv, runConcurrent(readers, dur/2, addrs, lookupLive, rate, batch, writeLive))
					add(&mp, runConcurrent(readers, dur/2, addrs, lookupMap, rate, batch, writeMap))
				}
			}
			l, m := summarize(lv.samples), summarize(mp.samples)
			b.ReportMetric(float64(l.p50), "live_p50_ns")
			b.ReportMetric(float64(l.p99), "live_p99_ns")
			b.ReportMetric(float64(m.p50), "map_p50_ns")
			b.ReportMetric(float64(m.p99), "map_p99_ns")
			b.ReportMetric(float64(l.p999), "live_p99.9_ns")
			b.ReportMetric(float64(m.p999), "map_p99.9_ns")
			b.ReportMetric(float64(l.p50)/float64(m.p50), "p50_ratio")
			b.ReportMetric(float64(l.p99)/float64(m.p99), "p99_ratio")
			b.ReportMetric(float64(lv.lookups)/lv.elapsed.Seconds(), "live_lookups/s")
			b.ReportMetric(float64(mp.lookups)/mp.elapsed.Seconds(), "map_lookups/s")
			b.ReportMetric(float64(lv.writes)/lv.elapsed.Seconds(), "live_writes/s")
			b.ReportMetric(0, "ns/op")
			b.Logf("live: p50 %v p99 %v p99.9 %v max %v (%d samples); map: p50 %v p99 %v p99.9 %v max %v; writes/s live %.0f map %.0f",
				l.p50, l.p99, l.p999, l.max, l.n, m.p50, m.p99, m.p999, m.max, float64(lv.writes)/lv.elapsed.Seconds(), float64(mp.writes)/mp.elapsed.Seconds())
		})
	}
}
