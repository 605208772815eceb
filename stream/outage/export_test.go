package outage

import (
	"context"
	"fmt"

	"github.com/netwarden/netwarden/detect"
)

// BulkInsertAlerts stores als in one transaction, bypassing the
// per-batch refold: the bench's loader for millions of alerts.
func (s *Store) BulkInsertAlerts(ctx context.Context, als []detect.Alert) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO alerts (datasource, entity_type, entity_code, time, level, condition, value, history_value, method, window)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return err
	}
	for _, a := range als {
		if _, err := st.ExecContext(ctx, a.Datasource, a.EntityType, a.EntityCode, a.Time, int(a.Level), a.Condition, a.Value, a.HistoryValue, a.Method, a.Window); err != nil {
			st.Close()
			return fmt.Errorf("bulk insert: %w", err)
		}
	}
	st.Close()
	return tx.Commit()
}

// BulkInsertEvents stores evs and moves the watermark to asOf.
func (s *Store) BulkInsertEvents(ctx context.Context, evs []detect.Event, asOf int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insertEvents(ctx, tx, evs); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, markWatermark, asOf); err != nil {
		return err
	}
	return tx.Commit()
}
