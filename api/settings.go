package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/account"
)

// AlertSettings reads and saves accounts' notification settings
// (account.Store).
type AlertSettings interface {
	Settings(ctx context.Context, id account.ID) (account.Settings, error)
	PutSettings(ctx context.Context, id account.ID, st account.Settings) (account.Settings, error)
}

// Notifier sends test e-mails and vets webhook URLs (notify.Notifier).
type Notifier interface {
	TestEmail(ctx context.Context, a account.Account, to []string) error
	CheckWebhookURL(raw string) error
}

// maxSettingsBytes bounds a PUT /v1/alerts/settings body.
const maxSettingsBytes = 64 << 10

// settingsBody is a PUT /v1/alerts/settings body: absent fields keep
// their value. recipients is a list or one comma-separated string.
type settingsBody struct {
	EmailEnabled  *bool           `json:"email_enabled"`
	Recipients    json.RawMessage `json:"recipients"`
	WebhookURL    *string         `json:"webhook_url"`
	NotifyCleared *bool           `json:"notify_cleared"`
	// WebhookSecret is read-only; accepted (and ignored) when unchanged
	// so a GET answer can be PUT back.
	WebhookSecret *string `json:"webhook_secret"`
}

const settingsShape = `{"email_enabled": bool, "recipients": ["a@example.com", ...] or "a@example.com, b@example.com", "webhook_url": "https://...", "notify_cleared": bool}`

// getSettings answers GET /v1/alerts/settings: the key's account's
// notification settings, webhook_secret included (to verify signatures).
func (s *Server) getSettings(c *gin.Context) {
	p, ok := s.keyed(c, "alert settings", s.deps.Settings != nil)
	if !ok {
		return
	}
	st, err := s.deps.Settings.Settings(c.Request.Context(), p.Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// putSettings answers PUT /v1/alerts/settings: updates the given fields
// (recipients validated and limited by plan, webhook_url vetted) and
// answers the saved settings.
func (s *Server) putSettings(c *gin.Context) {
	p, ok := s.keyed(c, "alert settings", s.deps.Settings != nil)
	if !ok {
		return
	}
	b, err := readBody(c, maxSettingsBytes, "a fixed limit")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in settingsBody
	if err := decodeJSONBody(b, &in, settingsShape); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	st, err := s.deps.Settings.Settings(ctx, p.Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if in.WebhookSecret != nil && *in.WebhookSecret != st.WebhookSecret {
		s.fail(c, badRequest("webhook_secret is read-only"))
		return
	}
	if in.EmailEnabled != nil {
		st.EmailEnabled = *in.EmailEnabled
	}
	if in.NotifyCleared != nil {
		st.NotifyCleared = *in.NotifyCleared
	}
	if in.WebhookURL != nil {
		st.WebhookURL = *in.WebhookURL
		if st.WebhookURL != "" && s.deps.Notifier != nil {
			if err := s.deps.Notifier.CheckWebhookURL(st.WebhookURL); err != nil {
				s.fail(c, err)
				return
			}
		}
	}
	if r := bytes.TrimSpace(in.Recipients); len(r) > 0 && !bytes.Equal(r, []byte("null")) {
		if st.Recipients, err = parseRecipients(r); err != nil {
			s.fail(c, err)
			return
		}
	}
	saved, err := s.deps.Settings.PutSettings(ctx, p.Account.ID, st)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, saved)
}

// parseRecipients reads a JSON list of addresses or one comma-separated
// string; PutSettings validates each and the plan's limit.
func parseRecipients(raw json.RawMessage) ([]string, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest("recipients: %s", jsonProblem(raw, err))
		}
		return account.ParseRecipients(s)
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest("recipients: want a list of addresses or a comma-separated string")
	}
	return list, nil
}

// testEmail answers POST /v1/alerts/test-email: one message to the
// account's recipients now; 503 without an SMTP server, 502 when the
// server refuses it.
func (s *Server) testEmail(c *gin.Context) {
	p, ok := s.keyed(c, "alert settings", s.deps.Settings != nil)
	if !ok {
		return
	}
	if s.deps.Notifier == nil {
		s.fail(c, fmt.Errorf("e-mail %w", errUnavailable))
		return
	}
	st, err := s.deps.Settings.Settings(c.Request.Context(), p.Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if len(st.Recipients) == 0 {
		s.fail(c, badRequest("no recipients: set them with PUT /v1/alerts/settings"))
		return
	}
	if err := s.deps.Notifier.TestEmail(c.Request.Context(), p.Account, st.Recipients); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"sent_to": st.Recipients})
}
