package entity

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Config names the metadata sources. An empty path skips that source (its entities are then
// all annotated as unknown).
type Config struct {
	CountriesCSV string `yaml:"countries_csv"` // datasets/country-codes CSV
	ASNDB        string `yaml:"asn_db"`        // MaxMind GeoLite2-ASN (or GeoIP2-ISP) .mmdb
	CityDB       string `yaml:"city_db"`       // MaxMind GeoLite2-City / GeoIP2-City .mmdb
	// AS2Org is a CAIDA as-org2info file (.txt or .gz): AS names and organisations that
	// override or complement the ASN database (userfiles.go).
	AS2Org string `yaml:"as2org"`
	// RegionsCSV lists regions (id,country_code,name,iso_code) that override or complement
	// the City database's subdivisions (userfiles.go).
	RegionsCSV string `yaml:"regions_csv"`
}

// Defaults returns the paths of the shared data, relative to the repository root.
func Defaults() Config {
	return Config{
		CountriesCSV: "../shared/data/geo/country-codes.csv",
		ASNDB:        "../shared/data/geo/GeoLite2-ASN-Test.mmdb",
		CityDB:       "../shared/data/geo/GeoLite2-City-Test.mmdb",
	}
}

// Validate checks that the configured files exist.
func (c Config) Validate() error {
	for _, p := range []struct{ name, path string }{
		{"entity.countries_csv", c.CountriesCSV}, {"entity.asn_db", c.ASNDB}, {"entity.city_db", c.CityDB},
		{"entity.as2org", c.AS2Org}, {"entity.regions_csv", c.RegionsCSV},
	} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

// Load reads every configured source: the countries, the MaxMind databases, then the
// as2org file and the regions CSV over them; relations come from the MaxMind databases only.
func Load(c Config) (*Registry, error) {
	r := &Registry{}
	if c.CountriesCSV != "" {
		f, err := os.Open(c.CountriesCSV)
		if err != nil {
			return nil, fmt.Errorf("open countries %q: %w", c.CountriesCSV, err)
		}
		err = r.loadCountries(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read countries %q: %w", c.CountriesCSV, err)
		}
	}
	if c.ASNDB != "" {
		if err := r.loadASN(c.ASNDB); err != nil {
			return nil, err
		}
	}
	if c.CityDB != "" {
		if err := r.loadRegions(c.CityDB); err != nil {
			return nil, err
		}
	}
	if c.AS2Org != "" {
		if err := r.loadAS2Org(c.AS2Org); err != nil {
			return nil, err
		}
	}
	if c.RegionsCSV != "" {
		if err := r.loadRegionsCSV(c.RegionsCSV); err != nil {
			return nil, err
		}
	}
	if c.ASNDB != "" && c.CityDB != "" {
		if err := r.loadRelations(c.ASNDB, c.CityDB); err != nil {
			return nil, err
		}
	}
	r.buildIndex()
	return r, nil
}

func (r *Registry) loadCountries(in io.Reader) error {
	cr := csv.NewReader(in)
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	need := []string{"ISO3166-1-Alpha-2", "ISO3166-1-Alpha-3", "official_name_en", "CLDR display name", "Continent", "Sub-region Name", "UNTERM English Short"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return fmt.Errorf("header: no column %q", n)
		}
	}
	r.countries = map[string]Country{}
	r.countryByName = map[string]string{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		cc := strings.TrimSpace(rec[col["ISO3166-1-Alpha-2"]])
		if len(cc) != 2 {
			continue // e.g. a row without an alpha-2 code
		}
		c := Country{
			Code: cc, ISO3: strings.TrimSpace(rec[col["ISO3166-1-Alpha-3"]]),
			Name: rec[col["official_name_en"]], Display: rec[col["CLDR display name"]],
			Continent: strings.TrimSpace(rec[col["Continent"]]), Subregion: rec[col["Sub-region Name"]],
		}
		if c.Name == "" {
			c.Name = c.Display
		}
		r.countries[cc] = c
		for _, n := range []string{c.Name, c.Display, rec[col["UNTERM English Short"]]} {
			if k := normName(n); k != "" {
				if _, taken := r.countryByName[k]; !taken {
					r.countryByName[k] = cc
				}
			}
			// "Venezuela (Bolivarian Republic of)" -> also "venezuela".
			if i := strings.Index(n, "("); i > 0 {
				if k := normName(n[:i]); k != "" {
					if _, taken := r.countryByName[k]; !taken {
						r.countryByName[k] = cc
					}
				}
			}
		}
	}
}

func (r *Registry) loadASN(path string) error {
	db, err := maxminddb.Open(path)
	if err != nil {
		return fmt.Errorf("open asn db %q: %w", path, err)
	}
	defer db.Close()
	r.asns = map[uint32]AS{}
	for res := range db.Networks() {
		var rec struct {
			Number uint32 `maxminddb:"autonomous_system_number"`
			Org    string `maxminddb:"autonomous_system_organization"`
		}
		if err := res.Decode(&rec); err != nil {
			return fmt.Errorf("read asn db %q at %s: %w", path, res.Prefix(), err)
		}
		if rec.Number == 0 {
			continue
		}
		r.asns[rec.Number] = AS{Number: rec.Number, Org: rec.Org}
	}
	return nil
}

func (r *Registry) loadRegions(path string) error {
	db, err := maxminddb.Open(path)
	if err != nil {
		return fmt.Errorf("open city db %q: %w", path, err)
	}
	defer db.Close()
	r.regions = map[string]Region{}
	r.regionByName = map[string][]string{}
	r.regionByISO = map[string]string{}
	for res := range db.Networks() {
		var rec struct {
			Country struct {
				ISOCode string `maxminddb:"iso_code"`
			} `maxminddb:"country"`
			Subdivisions []struct {
				GeoNameID uint32            `maxminddb:"geoname_id"`
				ISOCode   string            `maxminddb:"iso_code"`
				Names     map[string]string `maxminddb:"names"`
			} `maxminddb:"subdivisions"`
		}
		if err := res.Decode(&rec); err != nil {
			return fmt.Errorf("read city db %q at %s: %w", path, res.Prefix(), err)
		}
		if len(rec.Subdivisions) == 0 || rec.Subdivisions[0].GeoNameID == 0 || rec.Country.ISOCode == "" {
			continue
		}
		s := rec.Subdivisions[0] // first level, as IODA's regions
		id := strconv.FormatUint(uint64(s.GeoNameID), 10)
		if _, seen := r.regions[id]; seen {
			continue
		}
		g := Region{ID: id, ISOCode: s.ISOCode, Name: s.Names["en"], Country: rec.Country.ISOCode}
		r.regions[id] = g
		k := g.Country + "/" + normName(g.Name)
		r.regionByName[k] = append(r.regionByName[k], id)
		if g.ISOCode != "" {
			r.regionByISO[g.Country+"-"+strings.ToUpper(g.ISOCode)] = id
		}
	}
	return nil
}
