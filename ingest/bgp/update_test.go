package bgp

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/mrt"
)

func pathNLRI(t *testing.T, s string) bgp.PathNLRI {
	t.Helper()
	n, err := bgp.NewIPAddrPrefix(netip.MustParsePrefix(s))
	if err != nil {
		t.Fatal(err)
	}
	return bgp.PathNLRI{NLRI: n}
}

// TestUpdateMixedFamilies: one UPDATE (encoded by gobgp) withdrawing IPv4
// and IPv6 prefixes and announcing both; each family keeps its own next hop,
// withdrawals come first, as bgpdump prints them.
func TestUpdateMixedFamilies(t *testing.T) {
	nh, err := bgp.NewPathAttributeNextHop(netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	reach, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{pathNLRI(t, "2001:db8::/32")}, netip.MustParseAddr("2001:db8::1"))
	if err != nil {
		t.Fatal(err)
	}
	unreach, err := bgp.NewPathAttributeMpUnreachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{pathNLRI(t, "2001:db8:1::/48")})
	if err != nil {
		t.Fatal(err)
	}
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(OriginEGP),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65001, 4200000000}),
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SET, []uint32{64500, 64501})}),
		nh, reach, unreach,
		bgp.NewPathAttributeCommunities([]uint32{0xFFFFFF01, 65001<<16 | 7}),
	}
	msg := bgp.NewBGPUpdateMessage([]bgp.PathNLRI{pathNLRI(t, "198.51.100.0/24")}, attrs, []bgp.PathNLRI{pathNLRI(t, "203.0.113.0/24")})
	body, err := mrt.NewBGP4MPMessage(65001, 65000, 0, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.254"), true, msg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mrt.NewMRTMessage(time.Unix(1700000000, 0), mrt.BGP4MP, mrt.MESSAGE_AS4, body)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range readAll(t, r) {
		got = append(got, e.Bgpdump())
	}
	want := []string{
		"BGP4MP|1700000000|W|192.0.2.1|65001|198.51.100.0/24",
		"BGP4MP|1700000000|W|192.0.2.1|65001|2001:db8:1::/48",
		"BGP4MP|1700000000|A|192.0.2.1|65001|203.0.113.0/24|65001 4200000000 {64500,64501}|EGP|192.0.2.1|0|0|no-export 65001:7|NAG||",
		"BGP4MP|1700000000|A|192.0.2.1|65001|2001:db8::/32|65001 4200000000 {64500,64501}|EGP|2001:db8::1|0|0|no-export 65001:7|NAG||",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
