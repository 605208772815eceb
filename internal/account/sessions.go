package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

func init() {
	migrate("0007_sessions",
		`CREATE TABLE sessions (
			hash    TEXT PRIMARY KEY,
			key_id  TEXT NOT NULL REFERENCES api_keys(id),
			created BIGINT NOT NULL,
			expires BIGINT NOT NULL
		)`,
		`CREATE INDEX sessions_key ON sessions (key_id)`,
		`CREATE INDEX sessions_expires ON sessions (expires)`,
	)
}

// Dashboard sessions: signing in with an API key opens a session whose
// random token (sessionPrefix + 52 base32 chars) the browser keeps in an
// HttpOnly cookie. Only the token's SHA-256 is stored. A session speaks
// for the key it was opened with (same account, same scopes) until it
// expires or is ended, or the key is revoked.
const sessionPrefix = "nws_"

// ErrNoSession is a session token that is unknown, expired or whose key
// was revoked (the API answers 401).
var ErrNoSession = fmt.Errorf("%w: no such session (expired or signed out); sign in again", ErrUnauthorized)

// OpenSession authenticates key and opens a session for it lasting ttl.
func (s *Store) OpenSession(ctx context.Context, key string, ttl time.Duration) (string, Principal, error) {
	if ttl <= 0 {
		return "", Principal{}, fmt.Errorf("%w: session lifetime %v", ErrInvalid, ttl)
	}
	p, err := s.Authenticate(ctx, key)
	if err != nil {
		return "", Principal{}, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Principal{}, fmt.Errorf("random session token: %w", err)
	}
	token := sessionPrefix + b32.EncodeToString(b[:])
	now := s.now()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// Expired sessions are dropped as new ones open.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, now.Unix()); err != nil {
			return fmt.Errorf("drop expired sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, key_id, created, expires) VALUES (?, ?, ?, ?)`,
			hashKey(token), p.KeyID, now.Unix(), now.Add(ttl).Unix()); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", Principal{}, err
	}
	return token, p, nil
}

// Session returns who the session token speaks for; ErrNoSession when it
// is unknown, expired or its key revoked.
func (s *Store) Session(ctx context.Context, token string) (Principal, error) {
	if !strings.HasPrefix(token, sessionPrefix) || len(token) > 128 {
		return Principal{}, ErrNoSession
	}
	var p Principal
	var scopes string
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT k.id, k.scopes, a.id, a.email, a.plan, a.created
		FROM sessions se JOIN api_keys k ON k.id = se.key_id JOIN accounts a ON a.id = k.account_id
		WHERE se.hash = ? AND se.expires > ? AND k.revoked IS NULL`, hashKey(token), s.now().Unix()).
		Scan(&p.KeyID, &scopes, &p.Account.ID, &p.Account.Email, &p.Account.Plan, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("session: %w", err)
	}
	p.Account.Created = time.Unix(created, 0).UTC()
	for _, sc := range strings.Split(scopes, ",") {
		p.Scopes = append(p.Scopes, Scope(sc))
	}
	return p, nil
}

// CloseSession ends the session (signing out); an unknown token is not
// an error.
func (s *Store) CloseSession(ctx context.Context, token string) error {
	if _, err := s.exec(ctx, `DELETE FROM sessions WHERE hash = ?`, hashKey(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// CSRFToken derives the anti-forgery token of a session: the dashboard
// sends it in the X-CSRF-Token header of every non-GET request. Only who
// holds the session token (the browser's HttpOnly cookie, never readable
// by another site) can compute it; the server hands it to the page
// (GET /ui/session) on a same-origin request.
func CSRFToken(session string) string {
	h := sha256.Sum256([]byte("netwarden-csrf\x00" + session))
	return hex.EncodeToString(h[:])
}
