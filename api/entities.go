package api

// GET /v2/entities/query: IODA v2's entity search. Parameters (all optional):
// entityType (country|region|asn), entityCode (comma-separated, needs entityType),
// search (name, code or organisation substring), relatedTo (type/code: a country's regions
// and ASes, an AS's countries and regions, a region's country and ASes), limit (1..10000,
// default 100), page (0-based). Answer: IODA's v2 envelope
// {"type":"entities","metadata":{"requestTime","responseTime"},"requestParameters":{...},
// "error":null,"perf":null,"data":[{"code","name","type","subnames":[],"attrs":{...}}]}
// plus "more" (another page follows). A bad parameter is a 400 with the message in "error"
// (and "data": null).

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/entity"
)

// Entities is the entity metadata the outage routes annotate with
// (entity.Registry).
type Entities interface {
	Lookup(typ, code string) (entity.Entity, error)
	Query(q entity.Query) ([]entity.Entity, bool, error)
}

// entityLimit bounds one page of /v2/entities/query.
const (
	entityLimitDefault = 100
	entityLimitMax     = 10000
)

// entityJSON is one entity as IODA v2 answers it.
type entityJSON struct {
	Code     string            `json:"code"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Subnames []string          `json:"subnames"`
	Attrs    map[string]string `json:"attrs"`
}

func (s *Server) toEntityJSON(e entity.Entity) entityJSON {
	attrs := make(map[string]string, len(e.Attrs)+1)
	for k, v := range e.Attrs {
		if v != "" {
			attrs[k] = v
		}
	}
	// fqid as the outage routes name it (a region's continent is its country's, so only a
	// region is looked up again); a region also carries its country's name, as IODA's do.
	full := e
	if e.Type == entity.TypeRegion {
		full = s.lookupEntity(e.Type, e.Code)
		if n := full.Attrs["country_name"]; n != "" {
			attrs["country_name"] = n
		}
	}
	attrs["fqid"] = entityFQID(full)
	return entityJSON{Code: e.Code, Name: e.Name, Type: e.Type, Subnames: []string{}, Attrs: attrs}
}

// entitiesEnvelope is IODA v2's answer envelope.
type entitiesEnvelope struct {
	Type     string `json:"type"`
	Metadata struct {
		RequestTime  string `json:"requestTime"`
		ResponseTime string `json:"responseTime"`
	} `json:"metadata"`
	RequestParameters map[string]string `json:"requestParameters"`
	Error             *string           `json:"error"`
	Perf              any               `json:"perf"`
	Data              []entityJSON      `json:"data"`
	More              bool              `json:"more"`
	Copyright         string            `json:"copyright"`
}

func (s *Server) entitiesQuery(c *gin.Context) {
	start := time.Now().UTC()
	env := entitiesEnvelope{Type: "entities", RequestParameters: map[string]string{}, Copyright: iodaCopyright}
	for k, v := range c.Request.URL.Query() {
		env.RequestParameters[k] = strings.Join(v, ",")
	}
	env.Metadata.RequestTime = start.Format(time.RFC3339)
	answer := func(code int) {
		env.Metadata.ResponseTime = time.Now().UTC().Format(time.RFC3339)
		c.JSON(code, env)
	}
	q, err := parseEntityQuery(c)
	var es []entity.Entity
	if err == nil {
		es, env.More, err = s.entities().Query(q)
	}
	if err != nil {
		code := statusOf(err)
		if code >= 500 {
			s.log.Error("entities query", "err", err)
		}
		msg := strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")
		env.Error = &msg
		answer(code)
		return
	}
	env.Data = make([]entityJSON, len(es))
	for i, e := range es {
		env.Data[i] = s.toEntityJSON(e)
	}
	answer(http.StatusOK)
}

var entityQueryParams = map[string]bool{"entityType": true, "entityCode": true, "search": true, "relatedTo": true, "limit": true, "page": true}

func parseEntityQuery(c *gin.Context) (entity.Query, error) {
	vals := c.Request.URL.Query()
	for k, v := range vals {
		if !entityQueryParams[k] {
			return entity.Query{}, badRequest("unknown parameter %q (want entityType, entityCode, search, relatedTo, limit, page)", k)
		}
		if len(v) > 1 {
			return entity.Query{}, badRequest("parameter %q given %d times", k, len(v))
		}
	}
	q := entity.Query{Type: vals.Get("entityType"), Search: vals.Get("search"), RelatedTo: vals.Get("relatedTo"), Limit: entityLimitDefault}
	if codes := vals.Get("entityCode"); codes != "" {
		q.Codes = strings.Split(codes, ",")
	}
	for _, p := range []struct {
		name     string
		dst      *int
		min, max int
	}{{"limit", &q.Limit, 1, entityLimitMax}, {"page", &q.Page, 0, 1 << 30}} {
		v := vals.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < p.min || n > p.max {
			return entity.Query{}, badRequest("%s %q: want an integer from %d to %d", p.name, v, p.min, p.max)
		}
		*p.dst = n
	}
	if q.Type == "" && len(q.Codes) > 0 {
		return entity.Query{}, badRequest("entityCode needs entityType")
	}
	return q, nil
}
