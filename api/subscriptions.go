package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/entity"
)

// Subscriptions keeps accounts' outage subscriptions (account.Store).
type Subscriptions interface {
	Subscriptions(ctx context.Context, id account.ID) ([]account.Subscription, error)
	Subscribe(ctx context.Context, id account.ID, typ, code string) (account.Subscription, bool, error)
	Unsubscribe(ctx context.Context, id account.ID, typ, code string) error
}

// SubscriptionView is a subscription as the API shows it: the entity's
// canonical code with its name and whether any metadata source knows it.
type SubscriptionView struct {
	EntityType string    `json:"entity_type"`
	EntityCode string    `json:"entity_code"`
	EntityName string    `json:"entity_name"`
	Known      bool      `json:"known"`
	Created    time.Time `json:"created"`
}

// subscriptionRoutes registers, on the /v1 group (a key or session
// required):
//
//	GET    /subscriptions                          the account's subscriptions, count and plan limit
//	POST   /subscriptions                          {"entity_type": "country", "entity_code": "US"}: 201 new, 200 already
//	DELETE /subscriptions/{entityType}/{entityCode} 200, or 404 when not subscribed
//
// Entity types are country, region and asn; codes are checked and
// canonicalized by the entity registry (us → US, AS3307 → 3307, a
// region's ISO 3166-2 code → its geoname id); a malformed one is 400.
// Every outage alert of a subscribed entity becomes one of the account's
// alerts (GET /v1/alerts?type=outage), digests and webhook deliveries.
func (s *Server) subscriptionRoutes(v1 *gin.RouterGroup) {
	get(v1, "/subscriptions", s.listSubscriptions)
	v1.POST("/subscriptions", s.subscribe)
	v1.DELETE("/subscriptions/:entityType/:entityCode", s.unsubscribe)
}

func (s *Server) subscriptionStore(c *gin.Context) (account.Principal, bool) {
	return s.keyed(c, "subscriptions", s.deps.Subscriptions != nil)
}

// subscriptionEntity validates and canonicalizes an entity.
func (s *Server) subscriptionEntity(typ, code string) (entity.Entity, error) {
	var reg Entities = &entity.Registry{}
	if s.deps.Entities != nil {
		reg = s.deps.Entities
	}
	code = strings.TrimSpace(code)
	if len(code) > 64 {
		return entity.Entity{}, badRequest("entity code %q is too long", clip(code))
	}
	// The registry takes any region code without blanks; one with a '/'
	// or only dots could be subscribed but never removed (DELETE's path).
	if strings.IndexFunc(code, notCodeRune) >= 0 {
		return entity.Entity{}, badRequest("entity code %q: letters, digits, '-' and '_' only", clip(code))
	}
	return reg.Lookup(typ, code)
}

func notCodeRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

func (s *Server) subscriptionView(sub account.Subscription) SubscriptionView {
	v := SubscriptionView{EntityType: sub.EntityType, EntityCode: sub.EntityCode, EntityName: sub.EntityCode, Created: sub.Created}
	if e, err := s.subscriptionEntity(sub.EntityType, sub.EntityCode); err == nil {
		v.EntityName, v.Known = e.Name, e.Known
	}
	return v
}

func (s *Server) subscriptionLimit(a account.Account) int {
	if s.deps.Accounts == nil {
		return 0
	}
	plan, _ := s.deps.Accounts.Plan(a.Plan)
	return plan.Subscriptions
}

// listSubscriptions answers GET /v1/subscriptions:
// {"subscriptions": [...], "count": n, "limit": plan's}.
func (s *Server) listSubscriptions(c *gin.Context) {
	p, ok := s.subscriptionStore(c)
	if !ok {
		return
	}
	subs, err := s.deps.Subscriptions.Subscriptions(c.Request.Context(), p.Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]SubscriptionView, 0, len(subs))
	for _, sub := range subs {
		views = append(views, s.subscriptionView(sub))
	}
	c.JSON(http.StatusOK, gin.H{"subscriptions": views, "count": len(views), "limit": s.subscriptionLimit(p.Account)})
}

// subscribe answers POST /v1/subscriptions {"entity_type", "entity_code"}:
// 201 and the subscription when new, 200 when it already existed; 400 for
// a malformed entity or beyond the plan's limit.
func (s *Server) subscribe(c *gin.Context) {
	p, ok := s.subscriptionStore(c)
	if !ok {
		return
	}
	b, err := readBody(c, 4<<10, "a fixed limit")
	if err != nil {
		s.fail(c, err)
		return
	}
	var body struct {
		EntityType string `json:"entity_type"`
		EntityCode string `json:"entity_code"`
	}
	const shape = `{"entity_type": "country"|"region"|"asn", "entity_code": "US"}`
	if err := decodeJSONBody(b, &body, shape); err != nil {
		s.fail(c, err)
		return
	}
	if body.EntityType == "" || body.EntityCode == "" {
		s.fail(c, badRequest("expected %s: entity_type and entity_code are required", shape))
		return
	}
	e, err := s.subscriptionEntity(body.EntityType, body.EntityCode)
	if err != nil {
		s.fail(c, err)
		return
	}
	sub, created, err := s.deps.Subscriptions.Subscribe(c.Request.Context(), p.Account.ID, e.Type, e.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	c.JSON(code, s.subscriptionView(sub))
}

// unsubscribe answers DELETE /v1/subscriptions/{entityType}/{entityCode}:
// {"removed": subscription-entity}; 404 when the account has no such
// subscription.
func (s *Server) unsubscribe(c *gin.Context) {
	p, ok := s.subscriptionStore(c)
	if !ok {
		return
	}
	e, err := s.subscriptionEntity(c.Param("entityType"), c.Param("entityCode"))
	if err != nil {
		s.fail(c, err)
		return
	}
	err = s.deps.Subscriptions.Unsubscribe(c.Request.Context(), p.Account.ID, e.Type, e.Code)
	if given := strings.TrimSpace(c.Param("entityCode")); errors.Is(err, account.ErrNotFound) && given != e.Code {
		// Stored as given before the registry knew the entity (e.g. a
		// region's ISO code before a City database was configured).
		if err = s.deps.Subscriptions.Unsubscribe(c.Request.Context(), p.Account.ID, e.Type, given); err == nil {
			e.Code = given
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"removed": gin.H{"entity_type": e.Type, "entity_code": e.Code, "entity_name": e.Name}})
}
