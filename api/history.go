package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

var mHistoryDur = metrics.NewPrometheusHistogram(`netwarden_history_lookup_duration_seconds`)

// pathParam returns the catch-all parameter without its leading slash.
func pathParam(c *gin.Context) string { return strings.TrimPrefix(c.Param("res"), "/") }

func intParam(c *gin.Context, name string, def, lo, hi int64) (int64, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("%s=%q is not an integer", name, v)
	}
	if n < lo || n > hi {
		return 0, badRequest("%s=%d out of range %d..%d", name, n, lo, hi)
	}
	return n, nil
}

// ChangeItem is one entry of an Apility-style history response. The
// resource field is ours: it names the listed entry (a covering CIDR or
// parent domain) when it is not the queried resource itself.
type ChangeItem struct {
	Timestamp       int64  `json:"timestamp"`
	Command         string `json:"command"`
	IP              string `json:"ip,omitempty"`
	Domain          string `json:"domain,omitempty"`
	Email           string `json:"email,omitempty"`
	BlacklistChange string `json:"blacklist_change"`
	Blacklists      string `json:"blacklists"`
	Resource        string `json:"resource,omitempty"`
	// Inside marks, in a CIDR query, the change of a listed resource
	// inside the range: then ip and resource name that resource and
	// blacklists are the lists it is on itself after the change.
	Inside bool `json:"inside,omitempty"`
}

func (s *Server) changes(kind resource.Kind, field string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.History == nil {
			s.fail(c, fmt.Errorf("history %w", errUnavailable))
			return
		}
		r, err := resource.Parse(kind, pathParam(c))
		if err != nil {
			s.fail(c, err)
			return
		}
		until, err := intParam(c, "timestamp", -1, 0, 1<<40)
		if err != nil {
			s.fail(c, err)
			return
		}
		items, err := intParam(c, "items", 10, 5, 200)
		if err != nil {
			s.fail(c, err)
			return
		}
		page, err := intParam(c, "page", 1, 1, 1<<31)
		if err != nil {
			s.fail(c, err)
			return
		}
		all, err := s.history(r)
		if err == nil {
			all, err = s.withInside(r, all)
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		out := make([]ChangeItem, 0, items)
		// newest first, only changes at or before `until`
		n := int64(0)
		skip := (page - 1) * items
		for i := len(all) - 1; i >= 0 && int64(len(out)) < items; i-- {
			it := all[i]
			if until >= 0 && it.Timestamp > until {
				continue
			}
			if n++; n <= skip {
				continue
			}
			if !it.Inside {
				setName(kind, r.String(), &it.IP, &it.Domain, &it.Email)
			}
			out = append(out, it)
		}
		c.JSON(http.StatusOK, gin.H{field: out})
	}
}

// history folds the changes of every key covering r into items, oldest
// first, each with the lists r is on after the change.
func (s *Server) history(r resource.Resource) ([]ChangeItem, error) {
	own := r.Key()
	start := time.Now()
	cs, err := s.deps.History.Changes(s.deps.History.CoveringKeys(r))
	mHistoryDur.UpdateDuration(start)
	if err != nil {
		return nil, err
	}
	type kl struct{ key, list string }
	on := map[kl]bool{}
	perList := map[string]int{}
	items := make([]ChangeItem, 0, len(cs))
	var names []string
	for _, ch := range cs {
		p := kl{ch.Key, ch.List}
		switch {
		case ch.Op == change.Add && !on[p]:
			on[p] = true
			perList[ch.List]++
		case ch.Op == change.Rem && on[p]:
			delete(on, p)
			if perList[ch.List]--; perList[ch.List] == 0 {
				delete(perList, ch.List)
			}
		}
		names = names[:0]
		for l := range perList {
			names = append(names, l)
		}
		slices.Sort(names)
		it := ChangeItem{Timestamp: ch.Time.Unix(), Command: ch.Op.String(), BlacklistChange: ch.List, Blacklists: strings.Join(names, ",")}
		if ch.Key != own {
			if rr, err := resource.FromKey(ch.Key); err == nil {
				it.Resource = rr.String()
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// setName stores name in the field of its kind.
func setName(kind resource.Kind, name string, ip, domain, email *string) {
	switch kind {
	case resource.IP:
		*ip = name
	case resource.Domain:
		*domain = name
	case resource.Email:
		*email = name
	}
}
