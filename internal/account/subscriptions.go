package account

// Outage subscriptions (issue 7): an account subscribes to countries,
// regions or ASNs; every outage alert of a subscribed entity becomes one
// row of the account's alerts table (kind "outage"), so the activity
// API, the digest and the webhook show blocklist and outage alerts on one
// timeline.
//
// An outage row uses the alert columns as follows: resource and watched
// are the entity as "type/code" (the subscription it matched), list is
// the datasource whose signal raised it, lists is empty, src_part is -1
// and src_offset the outage alert's id (so the table's unique key tells
// two outage alerts apart), res_first/res_last are empty (no IP filter
// matches them), published is 1 (outage alerts have their own topic,
// netwarden.alerts.outage; the blocklist relay never sees them), and
// outage holds the alert's details as JSON. outage_id, unique per
// account, makes delivery idempotent by alert id.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

func init() {
	migrate("0008_subscriptions",
		`CREATE TABLE subscriptions (
			account_id  BIGINT NOT NULL REFERENCES accounts(id),
			entity_type TEXT NOT NULL,
			entity_code TEXT NOT NULL,
			created     BIGINT NOT NULL,
			PRIMARY KEY (account_id, entity_type, entity_code)
		)`,
		`CREATE INDEX subscriptions_entity ON subscriptions (entity_type, entity_code, account_id)`,
		`ALTER TABLE alerts ADD COLUMN outage_id BIGINT`,
		`ALTER TABLE alerts ADD COLUMN outage TEXT`,
		`CREATE UNIQUE INDEX alerts_outage ON alerts (account_id, outage_id) WHERE outage_id IS NOT NULL`,
	)
}

// KindOutage marks an alert raised by an outage of a subscribed entity.
const KindOutage AlertKind = "outage"

// AlertType groups alert kinds: blocklist (listed, initial, cleared) or
// outage.
type AlertType string

// Alert types.
const (
	TypeBlocklist AlertType = "blocklist"
	TypeOutage    AlertType = "outage"
)

// blocklistKinds are the kinds of TypeBlocklist.
var blocklistKinds = []AlertKind{KindListed, KindInitial, KindCleared}

// Subscription is an account's interest in one entity's outages.
type Subscription struct {
	EntityType string    `json:"entity_type"` // country, region or asn
	EntityCode string    `json:"entity_code"` // canonical: "US", "3307", a region's geoname id
	Created    time.Time `json:"created"`
}

// Outage is what an outage alert row carries beyond the common columns:
// the outage alert (as on netwarden.alerts.outage) with its entity's name.
type Outage struct {
	ID           int64   `json:"id"` // the outage alert's id
	Datasource   string  `json:"datasource"`
	EntityType   string  `json:"entity_type"`
	EntityCode   string  `json:"entity_code"`
	EntityName   string  `json:"entity_name"`
	Time         int64   `json:"time"`  // unix seconds: first bin of the new level
	Level        string  `json:"level"` // normal, warning, critical
	Condition    string  `json:"condition"`
	Value        float64 `json:"value"`
	HistoryValue float64 `json:"historyValue"`
	Method       string  `json:"method"`
	Window       int64   `json:"window"` // seconds
}

// Entity is the outage's entity as "type/code".
func (o Outage) Entity() string { return o.EntityType + "/" + o.EntityCode }

// Subscribe subscribes account id to an entity (type and code already
// validated and canonical). It reports whether the subscription is new;
// subscribing again changes nothing. Beyond the plan's Subscriptions it
// is ErrInvalid.
func (s *Store) Subscribe(ctx context.Context, id ID, typ, code string) (Subscription, bool, error) {
	sub := Subscription{EntityType: typ, EntityCode: code, Created: s.now().UTC().Truncate(time.Second)}
	created := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := getAccount(ctx, tx, id)
		if err != nil {
			return err
		}
		var at int64
		err = tx.QueryRowContext(ctx, `SELECT created FROM subscriptions WHERE account_id = ? AND entity_type = ? AND entity_code = ?`, int64(id), typ, code).Scan(&at)
		if err == nil {
			sub.Created = time.Unix(at, 0).UTC()
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions WHERE account_id = ?`, int64(id)).Scan(&n); err != nil {
			return err
		}
		plan, _ := s.Plan(a.Plan)
		if n >= plan.Subscriptions {
			return fmt.Errorf("%w: plan %s allows %d subscriptions and the account has %d; remove one first", ErrInvalid, a.Plan, plan.Subscriptions, n)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (account_id, entity_type, entity_code, created) VALUES (?, ?, ?, ?)`,
			int64(id), typ, code, sub.Created.Unix()); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return Subscription{}, false, fmt.Errorf("subscribe account %d to %s/%s: %w", id, typ, short(code), err)
	}
	return sub, created, nil
}

// Unsubscribe removes account id's subscription; ErrNotFound when it
// has none to that entity.
func (s *Store) Unsubscribe(ctx context.Context, id ID, typ, code string) error {
	n, err := s.exec(ctx, `DELETE FROM subscriptions WHERE account_id = ? AND entity_type = ? AND entity_code = ?`, int64(id), typ, code)
	if err != nil {
		return fmt.Errorf("unsubscribe account %d from %s/%s: %w", id, typ, short(code), err)
	}
	if n == 0 {
		return fmt.Errorf("subscription to %s/%s: %w", typ, short(code), ErrNotFound)
	}
	return nil
}

// Subscriptions returns account id's subscriptions by type and code.
func (s *Store) Subscriptions(ctx context.Context, id ID) ([]Subscription, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT entity_type, entity_code, created FROM subscriptions WHERE account_id = ? ORDER BY entity_type, entity_code`, int64(id))
	if err != nil {
		return nil, fmt.Errorf("subscriptions of account %d: %w", id, err)
	}
	defer rows.Close()
	out := []Subscription{}
	for rows.Next() {
		var sub Subscription
		var at int64
		if err := rows.Scan(&sub.EntityType, &sub.EntityCode, &at); err != nil {
			return nil, fmt.Errorf("subscriptions of account %d: %w", id, err)
		}
		sub.Created = time.Unix(at, 0).UTC()
		out = append(out, sub)
	}
	return out, rows.Err()
}

// AddOutageAlerts stores, in one transaction, one alert row per outage
// alert and account subscribed to its entity at that moment, and returns
// how many rows it added. Rows already stored (the same account and
// outage alert id) are skipped, so delivering the same alerts again adds
// nothing.
func (s *Store) AddOutageAlerts(ctx context.Context, outages []Outage) (int, error) {
	added := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		subs, err := tx.PrepareContext(ctx, `SELECT account_id FROM subscriptions WHERE entity_type = ? AND entity_code = ? ORDER BY account_id`)
		if err != nil {
			return fmt.Errorf("prepare subscribers: %w", err)
		}
		defer subs.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO alerts (account_id, kind, status, created, detected, resource, res_first, res_last, watched, list, lists, src_part, src_offset, published, outage_id, outage)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', -1, ?, 1, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return fmt.Errorf("prepare outage alert insert: %w", err)
		}
		defer ins.Close()
		now := s.now().UnixMicro()
		for _, o := range outages {
			if o.ID < 1 {
				return fmt.Errorf("%w: outage alert id %d", ErrInvalid, o.ID)
			}
			detail, err := json.Marshal(o)
			if err != nil {
				return fmt.Errorf("encode outage alert %d: %w", o.ID, err)
			}
			ids, err := subscribers(ctx, subs, o.EntityType, o.EntityCode)
			if err != nil {
				return err
			}
			ent := o.Entity()
			for _, acct := range ids {
				res, err := ins.ExecContext(ctx, acct, string(KindOutage), string(StatusNew), time.Unix(o.Time, 0).UnixMicro(), now,
					ent, []byte{}, []byte{}, ent, o.Datasource, o.ID, o.ID, string(detail))
				if err != nil {
					return fmt.Errorf("insert outage alert %d for account %d: %w", o.ID, acct, err)
				}
				n, _ := res.RowsAffected()
				added += int(n)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store outage alerts: %w", err)
	}
	return added, nil
}

func subscribers(ctx context.Context, st *sql.Stmt, typ, code string) ([]int64, error) {
	rows, err := st.QueryContext(ctx, typ, code)
	if err != nil {
		return nil, fmt.Errorf("subscribers of %s/%s: %w", typ, short(code), err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
