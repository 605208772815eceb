package simulate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Scope is the granularity at which an outage appeared.
type Scope string

// Scopes of the catalogue.
const (
	ScopeCountry Scope = "country"
	ScopeRegion  Scope = "region"
	ScopeASN     Scope = "asn"
)

// Visibility says whether a datasource showed an outage, as judged by an operator.
type Visibility int8

// Visibility values; Unknown when the cell is empty or N/A.
const (
	Unknown Visibility = iota
	Visible
	NotVisible
)

// Outage is one row of the IODA investigated-outages catalogue.
type Outage struct {
	ID    string
	Begin time.Time // UTC
	End   time.Time // UTC; zero when the row has no end time
	// Country as written ("Russian Federation"); resolved to a code by Schedule.
	Country string
	Scope   Scope
	Region  string // region name when Scope is ScopeRegion
	ASN     uint32 // when Scope is ScopeASN
	// Seen by datasource: DatasourceBGP, DatasourcePing, DatasourceTelescope.
	Seen         map[string]Visibility
	Cause        string
	Confirmation string
	// Repairs lists what was changed to make the row consistent (e.g. an end time on the
	// same date before the begin, read as the next day).
	Repairs []string
}

// Duration is End-Begin, or 0 when the end is unknown.
func (o Outage) Duration() time.Duration {
	if o.End.IsZero() {
		return 0
	}
	return o.End.Sub(o.Begin)
}

// RowError is a catalogue row that was not accepted, with the reason.
type RowError struct {
	Line   int // 1-based line of the CSV record (header = 1)
	ID     string
	Reason string
}

func (e RowError) Error() string { return fmt.Sprintf("line %d (%s): %s", e.Line, e.ID, e.Reason) }

var (
	longLayout = "Monday, January 2, 2006, 3:04:05 PM"
	shortDate  = regexp.MustCompile(`^(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{1,2}):(\d{1,2})\s*(AM|PM|am|pm)?$`)
	scopeRe    = regexp.MustCompile(`^(Country|Region|AS)\s*(?:\((.*)\))?\s*$`)
)

// errNoTime marks an empty or N/A time cell.
var errNoTime = errors.New("no time")

// parseTime reads the catalogue's date formats: "Tuesday, July 28, 2020, 11:10:00 AM" and
// "7/28/2020  17:00:00 PM" (an hour > 12 with PM is a 24-hour time; a one-digit minute is
// accepted). All times are UTC. The second result names a repair, if one was needed.
func parseTime(s string) (time.Time, string, error) {
	s = strings.TrimSpace(s)
	switch strings.ToUpper(s) {
	case "", "N/A", "NA":
		return time.Time{}, "", errNoTime
	}
	if t, err := time.Parse(longLayout, s); err == nil {
		// time.Parse reads but does not check the weekday; the date wins over it.
		if wd, _, _ := strings.Cut(s, ","); wd != t.Weekday().String() {
			return t.UTC(), fmt.Sprintf("%q: %s is a %s; the date is kept", s, t.Format(time.DateOnly), t.Weekday()), nil
		}
		return t.UTC(), "", nil
	}
	m := shortDate.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, "", fmt.Errorf("time %q: not in a known format", s)
	}
	n := make([]int, 6)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1]) // digits only, by the pattern
	}
	mon, day, year, h, mi, sec := n[0], n[1], n[2], n[3], n[4], n[5]
	repair := ""
	switch ampm := strings.ToUpper(m[7]); {
	case h > 23 || mi > 59 || sec > 59 || mon < 1 || mon > 12 || day < 1 || day > 31:
		return time.Time{}, "", fmt.Errorf("time %q: field out of range", s)
	case ampm == "PM" && h > 12:
		repair = fmt.Sprintf("%q read as a 24-hour time", s)
	case ampm == "PM" && h < 12:
		h += 12
	case ampm == "AM" && h == 12:
		h = 0
	case ampm == "AM" && h > 12:
		return time.Time{}, "", fmt.Errorf("time %q: hour %d with AM", s, h)
	}
	t := time.Date(year, time.Month(mon), day, h, mi, sec, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, "", fmt.Errorf("time %q: no such date", s)
	}
	return t, repair, nil
}

// visibility reads "TRUE", "True ", "ture", "FALSE", "", "N/A".
func visibility(s string) Visibility {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "ture", "yes", "y":
		return Visible
	case "false", "no", "n":
		return NotVisible
	}
	return Unknown
}

// ParseCatalogue reads the IODA investigated-outages CSV. Rows that cannot be used (no
// parseable begin, an unparseable end, an end before the begin that no repair explains, an
// unknown scope) are returned as RowErrors with their reasons; every other row is an Outage.
// A row without an end time is kept with a zero End. An end on the same calendar date as the
// begin but earlier in the day is read as the next day (the operators wrote the begin's date),
// and the repair is recorded on the outage. The error is for an unreadable file only.
func ParseCatalogue(in io.Reader) ([]Outage, []RowError, error) {
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("read catalogue header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	names := map[string]string{
		"id": "ID", "begin": "Begin time", "end": "End time", "country": "Country",
		"bgp": "IODA BGP visible by human", "ap": "IODA AP visible by human", "ibr": "IODA IBR visible by human",
		"scope": "Scope (based on granularity at which the outage appears in IODA)",
		"cause": "Cause", "confirm": "Confirmation Status",
	}
	idx := map[string]int{}
	for k, n := range names {
		i, ok := col[n]
		if !ok {
			return nil, nil, fmt.Errorf("read catalogue header: no column %q", n)
		}
		idx[k] = i
	}
	var out []Outage
	var bad []RowError
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, bad, nil
		}
		if err != nil {
			return out, bad, fmt.Errorf("read catalogue line %d: %w", line, err)
		}
		if len(rec) < len(header) {
			bad = append(bad, RowError{Line: line, Reason: fmt.Sprintf("%d fields, want %d", len(rec), len(header))})
			continue
		}
		o, reason := parseRow(rec, idx)
		if reason != "" {
			bad = append(bad, RowError{Line: line, ID: o.ID, Reason: reason})
			continue
		}
		out = append(out, o)
	}
}

func parseRow(rec []string, idx map[string]int) (Outage, string) {
	o := Outage{
		ID: strings.TrimSpace(rec[idx["id"]]), Country: strings.TrimSpace(rec[idx["country"]]),
		Cause: strings.TrimSpace(rec[idx["cause"]]), Confirmation: strings.TrimSpace(rec[idx["confirm"]]),
		Seen: map[string]Visibility{
			DatasourceBGP:       visibility(rec[idx["bgp"]]),
			DatasourcePing:      visibility(rec[idx["ap"]]),
			DatasourceTelescope: visibility(rec[idx["ibr"]]),
		},
	}
	begin, repair, err := parseTime(rec[idx["begin"]])
	if errors.Is(err, errNoTime) {
		return o, "no begin time"
	}
	if err != nil {
		return o, "begin: " + err.Error()
	}
	o.Begin = begin
	if repair != "" {
		o.Repairs = append(o.Repairs, "begin "+repair)
	}
	end, repair, err := parseTime(rec[idx["end"]])
	switch {
	case errors.Is(err, errNoTime):
		// kept: the end is unknown
	case err != nil:
		return o, "end: " + err.Error()
	default:
		if repair != "" {
			o.Repairs = append(o.Repairs, "end "+repair)
		}
		if end.Before(begin) {
			by, bm, bd := begin.Date()
			ey, em, ed := end.Date()
			if by != ey || bm != em || bd != ed {
				return o, fmt.Sprintf("end %s before begin %s", end.Format(time.RFC3339), begin.Format(time.RFC3339))
			}
			end = end.Add(24 * time.Hour)
			o.Repairs = append(o.Repairs, "end earlier on the begin's date, read as the next day")
		}
		o.End = end
	}
	m := scopeRe.FindStringSubmatch(strings.TrimSpace(rec[idx["scope"]]))
	if m == nil {
		return o, fmt.Sprintf("scope %q: want Country, Region (name) or AS (number)", rec[idx["scope"]])
	}
	switch m[1] {
	case "Country":
		o.Scope = ScopeCountry
	case "Region":
		o.Scope = ScopeRegion
		o.Region = strings.TrimSpace(m[2])
		if o.Region == "" {
			return o, "region scope without a region name"
		}
	case "AS":
		o.Scope = ScopeASN
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(m[2]), "AS"), 10, 32)
		if err != nil {
			return o, fmt.Sprintf("AS scope %q: not an AS number", m[2])
		}
		o.ASN = uint32(n)
	}
	return o, ""
}
