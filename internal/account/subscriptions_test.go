package account

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSubscriptionsPlanLimitAndIsolation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	s := open(t, filepath.Join(t.TempDir(), "n.db"), clk, map[string]Plan{"TWO": {Watched: 1, Recipients: 1, HitsPerDay: 1, Subscriptions: 2}})
	defer s.Close()
	a, _, _ := s.Create(ctx, "a@example.com", "TWO", false)
	b, _, _ := s.Create(ctx, "b@example.com", "TWO", false)

	for _, tc := range []struct {
		typ, code string
		new       bool
		err       error
	}{
		{"country", "US", true, nil},
		{"asn", "3307", true, nil},
		{"country", "US", false, nil},            // again: unchanged, even at the limit
		{"region", "5128638", false, ErrInvalid}, // a third: over the plan's 2
	} {
		sub, created, err := s.Subscribe(ctx, a.ID, tc.typ, tc.code)
		if !errors.Is(err, tc.err) || (err == nil && (created != tc.new || sub.EntityCode != tc.code)) {
			t.Errorf("Subscribe(%s/%s) = %+v %v %v; want new=%v err=%v", tc.typ, tc.code, sub, created, err, tc.new, tc.err)
		}
	}
	if _, _, err := s.Subscribe(ctx, 99, "country", "US"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing account: %v", err)
	}
	// B sees none of A's, cannot remove them, and has its own budget.
	if got, err := s.Subscriptions(ctx, b.ID); err != nil || len(got) != 0 {
		t.Fatalf("B's subscriptions %v %v", got, err)
	}
	if err := s.Unsubscribe(ctx, b.ID, "country", "US"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("B removing A's: %v", err)
	}
	if _, created, err := s.Subscribe(ctx, b.ID, "country", "US"); err != nil || !created {
		t.Fatalf("B subscribing: %v %v", created, err)
	}
	got, err := s.Subscriptions(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sub := range got {
		names = append(names, sub.EntityType+"/"+sub.EntityCode)
	}
	if !slices.Equal(names, []string{"asn/3307", "country/US"}) {
		t.Fatalf("A's subscriptions %v", names)
	}
	if err := s.Unsubscribe(ctx, a.ID, "asn", "3307"); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.Subscribe(ctx, a.ID, "region", "5128638"); err != nil || !created {
		t.Fatalf("after removing one, a new one fits: %v %v", created, err)
	}
}

func TestOutageAlertsJoinTheActivityTable(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	s := open(t, filepath.Join(t.TempDir(), "n.db"), clk, nil)
	defer s.Close()
	a, _, _ := s.Create(ctx, "a@example.com", "DEVELOPER", false)
	b, _, _ := s.Create(ctx, "b@example.com", "DEVELOPER", false)
	for _, sub := range []struct {
		id        ID
		typ, code string
	}{{a.ID, "country", "US"}, {a.ID, "asn", "3307"}, {b.ID, "country", "US"}} {
		if _, _, err := s.Subscribe(ctx, sub.id, sub.typ, sub.code); err != nil {
			t.Fatal(err)
		}
	}
	// A blocklist alert of A's, older than the outages.
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := InsertAlerts(ctx, tx, []Alert{{Account: a.ID, Kind: KindListed, Created: t0, Detected: t0, Resource: "192.0.2.7", Watched: "192.0.2.0/24", List: "DSHIELD", Lists: []string{"DSHIELD"}, SourcePartition: 0, SourceOffset: 5}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out := func(id int64, typ, code, ds, level string, at time.Duration) Outage {
		return Outage{ID: id, Datasource: ds, EntityType: typ, EntityCode: code, EntityName: typ + " " + code, Time: t0.Add(at).Unix(),
			Level: level, Condition: "< historical * 0.5", Value: 40, HistoryValue: 100, Method: "median", Window: 86400}
	}
	batch := []Outage{
		out(1, "country", "US", "bgp", "critical", time.Hour),
		out(2, "asn", "3307", "ping-slash24", "warning", 2*time.Hour),
		out(3, "region", "5128638", "bgp", "critical", 3*time.Hour), // nobody subscribed
		out(4, "country", "US", "bgp", "normal", 4*time.Hour),
	}
	if n, err := s.AddOutageAlerts(ctx, batch); err != nil || n != 5 {
		t.Fatalf("added %d %v; want 5 (A: 1, 2, 4; B: 1, 4)", n, err)
	}
	// Delivered again (after a crash): nothing new.
	if n, err := s.AddOutageAlerts(ctx, batch[:2]); err != nil || n != 0 {
		t.Fatalf("re-delivery added %d %v", n, err)
	}
	if _, err := s.AddOutageAlerts(ctx, []Outage{{ID: 0, EntityType: "country", EntityCode: "US"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("alert without id: %v", err)
	}

	type row struct {
		typ      AlertType
		resource string
		outage   int64
	}
	list := func(id ID, f AlertFilter) []row {
		t.Helper()
		as, total, err := s.Alerts(ctx, id, f)
		if err != nil || total != len(as) {
			t.Fatalf("alerts %v (total %d of %d)", err, total, len(as))
		}
		var rows []row
		for _, al := range as {
			r := row{al.Type, al.Resource, 0}
			if al.Outage != nil {
				r.outage = al.Outage.ID
			}
			rows = append(rows, r)
		}
		return rows
	}
	for _, tc := range []struct {
		name string
		id   ID
		f    AlertFilter
		want []row
	}{
		{"one timeline, newest first", a.ID, AlertFilter{}, []row{{TypeOutage, "country/US", 4}, {TypeOutage, "asn/3307", 2}, {TypeOutage, "country/US", 1}, {TypeBlocklist, "192.0.2.7", 0}}},
		{"outage only", a.ID, AlertFilter{Type: TypeOutage}, []row{{TypeOutage, "country/US", 4}, {TypeOutage, "asn/3307", 2}, {TypeOutage, "country/US", 1}}},
		{"blocklist only", a.ID, AlertFilter{Type: TypeBlocklist}, []row{{TypeBlocklist, "192.0.2.7", 0}}},
		{"kind outage", a.ID, AlertFilter{Kind: KindOutage}, []row{{TypeOutage, "country/US", 4}, {TypeOutage, "asn/3307", 2}, {TypeOutage, "country/US", 1}}},
		{"list is the datasource", a.ID, AlertFilter{List: "ping-slash24"}, []row{{TypeOutage, "asn/3307", 2}}},
		{"ip filter never matches outages", a.ID, AlertFilter{IP: netip.MustParsePrefix("::/0")}, []row{{TypeBlocklist, "192.0.2.7", 0}}},
		{"ip filter v4", a.ID, AlertFilter{IP: netip.MustParsePrefix("0.0.0.0/0")}, []row{{TypeBlocklist, "192.0.2.7", 0}}},
		{"time window", a.ID, AlertFilter{From: t0.Add(90 * time.Minute), Until: t0.Add(3 * time.Hour)}, []row{{TypeOutage, "asn/3307", 2}}},
		{"B: its own rows of the same outages", b.ID, AlertFilter{}, []row{{TypeOutage, "country/US", 4}, {TypeOutage, "country/US", 1}}},
	} {
		if got := list(tc.id, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, _, err := s.Alerts(ctx, a.ID, AlertFilter{Type: "bogus"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad type: %v", err)
	}

	// Details survive the round trip; the rows are unreported (digest),
	// already "published" (their topic is netwarden.alerts.outage), and
	// acknowledgeable by their owner only.
	as, _, _ := s.Alerts(ctx, a.ID, AlertFilter{Type: TypeOutage, List: "ping-slash24"})
	got := as[0]
	if *got.Outage != batch[1] || got.Watched != "asn/3307" || got.Kind != KindOutage || got.Status != StatusNew ||
		!got.Created.Equal(t0.Add(2*time.Hour)) || len(got.Lists) != 0 || got.SourcePartition != -1 {
		t.Fatalf("stored outage alert %+v %+v", got, got.Outage)
	}
	if un, err := s.Unreported(ctx, a.ID, 10); err != nil || len(un) != 4 {
		t.Fatalf("unreported %d %v", len(un), err)
	}
	if pub, err := s.Unpublished(ctx, 10); err != nil || len(pub) != 1 || pub[0].Type != TypeBlocklist {
		t.Fatalf("unpublished %v %v: outage rows must not reach the blocklist topic", pub, err)
	}
	if _, err := s.Ack(ctx, b.ID, got.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("B acking A's outage alert: %v", err)
	}
	if acked, err := s.Ack(ctx, a.ID, got.ID); err != nil || acked.Status != StatusAcknowledged || acked.Outage == nil {
		t.Fatalf("ack %+v %v", acked, err)
	}
	// A subscription made later gets the alerts delivered after it only.
	c, _, _ := s.Create(ctx, "c@example.com", "DEVELOPER", false)
	if _, _, err := s.Subscribe(ctx, c.ID, "region", "5128638"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.AddOutageAlerts(ctx, []Outage{out(5, "region", "5128638", "ucsd-nt", "warning", 5*time.Hour)}); err != nil || n != 1 {
		t.Fatalf("new subscriber: %d %v", n, err)
	}
	if rows := list(c.ID, AlertFilter{}); !slices.Equal(rows, []row{{TypeOutage, "region/5128638", 5}}) {
		t.Fatalf("C's alerts %v", rows)
	}
}
