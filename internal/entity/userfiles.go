package entity

// Two optional metadata files that override or complement the MaxMind databases:
//
// as2org (Config.AS2Org): CAIDA's AS-to-organization dataset, YYYYMMDD.as-org2info.txt or
// its .gz (gzip is detected by content). Pipe-separated lines in sections introduced by a
// "# format:" line naming the columns; other "#" lines and blank lines are comments. An AS
// section's format names aut, org_id and aut_name (older files: name); an organization
// section's names org_id, name and country. Current files:
//
//	# format:org_id|changed|name|country|source
//	LVLT-ARIN|20120130|Level 3 Communications, Inc.|US|ARIN
//	# format:aut|changed|aut_name|org_id|opaque_id|source
//	1|20120224|LVLT-1|LVLT-ARIN||ARIN
//
// Sections may come in either order. Each AS listed gets its aut_name, org_id, the org's name
// (replacing MaxMind's organisation) and the org's country; ASes MaxMind does not list are
// added (their relations, which come from the MaxMind networks, stay empty). A later line for
// the same AS or org replaces an earlier one.
//
// regions CSV (Config.RegionsCSV): a header naming the columns id, country_code, name and
// iso_code (any order, no others), then one region per row. id is the region code (a
// MaxMind geoname id to override that region, or any new code without spaces); country_code
// an ISO 3166-1 alpha-2 code (one of the countries CSV when that is configured); name is
// required; iso_code (the ISO 3166-2 subdivision code without or with its "CC-" prefix) is
// optional and makes the region reachable as "CC-ISO". A row replaces the region with the
// same id (keeping its MaxMind relations) or adds one, related to its country.
//
// Errors: both files fail to load on the first bad line, with the file and line number
// (a malformed header too); nothing is skipped, so a typo cannot silently leave an entity
// unannotated.

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrBadFile marks a malformed as2org or regions file.
var ErrBadFile = errors.New("malformed metadata file")

// openMaybeGzip opens path, decompressing it when it starts with the gzip magic bytes.
func openMaybeGzip(path string) (io.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() error { zr.Close(); return f.Close() }, nil
	}
	return br, f.Close, nil
}

// loadAS2Org reads a CAIDA as2org file into r.asns.
func (r *Registry) loadAS2Org(path string) error {
	in, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return fmt.Errorf("open as2org %q: %w", path, err)
	}
	defer closeFn()
	type asLine struct {
		line        int
		n           uint32
		name, orgID string
	}
	type org struct{ name, country string }
	var ases []asLine
	orgs := map[string]org{}
	bad := func(line int, format string, a ...any) error {
		return fmt.Errorf("as2org %q line %d: %s: %w", path, line, fmt.Sprintf(format, a...), ErrBadFile)
	}
	const (
		none = iota
		asSection
		orgSection
	)
	section := none
	var col map[string]int
	var ncol int
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if strings.HasPrefix(text, "#") {
			rest := strings.TrimSpace(strings.TrimPrefix(text, "#"))
			f, ok := strings.CutPrefix(rest, "format:")
			if !ok {
				continue // comment
			}
			col = map[string]int{}
			names := strings.Split(strings.TrimSpace(f), "|")
			for i, h := range names {
				h = strings.TrimSpace(h)
				if _, dup := col[h]; dup || h == "" {
					return bad(line, "format line: empty or repeated column %q", h)
				}
				col[h] = i
			}
			ncol = len(names)
			_, hasAut := col["aut"]
			_, hasOrg := col["org_id"]
			_, hasName := col["name"]
			_, hasAutName := col["aut_name"]
			_, hasCountry := col["country"]
			switch {
			case hasAut && hasOrg && (hasAutName || hasName):
				section = asSection
				if !hasAutName {
					col["aut_name"] = col["name"] // older files
				}
			case !hasAut && hasOrg && hasName && hasCountry:
				section = orgSection
			default:
				return bad(line, "format line %q: want aut|...|aut_name|org_id|... or org_id|...|name|country|...", rest)
			}
			continue
		}
		if section == none {
			return bad(line, "data before any \"# format:\" line")
		}
		fields := strings.Split(text, "|")
		if len(fields) != ncol {
			return bad(line, "%d fields, the format line names %d", len(fields), ncol)
		}
		get := func(c string) string { return strings.TrimSpace(fields[col[c]]) }
		switch section {
		case asSection:
			n, err := strconv.ParseUint(get("aut"), 10, 32)
			if err != nil || n == 0 {
				return bad(line, "aut %q: want an AS number", get("aut"))
			}
			if get("org_id") == "" {
				return bad(line, "AS%d: empty org_id", n)
			}
			ases = append(ases, asLine{line, uint32(n), get("aut_name"), get("org_id")})
		case orgSection:
			id, cc := get("org_id"), strings.ToUpper(get("country"))
			if id == "" {
				return bad(line, "empty org_id")
			}
			if cc != "" && (len(cc) != 2 || !isLetters(cc)) {
				return bad(line, "org %s: country %q: want an ISO 3166-1 alpha-2 code or nothing", id, cc)
			}
			orgs[id] = org{get("name"), cc}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read as2org %q after line %d: %w", path, line, err)
	}
	if section == none {
		return fmt.Errorf("as2org %q: no \"# format:\" line: %w", path, ErrBadFile)
	}
	if r.asns == nil {
		r.asns = map[uint32]AS{}
	}
	for _, a := range ases {
		o, ok := orgs[a.orgID]
		if !ok {
			return bad(a.line, "AS%d: org_id %q is not in the file's organizations", a.n, a.orgID)
		}
		cur := r.asns[a.n]
		cur.Number, cur.Name, cur.OrgID, cur.OrgCountry = a.n, a.name, a.orgID, o.country
		if o.name != "" {
			cur.Org = o.name
		}
		r.asns[a.n] = cur
	}
	return nil
}

// regionsColumns are the regions CSV's columns.
var regionsColumns = []string{"id", "country_code", "name", "iso_code"}

// loadRegionsCSV reads a user regions CSV into r.regions.
func (r *Registry) loadRegionsCSV(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open regions csv %q: %w", path, err)
	}
	defer f.Close()
	bad := func(line int, format string, a ...any) error {
		return fmt.Errorf("regions csv %q line %d: %s: %w", path, line, fmt.Sprintf(format, a...), ErrBadFile)
	}
	cr := csv.NewReader(f)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return bad(1, "header: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; dup {
			return bad(1, "header: column %q twice", h)
		}
		col[h] = i
	}
	for _, c := range regionsColumns {
		if _, ok := col[c]; !ok {
			return bad(1, "header: no column %q (want %s)", c, strings.Join(regionsColumns, ","))
		}
	}
	if len(col) != len(regionsColumns) {
		return bad(1, "header %q: want exactly the columns %s", strings.Join(header, ","), strings.Join(regionsColumns, ","))
	}
	if r.regions == nil {
		r.regions = map[string]Region{}
		r.regionByName = map[string][]string{}
		r.regionByISO = map[string]string{}
	}
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return bad(line, "%v", err)
		}
		get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
		g := Region{ID: get("id"), Country: strings.ToUpper(get("country_code")), Name: get("name"), ISOCode: strings.ToUpper(get("iso_code"))}
		switch {
		case g.ID == "" || strings.ContainsAny(g.ID, " \t"):
			return bad(line, "id %q: want a code without spaces", g.ID)
		case len(g.Country) != 2 || !isLetters(g.Country):
			return bad(line, "region %s: country_code %q: want an ISO 3166-1 alpha-2 code", g.ID, g.Country)
		case len(r.countries) > 0 && !r.hasCountry(g.Country):
			return bad(line, "region %s: country_code %q is not in the countries CSV", g.ID, g.Country)
		case g.Name == "":
			return bad(line, "region %s: empty name", g.ID)
		}
		g.ISOCode = strings.TrimPrefix(g.ISOCode, g.Country+"-")
		if g.ISOCode != "" && (len(g.ISOCode) > 3 || strings.ContainsFunc(g.ISOCode, func(c rune) bool {
			return (c < 'A' || c > 'Z') && (c < '0' || c > '9')
		})) {
			return bad(line, "region %s: iso_code %q: want an ISO 3166-2 subdivision code such as NY or 11", g.ID, get("iso_code"))
		}
		if prev, dup := seen[g.ID]; dup {
			return bad(line, "region %s already on line %d", g.ID, prev)
		}
		seen[g.ID] = line
		r.putRegion(g)
	}
}

func (r *Registry) hasCountry(cc string) bool {
	_, ok := r.countries[cc]
	return ok
}

// putRegion adds g, replacing the region with its id and its name and ISO entries.
func (r *Registry) putRegion(g Region) {
	if old, ok := r.regions[g.ID]; ok {
		k := old.Country + "/" + normName(old.Name)
		ids := r.regionByName[k][:0:0]
		for _, id := range r.regionByName[k] {
			if id != g.ID {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			delete(r.regionByName, k)
		} else {
			r.regionByName[k] = ids
		}
		if iso := old.Country + "-" + strings.ToUpper(old.ISOCode); old.ISOCode != "" && r.regionByISO[iso] == g.ID {
			delete(r.regionByISO, iso)
		}
	}
	r.regions[g.ID] = g
	k := g.Country + "/" + normName(g.Name)
	r.regionByName[k] = append(r.regionByName[k], g.ID)
	if g.ISOCode != "" {
		r.regionByISO[g.Country+"-"+g.ISOCode] = g.ID
	}
}
