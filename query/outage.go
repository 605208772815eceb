package query

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// OutageFiles are the Parquet exports of the outage store
// (stream/outage.Exporter) behind the views outage_alerts and
// outage_events: absolute paths inside Config.OutageDir.
type OutageFiles struct {
	Alerts []string `json:"alerts"`
	Events []string `json:"events"`
}

// The views' columns; the casts pin their types whatever the writer used.
const (
	outageAlertColumns = `CAST("id" AS BIGINT) AS "id", CAST("time" AS TIMESTAMPTZ) AS "time", ` +
		`CAST("datasource" AS VARCHAR) AS "datasource", CAST("entity_type" AS VARCHAR) AS "entity_type", ` +
		`CAST("entity_code" AS VARCHAR) AS "entity_code", CAST("level" AS VARCHAR) AS "level", ` +
		`CAST("condition" AS VARCHAR) AS "condition", CAST("value" AS DOUBLE) AS "value", ` +
		`CAST("history_value" AS DOUBLE) AS "history_value", CAST("method" AS VARCHAR) AS "method", ` +
		`CAST("window_seconds" AS BIGINT) AS "window_seconds"`
	emptyOutageAlerts = `SELECT CAST(NULL AS BIGINT) AS "id", CAST(NULL AS TIMESTAMPTZ) AS "time", ` +
		`CAST(NULL AS VARCHAR) AS "datasource", CAST(NULL AS VARCHAR) AS "entity_type", ` +
		`CAST(NULL AS VARCHAR) AS "entity_code", CAST(NULL AS VARCHAR) AS "level", ` +
		`CAST(NULL AS VARCHAR) AS "condition", CAST(NULL AS DOUBLE) AS "value", ` +
		`CAST(NULL AS DOUBLE) AS "history_value", CAST(NULL AS VARCHAR) AS "method", ` +
		`CAST(NULL AS BIGINT) AS "window_seconds" WHERE false`
	outageEventColumns = `CAST("entity_type" AS VARCHAR) AS "entity_type", CAST("entity_code" AS VARCHAR) AS "entity_code", ` +
		`CAST("start" AS TIMESTAMPTZ) AS "start", CAST("end" AS TIMESTAMPTZ) AS "end", CAST("ongoing" AS BOOLEAN) AS "ongoing", ` +
		`CAST("duration_seconds" AS BIGINT) AS "duration_seconds", CAST("level" AS VARCHAR) AS "level", ` +
		`CAST("score" AS DOUBLE) AS "score", CAST("datasources" AS VARCHAR) AS "datasources"`
	emptyOutageEvents = `SELECT CAST(NULL AS VARCHAR) AS "entity_type", CAST(NULL AS VARCHAR) AS "entity_code", ` +
		`CAST(NULL AS TIMESTAMPTZ) AS "start", CAST(NULL AS TIMESTAMPTZ) AS "end", CAST(NULL AS BOOLEAN) AS "ongoing", ` +
		`CAST(NULL AS BIGINT) AS "duration_seconds", CAST(NULL AS VARCHAR) AS "level", ` +
		`CAST(NULL AS DOUBLE) AS "score", CAST(NULL AS VARCHAR) AS "datasources" WHERE false`
)

// outageViewsSQL defines outage_alerts and outage_events over exactly the
// files (empty relations with the same columns when there are none).
func outageViewsSQL(f OutageFiles) []string {
	view := func(name, cols, empty string, files []string) string {
		if len(files) == 0 {
			return `CREATE OR REPLACE VIEW ` + name + ` AS ` + empty
		}
		lits := make([]string, len(files))
		for i, f := range files {
			lits[i] = sqlString(f)
		}
		return `CREATE OR REPLACE VIEW ` + name + ` AS SELECT ` + cols + ` FROM read_parquet([` + strings.Join(lits, ", ") + `], hive_partitioning = false, union_by_name = true)`
	}
	return []string{
		view("outage_alerts", outageAlertColumns, emptyOutageAlerts, f.Alerts),
		view("outage_events", outageEventColumns, emptyOutageEvents, f.Events),
	}
}

func (c Config) cleanOutageFiles(f OutageFiles) (OutageFiles, error) {
	if len(f.Alerts)+len(f.Events) == 0 {
		return OutageFiles{}, nil
	}
	if c.OutageDir == "" {
		return f, fmt.Errorf("query: set outage files: no outage_dir configured")
	}
	a, err := cleanFiles(c.OutageDir, f.Alerts)
	if err != nil {
		return f, err
	}
	e, err := cleanFiles(c.OutageDir, f.Events)
	if err != nil {
		return f, err
	}
	return OutageFiles{Alerts: a, Events: e}, nil
}

// SetOutageFiles (re)defines the views outage_alerts and outage_events
// over exactly the given files, atomically for queries (like SetFiles).
func (e *Engine) SetOutageFiles(f OutageFiles) error {
	if e.closed.Load() {
		return ErrClosed
	}
	clean, err := e.cfg.cleanOutageFiles(f)
	if err != nil {
		return err
	}
	return e.adminTx("set outage files", func(ctx context.Context, tx *sql.Tx) error {
		for _, s := range outageViewsSQL(clean) {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%d alert, %d event files: %w", len(clean.Alerts), len(clean.Events), err)
			}
		}
		return nil
	})
}

// SetOutageFiles sets the files of the outage views. Workers apply it
// before their next query.
func (p *Pool) SetOutageFiles(f OutageFiles) error {
	clean, err := p.cfg.cleanOutageFiles(f)
	if err != nil {
		return err
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	p.outage = clean
	p.gen++
	return nil
}
