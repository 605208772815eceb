package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/account"
)

// AuthConfig is the `auth` section of the configuration.
type AuthConfig struct {
	// Required makes history, live lookups, lists and SQL need an API
	// key too; the account routes (/v1/...) always do.
	Required bool `yaml:"required"`
}

// Accounts authenticates API keys and counts hits (account.Store).
type Accounts interface {
	Authenticate(ctx context.Context, key string) (account.Principal, error)
	Hit(ctx context.Context, a account.Account) (account.Usage, error)
	Usage(ctx context.Context, a account.Account) (account.Usage, error)
	Plan(name string) (account.Plan, bool)
}

type keyMode int

const (
	keyOptional keyMode = iota // anonymous unless auth.required
	keyRequired
	// keyLocal: anonymous only from a loopback address and unless
	// auth.required (the operator's `netwarden check` on the server's
	// own host); everyone else needs a key with the scope.
	keyLocal
)

// errNoKey marks a request without a key where one is needed.
var errNoKey = errors.New("an API key is required: send it in the X-Auth-Token header")

const principalKey = "netwarden.principal"

// apiKey returns the request's API key: the X-Auth-Token header, or a
// bearer token.
func apiKey(c *gin.Context) string {
	if k := c.GetHeader("X-Auth-Token"); k != "" {
		return k
	}
	if v, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// authn authenticates the request's key, checks it has scope, counts the
// hit against the account's daily quota and sets the rate headers. With
// no key it lets anonymous requests through when mode is keyOptional
// and auth.required is off.
func (s *Server) authn(scope account.Scope, mode keyMode) gin.HandlerFunc {
	return func(c *gin.Context) {
		key := apiKey(c)
		var p account.Principal
		var err error
		if key != "" {
			if s.deps.Accounts == nil {
				s.fail(c, fmt.Errorf("accounts %w", errUnavailable))
				return
			}
			p, err = s.deps.Accounts.Authenticate(c.Request.Context(), key)
		} else {
			// No key: the dashboard's session cookie (ui.go) stands for
			// the key it was opened with. A missing or stale session is
			// anonymous where anonymous requests are allowed.
			var had bool
			p, had, err = s.fromSession(c)
			anonymous := mode == keyOptional || (mode == keyLocal && isLoopback(c))
			if anonymous && !s.cfg.Auth.Required && (!had || errors.Is(err, account.ErrUnauthorized)) {
				c.Next()
				return
			}
			if !had {
				s.fail(c, fmt.Errorf("%w", errNoKey))
				return
			}
			if err == nil && s.deps.Accounts == nil {
				err = fmt.Errorf("accounts %w", errUnavailable)
			}
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		if !p.Has(scope) {
			s.fail(c, fmt.Errorf("%w %q", account.ErrForbidden, scope))
			return
		}
		u, err := s.deps.Accounts.Hit(c.Request.Context(), p.Account)
		rateHeaders(c, u)
		if errors.Is(err, account.ErrQuota) {
			c.Header("Retry-After", strconv.FormatInt(max(1, int64(time.Until(u.Reset).Seconds())+1), 10))
			s.fail(c, fmt.Errorf("%w: %d of %d hits used today (UTC); resets at %s", account.ErrQuota, u.Hits, u.Quota, u.Reset.Format(time.RFC3339)))
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

func rateHeaders(c *gin.Context, u account.Usage) {
	if u.Quota == 0 {
		return
	}
	c.Header("X-RateLimit-Limit", strconv.FormatInt(u.Quota, 10))
	c.Header("X-RateLimit-Remaining", strconv.FormatInt(u.Remaining(), 10))
	c.Header("X-RateLimit-Reset", strconv.FormatInt(u.Reset.Unix(), 10))
}

// principal returns who the request's key speaks for, if it had one.
func principal(c *gin.Context) (account.Principal, bool) {
	v, ok := c.Get(principalKey)
	if !ok {
		return account.Principal{}, false
	}
	p, ok := v.(account.Principal)
	return p, ok
}

// keyed returns who the request's key speaks for, or fails the request:
// 401 without a key, 503 when the dependency it needs (named dep) is
// absent (have false).
func (s *Server) keyed(c *gin.Context, dep string, have bool) (account.Principal, bool) {
	p, ok := principal(c)
	if !ok {
		s.fail(c, errNoKey)
		return p, false
	}
	if !have {
		s.fail(c, fmt.Errorf("%s %w", dep, errUnavailable))
		return p, false
	}
	return p, true
}

// isLoopback reports whether the request comes from the server's own host
// (the TCP peer, not a forwarded header, which a client can forge).
func isLoopback(c *gin.Context) bool {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
