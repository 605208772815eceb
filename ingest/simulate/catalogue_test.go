package simulate

import (
	"encoding/csv"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

const catalogue = "../../../shared/data/outages/ioda-investigated-outages-2018-2020.csv"

func readCatalogue(t *testing.T) ([]Outage, []RowError) {
	t.Helper()
	f, err := os.Open(catalogue)
	if err != nil {
		t.Skipf("shared outage catalogue absent at %s: %v", catalogue, err)
	}
	defer f.Close()
	out, bad, err := ParseCatalogue(f)
	if err != nil {
		t.Fatal(err)
	}
	return out, bad
}

// naiveTime is a second, deliberately different reading of the two date formats, for counting.
func naiveTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("Monday, January 2, 2006, 3:04:05 PM", s); err == nil {
		return t, true
	}
	var mo, d, y, h, mi, sec int
	var ampm string
	if n, _ := fmt.Sscanf(s, "%d/%d/%d %d:%d:%d %s", &mo, &d, &y, &h, &mi, &sec, &ampm); n >= 6 {
		if ampm == "PM" && h < 12 {
			h += 12
		}
		return time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC), true
	}
	return time.Time{}, false
}

// The parser's counts equal an independent count over the raw CSV.
func TestCatalogueCounts(t *testing.T) {
	out, bad := readCatalogue(t)
	f, err := os.Open(catalogue)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	recs = recs[1:]
	var noEnd, endBeforeOtherDay, endBeforeSameDay, country, region, asn int
	for _, r := range recs {
		switch {
		case strings.HasPrefix(r[7], "Country"):
			country++
		case strings.HasPrefix(r[7], "Region ("):
			region++
		case strings.HasPrefix(r[7], "AS ("):
			asn++
		}
		b, okB := naiveTime(r[1])
		e, okE := naiveTime(r[2])
		if !okB {
			t.Fatalf("naive reading cannot parse begin %q", r[1])
		}
		if !okE {
			noEnd++
			continue
		}
		if e.Before(b) {
			if e.YearDay() == b.YearDay() && e.Year() == b.Year() {
				endBeforeSameDay++
			} else {
				endBeforeOtherDay++
			}
		}
	}
	t.Logf("%d rows: %d outages, %d rejected, %d without end, %d end-before-begin repaired", len(recs), len(out), len(bad), noEnd, endBeforeSameDay)
	if len(out)+len(bad) != len(recs) {
		t.Errorf("outages %d + rejected %d != rows %d", len(out), len(bad), len(recs))
	}
	if len(bad) != endBeforeOtherDay {
		t.Errorf("rejected %d, rows with an end on an earlier date %d", len(bad), endBeforeOtherDay)
	}
	for _, b := range bad {
		if !strings.Contains(b.Reason, "before begin") || b.ID == "" || b.Line < 2 {
			t.Errorf("rejected row without a clear reason: %+v", b)
		}
	}
	var gotNoEnd, repaired, gotCountry, gotRegion, gotASN int
	for _, o := range out {
		if o.End.IsZero() {
			gotNoEnd++
		} else if !o.End.After(o.Begin) && !o.End.Equal(o.Begin) {
			t.Errorf("%s: end %s before begin %s", o.ID, o.End, o.Begin)
		}
		for _, r := range o.Repairs {
			if strings.Contains(r, "next day") {
				repaired++
			}
		}
		switch o.Scope {
		case ScopeCountry:
			gotCountry++
		case ScopeRegion:
			gotRegion++
		case ScopeASN:
			gotASN++
		}
	}
	if gotNoEnd != noEnd || repaired != endBeforeSameDay {
		t.Errorf("without end %d (want %d), repaired %d (want %d)", gotNoEnd, noEnd, repaired, endBeforeSameDay)
	}
	// Scope counts of the accepted rows plus the rejected ones equal the raw counts.
	if gotCountry+gotRegion+gotASN != len(out) || country+region+asn != len(recs) {
		t.Errorf("scopes: got %d/%d/%d of %d; raw %d/%d/%d of %d", gotCountry, gotRegion, gotASN, len(out), country, region, asn, len(recs))
	}
}

func TestCatalogueRows(t *testing.T) {
	out, bad := readCatalogue(t)
	byID := map[string]Outage{}
	for _, o := range out {
		byID[o.ID] = o
	}
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		id, begin, end string // end "" = none
		scope          Scope
		region         string
		asn            uint32
		bgp, ap, ibr   Visibility
		repairs        int
	}{
		{"B652B11F", "2020-07-28 11:10:00", "2020-07-28 17:00:00", ScopeRegion, "Zinguldak", 0, Unknown, Unknown, Unknown, 1}, // "17:00:00 PM"
		{"AC160D81", "2020-07-28 11:10:00", "2020-07-28 16:01:00", ScopeRegion, "Tekirdag", 0, Visible, Visible, NotVisible, 1},
		{"239CED22", "2020-06-25 03:40:00", "2020-06-25 04:00:00", ScopeRegion, "Pazardzhik", 0, Visible, Visible, NotVisible, 0},
		{"A4A76D0A", "2020-06-30 21:30:00", "2020-07-01 00:20:00", "", "", 0, 0, 0, 0, 1}, // end written on the begin's date
		{"00F5DDBF", "2020-10-03 13:30:00", "", ScopeASN, "", 2514, 0, 0, 0, 0},
		{"1345", "2020-05-21 07:00:00", "", ScopeCountry, "", 0, 0, 0, 0, 0},
		{"C10EFFB4", "2020-04-02 21:05:00", "2020-04-03 07:35:00", "", "", 0, 0, 0, 0, 1}, // end "Thursday, April 3, 2020": a Friday
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			o, ok := byID[tt.id]
			if !ok {
				t.Fatalf("%s not parsed", tt.id)
			}
			if !o.Begin.Equal(utc(tt.begin)) {
				t.Errorf("begin %s, want %s", o.Begin, tt.begin)
			}
			if tt.end == "" && !o.End.IsZero() || tt.end != "" && !o.End.Equal(utc(tt.end)) {
				t.Errorf("end %s, want %q", o.End, tt.end)
			}
			if len(o.Repairs) != tt.repairs {
				t.Errorf("repairs %q, want %d", o.Repairs, tt.repairs)
			}
			if tt.scope != "" && (o.Scope != tt.scope || o.Region != tt.region || o.ASN != tt.asn) {
				t.Errorf("scope %s %q %d, want %s %q %d", o.Scope, o.Region, o.ASN, tt.scope, tt.region, tt.asn)
			}
			if tt.bgp != 0 && (o.Seen[DatasourceBGP] != tt.bgp || o.Seen[DatasourcePing] != tt.ap || o.Seen[DatasourceTelescope] != tt.ibr) {
				t.Errorf("seen %v", o.Seen)
			}
		})
	}
	rejected := map[string]bool{}
	for _, b := range bad {
		rejected[b.ID] = true
	}
	for _, id := range []string{"4C9F8167", "61494B14", "161"} { // end days before begin
		if !rejected[id] {
			t.Errorf("%s accepted; its end is on an earlier date", id)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in, want string // want "" = error
	}{
		{"Tuesday, July 28, 2020, 11:10:00 AM", "2020-07-28 11:10:00"},
		{"Saturday, March 28, 2020, 12:10:00 AM", "2020-03-28 00:10:00"},
		{"Friday, April 10, 2020, 12:20:00 PM", "2020-04-10 12:20:00"},
		{"7/28/2020  17:00:00 PM", "2020-07-28 17:00:00"},
		{"4/14/2020  22:0:00 PM", "2020-04-14 22:00:00"},
		{"3/2/2020  4:20:00 PM", "2020-03-02 16:20:00"},
		{"3/2/2020 12:05:00 AM", "2020-03-02 00:05:00"},
		{"2/30/2020 10:00:00", ""},
		{"7/28/2020 25:00:00 PM", ""},
		{"13:00 yesterday", ""},
		{"7/28/2020 14:00:00 AM", ""},
	}
	for _, tt := range tests {
		got, _, err := parseTime(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseTime(%q) = %s; want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.Format(time.DateTime) != tt.want {
			t.Errorf("parseTime(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, _, err := parseTime(" N/A "); err != errNoTime {
		t.Errorf("N/A: %v, want errNoTime", err)
	}
}

func TestCatalogueBadInput(t *testing.T) {
	const header = "ID,Begin time,End time,Country,IODA BGP visible by human,IODA AP visible by human,IODA IBR visible by human,Scope (based on granularity at which the outage appears in IODA),Region,AS,Cause,Confirmation Status,Manually verified,Grafana URLs,Notes\n"
	in := header +
		"A,yesterday,,Iran,TRUE,TRUE,TRUE,Country,,,,,YES,,\n" +
		"B,\"Monday, March 2, 2020, 10:20:00 AM\",soon,Iran,TRUE,TRUE,TRUE,Country,,,,,YES,,\n" +
		"C,\"Monday, March 2, 2020, 10:20:00 AM\",,Iran,TRUE,TRUE,TRUE,Province (X),,,,,YES,,\n" +
		"D,\"Monday, March 2, 2020, 10:20:00 AM\",,Iran,TRUE,TRUE,TRUE,AS (x1),,,,,YES,,\n" +
		"E,\"Monday, March 2, 2020, 10:20:00 AM\",3/2/2020 11:00:00 AM,Iran,TRUE,TRUE,TRUE,AS (AS12880),,,,,YES,,\n" +
		"F,x\n"
	out, bad, err := ParseCatalogue(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].ID != "E" || out[0].ASN != 12880 || out[0].Duration() != 40*time.Minute {
		t.Errorf("accepted %+v; want only E (AS12880, 40 min)", out)
	}
	want := map[string]string{"A": "begin", "B": "end", "C": "scope", "D": "AS scope", "": "fields"}
	if len(bad) != len(want) {
		t.Fatalf("rejected %+v", bad)
	}
	for _, b := range bad {
		if !strings.Contains(b.Reason, want[b.ID]) {
			t.Errorf("row %s: reason %q, want it to mention %q", b.ID, b.Reason, want[b.ID])
		}
	}
}
