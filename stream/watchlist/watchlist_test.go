package watchlist

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/watch"
)

func openStore(t *testing.T, path string) *account.Store {
	t.Helper()
	cfg := account.Config{Path: path}
	cfg.Defaults()
	st, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newService(t *testing.T, st *account.Store, cfg Config) (*Service, *watch.Table, *watch.Table) {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w, m := watch.New(), watch.New()
	s := New(cfg, st, w, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, w, m
}

func create(t *testing.T, st *account.Store, email, plan string) account.Account {
	t.Helper()
	a, _, err := st.Create(context.Background(), email, plan, false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "192.0.2.1", want: "192.0.2.1/32"},
		{in: " 192.0.2.0/24 ", want: "192.0.2.0/24"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "2001:db8::/48", want: "2001:db8::/48"},
		{in: "::ffff:192.0.2.7", want: "192.0.2.7/32"},
		{in: "::ffff:192.0.2.0/120", want: "192.0.2.0/24"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "192.0.2.1/24", err: "host bits set below /24 (the block is 192.0.2.0/24)"},
		{in: "192.0.2.256", err: "not an IP address or CIDR block"},
		{in: "example.com", err: "not an IP address or CIDR block"},
		{in: "192.0.2.0/33", err: "not an IP address or CIDR block"},
		{in: "fe80::1%eth0", err: "IPv6 zones are not allowed"},
		{in: "::ffff:0.0.0.0/95", err: "an IPv4-mapped block shorter than /96 is not IPv4"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseEntry(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseEntry(%q) = %v, %v; want error %q", tc.in, p, err, tc.err)
				}
				return
			}
			if err != nil || p.String() != tc.want {
				t.Fatalf("ParseEntry(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
			}
		})
	}
}

// TestImport imports a mixed text body into a FREE account (256 units)
// and checks the answer, the table, the database (after a reload into
// fresh tables) and the hook.
func TestImport(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "netwarden.db")
	st := openStore(t, path)
	s, w, _ := newService(t, st, Config{Batch: 3}) // small batches: several transactions
	a := create(t, st, "a@example.com", "FREE")
	var hooked []netip.Prefix
	s.OnImport(func(_ context.Context, id account.ID, ps []netip.Prefix) error {
		if id != a.ID {
			t.Errorf("hook for account %d, want %d", id, a.ID)
		}
		hooked = append(hooked, ps...)
		return nil
	})
	body := "\ufeff# our ranges\n" +
		"192.0.2.0/25\n" + // 128
		"\n" +
		"192.0.2.7   # inside the /25: new entry, no units\n" +
		"2001:db8::/64\n" + // 1
		"2001:db8::1\n" + // inside that /64: 0
		"2001:db8:1::/63\n" + // 2
		"192.0.2.0/25\n" + // duplicate
		"not-an-ip\n" +
		"198.51.100.1/24\n" + // host bits
		"198.51.100.0/25\n" + // 128 more: 259 > 256
		"198.51.100.0/26\n" + // 64 more: 195
		"203.0.113.0/26\n" + // 64 more: 259
		"203.0.113.0/30\n" // 4 more: 199
	res, err := s.Import(ctx, a, account.Watchlist, strings.NewReader(body), Text)
	if err != nil {
		t.Fatal(err)
	}
	wantRej := []Rejected{
		{9, "not-an-ip", "not an IP address or CIDR block"},
		{10, "198.51.100.1/24", "host bits set below /24 (the block is 198.51.100.0/24)"},
		{11, "198.51.100.0/25", "over the plan's limit: it would add 128 to the 131 addresses watched, plan FREE allows 256 (IPv4 counts addresses, IPv6 counts /64s)"},
		{13, "203.0.113.0/26", "over the plan's limit: it would add 64 to the 195 addresses watched, plan FREE allows 256 (IPv4 counts addresses, IPv6 counts /64s)"},
	}
	if res.Imported != 7 || res.Already != 1 || res.RejectedTotal != 4 || !slices.Equal(res.Rejected, wantRej) {
		t.Fatalf("result %+v\nwant imported 7, already 1, rejected %+v", res, wantRej)
	}
	want := []string{"192.0.2.0/25", "192.0.2.7/32", "198.51.100.0/26", "203.0.113.0/30", "2001:db8::/64", "2001:db8::1/128", "2001:db8:1::/63"}
	if got := prefixStrings(hooked); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("hook got %v, want %v", got, want)
	}
	ak := watch.Account(a.ID)
	if u := w.Units(ak); u != 199 {
		t.Errorf("units %d, want 199", u)
	}
	// Pages in address order, IPv4 first.
	var listed []string
	for page := 1; ; page++ {
		pg, err := s.Entries(ctx, a, account.Watchlist, page, 3)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Total != 7 {
			t.Fatalf("total %d, want 7", pg.Total)
		}
		if len(pg.Entries) == 0 {
			break
		}
		for _, e := range pg.Entries {
			listed = append(listed, e.Prefix.String())
		}
	}
	if !slices.Equal(listed, want) {
		t.Errorf("listed %v\nwant %v", listed, want)
	}

	// Reopen: the database holds the same entries and counts.
	st.Close()
	st = openStore(t, path)
	defer st.Close()
	s2, w2, _ := newService(t, st, Config{})
	if u := w2.Units(ak); u != 199 {
		t.Errorf("after reload: units %d, want 199", u)
	}
	if got := prefixStrings(w2.Entries(ak)); !slices.Equal(got, want) {
		t.Errorf("after reload: entries %v, want %v", got, want)
	}
	u, err := s2.Usage(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if (u != Usage{Watched: 199, WatchedLimit: 256, WatchedEntries: 7, Mutes: 0, MutesLimit: 100_000, Recipients: 1, RecipientsLimit: 1}) {
		t.Errorf("usage %+v", u)
	}

	// Remove one, then the rest.
	if err := s2.Remove(ctx, a, account.Watchlist, netip.MustParsePrefix("192.0.2.0/25")); err != nil {
		t.Fatal(err)
	}
	if err := s2.Remove(ctx, a, account.Watchlist, netip.MustParsePrefix("192.0.2.0/25")); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("second remove: %v, want ErrNotFound", err)
	}
	if u := w2.Units(ak); u != 72 { // the /32 inside it now counts: 1+64+4 + 1+2
		t.Errorf("after remove: units %d, want 72", u)
	}
	if n, err := s2.RemoveAll(ctx, a, account.Watchlist); err != nil || n != 6 {
		t.Errorf("RemoveAll = %d, %v; want 6", n, err)
	}
	if w2.Len() != 0 || w2.Units(ak) != 0 {
		t.Errorf("after RemoveAll: %d entries, %d units", w2.Len(), w2.Units(ak))
	}
	if pg, err := s2.Entries(ctx, a, account.Watchlist, 1, 10); err != nil || len(pg.Entries) != 0 || pg.Total != 0 {
		t.Errorf("after RemoveAll: page %+v, %v", pg, err)
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestImportJSON(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "netwarden.db"))
	defer st.Close()
	s, w, _ := newService(t, st, Config{})
	a := create(t, st, "a@example.com", "DEVELOPER")
	for _, tc := range []struct {
		name, body string
		imported   int
		rejected   []Rejected
		err        string
	}{
		{name: "ok", body: `{"entries": ["192.0.2.1", "", "2001:db8::/56", "bad"]}`, imported: 2,
			rejected: []Rejected{{4, "bad", "not an IP address or CIDR block"}}},
		{name: "empty", body: `{"entries": []}`},
		{name: "not-json", body: `192.0.2.1`, err: `malformed list: expected {"entries": ["192.0.2.1", "2001:db8::/48", ...]}: got 192 where "{" belongs`},
		{name: "other-field", body: `{"ips": ["192.0.2.1"]}`, err: "unknown field ips"},
		{name: "number", body: `{"entries": [1]}`, err: "entry 1 must be a string, not number"},
		{name: "cut", body: `{"entries": ["192.0.2.9"`, err: "the JSON ends too early"},
		{name: "trailing", body: `{"entries": []} x`, err: "trailing data after the object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Import(ctx, a, account.Watchlist, strings.NewReader(tc.body), JSON)
			if tc.err != "" {
				if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want ErrSyntax containing %q", err, tc.err)
				}
				return
			}
			if err != nil || res.Imported != tc.imported || !slices.Equal(res.Rejected, append([]Rejected{}, tc.rejected...)) {
				t.Fatalf("got %+v, %v; want imported %d, rejected %v", res, err, tc.imported, tc.rejected)
			}
		})
	}
	if got := w.Units(watch.Account(a.ID)); got != 1+256 {
		t.Errorf("units %d, want %d", got, 1+256)
	}
}

func TestTextLineTooLong(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "netwarden.db"))
	defer st.Close()
	s, _, _ := newService(t, st, Config{})
	a := create(t, st, "a@example.com", "DEVELOPER")
	body := "192.0.2.1\n" + strings.Repeat("x", maxLine+10) + "\n"
	_, err := s.Import(context.Background(), a, account.Watchlist, strings.NewReader(body), Text)
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "line 2 is longer than 4096 bytes") || !strings.Contains(err.Error(), "after 0 new entries") {
		t.Fatalf("err %v", err)
	}
}

func TestMutes(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "netwarden.db"))
	defer st.Close()
	s, w, m := newService(t, st, Config{MaxMutes: 3})
	a := create(t, st, "a@example.com", "FREE")
	hooked := 0
	s.OnImport(func(context.Context, account.ID, []netip.Prefix) error { hooked++; return nil })
	res, err := s.Import(ctx, a, account.Mutes, strings.NewReader("10.0.0.0/8\n10.0.0.0/8\n2001:db8::/32\n192.0.2.1\n192.0.2.2\n"), Text)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rejected{{5, "192.0.2.2", "the account already has the most muted entries allowed (3)"}}
	if res.Imported != 3 || res.Already != 1 || !slices.Equal(res.Rejected, want) {
		t.Fatalf("result %+v", res)
	}
	if hooked != 0 || w.Len() != 0 || m.Len() != 3 {
		t.Errorf("mutes touched the watchlist: hook %d, watched %d, muted %d", hooked, w.Len(), m.Len())
	}
	if !m.Contains(watch.Account(a.ID), netip.MustParsePrefix("10.0.0.0/8")) {
		t.Error("10.0.0.0/8 not muted")
	}
	if _, err := s.Entry(ctx, a, account.Mutes, netip.MustParsePrefix("2001:db8::/32")); err != nil {
		t.Error(err)
	}
	if _, err := s.Entry(ctx, a, account.Watchlist, netip.MustParsePrefix("2001:db8::/32")); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("mute visible in the watchlist: %v", err)
	}
}

// TestIsolation: two accounts watching the same prefix; removing it from
// one leaves the other's.
func TestIsolation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "netwarden.db"))
	defer st.Close()
	s, w, _ := newService(t, st, Config{})
	a := create(t, st, "a@example.com", "FREE")
	b := create(t, st, "b@example.com", "FREE")
	for _, acc := range []account.Account{a, b} {
		if _, err := s.Import(ctx, acc, account.Watchlist, strings.NewReader("192.0.2.0/24\n"), Text); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, a, account.Watchlist, netip.MustParsePrefix("192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveAll(ctx, a, account.Watchlist); err != nil {
		t.Fatal(err)
	}
	ms := w.AppendMatches(nil, netip.MustParsePrefix("192.0.2.9/32"))
	if len(ms) != 1 || ms[0].Account != watch.Account(b.ID) {
		t.Fatalf("matches %v, want only account %d", ms, b.ID)
	}
	if pg, _ := s.Entries(ctx, b, account.Watchlist, 1, 10); pg.Total != 1 || len(pg.Entries) != 1 {
		t.Errorf("b's page %+v", pg)
	}
}

// TestFailedWriteTakesBack: when the database write fails, the batch
// leaves the table as it was.
func TestFailedWriteTakesBack(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "netwarden.db"))
	s, w, _ := newService(t, st, Config{Batch: 1}) // later batches are decided while the first fails
	a := create(t, st, "a@example.com", "DEVELOPER")
	if _, err := s.Import(ctx, a, account.Watchlist, strings.NewReader("192.0.2.1\n"), Text); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err := s.Import(ctx, a, account.Watchlist, strings.NewReader("198.51.100.1\n198.51.100.2\n198.51.100.3\n198.51.100.4\n"), Text)
	if err == nil || !strings.Contains(err.Error(), "after 0 new entries") {
		t.Fatalf("import on a closed database: %v", err)
	}
	if got := prefixStrings(w.Entries(watch.Account(a.ID))); !slices.Equal(got, []string{"192.0.2.1/32"}) || w.Units(watch.Account(a.ID)) != 1 {
		t.Errorf("table after the failed write: %v, %d units", got, w.Units(watch.Account(a.ID)))
	}
}

// TestConcurrentImports: imports into two accounts from four goroutines
// at once (small batches, so their decisions and writes interleave) end
// with the union of their entries, in the table and in the database.
func TestConcurrentImports(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "netwarden.db")
	st := openStore(t, path)
	s, w, _ := newService(t, st, Config{Batch: 50})
	accts := []account.Account{create(t, st, "a@example.com", "ENTERPRISE"), create(t, st, "b@example.com", "ENTERPRISE")}
	bs := bodies(importAccounts * 1000) // bodies of 1,000 lines
	want := watch.New()
	done := make(chan error, 4)
	for g := range 4 {
		a := accts[g%2]
		body := bs[g]
		for _, ln := range strings.Fields(body) {
			p, err := ParseEntry(ln)
			if err != nil {
				t.Fatal(err)
			}
			want.Add(watch.Account(a.ID), p)
		}
		go func() {
			_, err := s.Import(ctx, a, account.Watchlist, strings.NewReader(body), Text)
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	st.Close()
	st = openStore(t, path)
	defer st.Close()
	_, reloaded, _ := newService(t, st, Config{})
	for _, a := range accts {
		k := watch.Account(a.ID)
		exp := prefixStrings(want.Entries(k))
		if got := prefixStrings(w.Entries(k)); !slices.Equal(got, exp) {
			t.Errorf("account %d: table has %d entries, want %d", a.ID, len(got), len(exp))
		}
		if got := prefixStrings(reloaded.Entries(k)); !slices.Equal(got, exp) {
			t.Errorf("account %d: database has %d entries, want %d", a.ID, len(got), len(exp))
		}
		if w.Units(k) != want.Units(k) || reloaded.Units(k) != want.Units(k) {
			t.Errorf("account %d: units %d (reloaded %d), want %d", a.ID, w.Units(k), reloaded.Units(k), want.Units(k))
		}
	}
}

// TestHookFails: a failing hook stops the import with its error; its
// batch stays imported, the ones behind it are taken back.
func TestHookFails(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "netwarden.db"))
	defer st.Close()
	s, w, _ := newService(t, st, Config{Batch: 2})
	a := create(t, st, "a@example.com", "DEVELOPER")
	calls := 0
	s.OnImport(func(context.Context, account.ID, []netip.Prefix) error {
		calls++
		return errors.New("live state unavailable")
	})
	res, err := s.Import(ctx, a, account.Watchlist, strings.NewReader("192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.4\n192.0.2.5\n"), Text)
	if err == nil || !strings.Contains(err.Error(), "after 2 new entries: entries stored, but the import hook (initial alerts) failed: live state unavailable") {
		t.Fatalf("err %v", err)
	}
	if calls != 1 || res.Imported != 2 {
		t.Errorf("hook called %d times, %d imported; want 1, 2", calls, res.Imported)
	}
	if got := prefixStrings(w.Entries(watch.Account(a.ID))); !slices.Equal(got, []string{"192.0.2.1/32", "192.0.2.2/32"}) {
		t.Errorf("table after the failed hook: %v", got)
	}
	if pg, err := s.Entries(ctx, a, account.Watchlist, 1, 10); err != nil || pg.Total != 2 || len(pg.Entries) != 2 {
		t.Errorf("stored after the failed hook: %+v %v", pg, err)
	}
	// Removal works again once the import is over.
	if _, err := s.RemoveAll(ctx, a, account.Watchlist); err != nil {
		t.Error(err)
	}
}
