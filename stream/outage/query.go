package outage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/netwarden/netwarden/detect"
)

// Filter selects alerts, events or signals: a time range [From, Until)
// and optional entity type, entity code (needs a type) and datasource.
type Filter struct {
	From, Until int64
	EntityType  string
	EntityCode  string
	Datasource  string
	Limit       int // 0: no limit
}

func (f Filter) where(timeCol string) (string, []any) {
	var conds []string
	var args []any
	if timeCol != "" {
		conds = append(conds, timeCol+" >= ? AND "+timeCol+" < ?")
		args = append(args, f.From, f.Until)
	}
	// Indexes: (time), (entity_type, time), (entity_type, entity_code,
	// time). A unary + keeps SQLite off the unique key for a datasource
	// filter (it would scan every alert of the datasource): the time
	// index is the selective one.
	if f.EntityType != "" {
		conds = append(conds, "entity_type = ?")
		args = append(args, f.EntityType)
	}
	if f.EntityCode != "" {
		conds = append(conds, "entity_code = ?")
		args = append(args, f.EntityCode)
	}
	if f.Datasource != "" {
		conds = append(conds, "+datasource = ?")
		args = append(args, f.Datasource)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

// Alerts returns the alerts whose time is in the range and that match
// the filter, oldest first.
func (s *Store) Alerts(ctx context.Context, f Filter) ([]Alert, error) {
	w, args := f.where("time")
	q := w + " ORDER BY time, id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	als, err := queryAlerts(ctx, s.db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query outage alerts: %w", err)
	}
	return als, nil
}

// AlertByID returns one alert (the bench's baseline lookup).
func (s *Store) AlertByID(ctx context.Context, id int64) (Alert, bool, error) {
	als, err := queryAlerts(ctx, s.db, `WHERE id = ?`, id)
	if err != nil || len(als) == 0 {
		return Alert{}, false, err
	}
	return als[0], true, nil
}

// Events returns the events that overlap the range [From, Until): ended
// ones that started before Until and ended after From, and ongoing ones
// that started before Until. Ongoing events' duration and score run up
// to the detector's watermark (event time). Datasource filters events
// in which that datasource left normal. Oldest first.
func (s *Store) Events(ctx context.Context, f Filter) ([]detect.Event, error) {
	var conds []string
	var args []any
	if f.EntityType != "" {
		conds = append(conds, " AND entity_type = ?") // index (entity_type, start), or the key with a code
		args = append(args, f.EntityType)
	}
	if f.EntityCode != "" {
		conds = append(conds, " AND entity_code = ?")
		args = append(args, f.EntityCode)
	}
	if f.Datasource != "" {
		conds = append(conds, " AND (',' || datasources || ',') LIKE ?")
		args = append(args, "%,"+f.Datasource+",%")
	}
	filter := strings.Join(conds, "")
	// Ended events overlapping the range started at most the longest
	// event's duration before it: a two-sided range on start. Ongoing
	// ones are found by their NULL end. The marks are read by the same
	// statement (one snapshot): read apart, a commit in between that
	// ends a long ongoing event would hide it from both branches.
	const cols = `SELECT entity_type, entity_code, start, end_time, level, score, datasources, ` +
		`coalesce((SELECT value FROM marks WHERE name = '` + markWatermark + `'), 0) FROM events `
	q := cols + `WHERE start >= ? - coalesce((SELECT value FROM marks WHERE name = '` + markMaxEvent + `'), 0) AND start < ? AND end_time > ?` + filter +
		` UNION ALL ` + cols + `INDEXED BY events_end WHERE end_time IS NULL AND start < ?` + filter +
		` ORDER BY start, entity_type, entity_code`
	all := append([]any{f.From, f.Until, f.From}, args...)
	all = append(append(all, f.Until), args...)
	args = all
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query outage events: %w", err)
	}
	defer rows.Close()
	var out []detect.Event
	var asOf int64
	for rows.Next() {
		var e detect.Event
		var end sql.NullInt64
		var lvl int
		var ds string
		if err := rows.Scan(&e.EntityType, &e.EntityCode, &e.Start, &end, &lvl, &e.Score, &ds, &asOf); err != nil {
			return nil, fmt.Errorf("query outage events: %w", err)
		}
		e.Level = detect.Level(lvl)
		e.Datasources = strings.Split(ds, ",")
		if end.Valid {
			e.End, e.Duration = end.Int64, end.Int64-e.Start
		} else {
			e.Ongoing, e.Duration = true, max(0, asOf-e.Start)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query outage events: %w", err)
	}
	// An ongoing event's stored score was computed at its last alert:
	// bring it to the watermark.
	for i, e := range out {
		if !e.Ongoing {
			continue
		}
		als, err := queryAlerts(ctx, s.db, `WHERE entity_type = ? AND entity_code = ? AND time >= ? ORDER BY time, id`, e.EntityType, e.EntityCode, e.Start)
		if err != nil {
			return nil, fmt.Errorf("query outage events: %w", err)
		}
		plain := make([]detect.Alert, len(als))
		for j, a := range als {
			plain[j] = a.Alert
		}
		for _, re := range detect.Events(plain, asOf) {
			if re.Start == e.Start && re.Ongoing {
				out[i] = re
			}
		}
	}
	return out, nil
}

// Watermark is the detector's event time at the last commit.
func (s *Store) Watermark(ctx context.Context) (int64, error) { return s.mark(ctx, markWatermark) }

// Signal is one datasource's series of an entity over a range, one slot
// per bin from From: nil where no bin was evaluated.
type Signal struct {
	Datasource string
	From       int64 // first bin start in the range (From aligned up to the bin)
	Until      int64
	Step       int64
	Values     []*float64
	Baseline   []*float64 // the detector's historyValue; nil where the bin was not judged
	Levels     []*detect.Level
}

// Signals returns an entity's evaluated bins per datasource in the
// range (bins lists each datasource's bin width). Datasources without
// a stored bin in the range are left out.
func (s *Store) Signals(ctx context.Context, f Filter, bins map[string]int64) ([]Signal, error) {
	w, args := f.where("time")
	rows, err := s.db.QueryContext(ctx, `SELECT datasource, time, value, history, judged, level FROM signals `+w+` ORDER BY datasource, time`, args...)
	if err != nil {
		return nil, fmt.Errorf("query signals: %w", err)
	}
	defer rows.Close()
	var out []Signal
	var cur *Signal
	for rows.Next() {
		var ds string
		var t int64
		var v, h float64
		var judged bool
		var lvl int
		if err := rows.Scan(&ds, &t, &v, &h, &judged, &lvl); err != nil {
			return nil, fmt.Errorf("query signals: %w", err)
		}
		if cur == nil || cur.Datasource != ds {
			step := bins[ds]
			if step <= 0 {
				continue // a datasource no longer configured
			}
			from := f.From + (step-f.From%step)%step // the first bin starting in the range
			n := int((f.Until - from + step - 1) / step)
			out = append(out, Signal{Datasource: ds, From: from, Until: f.Until, Step: step,
				Values: make([]*float64, n), Baseline: make([]*float64, n), Levels: make([]*detect.Level, n)})
			cur = &out[len(out)-1]
		}
		i := int((t - cur.From) / cur.Step)
		if i < 0 || i >= len(cur.Values) {
			continue
		}
		cur.Values[i] = &v
		if judged {
			cur.Baseline[i] = &h
		}
		l := detect.Level(lvl)
		cur.Levels[i] = &l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query signals: %w", err)
	}
	return out, nil
}
