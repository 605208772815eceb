package feed

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/netwarden/netwarden/internal/resource"
)

var update = flag.Bool("update", false, "rewrite testdata/good/*.golden from the parser's output")

// fixture is a file of testdata/good or testdata/bad, named
// <format>-<kind>-<description>.txt.
type fixture struct {
	path   string
	name   string
	format Format
	kind   resource.Kind
}

func fixtures(t testing.TB, dir string) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no fixtures in testdata/%s", dir)
	}
	var out []fixture
	for _, p := range paths {
		base := filepath.Base(p)
		parts := strings.SplitN(strings.TrimSuffix(base, ".txt"), "-", 3)
		if len(parts) != 3 {
			t.Fatalf("fixture %s: name is not <format>-<kind>-<description>.txt", p)
		}
		f, err := ParseFormat(parts[0])
		if err != nil {
			t.Fatalf("fixture %s: %v", p, err)
		}
		k, err := resource.ParseKind(parts[1])
		if err != nil {
			t.Fatalf("fixture %s: %v", p, err)
		}
		out = append(out, fixture{path: p, name: base, format: f, kind: k})
	}
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// render is the golden text form of a Result: a header of counts, the
// skip samples, then one resource a line in Set order.
func render(t testing.TB, res Result) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# format=%s lines=%d skipped=%d masked=%d entries=%d\n", res.Format, res.Lines, res.Skipped, res.Masked, len(res.Set))
	for _, s := range res.SkipSamples {
		fmt.Fprintf(&b, "# skip %s\n", s)
	}
	for _, k := range res.Set {
		r, err := resource.FromKey(k)
		if err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestGoodFixtures(t *testing.T) {
	for _, fx := range fixtures(t, "good") {
		t.Run(fx.name, func(t *testing.T) {
			body := readFile(t, fx.path)
			res, err := Parse(bytes.NewReader(body), fx.kind, fx.format)
			if err != nil {
				t.Fatalf("Parse(%s): %v", fx.format, err)
			}
			checkResult(t, fx.kind, fx.format, res, nil)
			got := render(t, res)
			golden := strings.TrimSuffix(fx.path, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := string(readFile(t, golden))
			if got != want {
				t.Errorf("Parse(%s) = \n%s\nwant (%s)\n%s", fx.format, got, golden, want)
			}
			// Auto detection must pick the fixture's format and give the same result.
			auto, err := ParseNamed(bytes.NewReader(body), fx.name, fx.kind, FormatAuto)
			if err != nil {
				t.Fatalf("Parse(auto): %v", err)
			}
			if g := render(t, auto); g != got {
				t.Errorf("Parse(auto) = \n%s\nwant\n%s", g, got)
			}
		})
	}
}

func TestBadFixtures(t *testing.T) {
	for _, fx := range fixtures(t, "bad") {
		t.Run(fx.name, func(t *testing.T) {
			res, err := Parse(bytes.NewReader(readFile(t, fx.path)), fx.kind, fx.format)
			if !errors.Is(err, ErrUnparseable) {
				t.Fatalf("Parse(%s) = %d entries, %d/%d skipped, err %v; want ErrUnparseable", fx.format, len(res.Set), res.Skipped, res.Lines, err)
			}
			if res.Set != nil {
				t.Errorf("Set = %d entries on error, want nil", len(res.Set))
			}
			t.Logf("%v", err)
		})
	}
}

func TestEmptyBodies(t *testing.T) {
	for _, body := range []string{"", "\n\n", "\xef\xbb\xbf", "# only\n# comments\n", "\r\n  \t\r\n"} {
		for _, f := range Formats() {
			for _, k := range []resource.Kind{resource.IP, resource.Domain, resource.Email} {
				res, err := Parse(strings.NewReader(body), k, f)
				if err != nil || res.Set == nil || len(res.Set) != 0 || res.Lines != 0 {
					t.Errorf("Parse(%q, %v, %s) = %+v, %v; want an empty non-nil Set", body, k, f, res, err)
				}
			}
		}
	}
}

func TestLongLine(t *testing.T) {
	long := strings.Repeat("1", MaxLineLen+10)
	for _, body := range []string{
		"192.0.2.1\n" + long + "\n192.0.2.2\n192.0.2.3\n",
		"192.0.2.1\n192.0.2.2\n192.0.2.3\n" + long, // last line, no newline
	} {
		res, err := Parse(strings.NewReader(body), resource.IP, FormatPlain)
		if err != nil {
			t.Fatal(err)
		}
		if res.Lines != 4 || res.Skipped != 1 || len(res.Set) != 3 {
			t.Errorf("lines=%d skipped=%d entries=%d, want 4, 1, 3", res.Lines, res.Skipped, len(res.Set))
		}
		if len(res.SkipSamples) != 1 || !strings.Contains(res.SkipSamples[0], "longer than") {
			t.Errorf("samples = %q", res.SkipSamples)
		}
	}
	// A line just under the limit is parsed (and here fails as an entry).
	body := "192.0.2.1\n# " + strings.Repeat("x", MaxLineLen-4) + "\n192.0.2.2\n"
	res, err := Parse(strings.NewReader(body), resource.IP, FormatPlain)
	if err != nil || res.Lines != 2 || res.Skipped != 0 {
		t.Errorf("comment of %d bytes: %+v, %v", MaxLineLen-1, res, err)
	}
}

func TestSkipSamplesCapped(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "192.0.2.%d\n", i)
	}
	for range 20 {
		b.WriteString("junk\n")
	}
	res, err := Parse(strings.NewReader(b.String()), resource.IP, FormatPlain)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 20 || len(res.SkipSamples) != maxSamples {
		t.Errorf("skipped=%d samples=%d", res.Skipped, len(res.SkipSamples))
	}
	if want := `line 101: "junk": not an IP address, CIDR or range`; res.SkipSamples[0] != want {
		t.Errorf("sample %q, want %q", res.SkipSamples[0], want)
	}
}

func TestThreshold(t *testing.T) {
	// Exactly half bad is still a list; one more bad line is not.
	half := "192.0.2.1\n192.0.2.2\njunk\njunk\n"
	if _, err := Parse(strings.NewReader(half), resource.IP, FormatPlain); err != nil {
		t.Errorf("half bad: %v", err)
	}
	if _, err := Parse(strings.NewReader(half+"junk\n"), resource.IP, FormatPlain); !errors.Is(err, ErrUnparseable) {
		t.Errorf("over half bad: %v, want ErrUnparseable", err)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("192.0.2.1\n192.0.2.2\n"), iotest.ErrReader(boom))
	_, err := Parse(r, resource.IP, FormatPlain)
	if !errors.Is(err, boom) || errors.Is(err, ErrUnparseable) {
		t.Errorf("err = %v, want the read error", err)
	}
	// A reader that returns one byte at a time is read fully.
	res, err := Parse(iotest.OneByteReader(strings.NewReader("\xef\xbb\xbf192.0.2.1\r\n192.0.2.2")), resource.IP, FormatAuto)
	if err != nil || len(res.Set) != 2 {
		t.Errorf("one byte reader: %+v, %v", res, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	if _, err := Parse(strings.NewReader("192.0.2.1\n"), 0, FormatPlain); err == nil {
		t.Error("kind 0 accepted")
	}
	if _, err := Parse(strings.NewReader("192.0.2.1\n"), resource.IP, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{
		"": FormatAuto, "auto": FormatAuto, " Plain ": FormatPlain, "SPAMHAUS": FormatSpamhaus,
		"firehol": FormatFirehol, "ipset": FormatFirehol, "netset": FormatFirehol, "csv": FormatCSV,
		"ipsum": FormatIpsum, "hosts": FormatHosts, "dshield": FormatDshield, "block": FormatDshield,
	} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"json", "txt", "plain2"} {
		if _, err := ParseFormat(in); err == nil {
			t.Errorf("ParseFormat(%q) accepted", in)
		}
	}
	for _, f := range Formats() {
		if got, err := ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
}

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct {
		head, name string
		want       Format
	}{
		{"", "", FormatPlain},
		{"192.0.2.1\n", "", FormatPlain},
		{"192.0.2.1\n", "list.ipset", FormatFirehol},
		{"192.0.2.1\n", "https://example.com/x/level1.netset?x=1", FormatFirehol},
		{"192.0.2.1\n", "feed.CSV", FormatCSV},
		{"0.0.0.0 x.example\n", "/etc/hosts", FormatHosts},
		{"192.0.2.0 - 192.0.2.9\n", "", FormatPlain},
		{"192.0.2.0-192.0.2.9\n", "", FormatPlain},
		{"#\n# spamhaus_drop\n#\n# ipv4 hash:net ipset\n#\n1.2.3.0/24\n", "", FormatFirehol},
		{"# Generated by FireHOL's update-ipsets.sh\n1.2.3.4\n", "", FormatFirehol},
		{"; Spamhaus DROP List\n1.2.3.0/24 ; SBL1\n", "", FormatSpamhaus},
		{"1.2.3.0/24 ; SBL1\n", "", FormatSpamhaus},
		{"2001:db8::/32 ; SBL1\n", "", FormatSpamhaus},
		{`{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}` + "\n", "", FormatSpamhaus},
		{`{"ip":"1.10.16.0"}` + "\n", "", FormatPlain},
		{"# c\n\"first_seen_utc\",\"dst_ip\"\n", "", FormatCSV},
		{"ip,port\n1.2.3.4,80\n", "", FormatCSV},
		{"# x\n# \"first_seen_utc\",\"ioc_id\",\"ioc_value\"\n\"2024\", \"1\", \"1.2.3.4:80\"\n", "", FormatCSV},
		{"# IPsum\n# IP\tnumber of (black)lists\n1.2.3.4\t10\n", "", FormatIpsum},
		{"1.2.3.4 3\n", "", FormatIpsum},
		{"#   DShield.org Recommended Block List \n", "", FormatDshield},
		{"1.2.3.0\t1.2.3.255\t24\t352\tX\tUS\tabuse@x\n", "", FormatDshield},
		{"1.2.3.0\t1.2.3.255\n", "", FormatDshield},
		{"Start\tEnd\tNetblock\tAttacks\n", "", FormatDshield},
		{"127.0.0.1 localhost\n0.0.0.0 ads.example\n", "", FormatHosts},
		{"0.0.0.0\tads.example\n", "", FormatHosts},
		{"::1 localhost\n", "", FormatHosts},
		{"192.0.2.1 ads.example\n", "", FormatPlain},
		{"\xef\xbb\xbf; Spamhaus\n", "", FormatSpamhaus},
		{"// comment\nexample.com\n", "", FormatPlain},
	} {
		if got := DetectFormat([]byte(tc.head), tc.name); got != tc.want {
			t.Errorf("DetectFormat(%q, %q) = %s, want %s", tc.head, tc.name, got, tc.want)
		}
	}
}

func TestSetContains(t *testing.T) {
	res, err := Parse(strings.NewReader("192.0.2.1\n10.0.0.0/8\n2001:db8::/32\n"), resource.IP, FormatPlain)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"192.0.2.1", "10.0.0.0/8", "2001:db8::/32"} {
		r, err := resource.ParseIP(s)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Set.Contains(r.Key()) {
			t.Errorf("Contains(%s) = false", s)
		}
	}
	for _, s := range []string{"192.0.2.2", "10.0.0.0/9", "2001:db8::/33"} {
		r, _ := resource.ParseIP(s)
		if res.Set.Contains(r.Key()) {
			t.Errorf("Contains(%s) = true", s)
		}
	}
	if (Set{}).Contains("") || Set(nil).Contains("x") {
		t.Error("empty set contains something")
	}
}

// TestConcurrent parses bodies from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for _, fx := range fixtures(t, "good") {
		body := readFile(t, fx.path)
		want, err := Parse(bytes.NewReader(body), fx.kind, fx.format)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			wg.Go(func() {
				got, err := Parse(bytes.NewReader(body), fx.kind, FormatAuto)
				if err != nil || !slices.Equal(got.Set, want.Set) {
					t.Errorf("%s: concurrent parse differs: %v", fx.name, err)
				}
			})
		}
	}
	wg.Wait()
}

func TestDiffRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		universe := 1 + rng.IntN(60)
		mk := func() Set {
			m := map[string]bool{}
			for range rng.IntN(universe + 1) {
				m[fmt.Sprintf("k%03d", rng.IntN(universe))] = true
			}
			s := Set{}
			for k := range m {
				s = append(s, k)
			}
			slices.Sort(s)
			return s
		}
		prev, next := mk(), mk()
		adds, rems := Diff(prev, next)
		wantAdds, wantRems := slowDiff(prev, next)
		if !slices.Equal(adds, wantAdds) || !slices.Equal(rems, wantRems) {
			t.Fatalf("iter %d: Diff(%q, %q) = %q, %q; want %q, %q", iter, prev, next, adds, rems, wantAdds, wantRems)
		}
	}
}

// slowDiff is the obvious map-based reference for Diff.
func slowDiff(prev, next Set) (adds, rems []string) {
	inPrev, inNext := map[string]bool{}, map[string]bool{}
	for _, k := range prev {
		inPrev[k] = true
	}
	for _, k := range next {
		inNext[k] = true
	}
	for _, k := range next {
		if !inPrev[k] {
			adds = append(adds, k)
		}
	}
	for _, k := range prev {
		if !inNext[k] {
			rems = append(rems, k)
		}
	}
	slices.Sort(adds)
	slices.Sort(rems)
	return adds, rems
}

func TestRangeEdges(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want []string
	}{
		{"0.0.0.0", "255.255.255.255", []string{"0.0.0.0/0"}},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", []string{"::/0"}},
		{"192.0.2.7", "192.0.2.7", []string{"192.0.2.7/32"}},
		{"192.0.2.0", "192.0.2.255", []string{"192.0.2.0/24"}},
		{"192.0.2.1", "192.0.2.6", []string{"192.0.2.1/32", "192.0.2.2/31", "192.0.2.4/31", "192.0.2.6/32"}},
		{"255.255.255.254", "255.255.255.255", []string{"255.255.255.254/31"}},
		{"2001:db8::ffff", "2001:db8::1:0", []string{"2001:db8::ffff/128", "2001:db8::1:0/128"}},
		{"::ffff:ffff:ffff:fffe", "::1:0:0:0:1", []string{"::ffff:ffff:ffff:fffe/127", "0:0:0:1::/127"}},
	} {
		got := appendRange(nil, netip.MustParseAddr(tc.a), netip.MustParseAddr(tc.b))
		var gs []string
		for _, p := range got {
			gs = append(gs, p.String())
		}
		if !slices.Equal(gs, tc.want) {
			t.Errorf("range %s-%s = %v, want %v", tc.a, tc.b, gs, tc.want)
		}
	}
	// The worst IPv4 case has 62 prefixes, the worst IPv6 case 254.
	if n := len(appendRange(nil, netip.MustParseAddr("0.0.0.1"), netip.MustParseAddr("255.255.255.254"))); n != 62 {
		t.Errorf("0.0.0.1-255.255.255.254: %d prefixes, want 62", n)
	}
	if n := len(appendRange(nil, netip.MustParseAddr("::1"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"))); n != 254 {
		t.Errorf("::1-ffff:...:fffe: %d prefixes, want 254", n)
	}
}

// TestRangeRandom compares appendRange with a slow reference that
// enumerates the addresses, on seeded random small ranges.
func TestRangeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 3000 {
		var a netip.Addr
		if iter%2 == 0 {
			a = netip.AddrFrom4([4]byte{byte(rng.UintN(256)), byte(rng.UintN(256)), byte(rng.UintN(256)), byte(rng.UintN(256))})
		} else {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
			if iter%4 == 1 { // near the top of a 64-bit half, to cross it
				for i := 8; i < 16; i++ {
					b[i] = 0xff
				}
				b[15] = byte(rng.UintN(256))
			}
			a = netip.AddrFrom16(b)
		}
		if rng.IntN(3) == 0 { // align the start sometimes
			p, _ := a.Prefix(a.BitLen() - rng.IntN(9))
			a = p.Addr()
		}
		n := 1 + rng.IntN(700)
		b := a
		for i := 1; i < n; i++ {
			if nx := b.Next(); nx.IsValid() && nx.Is4() == a.Is4() {
				b = nx
			}
		}
		got := appendRange(nil, a, b)
		want := slowRange(a, b)
		if !slices.Equal(got, want) {
			t.Fatalf("range %s-%s:\n got %v\nwant %v", a, b, got, want)
		}
		checkCover(t, a, b, got)
	}
}

// slowRange is the obvious reference: from each uncovered address take
// the largest prefix starting there whose every address (enumerated) is in
// the range.
func slowRange(a, b netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	x := a
	for {
		best := x.BitLen()
		for bits := x.BitLen() - 1; bits >= 0; bits-- {
			p := netip.PrefixFrom(x, bits)
			if p.Masked().Addr() != x {
				break
			}
			ok := true
			for y := x; y.IsValid() && p.Contains(y); y = y.Next() {
				if b.Less(y) {
					ok = false
					break
				}
			}
			if !ok {
				break
			}
			best = bits
		}
		p := netip.PrefixFrom(x, best)
		out = append(out, p)
		last := x
		for y := x; y.IsValid() && p.Contains(y); y = y.Next() {
			last = y
		}
		if !last.Less(b) {
			return out
		}
		x = last.Next()
	}
}

// checkCover checks that ps cover exactly a..b, in order, without overlap,
// and that each prefix is maximal (its parent is not inside the range).
func checkCover(t *testing.T, a, b netip.Addr, ps []netip.Prefix) {
	t.Helper()
	next := a
	for i, p := range ps {
		if p.Addr() != next || p.Masked() != p {
			t.Fatalf("range %s-%s: prefix %d %s does not start at %s", a, b, i, p, next)
		}
		last := p.Addr()
		for y := p.Addr(); y.IsValid() && p.Contains(y); y = y.Next() {
			last = y
		}
		if b.Less(last) {
			t.Fatalf("range %s-%s: prefix %s ends past the range", a, b, p)
		}
		if p.Bits() > 0 {
			parent, _ := p.Addr().Prefix(p.Bits() - 1)
			if !parent.Addr().Less(a) {
				plast := parent.Addr()
				for y := parent.Addr(); y.IsValid() && parent.Contains(y) && !b.Less(y); y = y.Next() {
					plast = y
				}
				if next := plast.Next(); !next.IsValid() || !parent.Contains(next) {
					t.Fatalf("range %s-%s: prefix %s is not maximal (%s fits)", a, b, p, parent)
				}
			}
		}
		next = last.Next()
	}
	if next.IsValid() && next.Prev() != b {
		t.Fatalf("range %s-%s: cover ends at %s", a, b, next.Prev())
	}
}

func TestParseIPv4MatchesNetip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := "0123456789.:x "
	cases := []string{"0.0.0.0", "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.2.3.256", "1.2.3", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.4.5", "", "0.0.0.00", "10.0.0.0"}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(17) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		got, ok := parseIPv4([]byte(s))
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Is4()
		if ok != wantOK || (ok && got != want) {
			t.Errorf("parseIPv4(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	}
}

// TestIPKeyLayout checks the integer form of keys against resource.Key,
// in value and in order.
func TestIPKeyLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var keys []ipKey
	for range 2000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		a := netip.AddrFrom16(b)
		if rng.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte(b[:4]))
		}
		p, _ := a.Prefix(rng.IntN(a.BitLen() + 1))
		r := resource.FromPrefix(p)
		k := makeIPKey(r.Prefix)
		if got := string(k.append(nil)); got != r.Key() {
			t.Fatalf("%s: key %x, want %x", p, got, r.Key())
		}
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		a, b := keys[i-1], keys[i]
		if c := cmpIPKey(a, b); c != strings.Compare(string(a.append(nil)), string(b.append(nil))) {
			t.Fatalf("cmpIPKey(%v, %v) = %d disagrees with the byte order", a, b, c)
		}
	}
}
