package account

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, path string, clk *clock, plans map[string]Plan) *Store {
	t.Helper()
	cfg := Config{Path: path, Plans: plans}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(cfg, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccountsAndKeys(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "state", "netwarden.db")
	s := open(t, path, clk, nil)

	a, key, err := s.Create(ctx, "Ops@Example.COM", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Email != "Ops@example.com" || a.Plan != "DEVELOPER" || a.ID == 0 {
		t.Fatalf("created %+v", a)
	}
	if !strings.HasPrefix(key, "nwk_") || len(key) != 4+8+1+32 {
		t.Fatalf("key %q", key)
	}
	if _, _, err := s.Create(ctx, "Ops@example.com", "FREE", false); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate account: %v", err)
	}
	for _, bad := range []struct{ email, plan string }{
		{"not an address", "FREE"}, {"a@b.c\r\nBcc: x@y.z", "FREE"}, {"Joe <joe@example.com>", "FREE"}, {"x@example.com", "GOLD"},
	} {
		if _, _, err := s.Create(ctx, bad.email, bad.plan, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q, %q): %v, want ErrInvalid", bad.email, bad.plan, err)
		}
	}

	p, err := s.Authenticate(ctx, key)
	if err != nil || p.Account.ID != a.ID || !p.Has(ScopeRead) || !p.Has(ScopeSQL) || p.Has(ScopeAdmin) {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	for _, bad := range []string{"", "nwk_", key + "x", strings.ToUpper(key), "nwk_aaaaaaaa_" + strings.Repeat("a", 32)} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(%q): %v", bad, err)
		}
	}
	admin, err := s.NewKey(ctx, a.ID, []Scope{ScopeRead, ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(ctx, admin); err != nil || !p.Has(ScopeAdmin) || p.Has(ScopeSQL) {
		t.Fatalf("admin key: %+v %v", p, err)
	}
	if err := s.SetPlan(ctx, a.ID, "ENTERPRISE"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPlan(ctx, a.ID+100, "FREE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("set plan of a missing account: %v", err)
	}
	// Revoke by id; the other key keeps working.
	if err := s.Revoke(ctx, key[4:12]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, key); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked key: %v", err)
	}
	if err := s.Revoke(ctx, "nwk_zzzzzzzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	s.Close()

	// State survives a restart; only hashes are stored.
	s = open(t, path, clk, nil)
	defer s.Close()
	p, err = s.Authenticate(ctx, admin)
	if err != nil || p.Account.Plan != "ENTERPRISE" {
		t.Fatalf("after restart: %+v %v", p, err)
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM api_keys WHERE hash = ? OR id = ?`, admin, admin).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a key is stored in clear: %d %v", n, err)
	}
	keys, err := s.Keys(ctx, a.ID)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %+v %v", keys, err)
	}
	for _, k := range keys {
		if revoked := k.ID == key[4:12]; revoked != (k.Revoked != nil) {
			t.Errorf("key %s: revoked %v", k.ID, k.Revoked)
		}
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("list %+v %v", list, err)
	}
}

func TestDailyQuota(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "netwarden.db")
	s := open(t, path, clk, map[string]Plan{"TINY": {Watched: 1, Recipients: 1, HitsPerDay: 3}})
	a, _, err := s.Create(ctx, "a@example.com", "TINY", false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		u, err := s.Hit(ctx, a)
		if err != nil || u.Hits != int64(i) || u.Quota != 3 {
			t.Fatalf("hit %d: %+v %v", i, u, err)
		}
	}
	u, err := s.Hit(ctx, a)
	if !errors.Is(err, ErrQuota) || u.Hits != 3 || u.Remaining() != 0 || !u.Reset.Equal(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("over quota: %+v %v", u, err)
	}
	// Counts survive a restart once flushed.
	if err := s.FlushHits(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path, clk, map[string]Plan{"TINY": {Watched: 1, Recipients: 1, HitsPerDay: 3}})
	defer s.Close()
	if _, err := s.Hit(ctx, a); !errors.Is(err, ErrQuota) {
		t.Fatalf("after restart: %v, want the quota still spent", err)
	}
	// A new UTC day resets it.
	clk.add(2 * time.Hour)
	if u, err := s.Hit(ctx, a); err != nil || u.Hits != 1 {
		t.Fatalf("next day: %+v %v", u, err)
	}
}

func TestConcurrentHits(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	s := open(t, filepath.Join(t.TempDir(), "netwarden.db"), clk, map[string]Plan{"P": {Watched: 1, Recipients: 1, HitsPerDay: 500}})
	defer s.Close()
	a, _, err := s.Create(ctx, "a@example.com", "P", false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, over := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, err := s.Hit(ctx, a)
				mu.Lock()
				if err == nil {
					ok++
				} else if errors.Is(err, ErrQuota) {
					over++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 500 || over != 300 {
		t.Fatalf("%d counted, %d refused; want 500 and 300", ok, over)
	}
}
