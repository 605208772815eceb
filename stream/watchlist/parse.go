package watchlist

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// ErrSyntax marks a body that cannot be read as a list at all (bad JSON,
// an over-long line); single bad entries are rejected lines instead.
var ErrSyntax = errors.New("malformed list")

// Format is how an import body is written.
type Format int

// Formats.
const (
	Text Format = iota // one IP or CIDR per line; blank lines and # comments ignored
	JSON               // {"entries": ["192.0.2.1", "2001:db8::/48", ...]}
)

// maxLine bounds one line of a text body.
const maxLine = 4096

// ParseEntry parses one IP address (a /32 or /128) or CIDR block. IPv4-
// mapped IPv6 forms count as IPv4; zones and host bits set below the mask
// are errors.
func ParseEntry(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	if strings.ContainsRune(s, '%') {
		return netip.Prefix{}, errors.New("IPv6 zones are not allowed")
	}
	if !strings.ContainsRune(s, '/') {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR block")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or CIDR block")
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("an IPv4-mapped block shorter than /96 is not IPv4")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("host bits set below /%d (the block is %s)", p.Bits(), m)
	}
	return p, nil
}

// line is one entry of a body: its text as sent and its 1-based number
// (the line of a text body, the element of a JSON list).
type line struct {
	no   int
	text string
}

// reader yields a body's entries one at a time.
type reader interface {
	// next returns the next entry; ok is false at the end.
	next() (l line, ok bool, err error)
}

func newReader(r io.Reader, f Format) reader {
	if f == JSON {
		return &jsonReader{dec: json.NewDecoder(r)}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxLine+2), maxLine+2) // the line, \r\n
	return &textReader{sc: sc}
}

type textReader struct {
	sc *bufio.Scanner
	no int
}

func (t *textReader) next() (line, bool, error) {
	for t.sc.Scan() {
		t.no++
		s := t.sc.Text()
		if t.no == 1 {
			s = strings.TrimPrefix(s, "\ufeff") // byte order mark
		}
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		return line{t.no, s}, true, nil
	}
	if err := t.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return line{}, false, fmt.Errorf("%w: line %d is longer than %d bytes", ErrSyntax, t.no+1, maxLine)
		}
		return line{}, false, err // reading the body failed (size limit, timeout)
	}
	return line{}, false, nil
}

// jsonReader streams {"entries": [...]} token by token, so a big list
// never sits in memory whole.
type jsonReader struct {
	dec   *json.Decoder
	state int // 0 before the object, 1 inside the list, 2 done
	no    int
}

const jsonShape = `{"entries": ["192.0.2.1", "2001:db8::/48", ...]}`

func (j *jsonReader) syntax(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: expected %s: invalid JSON at byte %d (%s)", ErrSyntax, jsonShape, se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: expected %s: the JSON ends too early", ErrSyntax, jsonShape)
	}
	var de *json.UnmarshalTypeError
	if errors.As(err, &de) {
		return fmt.Errorf("%w: expected %s: entry %d must be a string, not %s", ErrSyntax, jsonShape, j.no, de.Value)
	}
	return err // reading the body failed
}

func (j *jsonReader) expect(want json.Delim) error {
	t, err := j.dec.Token()
	if err != nil {
		return j.syntax(err)
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: expected %s: got %v where %q belongs", ErrSyntax, jsonShape, t, string(want))
	}
	return nil
}

func (j *jsonReader) next() (line, bool, error) {
	if j.state == 0 {
		if err := j.expect('{'); err != nil {
			return line{}, false, err
		}
		t, err := j.dec.Token()
		if err != nil {
			return line{}, false, j.syntax(err)
		}
		if k, ok := t.(string); !ok || k != "entries" {
			return line{}, false, fmt.Errorf("%w: expected %s: unknown field %v", ErrSyntax, jsonShape, t)
		}
		if err := j.expect('['); err != nil {
			return line{}, false, err
		}
		j.state = 1
	}
	for j.state == 1 {
		if !j.dec.More() {
			if err := j.expect(']'); err != nil {
				return line{}, false, err
			}
			if err := j.expect('}'); err != nil {
				return line{}, false, err
			}
			if _, err := j.dec.Token(); !errors.Is(err, io.EOF) {
				return line{}, false, fmt.Errorf("%w: expected %s: trailing data after the object", ErrSyntax, jsonShape)
			}
			j.state = 2
			break
		}
		j.no++
		var s string
		if err := j.dec.Decode(&s); err != nil {
			return line{}, false, j.syntax(err)
		}
		if strings.TrimSpace(s) == "" {
			continue
		}
		return line{j.no, s}, true, nil
	}
	return line{}, false, nil
}
