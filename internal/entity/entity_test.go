package entity

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const shared = "../../../shared/data/geo"

func loadShared(t *testing.T) *Registry {
	t.Helper()
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared geo data absent at %s: %v", shared, err)
	}
	r, err := Load(Config{
		CountriesCSV: filepath.Join(shared, "country-codes.csv"),
		ASNDB:        filepath.Join(shared, "GeoLite2-ASN-Test.mmdb"),
		CityDB:       filepath.Join(shared, "GeoLite2-City-Test.mmdb"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Countries in the registry equal the CSV rows with an alpha-2 code, counted by a plain read.
func TestCountriesMatchCSV(t *testing.T) {
	r := loadShared(t)
	f, err := os.Open(filepath.Join(shared, "country-codes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	alpha2 := -1
	for i, h := range recs[0] {
		if h == "ISO3166-1-Alpha-2" {
			alpha2 = i
		}
	}
	want := 0
	for _, rec := range recs[1:] {
		if len(rec[alpha2]) == 2 {
			want++
			if _, ok := r.Country(rec[alpha2]); !ok {
				t.Errorf("country %s missing", rec[alpha2])
			}
		}
	}
	if got, _, _ := r.Counts(); got != want {
		t.Errorf("countries = %d, CSV rows with a code = %d", got, want)
	}
}

func TestLookup(t *testing.T) {
	r := loadShared(t)
	tests := []struct {
		typ, code string
		wantCode  string
		wantName  string
		known     bool
		attr      string
		attrValue string
	}{
		{TypeCountry, "US", "US", "United States of America", true, "continent", "NA"},
		{TypeCountry, "na", "NA", "Namibia", true, "continent", "AF"}, // "NA" is a code, not a missing value
		{TypeCountry, "VE", "VE", "Venezuela (Bolivarian Republic of)", true, "continent_name", "South America"},
		{TypeCountry, "XK", "XK", "XK", false, "note", "no metadata for this country code"},
		{TypeASN, "15169", "15169", "AS15169 (Google Inc.)", true, "org", "Google Inc."},
		{TypeASN, "AS1221", "1221", "AS1221 (Telstra Pty Ltd)", true, "org", "Telstra Pty Ltd"},
		{TypeASN, "3307", "3307", "AS3307", false, "note", "no metadata for this AS number"},
		{TypeRegion, "5332921", "5332921", "California", true, "country_code", "US"},
		{TypeRegion, "GB-ENG", "6269131", "England", true, "iso_code", "ENG"},
		{TypeRegion, "VE-Z", "VE-Z", "VE-Z", false, "country_code", "VE"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.code, func(t *testing.T) {
			e, err := r.Lookup(tt.typ, tt.code)
			if err != nil {
				t.Fatal(err)
			}
			if e.Code != tt.wantCode || e.Name != tt.wantName || e.Known != tt.known || e.Attrs[tt.attr] != tt.attrValue {
				t.Errorf("got %+v; want code %q name %q known %v %s=%q", e, tt.wantCode, tt.wantName, tt.known, tt.attr, tt.attrValue)
			}
		})
	}
}

func TestLookupBadCodes(t *testing.T) {
	r := loadShared(t)
	for _, tt := range []struct{ typ, code string }{
		{TypeCountry, "USA"}, {TypeCountry, "1A"}, {TypeASN, "AS-x"}, {TypeASN, "4294967296"},
		{TypeRegion, ""}, {"city", "Paris"},
	} {
		if e, err := r.Lookup(tt.typ, tt.code); !errors.Is(err, ErrBadCode) {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want ErrBadCode", tt.typ, tt.code, e, err)
		}
	}
}

// Every country name in the real outage catalogue resolves, except the one that is not a country.
func TestCountryByName(t *testing.T) {
	r := loadShared(t)
	for name, want := range map[string]string{
		"Russian Federation": "RU", "Iran": "IR", "Ivory Coast (Cote d'Ivoire)": "CI",
		"United States of America (USA)": "US", "Democratic Republic of (DRC)": "CD",
		"Bosnia & Herzegovina": "BA", "Myanmar/Burma": "MM", "Kyrgyz Republic (Kyrgyzstan)": "KG",
		"Great Britain": "GB", "Turks And Caicos Islands": "TC", "Timor Leste": "TL", "Timor-Leste": "TL",
		"Venezuela": "VE", "Namibia": "NA", "Saint Martin": "MF", "Congo": "CG",
	} {
		if got, ok := r.CountryByName(name); !ok || got != want {
			t.Errorf("CountryByName(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if got, ok := r.CountryByName("European Union"); ok {
		t.Errorf("European Union resolved to %q", got)
	}
	if ids := r.RegionsByName("us", "california"); len(ids) != 1 || ids[0] != "5332921" {
		t.Errorf("RegionsByName(us, california) = %v", ids)
	}
}

func TestZeroRegistryAnnotatesEverything(t *testing.T) {
	var r Registry
	e, err := r.Lookup(TypeASN, "3307")
	if err != nil || e.Known || e.Name != "AS3307" {
		t.Errorf("zero registry: %+v, %v", e, err)
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("empty config: %v", err)
	}
	bad := Config{ASNDB: "/nonexistent/asn.mmdb"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "entity.asn_db") {
		t.Errorf("Validate missing file: %v", err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "open asn db") {
		t.Errorf("Load missing file: %v", err)
	}
	// A country CSV without the needed columns is an error, not an empty table.
	dir := t.TempDir()
	p := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(p, []byte("name,code\nFrance,FR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Config{CountriesCSV: p}); err == nil || !strings.Contains(err.Error(), "no column") {
		t.Errorf("Load bad CSV: %v", err)
	}
	// A non-mmdb file as ASN database.
	if _, err := Load(Config{ASNDB: p}); err == nil {
		t.Error("Load CSV as mmdb: no error")
	}
}
