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

func TestSettings(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	s := open(t, filepath.Join(t.TempDir(), "n.db"), clk, nil)
	defer s.Close()
	free, _, _ := s.Create(ctx, "free@example.com", "FREE", false)
	dev, _, _ := s.Create(ctx, "dev@example.com", "DEVELOPER", false)

	st, err := s.Settings(ctx, dev.ID)
	if err != nil || !st.EmailEnabled || !slices.Equal(st.Recipients, []string{"dev@example.com"}) || len(st.WebhookSecret) != 64 {
		t.Fatalf("defaults %+v %v", st, err)
	}
	secret := st.WebhookSecret
	st2, err := s.PutSettings(ctx, dev.ID, Settings{EmailEnabled: true, Recipients: []string{"a@example.com", "B@Example.com"}, WebhookURL: "https://hooks.example.com/x", NotifyCleared: true})
	if err != nil || st2.WebhookSecret != secret || !slices.Equal(st2.Recipients, []string{"a@example.com", "B@example.com"}) {
		t.Fatalf("put %+v %v", st2, err)
	}
	if got, _ := s.Settings(ctx, dev.ID); !got.NotifyCleared || got.WebhookURL != "https://hooks.example.com/x" || len(got.Recipients) != 2 {
		t.Fatalf("read back %+v", got)
	}
	for _, bad := range []Settings{
		{EmailEnabled: true, Recipients: []string{"a@example.com", "b@example.com", "c@example.com"}}, // DEVELOPER: 2
		{EmailEnabled: true, Recipients: []string{"x@example.com\r\nBcc: y@example.com"}},
		{EmailEnabled: true},
		{WebhookURL: "ftp://example.com/"},
		{WebhookURL: "https://user:pw@example.com/"},
		{WebhookURL: "/relative"},
	} {
		if _, err := s.PutSettings(ctx, dev.ID, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutSettings(%+v): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.PutSettings(ctx, free.ID, Settings{EmailEnabled: true, Recipients: []string{"other@example.com"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("FREE plan to another address: %v", err)
	}
	if _, err := s.PutSettings(ctx, free.ID, Settings{EmailEnabled: true, Recipients: []string{"free@example.com"}}); err != nil {
		t.Errorf("FREE plan to its own address: %v", err)
	}
	if _, err := s.Settings(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("settings of a missing account: %v", err)
	}
}

func TestAlertsStoreDedupeFilterIsolation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	s := open(t, filepath.Join(t.TempDir(), "n.db"), clk, nil)
	defer s.Close()
	a1, _, _ := s.Create(ctx, "one@example.com", "DEVELOPER", false)
	a2, _, _ := s.Create(ctx, "two@example.com", "DEVELOPER", false)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(acct ID, res, list string, off int64, at time.Duration) Alert {
		return Alert{Account: acct, Kind: KindListed, Created: t0.Add(at), Detected: t0.Add(at + time.Second), Resource: res, Watched: res, List: list, Lists: []string{list}, SourcePartition: 1, SourceOffset: off}
	}
	batch := []Alert{
		mk(a1.ID, "192.0.2.7", "DSHIELD", 10, time.Hour),
		mk(a1.ID, "198.51.100.0/24", "SPAMHAUS-DROP", 11, 2*time.Hour),
		mk(a1.ID, "2001:db8::1", "TOR-EXIT", 12, 3*time.Hour),
		mk(a2.ID, "192.0.2.7", "DSHIELD", 10, time.Hour),
	}
	var stored []Alert
	if err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if stored, err = InsertAlerts(ctx, tx, batch); err != nil {
			return err
		}
		return SetOffsets(ctx, tx, "alerts", map[int32]int64{1: 13})
	}); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 4 {
		t.Fatalf("stored %d", len(stored))
	}
	// The same batch again (a replay after a crash) stores nothing.
	if err := s.Tx(ctx, func(tx *sql.Tx) error {
		again, err := InsertAlerts(ctx, tx, batch)
		if len(again) != 0 {
			t.Errorf("replay stored %d", len(again))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if offs, err := s.Offsets(ctx, "alerts"); err != nil || offs[1] != 13 {
		t.Fatalf("offsets %v %v", offs, err)
	}
	list := func(id ID, f AlertFilter) []string {
		t.Helper()
		as, total, err := s.Alerts(ctx, id, f)
		if err != nil {
			t.Fatal(err)
		}
		if f.Items == 0 && len(as) != total {
			t.Fatalf("total %d, page of %d", total, len(as))
		}
		var out []string
		for _, a := range as {
			out = append(out, a.Resource)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		id   ID
		f    AlertFilter
		want []string
	}{
		{"newest first", a1.ID, AlertFilter{}, []string{"2001:db8::1", "198.51.100.0/24", "192.0.2.7"}},
		{"ip inside a listed CIDR", a1.ID, AlertFilter{IP: netip.MustParsePrefix("198.51.100.9/32")}, []string{"198.51.100.0/24"}},
		{"cidr over a listed ip", a1.ID, AlertFilter{IP: netip.MustParsePrefix("192.0.2.0/24")}, []string{"192.0.2.7"}},
		{"v6", a1.ID, AlertFilter{IP: netip.MustParsePrefix("2001:db8::/32")}, []string{"2001:db8::1"}},
		{"v4 does not match v6", a1.ID, AlertFilter{IP: netip.MustParsePrefix("0.0.0.0/0")}, []string{"198.51.100.0/24", "192.0.2.7"}},
		{"list", a1.ID, AlertFilter{List: "DSHIELD"}, []string{"192.0.2.7"}},
		{"time window", a1.ID, AlertFilter{From: t0.Add(90 * time.Minute), Until: t0.Add(150 * time.Minute)}, []string{"198.51.100.0/24"}},
		{"paging", a1.ID, AlertFilter{Items: 2, Page: 2}, []string{"192.0.2.7"}},
		{"other account", a2.ID, AlertFilter{}, []string{"192.0.2.7"}},
	} {
		if got := list(tc.id, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Ack: own alert yes, another account's is not found.
	mine := stored[0].ID
	if _, err := s.Ack(ctx, a2.ID, mine); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack of another account's alert: %v", err)
	}
	if a, err := s.Ack(ctx, a1.ID, mine); err != nil || a.Status != StatusAcknowledged {
		t.Fatalf("ack: %+v %v", a, err)
	}
	// Reported: new ones become reported, the acknowledged one stays.
	un, err := s.Unreported(ctx, a1.ID, 100)
	if err != nil || len(un) != 3 {
		t.Fatalf("unreported %d %v", len(un), err)
	}
	ids := []int64{un[0].ID, un[1].ID, un[2].ID}
	if err := s.MarkReported(ctx, a1.ID, ids); err != nil {
		t.Fatal(err)
	}
	if un, _ := s.Unreported(ctx, a1.ID, 100); len(un) != 0 {
		t.Fatalf("still unreported: %d", len(un))
	}
	as, _, _ := s.Alerts(ctx, a1.ID, AlertFilter{})
	for _, a := range as {
		want := StatusReported
		if a.ID == mine {
			want = StatusAcknowledged
		}
		if a.Status != want {
			t.Errorf("alert %d: %s, want %s", a.ID, a.Status, want)
		}
	}
	// Outbox.
	pub, err := s.Unpublished(ctx, 10)
	if err != nil || len(pub) != 4 {
		t.Fatalf("unpublished %d %v", len(pub), err)
	}
	if err := s.MarkPublished(ctx, []int64{pub[0].ID}); err != nil {
		t.Fatal(err)
	}
	if pub, _ := s.Unpublished(ctx, 10); len(pub) != 3 {
		t.Fatalf("unpublished after mark: %d", len(pub))
	}
}
