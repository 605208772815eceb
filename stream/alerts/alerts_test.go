package alerts_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/watch"
)

type want struct {
	acct                    account.ID
	kind                    account.AlertKind
	res, watched, list, lst string
}

func (w want) String() string {
	return strings.Join([]string{string(rune('0' + w.acct)), string(w.kind), w.res, w.watched, w.list, w.lst}, " ")
}

func got(a account.Alert) want {
	return want{a.Account, a.Kind, a.Resource, a.Watched, a.List, strings.Join(a.Lists, ",")}
}

func watchAll(t *testing.T, tab *watch.Table, id account.ID, ps ...string) {
	t.Helper()
	for _, s := range ps {
		if _, _, err := tab.Add(watch.Account(id), pfx(s)); err != nil {
			t.Fatal(err)
		}
	}
}

func checkAlerts(t *testing.T, p *pipeline, ids []account.ID, wants []want) []account.Alert {
	t.Helper()
	all := p.allAlerts(ids...)
	var gs []string
	for _, a := range all {
		gs = append(gs, got(a).String())
	}
	var ws []string
	for _, w := range wants {
		ws = append(ws, w.String())
	}
	slices.Sort(gs)
	slices.Sort(ws)
	if !slices.Equal(gs, ws) {
		t.Fatalf("stored alerts:\n  %s\nwant:\n  %s", strings.Join(gs, "\n  "), strings.Join(ws, "\n  "))
	}
	return all
}

// TestMatchStoreAndPublish runs changes through the real broker,
// processor and store and checks the stored alerts (both-way matching,
// one alert per account however many entries match, mutes, duplicates,
// cleared opt-in, lists at the moment) and the published records.
func TestMatchStoreAndPublish(t *testing.T) {
	ctx := context.Background()
	watched, muted := watch.New(), watch.New()
	p := startPipeline(t, watched, muted)
	a, b, c := p.account("a@example.com"), p.account("b@example.com"), p.account("c@example.com")
	watchAll(t, watched, a, "192.0.2.0/24", "192.0.2.7", "2001:db8::/48")
	watchAll(t, watched, b, "192.0.2.7", "198.51.100.128/25")
	watchAll(t, watched, c, "203.0.113.0/24")
	watchAll(t, muted, c, "203.0.113.64/26")
	if _, err := p.accounts.PutSettings(ctx, a, account.Settings{EmailEnabled: true, Recipients: []string{"a@example.com"}, NotifyCleared: true}); err != nil {
		t.Fatal(err)
	}

	p.produce(
		chg(change.Add, "L1", "192.0.2.7", 100),
		chg(change.Add, "L2", "192.0.2.7", 101),
		chg(change.Add, "L1", "192.0.2.7", 102), // duplicate: no alert
		chg(change.Add, "L3", "198.51.100.0/24", 103),
		chg(change.Add, "L3", "2001:db8:0:1::/64", 104),
		chg(change.Add, "L3", "203.0.113.70", 105), // muted for c
		chg(change.Add, "L3", "203.0.113.5", 106),
		chg(change.Add, "L3", "203.0.113.0/24", 107), // wider than the mute
		chg(change.Add, "L3", "10.9.9.9", 108),       // nobody watches it
		change.Change{Time: time.Unix(109, 0), Op: change.Add, List: "L3", Key: resource.Resource{Kind: resource.Domain, Name: "example.com"}.Key()},
	)
	listed := []want{
		{a, account.KindListed, "192.0.2.7", "192.0.2.7", "L1", "L1"},
		{b, account.KindListed, "192.0.2.7", "192.0.2.7", "L1", "L1"},
		{a, account.KindListed, "192.0.2.7", "192.0.2.7", "L2", "L1,L2"},
		{b, account.KindListed, "192.0.2.7", "192.0.2.7", "L2", "L1,L2"},
		{b, account.KindListed, "198.51.100.0/24", "198.51.100.128/25", "L3", "L3"},
		{a, account.KindListed, "2001:db8:0:1::/64", "2001:db8::/48", "L3", "L3"},
		{c, account.KindListed, "203.0.113.5", "203.0.113.0/24", "L3", "L3"},
		{c, account.KindListed, "203.0.113.0/24", "203.0.113.0/24", "L3", "L3"},
	}
	// Lists are read after the whole consumed batch: the L1 alerts may
	// already see L2 when both records came in one batch (relax).
	checkLists := func() {
		t.Helper()
		for _, al := range p.allAlerts(a, b, c) {
			if !slices.Contains(al.Lists, al.List) {
				t.Errorf("alert %d lists %v lack its own list %s", al.ID, al.Lists, al.List)
			}
		}
	}
	checkLists()
	relax := func(ws []want) []want { // the L1 alerts: "L1" or "L1,L2"
		out := slices.Clone(ws)
		for _, al := range p.allAlerts(a, b, c) {
			for i := range out {
				if out[i].acct == al.Account && out[i].list == "L1" && out[i].res == al.Resource && al.List == "L1" {
					out[i].lst = strings.Join(al.Lists, ",")
				}
			}
		}
		return out
	}
	checkAlerts(t, p, []account.ID{a, b, c}, relax(listed))

	// Leaving one of two lists clears nothing; leaving the last clears
	// for a (notify_cleared) only.
	p.produce(chg(change.Rem, "L1", "192.0.2.7", 200))
	checkAlerts(t, p, []account.ID{a, b, c}, relax(listed))
	p.produce(chg(change.Rem, "L2", "192.0.2.7", 201))
	final := append(relax(listed), want{a, account.KindCleared, "192.0.2.7", "192.0.2.7", "L2", ""})
	checkAlerts(t, p, []account.ID{a, b, c}, final)

	// A listed prefix inside a watched CIDR leaving: cleared for a (the
	// overlap, the /64, is on no list). For c (notify_cleared too): .5
	// leaving clears nothing while the covering /24 is listed; the /24
	// leaving clears nothing while .70 inside it is listed (muted or
	// not); .70 leaving is muted for c.
	if _, err := p.accounts.PutSettings(ctx, c, account.Settings{EmailEnabled: true, Recipients: []string{"c@example.com"}, NotifyCleared: true}); err != nil {
		t.Fatal(err)
	}
	p.produce(chg(change.Rem, "L3", "2001:db8:0:1::/64", 300))
	p.produce(chg(change.Rem, "L3", "203.0.113.5", 301))
	p.produce(chg(change.Rem, "L3", "203.0.113.0/24", 302))
	p.produce(chg(change.Rem, "L3", "203.0.113.70", 303))
	final = append(final, want{a, account.KindCleared, "2001:db8:0:1::/64", "2001:db8::/48", "L3", ""})
	stored := checkAlerts(t, p, []account.ID{a, b, c}, final)

	// Every stored alert reaches the topic, keyed by account, as stored.
	evs := readTopic(t, p.brk, len(stored), 20*time.Second)
	if len(evs) != len(stored) {
		t.Fatalf("topic holds %d distinct alerts, store %d", len(evs), len(stored))
	}
	for _, al := range stored {
		e, ok := evs[al.ID]
		if !ok {
			t.Errorf("alert %d not published", al.ID)
			continue
		}
		if e.Account != int64(al.Account) || e.Kind != string(al.Kind) || e.Resource != al.Resource || e.Watched != al.Watched ||
			e.List != al.List || !slices.Equal(e.Lists, al.Lists) || !e.Created.Equal(al.Created) || e.Source == nil || e.Source.Offset != al.SourceOffset {
			t.Errorf("published %+v, stored %+v", e, al)
		}
	}
}

// TestInitialAlerts imports entries that are already listed.
func TestInitialAlerts(t *testing.T) {
	ctx := context.Background()
	watched, muted := watch.New(), watch.New()
	p := startPipeline(t, watched, muted)
	d := p.account("d@example.com")
	p.produce(
		chg(change.Add, "L3", "198.51.100.0/24", 100),
		chg(change.Add, "L4", "198.51.100.9", 101),
		chg(change.Add, "L3", "2001:db8:0:1::/64", 102),
		chg(change.Add, "L5", "203.0.113.9", 103),
		chg(change.Add, "L5", "203.0.113.99", 104),
	)
	watchAll(t, muted, d, "203.0.113.96/27")
	entries := []netip.Prefix{pfx("198.51.100.0/25"), pfx("2001:db8::/32"), pfx("203.0.113.0/24"), pfx("10.0.0.1")}
	for _, e := range entries {
		watched.Add(watch.Account(d), e)
	}
	for range 2 { // a second import of the same entries raises nothing new
		if err := p.alerter.Initial(ctx, d, entries); err != nil {
			t.Fatal(err)
		}
	}
	checkAlerts(t, p, []account.ID{d}, []want{
		{d, account.KindInitial, "198.51.100.0/25", "198.51.100.0/25", "L3", "L3"}, // covered by a listed /24
		{d, account.KindInitial, "198.51.100.9", "198.51.100.0/25", "L4", "L3,L4"}, // listed inside
		{d, account.KindInitial, "2001:db8:0:1::/64", "2001:db8::/32", "L3", "L3"}, // listed inside
		{d, account.KindInitial, "203.0.113.9", "203.0.113.0/24", "L5", "L5"},      // .99 is muted
	})
	if err := p.alerter.Initial(ctx, d, []netip.Prefix{{}}); err == nil {
		t.Error("an invalid prefix was accepted")
	}
}

// TestMutedEntryInsideListedCIDR: a listed CIDR covering several of an
// account's entries alerts through an unmuted one when the entry matching
// reports first is muted, and raises nothing when all are muted.
func TestMutedEntryInsideListedCIDR(t *testing.T) {
	watched, muted := watch.New(), watch.New()
	p := startPipeline(t, watched, muted)
	a, b := p.account("a@example.com"), p.account("b@example.com")
	watchAll(t, watched, a, "100.64.0.1", "100.64.0.9")
	watchAll(t, muted, a, "100.64.0.1")
	watchAll(t, watched, b, "100.64.0.2", "100.64.0.3")
	watchAll(t, muted, b, "100.64.0.2", "100.64.0.3")
	p.produce(chg(change.Add, "L1", "100.64.0.0/28", 100))
	checkAlerts(t, p, []account.ID{a, b}, []want{
		{a, account.KindListed, "100.64.0.0/28", "100.64.0.9", "L1", "L1"},
	})
}
