package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
)

func init() {
	migrate("0001_accounts",
		`CREATE TABLE accounts (
			id      INTEGER PRIMARY KEY,
			email   TEXT NOT NULL UNIQUE,
			plan    TEXT NOT NULL,
			created BIGINT NOT NULL
		)`,
		`CREATE TABLE api_keys (
			id         TEXT PRIMARY KEY,
			hash       TEXT NOT NULL UNIQUE,
			account_id BIGINT NOT NULL REFERENCES accounts(id),
			scopes     TEXT NOT NULL,
			created    BIGINT NOT NULL,
			revoked    BIGINT
		)`,
		`CREATE INDEX api_keys_account ON api_keys (account_id)`,
		`CREATE TABLE api_hits (
			account_id BIGINT NOT NULL REFERENCES accounts(id),
			day        TEXT NOT NULL,
			hits       BIGINT NOT NULL,
			PRIMARY KEY (account_id, day)
		)`,
	)
}

// ID identifies an account.
type ID int64

// Account is a customer.
type Account struct {
	ID      ID        `json:"id"`
	Email   string    `json:"email"`
	Plan    string    `json:"plan"`
	Created time.Time `json:"created"`
}

// Scope is what an API key may do.
type Scope string

// Scopes.
const (
	ScopeRead      Scope = "read"      // history, live lookups, the account's alerts and watchlists
	ScopeSQL       Scope = "sql"       // ad-hoc SQL
	ScopeAdmin     Scope = "admin"     // /admin/*
	ScopeTelemetry Scope = "telemetry" // publishing telemetry points
)

// AllScopes lists the known scopes.
var AllScopes = []Scope{ScopeRead, ScopeSQL, ScopeAdmin, ScopeTelemetry}

// DefaultScopes are a new account's first key's scopes.
var DefaultScopes = []Scope{ScopeRead, ScopeSQL}

// ParseScopes parses a comma-separated scope list.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(AllScopes, Scope(f)) {
			return nil, fmt.Errorf("%w: scope %q (want %v)", ErrInvalid, f, AllScopes)
		}
		if !slices.Contains(out, Scope(f)) {
			out = append(out, Scope(f))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no scope", ErrInvalid)
	}
	return out, nil
}

func joinScopes(ss []Scope) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ",")
}

// Principal is who an API key speaks for.
type Principal struct {
	Account Account
	KeyID   string
	Scopes  []Scope
}

// Has reports whether the key has scope s.
func (p Principal) Has(s Scope) bool { return slices.Contains(p.Scopes, s) }

// Key format: "nwk_" + key id (8 chars) + "_" + secret (32 chars), base32
// lower case. Only SHA-256 of the whole key is stored; the id is shown in
// listings and may be used to revoke.
const keyPrefix = "nwk_"

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newKey() (id, key string, err error) {
	var b [25]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("random key: %w", err)
	}
	s := b32.EncodeToString(b[:]) // 40 chars
	id = s[:8]
	return id, keyPrefix + id + "_" + s[8:], nil
}

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// NormalizeEmail validates an e-mail address (a bare address, no display
// name, no header-breaking characters) and lower-cases its domain.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || strings.ContainsAny(s, "\r\n<>,;\" ") {
		return "", fmt.Errorf("%w: e-mail address %q", ErrInvalid, short(s))
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", fmt.Errorf("%w: e-mail address %q", ErrInvalid, short(s))
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") {
		return "", fmt.Errorf("%w: e-mail address %q", ErrInvalid, short(s))
	}
	return s[:at] + "@" + strings.ToLower(s[at+1:]), nil
}

func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Create makes an account and its first API key (DefaultScopes plus
// admin when admin is true). The key is returned once and never stored.
func (s *Store) Create(ctx context.Context, email, plan string, admin bool) (Account, string, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Account{}, "", err
	}
	if _, ok := s.cfg.Plans[plan]; !ok {
		return Account{}, "", fmt.Errorf("%w: plan %q (want one of %v)", ErrInvalid, plan, slices.Sorted(mapKeys(s.cfg.Plans)))
	}
	a := Account{Email: email, Plan: plan, Created: s.now().UTC().Truncate(time.Second)}
	scopes := slices.Clone(DefaultScopes)
	if admin {
		scopes = append(scopes, ScopeAdmin)
	}
	var key string
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE email = ?`, email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: an account for %s", ErrExists, email)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO accounts (email, plan, created) VALUES (?, ?, ?)`, email, plan, a.Created.Unix())
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		a.ID = ID(id)
		key, err = s.insertKey(ctx, tx, a.ID, scopes)
		return err
	})
	if err != nil {
		return Account{}, "", fmt.Errorf("create account: %w", err)
	}
	return a, key, nil
}

func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, id ID, scopes []Scope) (string, error) {
	kid, key, err := newKey()
	if err != nil {
		return "", err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO api_keys (id, hash, account_id, scopes, created) VALUES (?, ?, ?, ?, ?)`,
		kid, hashKey(key), int64(id), joinScopes(scopes), s.now().Unix())
	return key, err
}

// NewKey adds an API key with the given scopes to account id.
func (s *Store) NewKey(ctx context.Context, id ID, scopes []Scope) (string, error) {
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	var key string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := getAccount(ctx, tx, id); err != nil {
			return err
		}
		var err error
		key, err = s.insertKey(ctx, tx, id, scopes)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("new key for account %d: %w", id, err)
	}
	return key, nil
}

// Revoke revokes a key given whole or by its id (the 8 characters after
// "nwk_"). Revoking a revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, key string) error {
	key = strings.TrimSpace(key)
	q, arg := `UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL`, strings.TrimPrefix(key, keyPrefix)
	if strings.HasPrefix(key, keyPrefix) && len(key) > len(keyPrefix)+9 {
		q, arg = `UPDATE api_keys SET revoked = ? WHERE hash = ? AND revoked IS NULL`, hashKey(key)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, q, s.now().Unix(), arg); err != nil {
			return err
		}
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE id = ? OR hash = ?`, strings.TrimPrefix(key, keyPrefix), hashKey(key)).Scan(&n)
		if err == nil && n == 0 {
			return fmt.Errorf("key %q: %w", short(key), ErrNotFound)
		}
		return err
	})
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func getAccount(ctx context.Context, q querier, id ID) (Account, error) {
	var a Account
	var created int64
	err := q.QueryRowContext(ctx, `SELECT id, email, plan, created FROM accounts WHERE id = ?`, int64(id)).Scan(&a.ID, &a.Email, &a.Plan, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("account %d: %w", id, ErrNotFound)
	}
	a.Created = time.Unix(created, 0).UTC()
	return a, err
}

// Get returns account id.
func (s *Store) Get(ctx context.Context, id ID) (Account, error) { return getAccount(ctx, s.db, id) }

// List returns every account by id.
func (s *Store) List(ctx context.Context) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, email, plan, created FROM accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		var created int64
		if err := rows.Scan(&a.ID, &a.Email, &a.Plan, &created); err != nil {
			return nil, err
		}
		a.Created = time.Unix(created, 0).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetPlan moves account id to plan.
func (s *Store) SetPlan(ctx context.Context, id ID, plan string) error {
	if _, ok := s.cfg.Plans[plan]; !ok {
		return fmt.Errorf("%w: plan %q (want one of %v)", ErrInvalid, plan, slices.Sorted(mapKeys(s.cfg.Plans)))
	}
	n, err := s.exec(ctx, `UPDATE accounts SET plan = ? WHERE id = ?`, plan, int64(id))
	if err == nil && n == 0 {
		err = fmt.Errorf("account %d: %w", id, ErrNotFound)
	}
	return err
}

// Authenticate returns who key speaks for; ErrUnauthorized when the key
// is unknown or revoked.
func (s *Store) Authenticate(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, keyPrefix) || len(key) > 128 {
		return Principal{}, ErrUnauthorized
	}
	var p Principal
	var scopes string
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT k.id, k.scopes, a.id, a.email, a.plan, a.created
		FROM api_keys k JOIN accounts a ON a.id = k.account_id
		WHERE k.hash = ? AND k.revoked IS NULL`, hashKey(key)).Scan(&p.KeyID, &scopes, &p.Account.ID, &p.Account.Email, &p.Account.Plan, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	p.Account.Created = time.Unix(created, 0).UTC()
	for _, sc := range strings.Split(scopes, ",") {
		p.Scopes = append(p.Scopes, Scope(sc))
	}
	return p, nil
}

// KeyInfo describes a key without its secret.
type KeyInfo struct {
	ID      string     `json:"id"`
	Scopes  []Scope    `json:"scopes"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// Keys lists account id's keys.
func (s *Store) Keys(ctx context.Context, id ID) ([]KeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, scopes, created, revoked FROM api_keys WHERE account_id = ? ORDER BY created, id`, int64(id))
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []KeyInfo
	for rows.Next() {
		var k KeyInfo
		var scopes string
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &scopes, &created, &revoked); err != nil {
			return nil, err
		}
		k.Created = time.Unix(created, 0).UTC()
		if revoked.Valid {
			t := time.Unix(revoked.Int64, 0).UTC()
			k.Revoked = &t
		}
		for _, sc := range strings.Split(scopes, ",") {
			k.Scopes = append(k.Scopes, Scope(sc))
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
