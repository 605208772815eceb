package api

// GET /openapi.json: an OpenAPI 3.0 document of every route of the product, built from the
// oaOperation table below (oaOps). TestOpenAPIMatchesRoutes checks it against the router's
// real routes both ways and validates it with kin-openapi; GET /docs renders it (docs.html
// with ui/docs.js and ui/docs.css, embedded, no CDN). Gin's catch-all segments (/badip/*res) appear as one path parameter
// ({res}) that may hold slashes (a CIDR). Every GET also answers HEAD, listed as such.

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/query"
)

// routeDocs registers the entity query, the OpenAPI document and its page.
func (s *Server) routeDocs(h *gin.Engine, data *gin.RouterGroup) {
	get(data, "/v2/entities/query", s.entitiesQuery)
	get(h, "/openapi.json", s.openAPIJSON)
	get(h, "/docs", s.docsPage)
}

//go:embed docs.html
var docsHTML []byte

// docsPage serves /docs: the page's script and styles are dashboard assets
// (/ui/assets/docs.js, docs.css), so the dashboard's strict CSP applies.
func (s *Server) docsPage(c *gin.Context) {
	securityHeaders(c)
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/html; charset=utf-8", docsHTML)
}

var openAPIDoc = sync.OnceValues(func() ([]byte, error) { return json.MarshalIndent(OpenAPI(), "", " ") })

func (s *Server) openAPIJSON(c *gin.Context) {
	b, err := openAPIDoc()
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "application/json", b)
}

// oaJS is a JSON (Schema) object.
type oaJS = map[string]any

func oaRef(name string) oaJS { return oaJS{"$ref": "#/components/schemas/" + name} }
func oaArr(items oaJS) oaJS  { return oaJS{"type": "array", "items": items} }
func oaStr(desc string) oaJS {
	if desc == "" {
		return oaJS{"type": "string"}
	}
	return oaJS{"type": "string", "description": desc}
}

var (
	oaInt    = oaJS{"type": "integer"}
	oaNum    = oaJS{"type": "number"}
	oaBool   = oaJS{"type": "boolean"}
	oaAnyObj = oaJS{"type": "object"}
)

// oaObj is an object schema from name, schema pairs; a name ending in "!" is required.
func oaObj(pairs ...any) oaJS {
	props := oaJS{}
	var req []string
	for i := 0; i+1 < len(pairs); i += 2 {
		name := pairs[i].(string)
		if n, ok := strings.CutSuffix(name, "!"); ok {
			name = n
			req = append(req, n)
		}
		props[name] = pairs[i+1]
	}
	o := oaJS{"type": "object", "properties": props}
	if len(req) > 0 {
		o["required"] = req
	}
	return o
}

// oaNullable marks s as also allowing null (OpenAPI 3.0).
func oaNullable(s oaJS) oaJS {
	if _, isRef := s["$ref"]; isRef {
		return oaJS{"allOf": []any{s}, "nullable": true}
	}
	out := oaJS{"nullable": true}
	for k, v := range s {
		out[k] = v
	}
	return out
}

// oaParam is one parameter: in "query" or "path".
type oaParam struct {
	name, in, desc string
	required       bool
	schema         oaJS
}

func oaQ(name, desc string) oaParam {
	return oaParam{name: name, in: "query", desc: desc, schema: oaStr("")}
}
func oaQInt(name, desc string) oaParam {
	return oaParam{name: name, in: "query", desc: desc, schema: oaInt}
}
func oaQReq(name, desc string) oaParam {
	return oaParam{name: name, in: "query", desc: desc, required: true, schema: oaStr("")}
}
func oaPath(name, desc string) oaParam {
	return oaParam{name: name, in: "path", desc: desc, required: true, schema: oaStr("")}
}
func oaQEnum(name, desc string, v ...string) oaParam {
	return oaParam{name: name, in: "query", desc: desc, schema: oaJS{"type": "string", "enum": v}}
}

// oaOp is one operation. Auth: "" none, "optional" (read key optional), "read" (read key
// required), "sql", "admin" (key or loopback), "telemetry", "session" (dashboard cookie).
type oaOp struct {
	method, path string // Gin path
	tag, summary string
	auth         string
	params       []oaParam
	body         oaJS            // request body schema (JSON), nil: none
	bodyTypes    []string        // other accepted content types
	status       int             // success status
	also         []int           // other success statuses with the same body
	resp         oaJS            // success body schema
	respType     string          // success content type when not JSON
	respAlso     map[string]oaJS // other success content types (by Accept or by path) and their schemas
	errors       []int
	errorSchemas map[int]oaJS // error answers not shaped {"error": ...}
}

// oaOps lists every route. GET operations also answer HEAD (added by OpenAPI()).
func oaOps() []oaOp {
	resPath := oaPath("res", "the resource: an IP address or CIDR, a domain, or an e-mail address (may hold a slash)")
	entry := oaPath("entry", "an IP address or CIDR (the slash of a CIDR may be literal or %2F)")
	history := func(kind string) oaOp {
		return oaOp{method: "GET", path: "/metadata/changes/" + kind + "/*res", tag: "history", auth: "optional",
			summary: "History of a " + kind + " (Apility-compatible), newest first",
			params:  []oaParam{resPath, oaQInt("timestamp", "Unix seconds, inclusive upper bound"), oaQInt("items", "5..200, default 10"), oaQInt("page", "1-based")},
			resp:    oaObj("changes_"+kind, oaArr(oaRef("Change"))), errors: []int{400, 401, 422, 503}}
	}
	lookup := func(kind string) oaOp {
		return oaOp{method: "GET", path: "/bad" + kind + "/*res", tag: "lookups", auth: "optional",
			summary: "Lists the " + kind + " is on now (404 with an empty response when clean)",
			params:  []oaParam{resPath, oaQInt("items", "range lookups: 1..1000, default 100"), oaQInt("page", "range lookups")},
			resp:    oaRef("Lookup"), errors: []int{400, 401, 404, 503}}
	}
	batch := func(kind, plural string) []oaOp {
		resp := oaObj("response", oaArr(oaObj(kind, oaStr(""), "blacklists", oaArr(oaStr("")))))
		return []oaOp{
			{method: "GET", path: "/bad" + kind + "_batch", tag: "lookups", auth: "optional", summary: "Batch lookup (comma-separated)",
				params: []oaParam{oaQReq(kind, "comma-separated "+plural)}, resp: resp, errors: []int{400, 401, 413, 503}},
			{method: "POST", path: "/bad" + kind + "_batch", tag: "lookups", auth: "optional", summary: "Batch lookup (JSON body)",
				body: oaObj(plural+"!", oaArr(oaStr(""))), resp: resp, errors: []int{400, 401, 413, 503}},
		}
	}
	entryList := func(base, tag string) []oaOp {
		return []oaOp{
			{method: "POST", path: base, tag: tag, auth: "read", summary: "Import entries (text: one IP or CIDR a line; or JSON)",
				body: oaObj("entries!", oaArr(oaStr(""))), bodyTypes: []string{"text/plain"}, resp: oaRef("ImportResult"), errors: []int{400, 401, 413}},
			{method: "GET", path: base, tag: tag, auth: "read", summary: "Page through entries, in address order",
				params: []oaParam{oaQInt("page", "1-based"), oaQInt("items", "1..10000, default 100")}, resp: oaRef("EntryPage"), errors: []int{400, 401}},
			{method: "DELETE", path: base, tag: tag, auth: "read", summary: "Remove every entry", resp: oaRef("Removed"), errors: []int{401}},
			{method: "GET", path: base + "/*entry", tag: tag, auth: "read", summary: "One entry (404 unless present exactly)",
				params: []oaParam{entry}, resp: oaRef("Entry"), errors: []int{400, 401, 404}},
			{method: "DELETE", path: base + "/*entry", tag: tag, auth: "read", summary: "Remove one entry",
				params: []oaParam{entry}, resp: oaRef("Removed"), errors: []int{400, 401, 404}},
		}
	}
	outageQuery := []oaParam{oaQReq("from", "Unix seconds"), oaQReq("until", "Unix seconds (after from)"),
		oaQEnum("entityType", "", "country", "region", "asn"), oaQ("entityCode", "needs entityType; one code or a comma-separated list"), oaQ("datasource", "bgp, ping-slash24, ucsd-nt (as configured)"),
		oaQInt("limit", "0..100000, default 10000"), oaQInt("page", "0-based"), oaQ("relatedTo", "type/code: the entities related to it (country/US: its regions and ASes)")}
	// Each v2 route takes the common parameters and its own (api/outages.go's v2*Params).
	orderBy := oaQ("orderBy", "time|score|name[/asc|desc]")
	eventQuery := append(slices.Clip(outageQuery), orderBy, oaQ("format", "codf (default) or ioda"),
		oaQ("overall", "true or bare (events are merged across datasources)"), oaQ("includeAlerts", "false"))
	summaryQuery := append(slices.Clip(outageQuery), orderBy, oaQ("includeMetadata", "accepted; metadata is always there"))
	ops := []oaOp{
		history("ip"), history("domain"), history("email"),
		lookup("ip"), lookup("domain"), lookup("email"),
	}
	ops = append(ops, batch("ip", "ips")...)
	ops = append(ops, batch("domain", "domains")...)
	ops = append(ops, batch("email", "emails")...)
	ops = append(ops,
		oaOp{method: "GET", path: "/lists", tag: "lists", auth: "optional", summary: "Every list with its health and counts",
			resp: oaObj("lists", oaArr(oaRef("List"))), errors: []int{401, 503}},
		oaOp{method: "POST", path: "/sql", tag: "sql", auth: "sql", summary: "One read-only SELECT over history (DuckDB)",
			body: oaObj("sql!", oaStr("")), bodyTypes: []string{"text/plain"},
			resp: oaRef("SQLResult"), respAlso: map[string]oaJS{"text/csv": oaStr(""), query.ContentTypeArrow: oaStr("Arrow IPC stream")}, errors: []int{400, 401, 403, 408, 413, 422, 503}},
		oaOp{method: "POST", path: "/admin/check", tag: "admin", auth: "admin", summary: "Consistency check of history against the live state (audit=1: against the topic)",
			params: []oaParam{oaQ("audit", "1 to audit history against the topic")}, resp: oaAnyObj, errors: []int{401, 403, 503}},
		oaOp{method: "GET", path: "/v1/account", tag: "account", auth: "read", summary: "The key's account, plan, usage and key",
			resp: oaRef("Account"), errors: []int{401}},
		oaOp{method: "GET", path: "/v1/alerts/settings", tag: "alerts", auth: "read", summary: "Notification settings",
			resp: oaRef("Settings"), errors: []int{401, 503}},
		oaOp{method: "PUT", path: "/v1/alerts/settings", tag: "alerts", auth: "read", summary: "Change notification settings (absent fields kept)",
			body: oaRef("Settings"), resp: oaRef("Settings"), errors: []int{400, 401, 503}},
		oaOp{method: "POST", path: "/v1/alerts/test-email", tag: "alerts", auth: "read", summary: "Send a test e-mail now",
			resp: oaObj("sent_to", oaArr(oaStr(""))), errors: []int{401, 429, 502, 503}},
		oaOp{method: "GET", path: "/v1/alerts", tag: "alerts", auth: "read", summary: "The account's alerts, newest first",
			params: []oaParam{oaQ("from", "RFC 3339 or Unix seconds"), oaQ("until", "RFC 3339 or Unix seconds"), oaQ("status", "new, reported, acknowledged"),
				oaQ("ip", "address or CIDR, matched by overlap"), oaQ("list", ""), oaQ("kind", "listed, initial, cleared, outage"), oaQEnum("type", "", "blocklist", "outage"), oaQInt("page", ""), oaQInt("items", "")},
			resp: oaRef("AlertPage"), errors: []int{400, 401, 503}},
		oaOp{method: "POST", path: "/v1/alerts/:id/ack", tag: "alerts", auth: "read", summary: "Acknowledge an alert",
			params: []oaParam{oaPath("id", "alert id")}, resp: oaRef("Alert"), errors: []int{400, 401, 404}},
	)
	ops = append(ops, entryList("/v1/alerts/watchlist", "watchlist")...)
	ops = append(ops, entryList("/v1/alerts/mutes", "watchlist")...)
	ops = append(ops,
		oaOp{method: "POST", path: "/v1/alerts/mutes/*entry", tag: "watchlist", auth: "read", summary: "Mute one entry (201; 200 if already muted)",
			params: []oaParam{entry}, status: 201, resp: oaRef("Entry"), errors: []int{400, 401}},
		oaOp{method: "GET", path: "/metrics", tag: "operations", summary: "Prometheus metrics (text format 0.0.4)", respType: "text/plain"},
		oaOp{method: "GET", path: "/healthz", tag: "operations", summary: "Liveness, always 200: status starting, ok or degraded, with details", resp: oaObj("status!", oaStr("starting, ok or degraded"), "problems", oaArr(oaStr("")))},
		oaOp{method: "GET", path: "/readyz", tag: "operations", summary: "Readiness: 503 while the live state is rebuilt", resp: oaObj("status!", oaStr("ready")), errors: []int{503}},
		oaOp{method: "GET", path: "/ui", tag: "dashboard", summary: "Redirect to /ui/", status: 301, resp: oaRef("Error")},
		oaOp{method: "GET", path: "/ui/*path", tag: "dashboard", auth: "session", summary: "Dashboard pages (HTML), assets, and /ui/session (JSON: account, scopes, csrf)",
			params: []oaParam{oaPath("path", "/, /alerts, /subscriptions, /ip/{ip}, /outages, /entity/{type}/{code}, /assets/{file}, /session")}, respType: "text/html",
			respAlso: map[string]oaJS{"application/json": oaRef("Session"), "text/javascript": oaStr(""), "text/css": oaStr("")}, errors: []int{401, 404}},
		oaOp{method: "POST", path: "/ui/login", tag: "dashboard", summary: "Sign in with an API key: sets the session cookie",
			body: oaObj("key!", oaStr("")), resp: oaRef("Session"), errors: []int{400, 401, 403}},
		oaOp{method: "POST", path: "/ui/logout", tag: "dashboard", auth: "session", summary: "End the session", resp: oaObj("signed_out", oaBool), errors: []int{403}},
		oaOp{method: "GET", path: "/openapi.json", tag: "docs", summary: "This document", resp: oaAnyObj},
		oaOp{method: "GET", path: "/docs", tag: "docs", summary: "This document, rendered (HTML)", respType: "text/html"},
		oaOp{method: "GET", path: "/v2/entities/query", tag: "outages", auth: "optional", summary: "Countries, regions and ASes (IODA v2 entity search)",
			params: []oaParam{oaQEnum("entityType", "", "country", "region", "asn"), oaQ("entityCode", "comma-separated; needs entityType"),
				oaQ("search", "substring of name, code or organisation"), oaQ("relatedTo", "type/code, e.g. country/US or asn/3307"),
				oaQInt("limit", "1..10000, default 100"), oaQInt("page", "0-based")},
			resp: oaIODA2(oaArr(oaRef("Entity"))), errors: []int{400, 401}},

		// Contract routes of issue 7's other sections (telemetry, outages, subscriptions).
		oaOp{method: "POST", path: "/v1/telemetry", tag: "outages", auth: "telemetry", summary: "Publish telemetry points (NDJSON or a JSON array); bad points are rejected one by one",
			body: oaArr(oaRef("TelemetryPoint")), bodyTypes: []string{"application/x-ndjson"},
			resp: oaRef("TelemetryAnswer"), errors: []int{401, 403, 413, 503}, errorSchemas: map[int]oaJS{400: {"anyOf": []any{oaRef("TelemetryAnswer"), oaRef("Error")}}}},
		oaOp{method: "GET", path: "/ioda/data/alerts", tag: "outages", auth: "optional", summary: "Outage alerts, IODA v1 (watchtower.alerts)",
			params: []oaParam{oaQReq("from", "Unix seconds"), oaQReq("until", "Unix seconds"), oaQ("meta", "country, country/US, region, region/ID, asn, asn/3307"),
				oaQ("annotateMeta", "true to add meta (entity name and attrs)"), oaQ("human", "true: time as RFC 3339"),
				oaQ("datasource", ""), oaQEnum("level", "", "normal", "warning", "critical"), oaQInt("limit", "0..100000, default 10000")},
			resp: oaRef("IODAv1Alerts"), errors: []int{400, 401, 422, 503}},
		oaOp{method: "GET", path: "/v2/outages/alerts", tag: "outages", auth: "optional", summary: "Outage alerts (IODA v2)",
			params: outageQuery, resp: oaIODA2(oaArr(oaRef("OutageAlert"))), errors: []int{400, 401, 422, 503}},
		oaOp{method: "GET", path: "/v2/outages/events", tag: "outages", auth: "optional", summary: "Outage events: ongoing and ended in the range (IODA v2)",
			params: eventQuery, resp: oaIODA2(oaArr(oaJS{"oneOf": []any{oaRef("OutageEvent"), oaRef("OutageEventIODA")}})), errors: []int{400, 401, 422, 503}},
		oaOp{method: "GET", path: "/v2/outages/summary", tag: "outages", auth: "optional", summary: "Outage score per entity (IODA v2)",
			params: summaryQuery, resp: oaIODA2(oaArr(oaRef("OutageSummary"))), errors: []int{400, 401, 422, 503}},
		oaOp{method: "GET", path: "/v2/signals/raw/:entityType/:entityCode", tag: "outages", auth: "optional", summary: "Raw signals of an entity per datasource, with the detector's baseline",
			params: []oaParam{oaPath("entityType", "country, region or asn"), oaPath("entityCode", ""), oaQReq("from", "Unix seconds"), oaQReq("until", "Unix seconds"),
				oaQ("datasource", "bgp, ping-slash24, ucsd-nt (default all)"), oaQInt("maxPoints", "coarsen to IODA's step for at most this many points (0 or null: native bins)")},
			resp: oaIODA2(oaArr(oaArr(oaRef("Signal")))), errors: []int{400, 401, 503}},
		oaOp{method: "GET", path: "/v1/subscriptions", tag: "subscriptions", auth: "read", summary: "The account's outage subscriptions, their count and the plan's limit",
			resp: oaObj("subscriptions!", oaArr(oaRef("Subscription")), "count", oaInt, "limit", oaInt), errors: []int{401, 503}},
		oaOp{method: "POST", path: "/v1/subscriptions", tag: "subscriptions", auth: "read", summary: "Subscribe to a country, region or AS (201 new, 200 already; codes canonicalised)",
			body:   oaObj("entity_type!", oaJS{"type": "string", "enum": []string{"country", "region", "asn"}}, "entity_code!", oaStr("")),
			status: 201, also: []int{200}, resp: oaRef("Subscription"), errors: []int{400, 401, 413, 503}},
		oaOp{method: "DELETE", path: "/v1/subscriptions/:entityType/:entityCode", tag: "subscriptions", auth: "read", summary: "Unsubscribe (404 when not subscribed)",
			params: []oaParam{oaPath("entityType", "country, region or asn"), oaPath("entityCode", "")},
			resp:   oaObj("removed!", oaObj("entity_type", oaStr(""), "entity_code", oaStr(""), "entity_name", oaStr(""))), errors: []int{400, 401, 404, 503}},
	)
	return ops
}

// oaIODA2 is IODA v2's envelope around data.
func oaIODA2(data oaJS) oaJS {
	return oaObj("type!", oaStr(""), "metadata", oaObj("requestTime", oaStr(""), "responseTime", oaStr("")),
		"requestParameters", oaAnyObj, "error!", oaNullable(oaStr("")), "perf", oaJS{"nullable": true}, "data!", oaNullable(data), "copyright", oaStr(""),
		"more", oaJS{"type": "boolean", "description": "entities only: another page follows"})
}

func oaSchemas() oaJS {
	level := oaJS{"type": "string", "enum": []string{"normal", "warning", "critical"}}
	return oaJS{
		"Error": oaObj("error!", oaStr("")),
		"SQLResult": oaObj("columns!", oaArr(oaObj("name!", oaStr(""), "type!", oaStr("DuckDB type"))), "rows!", oaArr(oaJS{"type": "array", "items": oaJS{}, "description": "one value per column"}),
			"truncated!", oaJS{"type": "boolean", "description": "the result was cut at the row or byte limit"}),
		"Change": oaObj("timestamp!", oaInt, "command!", oaJS{"type": "string", "enum": []string{"add", "rem"}}, "ip", oaStr(""), "domain", oaStr(""), "email", oaStr(""), "blacklist_change!", oaStr(""), "blacklists!", oaStr("comma-separated"), "resource", oaStr("the covering entry"), "inside", oaBool),
		"Lookup": oaObj("response!", oaArr(oaStr("")), "inside", oaArr(oaObj("ip", oaStr(""), "blacklists", oaArr(oaStr("")))), "inside_total", oaInt),
		"List": oaObj("name!", oaStr(""), "kind!", oaStr(""), "source", oaStr(""), "format", oaStr(""), "status!", oaJS{"type": "string", "enum": []string{"pending", "ok", "unhealthy"}},
			"error", oaStr(""), "last_fetch", oaStr(""), "last_change", oaStr(""), "last_success", oaStr(""), "entries", oaInt, "versions", oaInt, "adds", oaInt, "rems", oaInt, "skipped_lines", oaInt),
		"Account":  oaObj("account!", oaAnyObj, "usage", oaAnyObj, "key", oaObj("id", oaStr(""), "scopes", oaArr(oaStr("")))),
		"Session":  oaObj("account!", oaAnyObj, "scopes", oaArr(oaStr("")), "csrf!", oaStr("")),
		"Settings": oaObj("email_enabled", oaBool, "recipients", oaJS{"oneOf": []any{oaArr(oaStr("")), oaStr("")}}, "webhook_url", oaStr(""), "webhook_secret", oaStr("read-only"), "notify_cleared", oaBool),
		"Alert": oaObj("id!", oaInt, "account", oaInt, "kind!", oaStr(""), "status!", oaStr(""), "created", oaStr(""), "detected", oaStr(""), "resource", oaStr(""), "watched", oaStr(""),
			"list", oaStr(""), "lists", oaArr(oaStr("")), "source_partition", oaInt, "source_offset", oaInt,
			"type", oaJS{"type": "string", "enum": []string{"blocklist", "outage"}}, "outage", oaJS{"type": "object", "description": "outage alerts: the outage alert (entity, level, condition, value, historyValue)"}),
		"AlertPage":    oaObj("alerts!", oaArr(oaRef("Alert")), "total", oaInt, "total_capped", oaBool, "page", oaInt, "items", oaInt),
		"Entry":        oaObj("entry!", oaStr(""), "added", oaStr("")),
		"EntryPage":    oaObj("entries!", oaArr(oaRef("Entry")), "page", oaInt, "items", oaInt, "total", oaInt, "watched", oaInt, "muted", oaInt, "limit", oaInt),
		"ImportResult": oaObj("imported!", oaInt, "already", oaInt, "rejected", oaArr(oaObj("number", oaInt, "line", oaStr(""), "reason", oaStr(""))), "rejected_total", oaInt, "watched", oaInt, "limit", oaInt, "entries", oaInt),
		"Removed":      oaObj("removed", oaJS{}, "watched", oaInt, "muted", oaInt, "limit", oaInt),
		"Entity": oaObj("code!", oaStr(""), "name!", oaStr(""), "type!", oaJS{"type": "string", "enum": []string{"country", "region", "asn"}}, "subnames", oaArr(oaStr("")),
			"attrs", oaJS{"type": "object", "additionalProperties": oaStr(""), "description": "fqid; country: continent, continent_name, iso3, subregion; asn: org; region: country_code, country_name, iso_code; ip_count; note for unknown codes"}),
		"TelemetryPoint": oaObj("datasource!", oaStr("bgp, ping-slash24, ucsd-nt"), "entity_type!", oaJS{"type": "string", "enum": []string{"country", "region", "asn"}},
			"entity_code!", oaStr(""), "time!", oaJS{"type": "integer", "description": "Unix seconds (aligned down to the bin start)"}, "value!", oaJS{"type": "number", "minimum": 0}),
		"OutageEntity": oaObj("type!", oaStr(""), "code!", oaStr(""), "name!", oaStr(""), "attrs", oaJS{"type": "object", "description": "fqid, known=false for codes without metadata, and the entity's metadata"}),
		"OutageAlert": oaObj("id!", oaInt, "datasource!", oaStr(""), "entity!", oaRef("OutageEntity"), "time!", oaInt, "level!", level,
			"condition!", oaStr("e.g. < historical * 0.5"), "value!", oaNum, "historyValue!", oaNum, "method", oaStr(""), "window", oaJS{"type": "integer", "description": "seconds"}),
		"OutageEventIODA": oaObj("entity!", oaRef("OutageEntity"), "from!", oaInt, "until!", oaJS{"type": "integer", "description": "the end, or while ongoing the detector's event time"},
			"score!", oaNum, "datasource", oaStr("comma-separated"), "method", oaStr(""), "ongoing!", oaBool, "level", level, "datasources", oaArr(oaStr(""))),
		"OutageEvent": oaObj("location!", oaStr("type/code"), "location_name", oaStr(""), "start!", oaInt, "duration!", oaInt, "uncertainty", oaNullable(oaInt),
			"status", oaJS{"type": "integer", "description": "1 while ongoing"}, "fraction", oaNullable(oaNum), "score!", oaNum, "overlaps_window", oaBool, "method", oaStr(""),
			"datasource", oaStr("comma-separated"), "end", oaNullable(oaInt), "ongoing!", oaBool, "level", level, "datasources", oaArr(oaStr(""))),
		"OutageSummary": oaObj("entity!", oaRef("OutageEntity"), "scores!", oaJS{"type": "object", "additionalProperties": oaNum, "description": "overall and per datasource"},
			"event_cnt!", oaInt, "ongoing", oaBool, "level", level),
		"IODAv1Alerts": oaObj("type!", oaJS{"type": "string", "enum": []string{"watchtower.alerts"}}, "error!", oaNullable(oaStr("")), "queryParameters", oaAnyObj,
			"data!", oaNullable(oaObj("alerts!", oaArr(oaObj("id", oaInt, "fqid", oaStr("the datasource's IODA series name"), "name", oaStr(""), "datasource", oaStr(""),
				"time!", oaJS{"description": "Unix seconds, or RFC 3339 with human=true"}, "level!", level, "method", oaStr(""), "condition", oaStr(""), "value", oaNum, "historyValue", oaNum,
				"metaType!", oaStr(""), "metaCode!", oaStr(""), "meta", oaObj("name", oaStr(""), "attrs", oaAnyObj), "window", oaInt))))),
		"Signal": oaObj("entityType!", oaStr(""), "entityCode!", oaStr(""), "entityName", oaStr(""), "entityFqid", oaStr(""), "datasource!", oaStr(""), "subtype", oaStr(""),
			"from!", oaInt, "until!", oaInt, "step!", oaInt, "nativeStep", oaInt, "values!", oaArr(oaNullable(oaNum)),
			"baseline!", oaJS{"type": "array", "items": oaNullable(oaNum), "description": "the detector's historical value per bin; null where the bin was not judged"},
			"levels", oaArr(oaNullable(level))),
		"Subscription": oaObj("entity_type!", oaStr(""), "entity_code!", oaStr(""), "entity_name", oaStr(""), "known", oaBool, "created", oaStr("")),
		"TelemetryAnswer": oaObj("accepted!", oaInt, "rejected!", oaArr(oaObj("index", oaJS{"type": "integer", "description": "0-based: array element or non-blank line"}, "error", oaStr(""))),
			"rejected_total", oaJS{"type": "integer", "description": "when more were rejected than listed (1000)"}, "error", oaStr("400: no point accepted")),
	}
}

// OpenAPI returns the OpenAPI 3.0 document of every route.
func OpenAPI() oaJS {
	paths := oaJS{}
	for _, o := range oaOps() {
		p := openAPIPath(o.path)
		item, _ := paths[p].(oaJS)
		if item == nil {
			item = oaJS{}
			paths[p] = item
		}
		item[strings.ToLower(o.method)] = oaOperation(o, false)
		if o.method == "GET" {
			item["head"] = oaOperation(o, true)
		}
	}
	secs := oaJS{
		"apiKey":  oaJS{"type": "apiKey", "in": "header", "name": "X-Auth-Token", "description": "or Authorization: Bearer <key>"},
		"bearer":  oaJS{"type": "http", "scheme": "bearer"},
		"session": oaJS{"type": "apiKey", "in": "cookie", "name": sessionCookie, "description": "dashboard session; state changes also need X-CSRF-Token"},
	}
	return oaJS{
		"openapi": "3.0.3",
		"info": oaJS{"title": "netwarden", "version": "1",
			"description": "Blocklist history and lookups, account alerts, outage detection (IODA-compatible). Every answer is JSON; errors are {\"error\": \"...\"} (IODA routes: the envelope's error). Every GET also answers HEAD."},
		"tags":       oaTags(),
		"paths":      paths,
		"components": oaJS{"schemas": oaSchemas(), "securitySchemes": secs},
	}
}

// oaTags are the operation groups, in the order the docs page shows them.
func oaTags() []oaJS {
	var out []oaJS
	for _, t := range [][2]string{
		{"lookups", "Is it listed now? IPs (and ranges), domains, e-mail addresses"},
		{"history", "What happened to it, and when (Apility-compatible)"},
		{"lists", "The blocklists and their health"},
		{"sql", "Ad-hoc SQL over history"},
		{"outages", "Outage detection per country, region and AS (IODA-compatible), telemetry in"},
		{"account", "The key's account"},
		{"alerts", "Blocklist and outage alerts of the account, notification settings"},
		{"watchlist", "Watched and muted addresses"},
		{"subscriptions", "Outage subscriptions of the account"},
		{"dashboard", "The web dashboard and its sign-in"},
		{"docs", "This document"},
		{"operations", "Health, readiness, metrics"},
		{"admin", "Consistency checks"},
	} {
		out = append(out, oaJS{"name": t[0], "description": t[1]})
	}
	return out
}

// openAPIPath turns a Gin path into an OpenAPI one: :id and *res become {id} and {res}.
func openAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func oaOperation(o oaOp, head bool) oaJS {
	id := strings.ToLower(o.method) + strings.NewReplacer("/", "_", ":", "", "*", "", "-", "_", ".", "_").Replace(o.path)
	op := oaJS{"summary": o.summary, "tags": []string{o.tag}, "operationId": id}
	if head {
		op["operationId"] = "head" + strings.TrimPrefix(id, "get")
		op["summary"] = "HEAD: " + o.summary
	}
	var params []any
	for _, p := range o.params {
		pj := oaJS{"name": p.name, "in": p.in, "schema": p.schema}
		if p.desc != "" {
			pj["description"] = p.desc
		}
		if p.required {
			pj["required"] = true
		}
		params = append(params, pj)
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if o.body != nil {
		content := oaJS{"application/json": oaJS{"schema": o.body}}
		for _, t := range o.bodyTypes {
			content[t] = oaJS{"schema": oaStr("")}
		}
		op["requestBody"] = oaJS{"required": true, "content": content}
	}
	switch o.auth {
	case "":
	case "optional":
		op["security"] = []any{oaJS{}, oaJS{"apiKey": []string{}}, oaJS{"bearer": []string{}}}
	case "session":
		op["security"] = []any{oaJS{"session": []string{}}}
	default:
		op["security"] = []any{oaJS{"apiKey": []string{}}, oaJS{"bearer": []string{}}, oaJS{"session": []string{}}}
		op["description"] = "Needs a key with scope " + map[string]string{"read": "read", "sql": "sql", "admin": "admin (or a call from loopback without a key)", "telemetry": "telemetry"}[o.auth] + "."
	}
	status := o.status
	if status == 0 {
		status = 200
	}
	ok := oaJS{"description": http.StatusText(status)}
	if !head {
		switch {
		case o.respType != "":
			ok["content"] = oaJS{o.respType: oaJS{"schema": oaStr("")}}
		case o.resp != nil:
			ok["content"] = oaJS{"application/json": oaJS{"schema": o.resp}}
		}
		if content, _ := ok["content"].(oaJS); content != nil {
			for t, schema := range o.respAlso {
				content[t] = oaJS{"schema": schema}
			}
		}
	}
	resps := oaJS{oaItoa(status): ok}
	for _, st := range o.also {
		resps[oaItoa(st)] = ok
	}
	for st, schema := range o.errorSchemas {
		r := oaJS{"description": http.StatusText(st)}
		if !head {
			r["content"] = oaJS{"application/json": oaJS{"schema": schema}}
		}
		resps[oaItoa(st)] = r
	}
	for _, e := range o.errors {
		if _, dup := resps[oaItoa(e)]; dup {
			continue
		}
		r := oaJS{"description": http.StatusText(e)}
		if !head {
			// IODA routes answer errors in their envelope.
			schema := oaRef("Error")
			if o.resp != nil && (strings.HasPrefix(o.path, "/ioda/") || strings.HasPrefix(o.path, "/v2/")) {
				schema = o.resp
			}
			r["content"] = oaJS{"application/json": oaJS{"schema": schema}}
		}
		resps[oaItoa(e)] = r
	}
	op["responses"] = resps
	return op
}

func oaItoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
