package outage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/query"
	"github.com/netwarden/netwarden/stream/outage"
)

// TestExportSQL: the Parquet exports make the stored alerts and events
// queryable through the real DuckDB engine as outage_alerts and
// outage_events, follow new alerts (a new file per round, merged past
// MaxAlertFiles), and ongoing events have a NULL end.
func TestExportSQL(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "outage.db"))
	store := openStore(t, cfg.Path)
	eng, err := query.New(query.Config{HistoryDir: filepath.Join(dir, "history"), OutageDir: filepath.Join(dir, "sql")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	x := outage.NewExporter(store, filepath.Join(dir, "sql"), 0, func(a, e []string) error {
		return eng.SetOutageFiles(query.OutageFiles{Alerts: a, Events: e})
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := os.MkdirAll(filepath.Join(dir, "sql"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	scalar := func(q string) string {
		t.Helper()
		rs, err := eng.Run(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return fmt.Sprint(rs.Rows[0]...)
	}
	if got := scalar(`SELECT count(*) FROM outage_alerts`); got != "0" {
		t.Fatalf("views before any export: %s alerts", got)
	}

	alerts, _ := reference(t, cfg, genPoints(4, 150, 300))
	if len(alerts) < 2*(outage.MaxAlertFiles+2) {
		t.Fatalf("reference raised %d alerts; the test needs more", len(alerts))
	}
	// One batch per round: the files pile up and get merged.
	per := len(alerts) / (outage.MaxAlertFiles + 2)
	for i := 0; i < len(alerts); i += per {
		wm := alerts[min(i+per, len(alerts))-1].Time
		if _, err := store.Commit(ctx, outage.Batch{Alerts: alerts[i:min(i+per, len(alerts))], Offsets: map[int32]int64{0: int64(i + 1)}, Watermark: wm}); err != nil {
			t.Fatal(err)
		}
		if err := x.Export(ctx); err != nil {
			t.Fatal(err)
		}
		stored := storedAlerts(t, store)
		if got := scalar(`SELECT count(*) FROM outage_alerts`); got != fmt.Sprint(len(stored)) {
			t.Fatalf("round %d: SQL sees %s alerts, the store %d", i/per, got, len(stored))
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "sql"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) <= outage.MaxAlertFiles {
		t.Fatalf("%d files: the merge was never exercised", len(ents))
	}
	// The manifest names the current files, as the views use them.
	ma, me, err := outage.ExportedFiles(filepath.Join(dir, "sql"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ma) == 0 || len(ma) > outage.MaxAlertFiles || len(me) != 2 {
		t.Fatalf("manifest: %d alert files, %d event files", len(ma), len(me))
	}
	eng2, err := query.New(query.Config{HistoryDir: filepath.Join(dir, "history"), OutageDir: filepath.Join(dir, "sql")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	if err := eng2.SetOutageFiles(query.OutageFiles{Alerts: ma, Events: me}); err != nil {
		t.Fatal(err)
	}
	stored := storedAlerts(t, store)
	if rs, err := eng2.Run(ctx, `SELECT count(*) FROM outage_alerts`); err != nil || fmt.Sprint(rs.Rows[0]...) != fmt.Sprint(len(stored)) {
		t.Fatalf("engine on the manifest's files: %v %v, want %d alerts", rs, err, len(stored))
	}
	crit := 0
	for _, a := range stored {
		if a.Level == detect.Critical && a.Datasource == detect.BGP {
			crit++
		}
	}
	if got := scalar(`SELECT count(*) FROM outage_alerts WHERE level = 'critical' AND datasource = 'bgp'`); got != fmt.Sprint(crit) {
		t.Fatalf("SQL: %s critical bgp alerts, store %d", got, crit)
	}
	a := stored[len(stored)/2]
	rs, err := eng.Run(ctx, fmt.Sprintf(`SELECT entity_type, entity_code, epoch(time)::BIGINT, level, value, history_value, window_seconds FROM outage_alerts WHERE id = %d`, a.ID))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%v", rs.Rows), fmt.Sprintf("%v", [][]any{{a.EntityType, a.EntityCode, a.Time, a.Level.String(), a.Value, a.HistoryValue, a.Window}}); got != want {
		t.Fatalf("alert %d in SQL: %s, want %s", a.ID, got, want)
	}
	evs, err := store.Events(ctx, outage.Filter{From: -1 << 40, Until: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	ongoing := 0
	for _, e := range evs {
		if e.Ongoing {
			ongoing++
		}
	}
	if got := scalar(`SELECT count(*) || ' ' || count(*) FILTER (WHERE "end" IS NULL) || ' ' || count(*) FILTER (WHERE ongoing) FROM outage_events`); got != fmt.Sprintf("%d %d %d", len(evs), ongoing, ongoing) {
		t.Fatalf("SQL events (all, null end, ongoing): %s; store %d events, %d ongoing", got, len(evs), ongoing)
	}
	if len(evs) == 0 {
		t.Fatal("no events: the test checks nothing")
	}

	// An outage still going on (the reference's all ended): SQL has it
	// with a NULL end.
	wm, err := store.Watermark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	down := stored[0].Alert
	down.EntityType, down.EntityCode, down.Time, down.Level = "asn", "65000", wm-600, detect.Critical
	if _, err := store.Commit(ctx, outage.Batch{Alerts: []detect.Alert{down}, Offsets: map[int32]int64{0: int64(len(alerts) + 1)}, Watermark: wm}); err != nil {
		t.Fatal(err)
	}
	if err := x.Export(ctx); err != nil {
		t.Fatal(err)
	}
	if got := scalar(`SELECT count(*) || ' ' || count(*) FILTER (WHERE "end" IS NULL) || ' ' || count(*) FILTER (WHERE ongoing) FROM outage_events`); got != fmt.Sprintf("%d 1 1", len(evs)+1) {
		t.Fatalf("SQL events (all, null end, ongoing) with one ongoing: %s; want %d 1 1", got, len(evs)+1)
	}

	// A round that only moves the watermark rewrites the ongoing events
	// alone; SQL sees their new durations and still every event.
	_, before, err := outage.ExportedFiles(filepath.Join(dir, "sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Commit(ctx, outage.Batch{Offsets: map[int32]int64{0: int64(len(alerts) + 2)}, Watermark: wm + 3600}); err != nil {
		t.Fatal(err)
	}
	if err := x.Export(ctx); err != nil {
		t.Fatal(err)
	}
	_, after, err := outage.ExportedFiles(filepath.Join(dir, "sql"))
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0] != before[0] || after[1] == before[1] {
		t.Fatalf("event files %v after a watermark round, before %v: want the ended file kept, the ongoing one new", after, before)
	}
	evs, err = store.Events(ctx, outage.Filter{From: -1 << 40, Until: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, e := range evs {
		if e.Ongoing {
			sum += e.Duration
		}
	}
	if got := scalar(`SELECT count(*) || ' ' || sum(duration_seconds) FILTER (WHERE ongoing) FROM outage_events`); got != fmt.Sprintf("%d %d", len(evs), sum) {
		t.Fatalf("SQL events (all, ongoing duration sum) after a watermark round: %s; store %d %d", got, len(evs), sum)
	}
}

// TestExportRetriesSetFiles: a round whose onFiles failed is redone by
// the next one even when nothing new was stored (the views would stay on
// files that get retired and deleted); Run hands over absolute paths
// for a relative directory (query.Pool.SetOutageFiles takes no other)
// and deletes the previous run's exports there, not other files.
func TestExportRetriesSetFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "outage.db"))
	store := openStore(t, cfg.Path)
	ctx := context.Background()
	alerts, _ := reference(t, cfg, genPoints(4, 30, 300))
	if _, err := store.Commit(ctx, outage.Batch{Alerts: alerts, Offsets: map[int32]int64{0: 1}, Watermark: alerts[len(alerts)-1].Time}); err != nil {
		t.Fatal(err)
	}
	eng, err := query.New(query.Config{HistoryDir: filepath.Join(dir, "history"), OutageDir: filepath.Join(dir, "sql")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	fail := true
	set := func(a, e []string) error {
		if fail {
			return errors.New("engine busy")
		}
		return eng.SetOutageFiles(query.OutageFiles{Alerts: a, Events: e})
	}
	x := outage.NewExporter(store, filepath.Join(dir, "sql"), time.Hour, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := os.MkdirAll(filepath.Join(dir, "sql"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := x.Export(ctx); err == nil {
		t.Fatal("a failing onFiles: Export returned nil")
	}
	fail = false
	if err := x.Export(ctx); err != nil { // nothing new stored
		t.Fatal(err)
	}
	rs, err := eng.Run(ctx, `SELECT count(*) FROM outage_alerts`)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rs.Rows[0]...); got != fmt.Sprint(len(alerts)) {
		t.Fatalf("after the retry SQL sees %s alerts, the store %d", got, len(alerts))
	}

	t.Chdir(dir)
	stale := filepath.Join("sql", "alerts-000000000001-000000999999.parquet")
	for _, f := range []string{stale, filepath.Join("sql", "keep.db")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rel := outage.NewExporter(store, "sql", time.Hour, func(a, e []string) error {
		err := eng.SetOutageFiles(query.OutageFiles{Alerts: a, Events: e})
		select {
		case got <- err:
		default:
		}
		return err
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan error, 1)
	go func() { done <- rel.Run(rctx) }()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("relative export dir: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("Run never handed over its files")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the previous run's export is still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join("sql", "keep.db")); err != nil {
		t.Errorf("a file that is no export was deleted: %v", err)
	}
	// netwarden sql reads the manifest of a relative dir the same way.
	ma, me, err := outage.ExportedFiles("sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.SetOutageFiles(query.OutageFiles{Alerts: ma, Events: me}); err != nil || len(ma) == 0 {
		t.Errorf("the manifest's files (%q, %q): %v", ma, me, err)
	}
}
