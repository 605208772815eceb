package bgp

import (
	"strconv"
)

// Bgpdump renders e as `bgpdump -m` prints it (without the newline).
func (e *Elem) Bgpdump() string {
	return string(e.AppendBgpdump(nil))
}

// AppendBgpdump appends e's `bgpdump -m` line (without the newline) to b.
func (e *Elem) AppendBgpdump(b []byte) []byte {
	b = append(b, e.Dump...)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(e.Time), 10)
	switch e.Type {
	case RIB:
		b = append(b, "|B|"...)
	case Announce:
		b = append(b, "|A|"...)
	case Withdraw:
		b = append(b, "|W|"...)
	case State:
		b = append(b, "|STATE|"...)
	}
	b = e.PeerIP.AppendTo(b)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(e.PeerAS), 10)
	b = append(b, '|')
	if e.Type == State {
		b = strconv.AppendUint(b, uint64(e.OldState), 10)
		b = append(b, '|')
		return strconv.AppendUint(b, uint64(e.NewState), 10)
	}
	b = e.Prefix.AppendTo(b)
	if e.Type == Withdraw {
		return b
	}
	a := e.Attrs
	b = append(b, '|')
	b = appendASPath(b, a.ASPath)
	b = append(b, '|')
	switch a.Origin {
	case OriginIGP:
		b = append(b, "IGP"...)
	case OriginEGP:
		b = append(b, "EGP"...)
	case OriginIncomplete:
		b = append(b, "INCOMPLETE"...)
	}
	b = append(b, '|')
	b = a.NextHop.AppendTo(b)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(a.LocalPref), 10)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(a.MED), 10)
	b = append(b, '|')
	for i, c := range a.Communities {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendCommunity(b, c)
	}
	if a.AtomicAggregate {
		b = append(b, "|AG|"...)
	} else {
		b = append(b, "|NAG|"...)
	}
	if a.AggregatorAddr.IsValid() {
		b = strconv.AppendUint(b, uint64(a.AggregatorAS), 10)
		b = append(b, ' ')
		b = a.AggregatorAddr.AppendTo(b)
	}
	return append(b, '|')
}

func appendASPath(b []byte, segs []Segment) []byte {
	for i, s := range segs {
		if i > 0 {
			b = append(b, ' ')
		}
		if s.Set {
			b = append(b, '{')
		}
		for j, as := range s.ASN {
			if j > 0 {
				if s.Set {
					b = append(b, ',')
				} else {
					b = append(b, ' ')
				}
			}
			b = strconv.AppendUint(b, uint64(as), 10)
		}
		if s.Set {
			b = append(b, '}')
		}
	}
	return b
}

// appendCommunity renders a community like bgpdump (zebra's names for the
// well-known ones).
func appendCommunity(b []byte, c uint32) []byte {
	switch c {
	case 0xFFFFFF01:
		return append(b, "no-export"...)
	case 0xFFFFFF02:
		return append(b, "no-advertise"...)
	case 0xFFFFFF03:
		return append(b, "local-AS"...)
	}
	b = strconv.AppendUint(b, uint64(c>>16), 10)
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(c&0xffff), 10)
}
