package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/resource"
)

func (s *Server) bad(kind resource.Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Live == nil {
			s.fail(c, fmt.Errorf("live state %w", errUnavailable))
			return
		}
		if err := s.checkLoaded(kind); err != nil {
			s.fail(c, err)
			return
		}
		r, err := resource.Parse(kind, pathParam(c))
		if err != nil {
			s.fail(c, err)
			return
		}
		if r.Kind == resource.IP && !r.Prefix.IsSingleIP() {
			s.badRange(c, r)
			return
		}
		lists := s.deps.Live.Lookup(r)
		if len(lists) == 0 {
			c.JSON(http.StatusNotFound, gin.H{"response": []string{}})
			return
		}
		c.JSON(http.StatusOK, gin.H{"response": lists})
	}
}

// BatchItem is one answer of a batch lookup.
type BatchItem struct {
	IP         string   `json:"ip,omitempty"`
	Domain     string   `json:"domain,omitempty"`
	Email      string   `json:"email,omitempty"`
	Blacklists []string `json:"blacklists"`
}

func (s *Server) badBatch(kind resource.Kind, field string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Live == nil {
			s.fail(c, fmt.Errorf("live state %w", errUnavailable))
			return
		}
		if err := s.checkLoaded(kind); err != nil {
			s.fail(c, err)
			return
		}
		var raw []string
		if c.Request.Method != http.MethodPost { // GET, HEAD
			for _, v := range c.QueryArray(field) {
				raw = append(raw, strings.Split(v, ",")...)
			}
		} else {
			var err error
			if raw, err = s.batchBody(c, field+"s"); err != nil {
				s.fail(c, err)
				return
			}
		}
		if len(raw) == 0 {
			s.fail(c, badRequest("no %s given (use ?%s=a,b or POST {%q: [...]})", field, field, field+"s"))
			return
		}
		if len(raw) > s.cfg.MaxBatch {
			s.fail(c, badRequest("%d items exceed the batch limit of %d", len(raw), s.cfg.MaxBatch))
			return
		}
		out := make([]BatchItem, 0, len(raw))
		for _, v := range raw {
			r, err := resource.Parse(kind, v)
			if err != nil {
				s.fail(c, err)
				return
			}
			lists := s.deps.Live.Lookup(r)
			if lists == nil {
				lists = []string{}
			}
			it := BatchItem{Blacklists: lists}
			setName(kind, r.String(), &it.IP, &it.Domain, &it.Email)
			out = append(out, it)
		}
		c.JSON(http.StatusOK, gin.H{"response": out})
	}
}

// batchBody reads a batch POST body {"<name>": ["...", ...]}.
func (s *Server) batchBody(c *gin.Context, name string) ([]string, error) {
	b, err := readBody(c, s.cfg.MaxBatchBytes, "http.max_batch_bytes")
	if err != nil {
		return nil, err
	}
	var body map[string][]string
	shape := fmt.Sprintf(`{%q: [...]}`, name)
	if err := decodeJSONBody(b, &body, shape); err != nil {
		return nil, err
	}
	for k := range body {
		if k != name {
			return nil, badRequest("expected %s: unknown field %q", shape, k)
		}
	}
	return body[name], nil
}

func (s *Server) lists(c *gin.Context) {
	if s.deps.Lists == nil {
		s.fail(c, fmt.Errorf("lists %w", errUnavailable))
		return
	}
	c.JSON(http.StatusOK, gin.H{"lists": s.deps.Lists.Lists()})
}
