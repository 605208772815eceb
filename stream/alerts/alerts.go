// Package alerts turns list changes into alerts for the accounts that
// watch the listed addresses, stores them, and publishes them as JSON on
// the topic netwarden.alerts.blocklist.
//
// Matching. Every ADD of an IP resource (address or CIDR) is matched
// against the shared table of watched entries both ways (watch.Table):
// an added address inside a watched CIDR, an added CIDR that contains or
// overlaps watched entries. An account gets one alert per (listed
// resource, list, change) however many of its entries match; the alert
// names the entry it matched (its most specific entry containing the
// resource, else its first entry inside it). Domain and e-mail changes
// raise nothing. A change that did not change the live state (a
// duplicate event) raises nothing.
//
// Mutes. An account's mutes (a second watch.Table) silence alerts: an
// alert for listed resource R matched through watched entry W is
// silenced when one of the account's mutes contains the overlap of R and
// W (the more specific of the two). When R is a CIDR covering several of
// the account's entries and the reported one is muted, the account's
// other entries inside R are tried (a walk over the entries inside R,
// taken only in that case); the alert is silenced only if all are muted.
//
// Kinds. `listed` on an ADD; `cleared` (only for accounts whose settings
// have notify_cleared) on a REM after which the watched overlap is on no
// list at all, neither itself, nor through a covering prefix, nor through
// a listed resource inside it; `initial` for imported entries that are
// already listed (Initial, plugged into the watchlist import hook).
// "The lists the resource is on at that moment" are read from the live
// state right after the consumed batch that carried the change was
// applied (a listed alert always includes its own list).
//
// Exactly once. The alerts ride on the history processor's consumption
// (they implement processor.Tap): the processor hands over each batch
// after applying it to the live state and before its changes can reach
// history, and Applied commits the batch's alerts together with the
// batch's offsets (consumer "netwarden-alerts") in one SQLite
// transaction before returning. History's offsets therefore never pass
// the alert offsets: after a kill -9 the processor replays from its
// history offsets, Applied skips records below the stored alert offsets,
// and the store's unique key (account, resource, list, kind, source
// partition, source offset) absorbs any overlap — no alert is lost or
// doubled. Riding on the processor rather than running a second consumer
// group also gives exact duplicate detection and the live state at the
// change, which a second consumer racing the processor would not. The
// one approximation: whether a REM clears an address is decided on the
// state after its batch, so a crash can move that decision to a
// different batch boundary (the alert is then never stored twice, but a
// relisting inside the new batch can suppress it).
//
// Publishing. Run is an outbox relay: it produces stored alerts that are
// not yet published (oldest first, keyed by account id) and then marks
// them published. The topic is at-least-once (a crash between produce
// and mark republishes); every record carries the alert's stable id for
// consumers to drop repeats.
package alerts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/watch"
)

// Config configures alerting.
type Config struct {
	// Consumer names the stored offsets (default "netwarden-alerts").
	Consumer string `yaml:"consumer"`
	// PublishBatch is the most alerts produced per round (default 1000).
	PublishBatch int `yaml:"publish_batch"`
	// PublishRetry is the wait after a failed publish round (default 1 s).
	PublishRetry time.Duration `yaml:"publish_retry"`
	// InitialMax bounds the listed resources inside one imported entry
	// that raise initial alerts (default 10000); the rest are logged.
	InitialMax int `yaml:"initial_max"`
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Consumer == "" {
		c.Consumer = "netwarden-alerts"
	}
	if c.PublishBatch == 0 {
		c.PublishBatch = 1000
	}
	if c.PublishRetry == 0 {
		c.PublishRetry = time.Second
	}
	if c.InitialMax == 0 {
		c.InitialMax = 10_000
	}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case c.Consumer == "":
		return errors.New("alerts.consumer is empty")
	case c.PublishBatch < 1:
		return errors.New("alerts.publish_batch must be positive")
	case c.PublishRetry <= 0:
		return errors.New("alerts.publish_retry must be positive")
	case c.InitialMax < 1:
		return errors.New("alerts.initial_max must be positive")
	}
	return nil
}

// Store is the alert store (account.Store).
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	Offsets(ctx context.Context, consumer string) (map[int32]int64, error)
	Settings(ctx context.Context, id account.ID) (account.Settings, error)
	Unpublished(ctx context.Context, limit int) ([]account.Alert, error)
	MarkPublished(ctx context.Context, ids []int64) error
}

// Producer writes records to Kafka (a *kgo.Client).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

var (
	mRaised    = metrics.NewCounter(`netwarden_alerts_raised_total`)
	mMuted     = metrics.NewCounter(`netwarden_alerts_muted_total`)
	mPublished = metrics.NewCounter(`netwarden_alerts_published_total`)
	mPubErr    = metrics.NewCounter(`netwarden_alerts_publish_errors_total`)
)

// Alerter matches changes, stores alerts and publishes them.
type Alerter struct {
	cfg     Config
	store   Store
	watched *watch.Table
	muted   *watch.Table
	state   *live.State
	prod    Producer
	topic   string
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex      // guards offsets
	offsets map[int32]int64 // stored next offsets; nil until loaded

	kick chan struct{} // wakes the publisher
}

// Option configures New.
type Option func(*Alerter)

// WithClock sets the clock for detected times (tests).
func WithClock(now func() time.Time) Option { return func(a *Alerter) { a.now = now } }

// New makes an alerter. watched and muted are the shared tables the
// watchlist code keeps; state is the processor's live state; prod
// publishes to topic (nil: Run only waits).
func New(cfg Config, store Store, watched, muted *watch.Table, state *live.State, prod Producer, topic string, log *slog.Logger, opts ...Option) *Alerter {
	a := &Alerter{cfg: cfg, store: store, watched: watched, muted: muted, state: state, prod: prod, topic: topic, log: log,
		now: time.Now, kick: make(chan struct{}, 1)}
	for _, o := range opts {
		o(a)
	}
	return a
}

func (a *Alerter) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func accountOf(w watch.Account) account.ID { return account.ID(w) }

// Applied is the processor tap: it raises the alerts of a consumed batch
// (records recs, decoded ds, changed[i] whether ds[i] changed the live
// state, which already holds the whole batch) and commits them with the
// batch's offsets before returning. An error stops the processor before
// the batch can reach history.
func (a *Alerter) Applied(ctx context.Context, recs []*kgo.Record, ds []change.Decoded, changed []bool) error {
	ctx = context.WithoutCancel(ctx) // a shutdown must not abort the commit
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.offsets == nil {
		offs, err := a.store.Offsets(ctx, a.cfg.Consumer)
		if err != nil {
			return err
		}
		a.offsets = offs
	}
	next := map[int32]int64{}
	var out []account.Alert
	var ms []watch.Match
	detected := a.now().UTC()
	cleared := map[account.ID]bool{}
	for i, r := range recs {
		if stored, ok := a.offsets[r.Partition]; ok && r.Offset < stored {
			continue // its alerts are stored already
		}
		next[r.Partition] = r.Offset + 1
		d := ds[i]
		if !changed[i] || len(d.Key) == 0 || d.Key[0] != 'i' {
			continue
		}
		res, err := resource.FromKey(string(d.Key))
		if err != nil {
			continue
		}
		ms = a.watched.AppendMatches(ms[:0], res.Prefix)
		if len(ms) == 0 {
			continue
		}
		base := account.Alert{Created: time.UnixMicro(d.Micros).UTC(), Detected: detected, Resource: res.String(),
			List: string(d.List), SourcePartition: r.Partition, SourceOffset: r.Offset}
		var lists []string // the resource's lists, read once for all its listed alerts
		for _, m := range ms {
			w, ok := a.unmuted(m, res.Prefix)
			if !ok {
				mMuted.Inc()
				continue
			}
			al := base
			al.Account, al.Watched = accountOf(m.Account), prefixString(w)
			switch d.Op {
			case change.Add:
				if lists == nil {
					lists = withList(a.state.Lookup(res), al.List)
				}
				al.Kind, al.Lists = account.KindListed, lists
			case change.Rem:
				id := al.Account
				want, seen := cleared[id]
				if !seen {
					st, err := a.store.Settings(ctx, id)
					if err != nil {
						return fmt.Errorf("settings for cleared alerts: %w", err)
					}
					want = st.NotifyCleared
					cleared[id] = want
				}
				if !want || a.listed(overlap(res.Prefix, w)) {
					continue
				}
				al.Kind, al.Lists = account.KindCleared, []string{}
			default:
				continue
			}
			out = append(out, al)
		}
	}
	if len(out) == 0 {
		return nil // nothing to store; replaying these records raises nothing either
	}
	var stored []account.Alert
	err := a.store.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if stored, err = account.InsertAlerts(ctx, tx, out); err != nil {
			return err
		}
		return account.SetOffsets(ctx, tx, a.cfg.Consumer, next)
	})
	if err != nil {
		return fmt.Errorf("store %d alerts: %w", len(out), err)
	}
	for p, n := range next {
		a.offsets[p] = n
	}
	mRaised.Add(len(stored))
	a.wake()
	return nil
}

// unmuted returns the watched entry to report for match m of listed
// prefix p, and false when the account's mutes silence it.
func (a *Alerter) unmuted(m watch.Match, p netip.Prefix) (netip.Prefix, bool) {
	if a.muted == nil || a.muted.Len() == 0 {
		return m.Watched, true
	}
	if !a.isMuted(m.Account, overlap(p, m.Watched)) {
		return m.Watched, true
	}
	if m.Watched.Bits() <= p.Bits() {
		return m.Watched, false // the entry contains p: p is muted
	}
	// p covers several entries maybe: any unmuted one inside p alerts.
	for _, w := range a.watched.AppendEntriesIn(nil, m.Account, p) {
		if w.Bits() > p.Bits() && !a.isMuted(m.Account, w) {
			return w, true
		}
	}
	return m.Watched, false
}

// isMuted reports whether one of account acc's mutes contains x.
func (a *Alerter) isMuted(acc watch.Account, x netip.Prefix) bool {
	var buf [8]watch.Match
	for _, mm := range a.muted.AppendMatches(buf[:0], x) {
		if mm.Account == acc && mm.Watched.Bits() <= x.Bits() {
			return true
		}
	}
	// AppendMatches reports one entry per account (the most specific
	// containing one when there is one), so a miss above is final.
	return false
}

// listed reports whether anything listed overlaps x: x itself or a
// covering prefix, or a listed resource inside x.
func (a *Alerter) listed(x netip.Prefix) bool {
	r := resource.FromPrefix(x)
	if len(a.state.Lookup(r)) > 0 {
		return true
	}
	if x.IsSingleIP() {
		return false
	}
	_, n := a.state.Inside(x, 0, 0)
	return n > 0
}

// overlap returns the more specific of two overlapping prefixes.
func overlap(p, w netip.Prefix) netip.Prefix {
	if w.Bits() > p.Bits() {
		return w
	}
	return p
}

func prefixString(p netip.Prefix) string { return resource.FromPrefix(p).String() }

func withList(lists []string, l string) []string {
	if lists == nil {
		lists = []string{}
	}
	if i, ok := slices.BinarySearch(lists, l); !ok {
		lists = slices.Insert(lists, i, l)
	}
	return lists
}

// Initial raises `initial` alerts for entries account id has just
// started to watch that are already listed: the entry itself or a
// prefix covering it (one alert per list, resource = the entry), and
// every listed resource inside it (at most InitialMax per entry). It
// fits the watchlist import hook (OnImport); mutes apply as for changes.
// Initial alerts carry source partition and offset -1, so importing an
// entry again raises no second alert for the same resource and list.
func (a *Alerter) Initial(ctx context.Context, id account.ID, entries []netip.Prefix) error {
	now := a.now().UTC()
	acc := watch.Account(id)
	var out []account.Alert
	add := func(res resource.Resource, w netip.Prefix, lists, trig []string) {
		if a.muted != nil && a.isMuted(acc, overlap(res.Prefix, w)) {
			mMuted.Inc()
			return
		}
		for _, l := range trig {
			out = append(out, account.Alert{Account: id, Kind: account.KindInitial, Created: now, Detected: now,
				Resource: res.String(), Watched: prefixString(w), List: l, Lists: lists, SourcePartition: -1, SourceOffset: -1})
		}
	}
	for _, e := range entries {
		if !e.IsValid() {
			return fmt.Errorf("%w: initial alerts for prefix %v", account.ErrInvalid, e)
		}
		r := resource.FromPrefix(e)
		if lists := a.state.Lookup(r); len(lists) > 0 {
			add(r, r.Prefix, lists, lists)
		}
		if r.Prefix.IsSingleIP() {
			continue
		}
		inside, total := a.state.Inside(r.Prefix, 0, a.cfg.InitialMax)
		if total > len(inside) {
			a.log.Warn("initial alerts capped", "account", id, "entry", r.String(), "listed_inside", total, "alerted", len(inside))
		}
		for _, in := range inside {
			add(in.Resource, r.Prefix, a.state.Lookup(in.Resource), in.Lists)
		}
	}
	if len(out) == 0 {
		return nil
	}
	var stored []account.Alert
	err := a.store.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		stored, err = account.InsertAlerts(ctx, tx, out)
		return err
	})
	if err != nil {
		return fmt.Errorf("store %d initial alerts of account %d: %w", len(out), id, err)
	}
	mRaised.Add(len(stored))
	a.wake()
	return nil
}
