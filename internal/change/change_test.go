package change

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/resource"
)

func TestRoundTrip(t *testing.T) {
	keys := []string{
		resource.FromAddr(netip.MustParseAddr("1.2.3.4")).Key(),
		resource.FromPrefix(netip.MustParsePrefix("2001:db8::/32")).Key(),
		resource.Resource{Kind: resource.Domain, Name: "example.com"}.Key(),
		resource.Resource{Kind: resource.Email, Name: "a@example.com"}.Key(),
	}
	for _, k := range keys {
		for _, op := range []Op{Add, Rem} {
			c := Change{Time: time.Date(2025, 5, 30, 6, 48, 7, 123000, time.UTC), Op: op, List: "SPAMHAUS-DROP", Key: k,
				Partition: NoPosition, Offset: NoPosition} // the encoding has no position
			d, err := Decode(Append(nil, c))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Change(); got != c {
				t.Fatalf("round trip: %+v != %+v", got, c)
			}
		}
	}
}

func TestDecodeBad(t *testing.T) {
	good := Append(nil, Change{Time: time.Unix(1, 0), Op: Add, List: "L", Key: "dexample.com"})
	bad := map[string][]byte{
		"empty":     nil,
		"short":     good[:5],
		"version":   append([]byte{9}, good[1:]...),
		"op":        append([]byte{1, 7}, good[2:]...),
		"no key":    good[:len(good)-len("dexample.com")],
		"key kind":  append(append([]byte{}, good[:len(good)-12]...), "xexample.com"...),
		"ip length": append(append([]byte{}, good[:len(good)-12]...), "i1234"...),
	}
	for name, v := range bad {
		if _, err := Decode(v); err == nil {
			t.Errorf("%s: Decode accepted %x", name, v)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, Change{Time: time.Unix(1, 0), Op: Add, List: "L", Key: "dexample.com"}))
	f.Add(Append(nil, Change{Time: time.Unix(1, 0), Op: Rem, List: "LIST", Key: resource.FromAddr(netip.MustParseAddr("::1")).Key()}))
	f.Fuzz(func(t *testing.T, v []byte) {
		d, err := Decode(v)
		if err != nil {
			return
		}
		c := d.Change()
		d2, err := Decode(Append(nil, c))
		if err != nil || d2.Change() != c {
			t.Fatalf("re-encode of %x: %v", v, err)
		}
	})
}
