package feed

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/resource"
)

// checkResult asserts the invariants of every Parse outcome.
func checkResult(t *testing.T, kind resource.Kind, format Format, res Result, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrUnparseable) {
			t.Fatalf("error does not wrap ErrUnparseable: %v", err)
		}
		if res.Set != nil {
			t.Fatalf("Set of %d keys with an error", len(res.Set))
		}
		return
	}
	if res.Format == FormatAuto || (format != FormatAuto && res.Format != format) {
		t.Fatalf("Format = %q for requested %q", res.Format, format)
	}
	if res.Set == nil {
		t.Fatal("nil Set without an error")
	}
	if res.Skipped < 0 || res.Skipped > res.Lines || res.Skipped*2 > res.Lines || res.Masked < 0 {
		t.Fatalf("counts: lines=%d skipped=%d masked=%d", res.Lines, res.Skipped, res.Masked)
	}
	if len(res.SkipSamples) != min(res.Skipped, maxSamples) {
		t.Fatalf("%d samples for %d skipped lines", len(res.SkipSamples), res.Skipped)
	}
	if len(res.Set) > 0 && res.Lines == 0 {
		t.Fatalf("%d entries from 0 lines", len(res.Set))
	}
	for i, k := range res.Set {
		if i > 0 && res.Set[i-1] >= k {
			t.Fatalf("Set not sorted and unique at %d: %q >= %q", i, res.Set[i-1], k)
		}
		r, err := resource.FromKey(k)
		if err != nil {
			t.Fatalf("key %q does not decode: %v", k, err)
		}
		if r.Kind != kind || r.Key() != k || !r.IsValid() {
			t.Fatalf("key %q decodes to %+v (kind %v, re-key %q), list kind %v", k, r, r.Kind, r.Key(), kind)
		}
		if !res.Set.Contains(k) {
			t.Fatalf("Contains(%q) = false", k)
		}
	}
	// Round trip: the rendered Set is a plain list that parses to itself.
	// (Not for e-mail: a local part may start with '#' or ';'.)
	if kind == resource.Email || len(res.Set) == 0 {
		return
	}
	var b strings.Builder
	for _, k := range res.Set {
		r, _ := resource.FromKey(k)
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	again, err := Parse(strings.NewReader(b.String()), kind, FormatPlain)
	if err != nil || again.Skipped != 0 || again.Masked != 0 || !slices.Equal(again.Set, res.Set) {
		t.Fatalf("round trip of %d keys: %d keys, skipped %v, err %v", len(res.Set), len(again.Set), again.SkipSamples, err)
	}
}

// seed adds every fixture, with its kind, to the corpus.
func seed(f *testing.F) {
	f.Helper()
	for _, dir := range []string{"good", "bad"} {
		for _, fx := range fixtures(f, dir) {
			f.Add(readFile(f, fx.path), uint8(fx.kind-1))
		}
	}
}

func fuzzFormat(f *testing.F, format Format) {
	seed(f)
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		kind := resource.Kind(k%3 + 1)
		res, err := Parse(bytes.NewReader(data), kind, format)
		checkResult(t, kind, format, res, err)
	})
}

func FuzzPlain(f *testing.F)    { fuzzFormat(f, FormatPlain) }
func FuzzSpamhaus(f *testing.F) { fuzzFormat(f, FormatSpamhaus) }
func FuzzFirehol(f *testing.F)  { fuzzFormat(f, FormatFirehol) }
func FuzzCSV(f *testing.F)      { fuzzFormat(f, FormatCSV) }
func FuzzIpsum(f *testing.F)    { fuzzFormat(f, FormatIpsum) }
func FuzzHosts(f *testing.F)    { fuzzFormat(f, FormatHosts) }
func FuzzDshield(f *testing.F)  { fuzzFormat(f, FormatDshield) }

// FuzzAuto also checks that auto gives what the detected format gives.
func FuzzAuto(f *testing.F) {
	seed(f)
	names := []string{"", "list.txt", "x.ipset", "x.netset", "feed.csv", "hosts"}
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		kind := resource.Kind(k%3 + 1)
		name := names[int(k/3)%len(names)]
		res, err := ParseNamed(bytes.NewReader(data), name, kind, FormatAuto)
		checkResult(t, kind, FormatAuto, res, err)
		if err != nil {
			return
		}
		again, err := ParseNamed(bytes.NewReader(data), name, kind, res.Format)
		if err != nil || !slices.Equal(again.Set, res.Set) || again.Lines != res.Lines || again.Skipped != res.Skipped {
			t.Fatalf("auto resolved to %s, explicit %s differs: %v", res.Format, res.Format, err)
		}
	})
}

// FuzzParseIPv4 checks the fast IPv4 path against net/netip.
func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "01.2.3.4", "255.255.255.255", "256.1.1.1", "1.2.3", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIPv4([]byte(s))
		want, err := netip.ParseAddr(s)
		if wantOK := err == nil && want.Is4(); ok != wantOK || (ok && got != want) {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
	})
}
