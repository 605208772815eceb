package outage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/stream/outage"
)

// TestEventsOverlapQuery: Store.Events returns exactly the events that
// overlap the range (started before until; ended after from, or
// ongoing), compared with a plain filter over every stored event, for
// events of durations from a minute to weeks and random ranges, with
// and without entity filters.
func TestEventsOverlapQuery(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "outage.db"))
	r := rand.New(rand.NewPCG(3, 4))
	const asOf = 10_000_000
	var evs []detect.Event
	for i := range 3000 {
		typ := []string{"country", "asn", "region"}[i%3]
		code := fmt.Sprint(i % 40)
		start := r.Int64N(asOf)
		dur := int64(60) << r.IntN(15) // 1 min .. 11 days
		dur += r.Int64N(dur)
		e := detect.Event{EntityType: typ, EntityCode: code, Start: start, Level: detect.Critical, Score: 1, Datasources: []string{detect.BGP}}
		if start+dur >= asOf || r.IntN(50) == 0 {
			e.Ongoing, e.Duration = true, asOf-start
		} else {
			e.End, e.Duration = start+dur, dur
		}
		evs = append(evs, e)
	}
	if err := store.BulkInsertEvents(context.Background(), evs, asOf); err != nil {
		t.Fatal(err)
	}
	all, err := store.Events(context.Background(), outage.Filter{From: -1 << 40, Until: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(evs) {
		t.Fatalf("%d events stored, want %d", len(all), len(evs))
	}
	for q := range 300 {
		from := r.Int64N(asOf)
		f := outage.Filter{From: from, Until: from + 1 + r.Int64N(int64(60)<<r.IntN(15))}
		switch q % 3 {
		case 1:
			f.EntityType = "asn"
		case 2:
			f.EntityType, f.EntityCode = "region", fmt.Sprint(2+3*r.IntN(13))
		}
		got, err := store.Events(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		var want []detect.Event
		for _, e := range all {
			if e.Start < f.Until && (e.Ongoing || e.End > f.From) &&
				(f.EntityType == "" || e.EntityType == f.EntityType) && (f.EntityCode == "" || e.EntityCode == f.EntityCode) {
				want = append(want, e)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%+v: %d events, want %d", f, len(got), len(want))
		}
	}
}
