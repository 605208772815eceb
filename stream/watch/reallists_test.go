package watch

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// realDir holds the real blocklists (../shared/data beside the repo).
const realDir = "../../../shared/data/blocklists"

// readList reads the IP and CIDR entries of a real list file: the first
// field of each line (comments after # or ; dropped); DShield's
// "start end bits ..." lines give start/bits.
func readList(t *testing.T, path string) []netip.Prefix {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := sc.Text()
		if i := strings.IndexAny(s, "#;"); i >= 0 {
			s = s[:i]
		}
		fs := strings.Fields(s)
		if len(fs) == 0 {
			continue
		}
		var p netip.Prefix
		if a, err := netip.ParseAddr(fs[0]); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
			if len(fs) >= 3 {
				if bits, err := strconv.Atoi(fs[2]); err == nil {
					p, _ = a.Prefix(bits)
				}
			}
		} else if q, err := netip.ParsePrefix(fs[0]); err == nil {
			p = q.Masked()
		} else {
			continue
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no entries read", path)
	}
	return out
}

// latest returns the newest snapshot of a list directory.
func latest(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(realDir, dir))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(realDir, dir, es[len(es)-1].Name())
}

// TestRealLists: accounts watch real lists (FireHOL level 1 and Spamhaus
// DROP CIDRs, CI Army and Tor exit addresses, Spamhaus DROPv6); other real
// lists' entries, addresses and CIDRs, are matched against them and
// against the slow reference, both ways.
func TestRealLists(t *testing.T) {
	if _, err := os.Stat(realDir); err != nil {
		t.Skipf("real blocklists not found at %s (../shared/data beside the repo): %v", realDir, err)
	}
	fh := func(name string) string { return filepath.Join(realDir, "firehol-2022-01-24", name) }
	watchedLists := [][]netip.Prefix{
		readList(t, fh("firehol_level1.netset")),
		readList(t, fh("spamhaus_drop.netset")), // overlaps level 1: shared prefixes
		readList(t, fh("ciarmy.ipset")),
		readList(t, fh("tor_exits.ipset")),
		readList(t, latest(t, "spamhaus-dropv6-cidr")),
		readList(t, fh("et_compromised.ipset")),
	}
	tab, model := New(), ref{}
	for i, ps := range watchedLists {
		a := Account(i + 1)
		for _, p := range ps {
			added, _, err := tab.Add(a, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := model.add(a, p); added != want {
				t.Fatalf("Add(%d, %v) added=%v, want %v", a, p, added, want)
			}
		}
	}
	var queries []netip.Prefix
	for _, path := range []string{
		latest(t, "dshield-block"), // /24s: contain watched addresses
		latest(t, "spamhaus-drop"),
		latest(t, "spamhaus-edrop-cidr"),
		latest(t, "threatfox-ips"),
		latest(t, "tor-exit"),
		latest(t, "spamhaus-dropv6-cidr"),
		fh("blocklist_de.ipset"),
		fh("stopforumspam_7d.ipset"),
	} {
		ps := readList(t, path)
		step := max(1, len(ps)/600) // a sample of each: the reference is slow
		for i := 0; i < len(ps); i += step {
			queries = append(queries, ps[i])
		}
	}
	var inside, containing, multi int
	for _, q := range queries {
		got := tab.AppendMatches(nil, q)
		want := model.matches(q)
		sortMatches(got)
		sortMatches(want)
		if !slices.Equal(got, want) {
			t.Fatalf("matches of %v\n got %v\nwant %v", q, got, want)
		}
		for _, m := range got {
			if m.Watched.Bits() <= q.Bits() {
				inside++ // the listed resource is inside a watched entry
			} else {
				containing++ // the listed CIDR contains a watched entry
			}
		}
		if len(got) > 1 {
			multi++
		}
	}
	t.Logf("%d watched entries, %d listed resources: %d matches inside watched entries, %d containing them, %d with several accounts",
		tab.Len(), len(queries), inside, containing, multi)
	// Real overlap exists in both directions; a matcher that found none
	// would pass the comparison only if the reference were broken too.
	if inside < 100 || containing < 10 || multi < 10 {
		t.Errorf("too few matches to mean anything: %d inside, %d containing, %d multi-account", inside, containing, multi)
	}
	for i, ps := range watchedLists {
		if got, want := tab.Units(Account(i+1)), mergedUnits(ps); got != want {
			t.Errorf("account %d: units %d, merged intervals give %d", i+1, got, want)
		}
	}
}

// mergedUnits counts what ps cover by merging intervals: IPv4 addresses
// plus IPv6 /64s (a longer IPv6 prefix counts its /64).
func mergedUnits(ps []netip.Prefix) uint64 {
	type span struct{ v6, lo, hi uint64 } // [lo, hi] in units
	var sp []span
	for _, p := range ps {
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
			sp = append(sp, span{0, lo, lo + 1<<(32-p.Bits()) - 1})
			continue
		}
		b := p.Addr().As16()
		var lo uint64
		for _, x := range b[:8] {
			lo = lo<<8 | uint64(x)
		}
		n := uint64(1)
		if p.Bits() < 64 {
			n = 1 << (64 - p.Bits())
		}
		sp = append(sp, span{1, lo, lo + n - 1})
	}
	slices.SortFunc(sp, func(x, y span) int {
		if x.v6 != y.v6 {
			return int(x.v6) - int(y.v6)
		}
		switch {
		case x.lo < y.lo:
			return -1
		case x.lo > y.lo:
			return 1
		}
		return 0
	})
	var total uint64
	for i := 0; i < len(sp); {
		cur := sp[i]
		j := i + 1
		for ; j < len(sp) && sp[j].v6 == cur.v6 && sp[j].lo <= cur.hi; j++ {
			cur.hi = max(cur.hi, sp[j].hi)
		}
		total += cur.hi - cur.lo + 1
		i = j
	}
	return total
}
