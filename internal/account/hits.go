package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// API hits are counted in memory, per account and UTC day, seeded from
// the database on first use and written back every HitFlush (and on
// shutdown): counting costs no write per request. A crash loses at most
// one flush interval of counts, in the customer's favour.

type hitKey struct {
	id  ID
	day string // YYYY-MM-DD, UTC
}

type hitCount struct {
	n, flushed int64
}

// Usage is an account's API consumption today.
type Usage struct {
	Hits  int64     `json:"hits"`
	Quota int64     `json:"quota"`
	Reset time.Time `json:"reset"` // next UTC midnight
}

// Remaining returns the hits left today.
func (u Usage) Remaining() int64 { return max(u.Quota-u.Hits, 0) }

// Hit counts one API call of account a and returns its usage; past the
// plan's daily quota it counts nothing and returns ErrQuota with the
// usage.
func (s *Store) Hit(ctx context.Context, a Account) (Usage, error) {
	return s.hit(ctx, a, 1)
}

// Usage returns account a's consumption today without counting.
func (s *Store) Usage(ctx context.Context, a Account) (Usage, error) {
	return s.hit(ctx, a, 0)
}

func (s *Store) hit(ctx context.Context, a Account, n int64) (Usage, error) {
	plan, ok := s.cfg.Plans[a.Plan]
	if !ok {
		return Usage{}, fmt.Errorf("account %d: %w: plan %q", a.ID, ErrInvalid, a.Plan)
	}
	now := s.now().UTC()
	day := now.Format(time.DateOnly)
	y, m, d := now.Date()
	u := Usage{Quota: plan.HitsPerDay, Reset: time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)}
	k := hitKey{a.ID, day}
	s.hitMu.Lock()
	c, ok := s.hits[k]
	s.hitMu.Unlock()
	if !ok {
		var stored int64
		err := s.db.QueryRowContext(ctx, `SELECT hits FROM api_hits WHERE account_id = ? AND day = ?`, int64(a.ID), day).Scan(&stored)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Usage{}, fmt.Errorf("read api hits: %w", err)
		}
		s.hitMu.Lock()
		if c, ok = s.hits[k]; !ok {
			c = &hitCount{n: stored, flushed: stored}
			s.hits[k] = c
		}
		s.hitMu.Unlock()
	}
	s.hitMu.Lock()
	defer s.hitMu.Unlock()
	if c.n+n > plan.HitsPerDay {
		u.Hits = c.n
		return u, ErrQuota
	}
	c.n += n
	u.Hits = c.n
	return u, nil
}

// FlushHits writes counted hits and forgets past days' counters.
func (s *Store) FlushHits(ctx context.Context) error {
	today := s.now().UTC().Format(time.DateOnly)
	type row struct {
		k hitKey
		n int64
	}
	var rows []row
	s.hitMu.Lock()
	for k, c := range s.hits {
		if c.n != c.flushed {
			rows = append(rows, row{k, c.n})
		}
	}
	s.hitMu.Unlock()
	if len(rows) > 0 {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			for _, r := range rows {
				if _, err := tx.ExecContext(ctx, `INSERT INTO api_hits (account_id, day, hits) VALUES (?, ?, ?)
					ON CONFLICT (account_id, day) DO UPDATE SET hits = excluded.hits`, int64(r.k.id), r.k.day, r.n); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("flush api hits: %w", err)
		}
	}
	s.hitMu.Lock()
	for _, r := range rows {
		if c := s.hits[r.k]; c != nil && c.flushed < r.n {
			c.flushed = r.n
		}
	}
	for k, c := range s.hits {
		if k.day < today && c.n == c.flushed {
			delete(s.hits, k)
		}
	}
	s.hitMu.Unlock()
	return nil
}
