package watchlist

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/watch"
)

// importN is the number of lines imported: 1 M by default, 10 M with
// NETWARDEN_IMPORT_N=10000000 (bench/README.md).
func importN() int {
	if n, err := strconv.Atoi(os.Getenv("NETWARDEN_IMPORT_N")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// importAccounts is how many accounts share the lines.
const importAccounts = 100

// bodies draws a telco-like mix per account (70% IPv4 addresses, 20%
// IPv4 /20../30, 10% IPv6 /48../128) as text bodies.
func bodies(n int) []string {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]string, importAccounts)
	for i := range out {
		var b strings.Builder
		for range n / importAccounts {
			var p netip.Prefix
			switch r := rng.IntN(10); {
			case r < 7:
				p = netip.PrefixFrom(netip.AddrFrom4(rand4(rng)), 32)
			case r < 9:
				p, _ = netip.AddrFrom4(rand4(rng)).Prefix(20 + rng.IntN(11))
			default:
				var a [16]byte
				a[0], a[1] = 0x20, 0x01
				for j := 2; j < 16; j++ {
					a[j] = byte(rng.Uint32())
				}
				p, _ = netip.AddrFrom16(a).Prefix([]int{48, 56, 64, 128}[rng.IntN(4)])
			}
			if p.IsSingleIP() {
				b.WriteString(p.Addr().String())
			} else {
				b.WriteString(p.String())
			}
			b.WriteByte('\n')
		}
		out[i] = b.String()
	}
	return out
}

func rand4(rng *rand.Rand) [4]byte {
	v := rng.Uint32()
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// cpuTime is the process's user+system CPU seconds: on a shared machine
// the import's CPU cost, beside its wall time.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkImport imports importN lines spread over 100 ENTERPRISE
// accounts through Service.Import into a fresh database on disk
// ("import"), and reloads them at start ("load"), beside the same
// parsing and table adds without the database ("memory-only", the
// baseline). Each op is a whole import of every line.
func BenchmarkImport(b *testing.B) {
	n := importN()
	bs := bodies(n)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var memPerOp float64
	b.Run(fmt.Sprintf("memory-only-%d", n), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			tab := watch.New()
			start := time.Now()
			for a, body := range bs {
				for _, ln := range strings.Split(body, "\n") {
					if ln == "" {
						continue
					}
					p, err := ParseEntry(ln)
					if err != nil {
						b.Fatal(err)
					}
					if _, _, _, err := tab.AddWithin(watch.Account(a+1), p, 1<<40); err != nil {
						b.Fatal(err)
					}
				}
			}
			memPerOp += time.Since(start).Seconds()
		}
		memPerOp /= float64(b.N)
		b.ReportMetric(float64(n)/memPerOp, "lines/s")
	})
	b.Run(fmt.Sprintf("import-%d", n), func(b *testing.B) {
		var took, load, cpu float64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir := b.TempDir()
			cfg := account.Config{Path: filepath.Join(dir, "netwarden.db")}
			cfg.Defaults()
			st, err := account.Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var c Config
			c.Defaults()
			s := New(c, st, watch.New(), watch.New(), log)
			accts := make([]account.Account, len(bs))
			for j := range accts {
				if accts[j], _, err = st.Create(ctx, fmt.Sprintf("a%d@example.com", j), "ENTERPRISE", false); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			start, cpu0 := time.Now(), cpuTime()
			imported := 0
			for j, body := range bs {
				res, err := s.Import(ctx, accts[j], account.Watchlist, strings.NewReader(body), Text)
				if err != nil {
					b.Fatal(err)
				}
				imported += res.Imported + res.Already
			}
			took += time.Since(start).Seconds()
			cpu += cpuTime() - cpu0
			b.StopTimer()
			if imported != n/importAccounts*importAccounts {
				b.Fatalf("imported %d of %d", imported, n)
			}
			start = time.Now()
			s2 := New(c, st, watch.New(), watch.New(), log)
			if err := s2.Load(ctx); err != nil {
				b.Fatal(err)
			}
			load += time.Since(start).Seconds()
			if fi, err := os.Stat(cfg.Path); err == nil {
				b.ReportMetric(float64(fi.Size())/float64(n), "db-bytes/line")
			}
			st.Close()
			b.StartTimer()
		}
		took /= float64(b.N)
		load /= float64(b.N)
		b.ReportMetric(float64(n)/took, "lines/s")
		b.ReportMetric(took/memPerOp, "x-memory-only")
		b.ReportMetric(load, "load-s")
		b.ReportMetric(cpu/float64(b.N), "cpu-s")
	})
}
