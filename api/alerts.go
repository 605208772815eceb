package api

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/resource"
)

// AlertStore reads and acknowledges an account's alerts (account.Store).
type AlertStore interface {
	Alerts(ctx context.Context, id account.ID, f account.AlertFilter) ([]account.Alert, int, error)
	Ack(ctx context.Context, id account.ID, aid int64) (account.Alert, error)
}

// AlertPage is the answer of GET /v1/alerts.
type AlertPage struct {
	Alerts []account.Alert `json:"alerts"`
	// Total matches, counted up to account.AlertCountCap; TotalCapped
	// says the count stopped there (there may be more).
	Total       int   `json:"total"`
	TotalCapped bool  `json:"total_capped"`
	Page        int64 `json:"page"`
	Items       int64 `json:"items"`
}

// timeParam parses an RFC 3339 time or Unix seconds; zero when absent.
func timeParam(c *gin.Context, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > 1<<40 {
			return time.Time{}, badRequest("%s=%d out of range", name, n)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("%s=%q is neither RFC 3339 nor Unix seconds", name, clip(v))
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// alertFilter reads GET /v1/alerts's query.
func alertFilter(c *gin.Context) (f account.AlertFilter, page, items int64, err error) {
	if f.From, err = timeParam(c, "from"); err != nil {
		return
	}
	if f.Until, err = timeParam(c, "until"); err != nil {
		return
	}
	if !f.From.IsZero() && !f.Until.IsZero() && f.Until.Before(f.From) {
		err = badRequest("until is before from")
		return
	}
	switch st := account.AlertStatus(c.Query("status")); st {
	case "", account.StatusNew, account.StatusReported, account.StatusAcknowledged:
		f.Status = st
	default:
		err = badRequest("status=%q: want new, reported or acknowledged", clip(string(st)))
		return
	}
	switch k := account.AlertKind(c.Query("kind")); k {
	case "", account.KindListed, account.KindInitial, account.KindCleared, account.KindOutage:
		f.Kind = k
	default:
		err = badRequest("kind=%q: want listed, initial, cleared or outage", clip(string(k)))
		return
	}
	switch t := account.AlertType(c.Query("type")); t {
	case "", account.TypeBlocklist, account.TypeOutage:
		f.Type = t
	default:
		err = badRequest("type=%q: want blocklist or outage", clip(string(t)))
		return
	}
	f.List = c.Query("list")
	if ip := c.Query("ip"); ip != "" {
		r, perr := resource.ParseIP(ip)
		if perr != nil {
			err = perr
			return
		}
		f.IP = r.Prefix
	} else {
		f.IP = netip.Prefix{}
	}
	if items, err = intParam(c, "items", 50, 1, 1000); err != nil {
		return
	}
	if page, err = intParam(c, "page", 1, 1, 1<<31); err != nil {
		return
	}
	f.Page, f.Items = int(page), int(items)
	return
}

// alerts answers GET /v1/alerts: the key's account's alerts, newest
// first, filtered by created time (from, until: RFC 3339 or Unix
// seconds), status, type (blocklist or outage), kind (listed, initial,
// cleared, outage), list (for outage alerts: the datasource) and ip (an
// address or CIDR: blocklist alerts whose resource overlaps it), paged within the first account.AlertCountCap
// matches (a deeper page is 400: narrow by time).
func (s *Server) alerts(c *gin.Context) {
	p, ok := s.keyed(c, "alerts", s.deps.Alerts != nil)
	if !ok {
		return
	}
	f, page, items, err := alertFilter(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	als, total, err := s.deps.Alerts.Alerts(c.Request.Context(), p.Account.ID, f)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, AlertPage{Alerts: als, Total: total, TotalCapped: total >= account.AlertCountCap, Page: page, Items: items})
}

// ackAlert answers POST /v1/alerts/{id}/ack: the acknowledged alert;
// another account's alert is 404.
func (s *Server) ackAlert(c *gin.Context) {
	p, ok := s.keyed(c, "alerts", s.deps.Alerts != nil)
	if !ok {
		return
	}
	raw := c.Param("id")
	aid, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || aid < 1 || strings.HasPrefix(raw, "+") {
		s.fail(c, badRequest("alert id %q is not a positive integer", clip(raw)))
		return
	}
	a, err := s.deps.Alerts.Ack(c.Request.Context(), p.Account.ID, aid)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}
