// Package bgp is netwarden's BGP producer for outage detection (issue 7).
//
// Reader reads MRT files (RFC 6396): TABLE_DUMP and TABLE_DUMP_V2 RIB dumps
// and BGP4MP / BGP4MP_ET update files, plain, gzip or bzip2 (detected from
// the first bytes). MRT framing and BGP decoding are gobgp v4's
// (github.com/osrg/gobgp/v4/pkg/packet/{mrt,bgp}); gobgp does not decode the
// legacy TABLE_DUMP body, so that body is split here and its attributes are
// decoded by gobgp with 2-byte AS numbers. Every record becomes Elems, one
// per (peer, prefix) like bgpdump's one-line mode; Elem.Bgpdump renders the
// exact `bgpdump -m` line, checked against the golden outputs in
// ../shared/data/bgp. Records of other MRT types are counted in Stats and
// skipped; a malformed record ends reading with an error naming its offset.
//
// Visibility turns Elems into the IODA-style BGP signal: per 5-minute bin
// (Config.Bin), per origin ASN and per country, the number of IPv4 /24
// blocks visible to more than half of the full-feed peers. A /24 is visible
// to a peer when the peer has a route of length <= /24 covering it (longer
// prefixes are ignored, as in IODA). A visible /24 is attributed to the origin
// AS of the most specific route covering it (the route origin, or the CAIDA
// pfx2as table when one is given) and to the country the MaxMind country
// database gives its network. A Point's Time is the bin start and its Value
// the count at the end of the bin. RIB entries add to the state (a later RIB
// dump does not reset it); a RIB dump whose records span several bins gives
// partial first bins. A Point maps 1:1 onto detect.Point with
// Datasource "bgp", EntityType "asn"|"country", EntityCode the ASN in decimal
// or the ISO country code.
package bgp
