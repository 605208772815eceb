package bgp

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/mrt"
)

// toPathAttrs builds gobgp path attributes (4-byte ASNs) from Attrs.
func toPathAttrs(t *testing.T, a *Attrs) []bgp.PathAttributeInterface {
	t.Helper()
	var segs []bgp.AsPathParamInterface
	for _, s := range a.ASPath {
		typ := uint8(bgp.BGP_ASPATH_ATTR_TYPE_SEQ)
		if s.Set {
			typ = bgp.BGP_ASPATH_ATTR_TYPE_SET
		}
		segs = append(segs, bgp.NewAs4PathParam(typ, s.ASN))
	}
	nh, err := bgp.NewPathAttributeNextHop(a.NextHop)
	if err != nil {
		t.Fatal(err)
	}
	out := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(a.Origin), bgp.NewPathAttributeAsPath(segs), nh,
		bgp.NewPathAttributeMultiExitDisc(a.MED), bgp.NewPathAttributeLocalPref(a.LocalPref),
	}
	if len(a.Communities) > 0 {
		out = append(out, bgp.NewPathAttributeCommunities(a.Communities))
	}
	if a.AtomicAggregate {
		out = append(out, bgp.NewPathAttributeAtomicAggregate())
	}
	if a.AggregatorAddr.IsValid() {
		agg, err := bgp.NewPathAttributeAggregator(a.AggregatorAS, a.AggregatorAddr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, agg)
	}
	return out
}

// TestTableDumpV2 re-encodes the real 2002 RIB as TABLE_DUMP_V2 (peer index
// table, RIB_IPV4_UNICAST with 4-byte ASNs) with gobgp's encoder, reads it
// back and compares with bgpdump's golden lines (as TABLE_DUMP2).
func TestTableDumpV2(t *testing.T) {
	r, err := Open(needData(t, "bview.20020722.2337.gz"))
	if err != nil {
		t.Fatal(err)
	}
	elems := readAll(t, r)
	r.Close()

	type pk struct {
		ip netip.Addr
		as uint32
	}
	index := map[pk]uint16{}
	var peers []*mrt.Peer
	for _, e := range elems {
		k := pk{e.PeerIP, e.PeerAS}
		if _, ok := index[k]; !ok {
			index[k] = uint16(len(peers))
			peers = append(peers, mrt.NewPeer(e.PeerIP, e.PeerIP, e.PeerAS, true))
		}
	}
	var buf bytes.Buffer
	write := func(sec uint32, st mrt.MRTSubTypeTableDumpv2, body mrt.Body) {
		ts := time.Unix(int64(sec), 0)
		m, err := mrt.NewMRTMessage(ts, mrt.TABLE_DUMPv2, st, body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	write(elems[0].Time, mrt.PEER_INDEX_TABLE, mrt.NewPeerIndexTable(netip.MustParseAddr("192.0.2.1"), "", peers))
	for i, seq := 0, uint32(0); i < len(elems); seq++ {
		j := i
		var entries []*mrt.RibEntry
		for ; j < len(elems) && elems[j].Prefix == elems[i].Prefix && elems[j].Time == elems[i].Time; j++ {
			e := elems[j]
			entries = append(entries, mrt.NewRibEntry(index[pk{e.PeerIP, e.PeerAS}], e.Time, 0, toPathAttrs(t, e.Attrs), false))
		}
		nlri, err := bgp.NewIPAddrPrefix(elems[i].Prefix)
		if err != nil {
			t.Fatal(err)
		}
		write(elems[i].Time, mrt.RIB_IPV4_UNICAST, mrt.NewRib(seq, bgp.RF_IPv4_UC, nlri, entries))
		i = j
	}

	r2, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r2)

	gf, err := os.Open(needData(t, "bview.20020722.2337.gz.bgpdump-expected.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	zr, err := gzip.NewReader(gf)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	n := 0
	for sc.Scan() {
		if n >= len(got) {
			t.Fatalf("only %d elems for more golden lines", len(got))
		}
		want := strings.Replace(sc.Text(), "TABLE_DUMP|", "TABLE_DUMP2|", 1)
		if g := got[n].Bgpdump(); g != want {
			t.Fatalf("line %d:\n got %s\nwant %s", n+1, g, want)
		}
		n++
	}
	if n != len(got) || n == 0 {
		t.Fatalf("%d elems, %d golden lines", len(got), n)
	}
	if r2.Stats().Records >= n {
		t.Fatalf("%d records for %d elems: prefixes not grouped", r2.Stats().Records, n)
	}
}
