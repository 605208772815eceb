package bgp

import (
	"bufio"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/mrt"
)

// ElemType says what an Elem reports.
type ElemType uint8

const (
	// RIB is a route in a RIB dump (bgpdump "B").
	RIB ElemType = iota + 1
	// Announce is an announced route in an update (bgpdump "A").
	Announce
	// Withdraw is a withdrawn prefix in an update (bgpdump "W").
	Withdraw
	// State is a BGP4MP session state change (bgpdump "STATE").
	State
)

// Origin attribute values.
const (
	OriginIGP        = 0
	OriginEGP        = 1
	OriginIncomplete = 2
)

// Attrs are the path attributes of an announced or RIB route, shared by the
// Elems of one record.
type Attrs struct {
	ASPath          []Segment
	Origin          uint8
	NextHop         netip.Addr
	LocalPref       uint32
	MED             uint32
	Communities     []uint32
	AtomicAggregate bool
	AggregatorAS    uint32
	AggregatorAddr  netip.Addr // invalid when absent
}

// Segment is one AS_PATH segment.
type Segment struct {
	Set bool // AS_SET (or AS_CONFED_SET); otherwise a sequence
	ASN []uint32
}

// OriginAS is the last AS of the path when it ends in a sequence, 0 when the
// path is empty or ends in an AS_SET (no single origin).
func (a *Attrs) OriginAS() uint32 {
	if a == nil || len(a.ASPath) == 0 {
		return 0
	}
	last := a.ASPath[len(a.ASPath)-1]
	if last.Set || len(last.ASN) == 0 {
		return 0
	}
	return last.ASN[len(last.ASN)-1]
}

// Elem is one (peer, prefix) fact of an MRT record, or a state change.
type Elem struct {
	Type     ElemType
	Dump     string // "TABLE_DUMP", "TABLE_DUMP2" or "BGP4MP" (bgpdump's first field)
	Time     uint32 // MRT header time, unix seconds
	PeerIP   netip.Addr
	PeerAS   uint32
	Prefix   netip.Prefix // RIB, Announce, Withdraw
	Attrs    *Attrs       // RIB, Announce
	OldState uint16       // State
	NewState uint16       // State
}

// Stats counts what a Reader saw.
type Stats struct {
	Records int            // MRT records read
	Elems   int            // Elems produced
	Skipped map[string]int // records of unsupported types/subtypes, by "type/subtype"
}

// Reader reads Elems from an MRT stream.
type Reader struct {
	r       *bufio.Reader
	closer  io.Closer
	peers   []*mrt.Peer // TABLE_DUMP_V2 peer index table
	pending []Elem
	next    int // index of the next pending Elem
	offset  int64
	hdr     [mrt.MRT_COMMON_HEADER_LEN]byte
	body    []byte
	stats   Stats
}

// ErrMalformed wraps errors of records that cannot be decoded.
var ErrMalformed = errors.New("malformed MRT record")

// Open opens an MRT file, plain, gzip or bzip2.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open MRT %q: %w", path, err)
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open MRT %q: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// NewReader reads MRT from r, decompressing gzip or bzip2 when the stream
// starts with their magic bytes.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(3)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("peek MRT magic: %w", err)
	}
	var src io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		src = zr
	case len(magic) == 3 && string(magic) == "BZh":
		src = bzip2.NewReader(br)
	}
	return &Reader{r: bufio.NewReaderSize(src, 1<<16), stats: Stats{Skipped: map[string]int{}}}, nil
}

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Next returns the next Elem, or io.EOF at the end of the stream.
func (r *Reader) Next() (Elem, error) {
	for r.next == len(r.pending) {
		if err := r.readRecord(); err != nil {
			return Elem{}, err
		}
	}
	e := r.pending[r.next]
	r.pending[r.next] = Elem{}
	r.next++
	r.stats.Elems++
	return e, nil
}

func (r *Reader) readRecord() error {
	r.pending, r.next = r.pending[:0], 0
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("%w at offset %d: header: %w", ErrMalformed, r.offset, err)
	}
	n := binary.BigEndian.Uint32(r.hdr[8:12])
	if n > 1<<24 {
		return fmt.Errorf("%w at offset %d: length %d", ErrMalformed, r.offset, n)
	}
	if cap(r.body) < int(n) {
		r.body = make([]byte, n)
	}
	body := r.body[:n]
	if _, err := io.ReadFull(r.r, body); err != nil {
		return fmt.Errorf("%w at offset %d: body: %w", ErrMalformed, r.offset, err)
	}
	// extended-timestamp types carry their microseconds in the first 4 body bytes
	var hb [mrt.MRT_COMMON_HEADER_LEN + 4]byte
	copy(hb[:], r.hdr[:])
	k := copy(hb[mrt.MRT_COMMON_HEADER_LEN:], body)
	h, err := mrt.ParseHeader(hb[:mrt.MRT_COMMON_HEADER_LEN+k])
	if err != nil {
		return fmt.Errorf("%w at offset %d: %w", ErrMalformed, r.offset, err)
	}
	at := r.offset
	r.offset += int64(mrt.MRT_COMMON_HEADER_LEN) + int64(h.Len)
	r.stats.Records++
	if err := r.decode(h, body); err != nil {
		return fmt.Errorf("%w at offset %d (type %d/%d): %w", ErrMalformed, at, h.Type, h.SubType, err)
	}
	return nil
}

func (r *Reader) skip(h *mrt.MRTHeader) {
	r.stats.Skipped[fmt.Sprintf("%d/%d", h.Type, h.SubType)]++
}

func (r *Reader) decode(h *mrt.MRTHeader, body []byte) error {
	switch h.Type {
	case mrt.TABLE_DUMP:
		return r.decodeTableDump(h, body)
	case mrt.BGP4MP_ET:
		if len(body) < 4 {
			return errors.New("BGP4MP_ET without microseconds")
		}
		body = body[4:]
		h2 := *h
		h2.Type = mrt.BGP4MP
		h2.Len -= 4
		h = &h2
	case mrt.TABLE_DUMPv2, mrt.BGP4MP:
	default:
		r.skip(h)
		return nil
	}
	if h.Type == mrt.TABLE_DUMPv2 {
		switch mrt.MRTSubTypeTableDumpv2(h.SubType) {
		case mrt.PEER_INDEX_TABLE, mrt.RIB_IPV4_UNICAST, mrt.RIB_IPV6_UNICAST,
			mrt.RIB_IPV4_UNICAST_ADDPATH, mrt.RIB_IPV6_UNICAST_ADDPATH:
		default:
			r.skip(h)
			return nil
		}
	}
	if h.Type == mrt.BGP4MP {
		switch mrt.MRTSubTypeBGP4MP(h.SubType) {
		case mrt.STATE_CHANGE, mrt.STATE_CHANGE_AS4, mrt.MESSAGE, mrt.MESSAGE_AS4:
		default:
			r.skip(h)
			return nil
		}
	}
	if h.Type == mrt.BGP4MP && mrt.MRTSubTypeBGP4MP(h.SubType) == mrt.MESSAGE {
		return r.decodeMessage2(h, body)
	}
	msg, err := mrt.ParseBody(body, h)
	if err != nil {
		return err
	}
	switch b := msg.Body.(type) {
	case *mrt.PeerIndexTable:
		r.peers = b.Peers
	case *mrt.Rib:
		r.ribElems(h, b)
	case *mrt.BGP4MPStateChange:
		r.pending = append(r.pending, Elem{Type: State, Dump: "BGP4MP", Time: h.Timestamp,
			PeerIP: b.PeerIpAddress, PeerAS: b.PeerAS, OldState: uint16(b.OldState), NewState: uint16(b.NewState)})
	case *mrt.BGP4MPMessage:
		r.updateElems(h, b)
	default:
		r.skip(h)
	}
	return nil
}

func (r *Reader) ribElems(h *mrt.MRTHeader, rib *mrt.Rib) {
	pfx, ok := nlriPrefix(rib.Prefix)
	if !ok {
		r.skip(h)
		return
	}
	for _, e := range rib.Entries {
		el := Elem{Type: RIB, Dump: "TABLE_DUMP2", Time: h.Timestamp, Prefix: pfx}
		if int(e.PeerIndex) < len(r.peers) {
			p := r.peers[e.PeerIndex]
			el.PeerIP, el.PeerAS = p.IpAddress, p.AS
		}
		a := &Attrs{}
		fillAttrs(a, e.PathAttributes)
		el.Attrs = a
		r.pending = append(r.pending, el)
	}
}

func (r *Reader) updateElems(h *mrt.MRTHeader, m *mrt.BGP4MPMessage) {
	u, ok := m.BGPMessage.Body.(*bgp.BGPUpdate)
	if !ok { // OPEN, KEEPALIVE, NOTIFICATION: bgpdump -m prints nothing
		return
	}
	base := Elem{Dump: "BGP4MP", Time: h.Timestamp, PeerIP: m.PeerIpAddress, PeerAS: m.PeerAS}
	var mpReach *bgp.PathAttributeMpReachNLRI
	var mpUnreach *bgp.PathAttributeMpUnreachNLRI
	for _, pa := range u.PathAttributes {
		switch p := pa.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			mpReach = p
		case *bgp.PathAttributeMpUnreachNLRI:
			mpUnreach = p
		}
	}
	withdraw := func(ns []bgp.PathNLRI) {
		for _, n := range ns {
			if pfx, ok := nlriPrefix(n.NLRI); ok {
				e := base
				e.Type, e.Prefix = Withdraw, pfx
				r.pending = append(r.pending, e)
			}
		}
	}
	withdraw(u.WithdrawnRoutes)
	if mpUnreach != nil {
		withdraw(mpUnreach.Value)
	}
	if len(u.NLRI) == 0 && mpReach == nil {
		return
	}
	a := &Attrs{}
	fillAttrs(a, u.PathAttributes)
	announce := func(ns []bgp.PathNLRI, attrs *Attrs) {
		for _, n := range ns {
			if pfx, ok := nlriPrefix(n.NLRI); ok {
				e := base
				e.Type, e.Prefix, e.Attrs = Announce, pfx, attrs
				r.pending = append(r.pending, e)
			}
		}
	}
	announce(u.NLRI, a)
	if mpReach != nil {
		mp := *a
		mp.NextHop = mpReach.Nexthop
		announce(mpReach.Value, &mp)
	}
}

// decodeMessage2 decodes BGP4MP_MESSAGE (2-byte AS numbers): gobgp's
// ParseBody decodes its UPDATE with 4-byte AS_PATHs, so the BGP4MP header is
// split here and gobgp decodes the message with Use2ByteAS.
func (r *Reader) decodeMessage2(h *mrt.MRTHeader, b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("BGP4MP_MESSAGE body of %d bytes", len(b))
	}
	peerAS := uint32(binary.BigEndian.Uint16(b[0:]))
	alen := 4
	switch afi := binary.BigEndian.Uint16(b[6:]); afi {
	case bgp.AFI_IP:
	case bgp.AFI_IP6:
		alen = 16
	default:
		return fmt.Errorf("BGP4MP_MESSAGE address family %d", afi)
	}
	b = b[8:]
	if len(b) < 2*alen+bgp.BGP_HEADER_LENGTH {
		return fmt.Errorf("BGP4MP_MESSAGE of %d bytes after its header", len(b))
	}
	peer, _ := netip.AddrFromSlice(b[:alen])
	msg, err := bgp.ParseBGPMessage(b[2*alen:], &bgp.MarshallingOption{Use2ByteAS: true})
	if err != nil {
		return err
	}
	r.updateElems(h, &mrt.BGP4MPMessage{
		BGP4MPHeader: &mrt.BGP4MPHeader{PeerAS: peerAS, PeerIpAddress: peer},
		BGPMessage:   msg,
	})
	return nil
}

// decodeTableDump splits a legacy TABLE_DUMP body (RFC 6396 4.2), which
// gobgp does not decode, and lets gobgp decode its attributes.
func (r *Reader) decodeTableDump(h *mrt.MRTHeader, b []byte) error {
	var alen int
	switch h.SubType {
	case 1:
		alen = 4
	case 2:
		alen = 16
	default:
		r.skip(h)
		return nil
	}
	need := 4 + alen + 2 + 4 + alen + 2 + 2
	if len(b) < need {
		return fmt.Errorf("TABLE_DUMP body of %d bytes, need %d", len(b), need)
	}
	p := 4
	addr, _ := netip.AddrFromSlice(b[p : p+alen])
	p += alen
	plen := int(b[p])
	p += 2 // prefix length, status
	p += 4 // originated time
	peer, _ := netip.AddrFromSlice(b[p : p+alen])
	p += alen
	peerAS := uint32(binary.BigEndian.Uint16(b[p:]))
	p += 2
	attrLen := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if len(b)-p < attrLen {
		return fmt.Errorf("TABLE_DUMP attributes of %d bytes, %d left", attrLen, len(b)-p)
	}
	pfx, err := addr.Prefix(plen)
	if err != nil || pfx.Addr() != addr {
		return fmt.Errorf("TABLE_DUMP prefix %s/%d: invalid", addr, plen)
	}
	attrs, err := decodeAttrs(b[p:p+attrLen], &bgp.MarshallingOption{Use2ByteAS: true})
	if err != nil {
		return err
	}
	a := &Attrs{}
	fillAttrs(a, attrs)
	r.pending = append(r.pending, Elem{Type: RIB, Dump: "TABLE_DUMP", Time: h.Timestamp,
		PeerIP: peer, PeerAS: peerAS, Prefix: pfx, Attrs: a})
	return nil
}

func decodeAttrs(data []byte, opt *bgp.MarshallingOption) ([]bgp.PathAttributeInterface, error) {
	var out []bgp.PathAttributeInterface
	for len(data) > 0 {
		pa, err := bgp.GetPathAttribute(data)
		if err != nil {
			return nil, fmt.Errorf("path attribute: %w", err)
		}
		if err := pa.DecodeFromBytes(data, opt); err != nil {
			return nil, fmt.Errorf("path attribute %d: %w", pa.GetType(), err)
		}
		n := pa.Len()
		if n <= 0 || n > len(data) {
			return nil, fmt.Errorf("path attribute %d: length %d of %d bytes", pa.GetType(), n, len(data))
		}
		out = append(out, pa)
		data = data[n:]
	}
	return out, nil
}

// fillAttrs fills a from decoded attributes. The next hop is NEXT_HOP's, or
// MP_REACH_NLRI's when there is no NEXT_HOP (callers announcing MP_REACH
// prefixes set MP_REACH's themselves).
func fillAttrs(a *Attrs, pas []bgp.PathAttributeInterface) {
	var as4 *bgp.PathAttributeAs4Path
	var mpNextHop netip.Addr
	var as4agg *bgp.PathAttributeAs4Aggregator
	for _, pa := range pas {
		switch p := pa.(type) {
		case *bgp.PathAttributeOrigin:
			a.Origin = p.Value
		case *bgp.PathAttributeAsPath:
			for _, s := range p.Value {
				a.ASPath = append(a.ASPath, Segment{
					Set: s.GetType() == bgp.BGP_ASPATH_ATTR_TYPE_SET || s.GetType() == bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SET,
					ASN: append([]uint32(nil), s.GetAS()...)})
			}
		case *bgp.PathAttributeAs4Path:
			as4 = p
		case *bgp.PathAttributeNextHop:
			a.NextHop = p.Value
		case *bgp.PathAttributeMultiExitDisc:
			a.MED = p.Value
		case *bgp.PathAttributeLocalPref:
			a.LocalPref = p.Value
		case *bgp.PathAttributeAtomicAggregate:
			a.AtomicAggregate = true
		case *bgp.PathAttributeAggregator:
			a.AggregatorAS, a.AggregatorAddr = p.Value.AS, p.Value.Address
		case *bgp.PathAttributeAs4Aggregator:
			as4agg = p
		case *bgp.PathAttributeCommunities:
			a.Communities = append([]uint32(nil), p.Value...)
		case *bgp.PathAttributeMpReachNLRI:
			mpNextHop = p.Nexthop
		}
	}
	if !a.NextHop.IsValid() {
		a.NextHop = mpNextHop
	}
	if as4 != nil {
		mergeAS4(a, as4)
	}
	if as4agg != nil && a.AggregatorAS == bgp.AS_TRANS {
		a.AggregatorAS, a.AggregatorAddr = as4agg.Value.AS, as4agg.Value.Address
	}
}

// mergeAS4 reconstructs the path from AS_PATH and AS4_PATH (RFC 6793 4.2.3):
// the leading AS_PATH ASes beyond AS4_PATH's length, then AS4_PATH.
func mergeAS4(a *Attrs, as4 *bgp.PathAttributeAs4Path) {
	count := func(segs []Segment) int {
		n := 0
		for _, s := range segs {
			if s.Set {
				n++
			} else {
				n += len(s.ASN)
			}
		}
		return n
	}
	var p4 []Segment
	for _, s := range as4.Value {
		p4 = append(p4, Segment{Set: s.Type == bgp.BGP_ASPATH_ATTR_TYPE_SET || s.Type == bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SET,
			ASN: append([]uint32(nil), s.AS...)})
	}
	n2, n4 := count(a.ASPath), count(p4)
	if n4 > n2 {
		return // ignore AS4_PATH (RFC 6793)
	}
	keep := n2 - n4
	var out []Segment
	for _, s := range a.ASPath {
		if keep == 0 {
			break
		}
		if s.Set {
			out = append(out, s)
			keep--
			continue
		}
		k := min(keep, len(s.ASN))
		out = append(out, Segment{ASN: s.ASN[:k]})
		keep -= k
	}
	// join adjacent sequences like bgpdump prints them (space separated)
	a.ASPath = append(out, p4...)
}

func nlriPrefix(n bgp.NLRI) (netip.Prefix, bool) {
	switch p := n.(type) {
	case *bgp.IPAddrPrefix:
		return p.Prefix, true
	}
	return netip.Prefix{}, false
}
