package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// account answers GET /v1/account: the key's account, its plan's limits
// and what it consumes of them.
func (s *Server) account(c *gin.Context) {
	p, ok := s.keyed(c, "accounts", s.deps.Accounts != nil)
	if !ok {
		return
	}
	plan, _ := s.deps.Accounts.Plan(p.Account.Plan)
	u, err := s.deps.Accounts.Usage(c.Request.Context(), p.Account)
	if err != nil {
		s.fail(c, err)
		return
	}
	usage := gin.H{"hits_today": u.Hits, "hits_quota": u.Quota, "hits_reset": u.Reset}
	if s.deps.Watchlists != nil {
		w, err := s.deps.Watchlists.Usage(c.Request.Context(), p.Account)
		if err != nil {
			s.fail(c, err)
			return
		}
		usage["watched"], usage["watched_limit"], usage["watched_entries"] = w.Watched, w.WatchedLimit, w.WatchedEntries
		usage["recipients"], usage["recipients_limit"] = w.Recipients, w.RecipientsLimit
		usage["mutes"], usage["mutes_limit"] = w.Mutes, w.MutesLimit
	}
	if s.deps.Subscriptions != nil {
		subs, err := s.deps.Subscriptions.Subscriptions(c.Request.Context(), p.Account.ID)
		if err != nil {
			s.fail(c, err)
			return
		}
		usage["subscriptions"], usage["subscriptions_limit"] = len(subs), plan.Subscriptions
	}
	c.JSON(http.StatusOK, gin.H{
		"account": p.Account,
		"key":     gin.H{"id": p.KeyID, "scopes": p.Scopes},
		"limits":  plan,
		"usage":   usage,
	})
}
