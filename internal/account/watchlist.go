package account

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Watched entries and mutes live in two tables of the same shape, one row
// per (account, entry). An entry is stored as a 17-byte key: the 16-byte
// address (IPv4 as IPv4-mapped IPv6) then the prefix length in the
// address's own family, so rows sort in address order, IPv4 first, and
// paging is an index range scan. The tables are WITHOUT ROWID (the key
// is the row: half the size and write work of a rowid table plus its
// index; for PostgreSQL the clause is dropped). Package stream/watchlist keeps them in
// memory (stream/watch tables) and is the only writer.
func init() {
	migrate("0004_watch",
		`CREATE TABLE watch (
			account_id BIGINT NOT NULL REFERENCES accounts(id),
			k          BLOB NOT NULL,
			added      BIGINT NOT NULL,
			PRIMARY KEY (account_id, k)
		) WITHOUT ROWID`,
		`CREATE TABLE mutes (
			account_id BIGINT NOT NULL REFERENCES accounts(id),
			k          BLOB NOT NULL,
			added      BIGINT NOT NULL,
			PRIMARY KEY (account_id, k)
		) WITHOUT ROWID`,
	)
}

// EntryList names a per-account prefix list.
type EntryList string

// The lists.
const (
	Watchlist EntryList = "watch" // watched addresses and CIDRs
	Mutes     EntryList = "mutes" // muted addresses and CIDRs: no alerts
)

func (l EntryList) table() (string, error) {
	switch l {
	case Watchlist, Mutes:
		return string(l), nil
	}
	return "", fmt.Errorf("%w: entry list %q", ErrInvalid, string(l))
}

// Entry is one watched or muted prefix.
type Entry struct {
	Prefix netip.Prefix `json:"entry"`
	Added  time.Time    `json:"added"`
}

func entryKey(p netip.Prefix) [17]byte {
	var k [17]byte
	a := p.Addr().As16()
	copy(k[:], a[:])
	k[16] = byte(p.Bits())
	return k
}

func keyEntry(k []byte) (netip.Prefix, error) {
	if len(k) != 17 {
		return netip.Prefix{}, fmt.Errorf("entry key of %d bytes", len(k))
	}
	a := netip.AddrFrom16([16]byte(k[:16]))
	if a.Is4In6() {
		a = a.Unmap()
	}
	p := netip.PrefixFrom(a, int(k[16]))
	if !p.IsValid() || p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("entry key %x: not a canonical prefix", k)
	}
	return p, nil
}

// insertRows is how many rows one INSERT statement carries (3 parameters
// each, well under SQLite's 32,766).
const insertRows = 500

// AddEntries stores prefixes (masked, valid) as account id's entries of
// list l, added at `at`, in one transaction; entries already stored are
// kept as they are. Callers batch: one call per tens of thousands of
// entries costs one commit. Rows go in in key order (each B-tree page
// is touched once).
func (s *Store) AddEntries(ctx context.Context, l EntryList, id ID, ps []netip.Prefix, at time.Time) error {
	table, err := l.table()
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return nil
	}
	keys := make([][17]byte, len(ps))
	for i, p := range ps {
		keys[i] = entryKey(p)
	}
	slices.SortFunc(keys, func(a, b [17]byte) int { return bytes.Compare(a[:], b[:]) })
	stmt := func(rows int) string {
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " (account_id, k, added) VALUES ")
		for i := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?)")
		}
		b.WriteString(" ON CONFLICT (account_id, k) DO NOTHING")
		return b.String()
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var full *sql.Stmt
		if len(keys) >= insertRows {
			st, err := tx.PrepareContext(ctx, stmt(insertRows))
			if err != nil {
				return err
			}
			defer st.Close()
			full = st
		}
		args := make([]any, 0, 3*insertRows)
		for len(keys) > 0 {
			n := min(len(keys), insertRows)
			args = args[:0]
			for i := range keys[:n] {
				args = append(args, int64(id), keys[i][:], at.Unix())
			}
			var err error
			if n == insertRows {
				_, err = full.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, stmt(n), args...)
			}
			if err != nil {
				return err
			}
			keys = keys[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s entries of account %d: %w", l, id, err)
	}
	return nil
}

// RemoveEntry deletes one entry of account id's list l (ErrNotFound if
// it has no such entry).
func (s *Store) RemoveEntry(ctx context.Context, l EntryList, id ID, p netip.Prefix) error {
	table, err := l.table()
	if err != nil {
		return err
	}
	k := entryKey(p)
	n, err := s.exec(ctx, `DELETE FROM `+table+` WHERE account_id = ? AND k = ?`, int64(id), k[:])
	if err != nil {
		return fmt.Errorf("remove %s entry %s of account %d: %w", l, p, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s is not in the %s of account %d", ErrNotFound, p, l, id)
	}
	return nil
}

// RemoveEntries deletes every entry of account id's list l and returns
// how many there were.
func (s *Store) RemoveEntries(ctx context.Context, l EntryList, id ID) (int64, error) {
	table, err := l.table()
	if err != nil {
		return 0, err
	}
	n, err := s.exec(ctx, `DELETE FROM `+table+` WHERE account_id = ?`, int64(id))
	if err != nil {
		return 0, fmt.Errorf("remove all %s entries of account %d: %w", l, id, err)
	}
	return n, nil
}

// Entries returns up to limit entries of account id's list l in address
// order (IPv4 first), skipping the first offset.
func (s *Store) Entries(ctx context.Context, l EntryList, id ID, offset, limit int) ([]Entry, error) {
	table, err := l.table()
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT k, added FROM `+table+` WHERE account_id = ? ORDER BY k LIMIT ? OFFSET ?`, int64(id), limit, offset)
	if err != nil {
		return nil, fmt.Errorf("%s entries of account %d: %w", l, id, err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var k []byte
		var added int64
		if err := rows.Scan(&k, &added); err != nil {
			return nil, fmt.Errorf("%s entries of account %d: %w", l, id, err)
		}
		p, err := keyEntry(k)
		if err != nil {
			return nil, fmt.Errorf("%s entries of account %d: %w", l, id, err)
		}
		out = append(out, Entry{Prefix: p, Added: time.Unix(added, 0).UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s entries of account %d: %w", l, id, err)
	}
	return out, nil
}

// Entry returns account id's entry p of list l (ErrNotFound if absent).
func (s *Store) Entry(ctx context.Context, l EntryList, id ID, p netip.Prefix) (Entry, error) {
	table, err := l.table()
	if err != nil {
		return Entry{}, err
	}
	var added int64
	k := entryKey(p)
	err = s.db.QueryRowContext(ctx, `SELECT added FROM `+table+` WHERE account_id = ? AND k = ?`, int64(id), k[:]).Scan(&added)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, fmt.Errorf("%w: %s is not in the %s of account %d", ErrNotFound, p, l, id)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("%s entry %s of account %d: %w", l, p, id, err)
	}
	return Entry{Prefix: p, Added: time.Unix(added, 0).UTC()}, nil
}

// EachEntry calls fn for every entry of every account in list l, in
// (account, address) order, stopping at fn's first error (loading the
// lists at start).
func (s *Store) EachEntry(ctx context.Context, l EntryList, fn func(ID, netip.Prefix) error) error {
	table, err := l.table()
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT account_id, k FROM `+table+` ORDER BY account_id, k`)
	if err != nil {
		return fmt.Errorf("load %s entries: %w", l, err)
	}
	defer rows.Close()
	var k []byte
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id, &k); err != nil {
			return fmt.Errorf("load %s entries: %w", l, err)
		}
		p, err := keyEntry(k)
		if err != nil {
			return fmt.Errorf("load %s entries of account %d: %w", l, id, err)
		}
		if err := fn(ID(id), p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load %s entries: %w", l, err)
	}
	return nil
}
