package subscribe

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/stream/outage"
)

const countriesCSV = "../../../shared/data/geo/country-codes.csv"

func registry(t *testing.T) *entity.Registry {
	t.Helper()
	if _, err := os.Stat(countriesCSV); err != nil {
		t.Skipf("shared data absent (%v): the tap names entities from the real country table", err)
	}
	r, err := entity.Load(entity.Config{CountriesCSV: countriesCSV})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openStore(t *testing.T) *account.Store {
	t.Helper()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "state", "netwarden.db")}
	cfg.Defaults()
	s, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func alert(id int64, ds, typ, code string, level detect.Level, value, history float64) outage.Alert {
	return outage.Alert{ID: id, Alert: detect.Alert{Datasource: ds, EntityType: typ, EntityCode: code, Time: 1_764_547_200 + id*300,
		Level: level, Condition: "< historical * 0.5", Value: value, HistoryValue: history, Method: "median", Window: 86400}}
}

type row struct {
	outage           int64
	entity, name, ds string
	level            string
}

func rows(t *testing.T, s *account.Store, id account.ID) []row {
	t.Helper()
	as, _, err := s.Alerts(context.Background(), id, account.AlertFilter{Type: account.TypeOutage})
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	for _, a := range as {
		out = append(out, row{a.Outage.ID, a.Resource, a.Outage.EntityName, a.List, a.Outage.Level})
	}
	slices.SortFunc(out, func(a, b row) int { return int(a.outage - b.outage) })
	return out
}

// TestTapOneRowPerSubscriberOnce: the tap turns outage alerts into rows
// of exactly the subscribed accounts, canonicalizing the alert's code the
// way the API canonicalizes subscriptions, naming the entity, and adding
// nothing when the same alerts are delivered again.
func TestTapOneRowPerSubscriberOnce(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	reg := registry(t)
	a, _, _ := s.Create(ctx, "a@example.com", "DEVELOPER", false)
	b, _, _ := s.Create(ctx, "b@example.com", "DEVELOPER", false)
	c, _, _ := s.Create(ctx, "c@example.com", "DEVELOPER", false)
	for _, sub := range []struct {
		id        account.ID
		typ, code string
	}{{a.ID, "country", "US"}, {a.ID, "asn", "3307"}, {b.ID, "country", "US"}, {c.ID, "country", "DE"}} {
		if _, _, err := s.Subscribe(ctx, sub.id, sub.typ, sub.code); err != nil {
			t.Fatal(err)
		}
	}
	tap := New(s, reg)
	batch := []outage.Alert{
		alert(1, "bgp", "country", "us", detect.Critical, 40, 100),
		alert(2, "ping-slash24", "asn", "AS3307", detect.Warning, 70, 100),
		alert(3, "bgp", "region", "5128638", detect.Critical, 1, 100), // nobody subscribed
		alert(4, "bgp", "country", "not a code", detect.Critical, 1, 100),
	}
	if err := tap.OnOutageAlerts(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Delivered again with one more (the service restarted before its
	// acknowledgement): only the new one is added.
	if err := tap.OnOutageAlerts(ctx, append(batch, alert(5, "bgp", "country", "US", detect.Normal, 100, 100))); err != nil {
		t.Fatal(err)
	}
	us := "United States of America"
	for _, tc := range []struct {
		who  string
		id   account.ID
		want []row
	}{
		{"A", a.ID, []row{{1, "country/US", us, "bgp", "critical"}, {2, "asn/3307", "AS3307", "ping-slash24", "warning"}, {5, "country/US", us, "bgp", "normal"}}},
		{"B", b.ID, []row{{1, "country/US", us, "bgp", "critical"}, {5, "country/US", us, "bgp", "normal"}}},
		{"C", c.ID, nil},
	} {
		if got := rows(t, s, tc.id); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v\nwant %v", tc.who, got, tc.want)
		}
	}
	// Details as the alert had them.
	as, _, _ := s.Alerts(ctx, a.ID, account.AlertFilter{List: "ping-slash24"})
	if o := as[0].Outage; o == nil || o.Value != 70 || o.HistoryValue != 100 || o.Condition != "< historical * 0.5" || o.Window != 86400 || o.Method != "median" || o.Time != batch[1].Time {
		t.Fatalf("stored details %+v", as[0].Outage)
	}
}

// TestTapFailStop: a store failure is returned (the outage service then
// stops and re-delivers), never swallowed.
func TestTapFailStop(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a, _, _ := s.Create(ctx, "a@example.com", "DEVELOPER", false)
	if _, _, err := s.Subscribe(ctx, a.ID, "country", "US"); err != nil {
		t.Fatal(err)
	}
	tap := New(s, nil)
	s.Close()
	if err := tap.OnOutageAlerts(ctx, []outage.Alert{alert(1, "bgp", "country", "US", detect.Critical, 1, 100)}); err == nil {
		t.Fatal("closed store: no error")
	}
}
