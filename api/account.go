package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// account answers GET /v1/account: the key's account, its plan's limits
// and what it consumes of them.
func (s *Server) account(c *gin.Context) {
	p, ok := principal(c)
	if !ok {
		s.fail(c, fmt.Errorf("%w", errNoKey))
		return
	}
	plan, _ := s.deps.Accounts.Plan(p.Account.Plan)
	u, err := s.deps.Accounts.Usage(c.Request.Context(), p.Account)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"account": p.Account,
		"key":     gin.H{"id": p.KeyID, "scopes": p.Scopes},
		"limits":  plan,
		"usage":   gin.H{"hits_today": u.Hits, "hits_quota": u.Quota, "hits_reset": u.Reset},
	})
}
