package account

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path, clk, nil)
	a, key, err := s.Create(ctx, "ops@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	b, keyB, err := s.Create(ctx, "b@example.com", "FREE", false)
	if err != nil {
		t.Fatal(err)
	}

	if _, _, err := s.OpenSession(ctx, "nwk_nope", time.Hour); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("session for an unknown key: %v", err)
	}
	if _, _, err := s.OpenSession(ctx, key, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("session without lifetime: %v", err)
	}
	tok, p, err := s.OpenSession(ctx, key, time.Hour)
	if err != nil || p.Account.ID != a.ID {
		t.Fatalf("open: %v %+v", err, p)
	}
	tokB, _, err := s.OpenSession(ctx, keyB, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		want        ID // 0: no session
	}{
		{"a", tok, a.ID},
		{"b", tokB, b.ID},
		{"the key is not a session", key, 0},
		{"unknown", "nws_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
		{"empty", "", 0},
	} {
		p, err := s.Session(ctx, tc.token)
		if tc.want == 0 {
			if !errors.Is(err, ErrNoSession) || !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("%s: %v", tc.name, err)
			}
			continue
		}
		if err != nil || p.Account.ID != tc.want || !p.Has(ScopeRead) {
			t.Fatalf("%s: %v %+v", tc.name, err, p)
		}
	}
	if CSRFToken(tok) == CSRFToken(tokB) || len(CSRFToken(tok)) != 64 {
		t.Fatal("CSRF tokens must differ per session")
	}

	// Sessions survive a restart, expire with the clock, end on sign-out.
	s.Close()
	s = open(t, path, clk, nil)
	defer s.Close()
	if _, err := s.Session(ctx, tok); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	clk.add(time.Hour)
	if _, err := s.Session(ctx, tok); !errors.Is(err, ErrNoSession) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := s.Session(ctx, tokB); err != nil {
		t.Fatalf("b's longer session: %v", err)
	}
	if err := s.CloseSession(ctx, tokB); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, tokB); !errors.Is(err, ErrNoSession) {
		t.Fatalf("closed session: %v", err)
	}
	// Opening a session drops expired ones.
	if _, _, err := s.OpenSession(ctx, key, time.Hour); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("sessions left: %d %v", n, err)
	}
}
