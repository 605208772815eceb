// Package watch keeps the IP addresses and CIDR blocks that accounts
// watch, and matches listed resources against them both ways: a listed
// address or CIDR matches every watched entry that contains it and every
// watched entry inside it.
//
// One Table holds the entries of every account in one prefix set, so a
// match costs one walk whatever the number of accounts: IPv4 host entries
// (the bulk of a big watchlist) in sorted per-/16 buckets, everything
// else in a gaissmai/bart trie. A prefix watched by one account stores the
// account id as its payload; one watched by several points into a side
// table of account sets, so the common case costs no extra memory.
//
// It also counts what each account watches for plan limits: IPv4 counts
// addresses, IPv6 counts /64 blocks, and overlapping or duplicate entries
// count once (a /32 inside a watched /24 adds nothing).
//
// A Table is safe for concurrent use: matches take a read lock, changes a
// write lock. It owns no goroutines.
package watch

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"sync"
)

// Account identifies an account in the table.
type Account uint32

// multiBit marks a payload that indexes the side table of account sets.
const multiBit = 1 << 31

// ErrAccount marks an account id the table cannot hold.
var ErrAccount = errors.New("watch: account id out of range")

// Match is one watched entry overlapping a listed resource.
type Match struct {
	Account Account
	Watched netip.Prefix
}

// Table is the watched entries of every account.
type Table struct {
	mu    sync.RWMutex
	set   store
	multi [][]Account // sorted account sets; nil slots are free
	free  []uint32    // free slots of multi
	units map[Account]*big.Int
	n     int // entries over all accounts
}

// New returns an empty table.
func New() *Table { return &Table{units: map[Account]*big.Int{}} }

// accounts calls fn for each account of a payload.
func (t *Table) accounts(v uint32, fn func(Account) bool) bool {
	if v&multiBit == 0 {
		return fn(Account(v))
	}
	for _, a := range t.multi[v&^multiBit] {
		if !fn(a) {
			return false
		}
	}
	return true
}

func (t *Table) has(v uint32, a Account) bool {
	if v&multiBit == 0 {
		return Account(v) == a
	}
	_, ok := slices.BinarySearch(t.multi[v&^multiBit], a)
	return ok
}

// Len returns the number of (account, entry) pairs.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n
}

// Prefixes returns the number of distinct watched prefixes.
func (t *Table) Prefixes() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.set.size()
}

// AppendMatches appends to dst every (account, watched entry) whose entry
// overlaps p, and returns it. Each account appears once, with its most
// specific entry containing p, or else its first entry inside p in
// address order. Matching allocates nothing when dst has room.
func (t *Table) AppendMatches(dst []Match, p netip.Prefix) []Match {
	p = p.Masked()
	t.mu.RLock()
	defer t.mu.RUnlock()
	start := len(dst)
	seen := func(a Account) bool {
		for _, m := range dst[start:] {
			if m.Account == a {
				return true
			}
		}
		return false
	}
	// Supernets come most specific first: the first entry of an account
	// is its closest.
	t.set.supernets(p, func(w netip.Prefix, v uint32) bool {
		t.accounts(v, func(a Account) bool {
			if !seen(a) {
				dst = append(dst, Match{Account: a, Watched: w})
			}
			return true
		})
		return true
	})
	if p.IsSingleIP() {
		return dst
	}
	t.set.subnets(p, func(w netip.Prefix, v uint32) bool {
		if w == p {
			return true // yielded as a supernet
		}
		t.accounts(v, func(a Account) bool {
			if !seen(a) {
				dst = append(dst, Match{Account: a, Watched: w})
			}
			return true
		})
		return true
	})
	return dst
}

// Contains reports whether account a watches entry p exactly.
func (t *Table) Contains(a Account, p netip.Prefix) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.set.get(p.Masked())
	return ok && t.has(v, a)
}

// Units returns what account a watches, in counting units (IPv4
// addresses plus IPv6 /64 blocks, overlaps once), saturated at MaxUint64.
func (t *Table) Units(a Account) uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return saturate(t.units[a])
}

func saturate(u *big.Int) uint64 {
	if u == nil {
		return 0
	}
	if !u.IsUint64() {
		return ^uint64(0)
	}
	return u.Uint64()
}

// Cost returns how many units adding p for account a would add (0 when
// a already covers it). It changes nothing.
func (t *Table) Cost(a Account, p netip.Prefix) uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return saturate(t.delta(a, p.Masked()))
}

// Add records that account a watches p. It reports whether p was new for
// a and the units it added.
func (t *Table) Add(a Account, p netip.Prefix) (added bool, units uint64, err error) {
	if a&multiBit != 0 {
		return false, 0, fmt.Errorf("%w: %d", ErrAccount, a)
	}
	if !p.IsValid() {
		return false, 0, fmt.Errorf("watch: invalid prefix %v", p)
	}
	p = p.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.add(a, p, func(uint64) bool { return true })
}

// AddWithin is Add, but only while the account's units stay at or below
// limit; otherwise it adds nothing and reports ok=false with the units p
// would have cost.
func (t *Table) AddWithin(a Account, p netip.Prefix, limit uint64) (added, ok bool, units uint64, err error) {
	if a&multiBit != 0 {
		return false, false, 0, fmt.Errorf("%w: %d", ErrAccount, a)
	}
	if !p.IsValid() {
		return false, false, 0, fmt.Errorf("watch: invalid prefix %v", p)
	}
	p = p.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := saturate(t.units[a])
	ok = true
	added, units, err = t.add(a, p, func(cost uint64) bool {
		if cost > limit || cur > limit-cost {
			ok = false
			return false
		}
		return true
	})
	return added, ok, units, err
}

func (t *Table) add(a Account, p netip.Prefix, allow func(cost uint64) bool) (bool, uint64, error) {
	v, exists := t.set.get(p)
	if exists && t.has(v, a) {
		return false, 0, nil
	}
	d := t.delta(a, p)
	cost := saturate(d)
	if !allow(cost) {
		return false, cost, nil
	}
	switch {
	case !exists:
		t.set.set(p, uint32(a))
	case v&multiBit == 0:
		set := []Account{Account(v), a}
		slices.Sort(set)
		t.set.set(p, t.newMulti(set))
	default:
		i := v &^ multiBit
		set := t.multi[i]
		j, _ := slices.BinarySearch(set, a)
		t.multi[i] = slices.Insert(set, j, a)
	}
	t.n++
	u := t.units[a]
	if u == nil {
		u = new(big.Int)
		t.units[a] = u
	}
	u.Add(u, d)
	return true, cost, nil
}

func (t *Table) newMulti(set []Account) uint32 {
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		t.multi[i] = set
		return i | multiBit
	}
	t.multi = append(t.multi, set)
	return uint32(len(t.multi)-1) | multiBit
}

// Remove forgets that account a watches p. It reports whether a watched
// it and the units that freed.
func (t *Table) Remove(a Account, p netip.Prefix) (removed bool, units uint64) {
	p = p.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.set.get(p)
	if !ok || !t.has(v, a) {
		return false, 0
	}
	// Take the entry out first: what it frees is what adding it back costs.
	t.drop(a, p, v)
	d := t.delta(a, p)
	u := t.units[a]
	u.Sub(u, d)
	if u.Sign() == 0 { // every entry counts at least one unit: none left
		delete(t.units, a)
	}
	return true, saturate(d)
}

// drop takes account a out of the entry p, whose payload v holds a.
func (t *Table) drop(a Account, p netip.Prefix, v uint32) {
	if v&multiBit == 0 {
		t.set.del(p)
	} else {
		i := v &^ multiBit
		set := t.multi[i]
		j, _ := slices.BinarySearch(set, a)
		set = slices.Delete(set, j, j+1)
		if len(set) == 1 {
			t.set.set(p, uint32(set[0]))
			t.multi[i] = nil
			t.free = append(t.free, i)
		} else {
			t.multi[i] = set
		}
	}
	t.n--
}

// RemoveAll forgets every entry of account a and returns how many there
// were. It walks the whole table once, under one write lock.
func (t *Table) RemoveAll(a Account) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ps []netip.Prefix
	var vs []uint32
	t.set.all(func(p netip.Prefix, v uint32) bool {
		if t.has(v, a) {
			ps, vs = append(ps, p), append(vs, v)
		}
		return true
	})
	for i, p := range ps {
		t.drop(a, p, vs[i])
	}
	delete(t.units, a) // nothing left to count
	return len(ps)
}

// Entries returns account a's entries in address order.
func (t *Table) Entries(a Account) []netip.Prefix {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var ps []netip.Prefix
	t.set.all(func(p netip.Prefix, v uint32) bool {
		if t.has(v, a) {
			ps = append(ps, p)
		}
		return true
	})
	return ps
}

// AppendEntriesIn appends account a's entries inside p (p included) to
// dst in address order and returns it. It walks only the table's entries
// inside p, not the whole table.
func (t *Table) AppendEntriesIn(dst []netip.Prefix, a Account, p netip.Prefix) []netip.Prefix {
	t.mu.RLock()
	defer t.mu.RUnlock()
	t.set.subnets(p.Masked(), func(w netip.Prefix, v uint32) bool {
		if t.has(v, a) {
			dst = append(dst, w)
		}
		return true
	})
	return dst
}

// unit returns the counting block of p: p itself for IPv4 and for IPv6
// up to /64, else its /64.
func unit(p netip.Prefix) netip.Prefix {
	if p.Addr().Is6() && p.Bits() > 64 {
		q, _ := p.Addr().Prefix(64)
		return q
	}
	return p
}

// size returns the units in a counting block.
func size(u netip.Prefix) *big.Int {
	host := 32 - u.Bits()
	if u.Addr().Is6() {
		host = 64 - u.Bits()
	}
	return new(big.Int).Lsh(big.NewInt(1), uint(host))
}

// delta returns the units p adds to what account a watches now (p itself
// not counted): 0 if a's entries cover p's counting block, else the block
// minus the parts a already covers inside it.
func (t *Table) delta(a Account, p netip.Prefix) *big.Int {
	u := unit(p)
	covered := false
	t.set.supernets(u, func(_ netip.Prefix, v uint32) bool {
		covered = t.has(v, a)
		return !covered
	})
	if covered {
		return new(big.Int)
	}
	d := size(u)
	var last netip.Prefix // a's last maximal entry inside u
	t.set.subnets(u, func(w netip.Prefix, v uint32) bool {
		if !t.has(v, a) {
			return true
		}
		wu := unit(w)
		if last.IsValid() && last.Overlaps(wu) {
			return true // natural order: a covering entry comes first
		}
		last = wu
		d.Sub(d, size(wu))
		return true
	})
	return d
}
