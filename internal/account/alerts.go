package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

func init() {
	migrate("0003_alerts",
		`CREATE TABLE alerts (
			id          INTEGER PRIMARY KEY,
			account_id  BIGINT NOT NULL REFERENCES accounts(id),
			kind        TEXT NOT NULL,
			status      TEXT NOT NULL,
			created     BIGINT NOT NULL,
			detected    BIGINT NOT NULL,
			resource    TEXT NOT NULL,
			res_first   BLOB NOT NULL,
			res_last    BLOB NOT NULL,
			watched     TEXT NOT NULL,
			list        TEXT NOT NULL,
			lists       TEXT NOT NULL,
			src_part    INTEGER NOT NULL,
			src_offset  BIGINT NOT NULL,
			reported    BIGINT,
			acked       BIGINT,
			published   INTEGER NOT NULL DEFAULT 0,
			UNIQUE (account_id, resource, list, kind, src_part, src_offset)
		)`,
		`CREATE INDEX alerts_account_created ON alerts (account_id, created)`,
		`CREATE INDEX alerts_unpublished ON alerts (published, id)`,
		`CREATE TABLE consumer_offsets (
			consumer TEXT NOT NULL,
			part     INTEGER NOT NULL,
			next     BIGINT NOT NULL,
			PRIMARY KEY (consumer, part)
		)`,
	)
}

// AlertKind says why an alert was raised.
type AlertKind string

// Alert kinds.
const (
	KindListed  AlertKind = "listed"  // a watched address entered a list
	KindInitial AlertKind = "initial" // it was already listed when imported
	KindCleared AlertKind = "cleared" // it left its last list (opt-in)
)

// AlertStatus is where an alert is in its life.
type AlertStatus string

// Alert statuses: new → reported (a notification carried it) → acknowledged.
const (
	StatusNew          AlertStatus = "new"
	StatusReported     AlertStatus = "reported"
	StatusAcknowledged AlertStatus = "acknowledged"
)

// Alert is one stored alert.
type Alert struct {
	ID      int64 `json:"id"`
	Account ID    `json:"account"`
	// Type is blocklist (kinds listed, initial, cleared) or outage (kind
	// outage); derived from Kind.
	Type     AlertType   `json:"type"`
	Kind     AlertKind   `json:"kind"`
	Status   AlertStatus `json:"status"`
	Created  time.Time   `json:"created"`  // the change's time
	Detected time.Time   `json:"detected"` // when netwarden matched it
	Resource string      `json:"resource"` // the listed address or CIDR
	Watched  string      `json:"watched"`  // the watched entry it matched
	List     string      `json:"list"`     // the list that triggered it
	Lists    []string    `json:"lists"`    // the lists the resource is on at that moment
	// Source is the change record that raised it (partition, offset) on
	// netwarden.changes; -1, -1 for alerts raised at import (initial).
	SourcePartition int32 `json:"source_partition"`
	SourceOffset    int64 `json:"source_offset"`
	// Published reports whether it went out on the alert topic.
	Published bool `json:"-"`
	// Outage is the outage alert of a kind-outage alert (nil otherwise);
	// see subscriptions.go for how the other fields are used then.
	Outage *Outage `json:"outage,omitempty"`
}

func addrRange(res string) (first, last []byte, err error) {
	p, err := netip.ParsePrefix(res)
	if err != nil {
		a, aerr := netip.ParseAddr(res)
		if aerr != nil {
			return nil, nil, fmt.Errorf("%w: alert resource %q", ErrInvalid, short(res))
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return rangeOf(p)
}

// rangeOf returns p's first and last address as 16-byte keys (IPv4
// mapped), which compare like the addresses.
func rangeOf(p netip.Prefix) (first, last []byte, err error) {
	if !p.IsValid() {
		return nil, nil, fmt.Errorf("%w: prefix %v", ErrInvalid, p)
	}
	p = p.Masked()
	f := netip.AddrFrom16(p.Addr().As16()).As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	l := f
	for i := bits; i < 128; i++ {
		l[i/8] |= 1 << (7 - i%8)
	}
	return f[:], l[:], nil
}

// InsertAlerts stores alerts in tx, skipping any already stored (the
// same account, resource, list, kind and source change), and returns the
// ones it stored with their ids. Callers commit tx together with the
// consumer offsets the alerts came from (SetOffsets), so a restart
// neither loses nor doubles an alert.
func InsertAlerts(ctx context.Context, tx *sql.Tx, alerts []Alert) ([]Alert, error) {
	var out []Alert
	st, err := tx.PrepareContext(ctx, `INSERT INTO alerts (account_id, kind, status, created, detected, resource, res_first, res_last, watched, list, lists, src_part, src_offset)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("prepare alert insert: %w", err)
	}
	defer st.Close()
	for _, a := range alerts {
		first, last, err := addrRange(a.Resource)
		if err != nil {
			return nil, err
		}
		if a.Status == "" {
			a.Status = StatusNew
		}
		res, err := st.ExecContext(ctx, int64(a.Account), string(a.Kind), string(a.Status), a.Created.UnixMicro(), a.Detected.UnixMicro(),
			a.Resource, first, last, a.Watched, a.List, strings.Join(a.Lists, ","), a.SourcePartition, a.SourceOffset)
		if err != nil {
			return nil, fmt.Errorf("insert alert: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // already stored
		}
		if a.ID, err = res.LastInsertId(); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Offsets returns consumer's stored next offsets per partition.
func (s *Store) Offsets(ctx context.Context, consumer string) (map[int32]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT part, next FROM consumer_offsets WHERE consumer = ?`, consumer)
	if err != nil {
		return nil, fmt.Errorf("read offsets of %s: %w", consumer, err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var p int32
		var n int64
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

// SetOffsets stores consumer's next offsets in tx.
func SetOffsets(ctx context.Context, tx *sql.Tx, consumer string, next map[int32]int64) error {
	for p, n := range next {
		if _, err := tx.ExecContext(ctx, `INSERT INTO consumer_offsets (consumer, part, next) VALUES (?, ?, ?)
			ON CONFLICT (consumer, part) DO UPDATE SET next = excluded.next`, consumer, p, n); err != nil {
			return fmt.Errorf("store offsets of %s: %w", consumer, err)
		}
	}
	return nil
}

// AlertFilter selects an account's alerts.
type AlertFilter struct {
	From, Until time.Time    // by created; zero = open
	Status      AlertStatus  // "" = any
	Kind        AlertKind    // "" = any
	Type        AlertType    // "" = any
	List        string       // "" = any
	IP          netip.Prefix // alerts whose resource overlaps it; invalid = any
	Page, Items int          // 1-based page of Items (default 1, 50)
}

const alertCols = `id, account_id, kind, status, created, detected, resource, watched, list, lists, src_part, src_offset, published, outage`

func scanAlert(sc interface{ Scan(...any) error }) (Alert, error) {
	var a Alert
	var created, detected int64
	var lists string
	var pub int
	var outage sql.NullString
	err := sc.Scan(&a.ID, &a.Account, &a.Kind, &a.Status, &created, &detected, &a.Resource, &a.Watched, &a.List, &lists, &a.SourcePartition, &a.SourceOffset, &pub, &outage)
	if err != nil {
		return a, err
	}
	a.Type = TypeBlocklist
	if a.Kind == KindOutage {
		a.Type = TypeOutage
	}
	if outage.Valid {
		a.Outage = new(Outage)
		if err := json.Unmarshal([]byte(outage.String), a.Outage); err != nil {
			return a, fmt.Errorf("alert %d: outage details: %w", a.ID, err)
		}
	}
	a.Created, a.Detected = time.UnixMicro(created).UTC(), time.UnixMicro(detected).UTC()
	a.Lists = []string{}
	if lists != "" {
		a.Lists = strings.Split(lists, ",")
	}
	a.Published = pub != 0
	return a, nil
}

// AlertCountCap bounds the total Alerts reports and how deep it pages:
// counting or skipping millions of an account's alerts on every page
// would cost a scan each. A total of AlertCountCap means "at least".
const AlertCountCap = 10_000

func init() {
	// The activity queries' access paths: each filter has an index that
	// starts with the account and ends with the order (created), and the
	// IP filter two index probes (see Alerts).
	migrate("0005_alert_query_indexes",
		`CREATE INDEX alerts_account_status ON alerts (account_id, status, created)`,
		`CREATE INDEX alerts_account_list ON alerts (account_id, list, created)`,
		`CREATE INDEX alerts_account_kind ON alerts (account_id, kind, created)`,
		`CREATE INDEX alerts_account_range ON alerts (account_id, res_first, res_last, created)`,
	)
}

// Alerts returns account id's alerts matching f, newest first, and how
// many match in all, counted up to AlertCountCap. Pages must start
// within the first AlertCountCap matches (ErrInvalid otherwise: narrow
// the filter, e.g. by time).
//
// The IP filter finds the alerts whose resource (an address or prefix)
// overlaps f.IP through the index on (account, first address): those
// whose first address lies inside f.IP, and those whose first address is
// f.IP's address masked to a shorter length and whose last address is
// at or past f.IP's last (they contain it) — at most 129 index probes.
func (s *Store) Alerts(ctx context.Context, id ID, f AlertFilter) ([]Alert, int, error) {
	if f.Page < 1 {
		f.Page = 1
	}
	if f.Items < 1 {
		f.Items = 50
	}
	if (f.Page-1)*f.Items >= AlertCountCap {
		return nil, 0, fmt.Errorf("%w: page %d of %d alerts starts past the first %d matches; narrow the filter (from, until)", ErrInvalid, f.Page, f.Items, AlertCountCap)
	}
	where := []string{}
	args := []any{}
	if !f.From.IsZero() {
		where, args = append(where, "created >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "created <= ?"), append(args, f.Until.UnixMicro())
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, string(f.Kind))
	}
	if f.List != "" {
		where, args = append(where, "list = ?"), append(args, f.List)
	}
	switch f.Type {
	case "":
	case TypeOutage:
		where, args = append(where, "kind = ?"), append(args, string(KindOutage))
	case TypeBlocklist:
		where = append(where, "kind IN (?, ?, ?)")
		for _, k := range blocklistKinds {
			args = append(args, string(k))
		}
	default:
		return nil, 0, fmt.Errorf("%w: alert type %q", ErrInvalid, short(string(f.Type)))
	}
	rest := strings.Join(where, " AND ")
	if rest != "" {
		rest = " AND " + rest
	}
	cond, cargs := "account_id = ?"+rest, append([]any{int64(id)}, args...)
	if f.IP.IsValid() {
		first, last, err := rangeOf(f.IP)
		if err != nil {
			return nil, 0, err
		}
		// Inside f.IP (or starting at it): one range probe.
		inside := "account_id = ? AND res_first >= ? AND res_first <= ?" + rest
		iargs := append([]any{int64(id), first, last}, args...)
		// Containing f.IP: first address = f.IP masked shorter.
		p := f.IP.Masked()
		var masks []any
		for b := 0; b < p.Bits(); b++ {
			q, _ := p.Addr().Prefix(b)
			mf, _, _ := rangeOf(q)
			masks = append(masks, mf)
		}
		cond, cargs = "("+inside+")", iargs
		if len(masks) > 0 {
			contain := "account_id = ? AND res_first IN (?" + strings.Repeat(", ?", len(masks)-1) + ") AND res_last >= ?" + rest
			cond = "(" + inside + ") OR (" + contain + ")"
			cargs = append(append(append(append(iargs, int64(id)), masks...), last), args...)
		}
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM alerts WHERE `+cond+` LIMIT ?)`, append(cargs, AlertCountCap)...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count alerts: %w", err)
	}
	// The page's ids come from the indexes alone (each holds created and
	// the row id); only the page's rows are read from the table.
	out, err := s.queryAlerts(ctx, "list alerts", `id IN (SELECT id FROM alerts WHERE `+cond+
		` ORDER BY created DESC, id DESC LIMIT ? OFFSET ?) ORDER BY created DESC, id DESC`,
		append(cargs, f.Items, (f.Page-1)*f.Items)...)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// queryAlerts returns the alerts matching where (the rest of a query
// after WHERE); what names the query in errors.
func (s *Store) queryAlerts(ctx context.Context, what, where string, args ...any) ([]Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// Alert returns account id's alert aid; ErrNotFound for another
// account's.
func (s *Store) Alert(ctx context.Context, id ID, aid int64) (Alert, error) {
	a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ? AND account_id = ?`, aid, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("alert %d: %w", aid, ErrNotFound)
	}
	return a, err
}

// Ack acknowledges account id's alert aid (idempotent).
func (s *Store) Ack(ctx context.Context, id ID, aid int64) (Alert, error) {
	_, err := s.exec(ctx, `UPDATE alerts SET status = ?, acked = ? WHERE id = ? AND account_id = ? AND status <> ?`,
		string(StatusAcknowledged), s.now().UnixMicro(), aid, int64(id), string(StatusAcknowledged))
	if err != nil {
		return Alert{}, fmt.Errorf("acknowledge alert %d: %w", aid, err)
	}
	return s.Alert(ctx, id, aid)
}

// Unreported returns account id's alerts that no notification has
// carried yet, oldest first, at most limit.
func (s *Store) Unreported(ctx context.Context, id ID, limit int) ([]Alert, error) {
	return s.queryAlerts(ctx, "unreported alerts", `account_id = ? AND reported IS NULL ORDER BY id LIMIT ?`, int64(id), limit)
}

// MarkReported records that a notification carried the alerts: new ones
// become reported (acknowledged ones stay so).
func (s *Store) MarkReported(ctx context.Context, id ID, ids []int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now().UnixMicro()
		for _, aid := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE alerts SET reported = ?, status = CASE WHEN status = ? THEN ? ELSE status END WHERE id = ? AND account_id = ? AND reported IS NULL`,
				now, string(StatusNew), string(StatusReported), aid, int64(id)); err != nil {
				return fmt.Errorf("mark alert %d reported: %w", aid, err)
			}
		}
		return nil
	})
}

// Unpublished returns alerts not yet on the alert topic, oldest first.
func (s *Store) Unpublished(ctx context.Context, limit int) ([]Alert, error) {
	return s.queryAlerts(ctx, "unpublished alerts", `published = 0 ORDER BY id LIMIT ?`, limit)
}

// MarkPublished records that the alerts are on the alert topic.
func (s *Store) MarkPublished(ctx context.Context, ids []int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, aid := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE alerts SET published = 1 WHERE id = ?`, aid); err != nil {
				return fmt.Errorf("mark alert %d published: %w", aid, err)
			}
		}
		return nil
	})
}
