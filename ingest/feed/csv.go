package feed

import (
	"bytes"
	"strings"

	"github.com/netwarden/netwarden/internal/resource"
)

// csvState is the CSV format's state across lines.
type csvState struct {
	started   bool     // the first non-comment row has been seen
	col       int      // the entry column, -1 until known
	typeCol   int      // an "ioc_type" column (ThreatFox), -1 if none
	commented []string // a header row found in a comment (ThreatFox: # "first_seen_utc","ioc_id",...)
	fields    [][]byte // scratch
}

// Header names that hold the entry, in order of preference.
var csvColumns = map[resource.Kind][]string{
	resource.IP:     {"dst_ip", "ip", "ip_address", "ipaddress", "ioc_value", "ioc", "address", "host"},
	resource.Domain: {"domain", "hostname", "host", "ioc_value", "ioc"},
	resource.Email:  {"email", "email_address", "address", "domain"},
}

func (p *parser) csvLine(n int, s []byte) {
	if s[0] == '#' {
		if !p.csv.started {
			p.csvCommentHeader(s)
		}
		return
	}
	fields, ok := splitCSV(s, p.csv.fields[:0])
	p.csv.fields = fields
	if !p.csv.started {
		p.csv.started = true
		p.csv.col, p.csv.typeCol = -1, -1
		switch {
		case ok && len(p.csv.commented) == len(fields):
			// The header was a comment (ThreatFox); this row is data.
			p.csv.col, p.csv.typeCol = pickColumn(p.kind, p.csv.commented), typeColumn(p.csv.commented)
		case ok && p.csvIsHeader(fields):
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = string(f)
			}
			p.csv.col, p.csv.typeCol = pickColumn(p.kind, names), typeColumn(names)
			return // the header row is not an entry line
		}
	}
	p.res.Lines++
	if !ok {
		p.skip(n, s, errCSVQuote)
		return
	}
	if t := p.csv.typeCol; t >= 0 && t < len(fields) && !typeMatches(p.kind, fields[t]) {
		// A mixed export (ThreatFox: ip:port, domain, url, hashes):
		// rows of other types are not entries of this list.
		p.ignored++
		return
	}
	col := p.csv.col
	if col < 0 {
		for i, f := range fields {
			if len(f) > 0 && p.validCell(f) {
				col = i
				break
			}
		}
		if col < 0 {
			p.skip(n, s, errCSVNoColumn)
			return
		}
		p.csv.col = col
	}
	if col >= len(fields) {
		p.skip(n, s, errCSVShort)
		return
	}
	v := fields[col]
	if len(v) == 0 {
		p.skip(n, s, errCSVEmpty)
		return
	}
	if err := p.entry(cellValue(v)); err != nil {
		p.skip(n, s, err)
	}
}

// csvCommentHeader remembers a header row written as a comment.
func (p *parser) csvCommentHeader(s []byte) {
	s = trimSpace(bytes.TrimLeft(s, "#"))
	if bytes.IndexByte(s, ',') < 0 {
		return
	}
	fields, ok := splitCSV(s, nil)
	if !ok || len(fields) < 2 || !p.csvIsHeader(fields) {
		return
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = string(f)
	}
	p.csv.commented = names
}

// csvIsHeader reports whether a row is a header: every field is a column
// name (a letter, then letters, digits, spaces, '_', '-', '(', ')') and
// none is an entry. A data row of another type (a domain row in a mixed
// export read as an IP list) has values that are not names: dates,
// numbers, dotted names.
func (p *parser) csvIsHeader(fields [][]byte) bool {
	for _, f := range fields {
		if len(f) == 0 {
			continue
		}
		if !isColumnName(f) || p.validCell(f) {
			return false
		}
	}
	return true
}

func isColumnName(f []byte) bool {
	if !(f[0] >= 'a' && f[0] <= 'z' || f[0] >= 'A' && f[0] <= 'Z') {
		return false
	}
	for _, c := range f {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == ' ', c == '-', c == '(', c == ')':
		default:
			return false
		}
	}
	return true
}

// validCell reports whether v holds an entry of the list's kind, without
// recording it.
func (p *parser) validCell(v []byte) bool {
	v = cellValue(v)
	switch p.kind {
	case resource.IP:
		if bytes.IndexByte(v, '/') >= 0 {
			_, err := parsePrefix(v)
			return err == nil
		}
		_, err := parseAddr(v)
		return err == nil
	case resource.Domain:
		_, err := resource.ParseDomain(string(v))
		return err == nil
	case resource.Email:
		_, err := resource.ParseEmail(string(v))
		return err == nil
	}
	return false
}

// typeColumn returns the index of an "ioc_type" column, or -1.
func typeColumn(names []string) int {
	for i, n := range names {
		if strings.EqualFold(strings.TrimSpace(n), "ioc_type") {
			return i
		}
	}
	return -1
}

// typeMatches reports whether an ioc_type value names entries of kind.
func typeMatches(kind resource.Kind, t []byte) bool {
	s := strings.ToLower(string(t))
	switch kind {
	case resource.IP:
		return s == "ip" || s == "ip:port" || s == "ipv4" || s == "ipv6" || s == "ip_address"
	case resource.Domain:
		return s == "domain" || s == "hostname" || s == "fqdn"
	case resource.Email:
		return s == "email" || s == "email_address" || s == "email_domain"
	}
	return false
}

// pickColumn returns the index of the preferred header name, or -1.
func pickColumn(kind resource.Kind, names []string) int {
	for _, want := range csvColumns[kind] {
		for i, n := range names {
			if strings.EqualFold(strings.TrimSpace(n), want) {
				return i
			}
		}
	}
	return -1
}

// cellValue strips a port from "ip:port", "[v6]:port" and "[v6]".
func cellValue(v []byte) []byte {
	if len(v) > 0 && v[0] == '[' {
		if j := bytes.IndexByte(v, ']'); j > 1 {
			rest := v[j+1:]
			if len(rest) == 0 || (rest[0] == ':' && isDigits(rest[1:])) {
				return v[1:j]
			}
		}
		return v
	}
	if i := bytes.IndexByte(v, ':'); i >= 0 && bytes.IndexByte(v[i+1:], ':') < 0 && isDigits(v[i+1:]) {
		return v[:i]
	}
	return v
}

// splitCSV splits one CSV line into fields, appending them to dst.
// Fields are trimmed; a quoted field may contain commas and "" for a
// quote. It reports false for an unterminated quote or text after a
// closing quote. Quoted fields spanning lines are not supported (lists
// do not have them).
func splitCSV(s []byte, dst [][]byte) ([][]byte, bool) {
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i < len(s) && s[i] == '"' {
			i++
			start := i
			escaped := false
			for {
				j := bytes.IndexByte(s[i:], '"')
				if j < 0 {
					return dst, false
				}
				i += j
				if i+1 < len(s) && s[i+1] == '"' {
					escaped = true
					i += 2
					continue
				}
				break
			}
			f := s[start:i]
			if escaped {
				f = bytes.ReplaceAll(f, []byte(`""`), []byte(`"`))
			}
			i++ // closing quote
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			dst = append(dst, trimSpace(f))
			if i == len(s) {
				return dst, true
			}
			if s[i] != ',' {
				return dst, false
			}
			i++
			continue
		}
		j := bytes.IndexByte(s[i:], ',')
		if j < 0 {
			return append(dst, trimSpace(s[i:])), true
		}
		dst = append(dst, trimSpace(s[i:i+j]))
		i += j + 1
	}
}
