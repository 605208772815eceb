// Package notify tells accounts about their alerts: every interval (5
// minutes by default, at the interval's wall-clock boundaries) one
// digest per account bundling its unreported alerts, sent by e-mail to
// its recipients when e-mail is enabled (plain text and HTML, each IP
// linking to its dashboard page) and POSTed as signed JSON to its
// webhook when one is set. Alerts are stored whatever happens here.
//
// Delivery contract:
//   - A digest is retried with exponential backoff (notify.retry_min
//     doubling up to notify.retry_max) for as long as a channel fails
//     temporarily (network errors, SMTP 4xx, webhook 408/429/5xx); a
//     channel that succeeded is not repeated. The next digest of that
//     account waits until this one is done.
//   - Its alerts are marked reported (account.Store.MarkReported) only
//     once every active channel is done and at least one succeeded. A
//     channel that fails permanently (SMTP 5xx, webhook 3xx/4xx, a
//     refused private target) counts as done; if none succeeded the
//     alerts stay unreported and go into the next interval's digest.
//     Nothing is dropped: alerts are marked only after a delivery.
//   - Pending digests live in memory: after a restart the unreported
//     alerts are digested again, so a channel may see a digest twice
//     (at least once; the webhook's "id" and X-Netwarden-Delivery are
//     stable for the same alerts, for dedupe).
//   - Acknowledged alerts that were never reported are not listed in a
//     digest but marked reported with it (their status stays
//     acknowledged).
//
// Header injection: recipients are re-validated (bare addresses only),
// the subject is built from constants and numbers, and everything
// user-controlled goes into the encoded bodies only.
//
// Webhook signature: header X-Netwarden-Signature: t=<unix seconds>,
// v1=<hex HMAC-SHA256(secret, "<t>.<body>")>, with the account's
// webhook_secret; t is the attempt's time, so receivers can refuse old
// or replayed deliveries.
//
// Time comes from an injectable Clock (tests drive it by hand).
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sync/errgroup"

	"github.com/netwarden/netwarden/internal/account"
)

// Sentinels.
var (
	// ErrNotConfigured: no SMTP server is configured (notify.smtp.host).
	ErrNotConfigured = errors.New("e-mail is not configured on this server (notify.smtp.host)")
	// ErrDelivery: the mail server or webhook did not take the message.
	ErrDelivery = errors.New("delivery failed")
	// ErrPrivateTarget: a webhook would reach a private or loopback
	// address and notify.allow_private_webhooks is off.
	ErrPrivateTarget = errors.New("webhook target is a private, loopback or otherwise non-public address (notify.allow_private_webhooks is off)")
)

// errPermanent marks failures that retrying will not fix.
var errPermanent = errors.New("permanent failure")

// Clock tells time and waits; tests inject a manual one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Store is what the notifier needs of the account store (account.Store).
type Store interface {
	UnreportedAccounts(ctx context.Context) ([]account.ID, error)
	Get(ctx context.Context, id account.ID) (account.Account, error)
	Settings(ctx context.Context, id account.ID) (account.Settings, error)
	Unreported(ctx context.Context, id account.ID, limit int) ([]account.Alert, error)
	MarkReported(ctx context.Context, id account.ID, ids []int64) error
}

// Option configures a Notifier.
type Option func(*Notifier)

// WithClock sets the clock (tests).
func WithClock(c Clock) Option { return func(n *Notifier) { n.clock = c } }

// Notifier sends the digests. Run owns its loop; TestEmail and
// CheckWebhookURL are safe to call concurrently with it.
type Notifier struct {
	cfg   Config
	store Store
	clock Clock
	log   *slog.Logger
	http  *http.Client

	pending map[account.ID]*digest // owned by Run's goroutine
	// passed, when set (tests), is called after every pass of Run.
	passed func(now time.Time)

	warnOnce sync.Once

	testMu   sync.Mutex
	lastTest map[account.ID]time.Time // test e-mails, for notify.test_email_every
}

// New makes a Notifier; cfg must be validated.
func New(cfg Config, store Store, log *slog.Logger, opts ...Option) *Notifier {
	n := &Notifier{cfg: cfg, store: store, clock: realClock{}, log: log, pending: map[account.ID]*digest{}, lastTest: map[account.ID]time.Time{}}
	for _, o := range opts {
		o(n)
	}
	n.http = n.webhookClient()
	return n
}

// digest is one account's notification in flight.
type digest struct {
	acct   account.Account
	alerts []account.Alert // listed (not acknowledged)
	ids    []int64         // marked reported on delivery (acknowledged too)

	mailDone, hookDone bool // channel finished (succeeded or failed permanently)
	delivered          bool // some channel succeeded
	attempt            int
	next               time.Time
	lastErr            error
}

// Run sends digests until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	next := n.nextTick(n.clock.Now())
	for {
		wake := next
		for _, d := range n.pending {
			if d.next.Before(wake) {
				wake = d.next
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.clock.After(wake.Sub(n.clock.Now())):
		}
		now := n.clock.Now()
		if !now.Before(next) {
			if err := n.collect(ctx, now); err != nil && ctx.Err() == nil {
				n.log.Warn("collect digests", "err", err)
			}
			next = n.nextTick(now)
		}
		n.deliverDue(ctx, now)
		if n.passed != nil {
			n.passed(now)
		}
	}
}

// nextTick is the first interval boundary after now.
func (n *Notifier) nextTick(now time.Time) time.Time {
	return now.Truncate(n.cfg.Interval).Add(n.cfg.Interval)
}

// channels says which channels an account's settings turn on.
func (n *Notifier) channels(st account.Settings) (mail, hook bool) {
	mail = st.EmailEnabled && len(st.Recipients) > 0 && n.cfg.SMTP.Host != ""
	if st.EmailEnabled && len(st.Recipients) > 0 && n.cfg.SMTP.Host == "" {
		n.warnOnce.Do(func() {
			n.log.Warn("accounts have e-mail enabled but no SMTP server is configured (notify.smtp.host); their alerts stay unreported")
		})
	}
	return mail, st.WebhookURL != ""
}

// collect starts a digest for every account with unreported alerts and
// no digest in flight.
func (n *Notifier) collect(ctx context.Context, now time.Time) error {
	ids, err := n.store.UnreportedAccounts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if _, busy := n.pending[id]; busy {
			continue
		}
		st, err := n.store.Settings(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m, h := n.channels(st); !m && !h {
			continue // alerts are kept, unreported, until a channel is on
		}
		acct, err := n.store.Get(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		alerts, err := n.store.Unreported(ctx, id, n.cfg.MaxAlerts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d := &digest{acct: acct, next: now}
		for _, a := range alerts {
			d.ids = append(d.ids, a.ID)
			if a.Status != account.StatusAcknowledged {
				d.alerts = append(d.alerts, a)
			}
		}
		if len(d.ids) == 0 {
			continue
		}
		if len(d.alerts) == 0 { // only acknowledged ones: nothing to tell
			d.mailDone, d.hookDone, d.delivered = true, true, true
		}
		n.pending[id] = d
	}
	return errors.Join(errs...)
}

// deliverDue attempts every digest whose time has come.
func (n *Notifier) deliverDue(ctx context.Context, now time.Time) {
	var due []*digest
	for _, d := range n.pending {
		if !d.next.After(now) {
			due = append(due, d)
		}
	}
	g := new(errgroup.Group)
	g.SetLimit(n.cfg.Workers)
	for _, d := range due {
		g.Go(func() error {
			n.attempt(ctx, d, now)
			return nil
		})
	}
	_ = g.Wait() // attempts record their own errors
	for _, d := range due {
		switch {
		case ctx.Err() != nil:
		case d.mailDone && d.hookDone && d.delivered:
			if err := n.store.MarkReported(ctx, d.acct.ID, d.ids); err != nil {
				n.log.Warn("mark digest reported", "account", d.acct.ID, "err", err)
				d.next = now.Add(n.cfg.RetryMin)
				continue
			}
			delete(n.pending, d.acct.ID)
		case d.mailDone && d.hookDone: // every channel failed for good
			n.log.Warn("digest not delivered; its alerts stay unreported for the next one", "account", d.acct.ID, "alerts", len(d.ids), "err", d.lastErr)
			delete(n.pending, d.acct.ID)
		default:
			d.attempt++
			d.next = now.Add(n.backoff(d.attempt))
			n.log.Warn("digest delivery failed; retrying", "account", d.acct.ID, "attempt", d.attempt, "retry_at", d.next, "err", d.lastErr)
		}
	}
}

func (n *Notifier) backoff(attempt int) time.Duration {
	b := n.cfg.RetryMin
	for i := 1; i < attempt && b < n.cfg.RetryMax; i++ {
		b *= 2
	}
	return min(b, n.cfg.RetryMax)
}

// attempt tries d's unfinished channels once, with the account's current
// settings (a channel turned off since counts as done).
func (n *Notifier) attempt(ctx context.Context, d *digest, now time.Time) {
	st, err := n.store.Settings(ctx, d.acct.ID)
	if err != nil {
		d.lastErr = err
		return
	}
	m, h := n.channels(st)
	if !m {
		d.mailDone = true
	}
	if !h {
		d.hookDone = true
	}
	if !d.mailDone {
		err := n.sendDigestMail(ctx, d, st.Recipients, now)
		d.mailDone, d.lastErr = n.finished(err, d, "e-mail")
	}
	if !d.hookDone {
		err := n.postWebhook(ctx, d, st, now)
		done, herr := n.finished(err, d, "webhook")
		d.hookDone = done
		if herr != nil {
			d.lastErr = herr
		}
	}
}

// finished classifies a channel's result: done (succeeded or failed for
// good) and the error to report.
func (n *Notifier) finished(err error, d *digest, channel string) (bool, error) {
	result := "retry"
	defer func() {
		metrics.GetOrCreateCounter(fmt.Sprintf(`netwarden_notify_deliveries_total{channel=%q,result=%q}`, channel, result)).Inc()
	}()
	switch {
	case err == nil:
		result = "ok"
		d.delivered = true
		n.log.Info("digest sent", "account", d.acct.ID, "channel", channel, "alerts", len(d.alerts))
		return true, nil
	case errors.Is(err, errPermanent):
		result = "failed"
		n.log.Warn("digest refused for good", "account", d.acct.ID, "channel", channel, "err", err)
		return true, err
	}
	return false, err
}
