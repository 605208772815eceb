// Package subscribe joins outage alerts to the accounts subscribed to
// their entities: Tap implements outage.Tap, turning every stored outage
// alert into one activity row (account.Alert of kind outage) per account
// subscribed to the alert's country, region or ASN at delivery time.
// From there the alerts follow the blocklist alerts' path: GET /v1/alerts
// (type=outage), the notifier's digest e-mail and webhook, and the
// dashboard's Alerts page.
//
// Contract: OnOutageAlerts stores the rows of one call in one SQLite
// transaction and returns only once they are durable; it is idempotent by
// outage alert id (an account gets one row per alert however often the
// alert is delivered), so the outage service may deliver again after a
// crash. An error (database failure) is returned to the service, which
// stops (fail-stop) and delivers the same alerts on restart. Entity codes
// are canonicalized with the entity registry before matching (AS3307 →
// 3307, us → US, a region's ISO code → its geoname id), as subscriptions
// are when made through the API; the alert carries the entity's name
// from the registry.
package subscribe

import (
	"context"
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/stream/outage"
)

// Store stores the activity rows (account.Store).
type Store interface {
	AddOutageAlerts(ctx context.Context, outages []account.Outage) (int, error)
}

// Entities names and canonicalizes entities (entity.Registry).
type Entities interface {
	Lookup(typ, code string) (entity.Entity, error)
}

var (
	mAlerts = metrics.NewCounter(`netwarden_subscribe_outage_alerts_total`)
	mRows   = metrics.NewCounter(`netwarden_subscribe_activity_rows_total`)
)

// Tap is the outage.Tap of account subscriptions.
type Tap struct {
	store    Store
	entities Entities
}

var _ outage.Tap = (*Tap)(nil)

// New returns a Tap storing into store; entities may be nil (codes are
// then canonicalized by an empty registry and named by their code).
func New(store Store, entities Entities) *Tap {
	if entities == nil {
		entities = &entity.Registry{}
	}
	return &Tap{store: store, entities: entities}
}

// OnOutageAlerts stores one activity row per alert and subscribed
// account (see the package doc).
func (t *Tap) OnOutageAlerts(ctx context.Context, alerts []outage.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	out := make([]account.Outage, 0, len(alerts))
	for _, a := range alerts {
		o := Convert(a)
		// A code the registry rejects cannot have subscribers (the API
		// validates with the same registry): kept as sent, matching none.
		if e, err := t.entities.Lookup(a.EntityType, a.EntityCode); err == nil {
			o.EntityCode, o.EntityName = e.Code, e.Name
		}
		out = append(out, o)
	}
	n, err := t.store.AddOutageAlerts(ctx, out)
	if err != nil {
		return fmt.Errorf("subscriptions: %d outage alerts (ids %d..%d): %w", len(alerts), alerts[0].ID, alerts[len(alerts)-1].ID, err)
	}
	mAlerts.Add(len(alerts))
	mRows.Add(n)
	return nil
}

// Convert returns the activity-row form of a (entity name = its code).
func Convert(a outage.Alert) account.Outage {
	return account.Outage{
		ID: a.ID, Datasource: a.Datasource, EntityType: a.EntityType, EntityCode: a.EntityCode, EntityName: a.EntityCode,
		Time: a.Time, Level: a.Level.String(), Condition: a.Condition, Value: a.Value, HistoryValue: a.HistoryValue,
		Method: a.Method, Window: a.Window,
	}
}
