// Package watchlist imports, lists and removes the IP addresses and CIDR
// blocks accounts watch (and those they mute), keeping the account
// database and the in-memory stream/watch tables the alert matcher reads
// in step.
//
// Contract:
//   - Load fills the watched and muted tables from the database; call it
//     once at start, before anything matches against them.
//   - Import reads a text body (one IP or CIDR per line, IPv4 and IPv6
//     mixed, blank lines and # comments ignored) or JSON
//     {"entries": [...]} as a stream. Each entry is added, already there
//     (duplicates, in the list or within the body), or rejected with a
//     reason: malformed, or (watchlist) it would take the account past its
//     plan's watched units, or (mutes) past Config.MaxMutes entries.
//     Counting: IPv4 counts addresses, IPv6 counts /64 blocks, overlaps
//     and duplicates once (package stream/watch).
//   - Entries are applied in batches of Config.Batch: a batch is decided
//     against the table, stored in one database transaction, and only
//     then visible to the hook. A batch whose write fails is taken back
//     out of the table; batches before it stay (the error says how many
//     entries were imported).
//   - The OnImport hook gets each stored batch of newly watched prefixes
//     (initial alerts for entries already listed). If it fails, the
//     import stops with its error: that batch stays imported, the
//     batches behind it are taken back.
//
// A Service is safe for concurrent use; writes are serialised (one batch
// at a time). It owns no goroutines.
package watchlist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/watch"
)

// Config is the `watchlist` section of the configuration.
type Config struct {
	// MaxImportBytes bounds one import body (default 512 MiB: ~30 M lines).
	MaxImportBytes int64 `yaml:"max_import_bytes"`
	// MaxMutes is the most muted entries per account (default 100,000).
	MaxMutes int `yaml:"max_mutes"`
	// Batch is how many entries one database transaction stores
	// (default 100,000).
	Batch int `yaml:"batch"`
	// MaxRejected is how many rejected lines an answer lists one by one;
	// the rest are only counted (default 10,000).
	MaxRejected int `yaml:"max_rejected"`
	// ImportTimeout bounds one import request, body and answer, in place
	// of http.read_timeout and http.write_timeout (default 10 min: an
	// import is applied while its body streams in).
	ImportTimeout time.Duration `yaml:"import_timeout"`
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.MaxImportBytes == 0 {
		c.MaxImportBytes = 512 << 20
	}
	if c.MaxMutes == 0 {
		c.MaxMutes = 100_000
	}
	if c.Batch == 0 {
		c.Batch = 100_000
	}
	if c.MaxRejected == 0 {
		c.MaxRejected = 10_000
	}
	if c.ImportTimeout == 0 {
		c.ImportTimeout = 10 * time.Minute
	}
}

// Validate checks c.
func (c Config) Validate() error {
	if c.MaxImportBytes < 1 || c.MaxMutes < 1 || c.Batch < 1 || c.MaxRejected < 1 || c.ImportTimeout <= 0 {
		return errors.New("watchlist.max_import_bytes, max_mutes, batch, max_rejected and import_timeout must be positive")
	}
	return nil
}

// Rejected is an entry that was not imported.
type Rejected struct {
	Number int    `json:"number"` // 1-based line (text) or element (JSON)
	Line   string `json:"line"`
	Reason string `json:"reason"`
}

// Result sums up an import.
type Result struct {
	Imported int        `json:"imported"` // entries newly in the list
	Already  int        `json:"already"`  // entries it held already (or repeated in the body)
	Rejected []Rejected `json:"rejected"` // at most Config.MaxRejected
	// RejectedTotal counts every rejected entry.
	RejectedTotal int `json:"rejected_total"`
}

// Usage is what an account uses of its plan's watchlist, mute and
// recipient limits.
type Usage struct {
	Watched         uint64 `json:"watched"` // counting units
	WatchedLimit    uint64 `json:"watched_limit"`
	WatchedEntries  int    `json:"watched_entries"`
	Mutes           int    `json:"mutes"` // entries
	MutesLimit      int    `json:"mutes_limit"`
	Recipients      int    `json:"recipients"`
	RecipientsLimit int    `json:"recipients_limit"`
}

// Store is the account database (account.Store).
type Store interface {
	AddEntries(ctx context.Context, l account.EntryList, id account.ID, ps []netip.Prefix, at time.Time) error
	RemoveEntry(ctx context.Context, l account.EntryList, id account.ID, p netip.Prefix) error
	RemoveEntries(ctx context.Context, l account.EntryList, id account.ID) (int64, error)
	Entries(ctx context.Context, l account.EntryList, id account.ID, offset, limit int) ([]account.Entry, error)
	Entry(ctx context.Context, l account.EntryList, id account.ID, p netip.Prefix) (account.Entry, error)
	EachEntry(ctx context.Context, l account.EntryList, fn func(account.ID, netip.Prefix) error) error
	Plan(name string) (account.Plan, bool)
	Settings(ctx context.Context, id account.ID) (account.Settings, error)
}

// Service keeps the watchlists and mutes.
type Service struct {
	cfg   Config
	store Store
	log   *slog.Logger
	now   func() time.Time
	lists map[account.EntryList]*list

	mu       sync.Mutex // serialises writes
	onImport Hook
}

type list struct {
	tab     *watch.Table
	n       map[account.ID]int // stored entries per account
	pending map[account.ID]int // in the table, not yet stored
}

// ErrBusy refuses a removal while an import into the same list of the
// same account is being written.
var ErrBusy = errors.New("an import into this list is in progress; retry when it has finished")

func (li *list) busy(id account.ID) error {
	if li.pending[id] > 0 {
		return fmt.Errorf("%w", ErrBusy)
	}
	return nil
}

// New returns a service over store that keeps watched and muted up to
// date. Call Load before use.
func New(cfg Config, store Store, watched, muted *watch.Table, log *slog.Logger) *Service {
	return &Service{
		cfg: cfg, store: store, log: log, now: time.Now,
		lists: map[account.EntryList]*list{
			account.Watchlist: {tab: watched, n: map[account.ID]int{}, pending: map[account.ID]int{}},
			account.Mutes:     {tab: muted, n: map[account.ID]int{}, pending: map[account.ID]int{}},
		},
	}
}

// Hook receives a stored batch of prefixes account id newly watches.
type Hook func(ctx context.Context, id account.ID, ps []netip.Prefix) error

// OnImport sets the hook that receives each stored batch of newly
// watched prefixes. Set it before serving.
func (s *Service) OnImport(fn Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onImport = fn
}

// MaxImportBytes is the configured bound of an import body.
func (s *Service) MaxImportBytes() int64 { return s.cfg.MaxImportBytes }

// ImportTimeout is the configured bound of an import request.
func (s *Service) ImportTimeout() time.Duration { return s.cfg.ImportTimeout }

// key converts an account id to the table's.
func key(id account.ID) (watch.Account, error) {
	if id < 0 || id >= 1<<31 {
		return 0, fmt.Errorf("%w: account %d", watch.ErrAccount, id)
	}
	return watch.Account(id), nil
}

func (s *Service) list(l account.EntryList) (*list, error) {
	li, ok := s.lists[l]
	if !ok {
		return nil, fmt.Errorf("%w: entry list %q", account.ErrInvalid, string(l))
	}
	return li, nil
}

// Load adds every stored watched and muted entry to the tables. Plan
// limits are not applied: what was imported stays watched after a
// downgrade. Reading rows and adding them to the table overlap (a
// goroutine owned by Load reads).
func (s *Service) Load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.now()
	type row struct {
		id account.ID
		p  netip.Prefix
	}
	const chunk = 4096
	for _, l := range []account.EntryList{account.Watchlist, account.Mutes} {
		li := s.lists[l]
		rows := make(chan []row, 4)
		rctx, stop := context.WithCancel(ctx)
		rerr := make(chan error, 1)
		go func() {
			defer close(rows)
			buf := make([]row, 0, chunk)
			err := s.store.EachEntry(rctx, l, func(id account.ID, p netip.Prefix) error {
				buf = append(buf, row{id, p})
				if len(buf) == chunk {
					select {
					case rows <- buf:
					case <-rctx.Done():
						return rctx.Err()
					}
					buf = make([]row, 0, chunk)
				}
				return nil
			})
			if err == nil && len(buf) > 0 {
				rows <- buf
			}
			rerr <- err
		}()
		var aerr error
		for rs := range rows {
			for _, r := range rs {
				if aerr != nil {
					break
				}
				a, err := key(r.id)
				if err == nil {
					var added bool
					added, _, err = li.tab.Add(a, r.p)
					if added {
						li.n[r.id]++
					}
				}
				if err != nil {
					aerr = fmt.Errorf("load %s entry %s of account %d: %w", l, r.p, r.id, err)
					stop() // the reader stops; rows drains
				}
			}
		}
		err := <-rerr
		stop()
		if aerr != nil {
			return aerr
		}
		if err != nil {
			return err
		}
	}
	s.log.Info("watchlists loaded", "watched", s.lists[account.Watchlist].tab.Len(), "muted", s.lists[account.Mutes].tab.Len(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Import adds the entries of body r (format f) to account a's list l.
// Malformed or over-limit entries are rejected, not errors; an error is
// a body that cannot be read (ErrSyntax, a read failure) or a failed
// write, and says how many entries were imported before it.
//
// Two stages overlap: while one batch is written to the database, the
// next is parsed and decided against the table. A failed write takes
// its batch and every decided batch behind it back out of the table.
func (s *Service) Import(ctx context.Context, a account.Account, l account.EntryList, r io.Reader, f Format) (Result, error) {
	li, err := s.list(l)
	if err != nil {
		return Result{}, err
	}
	ak, err := key(a.ID)
	if err != nil {
		return Result{}, err
	}
	var limit uint64 = math.MaxUint64
	if l == account.Watchlist {
		plan, ok := s.store.Plan(a.Plan)
		if !ok {
			return Result{}, fmt.Errorf("%w: account %d has unknown plan %q", account.ErrInvalid, a.ID, a.Plan)
		}
		limit = plan.Watched
	}
	res := Result{Rejected: []Rejected{}}
	decided := make(chan []netip.Prefix, 1)
	var imported int // written by the writer, read after it is done
	werr := make(chan error, 1)
	wctx, failed := context.WithCancel(ctx) // the writer failed: stop reading
	defer failed()
	go func() { werr <- s.write(ctx, failed, a.ID, ak, l, li, decided, &imported) }()
	rerr := func() error {
		defer close(decided)
		rd := newReader(r, f)
		batch := make([]line, 0, min(s.cfg.Batch, 4096))
		for {
			ln, ok, err := rd.next()
			if err != nil {
				return err
			}
			if ok {
				batch = append(batch, ln)
			}
			if len(batch) == s.cfg.Batch || (!ok && len(batch) > 0) {
				if wctx.Err() != nil {
					return nil // the writer's error (or ctx's) is reported
				}
				ps, err := s.decide(a, ak, l, li, limit, batch, &res)
				if err != nil {
					return err
				}
				decided <- ps
				batch = batch[:0]
			}
			if !ok {
				return nil
			}
		}
	}()
	err = <-werr
	res.Imported = imported
	if rerr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = rerr // the body's failure (e.g. a read deadline) cancelled the request
	}
	if err != nil {
		return res, fmt.Errorf("import into the %s of account %d after %d new entries: %w", l, a.ID, res.Imported, err)
	}
	return res, nil
}

func (s *Service) reject(res *Result, ln line, reason string) {
	res.RejectedTotal++
	if len(res.Rejected) < s.cfg.MaxRejected {
		res.Rejected = append(res.Rejected, Rejected{Number: ln.no, Line: ln.text, Reason: reason})
	}
}

// decide parses a batch and adds its new entries to the table (within
// limit units for the watchlist, Config.MaxMutes entries for mutes); it
// returns what it added.
func (s *Service) decide(a account.Account, ak watch.Account, l account.EntryList, li *list, limit uint64, batch []line, res *Result) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(batch))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range batch {
		p, err := ParseEntry(ln.text)
		if err != nil {
			s.reject(res, ln, err.Error())
			continue
		}
		if l == account.Mutes {
			if li.tab.Contains(ak, p) {
				res.Already++
				continue
			}
			if li.n[a.ID]+li.pending[a.ID] >= s.cfg.MaxMutes {
				s.reject(res, ln, fmt.Sprintf("the account already has the most muted entries allowed (%d)", s.cfg.MaxMutes))
				continue
			}
			if _, _, err := li.tab.Add(ak, p); err != nil {
				s.takeBackLocked(li, ak, ps)
				return nil, err
			}
			li.pending[a.ID]++
			ps = append(ps, p)
			continue
		}
		added, ok, units, err := li.tab.AddWithin(ak, p, limit)
		switch {
		case err != nil:
			s.takeBackLocked(li, ak, ps)
			return nil, err
		case !ok:
			s.reject(res, ln, fmt.Sprintf("over the plan's limit: it would add %d to the %d addresses watched, plan %s allows %d (IPv4 counts addresses, IPv6 counts /64s)",
				units, li.tab.Units(ak), a.Plan, limit))
		case !added:
			res.Already++
		default:
			li.pending[a.ID]++
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// takeBack removes decided but unwritten entries from the table.
func (s *Service) takeBack(li *list, ak watch.Account, ps []netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.takeBackLocked(li, ak, ps)
}

func (s *Service) takeBackLocked(li *list, ak watch.Account, ps []netip.Prefix) {
	id := account.ID(ak)
	for _, p := range ps {
		li.tab.Remove(ak, p)
	}
	li.pending[id] -= len(ps)
	if li.pending[id] == 0 {
		delete(li.pending, id)
	}
}

// write stores decided batches in order, one transaction each, and hands
// each stored watchlist batch to the hook. After a failure it takes the
// failed batch and every later one back out of the table.
func (s *Service) write(ctx context.Context, failed func(), id account.ID, ak watch.Account, l account.EntryList, li *list, decided <-chan []netip.Prefix, imported *int) error {
	var werr error
	for ps := range decided {
		if werr != nil || len(ps) == 0 {
			s.takeBack(li, ak, ps)
			continue
		}
		if err := s.store.AddEntries(ctx, l, id, ps, s.now()); err != nil {
			werr = err
			failed()
			s.takeBack(li, ak, ps)
			continue
		}
		s.mu.Lock()
		li.n[id] += len(ps)
		li.pending[id] -= len(ps)
		if li.pending[id] == 0 {
			delete(li.pending, id)
		}
		hook := s.onImport
		s.mu.Unlock()
		*imported += len(ps)
		if hook != nil && l == account.Watchlist {
			if err := hook(ctx, id, ps); err != nil {
				werr = fmt.Errorf("entries stored, but the import hook (initial alerts) failed: %w", err)
				failed()
			}
		}
	}
	if werr == nil {
		werr = ctx.Err()
	}
	return werr
}

// Remove deletes entry p (an IP or CIDR as ParseEntry reads it) from
// account a's list l: ErrNotFound if it has no such entry exactly.
func (s *Service) Remove(ctx context.Context, a account.Account, l account.EntryList, p netip.Prefix) error {
	li, err := s.list(l)
	if err != nil {
		return err
	}
	ak, err := key(a.ID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := li.busy(a.ID); err != nil {
		return err
	}
	if err := s.store.RemoveEntry(ctx, l, a.ID, p); err != nil {
		return err
	}
	if removed, _ := li.tab.Remove(ak, p); removed {
		li.n[a.ID]--
	}
	return nil
}

// RemoveAll deletes every entry of account a's list l and returns how
// many there were.
func (s *Service) RemoveAll(ctx context.Context, a account.Account, l account.EntryList) (int64, error) {
	li, err := s.list(l)
	if err != nil {
		return 0, err
	}
	ak, err := key(a.ID)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := li.busy(a.ID); err != nil {
		return 0, err
	}
	n, err := s.store.RemoveEntries(ctx, l, a.ID)
	if err != nil {
		return 0, err
	}
	li.tab.RemoveAll(ak)
	delete(li.n, a.ID)
	return n, nil
}

// Page is one page of an account's list.
type Page struct {
	Entries []account.Entry `json:"entries"`
	Page    int             `json:"page"`
	Items   int             `json:"items"`
	Total   int             `json:"total"`
}

// Entries returns page (1-based) of account a's list l, items entries a
// page, in address order (IPv4 first).
func (s *Service) Entries(ctx context.Context, a account.Account, l account.EntryList, page, items int) (Page, error) {
	li, err := s.list(l)
	if err != nil {
		return Page{}, err
	}
	if page < 1 || items < 1 {
		return Page{}, fmt.Errorf("%w: page and items must be positive", account.ErrInvalid)
	}
	if page > math.MaxInt32/items {
		return Page{}, fmt.Errorf("%w: page %d is past any list", account.ErrInvalid, page)
	}
	es, err := s.store.Entries(ctx, l, a.ID, (page-1)*items, items)
	if err != nil {
		return Page{}, err
	}
	s.mu.Lock()
	total := li.n[a.ID]
	s.mu.Unlock()
	return Page{Entries: es, Page: page, Items: items, Total: total}, nil
}

// Entry returns account a's entry p of list l (ErrNotFound if absent).
func (s *Service) Entry(ctx context.Context, a account.Account, l account.EntryList, p netip.Prefix) (account.Entry, error) {
	if _, err := s.list(l); err != nil {
		return account.Entry{}, err
	}
	return s.store.Entry(ctx, l, a.ID, p)
}

// Usage returns what account a uses of its plan's limits.
func (s *Service) Usage(ctx context.Context, a account.Account) (Usage, error) {
	ak, err := key(a.ID)
	if err != nil {
		return Usage{}, err
	}
	plan, _ := s.store.Plan(a.Plan)
	st, err := s.store.Settings(ctx, a.ID)
	if err != nil {
		return Usage{}, err
	}
	w := s.lists[account.Watchlist]
	s.mu.Lock()
	defer s.mu.Unlock()
	return Usage{
		Watched:         w.tab.Units(ak),
		WatchedLimit:    plan.Watched,
		WatchedEntries:  w.n[a.ID],
		Mutes:           s.lists[account.Mutes].n[a.ID],
		MutesLimit:      s.cfg.MaxMutes,
		Recipients:      len(st.Recipients),
		RecipientsLimit: plan.Recipients,
	}, nil
}
