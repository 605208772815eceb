package detect

import (
	"cmp"
	"slices"
)

// Event is an outage episode of one entity: from the first alert that takes one of its
// datasources out of normal to the alert that brings the last of them back.
type Event struct {
	EntityType  string   `json:"entity_type"`
	EntityCode  string   `json:"entity_code"`
	Start       int64    `json:"start"`
	End         int64    `json:"end,omitempty"` // 0 while ongoing
	Ongoing     bool     `json:"ongoing"`
	Duration    int64    `json:"duration"` // seconds; up to asOf while ongoing
	Level       Level    `json:"level"`    // worst level reached
	Score       float64  `json:"score"`
	Datasources []string `json:"datasources"` // that left normal during the episode, sorted
}

type entityKey struct{ typ, code string }

type dsRun struct {
	level Level
	since int64
	drop  float64
}

type episode struct {
	ev   Event
	runs map[string]dsRun // datasources currently out of normal
	ds   map[string]bool
}

// Events folds alerts into outage episodes per entity, merged across datasources.
// Alerts may come in any order; asOf ends the ongoing ones' duration and score.
//
// Score (IODA-style, grows with depth, duration and the number of datasources agreeing): the sum,
// over every datasource's interval out of normal, of the interval's drop (1 - value/historyValue
// of the alert that opened it, 1 when historyValue is 0) times its length in minutes. A level
// change within an interval (warning to critical) starts a new interval.
func Events(alerts []Alert, asOf int64) []Event {
	sorted := slices.Clone(alerts)
	slices.SortStableFunc(sorted, func(a, b Alert) int {
		// At the same time a datasource leaving normal comes before one returning: the episode goes on.
		return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(b.Level, a.Level))
	})
	open := map[entityKey]*episode{}
	var done []Event
	closeRun := func(ep *episode, ds string, at int64) {
		r := ep.runs[ds]
		ep.ev.Score += r.drop * float64(at-r.since) / 60
		delete(ep.runs, ds)
	}
	for _, a := range sorted {
		k := entityKey{a.EntityType, a.EntityCode}
		ep := open[k]
		if a.Level == Normal {
			if ep == nil {
				continue
			}
			if _, ok := ep.runs[a.Datasource]; !ok {
				continue
			}
			closeRun(ep, a.Datasource, a.Time)
			if len(ep.runs) == 0 {
				ep.ev.End, ep.ev.Duration = a.Time, a.Time-ep.ev.Start
				done = append(done, ep.finish())
				delete(open, k)
			}
			continue
		}
		if ep == nil {
			ep = &episode{
				ev:   Event{EntityType: a.EntityType, EntityCode: a.EntityCode, Start: a.Time},
				runs: map[string]dsRun{}, ds: map[string]bool{},
			}
			open[k] = ep
		}
		if _, ok := ep.runs[a.Datasource]; ok {
			closeRun(ep, a.Datasource, a.Time)
		}
		drop := 1.0
		if a.HistoryValue > 0 {
			drop = max(0, 1-a.Value/a.HistoryValue)
		}
		ep.runs[a.Datasource] = dsRun{level: a.Level, since: a.Time, drop: drop}
		ep.ds[a.Datasource] = true
		ep.ev.Level = max(ep.ev.Level, a.Level)
	}
	for _, ep := range open {
		for ds := range ep.runs {
			closeRun(ep, ds, max(asOf, ep.runs[ds].since))
		}
		ep.ev.Ongoing, ep.ev.Duration = true, max(0, asOf-ep.ev.Start)
		done = append(done, ep.finish())
	}
	slices.SortFunc(done, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.EntityType, b.EntityType), cmp.Compare(a.EntityCode, b.EntityCode))
	})
	return done
}

func (ep *episode) finish() Event {
	for ds := range ep.ds {
		ep.ev.Datasources = append(ep.ev.Datasources, ds)
	}
	slices.Sort(ep.ev.Datasources)
	return ep.ev
}
