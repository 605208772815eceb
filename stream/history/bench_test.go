package history

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// Benchmark store size: HISTORY_BENCH_ROWS rows (default 5M) in
// HISTORY_BENCH_FILES files (default 20), kept in HISTORY_BENCH_DIR
// (default $TMPDIR/netwarden-history-bench-<rows>-<files>) and reused by
// later runs.
func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// benchKey is resource i of the benchmark's key space: IPv4 hosts (60%),
// IPv4 prefixes of every length 8..31 (15%), IPv6 prefixes (10%) and
// domains (15%), so that an address's covering keys are many and mostly
// absent, as with real lists.
func benchKey(i uint64) string {
	h := splitmix(i)
	switch h % 20 {
	case 0, 1:
		var b [16]byte
		binary.BigEndian.PutUint64(b[:], 0x2000000000000000|splitmix(h)>>4)
		binary.BigEndian.PutUint64(b[8:], splitmix(h+1))
		bits := []int{32, 48, 56, 64, 128}[h>>61%5]
		return resource.FromPrefix(netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()).Key()
	case 2, 3, 4:
		// Prefix lengths 8..31, but a short length only as often as there
		// are distinct prefixes of it, so that each key has only a few
		// changes, as on real lists.
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(h>>32))
		bits := 8 + int(h>>8%24)
		perLen := float64(benchNKeys) * 3 / 20 / 24 // keys of one length
		if room := float64(uint64(1) << bits); room < perLen && float64(h>>12%1_000_000)/1e6 >= room/perLen {
			bits = 32
		}
		return resource.FromPrefix(netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked()).Key()
	case 5, 6, 7:
		return resource.Resource{Kind: resource.Domain, Name: fmt.Sprintf("x%x.d%d.example.net", h>>40, h>>8%1000)}.Key()
	default:
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(h>>32))
		return resource.FromAddr(netip.AddrFrom4(a)).Key()
	}
}

// benchNKeys is the size of the key space (set by benchStore).
var benchNKeys uint64 = 1 << 20

var benchLists = []string{"spamhaus-drop", "firehol-l1", "abuse-ch", "disposable", "phish", "tor-exits", "blocklist-de", "cins"}

// benchStore opens (building it on first use) the benchmark store.
func benchStore(b *testing.B) (s *Store, nkeys uint64) {
	rows := benchEnv("HISTORY_BENCH_ROWS", 5_000_000)
	files := benchEnv("HISTORY_BENCH_FILES", 20)
	dir := os.Getenv("HISTORY_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("netwarden-history-bench-v5-%d-%d", rows, files))
	}
	nkeys = uint64(rows / 3) // about three changes per resource
	benchNKeys = nkeys
	cfg := Config{Dir: dir, TargetFileRows: max(DefaultTargetFileRows, rows/files+1)}
	if _, err := os.Stat(filepath.Join(dir, manifestName)); err == nil {
		start := time.Now()
		s, err := Open(cfg, testLogger(b))
		if err == nil && s.Stats().Rows == int64(rows) {
			b.Logf("opened %s in %v", dir, time.Since(start).Round(time.Millisecond))
			return s, nkeys
		}
		if err == nil {
			s.Close()
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	s, err := Open(cfg, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(7, 7))
	per := rows / files
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]change.Change, 0, per)
	for f := 0; f < files; f++ {
		n := per
		if f == files-1 {
			n = rows - per*(files-1)
		}
		// One file per commit: all of a commit's rows in one month.
		month := t0.AddDate(0, f%12, 0)
		span := month.AddDate(0, 1, 0).Sub(month)
		batch = batch[:0]
		for i := 0; i < n; i++ {
			batch = append(batch, change.Change{
				Time: month.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Microsecond),
				Op:   change.Op(1 + rng.IntN(2)),
				List: benchLists[rng.IntN(len(benchLists))],
				Key:  benchKey(rng.Uint64N(nkeys)),
			})
		}
		if err := s.Commit(batch, map[int32]int64{0: int64(f)}); err != nil {
			b.Fatal(err)
		}
	}
	st := s.Stats()
	b.Logf("built %s: %d rows, %d files, %d MB, bloom %d MB in %v", dir, st.Rows, st.Files, st.Bytes>>20, st.BloomBytes>>20, time.Since(start).Round(time.Second))
	return s, nkeys
}

// BenchmarkLookup looks up, per op, the covering keys of one random
// address of the key space (its own key plus every prefix length present:
// mostly absent keys, like a real IP query) or, for domains, the name and
// its parents.
func BenchmarkLookup(b *testing.B) {
	s, nkeys := benchStore(b)
	defer s.Close()
	bits4, bits6 := s.Bits()
	st := s.Stats()
	b.Logf("store: %d rows, %d files, %d row groups, bloom %d MB, page index %d MB; bits4 %v bits6 %v",
		st.Rows, st.Files, st.RowGroups, st.BloomBytes>>20, st.IndexBytes>>20, bits4, bits6)
	for _, mode := range []string{"one", "covering", "covering-nocrc"} {
		b.Run(mode, func(b *testing.B) {
			noChecksums = mode == "covering-nocrc"
			defer func() { noChecksums = false }()
			rng := rand.New(rand.NewPCG(1, 2))
			durs := make([]time.Duration, 0, b.N)
			found, nkeysLooked := 0, 0
			b.ResetTimer()
			for b.Loop() {
				k := benchKey(rng.Uint64N(nkeys))
				keys := []string{k}
				if mode != "one" {
					r, _ := resource.FromKey(k)
					keys = r.Covering(bits4, bits6)
				}
				nkeysLooked += len(keys)
				t := time.Now()
				if err := s.Lookup(keys, func(change.Change) { found++ }); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(t))
			}
			b.StopTimer()
			slices.Sort(durs)
			if len(durs) > 0 {
				b.ReportMetric(float64(durs[len(durs)*99/100]), "p99-ns")
				b.ReportMetric(float64(durs[len(durs)*9/10]), "p90-ns")
				b.ReportMetric(float64(durs[len(durs)/2]), "p50-ns")
				b.ReportMetric(float64(durs[len(durs)-1]), "max-ns")
				b.ReportMetric(float64(found)/float64(len(durs)), "rows/op")
				b.ReportMetric(float64(nkeysLooked)/float64(len(durs)), "keys/op")
			}
		})
	}
}

// BenchmarkCommit commits batches of 10k random changes spread over two
// months (20 days across a month boundary).
// HISTORY_BENCH_COMMIT_ROWS overrides the batch size.
func BenchmarkCommit(b *testing.B) {
	for _, crc := range []bool{true, false} {
		b.Run(fmt.Sprintf("checksums=%v", crc), func(b *testing.B) {
			noChecksums = !crc
			defer func() { noChecksums = false }()
			benchCommit(b)
		})
	}
}

func benchCommit(b *testing.B) {
	batchRows := benchEnv("HISTORY_BENCH_COMMIT_ROWS", 10_000)
	s := openTest(b, Config{Dir: b.TempDir()})
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
	batch := make([]change.Change, batchRows)
	rows := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i := range batch {
			batch[i] = change.Change{
				Time: t0.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))).Truncate(time.Microsecond),
				Op:   change.Op(1 + rng.IntN(2)),
				List: benchLists[rng.IntN(len(benchLists))],
				Key:  benchKey(rng.Uint64N(1 << 22)),
			}
		}
		b.StartTimer()
		if err := s.Commit(batch, map[int32]int64{0: int64(rows)}); err != nil {
			b.Fatal(err)
		}
		rows += batchRows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkScan scans the benchmark store (one full scan per op).
func BenchmarkScan(b *testing.B) {
	s, _ := benchStore(b)
	defer s.Close()
	for _, crc := range []bool{true, false} {
		b.Run(fmt.Sprintf("checksums=%v", crc), func(b *testing.B) {
			noChecksums = !crc
			defer func() { noChecksums = false }()
			benchScan(b, s)
		})
	}
}

func benchScan(b *testing.B, s *Store) {
	rows := 0
	var prev string
	b.ResetTimer()
	for b.Loop() {
		err := s.Scan(b.Context(), func(c change.Change) error {
			if c.Key < prev {
				return fmt.Errorf("scan out of key order")
			}
			prev = c.Key
			rows++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		prev = ""
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
