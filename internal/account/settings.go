package account

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

func init() {
	migrate("0002_settings",
		`CREATE TABLE settings (
			account_id     BIGINT PRIMARY KEY REFERENCES accounts(id),
			email_enabled  INTEGER NOT NULL,
			recipients     TEXT NOT NULL,
			webhook_url    TEXT NOT NULL,
			webhook_secret TEXT NOT NULL,
			notify_cleared INTEGER NOT NULL
		)`,
	)
}

// Settings are an account's notification settings.
type Settings struct {
	// EmailEnabled sends the digest e-mail; alerts are stored either way.
	EmailEnabled bool `json:"email_enabled"`
	// Recipients of the digest (validated, at most the plan's number;
	// only the registration address on owner-only plans).
	Recipients []string `json:"recipients"`
	// WebhookURL receives a signed JSON POST per digest ("" = none).
	WebhookURL string `json:"webhook_url"`
	// WebhookSecret signs webhook bodies (HMAC-SHA256); made when the
	// settings are first read, shown to the account, never changed by PUT.
	WebhookSecret string `json:"webhook_secret"`
	// NotifyCleared also alerts when a watched address leaves its last list.
	NotifyCleared bool `json:"notify_cleared"`
}

// Settings returns account id's settings; an account that never saved
// any gets the defaults: e-mail on, to its registration address.
func (s *Store) Settings(ctx context.Context, id ID) (Settings, error) {
	var st Settings
	var email, notify int
	var recips string
	err := s.db.QueryRowContext(ctx, `SELECT email_enabled, recipients, webhook_url, webhook_secret, notify_cleared FROM settings WHERE account_id = ?`, int64(id)).
		Scan(&email, &recips, &st.WebhookURL, &st.WebhookSecret, &notify)
	if errors.Is(err, sql.ErrNoRows) {
		a, err := getAccount(ctx, s.db, id)
		if err != nil {
			return st, err
		}
		st = Settings{EmailEnabled: true, Recipients: []string{a.Email}}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			secret, err := newSecret()
			if err != nil {
				return err
			}
			st.WebhookSecret = secret
			_, err = tx.ExecContext(ctx, `INSERT INTO settings (account_id, email_enabled, recipients, webhook_url, webhook_secret, notify_cleared)
				VALUES (?, 1, ?, '', ?, 0) ON CONFLICT (account_id) DO NOTHING`, int64(id), a.Email, secret)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("default settings of account %d: %w", id, err)
		}
		return s.Settings(ctx, id) // the row that won
	}
	if err != nil {
		return st, fmt.Errorf("settings of account %d: %w", id, err)
	}
	st.EmailEnabled, st.NotifyCleared = email != 0, notify != 0
	if recips != "" {
		st.Recipients = strings.Split(recips, ",")
	} else {
		st.Recipients = []string{}
	}
	return st, nil
}

func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ParseRecipients splits a comma- (or newline-) separated recipient list
// and validates each address.
func ParseRecipients(s string) ([]string, error) {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ';' }) {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := NormalizeEmail(f)
		if err != nil {
			return nil, err
		}
		if !containsFold(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// PutSettings validates and stores account id's settings (the webhook
// secret is kept). Recipients must be valid addresses, at most the plan's
// number, and only the registration address on owner-only plans; the
// webhook URL must be absolute http(s). Whether its host may be reached
// (private ranges) is decided when sending.
func (s *Store) PutSettings(ctx context.Context, id ID, st Settings) (Settings, error) {
	a, err := s.Get(ctx, id)
	if err != nil {
		return Settings{}, err
	}
	plan, ok := s.Plan(a.Plan)
	if !ok {
		return Settings{}, fmt.Errorf("account %d: %w: plan %q", id, ErrInvalid, a.Plan)
	}
	recips := []string{}
	for _, r := range st.Recipients {
		n, err := NormalizeEmail(r)
		if err != nil {
			return Settings{}, err
		}
		if !containsFold(recips, n) {
			recips = append(recips, n)
		}
	}
	if len(recips) > plan.Recipients {
		return Settings{}, fmt.Errorf("%w: %d recipients, plan %s allows %d", ErrInvalid, len(recips), a.Plan, plan.Recipients)
	}
	if plan.OwnerOnly {
		for _, r := range recips {
			if !strings.EqualFold(r, a.Email) {
				return Settings{}, fmt.Errorf("%w: plan %s sends alerts only to the registration address %s", ErrInvalid, a.Plan, a.Email)
			}
		}
	}
	if st.EmailEnabled && len(recips) == 0 {
		return Settings{}, fmt.Errorf("%w: e-mail is enabled but there is no recipient", ErrInvalid)
	}
	if st.WebhookURL != "" {
		u, err := url.Parse(st.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(st.WebhookURL) > 2048 {
			return Settings{}, fmt.Errorf("%w: webhook_url %q: want an absolute http(s) URL without credentials", ErrInvalid, short(st.WebhookURL))
		}
	}
	cur, err := s.Settings(ctx, id) // creates the row (and secret) if needed
	if err != nil {
		return Settings{}, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE settings SET email_enabled = ?, recipients = ?, webhook_url = ?, notify_cleared = ? WHERE account_id = ?`,
			boolInt(st.EmailEnabled), strings.Join(recips, ","), st.WebhookURL, boolInt(st.NotifyCleared), int64(id))
		return err
	})
	if err != nil {
		return Settings{}, fmt.Errorf("save settings of account %d: %w", id, err)
	}
	return Settings{EmailEnabled: st.EmailEnabled, Recipients: recips, WebhookURL: st.WebhookURL, WebhookSecret: cur.WebhookSecret, NotifyCleared: st.NotifyCleared}, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
