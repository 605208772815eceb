package entity

import (
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func td(name string) string { return filepath.Join("testdata", name) }

// loadWith loads the shared MaxMind data plus c's as2org and regions files.
func loadWith(t *testing.T, c Config) *Registry {
	t.Helper()
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared geo data absent at %s: %v", shared, err)
	}
	c.CountriesCSV = filepath.Join(shared, "country-codes.csv")
	c.ASNDB = filepath.Join(shared, "GeoLite2-ASN-Test.mmdb")
	c.CityDB = filepath.Join(shared, "GeoLite2-City-Test.mmdb")
	r, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAS2OrgLookup(t *testing.T) {
	base := loadShared(t)
	r := loadWith(t, Config{AS2Org: td("as2org-good.txt")})
	tests := []struct {
		code, name string
		attrs      map[string]string // "" value: attr absent
	}{
		// MaxMind says "DoD Network Information Center": the as2org org overrides it.
		{"721", "AS721 (Defense Information Systems Agency)", map[string]string{
			"org": "Defense Information Systems Agency", "as_name": "DNIC-ASBLK-00721", "org_id": "DISA-ARIN", "org_country": "US"}},
		// Country codes are upper-cased.
		{"29518", "AS29518 (Bredband2 Group AB)", map[string]string{"org_country": "SE", "as_name": "BREDBAND2"}},
		// MaxMind has no organisation for AS35908: as2org complements it.
		{"35908", "AS35908 (Example Networks Pty Ltd)", map[string]string{"org": "Example Networks Pty Ltd", "org_country": "AU"}},
		// Only in as2org; the later line wins.
		{"64500", "AS64500 (Example Networks Pty Ltd)", map[string]string{"as_name": "EXAMPLE-DOC-AS-2"}},
		// Org without a name: the AS name stands in.
		{"64501", "AS64501 (NONAME-ORG)", map[string]string{"org_id": "NOCC-LACNIC", "org_country": "BR"}},
		// Not in as2org: MaxMind's metadata unchanged, no as2org attrs.
		{"209", "AS209 (NOVARTIS-DMZ-US)", map[string]string{"org": "NOVARTIS-DMZ-US", "as_name": "", "org_id": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			e, err := r.Lookup(TypeASN, tt.code)
			if err != nil || !e.Known || e.Name != tt.name {
				t.Fatalf("Lookup = %+v, %v; want known %q", e, err, tt.name)
			}
			for k, v := range tt.attrs {
				if got, ok := e.Attrs[k]; got != v || ok != (v != "") {
					t.Errorf("attr %s = %q (present %v), want %q", k, got, ok, v)
				}
			}
		})
	}
	if _, n, _ := r.Counts(); n != len(base.ASNs())+2 {
		t.Errorf("ASes = %d, want MaxMind's %d + 2 new", n, len(base.ASNs()))
	}
}

// The older two-column-name format and a gzipped copy load the same.
func TestAS2OrgFormats(t *testing.T) {
	raw, err := os.ReadFile(td("as2org-good.txt"))
	if err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(t.TempDir(), "20240101.as-org2info.txt.gz")
	f, err := os.Create(gz)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	plain, err := Load(Config{AS2Org: td("as2org-good.txt")})
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := Load(Config{AS2Org: gz})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.asns) != 5 || len(zipped.asns) != len(plain.asns) {
		t.Fatalf("plain %d ASes, gzipped %d; want 5", len(plain.asns), len(zipped.asns))
	}
	for n, a := range plain.asns {
		if zipped.asns[n] != a {
			t.Errorf("AS%d: plain %+v, gzipped %+v", n, a, zipped.asns[n])
		}
	}
	old, err := Load(Config{AS2Org: td("as2org-oldformat.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := old.ASN(1); !ok || a.Org != "Level 3 Communications, Inc." || a.Name != "LVLT-1" || a.OrgCountry != "US" {
		t.Errorf("old format AS1 = %+v, %v", a, ok)
	}
}

func TestRegionsCSVLookup(t *testing.T) {
	base := loadShared(t)
	r := loadWith(t, Config{RegionsCSV: td("regions-good.csv")})
	tests := []struct {
		code, id, name, cc, iso string
	}{
		{"5332921", "5332921", "State of California", "US", "CA"}, // overrides MaxMind's "California"
		{"US-CA", "5332921", "State of California", "US", "CA"},
		{"bt-paro", "bt-paro", "Paro", "BT", "11"}, // "BT-11" and "bt" normalised
		{"BT-11", "bt-paro", "Paro", "BT", "11"},
		{"gb-sct", "gb-sct", "Scotland", "GB", "SCT"},
		{"jp-kanto", "jp-kanto", "Kanto (custom)", "JP", ""},
		{"6269131", "6269131", "England", "GB", "ENG"}, // MaxMind's, untouched
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			e, err := r.Lookup(TypeRegion, tt.code)
			if err != nil || !e.Known || e.Code != tt.id || e.Name != tt.name || e.Attrs["country_code"] != tt.cc || e.Attrs["iso_code"] != tt.iso {
				t.Errorf("Lookup = %+v, %v; want %s %q in %s iso %q", e, err, tt.id, tt.name, tt.cc, tt.iso)
			}
		})
	}
	if ids := r.RegionsByName("US", "California"); len(ids) != 0 {
		t.Errorf("old name still indexed: %v", ids)
	}
	if ids := r.RegionsByName("US", "state of california"); len(ids) != 1 || ids[0] != "5332921" {
		t.Errorf("RegionsByName(new name) = %v", ids)
	}
	if _, _, n := r.Counts(); n != len(base.RegionIDs())+3 {
		t.Errorf("regions = %d, want MaxMind's %d + 3 new", n, len(base.RegionIDs()))
	}
}

// Query (search, codes, relatedTo) sees both files; relations from MaxMind still hold.
func TestQueryWithUserFiles(t *testing.T) {
	r := loadWith(t, Config{AS2Org: td("as2org-good.txt"), RegionsCSV: td("regions-good.csv")})
	find := func(es []Entity, typ, code string) (Entity, bool) {
		for _, e := range es {
			if e.Type == typ && e.Code == code {
				return e, true
			}
		}
		return Entity{}, false
	}
	tests := []struct {
		name        string
		q           Query
		typ, code   string
		wantName    string
		wantIPCount string // "" = not checked
	}{
		{"search as2org org", Query{Search: "defense information", Limit: 10}, TypeASN, "721", "AS721 (Defense Information Systems Agency)", ""},
		{"AS only in as2org by code", Query{Type: TypeASN, Codes: []string{"AS64500"}, Limit: 10}, TypeASN, "64500", "AS64500 (Example Networks Pty Ltd)", ""},
		{"user region by search", Query{Type: TypeRegion, Search: "scotland", Limit: 10}, TypeRegion, "gb-sct", "Scotland", ""},
		// MaxMind relations keep working with the overridden names on both ends.
		{"country's ASes", Query{Type: TypeASN, RelatedTo: "country/US", Limit: 100}, TypeASN, "721", "AS721 (Defense Information Systems Agency)", "8192"},
		{"AS's region", Query{Type: TypeRegion, RelatedTo: "asn/721", Limit: 100}, TypeRegion, "5332921", "State of California", "8192"},
		{"region's AS", Query{Type: TypeASN, RelatedTo: "region/US-CA", Limit: 100}, TypeASN, "721", "AS721 (Defense Information Systems Agency)", "8192"},
		{"complemented AS's country", Query{RelatedTo: "asn/35908", Limit: 100}, TypeCountry, "BT", "Bhutan", "256"},
		// A new region is related to its country, with no addresses.
		{"country's user region", Query{Type: TypeRegion, RelatedTo: "country/BT", Limit: 100}, TypeRegion, "bt-paro", "Paro", "0"},
		{"user region's country", Query{RelatedTo: "region/BT-11", Limit: 100}, TypeCountry, "BT", "Bhutan", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, _, err := r.Query(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			e, ok := find(es, tt.typ, tt.code)
			if !ok || e.Name != tt.wantName || !e.Known {
				t.Fatalf("%s/%s: got %+v (found %v) in %d results, want %q", tt.typ, tt.code, e, ok, len(es), tt.wantName)
			}
			if tt.wantIPCount != "" && e.Attrs["ip_count"] != tt.wantIPCount {
				t.Errorf("ip_count = %q, want %q", e.Attrs["ip_count"], tt.wantIPCount)
			}
		})
	}
}

// A bad file fails Load with its name and the bad line; nothing half-loaded is returned.
func TestUserFilesBad(t *testing.T) {
	countries := ""
	if _, err := os.Stat(shared); err == nil {
		countries = filepath.Join(shared, "country-codes.csv")
	}
	tests := []struct {
		name string
		c    Config
		want []string
	}{
		{"as2org format line lacks country", Config{AS2Org: td("as2org-bad-format.txt")}, []string{"as2org-bad-format.txt", "line 1:", "format line"}},
		{"as2org without format line", Config{AS2Org: td("as2org-bad-noformat.txt")}, []string{"as2org-bad-noformat.txt", "line 2:", "before any"}},
		{"as2org aut not a number", Config{AS2Org: td("as2org-bad-aut.txt")}, []string{"as2org-bad-aut.txt", "line 5:", `aut "AS2"`}},
		{"as2org field count", Config{AS2Org: td("as2org-bad-fields.txt")}, []string{"as2org-bad-fields.txt", "line 4:", "5 fields, the format line names 6"}},
		{"as2org org country", Config{AS2Org: td("as2org-bad-country.txt")}, []string{"as2org-bad-country.txt", "line 2:", `country "USA"`}},
		{"as2org unknown org", Config{AS2Org: td("as2org-bad-orgref.txt")}, []string{"as2org-bad-orgref.txt", "line 3:", `AS3: org_id "MIT-2-ARIN"`}},
		{"as2org empty file", Config{AS2Org: td("empty")}, []string{"empty", `no "# format:" line`}},
		{"regions header", Config{RegionsCSV: td("regions-bad-header.csv")}, []string{"regions-bad-header.csv", "line 1:", `no column "country_code"`}},
		{"regions extra column", Config{RegionsCSV: td("regions-bad-extra-column.csv")}, []string{"regions-bad-extra-column.csv", "line 1:", "exactly the columns"}},
		{"regions field count", Config{RegionsCSV: td("regions-bad-fields.csv")}, []string{"regions-bad-fields.csv", "line 3:", "wrong number of fields"}},
		{"regions duplicate id", Config{RegionsCSV: td("regions-bad-dup.csv")}, []string{"regions-bad-dup.csv", "line 4:", "already on line 2"}},
		{"regions empty name", Config{RegionsCSV: td("regions-bad-name.csv")}, []string{"regions-bad-name.csv", "line 2:", "empty name"}},
		{"regions iso code", Config{RegionsCSV: td("regions-bad-iso.csv")}, []string{"regions-bad-iso.csv", "line 2:", `iso_code "Scot land"`}},
		{"regions empty file", Config{RegionsCSV: td("empty")}, []string{"empty", "line 1:", "header"}},
	}
	if countries != "" {
		tests = append(tests, struct {
			name string
			c    Config
			want []string
		}{"regions country not in countries CSV", Config{CountriesCSV: countries, RegionsCSV: td("regions-bad-country.csv")},
			[]string{"regions-bad-country.csv", "line 3:", `"ZZ" is not in the countries CSV`}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Load(tt.c)
			if err == nil || r != nil {
				t.Fatalf("Load = %v, %v; want an error", r, err)
			}
			if !errors.Is(err, ErrBadFile) {
				t.Errorf("%v: not ErrBadFile", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// Without a countries CSV any two-letter code is accepted.
	if _, err := Load(Config{RegionsCSV: td("regions-bad-country.csv")}); err != nil {
		t.Errorf("regions without countries: %v", err)
	}
}

func TestUserFilesConfig(t *testing.T) {
	for _, tt := range []struct {
		c    Config
		want string
	}{
		{Config{AS2Org: "/nonexistent/as2org.txt"}, "entity.as2org"},
		{Config{RegionsCSV: "/nonexistent/regions.csv"}, "entity.regions_csv"},
	} {
		if err := tt.c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %s", tt.c, err, tt.want)
		}
	}
	if err := (Config{AS2Org: td("as2org-good.txt"), RegionsCSV: td("regions-good.csv")}).Validate(); err != nil {
		t.Errorf("Validate good files: %v", err)
	}
}

// The YAML keys decode strictly, as cmd/netwarden decodes its config.
func TestUserFilesYAMLKeys(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader("as2org: a.txt.gz\nregions_csv: r.csv\n"))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil || c.AS2Org != "a.txt.gz" || c.RegionsCSV != "r.csv" {
		t.Errorf("decode = %+v, %v", c, err)
	}
}
