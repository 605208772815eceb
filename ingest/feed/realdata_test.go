package feed

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/resource"
)

// realDir is the shared real blocklist data, relative to this package.
const realDir = "../../../shared/data/blocklists"

// realList describes one list of the real data: its kind, its native
// format, and an independent, deliberately simple reading of its body.
type realList struct {
	path   string // folder (or file) under realDir
	kind   resource.Kind
	format Format
	// read returns the entry lines of body and, for each, the entry in
	// text form, using only strings functions.
	read func(body string) []string
}

// dataLines returns the trimmed non-empty lines not starting with any of
// the comment prefixes.
func dataLines(body string, comments ...string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || slices.ContainsFunc(comments, func(c string) bool { return strings.HasPrefix(l, c) }) {
			continue
		}
		out = append(out, l)
	}
	return out
}

var realLists = []realList{
	{"spamhaus-drop", resource.IP, FormatSpamhaus, func(body string) []string {
		var out []string
		for _, l := range dataLines(body, ";") {
			cidr, _, _ := strings.Cut(l, ";")
			out = append(out, strings.TrimSpace(cidr))
		}
		return out
	}},
	{"spamhaus-drop-cidr", resource.IP, FormatPlain, func(body string) []string { return dataLines(body, "#") }},
	{"spamhaus-edrop-cidr", resource.IP, FormatPlain, func(body string) []string { return dataLines(body, "#") }},
	{"spamhaus-dropv6-cidr", resource.IP, FormatPlain, func(body string) []string { return dataLines(body, "#") }},
	{"threatfox-ips", resource.IP, FormatPlain, func(body string) []string { return dataLines(body, "#") }},
	{"tor-exit", resource.IP, FormatPlain, func(body string) []string { return dataLines(body, "#") }},
	{"dshield-block", resource.IP, FormatDshield, func(body string) []string {
		var out []string
		for _, l := range dataLines(body, "#") {
			f := strings.Split(l, "\t")
			out = append(out, f[0]+"/"+f[2]) // start/bits
		}
		return out
	}},
	{"feodo-csv", resource.IP, FormatCSV, func(body string) []string {
		lines := dataLines(body, "#")
		var out []string
		for _, l := range lines[1:] { // after the header row
			out = append(out, strings.Trim(strings.Split(l, ",")[1], `"`)) // dst_ip
		}
		return out
	}},
	{"firehol-2022-01-24", resource.IP, FormatFirehol, func(body string) []string { return dataLines(body, "#") }},
	{"ipsum-20260822.txt", resource.IP, FormatIpsum, func(body string) []string {
		var out []string
		for _, l := range dataLines(body, "#") {
			ip, _, _ := strings.Cut(l, "\t")
			out = append(out, ip)
		}
		return out
	}},
	{"disposable-email-domains", resource.Email, FormatPlain, func(body string) []string { return dataLines(body, "#") }},
	{"disposable-email-domains", resource.Domain, FormatPlain, func(body string) []string { return dataLines(body, "#") }},
}

// realExceptions are real files that are not lists; Parse must reject them.
var realExceptions = map[string]string{
	"spamhaus-dropv6-cidr/20220603T083029Z.txt": `the body is the fetcher's error message "Could not connect: ", not a list`,
}

func realFiles(t *testing.T, l realList) []string {
	t.Helper()
	root := filepath.Join(realDir, l.path)
	st, err := os.Stat(root)
	if err != nil {
		t.Skipf("real data %s not available (%v); it lives in the shared data checkout next to the repository", root, err)
	}
	if !st.IsDir() {
		return []string{root}
	}
	files, err := filepath.Glob(filepath.Join(root, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files in %s: %v", root, err)
	}
	slices.Sort(files) // file name = version time: oldest first
	return files
}

func relName(path string) string {
	rel, _ := filepath.Rel(realDir, path)
	return filepath.ToSlash(rel)
}

var (
	fireholEntries = regexp.MustCompile(`(?m)^# Entries\s*:\s*(\d+) (?:unique IPs|subnets)`)
	feodoEnd       = regexp.MustCompile(`(?m)^# END (\d+) entries`)
)

// TestRealData parses every real list file with its explicit format and
// with auto (with and without the file name), and checks the result
// against an independent reading of the file.
func TestRealData(t *testing.T) {
	for _, l := range realLists {
		t.Run(l.path+"/"+l.kind.String(), func(t *testing.T) {
			t.Parallel()
			var prev Set
			files, lines, entries := 0, 0, 0
			for _, path := range realFiles(t, l) {
				name := relName(path)
				body := readFile(t, path)
				res, err := Parse(bytes.NewReader(body), l.kind, l.format)
				autoNamed, errNamed := ParseNamed(bytes.NewReader(body), filepath.Base(path), l.kind, FormatAuto)
				auto, errAuto := Parse(bytes.NewReader(body), l.kind, FormatAuto)
				if why, ok := realExceptions[name]; ok {
					for _, e := range []error{err, errNamed, errAuto} {
						if !errors.Is(e, ErrUnparseable) {
							t.Errorf("%s (%s): err = %v, want ErrUnparseable", name, why, e)
						}
					}
					continue
				}
				if err != nil || errNamed != nil || errAuto != nil {
					t.Errorf("%s: Parse: %v / auto named: %v / auto: %v", name, err, errNamed, errAuto)
					continue
				}
				for _, a := range []Result{autoNamed, auto} {
					if a.Format != l.format || !slices.Equal(a.Set, res.Set) || a.Lines != res.Lines {
						t.Errorf("%s: auto detected %s (%d entries), want %s (%d entries)", name, a.Format, len(a.Set), l.format, len(res.Set))
					}
				}
				checkReal(t, name, l, string(body), res)
				// Real changes between consecutive versions.
				adds, rems := Diff(prev, res.Set)
				wantAdds, wantRems := slowDiff(prev, res.Set)
				if !slices.Equal(adds, wantAdds) || !slices.Equal(rems, wantRems) {
					t.Errorf("%s: Diff against previous version differs from the reference", name)
				}
				prev = res.Set
				files++
				lines += res.Lines
				entries += len(res.Set)
			}
			t.Logf("%d files, %d entry lines, %d entries", files, lines, entries)
		})
	}
}

func checkReal(t *testing.T, name string, l realList, body string, res Result) {
	t.Helper()
	entries := l.read(body)
	if res.Lines != len(entries) || res.Skipped != 0 || res.Masked != 0 {
		t.Errorf("%s: lines=%d skipped=%d masked=%d (samples %q), want lines=%d and none skipped or masked",
			name, res.Lines, res.Skipped, res.Masked, res.SkipSamples, len(entries))
	}
	want := map[string]bool{}
	for _, e := range entries {
		r, err := resource.Parse(l.kind, e)
		if err != nil {
			t.Errorf("%s: entry %q: %v", name, e, err)
			continue
		}
		want[r.Key()] = true
		if !res.Set.Contains(r.Key()) {
			t.Errorf("%s: entry %q missing from the Set", name, e)
		}
	}
	if len(res.Set) != len(want) {
		t.Errorf("%s: %d entries in the Set, want %d distinct", name, len(res.Set), len(want))
	}
	// Counts the publishers wrote into their headers.
	if m := fireholEntries.FindStringSubmatch(body); m != nil {
		if n, _ := strconv.Atoi(m[1]); n != len(res.Set) {
			t.Errorf("%s: header says %d entries, parsed %d", name, n, len(res.Set))
		}
	}
	if m := feodoEnd.FindStringSubmatch(body); m != nil {
		if n, _ := strconv.Atoi(m[1]); n != res.Lines {
			t.Errorf("%s: trailer says %d entries, parsed %d lines", name, n, res.Lines)
		}
	}
}

// TestRealDataWrongKind checks that a real list read as the wrong kind is
// rejected rather than read as an empty list.
func TestRealDataWrongKind(t *testing.T) {
	if _, err := os.Stat(realDir); err != nil {
		t.Skipf("real data %s not available (%v)", realDir, err)
	}
	for _, tc := range []struct {
		path string
		kind resource.Kind
	}{
		{"disposable-email-domains/20230525T231302Z.conf", resource.IP},
		{"tor-exit/20260817T020334Z.txt", resource.Domain},
		{"tor-exit/20260817T020334Z.txt", resource.Email},
		{"spamhaus-drop/20250530T071240Z.txt", resource.Domain},
		{"firehol-2022-01-24/firehol_level1.netset", resource.Email},
		{"feodo-csv/20240403T155450Z.csv", resource.Domain},
	} {
		path := filepath.Join(realDir, tc.path)
		body := readFile(t, path)
		if _, err := ParseNamed(bytes.NewReader(body), filepath.Base(path), tc.kind, FormatAuto); !errors.Is(err, ErrUnparseable) {
			t.Errorf("%s as %v: err = %v, want ErrUnparseable", tc.path, tc.kind, err)
		}
	}
}

func BenchmarkParseIpsum(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(realDir, "ipsum-20260822.txt"))
	if err != nil {
		b.Skipf("real data not available: %v", err)
	}
	res, err := Parse(bytes.NewReader(body), resource.IP, FormatIpsum)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(body), resource.IP, FormatIpsum); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
