package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/netwarden/netwarden/internal/entity"
)

// TestEntityDefaults: each unset source defaults to the shared file when it
// exists, a set one is kept, "none" turns one off.
func TestEntityDefaults(t *testing.T) {
	root := t.TempDir()
	geo := filepath.Join(root, "shared", "data", "geo")
	if err := os.MkdirAll(geo, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"country-codes.csv", "GeoLite2-ASN-Test.mmdb"} { // no City DB
		if err := os.WriteFile(filepath.Join(geo, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cwd := filepath.Join(root, "checkout")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	d := entity.Defaults()
	for _, tc := range []struct {
		name    string
		in, out entity.Config
	}{
		{"unset: the shared files that exist", entity.Config{}, entity.Config{CountriesCSV: d.CountriesCSV, ASNDB: d.ASNDB}},
		{"user files keep the defaults", entity.Config{AS2Org: "/x/as2org.txt"}, entity.Config{CountriesCSV: d.CountriesCSV, ASNDB: d.ASNDB, AS2Org: "/x/as2org.txt"}},
		{"a set path is kept", entity.Config{ASNDB: "/x/asn.mmdb"}, entity.Config{CountriesCSV: d.CountriesCSV, ASNDB: "/x/asn.mmdb"}},
		{"none turns a source off", entity.Config{ASNDB: "none", RegionsCSV: "none"}, entity.Config{CountriesCSV: d.CountriesCSV}},
	} {
		if got := entityDefaults(tc.in); got != tc.out {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.out)
		}
	}
}
