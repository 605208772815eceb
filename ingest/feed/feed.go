// Package feed parses a downloaded blocklist body, in the list's native
// format, into the set of resources it lists.
//
// Contract:
//
//   - Parse reads one list version and returns its Set: the sorted,
//     de-duplicated resource keys (resource.Resource.Key) of every entry.
//     Lines that do not parse are counted and sampled in the Result, not
//     fatal, unless the body as a whole is not a list of the expected kind
//     (an HTML page, binary data, more than half of the entry lines bad, or
//     entry lines but no entry): then the error wraps ErrUnparseable and
//     the caller should keep the previous version rather than treat the
//     list as emptied.
//   - An empty body, or one of comments only, is an empty Set and no
//     error: what an empty list means is the caller's decision.
//   - Networks written with host bits set (1.2.3.4/24) are masked to their
//     network and counted in Result.Masked; IP ranges (a-b) become the
//     minimal list of covering CIDRs.
//   - Lines longer than MaxLineLen bytes are counted as skipped.
//
// Every function is pure (it reads only its arguments and the reader it is
// given) and safe for concurrent use; a Set is immutable once returned.
package feed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/netwarden/netwarden/internal/resource"
)

// MaxLineLen is the longest line, terminator included, that is parsed;
// a longer line is skipped.
const MaxLineLen = 64 << 10

// sniffLen is how much of the body DetectFormat and the HTML/binary sniff see.
const sniffLen = 16 << 10

// maxSamples is the number of skipped-line samples kept in a Result.
const maxSamples = 5

// ErrUnparseable is wrapped by Parse when the body is not a list of the
// expected kind in the expected format.
var ErrUnparseable = errors.New("not a parseable list")

// Format is the name of a list's native format.
type Format string

// Formats.
const (
	// FormatAuto detects the format from the content (and the name given
	// to ParseNamed); see DetectFormat.
	FormatAuto Format = "auto"
	// FormatPlain is one entry a line: IP, CIDR, range a-b, domain or
	// e-mail address, with #, ; and // comments.
	FormatPlain Format = "plain"
	// FormatSpamhaus is "CIDR ; SBLnnn" with ; comments (DROP/EDROP
	// drop.txt), or Spamhaus JSON lines ({"cidr":...}).
	FormatSpamhaus Format = "spamhaus"
	// FormatFirehol is a FireHOL .ipset/.netset: # header, one IP or CIDR a line.
	FormatFirehol Format = "firehol"
	// FormatCSV is comma-separated values with an optional # comment block
	// and header row; the entry column is chosen by header name or content.
	FormatCSV Format = "csv"
	// FormatIpsum is "IP<TAB>count" with # comments (stamparm/ipsum).
	FormatIpsum Format = "ipsum"
	// FormatHosts is a hosts file: "0.0.0.0 name [name...]".
	FormatHosts Format = "hosts"
	// FormatDshield is DShield block.txt: "start<TAB>end<TAB>bits<TAB>...".
	FormatDshield Format = "dshield"
)

// Formats lists every format, FormatAuto first.
func Formats() []Format {
	return []Format{FormatAuto, FormatPlain, FormatSpamhaus, FormatFirehol, FormatCSV, FormatIpsum, FormatHosts, FormatDshield}
}

// ParseFormat parses a format name (case-insensitive; "" is auto; "ipset"
// and "netset" are firehol, "block" is dshield).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatAuto, nil
	case "ipset", "netset":
		return FormatFirehol, nil
	case "block":
		return FormatDshield, nil
	case FormatAuto, FormatPlain, FormatSpamhaus, FormatFirehol, FormatCSV, FormatIpsum, FormatHosts, FormatDshield:
		return f, nil
	}
	return "", fmt.Errorf("feed: unknown format %q (want one of %v)", s, Formats())
}

func (f Format) valid() bool {
	_, err := ParseFormat(string(f))
	return err == nil && f != ""
}

// Set is the parsed content of one list version: sorted, de-duplicated
// resource keys (resource.Resource.Key()).
type Set []string

// Contains reports whether key is in s (binary search).
func (s Set) Contains(key string) bool {
	_, ok := slices.BinarySearch(s, key)
	return ok
}

// Diff returns the keys in next that are not in prev (adds) and those in
// prev that are not in next (rems), both sorted. Both sets must be sorted
// and unique, as Parse returns them. It is a linear merge.
func Diff(prev, next Set) (adds, rems []string) {
	i, j := 0, 0
	for i < len(prev) && j < len(next) {
		switch c := strings.Compare(prev[i], next[j]); {
		case c == 0:
			i++
			j++
		case c < 0:
			rems = append(rems, prev[i])
			i++
		default:
			adds = append(adds, next[j])
			j++
		}
	}
	rems = append(rems, prev[i:]...)
	adds = append(adds, next[j:]...)
	return adds, rems
}

// Result is the outcome of parsing one list body.
type Result struct {
	Set    Set
	Format Format // the format actually used (auto resolved)
	// Lines counts the non-empty, non-comment lines seen (a CSV header
	// row, a DShield "Start End ..." header row and Spamhaus JSON
	// metadata lines are not counted). Lines that deliberately list
	// nothing are counted here but are neither entries nor skipped:
	// hosts-file localhost lines, and CSV rows whose ioc_type is of
	// another kind (ThreatFox exports mix IPs, domains, URLs and hashes).
	Lines int
	// Skipped counts the lines that did not parse (or, in a hosts file,
	// that carried a name that did not parse).
	Skipped int
	// SkipSamples holds up to 5 "line N: ..." samples of skipped lines, for logs.
	SkipSamples []string
	// Masked counts CIDRs with host bits set that were masked to their network.
	Masked int
}

// Parse reads a list body in format f and returns its entries of the given
// kind. The error wraps ErrUnparseable when the body is HTML/XML, binary
// or compressed, when more than half of Lines did not parse, or when
// there were entry lines but no entry. An empty body or comments only
// give an empty Set and no error. On an error the Result still carries the
// counts and samples (but no Set), for logs.
func Parse(r io.Reader, kind resource.Kind, f Format) (Result, error) {
	return ParseNamed(r, "", kind, f)
}

// ParseNamed is Parse with the body's file name or URL, used as a hint by
// FormatAuto (see DetectFormat).
func ParseNamed(r io.Reader, name string, kind resource.Kind, f Format) (Result, error) {
	if !kind.Valid() {
		return Result{}, fmt.Errorf("feed: parse %q: invalid kind %v", name, kind)
	}
	if !f.valid() {
		return Result{}, fmt.Errorf("feed: parse %q: unknown format %q", name, f)
	}
	br := bufio.NewReaderSize(r, MaxLineLen)
	if b, _ := br.Peek(len(bom)); bytes.Equal(b, bom) {
		_, _ = br.Discard(len(bom))
	}
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return Result{Format: f}, fmt.Errorf("feed: read %s list %q: %w", kind, name, err)
	}
	if why := sniffNotList(head); why != "" {
		return Result{Format: f}, fmt.Errorf("feed: %s list %q: %w: body is %s", kind, name, ErrUnparseable, why)
	}
	if f == FormatAuto {
		f = DetectFormat(head, name)
	}
	p := parser{kind: kind, format: f}
	p.res.Format = f
	handle := p.handler()
	lr := lineReader{br: br}
	for {
		line, tooLong, ok := lr.next()
		if !ok {
			break
		}
		if tooLong {
			p.res.Lines++
			p.skip(lr.n, nil, errTooLong)
			continue
		}
		s := trimSpace(line)
		if len(s) == 0 {
			continue
		}
		handle(lr.n, s)
	}
	if lr.err != nil {
		return p.res, fmt.Errorf("feed: read %s list %q at line %d: %w", kind, name, lr.n, lr.err)
	}
	return p.finish(name)
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// sniffNotList returns why head is not the start of a text list, or "".
func sniffNotList(head []byte) string {
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		return "gzip-compressed data"
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return "a zip archive"
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return "binary data (NUL bytes)"
	}
	ctl := 0
	for _, c := range head {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') || c == 0x7f {
			ctl++
		}
	}
	if ctl > 0 && ctl*100 > len(head) {
		return "binary data (control bytes)"
	}
	if s := trimSpace(head); len(s) > 0 && s[0] == '<' {
		return "HTML/XML markup"
	}
	lower := bytes.ToLower(head)
	for _, m := range []string{"<html", "<!doctype html", "<body", "<head>"} {
		if bytes.Contains(lower, []byte(m)) {
			return "an HTML page"
		}
	}
	return ""
}

// lineReader yields lines without their terminator, counting them and
// skipping over (but reporting) lines longer than the reader's buffer.
type lineReader struct {
	br  *bufio.Reader
	n   int // number of the line last returned, from 1
	err error
}

func (lr *lineReader) next() (line []byte, tooLong, ok bool) {
	if lr.err != nil {
		return nil, false, false
	}
	b, err := lr.br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = lr.br.ReadSlice('\n')
	}
	if err != nil && err != io.EOF {
		lr.err = err
		return nil, false, false
	}
	if len(b) == 0 && !tooLong {
		return nil, false, false // EOF
	}
	lr.n++
	if tooLong {
		return nil, true, true
	}
	return b, false, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func trimSpace(s []byte) []byte {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// cutTrailingComment removes a comment introduced by whitespace followed
// by '#' (or ';' if semicolon, or "//" if slashes), and trims the rest.
func cutTrailingComment(s []byte, semicolon, slashes bool) []byte {
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c != '#' && c != ';' && c != '/' {
			continue
		}
		if s[i-1] != ' ' && s[i-1] != '\t' {
			continue
		}
		if c == '#' || (c == ';' && semicolon) || (c == '/' && slashes && i+1 < len(s) && s[i+1] == '/') {
			return trimSpace(s[:i])
		}
	}
	return s
}
