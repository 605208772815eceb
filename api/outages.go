package api

// Outage routes, shaped like IODA's APIs:
//
//   - GET /ioda/data/alerts: IODA v1 (watchtower) alerts,
//     {"type":"watchtower.alerts","error":null,"queryParameters":{...},"data":{"alerts":[...]}}.
//   - GET /v2/outages/alerts, /v2/outages/events, /v2/outages/summary and
//     /v2/signals/raw/{entityType}/{entityCode}: IODA v2's envelope
//     {"type","metadata":{"requestTime","responseTime"},"requestParameters",
//     "error":null,"perf":null,"data":...,"copyright"}.
//
// from and until (Unix seconds) are required everywhere; a bad parameter
// is HTTP 400 with the message in the envelope's "error".

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/stream/outage"
)

// Outages answers the outage queries (outage.Service).
type Outages interface {
	Alerts(ctx context.Context, f outage.Filter) ([]outage.Alert, error)
	Events(ctx context.Context, f outage.Filter) ([]detect.Event, error)
	Signals(ctx context.Context, f outage.Filter) ([]outage.Signal, error)
	Watermark(ctx context.Context) (int64, error)
	Bins() map[string]int64
}

// Bounds of the outage queries.
const (
	outageMaxLimit   = 100_000 // alerts/events per answer
	outageDefLimit   = 10_000
	signalMaxPoints  = 100_000 // bins per datasource in one signals answer
	iodaCopyright    = "This data is provided by netwarden, in the shape of IODA's API (https://ioda.inetintel.cc.gatech.edu)."
	iodaMetaAllTypes = "country|region|asn"
)

func init() {
	for k, v := range map[string]string{
		"netwarden_outage_points_total":                          "Telemetry points added to the outage detector.",
		"netwarden_outage_points_late_total":                     "Telemetry points rejected as late (their bin was already evaluated).",
		"netwarden_outage_points_bad_total":                      "Telemetry records that are no valid point (skipped).",
		"netwarden_outage_alerts_total":                          "Outage alerts stored.",
		"netwarden_outage_alerts_published_total":                "Outage alerts produced to netwarden.alerts.outage.",
		"netwarden_outage_publish_errors_total":                  "Failed rounds of producing outage alerts (retried).",
		"netwarden_outage_replay_seconds":                        "Duration of the last outage detector rebuild (replay of netwarden.telemetry).",
		"netwarden_outage_watermark_timestamp_seconds":           "Outage detector watermark (event time, Unix seconds) at the last commit.",
		"netwarden_outage_telemetry_last_timestamp_seconds":      "Produce time (Unix seconds) of the newest telemetry record the outage service consumed.",
		"netwarden_outage_telemetry_lag_records":                 "Records on netwarden.telemetry not consumed by the outage service yet (-1 when unknown).",
		"netwarden_outage_export_failures_total":                 "Failed rounds of the outage SQL export (retried).",
		"netwarden_outage_export_last_success_timestamp_seconds": "Unix time of the last successful outage SQL export round.",
	} {
		help[k] = v
	}
}

func (s *Server) outageRoutes(r gin.IRoutes) {
	get(r, "/ioda/data/alerts", s.iodaAlerts)
	get(r, "/v2/outages/alerts", s.v2Alerts)
	get(r, "/v2/outages/events", s.v2Events)
	get(r, "/v2/outages/summary", s.v2Summary)
	get(r, "/v2/signals/raw/:entityType/:entityCode", s.v2Signals)
}

// outageParams reads and checks query parameters: only the allowed ones,
// each at most once.
type outageParams struct {
	c       *gin.Context
	allowed []string
}

func (p outageParams) check() error {
	q := p.c.Request.URL.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !slices.Contains(p.allowed, k) {
			return badRequest("unknown parameter %q (allowed: %s)", clip(k), strings.Join(p.allowed, ", "))
		}
		if len(q[k]) > 1 {
			return badRequest("parameter %q given %d times", k, len(q[k]))
		}
	}
	return nil
}

// timeRange reads the required from and until (Unix seconds, from < until).
func timeRange(c *gin.Context) (int64, int64, error) {
	var out [2]int64
	for i, name := range []string{"from", "until"} {
		v, ok := c.GetQuery(name)
		if !ok || v == "" {
			return 0, 0, badRequest("%s is required (Unix seconds)", name)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0, 0, badRequest("%s=%q is not Unix seconds", name, clip(v))
		}
		out[i] = n
	}
	if out[0] >= out[1] {
		return 0, 0, badRequest("from=%d must be before until=%d", out[0], out[1])
	}
	return out[0], out[1], nil
}

// outageInt reads an optional non-negative integer parameter.
func outageInt(c *gin.Context, name string, def, maxv int) (int, error) {
	v, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxv {
		return 0, badRequest("%s=%q: want an integer in [0, %d]", name, clip(v), maxv)
	}
	return n, nil
}

func boolParam(c *gin.Context, name string) (bool, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s=%q: want true or false", name, clip(v))
	}
	return b, nil
}

func (s *Server) entities() Entities {
	if s.deps.Entities == nil {
		return &entity.Registry{}
	}
	return s.deps.Entities
}

// entityParams checks an entity type and optional code, returning the
// code as the registry normalises it ("us" → "US").
func (s *Server) entityParams(typ, code string) (string, string, error) {
	switch typ {
	case entity.TypeCountry, entity.TypeRegion, entity.TypeASN:
	case "":
		if code != "" {
			return "", "", badRequest("entityCode needs an entityType (%s)", iodaMetaAllTypes)
		}
		return "", "", nil
	default:
		return "", "", badRequest("entity type %q: want %s", clip(typ), iodaMetaAllTypes)
	}
	if code == "" {
		return typ, "", nil
	}
	e, err := s.entities().Lookup(typ, code)
	if err != nil {
		return "", "", badRequest("%s code %q: %v", typ, clip(code), err)
	}
	return typ, e.Code, nil
}

func (s *Server) datasourceParam(c *gin.Context) (string, error) {
	ds := c.Query("datasource")
	if ds == "" {
		return "", nil
	}
	if _, ok := s.deps.Outages.Bins()[ds]; !ok {
		names := make([]string, 0)
		for n := range s.deps.Outages.Bins() {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", badRequest("datasource %q: want one of %s", clip(ds), strings.Join(names, ", "))
	}
	return ds, nil
}

// --- IODA v1: /ioda/data/alerts ---

// iodaV1 is the watchtower envelope.
type iodaV1 struct {
	Type            string            `json:"type"`
	Error           *string           `json:"error"`
	QueryParameters map[string]string `json:"queryParameters"`
	Data            *iodaV1Data       `json:"data"`
}

type iodaV1Data struct {
	Alerts []iodaV1Alert `json:"alerts"`
}

type iodaV1Alert struct {
	ID           int64     `json:"id"`
	FQID         string    `json:"fqid"`
	Name         string    `json:"name"`
	Datasource   string    `json:"datasource"`
	Time         any       `json:"time"`
	Level        string    `json:"level"`
	Method       string    `json:"method"`
	Condition    string    `json:"condition"`
	Value        float64   `json:"value"`
	HistoryValue float64   `json:"historyValue"`
	MetaType     string    `json:"metaType"`
	MetaCode     string    `json:"metaCode"`
	Meta         *iodaMeta `json:"meta,omitempty"`
	Window       int64     `json:"window"`
}

type iodaMeta struct {
	Name  string         `json:"name"`
	Attrs map[string]any `json:"attrs"`
}

// datasourceFQIDs are IODA's series names of the datasources (alerts'
// "fqid"); an unknown datasource is named by itself.
var datasourceFQIDs = map[string]string{
	detect.BGP:         "bgp.visibility_threshold.min_50%_ff_peer_asns.visible_slash24_cnt",
	detect.PingSlash24: "active.ping-slash24.probers.team-1.caida-sdsc.up_slash24_cnt",
	detect.UCSDNT:      "darknet.ucsd-nt.non-erratic.uniq_src_ip",
}

func datasourceFQID(ds string) string {
	if f, ok := datasourceFQIDs[ds]; ok {
		return f
	}
	return ds
}

// entityFQID is IODA's metadata fqid: geo.netacuity.NA.US for a
// country, geo.netacuity.NA.US.<id> for a region, asn.3307 for an AS.
func entityFQID(e entity.Entity) string {
	switch e.Type {
	case entity.TypeCountry:
		if c := e.Attrs["continent"]; c != "" {
			return "geo.netacuity." + c + "." + e.Code
		}
		return "geo.netacuity.??." + e.Code
	case entity.TypeRegion:
		cc := e.Attrs["country_code"]
		cont := "??"
		if cc != "" {
			// the continent comes from the country's metadata when known
			cont = e.Attrs["continent"]
			if cont == "" {
				cont = "??"
			}
		}
		return "geo.netacuity." + cont + "." + cc + "." + e.Code
	}
	return e.Type + "." + e.Code
}

func (s *Server) lookupEntity(typ, code string) entity.Entity {
	e, err := s.entities().Lookup(typ, code)
	if err != nil {
		return entity.Entity{Type: typ, Code: code, Name: code}
	}
	if e.Type == entity.TypeRegion && e.Attrs["country_code"] != "" && e.Attrs["continent"] == "" {
		if c, err := s.entities().Lookup(entity.TypeCountry, e.Attrs["country_code"]); err == nil && c.Attrs["continent"] != "" {
			attrs := make(map[string]string, len(e.Attrs)+1)
			for k, v := range e.Attrs {
				attrs[k] = v
			}
			attrs["continent"] = c.Attrs["continent"]
			attrs["country_name"] = c.Name
			e.Attrs = attrs
		}
	}
	return e
}

func (s *Server) iodaMeta(typ, code string) *iodaMeta {
	e := s.lookupEntity(typ, code)
	attrs := map[string]any{"fqid": entityFQID(e), "name": e.Name, "ip_count": nil}
	switch typ {
	case entity.TypeASN:
		attrs["org"] = e.Attrs["org"]
	case entity.TypeCountry:
		attrs["country_code"] = e.Code
		attrs["country_name"] = e.Name
	case entity.TypeRegion:
		attrs["country_code"] = e.Attrs["country_code"]
		attrs["country_name"] = e.Attrs["country_name"]
	}
	if !e.Known {
		attrs["known"] = false
	}
	return &iodaMeta{Name: e.Name, Attrs: attrs}
}

// iodaAlerts answers GET /ioda/data/alerts?from=&until=&meta=&annotateMeta=&human=
// (also datasource, level and limit).
func (s *Server) iodaAlerts(c *gin.Context) {
	env := iodaV1{Type: "watchtower.alerts", QueryParameters: map[string]string{}}
	for k, v := range c.Request.URL.Query() {
		env.QueryParameters[k] = v[0]
	}
	fail := func(err error) {
		msg := strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")
		code := statusOf(err)
		if code == http.StatusInternalServerError {
			s.log.Error("request failed", "path", c.Request.URL.Path, "err", err)
			msg = "internal error: " + msg
		}
		env.Error = &msg
		c.AbortWithStatusJSON(code, env)
	}
	if s.deps.Outages == nil {
		fail(fmt.Errorf("%w: outage detection is not running", errUnavailable))
		return
	}
	if err := (outageParams{c, []string{"from", "until", "meta", "annotateMeta", "human", "datasource", "level", "limit"}}).check(); err != nil {
		fail(err)
		return
	}
	from, until, err := timeRange(c)
	if err != nil {
		fail(err)
		return
	}
	f := outage.Filter{From: from, Until: until}
	if m := c.Query("meta"); m != "" {
		typ, code, _ := strings.Cut(m, "/")
		if strings.Contains(m, "/") && code == "" {
			fail(badRequest("meta=%q: want %s, optionally /code (country/US, asn/3307)", clip(m), iodaMetaAllTypes))
			return
		}
		if f.EntityType, f.EntityCode, err = s.entityParams(typ, code); err != nil {
			fail(badRequest("meta=%q: %s", clip(m), strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")))
			return
		}
	}
	if f.Datasource, err = s.datasourceParam(c); err != nil {
		fail(err)
		return
	}
	var level *detect.Level
	if v := c.Query("level"); v != "" {
		var l detect.Level
		if err := l.UnmarshalText([]byte(v)); err != nil {
			fail(badRequest("level=%q: want normal, warning or critical", clip(v)))
			return
		}
		level = &l
	}
	annotate, err := boolParam(c, "annotateMeta")
	if err != nil {
		fail(err)
		return
	}
	human, err := boolParam(c, "human")
	if err != nil {
		fail(err)
		return
	}
	if f.Limit, err = outageInt(c, "limit", outageDefLimit, outageMaxLimit); err != nil {
		fail(err)
		return
	}
	if f.Limit == 0 {
		f.Limit = outageDefLimit
	}
	limit := f.Limit
	if level != nil {
		f.Limit = 0 // the store does not filter by level: limit what passes
	}
	als, err := s.outageAlerts(c.Request.Context(), f)
	if err != nil {
		fail(err)
		return
	}
	if level != nil {
		als = slices.DeleteFunc(als, func(a outage.Alert) bool { return a.Level != *level })
	}
	als = als[:min(len(als), limit)]
	out := make([]iodaV1Alert, 0, len(als))
	metas := map[string]*iodaMeta{}
	for _, a := range als {
		ia := iodaV1Alert{ID: a.ID, FQID: datasourceFQID(a.Datasource), Name: a.Datasource, Datasource: a.Datasource,
			Time: a.Time, Level: a.Level.String(), Method: a.Method, Condition: a.Condition, Value: a.Value,
			HistoryValue: a.HistoryValue, MetaType: a.EntityType, MetaCode: a.EntityCode, Window: a.Window}
		if human {
			ia.Time = time.Unix(a.Time, 0).UTC().Format(time.RFC3339)
		}
		if annotate {
			k := a.EntityType + "/" + a.EntityCode
			if metas[k] == nil {
				metas[k] = s.iodaMeta(a.EntityType, a.EntityCode)
			}
			ia.Meta = metas[k]
		}
		out = append(out, ia)
	}
	env.Data = &iodaV1Data{Alerts: out}
	c.JSON(http.StatusOK, env)
}

// --- IODA v2 ---

type v2Envelope struct {
	Type              string            `json:"type"`
	Metadata          v2Metadata        `json:"metadata"`
	RequestParameters map[string]string `json:"requestParameters"`
	Error             *string           `json:"error"`
	Perf              any               `json:"perf"`
	Data              any               `json:"data"`
	Copyright         string            `json:"copyright"`
}

type v2Metadata struct {
	RequestTime  string `json:"requestTime"`
	ResponseTime string `json:"responseTime"`
}

type v2Entity struct {
	Type  string         `json:"type"`
	Code  string         `json:"code"`
	Name  string         `json:"name"`
	Attrs map[string]any `json:"attrs"`
}

func (s *Server) v2Entity(typ, code string) v2Entity {
	e := s.lookupEntity(typ, code)
	attrs := map[string]any{"fqid": entityFQID(e)}
	for k, v := range e.Attrs {
		attrs[k] = v
	}
	if !e.Known {
		attrs["known"] = false
	}
	return v2Entity{Type: typ, Code: code, Name: e.Name, Attrs: attrs}
}

// v2 runs h inside IODA v2's envelope: h's error goes into "error" with
// its status (statusOf).
func (s *Server) v2(c *gin.Context, typ string, allowed []string, h func(*gin.Context) (any, error)) {
	start := time.Now().UTC()
	env := v2Envelope{Type: typ, RequestParameters: map[string]string{}, Copyright: iodaCopyright}
	for k, v := range c.Request.URL.Query() {
		env.RequestParameters[k] = v[0]
	}
	for _, p := range c.Params {
		env.RequestParameters[p.Key] = p.Value
	}
	var data any
	var err error
	switch {
	case s.deps.Outages == nil:
		err = fmt.Errorf("%w: outage detection is not running", errUnavailable)
	default:
		if err = (outageParams{c, allowed}).check(); err == nil {
			data, err = h(c)
		}
	}
	env.Metadata = v2Metadata{RequestTime: start.Format(time.RFC3339), ResponseTime: time.Now().UTC().Format(time.RFC3339)}
	if err != nil {
		code := statusOf(err)
		msg := strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")
		if code == http.StatusInternalServerError {
			s.log.Error("request failed", "path", c.Request.URL.Path, "err", err)
			msg = "internal error: " + msg
		}
		env.Error = &msg
		c.AbortWithStatusJSON(code, env)
		return
	}
	env.Data = data
	c.JSON(http.StatusOK, env)
}

// v2Query is a v2 request's filter, page and IODA's relatedTo and
// orderBy.
type v2Query struct {
	outage.Filter
	limit, page int
	// related holds the "type/code" of the entities relatedTo names; nil
	// without relatedTo.
	related map[string]bool
	// codes holds the codes of a comma-separated entityCode (IODA's list
	// of codes); nil for one code, which the store filters by.
	codes   map[string]bool
	orderBy string // time, score or name; "" for the route's default order
	desc    bool
}

// keep tells whether an entity passes relatedTo.
func (q v2Query) keep(typ, code string) bool {
	return (q.related == nil || q.related[typ+"/"+code]) && (q.codes == nil || q.codes[code])
}

// fetch is the Filter to ask the store with: the first (page+1)*limit
// rows when they are the answer's rows in its order, all of them when
// relatedTo or orderBy filter or reorder them first.
func (q v2Query) fetch() outage.Filter {
	f := q.Filter
	f.Limit = q.limit * (q.page + 1)
	if q.related != nil || q.codes != nil || q.orderBy != "" {
		f.Limit = 0
	}
	return f
}

// v2Filter reads from, until, entityType, entityCode, datasource, limit,
// page (0-based, as IODA's), relatedTo (type/code, as IODA's: the
// entities related to that one, e.g. country/US: its regions and ASes)
// and, for the routes that allow it, orderBy (attr[/asc|desc]).
func (s *Server) v2Filter(c *gin.Context) (v2Query, error) {
	var q v2Query
	var err error
	if q.From, q.Until, err = timeRange(c); err != nil {
		return q, err
	}
	typ, codes := c.Query("entityType"), strings.Split(c.Query("entityCode"), ",")
	if len(codes) == 1 {
		if q.EntityType, q.EntityCode, err = s.entityParams(typ, codes[0]); err != nil {
			return q, err
		}
	} else {
		q.codes = make(map[string]bool, len(codes))
		for _, code := range codes {
			if code == "" {
				return q, badRequest("entityCode=%q: an empty code in the list", clip(c.Query("entityCode")))
			}
			if q.EntityType, code, err = s.entityParams(typ, code); err != nil {
				return q, err
			}
			q.codes[code] = true
		}
	}
	if q.Datasource, err = s.datasourceParam(c); err != nil {
		return q, err
	}
	if q.limit, err = outageInt(c, "limit", outageDefLimit, outageMaxLimit); err != nil {
		return q, err
	}
	if q.page, err = outageInt(c, "page", 0, 1<<20); err != nil {
		return q, err
	}
	if q.limit == 0 {
		q.limit = outageDefLimit
	}
	if rel := c.Query("relatedTo"); rel != "" {
		es, _, err := s.entities().Query(entity.Query{Type: q.EntityType, RelatedTo: rel, Limit: 1 << 30})
		if err != nil {
			return q, badRequest("relatedTo=%q: %v", clip(rel), err)
		}
		q.related = make(map[string]bool, len(es))
		for _, e := range es {
			q.related[e.Type+"/"+e.Code] = true
		}
	}
	if ob := c.Query("orderBy"); ob != "" {
		attr, dir, _ := strings.Cut(ob, "/")
		if !slices.Contains([]string{"time", "score", "name"}, attr) || !slices.Contains([]string{"", "asc", "desc"}, dir) {
			return q, badRequest("orderBy=%q: want time, score or name, optionally /asc or /desc", clip(ob))
		}
		q.orderBy, q.desc = attr, dir == "desc"
	}
	return q, nil
}

// iodaFlag reads a boolean parameter as IODA does: present without a
// value ("&overall") is true.
func iodaFlag(c *gin.Context, name string) (set, on bool, err error) {
	v, ok := c.GetQuery(name)
	if !ok {
		return false, false, nil
	}
	if v == "" {
		return true, true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return true, false, badRequest("%s=%q: want true or false", name, clip(v))
	}
	return true, b, nil
}

// orderOf sorts xs stably by q.orderBy (nothing to do without one).
func orderOf[T any](xs []T, q v2Query, time, score func(T) float64, name func(T) string) {
	var order func(a, b T) int
	switch q.orderBy {
	case "time":
		order = func(a, b T) int { return cmp.Compare(time(a), time(b)) }
	case "score":
		order = func(a, b T) int { return cmp.Compare(score(a), score(b)) }
	case "name":
		order = func(a, b T) int { return strings.Compare(name(a), name(b)) }
	default:
		return
	}
	if q.desc {
		slices.SortStableFunc(xs, func(a, b T) int { return order(b, a) })
		return
	}
	slices.SortStableFunc(xs, order)
}

var (
	v2FilterParams = []string{"from", "until", "entityType", "entityCode", "datasource", "limit", "page", "relatedTo"}
	// includeMetadata: IODA's UI sends it with its summary requests (IODA
	// ignores it); the entity's metadata is always in the answer.
	v2SummaryParams = append(slices.Clip(v2FilterParams), "orderBy", "includeMetadata")
	v2EventParams   = append(slices.Clip(v2FilterParams), "orderBy", "format", "overall", "includeAlerts")
)

type v2Alert struct {
	ID           int64    `json:"id"`
	Datasource   string   `json:"datasource"`
	Entity       v2Entity `json:"entity"`
	Time         int64    `json:"time"`
	Level        string   `json:"level"`
	Condition    string   `json:"condition"`
	Value        float64  `json:"value"`
	HistoryValue float64  `json:"historyValue"`
	Method       string   `json:"method"`
	Window       int64    `json:"window"`
}

// v2Alerts answers GET /v2/outages/alerts.
func (s *Server) v2Alerts(c *gin.Context) {
	s.v2(c, "outages.alerts", v2FilterParams, func(c *gin.Context) (any, error) {
		q, err := s.v2Filter(c)
		if err != nil {
			return nil, err
		}
		als, err := s.outageAlerts(c.Request.Context(), q.fetch())
		if err != nil {
			return nil, err
		}
		als = slices.DeleteFunc(als, func(a outage.Alert) bool { return !q.keep(a.EntityType, a.EntityCode) })
		als = pageOf(als, q.limit, q.page)
		out := make([]v2Alert, len(als))
		ents := map[string]v2Entity{}
		for i, a := range als {
			k := a.EntityType + "/" + a.EntityCode
			e, ok := ents[k]
			if !ok {
				e = s.v2Entity(a.EntityType, a.EntityCode)
				ents[k] = e
			}
			out[i] = v2Alert{ID: a.ID, Datasource: a.Datasource, Entity: e, Time: a.Time, Level: a.Level.String(),
				Condition: a.Condition, Value: a.Value, HistoryValue: a.HistoryValue, Method: a.Method, Window: a.Window}
		}
		return out, nil
	})
}

// outageAlerts and outageEvents ask the store for at most
// http.max_range_rows rows: a query that filters, reorders or pages past
// that many (relatedTo, orderBy, level, a deep page, a summary over a long
// range) is answered 422 instead of loading them all.
func (s *Server) outageAlerts(ctx context.Context, f outage.Filter) ([]outage.Alert, error) {
	f.Limit = s.capRows(f.Limit)
	als, err := s.deps.Outages.Alerts(ctx, f)
	if err == nil && len(als) > s.cfg.MaxRangeRows {
		err = s.tooManyOutageRows("alerts")
	}
	return als, err
}

func (s *Server) outageEvents(ctx context.Context, f outage.Filter) ([]detect.Event, error) {
	f.Limit = s.capRows(f.Limit)
	evs, err := s.deps.Outages.Events(ctx, f)
	if err == nil && len(evs) > s.cfg.MaxRangeRows {
		err = s.tooManyOutageRows("events")
	}
	return evs, err
}

// capRows bounds a store limit (0: none) to one row past http.max_range_rows.
func (s *Server) capRows(limit int) int {
	if limit <= 0 || limit > s.cfg.MaxRangeRows {
		return s.cfg.MaxRangeRows + 1
	}
	return limit
}

func (s *Server) tooManyOutageRows(what string) error {
	return fmt.Errorf("%w: the query gathers more than %d %s (http.max_range_rows); narrow from/until or filter by entity",
		errTooBroad, s.cfg.MaxRangeRows, what)
}

func pageOf[T any](xs []T, limit, page int) []T {
	lo := min(len(xs), limit*page)
	return xs[lo:min(len(xs), lo+limit)]
}

// v2Event is an event in IODA's "codf" format plus netwarden's fields
// (end, ongoing, level, datasources).
type v2Event struct {
	Location       string   `json:"location"`
	LocationName   string   `json:"location_name"`
	Start          int64    `json:"start"`
	Duration       int64    `json:"duration"`
	Uncertainty    *int64   `json:"uncertainty"`
	Status         int      `json:"status"`
	Fraction       *float64 `json:"fraction"`
	Score          float64  `json:"score"`
	OverlapsWindow bool     `json:"overlaps_window"`
	Method         string   `json:"method"`
	Datasource     string   `json:"datasource"`
	End            *int64   `json:"end"`
	Ongoing        bool     `json:"ongoing"`
	Level          string   `json:"level"`
	Datasources    []string `json:"datasources"`
}

// v2Events answers GET /v2/outages/events: events overlapping
// [from, until), oldest first unless orderBy says otherwise, in IODA's
// codf format (v2Event) or, with format=ioda, its ioda format
// (v2EventIODA). IODA's overall and includeAlerts=false are what it
// answers (events are merged across datasources); overall=false and
// includeAlerts=true are refused with the reason.
func (s *Server) v2Events(c *gin.Context) {
	s.v2(c, "outages.events", v2EventParams, func(c *gin.Context) (any, error) {
		q, err := s.v2Filter(c)
		if err != nil {
			return nil, err
		}
		format := c.DefaultQuery("format", "codf")
		if format != "codf" && format != "ioda" {
			return nil, badRequest("format=%q: want codf or ioda", clip(format))
		}
		if set, on, err := iodaFlag(c, "overall"); err != nil {
			return nil, err
		} else if set && !on {
			return nil, badRequest("overall=false: events are merged across datasources (one datasource: datasource=)")
		}
		if _, on, err := iodaFlag(c, "includeAlerts"); err != nil {
			return nil, err
		} else if on {
			return nil, badRequest("includeAlerts=true is not served: ask /v2/outages/alerts for the entity and range")
		}
		f := q.Filter
		evs, err := s.outageEvents(c.Request.Context(), q.fetch())
		if err != nil {
			return nil, err
		}
		evs = slices.DeleteFunc(evs, func(e detect.Event) bool { return !q.keep(e.EntityType, e.EntityCode) })
		if q.orderBy == "" {
			evs = pageOf(evs, q.limit, q.page)
		}
		out := make([]v2Event, len(evs))
		names := map[string]string{}
		for i, e := range evs {
			k := e.EntityType + "/" + e.EntityCode
			name, ok := names[k]
			if !ok {
				name = s.lookupEntity(e.EntityType, e.EntityCode).Name
				names[k] = name
			}
			ve := v2Event{Location: k, LocationName: name, Start: e.Start, Duration: e.Duration,
				Score: e.Score, Method: detect.Method, Datasource: strings.Join(e.Datasources, ","), Ongoing: e.Ongoing,
				Level: e.Level.String(), Datasources: e.Datasources,
				OverlapsWindow: e.Start < f.From || e.Ongoing || e.End > f.Until}
			if !e.Ongoing {
				end := e.End
				ve.End = &end
			} else {
				ve.Status = 1
			}
			out[i] = ve
		}
		if q.orderBy != "" {
			orderOf(out, q, func(e v2Event) float64 { return float64(e.Start) }, func(e v2Event) float64 { return e.Score },
				func(e v2Event) string { return e.LocationName })
			out = pageOf(out, q.limit, q.page)
		}
		if format == "ioda" {
			ents := map[string]v2Entity{}
			io := make([]v2EventIODA, len(out))
			for i, e := range out {
				ent, ok := ents[e.Location]
				if !ok {
					typ, code, _ := strings.Cut(e.Location, "/")
					ent = s.v2Entity(typ, code)
					ents[e.Location] = ent
				}
				io[i] = v2EventIODA{Entity: ent, From: e.Start, Until: e.Start + e.Duration, Score: e.Score, Datasource: e.Datasource,
					Method: e.Method, Ongoing: e.Ongoing, Level: e.Level, Datasources: e.Datasources}
			}
			return io, nil
		}
		return out, nil
	})
}

// v2EventIODA is an event in IODA's "ioda" format (format=ioda: the
// entity object, from, until, score, datasource, method) plus
// netwarden's fields; until is the end, or while ongoing where the
// detector's event time stands.
type v2EventIODA struct {
	Entity      v2Entity `json:"entity"`
	From        int64    `json:"from"`
	Until       int64    `json:"until"`
	Score       float64  `json:"score"`
	Datasource  string   `json:"datasource"`
	Method      string   `json:"method"`
	Ongoing     bool     `json:"ongoing"`
	Level       string   `json:"level"`
	Datasources []string `json:"datasources"`
}

type v2Summary struct {
	Scores   map[string]float64 `json:"scores"`
	Entity   v2Entity           `json:"entity"`
	EventCnt int                `json:"event_cnt"`
	Ongoing  bool               `json:"ongoing"`
	Level    string             `json:"level"` // worst level of its events in the range
}

// v2Summary answers GET /v2/outages/summary: per entity with events in
// the range, their count and scores (overall: the sum of its events'
// scores; per datasource: the sum over the events it took part in),
// highest overall score first (orderBy: score or name, asc or desc;
// time is score, as in IODA).
func (s *Server) v2Summary(c *gin.Context) {
	s.v2(c, "outages.summary", v2SummaryParams, func(c *gin.Context) (any, error) {
		q, err := s.v2Filter(c)
		if err != nil {
			return nil, err
		}
		if _, _, err := iodaFlag(c, "includeMetadata"); err != nil {
			return nil, err
		}
		f := q.Filter
		f.Limit = 0
		evs, err := s.outageEvents(c.Request.Context(), f)
		if err != nil {
			return nil, err
		}
		evs = slices.DeleteFunc(evs, func(e detect.Event) bool { return !q.keep(e.EntityType, e.EntityCode) })
		type key struct{ typ, code string }
		idx := map[key]int{}
		var out []v2Summary
		var worst []detect.Level
		for _, e := range evs {
			k := key{e.EntityType, e.EntityCode}
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				out = append(out, v2Summary{Scores: map[string]float64{"overall": 0}, Entity: s.v2Entity(k.typ, k.code)})
				worst = append(worst, detect.Normal)
			}
			out[i].EventCnt++
			out[i].Scores["overall"] += e.Score
			for _, ds := range e.Datasources {
				out[i].Scores[ds] += e.Score
			}
			out[i].Ongoing = out[i].Ongoing || e.Ongoing
			worst[i] = max(worst[i], e.Level)
		}
		for i := range out {
			out[i].Level = worst[i].String()
		}
		slices.SortStableFunc(out, func(a, b v2Summary) int {
			switch {
			case a.Scores["overall"] > b.Scores["overall"]:
				return -1
			case a.Scores["overall"] < b.Scores["overall"]:
				return 1
			}
			return strings.Compare(a.Entity.Type+"/"+a.Entity.Code, b.Entity.Type+"/"+b.Entity.Code)
		})
		if q.orderBy == "time" {
			q.orderBy = "score"
		}
		orderOf(out, q, nil, func(s v2Summary) float64 { return s.Scores["overall"] }, func(s v2Summary) string { return s.Entity.Name })
		if out == nil {
			out = []v2Summary{}
		}
		return pageOf(out, q.limit, q.page), nil
	})
}

type v2Signal struct {
	EntityType string     `json:"entityType"`
	EntityCode string     `json:"entityCode"`
	EntityName string     `json:"entityName"`
	EntityFQID string     `json:"entityFqid"`
	Datasource string     `json:"datasource"`
	Subtype    string     `json:"subtype"`
	From       int64      `json:"from"`
	Until      int64      `json:"until"`
	Step       int64      `json:"step"`
	NativeStep int64      `json:"nativeStep"`
	Values     []*float64 `json:"values"`
	Baseline   []*float64 `json:"baseline"`
	Levels     []*string  `json:"levels"`
}

// iodaSteps are the steps IODA's signals API coarsens a series to when
// maxPoints asks for fewer points (SignalsService::ALLOWED_STEPS in
// InetIntel/ioda-api).
var iodaSteps = []int64{60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800,
	604800, 1209600, 2419200, 31536000, 63072000, 315360000}

// signalStep is IODA's step for maxPoints: the native step without
// maxPoints, else the smallest of iodaSteps, not below the native step,
// that puts at most maxPoints steps in the range (the largest when none
// does).
func signalStep(from, until, native int64, maxPoints int) int64 {
	if maxPoints <= 0 {
		return native
	}
	step := native
	for _, s := range iodaSteps {
		if s < native {
			continue
		}
		step = s
		if until-from <= int64(maxPoints)*s {
			break
		}
	}
	return step
}

// coarsen re-bins a signal to step (a start aligned down to it): the mean
// of the values and of the baselines present in each new bin, the worst
// level; null where a new bin holds none.
func coarsen(sg outage.Signal, step int64) outage.Signal {
	if step <= sg.Step {
		return sg
	}
	from := sg.From - sg.From%step
	n := int((sg.Until - from + step - 1) / step)
	out := outage.Signal{Datasource: sg.Datasource, From: from, Until: sg.Until, Step: step,
		Values: make([]*float64, n), Baseline: make([]*float64, n), Levels: make([]*detect.Level, n)}
	mean := func(dst []*float64, src []*float64) {
		sum, cnt := make([]float64, n), make([]int, n)
		for i, v := range src {
			if j := int((sg.From + int64(i)*sg.Step - from) / step); v != nil && j < n {
				sum[j] += *v
				cnt[j]++
			}
		}
		for j := range dst {
			if cnt[j] > 0 {
				m := sum[j] / float64(cnt[j])
				dst[j] = &m
			}
		}
	}
	mean(out.Values, sg.Values)
	mean(out.Baseline, sg.Baseline)
	for i, l := range sg.Levels {
		if j := int((sg.From + int64(i)*sg.Step - from) / step); l != nil && j < n && (out.Levels[j] == nil || *l > *out.Levels[j]) {
			out.Levels[j] = l
		}
	}
	return out
}

// v2Signals answers GET /v2/signals/raw/{entityType}/{entityCode}: per
// datasource the bins in [from, until) (null where none was evaluated),
// the detector's baseline per bin (null where the bin was not judged) and
// the series' level after each bin. maxPoints (IODA's, sent by its UI)
// coarsens each series to IODA's step for it (signalStep, coarsen);
// nativeStep stays the datasource's bin.
func (s *Server) v2Signals(c *gin.Context) {
	s.v2(c, "signals", []string{"from", "until", "datasource", "maxPoints"}, func(c *gin.Context) (any, error) {
		from, until, err := timeRange(c)
		if err != nil {
			return nil, err
		}
		maxPoints := 0
		// IODA reads maxPoints as an integer, "null" (its UI sends that when
		// it has none) and 0 as none.
		if v := c.Query("maxPoints"); v != "" && v != "null" {
			if maxPoints, err = strconv.Atoi(v); err != nil || maxPoints < 0 {
				return nil, badRequest("maxPoints=%q: want a non-negative integer", clip(v))
			}
		}
		typ, code, err := s.entityParams(c.Param("entityType"), c.Param("entityCode"))
		if err != nil {
			return nil, err
		}
		if code == "" {
			return nil, badRequest("entity code is empty")
		}
		ds, err := s.datasourceParam(c)
		if err != nil {
			return nil, err
		}
		minStep := int64(1 << 62)
		for n, b := range s.deps.Outages.Bins() {
			if ds == "" || n == ds {
				minStep = min(minStep, b)
			}
		}
		if (until-from)/minStep > signalMaxPoints {
			return nil, badRequest("range of %d s holds more than %d bins of %d s: narrow from/until", until-from, signalMaxPoints, minStep)
		}
		sigs, err := s.deps.Outages.Signals(c.Request.Context(), outage.Filter{From: from, Until: until, EntityType: typ, EntityCode: code, Datasource: ds})
		if err != nil {
			return nil, err
		}
		e := s.lookupEntity(typ, code)
		out := make([]v2Signal, len(sigs))
		for i, sg := range sigs {
			native := sg.Step
			sg = coarsen(sg, signalStep(from, until, native, maxPoints))
			lv := make([]*string, len(sg.Levels))
			for j, l := range sg.Levels {
				if l != nil {
					n := l.String()
					lv[j] = &n
				}
			}
			out[i] = v2Signal{EntityType: typ, EntityCode: code, EntityName: e.Name, EntityFQID: entityFQID(e), Datasource: sg.Datasource,
				From: sg.From, Until: sg.Until, Step: sg.Step, NativeStep: native, Values: sg.Values, Baseline: sg.Baseline, Levels: lv}
		}
		return [][]v2Signal{out}, nil
	})
}
