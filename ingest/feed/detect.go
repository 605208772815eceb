package feed

import (
	"bytes"
	"net/netip"
	"path"
	"strings"
)

// detectLines is how many lines of the head DetectFormat looks at.
const detectLines = 400

// DetectFormat guesses the format of a list from the first bytes of its
// body (FormatAuto uses the first 16 KiB) and its file name or URL path.
// It never returns FormatAuto. Rules, first match wins:
//
//   - name ends in .ipset or .netset: firehol; .csv: csv; base name
//     "hosts" or extension .hosts: hosts.
//   - a comment line mentioning "ipset", "netset" or "FireHOL": firehol;
//     a ";" comment mentioning Spamhaus: spamhaus; a comment naming the
//     DShield recommended block list: dshield; a "#" comment holding a
//     quoted CSV header ("a","b"): csv.
//   - then the first entry line decides: "{" with "cidr": spamhaus (JSON
//     lines); "X ; Y" with X an IP or CIDR: spamhaus; a '"' or ',': csv;
//     "IP count": ipsum; "IP IP [bits ...]" or a "Start End ..." header
//     row: dshield; "0.0.0.0 name",
//     "127.0.0.1 name" (or ::, ::1): hosts.
//   - otherwise plain.
//
// HTML and binary bodies are not a format: Parse rejects them with
// ErrUnparseable before detection.
func DetectFormat(head []byte, name string) Format {
	if f := detectName(name); f != "" {
		return f
	}
	head = bytes.TrimPrefix(head, bom)
	for n := 0; len(head) > 0 && n < detectLines; n++ {
		var line []byte
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			line, head = head, nil
		}
		s := trimSpace(line)
		if len(s) == 0 {
			continue
		}
		if s[0] == '#' || s[0] == ';' {
			if f := detectComment(s); f != "" {
				return f
			}
			continue
		}
		if bytes.HasPrefix(s, []byte("//")) {
			continue
		}
		return detectEntry(s)
	}
	return FormatPlain
}

func detectName(name string) Format {
	if i := strings.IndexAny(name, "?#"); i >= 0 {
		name = name[:i]
	}
	name = strings.ToLower(path.Base(strings.ReplaceAll(name, `\`, "/")))
	switch path.Ext(name) {
	case ".ipset", ".netset":
		return FormatFirehol
	case ".csv":
		return FormatCSV
	case ".hosts":
		return FormatHosts
	}
	if name == "hosts" {
		return FormatHosts
	}
	return ""
}

func detectComment(s []byte) Format {
	l := bytes.ToLower(s)
	switch {
	case bytes.Contains(l, []byte("ipset")), bytes.Contains(l, []byte("netset")), bytes.Contains(l, []byte("firehol")):
		return FormatFirehol
	case s[0] == ';' && bytes.Contains(l, []byte("spamhaus")):
		return FormatSpamhaus
	case bytes.Contains(l, []byte("dshield.org recommended block list")):
		return FormatDshield
	case s[0] == '#' && bytes.Contains(s, []byte(`","`)):
		return FormatCSV
	}
	return ""
}

// detectEntry classifies the first entry line.
func detectEntry(s []byte) Format {
	if s[0] == '{' {
		if bytes.Contains(s, []byte(`"cidr"`)) {
			return FormatSpamhaus
		}
		return FormatPlain
	}
	if i := bytes.IndexByte(s, ';'); i > 0 && isIPOrPrefix(trimSpace(s[:i])) {
		return FormatSpamhaus
	}
	if bytes.IndexByte(s, '"') >= 0 || bytes.IndexByte(s, ',') >= 0 {
		return FormatCSV
	}
	f0, rest := nextField(s)
	f1, rest := nextField(rest)
	f2, _ := nextField(rest)
	if bytes.EqualFold(f0, []byte("start")) && bytes.EqualFold(f1, []byte("end")) {
		return FormatDshield // block.txt header row
	}
	if len(f1) == 0 {
		return FormatPlain
	}
	if isIPOrPrefix(f0) {
		if isDigits(f1) && len(f2) == 0 {
			return FormatIpsum
		}
		if _, err := parseAddr(f1); err == nil && (len(f2) == 0 || isDigits(f2)) {
			return FormatDshield
		}
	}
	if a, err := netip.ParseAddr(string(f0)); err == nil && f1[0] != '-' {
		if a.IsUnspecified() || a.IsLoopback() {
			return FormatHosts
		}
	}
	return FormatPlain
}

func isIPOrPrefix(s []byte) bool {
	if bytes.IndexByte(s, '/') >= 0 {
		_, err := parsePrefix(s)
		return err == nil
	}
	_, err := parseAddr(s)
	return err == nil
}
