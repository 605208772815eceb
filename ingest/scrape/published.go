package scrape

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
	"time"
)

// publishedRE matches the header lines in which lists state when they
// were generated: FireHOL "This File Date", IPsum "Last update",
// Spamhaus "Last-Modified", DShield "updated", abuse.ch "Last updated".
var publishedRE = regexp.MustCompile(`^[#;]\s*(?:This File Date|Last update|Last updated|Last-Modified|updated)\s*:\s*(.+?)[\s#]*$`)

// publishedLayouts are matched against the value with runs of spaces
// folded to one (FireHOL pads the day: "Jan  6"), so they are folded too.
var publishedLayouts = foldSpaces(

	"Mon Jan _2 15:04:05 MST 2006",    // FireHOL
	"Mon, 02 Jan 2006 15:04:05 -0700", // IPsum
	time.RFC1123,                      // Spamhaus Last-Modified
	"2006-01-02T15:04:05.999999",      // DShield (UTC)
	"2006-01-02 15:04:05 MST",         // abuse.ch
	time.RFC3339,
)

func foldSpaces(layouts ...string) []string {
	for i, l := range layouts {
		layouts[i] = strings.Join(strings.Fields(l), " ")
	}
	return layouts
}

// publishedAt returns the generation time a list states in its comment
// header (first 64 lines), or false.
func publishedAt(head []byte) (time.Time, bool) {
	sc := bufio.NewScanner(bytes.NewReader(head))
	for i := 0; i < 64 && sc.Scan(); i++ {
		line := sc.Text()
		if line == "" || (line[0] != '#' && line[0] != ';') {
			continue
		}
		m := publishedRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v := strings.Join(strings.Fields(m[1]), " ")
		for _, layout := range publishedLayouts {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}
